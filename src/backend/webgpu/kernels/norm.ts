// WebGPU kernels: batchNormTrain, batchNormEval, batchNormEvalBackward, batchNormUpdateStats, batchNormTrainBackward. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
import type { GpuRuntime, GpuStorage } from '../runtime.js';
import { notYet } from './not-yet.js';

export function batchNormTrain(
  rt: GpuRuntime,
  x: GpuStorage,
  gamma: GpuStorage | null,
  beta: GpuStorage | null,
  y: GpuStorage,
  saveMean: GpuStorage,
  saveInvStd: GpuStorage,
  batchVar: GpuStorage,
  N: number,
  C: number,
  HW: number,
  eps: number,
): void {
  notYet('batchNormTrain', rt, x, gamma, beta, y, saveMean, saveInvStd, batchVar, N, C, HW, eps);
}

export function batchNormEval(
  rt: GpuRuntime,
  x: GpuStorage,
  gamma: GpuStorage | null,
  beta: GpuStorage | null,
  mean: GpuStorage,
  variance: GpuStorage,
  y: GpuStorage,
  N: number,
  C: number,
  HW: number,
  eps: number,
): void {
  notYet('batchNormEval', rt, x, gamma, beta, mean, variance, y, N, C, HW, eps);
}

export function batchNormEvalBackward(
  rt: GpuRuntime,
  dy: GpuStorage,
  x: GpuStorage,
  gamma: GpuStorage | null,
  mean: GpuStorage,
  variance: GpuStorage,
  dx: GpuStorage | null,
  dgamma: GpuStorage | null,
  N: number,
  C: number,
  HW: number,
  eps: number,
): void {
  notYet('batchNormEvalBackward', rt, dy, x, gamma, mean, variance, dx, dgamma, N, C, HW, eps);
}

export function batchNormUpdateStats(
  rt: GpuRuntime,
  runningMean: GpuStorage,
  runningVar: GpuStorage,
  batchMean: GpuStorage,
  batchVar: GpuStorage,
  momentum: number,
  count: number,
): void {
  notYet('batchNormUpdateStats', rt, runningMean, runningVar, batchMean, batchVar, momentum, count);
}

export function batchNormTrainBackward(
  rt: GpuRuntime,
  dy: GpuStorage,
  x: GpuStorage,
  gamma: GpuStorage | null,
  saveMean: GpuStorage,
  saveInvStd: GpuStorage,
  dx: GpuStorage,
  dgamma: GpuStorage | null,
  dbeta: GpuStorage | null,
  N: number,
  C: number,
  HW: number,
): void {
  notYet('batchNormTrainBackward', rt, dy, x, gamma, saveMean, saveInvStd, dx, dgamma, dbeta, N, C, HW);
}
