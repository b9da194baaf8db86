#!/usr/bin/env bash
# The one test command: installs what the tests need, builds, type-checks, generates fixtures, runs every uvu suite
# and closes with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
[ -d node_modules ] || npm install
npm run --silent build
# The suites run through tsx, which strips types without checking them: check src, tests and benches first.
node_modules/.bin/tsc -p tsconfig.test.json
bash scripts/make-fixtures.sh
node scripts/run-tests.mjs "$@"
