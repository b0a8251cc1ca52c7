// Shape helpers. Shapes are plain number arrays, NCHW for images, row-major contiguous storage.
import { ShapeError } from './errors.js';

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** ShapeError unless every dim is a non-negative safe integer (no -1 wildcards, no NaN). */
export function checkShape(s: Shape): void {
  if (!Array.isArray(s) || !s.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ShapeError(`invalid shape ${Array.isArray(s) ? `[${s.join(', ')}]` : String(s)}: every dimension must be a non-negative integer`);
  }
}

export function shapeStr(s: Shape): string {
  return `[${s.join(', ')}]`;
}

/** A model's input check: an image batch [N, C, H, W] with C = inChannels (ShapeError naming both otherwise). */
export function checkImageInput(shape: Shape, inChannels: number): void {
  if (shape.length !== 4 || shape[1] !== inChannels) {
    throw new ShapeError(`the model expects ${inChannels} input channel(s), the input has shape ${shapeStr(shape)} (want [N, ${inChannels}, H, W])`);
  }
}

/** NumPy broadcasting of two shapes; throws ShapeError naming both when they do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Output size of a conv/pool window: floor((in + 2P - D*(K-1) - 1)/S) + 1. */
export function convOutSize(inSize: number, k: number, s: number, p: number, d = 1, ceil = false): number {
  const eff = d * (k - 1) + 1;
  const span = inSize + 2 * p - eff;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // PyTorch: with ceil_mode the last window must start inside the input or left padding.
  if (ceil && (out - 1) * s >= inSize + p) out--;
  return out;
}

/** Resolve a possibly negative axis. */
export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new ShapeError(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** A size given as n or [h, w] (PyTorch's int-or-tuple arguments), as [h, w]; `fallback` when undefined. */
export function toPair(v: number | readonly [number, number] | undefined, fallback = 1): [number, number] {
  return v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
}
