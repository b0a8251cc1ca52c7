// A pool of worker threads that share the kernel module and the wasm memory, with synchronous
// dispatch: the main thread posts a job descriptor to some workers through a shared control
// block (Atomics.store + notify), works on the job itself, then waits for the workers that
// started (Atomics.wait). A worker that has not woken up by then is cancelled instead of waited
// for, so a descheduled worker never delays a kernel. Every participant takes task indices from
// the descriptor's atomic counter (inside wasm), so faster threads take more tiles.
//
// Workers are made by a WorkerFactory: node:worker_threads in Node, Web Workers in browsers.
// Workers never keep a Node process alive (unref) and are terminated by terminate().

import type { WasmMemory, WasmModule } from './wasm-types.js';

/** Control block layout (i32 words). Each worker slot is 16 words (64 bytes) apart. */
const C_ERROR = 0;
const C_SLOTS = 16;
const SLOT_WORDS = 16;
const S_STATE = 0;
const S_DESC = 1;
const S_READY = 2;

const IDLE = 0;
const POSTED = 1;
// 2 = RUNNING: set by the worker itself (workerMain's compareExchange 1 -> 2), never read here.
const DONE = 3;
const EXIT = 4;

export const MAX_THREADS = 64;
export const CONTROL_BYTES = (C_SLOTS + SLOT_WORDS * MAX_THREADS) * 4;

/** Spin iterations before a thread sleeps in Atomics.wait. */
const WORKER_SPIN = 10000; // ~50-100 us: stays awake between the kernels of a forward pass
const MAIN_SPIN = 20000;

/** The worker's whole program, as a function of its init message and nothing else (its text is the worker script's core). */
export function workerMain(init: { module: WasmModule; memory: WasmMemory; ctrl: number; tid: number; spin: number }): void {
  const inst = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
  const run = inst.exports.run_job as (d: number, t: number) => void;
  const ctrl = new Int32Array(init.memory.buffer, init.ctrl, 16 + 16 * 64);
  const st = 16 + 16 * init.tid;
  Atomics.store(ctrl, st + 2, 1);
  for (;;) {
    let s = Atomics.load(ctrl, st);
    for (let i = 0; i < init.spin && s !== 1 && s !== 4; i++) s = Atomics.load(ctrl, st);
    while (s !== 1 && s !== 4) {
      Atomics.wait(ctrl, st, s);
      s = Atomics.load(ctrl, st);
    }
    if (s === 4) break;
    if (Atomics.compareExchange(ctrl, st, 1, 2) !== 1) continue; // cancelled by the main thread
    try {
      run(Atomics.load(ctrl, st + 1), init.tid);
    } catch (e) {
      Atomics.store(ctrl, 0, 1);
    }
    Atomics.store(ctrl, st, 3);
    Atomics.notify(ctrl, st);
  }
  Atomics.store(ctrl, st + 2, 0);
}

export interface WorkerHandle {
  post(msg: unknown): void;
  terminate(): void;
}

/**
 * Makes a worker that runs `source` (a script that calls `start(initMessage)` on its first message).
 * It calls `onError` if the worker fails to start (a Content-Security-Policy that blocks it, a
 * script that does not load); it may also throw at once.
 */
export type WorkerFactory = (source: string, onError: (e: unknown) => void) => WorkerHandle;

/** How long workers may take to start before the pool gives up on them and runs on 1 thread. */
export const WORKER_START_TIMEOUT_MS = 2000;

/** Worker script for Web Workers. */
export function webWorkerSource(): string {
  return `const start = ${workerMain.toString()};
self.onmessage = (e) => { self.onmessage = null; start(e.data); };`;
}

export class ThreadPool {
  private readonly ctrl: Int32Array;
  private workers: (WorkerHandle | null)[] = [];
  private threads = 1;
  private readonly canWaitOnMain: boolean;

  constructor(
    private readonly module: WasmModule,
    private readonly memory: WasmMemory,
    private readonly ctrlPtr: number,
    private readonly runMain: (desc: number, tid: number) => void,
    private readonly factory: WorkerFactory | null,
    private readonly source: string,
    /** Why there is no factory (said once when more than 1 thread is asked for); null: say nothing. */
    private readonly noFactoryReason: string | null = null,
    private readonly startTimeoutMs = WORKER_START_TIMEOUT_MS,
  ) {
    this.ctrl = new Int32Array(memory.buffer, ctrlPtr, CONTROL_BYTES / 4);
    this.ctrl.fill(0);
    this.canWaitOnMain = mainCanWait(this.ctrl);
  }

  /** Threads used by a job, the main thread included. */
  get size(): number {
    return this.threads;
  }

