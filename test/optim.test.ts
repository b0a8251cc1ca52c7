// Optimizers, LR schedules and gradient clipping against PyTorch 1.13 (fixtures written by
// scripts/make_optim_fixtures.py into test/optim-fixtures/optim.json): the same initial
// parameters and the same gradient sequence must give the same parameters after every step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, StateDictError } from '../src/base/errors.js';
import { tensor } from '../src/tensor/ops.js';
import type { Tensor } from '../src/tensor/tensor.js';
import {
  Adam,
  AdamW,
  LRScheduler,
  SGD,
  clipGradNorm,
  cosineLR,
  linearLR,
  multiStepLR,
  oneCycleLR,
  sequentialLR,
  stepLR,
  type Optimizer,
  type Schedule,
} from '../src/optim/index.js';
import { assertClose } from './helpers.js';

interface Fixture {
  steps: number;
  init: number[][];
  shapes: number[][];
  grads: number[][][];
  cases: {
    name: string;
    optimizer: 'SGD' | 'Adam' | 'AdamW';
    kwargs: Record<string, unknown>;
    groups: { params: number[]; lr?: number; weight_decay?: number }[] | null;
    history: number[][][];
  }[];
  schedules: { name: string; baseLr: number; lrs: number[]; momentums: number[] }[];
  clip: { maxNorm: number; normType: number | 'inf'; gradsIn: number[][]; gradsOut: number[][]; totalNorm: number }[];
}

const fx: Fixture = JSON.parse(readFileSync(new URL('./optim-fixtures/optim.json', import.meta.url), 'utf8'));

function params(): Tensor[] {
  return fx.init.map((v, i) => tensor(v, fx.shapes[i]).setRequiresGrad(true).keep());
}

function toOpts(kw: Record<string, unknown>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kw)) {
    if (k === 'weight_decay') o.weightDecay = v;
    else if (k === 'betas') o.betas = v;
    else o[k] = v;
  }
  return o;
}

function makeOpt(c: Fixture['cases'][number], ps: Tensor[]): Optimizer<{ lr: number }> {
  const kw = toOpts(c.kwargs);
  const input = c.groups
    ? c.groups.map((g) => ({
        params: g.params.map((i) => ps[i]),
        ...(g.lr !== undefined ? { lr: g.lr } : {}),
        ...(g.weight_decay !== undefined ? { weightDecay: g.weight_decay } : {}),
      }))
    : ps;
  const Cls = c.optimizer === 'SGD' ? SGD : c.optimizer === 'Adam' ? Adam : AdamW;
  return new (Cls as unknown as new (p: unknown, o: unknown) => Optimizer<{ lr: number }>)(input, kw);
}

function setGrads(ps: Tensor[], step: number): void {
  ps.forEach((p, i) => {
    p.zeroGrad();
    p.grad = tensor(fx.grads[step][i], fx.shapes[i]).keep();
  });
}

for (const c of fx.cases) {
  test(`${c.name}: ${fx.steps} steps match PyTorch (rtol 1e-5, atol 1e-6)`, () => {
    const ps = params();
    const opt = makeOpt(c, ps);
    for (let s = 0; s < fx.steps; s++) {
      setGrads(ps, s);
      opt.step();
      ps.forEach((p, i) => assertClose(p.dataSync(), c.history[s][i], 1e-5, 1e-6, `${c.name} step ${s + 1} param ${i}`));
    }
  });
}

