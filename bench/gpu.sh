#!/usr/bin/env bash
# The webgpu benchmark on a machine with a real GPU: installs nothing (run `npm ci` beforehand,
# with network; this script never touches it), uses Dawn's Vulkan backend in Node (npm package
# `webgpu`) and Chromium's GPU adapter, and prints the tables.
#
#   bash bench/gpu.sh [--quick]
#
# 1. npm run bench: ours on wasm and on webgpu, onnxruntime-web (wasm), tfjs-webgpu (same adapter) and PyTorch:
#    ResNet-18/50 batch 1 inference, the d2l ResNet-18 training step, SGEMM.
# 2. bench/webgpu-kernels.ts: GEMM up to 2048^3 and the conv kernels in GFLOP/s.
# 3. bench/webgpu-browser.ts --gpu: ours vs onnxruntime-web's webgpu EP in Chromium, same adapter.
# Each step prints the adapter it got; a software adapter (llvmpipe, SwiftShader) is named as such.
set -euo pipefail
cd "$(dirname "$0")/.."
for m in webgpu tsx onnxruntime-web playwright-core @tensorflow/tfjs-backend-webgpu; do
  [ -d "node_modules/$m" ] || { echo "gpu.sh: node_modules/$m is missing: run npm ci first (this script installs nothing)" >&2; exit 2; }
done
export RESNET_WEBGPU_FLAGS="${RESNET_WEBGPU_FLAGS:-backend=vulkan}" # Dawn's Vulkan backend; unset it for Dawn's default
if [[ "$RESNET_WEBGPU_FLAGS" == *vulkan* ]]; then
  # Dawn dlopens the Vulkan loader by soname (LD_LIBRARY_PATH, then the ldconfig cache); without it
  # Dawn only prints "Couldn't load Vulkan" and finds no adapter
  found=""
  for d in ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }}; do if [ -e "$d/libvulkan.so.1" ]; then found="$d/libvulkan.so.1"; fi; done
  [ -n "$found" ] || found="$(/sbin/ldconfig -p 2>/dev/null | awk '/libvulkan\.so\.1 /{print $NF; exit}')"
  if [ -z "$found" ]; then
    echo "gpu.sh: the Vulkan loader libvulkan.so.1 is missing, so Dawn has no Vulkan backend: install it (Debian/Ubuntu: apt-get install libvulkan1; the GPU driver provides its ICD in /usr/share/vulkan/icd.d) or add its directory to LD_LIBRARY_PATH" >&2
    exit 2
  fi
  echo "gpu.sh: Vulkan loader: $found" >&2
fi
RUNS=5
[ "${1:-}" = "--quick" ] && RUNS=2
echo "== npm run bench (ours wasm + webgpu, peers) =="
node --import tsx bench/run.ts --peers ours,ours-webgpu,onnxruntime-web,tfjs-webgpu,pytorch --only resnet18-b1,resnet50-b1,d2l-train-b128,sgemm-1024 --runs "$RUNS" --no-write
echo "== webgpu kernels (GEMM 512/1024/2048, convs) =="
node --import tsx bench/webgpu-kernels.ts --gemm 512,1024,2048
if [ -x /usr/bin/chromium ]; then
  echo "== Chromium: ours (webgpu) vs onnxruntime-web (webgpu EP), same adapter =="
  node --import tsx bench/webgpu-browser.ts --gpu --runs "$RUNS"
else
  echo "(no /usr/bin/chromium: the browser comparison is skipped)"
fi