  /**
   * Use n threads (main included). Starts workers as needed; they join jobs as soon as they are
   * ready. The promise resolves when all n are ready (or at once with no worker factory). It never
   * rejects: a worker that cannot start (error, or not ready within startTimeoutMs) makes the pool
   * fall back to 1 thread with one console warning.
   */
  setThreads(n: number): Promise<void> {
    n = Math.max(1, Math.min(MAX_THREADS, Math.floor(n)));
    if (!this.factory) {
      if (n > 1 && this.noFactoryReason) this.warnOnce(`resnet-ts: the wasm backend runs on 1 thread, not ${n}: ${this.noFactoryReason}`);
      n = 1;
    }
    if (this.failed) n = 1;
    this.threads = n;
    let failure: unknown = null;
    for (let w = this.workers.length; w < n && failure === null; w++) {
      if (w === 0) {
        this.workers.push(null);
        continue;
      }
      try {
        const h = this.factory!(this.source, (e) => (failure ??= e ?? 'error event'));
        h.post({ module: this.module, memory: this.memory, ctrl: this.ctrlPtr, tid: w, spin: WORKER_SPIN });
        this.workers.push(h);
      } catch (e) {
        failure = e;
      }
    }
    return this.whenReady(n, () => failure);
  }

  /** Set once workers failed to start: the pool stays on 1 thread. */
  private failed = false;
  private warned = false;

  /** One console warning per pool (a backend has one) when threads cannot be used; it then runs on 1. */
  private warnOnce(msg: string): void {
    if (this.warned) return;
    this.warned = true;
    console.warn(msg);
  }

  private async whenReady(n: number, failure: () => unknown): Promise<void> {
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      let ok = true;
      for (let w = 1; w < n; w++) if (Atomics.load(this.ctrl, C_SLOTS + SLOT_WORDS * w + S_READY) !== 1) ok = false;
      if (ok) return;
      const f = failure();
      if (f !== null || Date.now() > deadline) {
        const why =
          f !== null
            ? `a worker failed to start (${f instanceof Error ? f.message : typeof f === 'string' ? f : 'error event'})`
            : `workers did not start within ${this.startTimeoutMs / 1000} s`;
        this.terminate();
        this.failed = true;
        this.threads = 1;
        this.warnOnce(
          `resnet-ts: the wasm backend runs on 1 thread: ${why}. Under a Content-Security-Policy that blocks blob: workers, serve webWorkerSource() as a script and pass its URL with setWorkerUrl(url) (allowed by worker-src).`,
        );
        return;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /**
   * Run a job on up to `maxThreads` threads and return when all of it is done. With
   * workersOnly (tests), the main thread only waits, so the workers must do every task.
   */
  run(desc: number, maxThreads: number, workersOnly = false): void {
    const c = this.ctrl;
    const used: number[] = [];
    const want = Math.min(this.threads, maxThreads) - 1;
    for (let w = 1; w < this.threads && used.length < want; w++) {
      const s = C_SLOTS + SLOT_WORDS * w;
      if (Atomics.load(c, s + S_READY) !== 1) continue;
      Atomics.store(c, s + S_DESC, desc);
      Atomics.store(c, s + S_STATE, POSTED);
      Atomics.notify(c, s + S_STATE, 1);
      used.push(s);
    }
    let err: unknown = null;
    try {
      if (!workersOnly || used.length === 0) this.runMain(desc, 0);
    } catch (e) {
      err = e;
    }
    for (const s of used) {
      if (!workersOnly && Atomics.compareExchange(c, s + S_STATE, POSTED, IDLE) === POSTED) continue; // never started
      let st = Atomics.load(c, s + S_STATE);
      for (let i = 0; i < MAIN_SPIN && st !== DONE; i++) st = Atomics.load(c, s + S_STATE);
      while (st !== DONE) {
        if (this.canWaitOnMain) Atomics.wait(c, s + S_STATE, st, 50);
        st = Atomics.load(c, s + S_STATE);
      }
      Atomics.store(c, s + S_STATE, IDLE);
    }
    if (err) throw err;
    if (Atomics.exchange(c, C_ERROR, 0) !== 0) throw new Error('wasm backend: a kernel failed in a worker thread');
  }

  /** Stop and terminate every worker. */
  terminate(): void {
    for (let w = 1; w < this.workers.length; w++) {
      const s = C_SLOTS + SLOT_WORDS * w;
      Atomics.store(this.ctrl, s + S_STATE, EXIT);
      Atomics.notify(this.ctrl, s + S_STATE);
      this.workers[w]?.terminate();
    }
    this.ctrl.fill(0);
    this.workers = [];
    this.threads = 1;
  }
}

function mainCanWait(ctrl: Int32Array): boolean {
  try {
    Atomics.wait(ctrl, C_ERROR, 1, 0); // value differs: returns 'not-equal' where waiting is allowed
    return true;
  } catch {
    return false; // browser main thread
  }
}
