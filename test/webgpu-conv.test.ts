// WebGPU convolutions (forward, fused epilogue, backward data, backward filter) vs the ref backend
// (the oracle) on Node's WebGPU (Dawn; llvmpipe here, so sizes are small). The shapes cover each
// path of kernels/conv.ts: the implicit-GEMM gather, 1×1 stride-1 convs as batched GEMM (with and
// without vec4 loads), stride phases with and without taps in backward data, split-K in backward
// filter, groups and depthwise, dilation, padding larger than 1, batch 1 and 3.
import assert from 'node:assert/strict';
import { test, before } from 'node:test';
import { RNG } from '../src/base/rng.js';
import type { Conv2dParams } from '../src/backend/backend.js';
import { RefBackend } from '../src/backend/ref/ref.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { tuning } from '../src/backend/webgpu/kernels/gemm.js';
import { webgpuSkipReason, webgpuForTests } from './webgpu-env.js';
import { randArray } from './helpers.js';
import { assertScaled, upload } from './webgpu-kernel-util.js';

const skip = await webgpuSkipReason(); // false, or why there is no webgpu here (an error in CI)
let gpu: WebGpuBackend;
const ref = new RefBackend();
before(async () => {
  if (!skip) gpu = await webgpuForTests();
});

interface Case {
  name: string;
  N: number;
  C: number;
  H: number;
  W: number;
  K: number;
  R: number;
  S: number;
  s?: [number, number];
  pad?: [number, number];
  dil?: [number, number];
  groups?: number;
  /** conv2dFused's epilogue [bias, residual, relu]; by default cycled through four variants. */
  fused?: [boolean, boolean, boolean];
  /** Force the 128×128 tiles (8×8 per thread) wherever M and N reach 128. */
  big?: boolean;
}

function params(c: Case): Conv2dParams {
  const [strideH, strideW] = c.s ?? [1, 1];
  const [padH, padW] = c.pad ?? [0, 0];
  const [dilH, dilW] = c.dil ?? [1, 1];
  const OH = Math.floor((c.H + 2 * padH - dilH * (c.R - 1) - 1) / strideH) + 1;
  const OW = Math.floor((c.W + 2 * padW - dilW * (c.S - 1) - 1) / strideW) + 1;
  return { N: c.N, C: c.C, H: c.H, W: c.W, K: c.K, R: c.R, S: c.S, strideH, strideW, padH, padW, dilH, dilW, groups: c.groups ?? 1, OH, OW };
}

const cases: Case[] = [
  { name: '3×3 pad 1, batch 1', N: 1, C: 3, H: 5, W: 5, K: 4, R: 3, S: 3, pad: [1, 1] },
  { name: '3×3 stride 2 on odd 9×7, batch 3', N: 3, C: 5, H: 9, W: 7, K: 6, R: 3, S: 3, s: [2, 2], pad: [1, 1] },
  { name: '3×3 dilation 2 pad 2', N: 1, C: 4, H: 8, W: 8, K: 5, R: 3, S: 3, pad: [2, 2], dil: [2, 2] },
  { name: 'groups 2', N: 2, C: 6, H: 6, W: 5, K: 4, R: 3, S: 3, pad: [1, 1], groups: 2 },
  { name: 'depthwise 3×3 stride 2', N: 3, C: 5, H: 7, W: 7, K: 5, R: 3, S: 3, s: [2, 2], pad: [1, 1], groups: 5 },
  { name: '5×5 pad 3', N: 1, C: 2, H: 6, W: 5, K: 3, R: 5, S: 5, pad: [3, 3] },
  { name: '7×7 stride-2 stem pad 3', N: 1, C: 3, H: 20, W: 18, K: 8, R: 7, S: 7, s: [2, 2], pad: [3, 3] },
  { name: 'ResNet 1×1 stride-2 downsample', N: 3, C: 8, H: 7, W: 7, K: 16, R: 1, S: 1, s: [2, 2] },
  { name: '1×1 stride 1 (plain GEMM, vec4)', N: 2, C: 8, H: 4, W: 4, K: 12, R: 1, S: 1 },
  { name: '1×1 stride 1 odd sizes, groups 3', N: 3, C: 9, H: 5, W: 3, K: 6, R: 1, S: 1, groups: 3 },
  { name: 'asymmetric 3×2, strides 2×3, pads 2×1, dilations 1×2', N: 2, C: 3, H: 11, W: 13, K: 4, R: 3, S: 2, s: [2, 3], pad: [2, 1], dil: [1, 2] },
  { name: '2×2 stride 3 (phases without taps)', N: 1, C: 2, H: 8, W: 7, K: 3, R: 2, S: 2, s: [3, 3], pad: [1, 0] },
  { name: '3×3 batch 3 16×16 (split-K filter gradient), 70 channels out', N: 3, C: 4, H: 16, W: 16, K: 70, R: 3, S: 3, pad: [1, 1] },
  { name: '3×3 64 channels in at 5×5 (split-K forward)', N: 1, C: 64, H: 5, W: 5, K: 8, R: 3, S: 3, pad: [1, 1], fused: [true, true, true] },
  { name: '3×3 128 channels out at 12×12 (128×128 tiles)', N: 1, C: 4, H: 12, W: 12, K: 128, R: 3, S: 3, pad: [1, 1], big: true, fused: [true, true, true] },
  { name: '1×1 130 channels out at 12×12 (128×128 tiles)', N: 2, C: 8, H: 12, W: 12, K: 130, R: 1, S: 1, big: true, fused: [true, false, true] },
  { name: '1×1 600 channels in (split-K plain GEMM)', N: 1, C: 600, H: 3, W: 3, K: 8, R: 1, S: 1, fused: [true, true, true] },
];

