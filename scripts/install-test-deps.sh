#!/usr/bin/env bash
# Debian packages the tests need: the PyTorch reference (CPU), PIL + torchvision for preprocessing parity, OpenBLAS's
# threaded build (without it torch's matrix products run ~15x slower), the Fashion-MNIST data set and Chromium
# (test/hosts.test.ts drives it with playwright-core; Deno and workerd come from npm as devDependencies), and
# python3-onnx, which tools/export_onnx.py needs to assemble the ONNX model for bench/peers.ts.
set -euo pipefail
pkgs=(python3-torch python3-torchvision python3-numpy python3-pil python3-skimage libopenblas0-pthread dataset-fashion-mnist chromium python3-onnx)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
