// Registers the 'wasm' backend. Importing this module makes `await setBackend('wasm')` work.
import { ConfigError } from '../../base/errors.js';
import { registerBackend, getBackend } from '../registry.js';
import { createWasmBackend, WasmBackend } from './wasm.js';

export { WasmBackend, createWasmBackend, type WasmBackendOptions } from './wasm.js';

let instance: WasmBackend | null = null;
let wantThreads: number | undefined;

registerBackend('wasm', async () => {
  if (!instance) instance = await createWasmBackend({ threads: wantThreads });
  return instance;
});

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

/** Terminates the wasm backend's worker threads (it keeps working on the calling thread). */
export function disposeWasmThreads(): void {
  instance?.dispose();
}

export function isWasmBackendActive(): boolean {
  return getBackend() instanceof WasmBackend;
}

