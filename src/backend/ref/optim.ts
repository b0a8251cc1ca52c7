// Optimizer updates, in place: the backend's own kernel where it has one (wasm: SIMD jobs, webgpu:
// WGSL), else these host loops over RefBackend views (ref, and movingAverage on wasm). They live
// outside the RefBackend class so that a page that only runs inference does not bundle them
// (bundlers cannot drop a class's unused methods); only optim/ and train/ema.ts import this module.
import type { Backend, Storage } from '../backend.js';
import { RefBackend } from './ref.js';

function host(be: Backend, op: string): RefBackend {
  if (be instanceof RefBackend) return be;
  throw new Error(`backend '${be.name}' has no ${op} kernel`);
}

/** PyTorch SGD: g = grad + wd*p; buf = momentum*buf + (1-dampening)*g (buf = g when first); g = nesterov ? g + momentum*buf : buf; p -= lr*g. */
export function sgdStep(
  be: Backend,
  paramH: Storage,
  gradH: Storage,
  bufH: Storage | null,
  lr: number,
  momentum: number,
  dampening: number,
  weightDecay: number,
  nesterov: boolean,
  first: boolean,
): void {
  if (be.sgdStep) return be.sgdStep(paramH, gradH, bufH, lr, momentum, dampening, weightDecay, nesterov, first);
  const r = host(be, 'sgdStep');
  const param = r.view(paramH);
  const grad = r.view(gradH);
  const buf = bufH ? r.view(bufH) : null;
  for (let i = 0; i < param.length; i++) {
    let g = grad[i] + weightDecay * param[i];
    if (buf && momentum !== 0) {
      const b = first ? g : momentum * buf[i] + (1 - dampening) * g;
      buf[i] = b;
      g = nesterov ? g + momentum * b : b;
    }
    param[i] -= lr * g;
  }
}

/** avg = decay*avg + (1-decay)*x (a model's weight average, train/ema.ts). */
export function movingAverage(be: Backend, avgH: Storage, xH: Storage, decay: number): void {
  if (be.movingAverage) return be.movingAverage(avgH, xH, decay);
  const r = host(be, 'movingAverage');
  const avg = r.view(avgH);
  const x = r.view(xH);
  const e = 1 - decay;
  for (let i = 0; i < avg.length; i++) avg[i] = decay * avg[i] + e * x[i];
}

/** PyTorch Adam/AdamW step (step counts from 1). decoupled=true is AdamW. */
export function adamStep(
  be: Backend,
  paramH: Storage,
  gradH: Storage,
  mH: Storage,
  vH: Storage,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  step: number,
  decoupled: boolean,
): void {
  if (be.adamStep) return be.adamStep(paramH, gradH, mH, vH, lr, beta1, beta2, eps, weightDecay, step, decoupled);
  const r = host(be, 'adamStep');
  const param = r.view(paramH);
  const grad = r.view(gradH);
  const m = r.view(mH);
  const v = r.view(vH);
  const bc1 = 1 - Math.pow(beta1, step),
    bc2 = 1 - Math.pow(beta2, step);
  for (let i = 0; i < param.length; i++) {
    let g = grad[i];
    if (decoupled) param[i] *= 1 - lr * weightDecay;
    else g += weightDecay * param[i];
    m[i] = beta1 * m[i] + (1 - beta1) * g;
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    const denom = Math.sqrt(v[i] / bc2) + eps;
    param[i] -= (lr / bc1) * (m[i] / denom);
  }
}
