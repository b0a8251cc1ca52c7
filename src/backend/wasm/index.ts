// The 'wasm' backend's process-wide instance and its thread count. The registry imports this module
// lazily on `await setBackend('wasm')` (no side effect at import: bundlers may drop it when unused).
import { ConfigError } from '../../base/errors.js';
import { createWasmBackend, type WasmBackend } from './wasm.js';

export { WasmBackend, createWasmBackend, type WasmBackendOptions } from './wasm.js';
export { webWorkerSource } from './threads.js';

let instance: WasmBackend | null = null;
let creating: Promise<WasmBackend> | null = null;
let wantThreads: number | undefined;
let workerUrl: string | URL | undefined;

/** The wasm backend, created on first use (what `setBackend('wasm')` selects). */
export async function wasmBackend(): Promise<WasmBackend> {
  creating ??= createWasmBackend({ threads: wantThreads, workerUrl }).then(
    (b) => (instance = b),
    (e) => {
      creating = null;
      throw e;
    },
  );
  return creating;
}

/**
 * Number of threads (the calling thread included) the wasm backend uses; default is the
 * machine's core count. Applies to the registered backend now or when it is created.
 */
export function setThreads(n: number): Promise<void> {
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`setThreads: the thread count must be a positive integer, got ${n}`);
  wantThreads = n;
  return instance ? instance.setThreads(n) : Promise.resolve();
}

/** Threads the wasm backend uses now (1 before it is created or without shared memory). */
export function getThreads(): number {
  return instance ? instance.threads : 1;
}

/**
 * Browsers: start the wasm backend's worker threads from this URL instead of a blob: URL (for a
 * Content-Security-Policy whose worker-src does not allow blob:). The script there must be the text
 * of webWorkerSource(), e.g. written to a file at build time. Call before `setBackend('wasm')`.
 */
export function setWorkerUrl(url: string | URL): void {
  workerUrl = url;
}
