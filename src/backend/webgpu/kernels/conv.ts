// WebGPU kernels: conv2d, conv2dFused, conv2dBackwardData, conv2dBackwardFilter. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
import type { GpuRuntime, GpuStorage } from '../runtime.js';
import type { Conv2dParams } from '../../backend.js';
import { notYet } from './not-yet.js';

export function conv2d(rt: GpuRuntime, x: GpuStorage, w: GpuStorage, bias: GpuStorage | null, y: GpuStorage, p: Conv2dParams): void {
  notYet('conv2d', rt, x, w, bias, y, p);
}

export function conv2dFused(
  rt: GpuRuntime,
  x: GpuStorage,
  w: GpuStorage,
  bias: GpuStorage | null,
  y: GpuStorage,
  p: Conv2dParams,
  relu: boolean,
  residual: GpuStorage | null,
  constWeights: boolean,
): void {
  notYet('conv2dFused', rt, x, w, bias, y, p, relu, residual, constWeights);
}

export function conv2dBackwardData(rt: GpuRuntime, dy: GpuStorage, w: GpuStorage, dx: GpuStorage, p: Conv2dParams): void {
  notYet('conv2dBackwardData', rt, dy, w, dx, p);
}

export function conv2dBackwardFilter(rt: GpuRuntime, x: GpuStorage, dy: GpuStorage, dw: GpuStorage, p: Conv2dParams): void {
  notYet('conv2dBackwardFilter', rt, x, dy, dw, p);
}
