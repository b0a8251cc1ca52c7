// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_): the norm of all gradients
// together; every gradient is multiplied by min(1, maxNorm / (norm + 1e-6)). All of it runs on the
// gradients' backend, nothing is read back (a GPU is not made to wait): the norm comes back as a
// scalar tensor, as PyTorch's does; read it with `await norm.data()` (or `.item()` on ref/wasm).
import { ConfigError } from '../base/errors.js';
import type { Pool2dParams } from '../backend/backend.js';
import { abs, add, affineScalar, div, exp, log, maximum, minimum, mul, sqrt, sum } from '../tensor/ops.js';
import { noGrad, Tensor } from '../tensor/tensor.js';

/** Returns the total norm before clipping, shape [] (NaN or Infinity when a gradient is not finite). */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType: number | 'inf' = 2): Tensor {
  if (!(maxNorm > 0)) throw new ConfigError(`max gradient norm must be positive, got ${maxNorm}`);
  const inf = normType === 'inf' || normType === Infinity;
  if (!inf && !((normType as number) > 0)) throw new ConfigError(`norm type must be positive or 'inf', got ${normType}`);
  const ps = [...params];
  const grads = ps.flatMap((q) => (q.grad ? [q.grad] : []));
  return noGrad(() => {
    if (grads.length === 0) return Tensor.fromArray([0], [], ps[0]?.backend);
    const be = grads[0].backend;
    const p = normType as number;
    let total: Tensor | null = null;
    for (const g of grads) {
      // inf: max |g| (max pool over one window spanning the tensor: it propagates NaN, as PyTorch's max)
      // p: sum |g|^p (g*g for 2; exp(p log|g|) otherwise, which keeps 0 -> 0 and NaN -> NaN)
      const part = inf ? maxAbs(g) : sum(p === 2 ? mul(g, g) : p === 1 ? abs(g) : exp(affineScalar(log(abs(g)), p, 0)));
      total = total ? (inf ? maximum(total, part) : add(total, part)) : part;
    }
    if (!inf) total = p === 2 ? sqrt(total!) : p === 1 ? total : exp(affineScalar(log(total!), 1 / p, 0));
    const coef = minimum(div(Tensor.fromArray([maxNorm], [], be), affineScalar(total!, 1, 1e-6)), Tensor.fromArray([1], [], be));
    for (const g of grads) be.copy(mul(g, coef).storage, g.storage);
    return total!;
  });
}

function maxAbs(g: Tensor): Tensor {
  const a = abs(g);
  const n = a.size;
  const p: Pool2dParams = { N: 1, C: 1, H: 1, W: n, kH: 1, kW: n, sH: 1, sW: n, pH: 0, pW: 0, dH: 1, dW: 1, OH: 1, OW: 1, countIncludePad: false };
  const out = Tensor.empty([], g.backend);
  g.backend.maxPool2d(a.storage, out.storage, p);
  return out;
}
