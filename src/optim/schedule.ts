// Learning-rate schedules as pure functions of the step count, so they compose and resume
// exactly (the only state is the step counter). A Schedule maps (step, base lr) to an lr, where
// the base is a parameter group's initial lr; an LRScheduler applies one to every group of an
// optimizer. Whether a "step" is an epoch or an iteration is the caller's choice (the trainer
// steps per iteration and converts epoch-based settings).
//
// Closed forms of PyTorch's schedulers (StepLR, MultiStepLR, CosineAnnealingLR, LinearLR,
// OneCycleLR, SequentialLR); test/optim.test.ts compares them with PyTorch's values.
import { ConfigError, StateDictError } from '../base/errors.js';
import type { AnyOptimizer } from './optimizer.js';

export interface Schedule {
  readonly name: string;
  lr(step: number, baseLr: number): number;
  /** Absolute momentum (SGD momentum, Adam beta1) at a step, for schedules that cycle it. */
  momentum?(step: number): number;
}

function posInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 1) throw new ConfigError(`${what} must be a positive integer, got ${v}`);
}

/** No change. */
export function constantLR(): Schedule {
  return { name: 'constant', lr: (_t, base) => base };
}

/** base * gamma^floor(step / stepSize) (PyTorch StepLR). */
export function stepLR(stepSize: number, gamma = 0.1): Schedule {
  posInt(stepSize, 'StepLR step size');
  return { name: 'step', lr: (t, base) => base * gamma ** Math.floor(t / stepSize) };
}

/** base * gamma^(number of milestones <= step) (PyTorch MultiStepLR; repeated milestones count twice). */
export function multiStepLR(milestones: readonly number[], gamma = 0.1): Schedule {
  const ms = [...milestones].sort((a, b) => a - b);
  for (const m of ms)
    if (!Number.isInteger(m) || m < 0) throw new ConfigError(`MultiStepLR milestones must be non-negative integers, got ${milestones.join(',')}`);
  return { name: 'multistep', lr: (t, base) => base * gamma ** ms.filter((m) => m <= t).length };
}

/** etaMin + (base - etaMin)(1 + cos(pi t / tMax)) / 2 (PyTorch CosineAnnealingLR, closed form). */
export function cosineLR(tMax: number, etaMin = 0): Schedule {
  posInt(tMax, 'cosine T_max');
  return { name: 'cosine', lr: (t, base) => etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * t) / tMax))) / 2 };
}

/** base * (start + (end - start) * min(t, total) / total) (PyTorch LinearLR): a linear warm-up. */
export function linearLR(startFactor = 1 / 3, endFactor = 1, totalIters = 5): Schedule {
  if (!(startFactor > 0 && startFactor <= 1) || !(endFactor >= 0 && endFactor <= 1)) {
    throw new ConfigError(`LinearLR factors must be in (0, 1] and [0, 1], got ${startFactor} and ${endFactor}`);
  }
  posInt(totalIters, 'LinearLR total iterations');
  return { name: 'linear', lr: (t, base) => base * (startFactor + ((endFactor - startFactor) * Math.min(t, totalIters)) / totalIters) };
}

export interface OneCycleOptions {
  totalSteps: number;
  pctStart?: number;
  annealStrategy?: 'cos' | 'linear';
  divFactor?: number;
  finalDivFactor?: number;
  threePhase?: boolean;
  /** Cycle momentum between maxMomentum and baseMomentum (default true, as PyTorch). */
  cycleMomentum?: boolean;
  baseMomentum?: number;
  maxMomentum?: number;
}

/**
 * Smith's one-cycle policy (PyTorch OneCycleLR). The group's base lr is the peak (max_lr): the
 * lr rises from base/divFactor to base over pctStart of the steps, then anneals to
 * base/divFactor/finalDivFactor. Momentum moves the opposite way when cycleMomentum.
 */
