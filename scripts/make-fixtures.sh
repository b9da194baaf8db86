#!/usr/bin/env bash
# Golden fixtures too large to commit are generated here from the PyTorch reference (tools/).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p test/fixtures/generated
