// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_): the norm of all gradients
// together; when it exceeds maxNorm every gradient is scaled by maxNorm / (norm + 1e-6).
import { ConfigError } from '../base/errors.js';
import type { Tensor } from '../tensor/tensor.js';

/** Returns the total norm before clipping (NaN or Infinity when a gradient is not finite). */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType: number | 'inf' = 2): number {
  if (!(maxNorm > 0)) throw new ConfigError(`max gradient norm must be positive, got ${maxNorm}`);
  const grads: Tensor[] = [];
  for (const p of params) if (p.grad) grads.push(p.grad);
  if (grads.length === 0) return 0;
  let total = 0;
  if (normType === 'inf' || normType === Infinity) {
    for (const g of grads)
      for (const v of g.dataSync()) {
        const a = Math.abs(v);
        if (a > total || Number.isNaN(a)) total = a;
      }
  } else {
    if (!(normType > 0)) throw new ConfigError(`norm type must be positive or 'inf', got ${normType}`);
    let acc = 0;
    for (const g of grads) {
      let s = 0;
      for (const v of g.dataSync()) s += Math.abs(v) ** normType;
      acc += s;
    }
    total = acc ** (1 / normType);
  }
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) for (const g of grads) g.backend.affine(g.storage, g.storage, coef, 0);
  return total;
}