test('optimizer state dict: save after 2 steps, load into a fresh optimizer, continue identically (bit-exact)', () => {
  for (const c of fx.cases) {
    const a = params();
    const optA = makeOpt(c, a);
    for (let s = 0; s < 2; s++) {
      setGrads(a, s);
      optA.step();
    }
    const sd = optA.stateDict();
    const json = JSON.parse(JSON.stringify(sd, (_k, v) => (v instanceof Float32Array ? Array.from(v) : v)));
    for (const st of Object.values(json.state) as { buffers: Record<string, { data: number[] }> }[]) {
      for (const b of Object.values(st.buffers)) (b as unknown as { data: Float32Array }).data = Float32Array.from(b.data);
    }
    const b = params();
    b.forEach((p, i) => p.write(a[i].dataSync()));
    const optB = makeOpt(c, b);
    optB.loadStateDict(json);
    for (let s = 2; s < fx.steps; s++) {
      setGrads(a, s);
      setGrads(b, s);
      optA.step();
      optB.step();
    }
    a.forEach((p, i) => assert.deepEqual(Array.from(b[i].dataSync()), Array.from(p.dataSync()), `${c.name} param ${i}`));
    assert.deepEqual(
      optB.paramGroups.map((g) => g.lr),
      optA.paramGroups.map((g) => g.lr),
    );
  }
});

test('optimizer state dict: mismatches are StateDictErrors naming the problem', () => {
  const ps = params();
  const opt = new SGD(
    [
      ['w', ps[0]],
      ['b', ps[1]],
    ],
    { lr: 0.1, momentum: 0.9 },
  );
  setGrads(ps, 0);
  opt.step();
  const sd = opt.stateDict();
  assert.deepEqual(Object.keys(sd.state), ['w', 'b']);
  assert.throws(
    () =>
      new Adam([
        ['w', ps[0]],
        ['b', ps[1]],
      ]).loadStateDict(sd),
    (e: Error) => e instanceof StateDictError && /for SGD/.test(e.message),
  );
  assert.throws(
    () =>
      new SGD(
        [
          ['w', ps[0]],
          ['c', ps[1]],
        ],
        { lr: 0.1, momentum: 0.9 },
      ).loadStateDict(sd),
    (e: Error) => e instanceof StateDictError && /c/.test(e.message),
  );
  const bad = structuredClone(sd);
  bad.state.w.buffers.momentum_buffer.shape = [4, 3];
  assert.throws(
    () =>
      new SGD(
        [
          ['w', ps[0]],
          ['b', ps[1]],
        ],
        { lr: 0.1, momentum: 0.9 },
      ).loadStateDict(bad),
    (e: Error) => e instanceof StateDictError && /w\.momentum_buffer/.test(e.message) && /\[4, 3\]/.test(e.message),
  );
});

test('optimizers reject bad options with ConfigErrors', () => {
  const ps = params();
  assert.throws(() => new SGD(ps, { lr: -1 }), ConfigError);
  assert.throws(() => new SGD(ps, { lr: 0.1, nesterov: true }), /Nesterov/);
  assert.throws(() => new Adam(ps, { betas: [1, 0.9] }), /beta1/);
  assert.throws(() => new SGD([{ params: [ps[0]] }, { params: [ps[0]] }], { lr: 0.1 }), /more than one/);
  assert.throws(() => new SGD([{ params: [ps[0]], foo: 1 } as never], { lr: 0.1 }), /unknown SGD option 'foo'/);
});

test('parameters without a gradient (frozen) are left unchanged', () => {
  const ps = params();
  const before = ps[1].toFloat32Array();
  const opt = new SGD(ps, { lr: 0.5, momentum: 0.9, weightDecay: 0.1 });
  ps[0].grad = tensor(fx.grads[0][0], fx.shapes[0]).keep();
  opt.step();
  assert.deepEqual(Array.from(ps[1].dataSync()), Array.from(before));
  assert.notDeepEqual(Array.from(ps[0].dataSync()), fx.init[0]);
});

