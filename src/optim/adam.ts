// Adam (Kingma & Ba 2015, L2 weight decay added to the gradient) and AdamW (Loshchilov & Hutter
// 2019, decoupled weight decay p *= 1 - lr*wd), with PyTorch's bias correction and eps placement:
//   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g²;  p -= lr/(1-b1^t) * m / (sqrt(v/(1-b2^t)) + eps)
// The arithmetic runs in the parameter's backend (its adamStep kernel, else ref's host loop).
import { adamStep } from '../backend/ref/optim.js';
import { ConfigError } from '../base/errors.js';
import { checkNonNegative, Optimizer, type ParamGroup, type ParamGroupSpec, type ParamInput } from './optimizer.js';

export type AdamOptions = {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
};

export type AdamInit = Partial<AdamOptions> & { betas?: [number, number] };

abstract class AdamBase extends Optimizer<AdamOptions> {
  protected abstract readonly decoupled: boolean;

  constructor(params: Iterable<ParamInput> | Iterable<ParamGroupSpec<AdamOptions>>, opts: AdamInit, defaultWd: number) {
    super(params, {
      lr: opts.lr ?? 1e-3,
      beta1: opts.betas?.[0] ?? opts.beta1 ?? 0.9,
      beta2: opts.betas?.[1] ?? opts.beta2 ?? 0.999,
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? defaultWd,
    });
  }

  protected validate(g: ParamGroup<AdamOptions>, where: string): void {
    checkNonNegative(g.lr, 'lr', where);
    checkNonNegative(g.eps, 'eps', where);
    checkNonNegative(g.weightDecay, 'weight decay', where);
    for (const [k, v] of [
      ['beta1', g.beta1],
      ['beta2', g.beta2],
    ] as const) {
      if (!(v >= 0 && v < 1)) throw new ConfigError(`${k} must be in [0, 1), got ${v} (${where})`);
    }
  }

  step(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        const s = this.stateOf(p);
        const m = this.buffer(s, 'exp_avg', p).t;
        const v = this.buffer(s, 'exp_avg_sq', p).t;
        const t = (s.scalars.step ?? 0) + 1;
        s.scalars.step = t;
        adamStep(p.backend, p.storage, p.grad.storage, m.storage, v.storage, g.lr, g.beta1, g.beta2, g.eps, g.weightDecay, t, this.decoupled);
      }
    }
  }
}

export class Adam extends AdamBase {
  readonly type = 'Adam';
  protected readonly decoupled = false;
  constructor(params: Iterable<ParamInput> | Iterable<ParamGroupSpec<AdamOptions>>, opts: AdamInit = {}) {
    super(params, opts, 0);
  }
}

/** AdamW; PyTorch's default weight decay 0.01. */
export class AdamW extends AdamBase {
  readonly type = 'AdamW';
  protected readonly decoupled = true;
  constructor(params: Iterable<ParamInput> | Iterable<ParamGroupSpec<AdamOptions>>, opts: AdamInit = {}) {
    super(params, opts, 0.01);
  }
}
