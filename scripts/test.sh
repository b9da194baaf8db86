#!/usr/bin/env bash
# The one test command: installs what the tests need, builds, generates fixtures, runs every uvu suite
# and closes with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
[ -d node_modules ] || npm install
npm run --silent build
bash scripts/make-fixtures.sh
node scripts/run-tests.mjs "$@"
