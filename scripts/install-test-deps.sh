#!/usr/bin/env bash
# Installs what the tests need from Debian: PyTorch 1.13 + torchvision 0.14 (to make the parity
# fixtures), the real Fashion-MNIST, chromium (the browser tests drive it with playwright-core) and
# two real photos. Skips what is already there. Needs root or sudo.
set -euo pipefail
need=()
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null || need+=(python3-torch python3-torchvision)
[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || need+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || need+=(chromium)
# Mesa's EGL + llvmpipe: the webgpu backend's tests run on Dawn's OpenGL backend without a GPU
ls /usr/lib/*/libEGL_mesa.so.0 >/dev/null 2>&1 || need+=(libegl-mesa0 libgl1-mesa-dri)
# zopfli: npm run build:wasm deflates the kernel module with it when the module changes (0.5 kB
# less gzipped JS than zlib -9 on a page; test/bundlers.test.ts guards the page's size)
command -v zopfli >/dev/null || need+=(zopfli)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ ${#need[@]} -eq 0 ]; then
  echo "test dependencies present"
else
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# Two real photos for the preprocessing-parity tests (test/pretrained-http.test.ts): skimage's
# rocket.jpg (a JPEG from a camera) and chelsea.png, taken out of Debian's python3-skimage package
# without installing it (it would pull matplotlib, scipy, ...).
photos="$(cd "$(dirname "$0")/.." && pwd)/test/fixtures/photos"
if [ ! -f "$photos/rocket.jpg" ] || [ ! -f "$photos/chelsea.png" ]; then
  tmp="$(mktemp -d)"
  (cd "$tmp" && { apt-get download python3-skimage >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && apt-get download python3-skimage; }; })
  mkdir -p "$tmp/x" "$photos"
  dpkg-deb --fsys-tarfile "$tmp"/python3-skimage_*.deb | tar -x -C "$tmp/x" ./usr/lib/python3/dist-packages/skimage/data/rocket.jpg ./usr/lib/python3/dist-packages/skimage/data/chelsea.png
  cp "$tmp/x/usr/lib/python3/dist-packages/skimage/data/"{rocket.jpg,chelsea.png} "$photos/"
  rm -rf "$tmp"
  echo "test photos: $photos (from python3-skimage)"
fi
