// The webgpu batch-norm kernels against the ref backend (the oracle) on awkward shapes: C=1, N=1
// and 3, HW=1 (BN after the global pool), odd sizes, channels of 9,000-13,500 values (split into
// several chunks and combined), means far from zero (f32 cancellation), affine and not.
import { test, before } from 'node:test';
import { RefBackend } from '../src/backend/ref/ref.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { RNG } from '../src/base/rng.js';
import { skip, gpu, onGpu, rand, assertClose, maxErr } from './webgpu-oracle.js';

const ref = new RefBackend();
const rng = new RNG(14_3);
let b: WebGpuBackend;
before(async () => {
  if (!skip) b = await gpu();
});

// [N, C, HW, mean offset, spread]
const SHAPES: [number, number, number, number, number][] = [
  [1, 1, 1, 0, 1],
  [3, 4, 1, 0.5, 1],
  [1, 3, 7, -2, 1],
  [3, 5, 7, 0, 3],
  [2, 1, 17, 0, 1],
  [3, 2, 4500, 40, 0.5], // 13,500 values a channel: 4 chunks, the last short
  [1, 3, 9001, -3, 2],
];
const report = (what: string, e: number): void => {
  if (process.env.REPORT) console.log(`${what}: ${e.toExponential(2)}`);
};

function input(N: number, C: number, HW: number, offset: number, spread: number): Float32Array {
  const x = rand(rng, N * C * HW, -spread, spread);
  for (let i = 0; i < x.length; i++) x[i] += offset * (1 + (Math.floor(i / HW) % C));
  return x;
}

test(
  'batchNormTrain equals ref: y, mean, invStd, biased var; affine and not (rtol 1e-4, atol 1e-5; y: atol 1e-5 + 5e-7*|mean*gamma*invStd|, the f32 rounding of the mean)',
  { skip },
  async () => {
    for (const [N, C, HW, off, spread] of SHAPES) {
      for (const affine of [true, false]) {
        const x = input(N, C, HW, off, spread);
        const gamma = affine ? rand(rng, C, 0.5, 2) : null;
        const beta = affine ? rand(rng, C) : null;
        const n = N * C * HW;
        const want = { y: new Float32Array(n), mean: new Float32Array(C), inv: new Float32Array(C), v: new Float32Array(C) };
        ref.batchNormTrain(x, gamma, beta, want.y, want.mean, want.inv, want.v, N, C, HW, 1e-5);
        const got = await onGpu(
          b,
          { x, gamma, beta, y: new Float32Array(n), mean: new Float32Array(C), inv: new Float32Array(C), v: new Float32Array(C) },
          (s) => b.batchNormTrain(s.x!, s.gamma, s.beta, s.y!, s.mean!, s.inv!, s.v!, N, C, HW, 1e-5),
        );
        const at = `[${N},${C},${HW}] affine=${affine}`;
        // f32 cannot hold the mean closer than half an ulp of |mean|; y = (x - mean)*gamma*invStd carries that
        let yAtol = 1e-5;
        for (let c = 0; c < C; c++) yAtol = Math.max(yAtol, 1e-5 + 5e-7 * Math.abs(want.mean[c] * (gamma ? gamma[c] : 1) * want.inv[c]));
        for (const k of ['y', 'mean', 'inv', 'v'] as const) {
          report(`train ${k} ${at}`, maxErr(got[k], want[k]));
          assertClose(got[k], want[k], 1e-4, k === 'y' ? yAtol : 1e-5, `${k} ${at}`);
        }
      }
    }
  },
);

test('batchNormEval and batchNormUpdateStats equal ref (rtol 1e-5, atol 1e-6)', { skip }, async () => {
  for (const [N, C, HW, off, spread] of SHAPES.slice(0, 5)) {
    for (const affine of [true, false]) {
      const x = input(N, C, HW, off, spread);
      const gamma = affine ? rand(rng, C, 0.5, 2) : null;
      const beta = affine ? rand(rng, C) : null;
      const mean = rand(rng, C, -1, 1);
      const variance = rand(rng, C, 0.1, 3);
      const want = new Float32Array(N * C * HW);
      ref.batchNormEval(x, gamma, beta, mean, variance, want, N, C, HW, 1e-5);
      const got = await onGpu(b, { x, gamma, beta, mean, variance, y: new Float32Array(want.length) }, (s) =>
        b.batchNormEval(s.x!, s.gamma, s.beta, s.mean!, s.variance!, s.y!, N, C, HW, 1e-5),
      );
      report(`eval y [${N},${C},${HW}]`, maxErr(got.y, want));
      assertClose(got.y, want, 1e-5, 1e-6, `eval y [${N},${C},${HW}] affine=${affine}`);
    }
  }
  for (const count of [2, 7, 13500]) {
    const C = 5;
    const rm = rand(rng, C),
      rv = rand(rng, C, 0.5, 2),
      bm = rand(rng, C),
      bv = rand(rng, C, 0.1, 3);
    const got = await onGpu(b, { rm, rv, bm, bv }, (s) => b.batchNormUpdateStats(s.rm!, s.rv!, s.bm!, s.bv!, 0.1, count));
    ref.batchNormUpdateStats(rm, rv, bm, bv, 0.1, count);
    assertClose(got.rm, rm, 1e-5, 1e-6, `running mean, count ${count}`);
    assertClose(got.rv, rv, 1e-5, 1e-6, `running var (unbiased), count ${count}`);
  }
});

