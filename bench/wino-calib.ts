// Measures the cost model that picks, per 3x3 stride-1 convolution, the im2col GEMM, Winograd
// F(2x2,3x3) or F(4x4,3x3) (WasmBackend.costModel / convCost; winogradTile 'auto').
//
//   node --import tsx bench/wino-calib.ts [--reps 5] [--threads 1]
//
// 1. Runs every algorithm, forced, on the 3x3 layer shapes of ResNet-18/34/50 at 224 px (batch 1
//    and 8, Winograd weight transform cached and not) and of the d2l ResNet-18 at 96 px (batch 16),
//    timing each job kind on its own (the backend's private run() is wrapped) in CPU time, best of
//    --reps (one thread: on this shared machine CPU time drifts far less than wall time).
// 2. Fits the coefficients: transforms (with their zero-pad pass) in ns per element, the weight
//    transform per (k, c), the GEMM as padded multiply-adds plus packed elements (least squares
//    over the Winograd GEMMs), the im2col B packing per element (the direct GEMMs' remainder).
// 3. Prints the coefficients (paste them into costModel), then per shape the measured time of
//    each algorithm, the model's pick and the measured best, and the time lost to wrong picks.
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/wasm.js';
import type { Conv2dParams, Storage } from '../src/backend/backend.js';
import * as c from '../src/backend/wasm/kernels.generated.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const REPS = Number(opt('reps', '5'));
const be = await createWasmBackend({ threads: Number(opt('threads', '1')) });
/* eslint-disable @typescript-eslint/no-explicit-any -- wraps a private method */
const priv = be as any;
const times = new Map<number, number>();
const origRun = priv.run.bind(be);
// CPU time (ms) of this process: one thread, so it is the kernels' own, and far steadier than
// wall time on a loaded machine
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
priv.run = (kind: number, ntasks: number, flops: number) => {
  const t0 = cpu();
  origRun(kind, ntasks, flops);
  times.set(kind, (times.get(kind) ?? 0) + cpu() - t0);
};

function conv(N: number, C: number, H: number, K: number): Conv2dParams {
  return { N, C, H, W: H, K, R: 3, S: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1, OH: H, OW: H };
}
const shapes: [string, Conv2dParams][] = [];
for (const N of [1, 8])
  for (const [C, H] of [
    [64, 56],
    [128, 28],
    [256, 14],
    [512, 7],
  ] as const)
    shapes.push([`r18/r50 ${C}@${H} b${N}`, conv(N, C, H, C)]);
for (const [C, H] of [
  [64, 24],
  [128, 12],
  [256, 6],
  [512, 3],
] as const)
  shapes.push([`d2l ${C}@${H} b16`, conv(16, C, H, C)]);

function rand(n: number): Storage {
  const a = be.alloc(n);
  be.write(
    a,
    Float32Array.from({ length: n }, () => Math.random() - 0.5),
  );
  return a;
}

type Algo = 0 | 2 | 4;
interface Meas {
  name: string;
  p: Conv2dParams;
  cached: boolean;
  algo: Algo;
  total: number;
  kinds: Map<number, number>;
}
const meas: Meas[] = [];
be.winogradMinTiles = be.winogradMinTilesCached = 1;
be.winogradMinFill = 0;
for (const [name, p] of shapes) {
  const x = rand(p.N * p.C * p.H * p.W),
    w = rand(p.K * p.C * 9),
    b = rand(p.K),
    y = be.alloc(p.N * p.K * p.OH * p.OW);
  for (const cached of p.N === 1 ? [true, false] : [false]) {
    for (const algo of [0, 2, 4] as const) {
      be.winograd = algo === 0 ? 'off' : 'all';
      be.winogradTile = algo === 0 ? 'auto' : algo;
      let best: Meas | null = null;
      for (let r = 0; r <= REPS; r++) {
        times.clear();
        const t0 = cpu();
        be.conv2dFused(x, w, b, y, p, false, null, cached);
        const total = cpu() - t0;
        if (r > 0 && (!best || total < best.total)) best = { name, p, cached, algo, total, kinds: new Map(times) };
      }
      meas.push(best!);
      be.cacheWeights = false; // frees cached transforms
    }
  }
  for (const a of [x, w, b, y]) be.free(a);
}

