// Node worker-thread pool for the DataLoader: each worker rebuilds the dataset and the transform
// from their specs once, then turns lists of indices into finished batches (decode, augment,
// stack), which come back as transferred buffers (no copy). Idle workers are unref'd so a process
// that forgets loader.close() still exits. Node-only: importing this module registers the pool
// (setWorkerPoolProvider); the Node entry and the Node-only datasets do, the browser entry never.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../base/errors.js';
import type { WorkerSpec } from './dataset.js';
import type { TransformSpec } from './transforms.js';
import { reviveError, setWorkerPoolProvider, type BatchPayload, type BatchRunner, type SerializedError } from './loader-wire.js';
import { setSpecModuleImporter } from './spec-module.js';

interface Task {
  id: number;
  seed: number;
  epoch: number;
  indices: Int32Array;
  resolve: (b: BatchPayload) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  task: Task | null;
}

type FromWorker =
  | { type: 'ready' }
  | { type: 'init-error'; error: SerializedError }
  | ({ type: 'done'; id: number } & BatchPayload)
  | { type: 'error'; id: number; error: SerializedError };

const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './loader-worker.ts' : './loader-worker.js', import.meta.url);

/** Start a worker; when running from TypeScript sources (tsx), the worker registers tsx's loader first. */
function spawn(workerData: unknown): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER_URL, { workerData });
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL.href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

class WorkerPool implements BatchRunner {
  private slots: Slot[] = [];
  private queue: Task[] = [];
  private nextId = 0;
  private failed: Error | null = null;
  private closing = false;

  get size(): number {
    return this.slots.length;
  }

  async start(n: number, dataset: WorkerSpec, transform: TransformSpec | null): Promise<void> {
    const ready: Promise<void>[] = [];
    for (let k = 0; k < n; k++) {
      const worker = spawn({ dataset, transform });
      const slot: Slot = { worker, task: null };
      this.slots.push(slot);
      ready.push(
        new Promise<void>((resolve, reject) => {
          const onMsg = (m: FromWorker) => {
            if (m.type === 'ready') resolve();
            else if (m.type === 'init-error') reject(reviveError(m.error));
            else this.onMessage(slot, m);
          };
          worker.on('message', onMsg);
          worker.on('error', (e) => {
            reject(e);
            this.fail(slot, e);
          });
          worker.on('exit', (code) => {
            const e = new ConfigError(`data loader worker exited (code ${code})`);
            reject(e);
            if (!this.closing) this.fail(slot, e);
          });
        }),
      );
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await this.close();
      throw e;
    }
    for (const s of this.slots) s.worker.unref();
  }

  run(seed: number, epoch: number, indices: Int32Array): Promise<BatchPayload> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closing) return Promise.reject(new ConfigError('DataLoader is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, seed, epoch, indices, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const s of this.slots) {
      if (s.task || this.queue.length === 0) continue;
      const t = this.queue.shift()!;
      s.task = t;
      s.worker.ref();
      s.worker.postMessage({ id: t.id, seed: t.seed, epoch: t.epoch, indices: t.indices });
    }
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    const t = slot.task;
    if (!t || (m.type !== 'done' && m.type !== 'error') || m.id !== t.id) return;
    slot.task = null;
    if (m.type === 'done') t.resolve({ x: m.x, shape: m.shape, y: m.y });
    else t.reject(reviveError(m.error));
    if (this.queue.length) this.dispatch();
    else if (!this.closing) slot.worker.unref();
  }

  private fail(slot: Slot, e: Error): void {
    this.failed ??= e;
    slot.task?.reject(e);
    slot.task = null;
    for (const t of this.queue.splice(0)) t.reject(e);
    for (const s of this.slots) {
      s.task?.reject(e);
      s.task = null;
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    const e = new ConfigError('DataLoader is closed');
    for (const t of this.queue.splice(0)) t.reject(e);
    await Promise.all(
      this.slots.map((s) => {
        s.worker.ref(); // an unref'd worker would not keep the loop alive until it has exited
        return s.worker.terminate();
      }),
    );
    this.slots = [];
  }
}

export async function createWorkerPool(n: number, dataset: WorkerSpec, transform: TransformSpec | null): Promise<BatchRunner> {
  const pool = new WorkerPool();
  await pool.start(n, dataset, transform);
  return pool;
}

/** Default pool size: half the logical CPUs (the other half trains), 1 to 4. */
export function autoWorkerCount(): number {
  return Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));
}

setWorkerPoolProvider({ create: createWorkerPool, autoCount: autoWorkerCount });
setSpecModuleImporter((url) => import(url) as Promise<Record<string, unknown>>);
