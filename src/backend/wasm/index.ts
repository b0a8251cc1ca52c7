// The 'wasm' backend's process-wide instance. The registry imports this module lazily on
// `await setBackend('wasm')` (no side effect at import: bundlers may drop it when unused); the
// settings a page gives before that (threads, worker URL) live in settings.ts. It re-exports
// nothing: esbuild --splitting would export each re-exported name across chunks (0.2 kB gzipped on
// the minimal page); import setThreads & co. from settings.ts, WasmBackend from wasm.ts.
import { createWasmBackend, type WasmBackend } from './wasm.js';
import { attachWasmBackend, wasmSettings } from './settings.js';

let creating: Promise<WasmBackend> | null = null;

/** The wasm backend, created on first use (what `setBackend('wasm')` selects). */
export async function wasmBackend(): Promise<WasmBackend> {
  creating ??= createWasmBackend(wasmSettings()).then(
    (b) => {
      attachWasmBackend(b);
      return b;
    },
    (e) => {
      creating = null;
      throw e;
    },
  );
  return creating;
}
