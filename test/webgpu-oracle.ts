// Shared by the webgpu kernel tests of norm, pool and softmax: the webgpu backend (Dawn; llvmpipe
// through OpenGL on a machine without a GPU) or the reason to skip where there is none (as
// webgpu-env.ts), uploads, downloads with a leak check, and the worst-element report.
import assert from 'node:assert/strict';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { webgpuSkipReason, webgpuForTests } from './webgpu-env.js';
import type { GpuStorage } from '../src/backend/webgpu/runtime.js';
import { RNG } from '../src/base/rng.js';

export { assertClose } from './helpers.js';

/** false, or why there is no webgpu here (pass as the test's `skip` option). */
export const skip = await webgpuSkipReason();
export const gpu = (): Promise<WebGpuBackend> => webgpuForTests();

export function up(b: WebGpuBackend, a: ArrayLike<number>): GpuStorage {
  const s = b.alloc(a.length);
  if (a.length > 0) b.write(s, a);
  return s;
}

export function rand(rng: RNG, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(lo, hi);
  return a;
}

/** Runs fn (which records kernels), downloads the named outputs, frees everything, and checks no float was leaked. */
export async function onGpu(
  b: WebGpuBackend,
  inputs: Record<string, ArrayLike<number> | null>,
  fn: (s: Record<string, GpuStorage | null>) => void,
): Promise<Record<string, Float32Array>> {
  const before = b.allocatedFloats();
  const s: Record<string, GpuStorage | null> = {};
  for (const [k, v] of Object.entries(inputs)) s[k] = v ? up(b, v) : null;
  fn(s);
  const out: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(s)) if (v) out[k] = await b.read(v);
  for (const v of Object.values(s)) if (v) b.free(v);
  assert.equal(b.allocatedFloats(), before, 'kernel left GPU buffers allocated');
  return out;
}

/** Largest |got - want| / (1 + |want|) (for reporting measured errors). */
export function maxErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < got.length; i++) e = Math.max(e, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  return e;
}
