// DataLoader: batches of NCHW float32 images and int32 labels, with seeded shuffling, drop-last,
// and decoding + augmentation either in-process (browsers, tiny datasets) or in a small pool of
// worker threads (Node) that work ahead of the consumer (prefetch).
//
// Determinism: epoch e's order is a permutation drawn from RNG(hash(seed, e)), and sample i's
// augmentation in epoch e draws from its own RNG(hash(seed, e, i)). Batches therefore depend only
// on (seed, epoch, batch index), never on the number of workers or on timing, and the loader's
// state is just {seed, epoch, batch}: save getState() in a checkpoint, setState() to resume exactly.
//
// This module is browser-safe: the worker pool (loader-pool.ts, node:worker_threads) registers itself
// (loader-wire.ts) when the Node entry or a Node-only dataset imports it; the browser never does.
import { ConfigError, ShapeError } from '../base/errors.js';
import { RNG } from '../base/rng.js';
import type { Dataset, Image, WorkerSpec } from './dataset.js';
import { workerPoolProvider, type BatchPayload, type BatchRunner } from './loader-wire.js';
import type { Transform, TransformSpec } from './transforms.js';

export { reviveError, type BatchPayload, type BatchRunner, type SerializedError } from './loader-wire.js';

export interface Batch {
  /** Images, NCHW float32 (uint8 images are scaled to [0, 1]). */
  x: Float32Array;
  shape: [number, number, number, number];
  y: Int32Array;
  /** Dataset indices of the samples. */
  indices: Int32Array;
  epoch: number;
  /** Batch number within the epoch. */
  index: number;
}

export interface LoaderState {
  seed: number;
  /** Epoch of the next batch. */
  epoch: number;
  /** Index within that epoch of the next batch. */
  batch: number;
}

export interface DataLoaderOptions {
  batchSize?: number;
  shuffle?: boolean;
  dropLast?: boolean;
  seed?: number;
  transform?: Transform | null;
  /** Worker threads for decoding/augmentation: 0 = in-process, 'auto' (default) picks by platform and dataset size. */
  numWorkers?: number | 'auto';
  /** Batches prepared ahead of the consumer (default 2 per worker, 2 in-process). */
  prefetch?: number;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of up to three uint32 values (seeds the per-epoch and per-sample RNGs). */
export function mixSeed(a: number, b: number, c = 0x5bd1e995): number {
  let h = fmix32((a >>> 0) ^ 0x9e3779b9);
  h = fmix32(h ^ (b >>> 0) ^ 0x7f4a7c15);
  h = fmix32(h ^ (c >>> 0) ^ 0x165667b1);
  return h;
}

/** The RNG a transform gets for dataset index i in epoch e. */
export function sampleRng(seed: number, epoch: number, index: number): RNG {
  return new RNG(mixSeed(seed, epoch, index));
}

/** Order of the dataset indices in an epoch. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): Int32Array {
  if (!shuffle) {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return p;
  }
  return new RNG(mixSeed(seed, epoch, 0xffffffff)).permutation(n);
}

/** Load, transform and stack one batch (used in-process and inside workers). */
export async function makeBatch(ds: Dataset, transform: Transform | null, seed: number, epoch: number, indices: Int32Array): Promise<BatchPayload> {
  const samples = await Promise.all(Array.from(indices, (i) => ds.get(i)));
  const n = indices.length;
  let x: Float32Array | null = null;
  let c = 0;
  let h = 0;
  let w = 0;
  const y = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    let img: Image = samples[k].image;
    if (transform) img = transform.apply(img, sampleRng(seed, epoch, indices[k]));
    if (x === null) {
      ({ c, h, w } = img);
      x = new Float32Array(n * c * h * w);
    } else if (img.c !== c || img.h !== h || img.w !== w) {
      throw new ShapeError(
        `batch images differ in size: index ${indices[0]} is ${c}x${h}x${w}, index ${indices[k]} is ${img.c}x${img.h}x${img.w}; add Resize/CenterCrop to the transform`,
      );
    }
    const off = k * c * h * w;
    if (img.data instanceof Float32Array) x.set(img.data, off);
    else {
      const d = img.data;
      for (let i = 0; i < d.length; i++) x[off + i] = d[i] / 255;
    }
    y[k] = samples[k].label;
  }
  return { x: x ?? new Float32Array(0), shape: [n, c, h, w], y };
}