// ---- features (the same counts as WasmBackend.convCost)
function feats(m: Meas) {
  const { N, C, K, OH, OW } = m.p;
  if (m.algo === 0) {
    const L = N * OH * OW;
    return {
      flops: Math.ceil(K / 2) * 2 * Math.ceil(L / 16) * 16 * C * 9,
      packA: K * C * 9 * Math.ceil(L / c.NCMAX),
      im2col: C * 9 * L * Math.ceil(K / c.MCMAX),
      inEl: 0,
      outEl: 0,
      wEl: 0,
    };
  }
  const t = m.algo,
    X = (t + 2) ** 2,
    TH = Math.ceil(OH / t),
    TW = Math.ceil(OW / t),
    T = N * TH * TW;
  return {
    flops: X * Math.ceil(K / 2) * 2 * Math.ceil(T / 16) * 16 * C,
    packA: X * (K * C * Math.ceil(T / c.NCMAX) + C * T * Math.ceil(K / c.MCMAX)),
    im2col: 0,
    inEl: N * C * (t * TH + 2) * (t * TW + 2),
    outEl: N * K * t * t * TH * TW,
    wEl: m.cached ? 0 : K * C,
  };
}
const kt = (m: Meas, ...kinds: number[]) => kinds.reduce((s, k) => s + (m.kinds.get(k) ?? 0), 0) * 1e6; // ns
const coef: Record<string, number> = {};
for (const t of [2, 4] as const) {
  const ms = meas.filter((m) => m.algo === t);
  const [kin, kw, kout] = t === 4 ? [c.K_WINO4_IN, c.K_WINO4_W, c.K_WINO4_OUT] : [c.K_WINO_IN, c.K_WINO_W, c.K_WINO_OUT];
  coef[`in${t}`] = ms.reduce((s, m) => s + kt(m, kin, c.K_PAD), 0) / ms.reduce((s, m) => s + feats(m).inEl, 0);
  coef[`out${t}`] = ms.reduce((s, m) => s + kt(m, kout), 0) / ms.reduce((s, m) => s + feats(m).outEl, 0);
  const mw = ms.filter((m) => !m.cached);
  coef[`w${t}`] = mw.reduce((s, m) => s + kt(m, kw), 0) / mw.reduce((s, m) => s + feats(m).wEl, 0);
}
// GEMM: time = flops * gemm + packed * pack, least squares weighted by 1/time (relative error)
{
  const ms = meas.filter((m) => m.algo !== 0);
  let a11 = 0,
    a12 = 0,
    a22 = 0,
    b1 = 0,
    b2 = 0;
  for (const m of ms) {
    const f = feats(m),
      y = kt(m, c.K_GEMM, c.K_PACKB),
      wgt = 1 / (y * y);
    a11 += wgt * f.flops * f.flops;
    a12 += wgt * f.flops * f.packA;
    a22 += wgt * f.packA * f.packA;
    b1 += wgt * f.flops * y;
    b2 += wgt * f.packA * y;
  }
  const det = a11 * a22 - a12 * a12;
  coef.gemm = (b1 * a22 - b2 * a12) / det;
  coef.pack = (a11 * b2 - a12 * b1) / det;
  if (coef.pack < 0) {
    coef.pack = 0;
    coef.gemm = b1 / a11;
  }
  const md = meas.filter((m) => m.algo === 0);
  const rest = md.reduce((s, m) => s + kt(m, c.K_GEMM, c.K_PACKB, c.K_PAD) - feats(m).flops * coef.gemm - feats(m).packA * coef.pack, 0);
  coef.im2col = Math.max(0, rest / md.reduce((s, m) => s + feats(m).im2col, 0));
}
const fixed: Record<string, number> = {};
for (const [k, v] of Object.entries(coef)) fixed[k] = +v.toPrecision(3);
console.log(
  `load average ${(await import('node:os'))
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; threads ${be.threads ?? ''}; best of ${REPS}`,
);
console.log('costModel =', JSON.stringify(fixed));

// ---- validation: the model's pick vs the measured best, per shape
const fitted = be as WasmBackend;
Object.assign(fitted.costModel, fixed);
let lost = 0,
  bestSum = 0,
  f2Sum = 0,
  right = 0,
  cases = 0;
const keys = [...new Set(meas.map((m) => `${m.name}|${m.cached}`))];
console.log('| shape | cached | im2col ms | F(2x2) ms | F(4x4) ms | model ms (0/2/4) | pick | best |');
console.log('|---|---|---|---|---|---|---|---|');
for (const key of keys) {
  const ms = meas.filter((m) => `${m.name}|${m.cached}` === key);
  const { p, cached, name } = ms[0];
  const model = ([0, 2, 4] as const).map((t) => fitted.convCost(t, p.N, p.C, p.K, 1, p.OH, p.OW, cached) / 1e6);
  const pick = ([0, 2, 4] as const)[model.indexOf(Math.min(...model))];
  const best = ms.reduce((a, b) => (b.total < a.total ? b : a));
  const tPick = ms.find((m) => m.algo === pick)!.total;
  lost += tPick - best.total;
  bestSum += best.total;
  f2Sum += ms.find((m) => m.algo === 2)!.total;
  cases++;
  if (pick === best.algo) right++;
  console.log(
    `| ${name} | ${cached} | ${ms.map((m) => m.total.toFixed(2)).join(' | ')} | ${model.map((v) => v.toFixed(2)).join(' / ')} | ${pick} | ${best.algo} |`,
  );
}
console.log(
  `model picks the measured best in ${right}/${cases}; time of its picks ${(((bestSum + lost) / bestSum - 1) * 100).toFixed(1)}% over the best (F(2x2) everywhere: ${((f2Sum / bestSum - 1) * 100).toFixed(1)}%)`,
);
be.dispose();
process.exit(0);
