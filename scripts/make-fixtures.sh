#!/usr/bin/env bash
# Golden fixtures too large to commit are generated here from the PyTorch reference (tools/).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p test/fixtures/generated

# PyTorch-reference fixtures at the real Vim-Ti shape (224x224, D=192, depth 24; ~64 MB, ~10 s on 2 cores).
# Skipped when test/fixtures/generated/tiny/manifest.json matches the generator's version and source hash and
# every file it lists is intact; the small configs are committed under test/fixtures/small/ (tools/README.md).
/usr/bin/python3 tools/make_golden_fixtures.py --tiny --out test/fixtures/generated/tiny --skip-if-current

# The checkpoint layouts (DDP, torch.compile, timm, EMA, fp16/bf16, safetensors) and unrunnable shapes of
# test/checkpoint-layouts.test.ts (~4 MB, from test/fixtures/small/small/model.pth); skipped when current.
/usr/bin/python3 tools/make_layout_fixtures.py test/fixtures/generated/layouts
