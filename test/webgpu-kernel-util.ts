// Shared by the webgpu kernel tests (gemm, conv): closeness scaled by the result's magnitude, and
// uploads to the webgpu backend.
import { assertClose } from './helpers.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import type { GpuStorage } from '../src/backend/webgpu/runtime.js';

/** max |actual - expected| <= tol · max |expected|: f32 sums in another order differ in the last bits. */
export function assertScaled(actual: Float32Array, expected: Float32Array, tol: number, what: string): void {
  let mag = 0;
  for (const v of expected) mag = Math.max(mag, Math.abs(v));
  assertClose(actual, expected, 0, tol * Math.max(mag, 1e-30), what);
}

/** A webgpu buffer holding v. */
export function upload(gpu: WebGpuBackend, v: Float32Array): GpuStorage {
  const s = gpu.alloc(v.length);
  gpu.write(s, v);
  return s;
}
