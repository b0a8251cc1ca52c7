#!/usr/bin/env bash
# Installs what the tests need from Debian: PyTorch 1.13 + torchvision 0.14 (to make the parity
# fixtures), the real Fashion-MNIST, and chromium (the browser tests drive it with playwright-core).
# Skips what is already there. Needs root or sudo.
set -euo pipefail
need=()
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null || need+=(python3-torch python3-torchvision)
[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || need+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  echo "test dependencies present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
