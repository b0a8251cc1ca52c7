// SGD with momentum, dampening, Nesterov momentum and (L2) weight decay, exactly PyTorch's update:
//   g = grad + wd * p
//   buf = g                                   (first step)
//   buf = momentum * buf + (1 - dampening) * g (later steps)
//   g = nesterov ? g + momentum * buf : buf   (when momentum != 0)
//   p -= lr * g
// The arithmetic runs in the parameter's backend (its sgdStep kernel, else ref's host loop).
import type { Storage } from '../backend/backend.js';
import { sgdStep } from '../backend/ref/optim.js';
import { ConfigError } from '../base/errors.js';
import { checkNonNegative, Optimizer, type ParamGroup, type ParamGroupSpec, type ParamInput } from './optimizer.js';

export type SGDOptions = {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
};

export class SGD extends Optimizer<SGDOptions> {
  readonly type = 'SGD';

  constructor(params: Iterable<ParamInput> | Iterable<ParamGroupSpec<SGDOptions>>, opts: Partial<SGDOptions> & { lr: number }) {
    super(params, {
      lr: opts.lr,
      momentum: opts.momentum ?? 0,
      dampening: opts.dampening ?? 0,
      weightDecay: opts.weightDecay ?? 0,
      nesterov: opts.nesterov ?? false,
    });
  }

  protected validate(g: ParamGroup<SGDOptions>, where: string): void {
    checkNonNegative(g.lr, 'lr', where);
    checkNonNegative(g.momentum, 'momentum', where);
    checkNonNegative(g.dampening, 'dampening', where);
    checkNonNegative(g.weightDecay, 'weight decay', where);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) {
      throw new ConfigError(`Nesterov momentum requires a momentum > 0 and zero dampening (${where})`);
    }
  }

  step(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        let buf: Storage | null = null;
        let first = false;
        if (g.momentum !== 0) {
          const b = this.buffer(this.stateOf(p), 'momentum_buffer', p);
          buf = b.t.storage;
          first = b.fresh;
        }
        sgdStep(p.backend, p.storage, p.grad.storage, buf, g.lr, g.momentum, g.dampening, g.weightDecay, g.nesterov, first);
      }
    }
  }
}
