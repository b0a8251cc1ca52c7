// What the loader and its worker pool exchange (batches, errors, the runner interface), in a
// module of its own so that loader-pool.ts (loaded lazily by loader.ts) does not import loader.ts
// back. Browser-safe.
import { ConfigError, FormatError, ResnetError, ShapeError, StateDictError } from '../base/errors.js';

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
