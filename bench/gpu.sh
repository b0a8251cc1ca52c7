#!/usr/bin/env bash
# The webgpu benchmark on a machine with a real GPU: installs nothing (run `npm ci` beforehand,
# with network; this script never touches it), uses Dawn's Vulkan backend in Node (npm package
# `webgpu`) and Chromium's GPU adapter, and prints the tables.
#
#   bash bench/gpu.sh [--quick]
#
# 1. npm run bench: ours on wasm and on webgpu, onnxruntime-web (wasm) and PyTorch where present:
#    ResNet-18/50 batch 1 inference, the d2l ResNet-18 training step, SGEMM.
# 2. bench/webgpu-kernels.ts: GEMM up to 2048^3 and the conv kernels in GFLOP/s.
# 3. bench/webgpu-browser.ts --gpu: ours vs onnxruntime-web's webgpu EP in Chromium, same adapter.
# Each step prints the adapter it got; a software adapter (llvmpipe, SwiftShader) is named as such.
set -euo pipefail
cd "$(dirname "$0")/.."
for m in webgpu tsx onnxruntime-web playwright-core; do
  [ -d "node_modules/$m" ] || { echo "gpu.sh: node_modules/$m is missing: run npm ci first (this script installs nothing)" >&2; exit 2; }
done
export RESNET_WEBGPU_FLAGS="${RESNET_WEBGPU_FLAGS:-backend=vulkan}" # Dawn's Vulkan backend; unset it for Dawn's default
RUNS=5
[ "${1:-}" = "--quick" ] && RUNS=2
echo "== npm run bench (ours wasm + webgpu, peers) =="
node --import tsx bench/run.ts --peers ours,ours-webgpu,onnxruntime-web,pytorch --only resnet18-b1,resnet50-b1,d2l-train-b128,sgemm-1024 --runs "$RUNS" --no-write
echo "== webgpu kernels (GEMM 512/1024/2048, convs) =="
node --import tsx bench/webgpu-kernels.ts --gemm 512,1024,2048
if [ -x /usr/bin/chromium ]; then
  echo "== Chromium: ours (webgpu) vs onnxruntime-web (webgpu EP), same adapter =="
  node --import tsx bench/webgpu-browser.ts --gpu --runs "$RUNS"
else
  echo "(no /usr/bin/chromium: the browser comparison is skipped)"
fi