test('batchNormTrainBackward equals ref: dx, dgamma, dbeta, each optional (rtol 1e-4, atol 1e-5 of the largest)', { skip }, async () => {
  for (const [N, C, HW, off, spread] of SHAPES) {
    for (const affine of [true, false]) {
      const x = input(N, C, HW, off, spread);
      const n = N * C * HW;
      const gamma = affine ? rand(rng, C, 0.5, 2) : null;
      const mean = new Float32Array(C),
        inv = new Float32Array(C);
      ref.batchNormTrain(x, gamma, null, new Float32Array(n), mean, inv, new Float32Array(C), N, C, HW, 1e-5);
      const dy = rand(rng, n);
      const want = { dx: new Float32Array(n), dg: new Float32Array(C), db: new Float32Array(C) };
      ref.batchNormTrainBackward(dy, x, gamma, mean, inv, want.dx, want.dg, want.db, N, C, HW);
      // affine=false: the caller wants no dgamma/dbeta
      const got = await onGpu(
        b,
        { dy, x, gamma, mean, inv, dx: new Float32Array(n), dg: affine ? new Float32Array(C) : null, db: affine ? new Float32Array(C) : null },
        (s) => b.batchNormTrainBackward(s.dy!, s.x!, s.gamma, s.mean!, s.inv!, s.dx!, s.dg, s.db, N, C, HW),
      );
      const at = `[${N},${C},${HW}] affine=${affine}`;
      const scale = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      report(`trainBwd dx ${at}`, maxErr(got.dx, want.dx));
      assertClose(got.dx, want.dx, 1e-4, 1e-5 * scale(want.dx), `dx ${at}`);
      if (affine) {
        report(`trainBwd dgamma ${at}`, maxErr(got.dg, want.dg));
        assertClose(got.dg, want.dg, 1e-4, 1e-5 * scale(want.dg), `dgamma ${at}`);
        assertClose(got.db, want.db, 1e-4, 1e-5 * scale(want.db), `dbeta ${at}`);
      }
    }
  }
});

test('batchNormEvalBackward equals ref: dx and dgamma, each optional (rtol 1e-4, atol 1e-5 of the largest)', { skip }, async () => {
  for (const [N, C, HW, off, spread] of SHAPES) {
    for (const [wantDx, wantDg] of [
      [true, true],
      [true, false],
      [false, true],
    ]) {
      const x = input(N, C, HW, off, spread);
      const n = N * C * HW;
      const gamma = wantDx && !wantDg ? null : rand(rng, C, 0.5, 2);
      const mean = rand(rng, C, -1, 1);
      for (let c = 0; c < C; c++) mean[c] += off * (1 + c);
      const variance = rand(rng, C, 0.1, 3);
      const dy = rand(rng, n);
      const want = { dx: new Float32Array(n), dg: new Float32Array(C) };
      ref.batchNormEvalBackward(dy, x, gamma, mean, variance, wantDx ? want.dx : null, wantDg ? want.dg : null, N, C, HW, 1e-5);
      const got = await onGpu(b, { dy, x, gamma, mean, variance, dx: wantDx ? new Float32Array(n) : null, dg: wantDg ? new Float32Array(C) : null }, (s) =>
        b.batchNormEvalBackward(s.dy!, s.x!, s.gamma, s.mean!, s.variance!, s.dx, s.dg, N, C, HW, 1e-5),
      );
      const at = `[${N},${C},${HW}] dx=${wantDx} dgamma=${wantDg}`;
      const scale = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      if (wantDx) assertClose(got.dx, want.dx, 1e-4, 1e-5 * scale(want.dx), `dx ${at}`);
      if (wantDg) {
        report(`evalBwd dgamma ${at}`, maxErr(got.dg, want.dg));
        assertClose(got.dg, want.dg, 1e-4, 1e-5 * scale(want.dg), `dgamma ${at}`);
      }
    }
  }
});
