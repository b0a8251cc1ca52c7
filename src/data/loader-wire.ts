// What the loader and its worker pool exchange (batches, errors, the runner interface, the pool's
// registration), in a module of its own so that loader-pool.ts and loader.ts do not import each
// other. Browser-safe.
import { ConfigError, FormatError, ResnetError, ShapeError, StateDictError } from '../base/errors.js';
import type { WorkerSpec } from './dataset.js';
import type { TransformSpec } from './transforms.js';

/** A batch as produced by a worker or in-process, before epoch/index are attached. */
export interface BatchPayload {
  x: Float32Array;
  shape: [number, number, number, number];
  y: Int32Array;
}

export interface SerializedError {
  name: string;
  message: string;
}

/** Rebuild an error thrown in a worker as the same resnet-ts class. */
export function reviveError(e: SerializedError): Error {
  const classes: Record<string, new (m: string) => Error> = {
    FormatError, ConfigError, ShapeError, StateDictError, ResnetError, RangeError, TypeError,
  };
  const Cls = classes[e.name] ?? Error;
  return new Cls(e.message);
}

/** What a worker pool must offer (loader-pool.ts implements it over node:worker_threads). */
export interface BatchRunner {
  readonly size: number;
  run(seed: number, epoch: number, indices: Int32Array): Promise<BatchPayload>;
  close(): Promise<void>;
}

/** Starts worker pools (loader-pool.ts in Node). */
export interface WorkerPoolProvider {
  create(n: number, dataset: WorkerSpec, transform: TransformSpec | null): Promise<BatchRunner>;
  /** Pool size for numWorkers 'auto'. */
  autoCount(): number;
}

let poolProvider: WorkerPoolProvider | null = null;

/**
 * Called by loader-pool.ts when it is imported (the Node entry and the Node-only datasets import
 * it), so that no import of it, static or dynamic, is reachable from the browser entry.
 */
export function setWorkerPoolProvider(p: WorkerPoolProvider | null): void {
  poolProvider = p;
}

export function workerPoolProvider(): WorkerPoolProvider | null {
  return poolProvider;
}
