// The backends the shared parity suites (parity-ops, parity-models) run on: one test per case
// and per backend. Default: ref, wasm, and webgpu where this machine has a WebGPU adapter (here
// and in CI: Mesa's llvmpipe through the npm package `webgpu`); RESNET_TEST_BACKENDS=ref,wasm,...
// names them explicitly (a named backend that cannot start fails its tests instead of vanishing).
import '../src/backend/wasm/index.js';
import { listBackends } from '../src/backend/registry.js';
import { webgpuSkipReason } from './webgpu-env.js';

const requested = process.env.RESNET_TEST_BACKENDS;

export const TEST_BACKENDS: readonly string[] = requested
  ? requested
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  : ['ref', 'wasm', ...((await webgpuSkipReason()) ? [] : ['webgpu'])];

for (const b of TEST_BACKENDS) {
  if (!listBackends().includes(b)) throw new Error(`RESNET_TEST_BACKENDS names '${b}', which is not registered (known: ${listBackends().join(', ')})`);
}
