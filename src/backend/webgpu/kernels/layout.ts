// WebGPU kernels: subsamplePadChannels. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
import type { GpuRuntime, GpuStorage } from '../runtime.js';
import { notYet } from './not-yet.js';

export function subsamplePadChannels(
  rt: GpuRuntime,
  x: GpuStorage,
  y: GpuStorage,
  N: number,
  C: number,
  H: number,
  W: number,
  stride: number,
  padBefore: number,
  padAfter: number,
  backward: boolean,
): void {
  notYet('subsamplePadChannels', rt, x, y, N, C, H, W, stride, padBefore, padAfter, backward);
}
