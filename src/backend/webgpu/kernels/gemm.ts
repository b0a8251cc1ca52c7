// WebGPU kernels: gemm. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
import type { GpuRuntime, GpuStorage } from '../runtime.js';
import { notYet } from './not-yet.js';

export function gemm(
  rt: GpuRuntime,
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  A: GpuStorage,
  B: GpuStorage,
  C: GpuStorage,
  accumulate: boolean,
): void {
  notYet('gemm', rt, transA, transB, M, N, K, A, B, C, accumulate);
}
