// WebGPU kernels: sgdStep, movingAverage, adamStep, elementwise and in place (kernels/eltwise.ts's
// map). The ref backend's kernel of the same name is the oracle (src/backend/ref/ref.ts); the ref
// computes each element in float64 and rounds once, here it is float32 throughout (a few ulps).
import type { GpuRuntime, GpuStorage } from '../runtime.js';
import { map } from './eltwise.js';

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
  const withBuf = buf !== null && momentum !== 0;
  // PyTorch: buf = g on the first step, momentum*buf + (1-dampening)*g after
  const momentumStep = first ? 'b = g;' : 'b = u.momentum * b + u.keep * g;';
  map(rt, {
    key: `sgd-${withBuf ? (first ? 'first' : 'momentum') : 'plain'}-${nesterov && withBuf ? 'nesterov' : ''}`,
    n: param.length,
    ins: withBuf ? { p: param, g0: grad, b: buf } : { p: param, g0: grad },
    outs: withBuf ? { p: param, b: buf } : { p: param },
    params: { lr, momentum, keep: 1 - dampening, wd: weightDecay },
    body: `var g = g0 + u.wd * p;
  ${withBuf ? `${momentumStep} ${nesterov ? 'g = g + u.momentum * b;' : 'g = b;'}` : ''}
  p = p - u.lr * g;`,
  });
}

export function movingAverage(rt: GpuRuntime, avg: GpuStorage, x: GpuStorage, decay: number): void {
  map(rt, {
    key: 'moving-average',
    n: avg.length,
    ins: { a: avg, x },
    outs: { a: avg },
    params: { decay, rest: 1 - decay },
    body: 'a = u.decay * a + u.rest * x;',
  });
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
  // bias corrections on the host in float64, as PyTorch's (non-capturable) Adam does
  const bc1 = 1 - Math.pow(beta1, step),
    bc2 = 1 - Math.pow(beta2, step);
  map(rt, {
    key: `adam-${decoupled ? 'decoupled' : 'l2'}`,
    n: param.length,
    ins: { p: param, g0: grad, m, v },
    outs: { p: param, m, v },
    params: { b1: beta1, rb1: 1 - beta1, b2: beta2, rb2: 1 - beta2, eps, wd: weightDecay, decay: 1 - lr * weightDecay, stepSize: lr / bc1, bc2 },
    body: `var g = g0;
  ${decoupled ? 'p = p * u.decay;' : 'g = g + u.wd * p;'}
  m = u.b1 * m + u.rb1 * g;
  v = u.b2 * v + u.rb2 * g * g;
  p = p - u.stepSize * (m / (sqrt(v / u.bc2) + u.eps));`,
  });
}