function scheduleFor(name: string, stepsPerCase: number): Schedule {
  switch (name) {
    case 'step':
      return stepLR(3, 0.5);
    case 'multistep':
      return multiStepLR([2, 5, 6], 0.1);
    case 'cosine':
      return cosineLR(8, 0.001);
    case 'linear_warmup':
      return linearLR(0.1, 1, 4);
    case 'onecycle':
      return oneCycleLR({ totalSteps: stepsPerCase });
    case 'onecycle_linear_3phase':
      return oneCycleLR({ totalSteps: 15, pctStart: 0.25, annealStrategy: 'linear', divFactor: 10, finalDivFactor: 100, threePhase: true });
    case 'warmup_then_cosine':
      return sequentialLR([linearLR(0.25, 1, 3), cosineLR(7)], [3]);
    default:
      throw new Error(`no schedule for ${name}`);
  }
}

for (const s of fx.schedules) {
  test(`schedule ${s.name}: lr (and momentum) per step match PyTorch (rtol 1e-9, atol 1e-12)`, () => {
    const p = tensor([0]).setRequiresGrad(true);
    // OneCycle takes the peak lr from the group: PyTorch's max_lr
    const peak = s.name === 'onecycle' ? 0.4 : s.name === 'onecycle_linear_3phase' ? 0.3 : s.baseLr;
    const opt = new SGD([p], { lr: peak, momentum: 0.9 });
    const sched = new LRScheduler(opt, scheduleFor(s.name, s.lrs.length));
    const lrs: number[] = [],
      moms: number[] = [];
    for (let i = 0; i < s.lrs.length; i++) {
      lrs.push(opt.paramGroups[0].lr);
      moms.push(opt.paramGroups[0].momentum);
      sched.step();
    }
    assertClose(lrs, s.lrs, 1e-9, 1e-12, `${s.name} lr`);
    assertClose(moms, s.momentums, 1e-9, 1e-12, `${s.name} momentum`);
  });
}

test('scheduler state: resuming at step k gives the same lrs as running through', () => {
  const mk = () => new SGD([tensor([0]).setRequiresGrad(true)], { lr: 0.2, momentum: 0.9 });
  const a = mk();
  const sa = new LRScheduler(a, oneCycleLR({ totalSteps: 20 }));
  for (let i = 0; i < 7; i++) sa.step();
  const b = mk();
  const sb = new LRScheduler(b, oneCycleLR({ totalSteps: 20 }));
  sb.loadStateDict(sa.stateDict());
  for (let i = 0; i < 5; i++) {
    sa.step();
    sb.step();
    assert.equal(b.paramGroups[0].lr, a.paramGroups[0].lr);
    assert.equal(b.paramGroups[0].momentum, a.paramGroups[0].momentum);
  }
});

test('schedules scale each parameter group from its own initial lr (head lr x10)', () => {
  const p = tensor([0]).setRequiresGrad(true),
    q = tensor([0]).setRequiresGrad(true);
  const opt = new SGD([{ params: [p] }, { params: [q], lr: 1 }], { lr: 0.1 });
  const s = new LRScheduler(opt, stepLR(1, 0.5));
  s.step();
  assert.deepEqual(s.getLr(), [0.05, 0.5]);
});

for (const c of fx.clip) {
  test(`clipGradNorm max ${c.maxNorm} norm ${c.normType}: total norm and clipped grads match PyTorch (rtol 1e-5, atol 1e-7)`, () => {
    const ps = params();
    ps.forEach((p, i) => (p.grad = tensor(c.gradsIn[i], fx.shapes[i]).keep()));
    const total = clipGradNorm(ps, c.maxNorm, c.normType).item();
    assertClose([total], [c.totalNorm], 1e-5, 1e-7, 'total norm');
    ps.forEach((p, i) => assertClose(p.grad!.dataSync(), c.gradsOut[i], 1e-5, 1e-7, `grad ${i}`));
  });
}

test('clipGradNorm reports a non-finite norm', () => {
  const ps = params();
  ps[0].grad = tensor(
    new Array(12).fill(0).map((_, i) => (i === 3 ? NaN : 1)),
    [3, 4],
  ).keep();
  assert.ok(Number.isNaN(clipGradNorm(ps, 1).item()));
});
