// Dataset basics, browser-safe. A dataset maps an index to a sample: one image (CHW, uint8 as
// decoded or float32) and an integer label. Datasets that can be rebuilt inside a worker thread say
// how through workerSpec(): a module URL, the name of an exported async factory, and structured-
// cloneable arguments (SharedArrayBuffer-backed arrays are shared, not copied).
import { ConfigError } from '../base/errors.js';
import { RNG } from '../base/rng.js';
import { importSpecModule } from './spec-module.js';

/** One image, channels-first (CHW). uint8 straight from a decoder, float32 after ToFloat. */
export interface Image {
  data: Float32Array | Uint8Array;
  c: number;
  h: number;
  w: number;
}

/** A float image (what Normalize and the model see). */
export interface FloatImage extends Image {
  data: Float32Array;
}

export interface Sample {
  image: Image;
  label: number;
}

export interface WorkerSpec {
  /** URL of the module exporting the factory (normally the dataset module's import.meta.url). */
  module: string;
  /** Name of an exported function `(args) => Dataset | Promise<Dataset>`. */
  factory: string;
  args: unknown;
}

export interface Dataset {
  readonly length: number;
  /** Class names, index = label. */
  readonly classes?: readonly string[];
  get(i: number): Sample | Promise<Sample>;
  /** Label of sample i without decoding the image (used by stratified splits). */
  label?(i: number): number;
  /** How a worker thread rebuilds this dataset; absent means in-process only. */
  workerSpec?(): WorkerSpec | undefined;
}

/** Rebuild a dataset from its worker spec (used inside loader workers). */
export async function datasetFromSpec(spec: WorkerSpec): Promise<Dataset> {
  const mod = await importSpecModule(spec.module);
  const f = mod[spec.factory];
  if (typeof f !== 'function') throw new ConfigError(`dataset factory '${spec.factory}' not exported by ${spec.module}`);
  return await (f as (a: unknown) => Dataset | Promise<Dataset>)(spec.args);
}

/** Allocate a Uint8Array on a SharedArrayBuffer when the platform allows it (so workers share it). */
export function sharedBytes(n: number): Uint8Array {
  if (typeof SharedArrayBuffer !== 'undefined') {
    try {
      return new Uint8Array(new SharedArrayBuffer(n));
    } catch {
      // not cross-origin isolated (browsers): fall through
    }
  }
  return new Uint8Array(n);
}

function checkIndex(i: number, n: number, what: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`${what}: index ${i} out of range [0, ${n})`);
}

/**
 * Images held in memory as one uint8 array of N×C×H×W, with integer labels. Fashion-MNIST is one of
 * these; get() returns a uint8 view (no copy), so transforms must not write into their input.
 */
export class ArrayImageDataset implements Dataset {
  readonly length: number;
  constructor(
    readonly images: Uint8Array,
    readonly labels: Uint8Array | Int32Array,
    readonly c: number,
    readonly h: number,
    readonly w: number,
    readonly classes?: readonly string[],
  ) {
    this.length = labels.length;
    if (images.length !== labels.length * c * h * w) {
      throw new ConfigError(`ArrayImageDataset: ${images.length} pixel values do not fit ${labels.length} images of ${c}x${h}x${w}`);
    }
  }

  get(i: number): Sample {
    checkIndex(i, this.length, 'ArrayImageDataset');
    const sz = this.c * this.h * this.w;
    return { image: { data: this.images.subarray(i * sz, (i + 1) * sz), c: this.c, h: this.h, w: this.w }, label: this.labels[i] };
  }

  label(i: number): number {
    return this.labels[i];
  }

  workerSpec(): WorkerSpec {
    return {
      module: import.meta.url,
      factory: 'arrayImageDatasetFromSpec',
      args: { images: this.images, labels: this.labels, c: this.c, h: this.h, w: this.w, classes: this.classes },
    };
  }
}

export function arrayImageDatasetFromSpec(a: {
  images: Uint8Array; labels: Uint8Array | Int32Array; c: number; h: number; w: number; classes?: string[];
}): ArrayImageDataset {
  return new ArrayImageDataset(a.images, a.labels, a.c, a.h, a.w, a.classes);
}

/** A view of some indices of another dataset. */
export class Subset implements Dataset {
  readonly length: number;
  constructor(readonly dataset: Dataset, readonly indices: Int32Array) {
    this.length = indices.length;
    for (const i of indices) checkIndex(i, dataset.length, 'Subset');
  }
  get classes(): readonly string[] | undefined {
    return this.dataset.classes;
  }
  get(i: number): Sample | Promise<Sample> {
    checkIndex(i, this.length, 'Subset');
    return this.dataset.get(this.indices[i]);
  }
  label(i: number): number {
    if (!this.dataset.label) throw new ConfigError('Subset.label: the underlying dataset cannot give labels without decoding');
    return this.dataset.label(this.indices[i]);
  }
  workerSpec(): WorkerSpec | undefined {
    const parent = this.dataset.workerSpec?.();
    if (!parent) return undefined;
    return { module: import.meta.url, factory: 'subsetFromSpec', args: { parent, indices: this.indices } };
  }
}

export async function subsetFromSpec(a: { parent: WorkerSpec; indices: Int32Array }): Promise<Subset> {
  return new Subset(await datasetFromSpec(a.parent), a.indices);
}

/** Labels of every sample (needs dataset.label). */
export function labelsOf(ds: Dataset): Int32Array {
  if (!ds.label) throw new ConfigError('this dataset cannot list labels without decoding images');
  const out = new Int32Array(ds.length);
  for (let i = 0; i < ds.length; i++) out[i] = ds.label(i);
  return out;
}

/**
 * Seeded train/validation split. Stratified (the default when labels are available) keeps each
 * class's share: round(valFraction × count) of every class with at least two samples goes to
 * validation, at least one. Indices within each part stay in ascending order.
 */
export function trainValSplit(
  ds: Dataset,
  valFraction: number,
  opts: { seed?: number; stratified?: boolean } = {},
): { train: Subset; val: Subset } {
  if (!(valFraction > 0 && valFraction < 1)) throw new ConfigError(`validation fraction must be in (0, 1), got ${valFraction}`);
  const rng = new RNG(opts.seed ?? 0);
  const stratified = opts.stratified ?? ds.label !== undefined;
  const isVal = new Uint8Array(ds.length);
  if (stratified) {
    const labels = labelsOf(ds);
    const byClass = new Map<number, number[]>();
    labels.forEach((y, i) => {
      let l = byClass.get(y);
      if (!l) byClass.set(y, (l = []));
      l.push(i);
    });
    for (const y of [...byClass.keys()].sort((a, b) => a - b)) {
      const idx = byClass.get(y)!;
      if (idx.length < 2) continue;
      const k = Math.min(idx.length - 1, Math.max(1, Math.round(valFraction * idx.length)));
      const perm = rng.permutation(idx.length);
      for (let j = 0; j < k; j++) isVal[idx[perm[j]]] = 1;
    }
  } else {
    const k = Math.min(ds.length - 1, Math.max(1, Math.round(valFraction * ds.length)));
    const perm = rng.permutation(ds.length);
    for (let j = 0; j < k; j++) isVal[perm[j]] = 1;
  }
  const tr: number[] = [];
  const va: number[] = [];
  for (let i = 0; i < ds.length; i++) (isVal[i] ? va : tr).push(i);
  return { train: new Subset(ds, Int32Array.from(tr)), val: new Subset(ds, Int32Array.from(va)) };
}