function isNode(): boolean {
  const g = globalThis as { process?: { versions?: { node?: string } } };
  return typeof g.process?.versions?.node === 'string';
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly transform: Transform | null;
  private seed: number;
  private epoch = 0;
  private batch = 0;
  private readonly requestedWorkers: number | 'auto';
  private readonly prefetchOpt?: number;
  private runnerPromise: Promise<BatchRunner | null> | null = null;
  private closed = false;

  constructor(dataset: Dataset, opts: DataLoaderOptions = {}) {
    this.dataset = dataset;
    this.batchSize = opts.batchSize ?? 32;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new ConfigError(`batch size must be a positive integer, got ${opts.batchSize}`);
    this.shuffle = opts.shuffle ?? false;
    this.dropLast = opts.dropLast ?? false;
    this.seed = (opts.seed ?? 0) >>> 0;
    this.transform = opts.transform ?? null;
    this.requestedWorkers = opts.numWorkers ?? 'auto';
    if (this.requestedWorkers !== 'auto' && (!Number.isInteger(this.requestedWorkers) || this.requestedWorkers < 0)) {
      throw new ConfigError(`numWorkers must be a non-negative integer or 'auto', got ${opts.numWorkers}`);
    }
    this.prefetchOpt = opts.prefetch;
    if (dataset.length === 0) throw new ConfigError('DataLoader: the dataset is empty');
    if (this.dropLast && dataset.length < this.batchSize) {
      throw new ConfigError(`DataLoader: dropLast with batch size ${this.batchSize} leaves no batch from ${dataset.length} samples`);
    }
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  getState(): LoaderState {
    return { seed: this.seed, epoch: this.epoch, batch: this.batch };
  }

  setState(s: LoaderState): void {
    if (!Number.isInteger(s.epoch) || s.epoch < 0 || !Number.isInteger(s.batch) || s.batch < 0 || s.batch > this.length) {
      throw new ConfigError(`invalid loader state ${JSON.stringify(s)} (${this.length} batches per epoch)`);
    }
    this.seed = s.seed >>> 0;
    this.epoch = s.epoch;
    this.batch = s.batch;
    if (this.batch === this.length) {
      this.epoch++;
      this.batch = 0;
    }
  }

  /** Dataset indices of batch b of epoch e. */
  batchIndices(epoch: number, b: number, order = epochOrder(this.dataset.length, this.seed, epoch, this.shuffle)): Int32Array {
    const start = b * this.batchSize;
    return order.slice(start, Math.min(start + this.batchSize, order.length));
  }

  /**
   * Worker threads this loader will use: 0 means in-process; 'auto' (asked for, in Node, with a
   * serializable dataset and transform and at least 4 batches of data) means a pool whose size is
   * fixed when it starts: half the logical CPUs, 1 to 4.
   */
  workerCount(): number | 'auto' {
    const spec = this.dataset.workerSpec?.();
    const tspec = this.transform ? this.transform.spec() : null;
    const serializable = spec !== undefined && (this.transform === null || tspec !== null);
    if (this.requestedWorkers === 'auto') {
      return !workerPoolProvider() || !serializable || this.dataset.length < 4 * this.batchSize ? 0 : 'auto';
    }
    if (this.requestedWorkers > 0) {
      if (!isNode()) throw new ConfigError('worker threads for data loading are only available in Node.js; use numWorkers: 0');
      if (!workerPoolProvider()) throw new ConfigError("data-loading workers need the Node entry: import from 'resnet-ts' (not 'resnet-ts/browser'), or use numWorkers: 0");
      if (spec === undefined) throw new ConfigError('this dataset cannot be rebuilt in a worker (no workerSpec); use numWorkers: 0');
      if (this.transform && tspec === null) throw new ConfigError('the transform is not serializable (custom function); use numWorkers: 0 or give it a spec');
    }
    return this.requestedWorkers;
  }

  private async getRunner(): Promise<BatchRunner | null> {
    if (this.closed) throw new ConfigError('DataLoader is closed');
    if (!this.runnerPromise) {
      const n = this.workerCount();
      this.runnerPromise =
        n === 0
          ? Promise.resolve(null)
          : workerPoolProvider()!.create(
              n === 'auto' ? workerPoolProvider()!.autoCount() : n,
              this.dataset.workerSpec!() as WorkerSpec,
              this.transform ? (this.transform.spec() as TransformSpec) : null,
            );
    }
    return this.runnerPromise;
  }

  /**
   * Batches of one epoch from `startBatch` (default: the current state when epoch is the current
   * epoch, else 0). The loader state follows: after a batch is yielded it points past it, and after
   * the last one it points to the start of the next epoch.
   */
  async *epochBatches(epoch = this.epoch, startBatch = epoch === this.epoch ? this.batch : 0): AsyncGenerator<Batch> {
    const runner = await this.getRunner();
    const nb = this.length;
    const order = epochOrder(this.dataset.length, this.seed, epoch, this.shuffle);
    const seed = this.seed;
    const prefetch = Math.max(1, this.prefetchOpt ?? (runner ? 2 * runner.size : 2));
    const run = (b: number): Promise<BatchPayload> => {
      const idx = this.batchIndices(epoch, b, order);
      return runner ? runner.run(seed, epoch, idx) : makeBatch(this.dataset, this.transform, seed, epoch, idx);
    };
    const pending = new Map<number, Promise<BatchPayload>>();
    let next = startBatch;
    const launch = () => {
      while (next < nb && pending.size < prefetch) {
        const p = run(next);
        p.catch(() => {}); // handled when awaited; avoids unhandled rejections on early exit
        pending.set(next, p);
        next++;
      }
    };
    try {
      launch();
      for (let b = startBatch; b < nb; b++) {
        const payload = await pending.get(b)!;
        pending.delete(b);
        launch();
        this.epoch = epoch;
        this.batch = b + 1;
        if (this.batch === nb) {
          this.epoch = epoch + 1;
          this.batch = 0;
        }
        yield { ...payload, indices: this.batchIndices(epoch, b, order), epoch, index: b };
      }
    } finally {
      pending.clear();
    }
  }

  /** Iterates the rest of the current epoch (see getState). */
  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.epochBatches();
  }

  /** Stop the worker threads (the loader cannot be used afterwards). */
  async close(): Promise<void> {
    this.closed = true;
    const r = this.runnerPromise ? await this.runnerPromise.catch(() => null) : null;
    this.runnerPromise = null;
    if (r) await r.close();
  }
}
