// The backends the shared parity suites (parity-ops, parity-models) run on: one test per case
// and per backend. A new backend registers itself and adds its name here (or a machine that has
// it sets RESNET_TEST_BACKENDS=ref,wasm,<name>).
import '../src/backend/wasm/index.js';
import { listBackends, registerBackend } from '../src/backend/registry.js';
import { createWasmBackend } from '../src/backend/wasm/wasm.js';

// Opt-in (RESNET_TEST_BACKENDS=ref,wasm-unshared): wasm on an unshared memory from 1 MiB, as a page
// that is not cross-origin isolated has, growing (and detaching its views) all through the suites.
registerBackend('wasm-unshared', () => createWasmBackend({ sharedMemory: false, initialMemoryBytes: 2 ** 20 }));

export const TEST_BACKENDS: readonly string[] = (process.env.RESNET_TEST_BACKENDS ?? 'ref,wasm')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

for (const b of TEST_BACKENDS) {
  if (!listBackends().includes(b)) throw new Error(`RESNET_TEST_BACKENDS names '${b}', which is not registered (known: ${listBackends().join(', ')})`);
}
