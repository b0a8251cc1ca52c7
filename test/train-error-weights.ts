// The synthetic weights and input of scripts/make_train_error_fixtures.py, reproduced bit for bit:
// value i of entry `name` comes from a 32-bit hash of (FNV-1a(name), i), scaled in float64 and
// rounded once to float32, exactly as NumPy does it there. No weights are stored.
import type { ArrayMap, NamedArray } from '../src/io/types.js';

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** n float32 values in [center - bound, center + bound). */
export function hashed(name: string, n: number, bound: number, center = 0): Float32Array {
  const s = fnv1a(name);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let h = (Math.imul(i, 2654435761) + s) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
    h = Math.imul(h, 0x45d9f3b) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
    out[i] = ((h / 4294967296) * 2 - 1) * bound + center;
  }
  return out;
}

/** The synthetic value of one state-dict entry (see value_of in the Python script). */
export function syntheticEntry(name: string, shape: readonly number[]): NamedArray {
  const n = shape.reduce((a, b) => a * b, 1);
  const leaf = name.slice(name.lastIndexOf('.') + 1);
  const arr = (data: Float32Array, dtype: 'F32' | 'I64' = 'F32'): NamedArray => ({ dtype, shape: [...shape], data });
  if (leaf === 'num_batches_tracked') return arr(new Float32Array(n), 'I64');
  if (leaf === 'running_mean') return arr(new Float32Array(n));
  if (leaf === 'running_var') return arr(new Float32Array(n).fill(1));
  if (shape.length >= 2) return arr(hashed(name, n, Math.sqrt(6 / (n / shape[0]))));
  if (name.startsWith('fc.')) return arr(hashed(name, n, 1 / Math.sqrt(512)));
  if (leaf === 'weight') return arr(hashed(name, n, 0.5, 1));
  return arr(hashed(name, n, 0.5));
}

export function syntheticStateDict(shapes: Iterable<[string, readonly number[]]>): ArrayMap {
  const out: ArrayMap = new Map();
  for (const [k, s] of shapes) out.set(k, syntheticEntry(k, s));
  return out;
}
