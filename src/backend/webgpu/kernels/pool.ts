// WebGPU kernels: maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward, adaptiveAvgPool2d, adaptiveAvgPool2dBackward. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
import type { GpuRuntime, GpuStorage } from '../runtime.js';
import type { Pool2dParams } from '../../backend.js';
import { notYet } from './not-yet.js';

export function maxPool2d(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, p: Pool2dParams): void {
  notYet('maxPool2d', rt, x, y, p);
}

export function maxPool2dBackward(rt: GpuRuntime, x: GpuStorage, dy: GpuStorage, dx: GpuStorage, p: Pool2dParams): void {
  notYet('maxPool2dBackward', rt, x, dy, dx, p);
}

export function avgPool2d(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, p: Pool2dParams): void {
  notYet('avgPool2d', rt, x, y, p);
}

export function avgPool2dBackward(rt: GpuRuntime, dy: GpuStorage, dx: GpuStorage, p: Pool2dParams): void {
  notYet('avgPool2dBackward', rt, dy, dx, p);
}

export function adaptiveAvgPool2d(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, N: number, C: number, H: number, W: number, OH: number, OW: number): void {
  notYet('adaptiveAvgPool2d', rt, x, y, N, C, H, W, OH, OW);
}

export function adaptiveAvgPool2dBackward(
  rt: GpuRuntime,
  dy: GpuStorage,
  dx: GpuStorage,
  N: number,
  C: number,
  H: number,
  W: number,
  OH: number,
  OW: number,
): void {
  notYet('adaptiveAvgPool2dBackward', rt, dy, dx, N, C, H, W, OH, OW);
}
