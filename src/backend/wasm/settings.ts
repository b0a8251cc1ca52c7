// The wasm backend's settings a page may give before the backend loads (threads, worker URL), kept
// apart from the backend: importing setThreads must not pull the backend and its kernels out of the
// chunk that `await setBackend('wasm')` loads lazily (Vite warned INEFFECTIVE_DYNAMIC_IMPORT and
// put them in the page's entry chunk when this lived in wasm/index.ts).
import { ConfigError } from '../../base/errors.js';

/** What the settings need of a created backend. */
interface ThreadedBackend {
  readonly threads: number;
  setThreads(n: number): Promise<void>;
}

let backend: ThreadedBackend | null = null;
let wantThreads: number | undefined;
let workerUrl: string | URL | undefined;

/** wasm/index.ts: the backend just created, which setThreads applies to from now on. */
export function attachWasmBackend(b: ThreadedBackend): void {
  backend = b;
}

/** wasm/index.ts: the options to create the backend with. */
export function wasmSettings(): { threads?: number; workerUrl?: string | URL } {
  return { threads: wantThreads, workerUrl };
}

/**
 * Number of threads (the calling thread included) the wasm backend uses; default is the
 * machine's core count. Applies to the registered backend now or when it is created.
 */
export function setThreads(n: number): Promise<void> {
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`setThreads: the thread count must be a positive integer, got ${n}`);
  wantThreads = n;
  return backend ? backend.setThreads(n) : Promise.resolve();
}

/** Threads the wasm backend uses now (1 before it is created or without shared memory). */
export function getThreads(): number {
  return backend ? backend.threads : 1;
}

/**
 * Browsers: start the wasm backend's worker threads from this URL instead of a blob: URL (for a
 * Content-Security-Policy whose worker-src does not allow blob:). The script there must be the text
 * of webWorkerSource(), e.g. written to a file at build time. Call before `setBackend('wasm')`.
 */
export function setWorkerUrl(url: string | URL): void {
  workerUrl = url;
}