const TOL = 1e-5;
const tolName = `atol ${TOL} × max|ref|`;

function data(p: Conv2dParams, seed: number) {
  const rng = new RNG(seed);
  const Cg = p.C / p.groups;
  return {
    x: randArray(p.N * p.C * p.H * p.W, rng),
    w: randArray(p.K * Cg * p.R * p.S, rng),
    bias: randArray(p.K, rng),
    dy: randArray(p.N * p.K * p.OH * p.OW, rng),
    res: randArray(p.N * p.K * p.OH * p.OW, rng),
  };
}

async function run(
  big: boolean,
  n: number,
  f: (out: ReturnType<WebGpuBackend['alloc']>) => void,
  inputs: ReturnType<WebGpuBackend['alloc']>[],
): Promise<Float32Array> {
  const out = gpu.alloc(n);
  gpu.write(out, randArray(n, new RNG(99))); // garbage: every kernel must overwrite
  const saved = tuning.bigTileMinGroups;
  if (big) tuning.bigTileMinGroups = 1;
  try {
    f(out);
  } finally {
    tuning.bigTileMinGroups = saved;
  }
  const got = await gpu.read(out);
  for (const s of [out, ...inputs]) gpu.free(s);
  assert.equal(gpu.allocatedFloats(), 0, 'floats left allocated (a split-K partial not freed?)');
  return got;
}

cases.forEach((c, idx) => {
  const p = params(c);
  const yLen = p.N * p.K * p.OH * p.OW;
  test(`webgpu conv2d ${c.name} = ref (${tolName})`, { skip }, async () => {
    const d = data(p, idx);
    const bias = idx % 2 === 0 ? d.bias : null;
    const expected = new Float32Array(yLen);
    ref.conv2d(d.x, d.w, bias, expected, p);
    const [x, w] = [d.x, d.w].map((v) => upload(gpu, v));
    const b = bias ? upload(gpu, bias) : null;
    const got = await run(!!c.big, yLen, (y) => gpu.conv2d(x, w, b, y, p), b ? [x, w, b] : [x, w]);
    assertScaled(got, expected, TOL, 'y');
  });

  test(`webgpu conv2dFused ${c.name}: bias, residual, ReLU = ref (${tolName})`, { skip }, async () => {
    const d = data(p, idx);
    // cycle through the epilogue variants: (bias, residual, relu)
    const [hasBias, hasRes, relu] =
      c.fused ??
      [
        [true, true, true],
        [false, true, false],
        [true, false, true],
        [false, false, true],
      ][idx % 4];
    const expected = new Float32Array(yLen);
    ref.conv2dFused(d.x, d.w, hasBias ? d.bias : null, expected, p, relu, hasRes ? d.res : null, true);
    const x = upload(gpu, d.x),
      w = upload(gpu, d.w);
    const b = hasBias ? upload(gpu, d.bias) : null,
      r = hasRes ? upload(gpu, d.res) : null;
    const got = await run(!!c.big, yLen, (y) => gpu.conv2dFused(x, w, b, y, p, relu, r, true), [x, w, ...(b ? [b] : []), ...(r ? [r] : [])]);
    assertScaled(got, expected, TOL, 'y');
  });

  test(`webgpu conv2dBackwardData ${c.name} = ref (${tolName})`, { skip }, async () => {
    const d = data(p, idx);
    const expected = new Float32Array(p.N * p.C * p.H * p.W);
    ref.conv2dBackwardData(d.dy, d.w, expected, p);
    const [dy, w] = [d.dy, d.w].map((v) => upload(gpu, v));
    const got = await run(!!c.big, expected.length, (dx) => gpu.conv2dBackwardData(dy, w, dx, p), [dy, w]);
    assertScaled(got, expected, TOL, 'dx');
  });

  test(`webgpu conv2dBackwardFilter ${c.name} = ref (${tolName})`, { skip }, async () => {
    const d = data(p, idx);
    const expected = new Float32Array(d.w.length);
    ref.conv2dBackwardFilter(d.x, d.dy, expected, p);
    const [x, dy] = [d.x, d.dy].map((v) => upload(gpu, v));
    const got = await run(!!c.big, expected.length, (dw) => gpu.conv2dBackwardFilter(x, dy, dw, p), [x, dy]);
    assertScaled(got, expected, TOL, 'dw');
  });
});
