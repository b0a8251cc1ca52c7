// The webgpu pooling kernels against the ref backend (the oracle): max pool with stride, padding
// (as -inf), dilation, rectangular windows, ties (the first maximum gets the gradient) and NaN;
// average pool with and without the padding counted; adaptive average pool shrinking, growing
// and global; N = 1 and 3, C = 1, odd sizes.
import { test, before } from 'node:test';
import { RefBackend } from '../src/backend/ref/ref.js';
import type { Pool2dParams } from '../src/backend/backend.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { RNG } from '../src/base/rng.js';
import { skip, gpu, onGpu, rand, assertClose } from './webgpu-oracle.js';

const ref = new RefBackend();
const rng = new RNG(14_33);
let b: WebGpuBackend;
before(async () => {
  if (!skip) b = await gpu();
});

// N, C, H, W, [kH, kW], [sH, sW], [pH, pW], [dH, dW]
type Case = [number, number, number, number, [number, number], [number, number], [number, number], [number, number]];
function params([N, C, H, W, [kH, kW], [sH, sW], [pH, pW], [dH, dW]]: Case, max: boolean, countIncludePad = true): Pool2dParams {
  const out = (x: number, k: number, s: number, p: number, d: number): number => Math.floor((x + 2 * p - d * (k - 1) - 1) / s) + 1;
  return { N, C, H, W, kH, kW, sH, sW, pH, pW, dH, dW, OH: out(H, kH, sH, pH, max ? dH : 1), OW: out(W, kW, sW, pW, max ? dW : 1), countIncludePad };
}
const name = (p: Pool2dParams): string => `[${p.N},${p.C},${p.H},${p.W}] k${p.kH}x${p.kW} s${p.sH}x${p.sW} p${p.pH}x${p.pW} d${p.dH}x${p.dW}`;

const MAX: Case[] = [
  [1, 1, 1, 1, [1, 1], [1, 1], [0, 0], [1, 1]],
  [3, 2, 7, 9, [3, 3], [2, 2], [1, 1], [1, 1]], // the ResNet stem's pool on an odd size
  [1, 3, 8, 7, [3, 3], [2, 2], [1, 1], [2, 2]], // dilation 2
  [3, 1, 5, 5, [2, 2], [2, 2], [0, 0], [1, 1]],
  [2, 2, 6, 11, [3, 2], [1, 2], [1, 0], [1, 2]],
  [1, 1, 10, 10, [3, 3], [1, 1], [1, 1], [1, 1]], // stride 1: every value in up to 9 windows
  [1, 2, 9, 8, [5, 3], [2, 3], [2, 1], [1, 1]],
];

test('maxPool2d and its backward equal ref, ties to the first maximum, NaN propagates (forward exact; backward rtol 1e-6)', { skip }, async () => {
  for (const c of MAX) {
    const p = params(c, true);
    for (const ties of [false, true]) {
      const n = p.N * p.C * p.H * p.W;
      const x = rand(rng, n);
      // ties: values from {0,1,2} so most windows hold several maxima
      if (ties) for (let i = 0; i < n; i++) x[i] = Math.floor(rng.uniform(0, 3));
      if (ties && n > 20) x[17] = NaN;
      const m = p.N * p.C * p.OH * p.OW;
      const dy = rand(rng, m);
      const want = { y: new Float32Array(m), dx: new Float32Array(n) };
      ref.maxPool2d(x, want.y, p);
      ref.maxPool2dBackward(x, dy, want.dx, p);
      const got = await onGpu(b, { x, dy, y: new Float32Array(m), dx: rand(rng, n) }, (s) => {
        b.maxPool2d(s.x!, s.y!, p);
        b.maxPool2dBackward(s.x!, s.dy!, s.dx!, p);
      });
      assertClose(got.y, want.y, 0, 0, `max y ${name(p)} ties=${ties}`);
      assertClose(got.dx, want.dx, 1e-6, 0, `max dx ${name(p)} ties=${ties}`);
    }
  }
});

const AVG: Case[] = [
  [1, 1, 1, 1, [1, 1], [1, 1], [0, 0], [1, 1]],
  [3, 2, 7, 9, [3, 3], [2, 2], [1, 1], [1, 1]],
  [1, 3, 8, 7, [2, 2], [2, 2], [0, 0], [1, 1]],
  [2, 1, 9, 6, [5, 4], [3, 1], [2, 2], [1, 1]],
  [1, 2, 5, 11, [3, 2], [1, 2], [1, 1], [1, 1]],
];

test('avgPool2d and its backward equal ref, padding counted or not (rtol 1e-5, atol 1e-6)', { skip }, async () => {
  for (const c of AVG) {
    for (const countIncludePad of [true, false]) {
      const p = params(c, false, countIncludePad);
      const n = p.N * p.C * p.H * p.W,
        m = p.N * p.C * p.OH * p.OW;
      const x = rand(rng, n),
        dy = rand(rng, m);
      const want = { y: new Float32Array(m), dx: new Float32Array(n) };
      ref.avgPool2d(x, want.y, p);
      ref.avgPool2dBackward(dy, want.dx, p);
      const got = await onGpu(b, { x, dy, y: new Float32Array(m), dx: rand(rng, n) }, (s) => {
        b.avgPool2d(s.x!, s.y!, p);
        b.avgPool2dBackward(s.dy!, s.dx!, p);
      });
      assertClose(got.y, want.y, 1e-5, 1e-6, `avg y ${name(p)} includePad=${countIncludePad}`);
      assertClose(got.dx, want.dx, 1e-5, 1e-6, `avg dx ${name(p)} includePad=${countIncludePad}`);
    }
  }
});

test('adaptiveAvgPool2d and its backward equal ref: global, shrinking, identity, growing (rtol 1e-5, atol 1e-6)', { skip }, async () => {
  const cases: [number, number, number, number, number, number][] = [
    [3, 2, 7, 7, 1, 1],
    [1, 1, 1, 1, 1, 1],
    [1, 3, 5, 7, 3, 2],
    [3, 1, 4, 4, 4, 4],
    [1, 2, 3, 5, 6, 7],
    [2, 1, 10, 9, 4, 3],
  ];
  for (const [N, C, H, W, OH, OW] of cases) {
    const n = N * C * H * W,
      m = N * C * OH * OW;
    const x = rand(rng, n),
      dy = rand(rng, m);
    const want = { y: new Float32Array(m), dx: new Float32Array(n) };
    ref.adaptiveAvgPool2d(x, want.y, N, C, H, W, OH, OW);
    ref.adaptiveAvgPool2dBackward(dy, want.dx, N, C, H, W, OH, OW);
    const got = await onGpu(b, { x, dy, y: new Float32Array(m), dx: rand(rng, n) }, (s) => {
      b.adaptiveAvgPool2d(s.x!, s.y!, N, C, H, W, OH, OW);
      b.adaptiveAvgPool2dBackward(s.dy!, s.dx!, N, C, H, W, OH, OW);
    });
    assertClose(got.y, want.y, 1e-5, 1e-6, `adaptive y [${N},${C},${H},${W}] -> ${OH}x${OW}`);
    assertClose(got.dx, want.dx, 1e-5, 1e-6, `adaptive dx [${N},${C},${H},${W}] -> ${OH}x${OW}`);
  }
});
