// WebGPU kernels: sgdStep, movingAverage, adamStep. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
import type { GpuRuntime, GpuStorage } from '../runtime.js';
import { notYet } from './not-yet.js';

export function sgdStep(
  rt: GpuRuntime,
  param: GpuStorage,
  grad: GpuStorage,
  buf: GpuStorage | null,
  lr: number,
  momentum: number,
  dampening: number,
  weightDecay: number,
  nesterov: boolean,
  first: boolean,
): void {
  notYet('sgdStep', rt, param, grad, buf, lr, momentum, dampening, weightDecay, nesterov, first);
}

export function movingAverage(rt: GpuRuntime, avg: GpuStorage, x: GpuStorage, decay: number): void {
  notYet('movingAverage', rt, avg, x, decay);
}

export function adamStep(
  rt: GpuRuntime,
  param: GpuStorage,
  grad: GpuStorage,
  m: GpuStorage,
  v: GpuStorage,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  step: number,
  decoupled: boolean,
): void {
  notYet('adamStep', rt, param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step, decoupled);
}