export function oneCycleLR(o: OneCycleOptions): Schedule {
  posInt(o.totalSteps, 'OneCycle total steps');
  const total = o.totalSteps;
  const pct = o.pctStart ?? 0.3;
  if (!(pct > 0 && pct < 1)) throw new ConfigError(`OneCycle pctStart must be in (0, 1), got ${pct}`);
  const div = o.divFactor ?? 25,
    finalDiv = o.finalDivFactor ?? 1e4;
  const baseM = o.baseMomentum ?? 0.85,
    maxM = o.maxMomentum ?? 0.95;
  const anneal =
    (o.annealStrategy ?? 'cos') === 'cos'
      ? (s: number, e: number, p: number) => e + ((s - e) / 2) * (Math.cos(Math.PI * p) + 1)
      : (s: number, e: number, p: number) => (e - s) * p + s;
  // phases: [end step, lr start key, lr end key, momentum start, momentum end]
  type Key = 'initial' | 'max' | 'min';
  const phases: [number, Key, Key, number, number][] = o.threePhase
    ? [
        [pct * total - 1, 'initial', 'max', maxM, baseM],
        [2 * pct * total - 2, 'max', 'initial', baseM, maxM],
        [total - 1, 'initial', 'min', maxM, maxM],
      ]
    : [
        [pct * total - 1, 'initial', 'max', maxM, baseM],
        [total - 1, 'max', 'min', baseM, maxM],
      ];
  const at = (t: number): { phase: (typeof phases)[number]; p: number } => {
    if (t > total) throw new ConfigError(`OneCycle stepped ${t} times, more than its ${total} total steps`);
    let start = 0;
    for (let i = 0; i < phases.length; i++) {
      const end = phases[i][0];
      if (t <= end || i === phases.length - 1) return { phase: phases[i], p: (t - start) / (end - start) };
      start = end;
    }
    throw new Error('unreachable');
  };
  const value = (k: Key, max: number) => (k === 'max' ? max : k === 'initial' ? max / div : max / div / finalDiv);
  const s: Schedule = {
    name: 'onecycle',
    lr: (t, base) => {
      const { phase, p } = at(t);
      return anneal(value(phase[1], base), value(phase[2], base), p);
    },
  };
  if (o.cycleMomentum ?? true) {
    s.momentum = (t) => {
      const { phase, p } = at(t);
      return anneal(phase[3], phase[4], p);
    };
  }
  return s;
}

/**
 * Run schedules one after the other (PyTorch SequentialLR): schedule i is active from
 * milestones[i-1] and sees the step count since its milestone.
 */
export function sequentialLR(schedules: readonly Schedule[], milestones: readonly number[]): Schedule {
  if (schedules.length !== milestones.length + 1) {
    throw new ConfigError(`sequential schedule needs ${schedules.length - 1} milestone(s), got ${milestones.length}`);
  }
  for (let i = 1; i < milestones.length; i++) if (milestones[i] <= milestones[i - 1]) throw new ConfigError('sequential milestones must increase');
  const seg = (t: number) => {
    let i = 0;
    while (i < milestones.length && t >= milestones[i]) i++;
    return { s: schedules[i], t0: i === 0 ? 0 : milestones[i - 1] };
  };
  const out: Schedule = {
    name: schedules.map((s) => s.name).join('>'),
    lr: (t, base) => {
      const { s, t0 } = seg(t);
      return s.lr(t - t0, base);
    },
  };
  if (schedules.some((s) => s.momentum)) {
    out.momentum = (t) => {
      const { s, t0 } = seg(t);
      return s.momentum ? s.momentum(t - t0) : NaN;
    };
  }
  return out;
}

/** Linear warm-up over `warmupSteps` from startFactor × base, then `then` (counting from 0 after the warm-up). */
export function withWarmup(then: Schedule, warmupSteps: number, startFactor = 0.1): Schedule {
  if (warmupSteps <= 0) return then;
  return sequentialLR([linearLR(startFactor, 1, warmupSteps), then], [warmupSteps]);
}

/** Apply schedules one over the other: the output lr of each is the base of the next (PyTorch ChainedScheduler for multiplicative schedules). */
export function chainLR(schedules: readonly Schedule[]): Schedule {
  return {
    name: schedules.map((s) => s.name).join('*'),
    lr: (t, base) => schedules.reduce((lr, s) => s.lr(t, lr), base),
  };
}

export interface SchedulerState {
  step: number;
}

/** Drives an optimizer's group lrs (and momentum, for one-cycle) from a Schedule. */
export class LRScheduler {
  /** Number of step() calls so far. */
  private t = 0;

  constructor(
    readonly optimizer: AnyOptimizer,
    readonly schedule: Schedule,
  ) {
    this.apply();
  }

  get lastStep(): number {
    return this.t;
  }

  /** Advance one step and set the new lrs. */
  step(): void {
    this.t++;
    this.apply();
  }

  /** The current lr of each group. */
  getLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  private apply(): void {
    const m = this.schedule.momentum?.(this.t);
    for (const g of this.optimizer.paramGroups) {
      g.lr = this.schedule.lr(this.t, g.initialLr);
      if (m !== undefined && !Number.isNaN(m)) {
        const gg = g as Record<string, unknown>;
        if ('momentum' in gg) gg.momentum = m;
        else if ('beta1' in gg) gg.beta1 = m;
      }
    }
  }

  stateDict(): SchedulerState {
    return { step: this.t };
  }

  loadStateDict(s: SchedulerState): void {
    if (!Number.isInteger(s?.step) || s.step < 0) throw new StateDictError(`invalid scheduler state ${JSON.stringify(s)}`);
    this.t = s.step;
    this.apply();
  }
}
