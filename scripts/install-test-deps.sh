#!/usr/bin/env bash
# Debian packages the tests need: the PyTorch reference (CPU), PIL + torchvision for preprocessing parity, OpenBLAS's
# threaded build (without it torch's matrix products run ~15x slower), the Fashion-MNIST data set, the browsers
# test/hosts.test.ts and bench/speed.ts drive (test/helpers/browsers.ts): Chromium, Firefox ESR, and WebKitGTK's
# MiniBrowser with its WebDriver, on an Xvfb display (Deno, Bun and workerd come from npm as devDependencies),
# and python3-onnx, which tools/export_onnx.py needs to assemble the ONNX model for bench/peers.ts.
set -euo pipefail
pkgs=(python3-torch python3-torchvision python3-numpy python3-pil python3-skimage libopenblas0-pthread dataset-fashion-mnist chromium
  firefox-esr webkit2gtk-driver xvfb python3-onnx)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
# A fresh machine often has another apt running (unattended upgrades, provisioning): wait for its locks rather
# than fail. DPkg::Lock::Timeout covers dpkg's lock during install; `apt-get update` takes the lists lock, which
# that option does not cover on every apt release, so it is retried while the failure is a held lock.
LOCK_WAIT_S=900
apt_update() {
  local waited=0 log
  log=$(mktemp)
  until $SUDO apt-get -o DPkg::Lock::Timeout=$LOCK_WAIT_S update -qq 2>"$log"; do
    if ! grep -qi 'could not get lock\|unable to lock' "$log" || [ $waited -ge $LOCK_WAIT_S ]; then
      cat "$log" >&2; rm -f "$log"; return 1
    fi
    [ $waited -eq 0 ] && echo "waiting for another apt to finish..."
    sleep 5; waited=$((waited + 5))
  done
  rm -f "$log"
}
apt_update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=$LOCK_WAIT_S install -y -qq "${missing[@]}" >/dev/null
