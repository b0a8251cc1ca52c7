// The wasm backend's batch-1 inference paths (issue 16) against the ref backend: weights packed
// once for constant weights, the narrow micro-kernels for the last 1-8 columns of a row (7x7 = 49
// = 3*16 + 1 columns), the finer task split for small maps. 2 threads, awkward shapes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RefBackend } from '../src/backend/ref/ref.js';
import type { Conv2dParams } from '../src/backend/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/wasm.js';
import type { HeapBlock } from '../src/backend/wasm/memory.js';
import { RNG } from '../src/base/rng.js';

const ref = new RefBackend();
let be: WasmBackend;
const rng = new RNG(1616);

before(async () => {
  be = await createWasmBackend({ threads: 2 });
});
after(() => be.dispose());

/** n values uniform in [-1, 1) in a plain array (what the ref oracle and the assertions read). */
function rand(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(-1, 1);
  return a;
}

/** A wasm heap block holding a's values. */
function up(a: Float32Array): HeapBlock {
  const b = be.alloc(a.length);
  be.write(b, a);
  return b;
}

/** |got - want| <= atol + rtol * |want| elementwise; reports the worst element. */
function close(got: Float32Array, want: Float32Array, rtol: number, atol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]))) assert.fail(`${what}: element ${i} is ${got[i]}, want ${want[i]}`);
  }
}

function conv(N: number, C: number, H: number, W: number, K: number, R: number, stride: number, pad: number, groups = 1): Conv2dParams {
  const OH = Math.floor((H + 2 * pad - R) / stride) + 1,
    OW = Math.floor((W + 2 * pad - R) / stride) + 1;
  return { N, C, H, W, K, R, S: R, strideH: stride, strideW: stride, padH: pad, padW: pad, dilH: 1, dilW: 1, groups, OH, OW };
}

const fusedCases: [string, Conv2dParams][] = [
  ['1x1 7x7 map (49 columns: a 1-column tail), K=70', conv(1, 40, 7, 7, 70, 1, 1, 0)],
  ['3x3 s2 14x14 -> 7x7, K=33 odd', conv(1, 24, 14, 14, 33, 3, 2, 1)],
  ['1x1 14x14 map (196 columns: a 4-column tail), batch 3', conv(3, 20, 14, 14, 18, 1, 1, 0)],
  ['3x3 on 2x3 (6 columns), K=5', conv(1, 7, 2, 3, 5, 3, 1, 1)],
  ['3x3 on 5x5 (25 columns: a 9-column tail), groups 2', conv(1, 12, 5, 5, 10, 3, 1, 1, 2)],
  ['1x1 s2 odd 9x11, batch 3, K=300 (two K chunks of A)', conv(3, 300, 9, 11, 17, 1, 2, 0)],
  ['7x7 s2 stem-like 3->9 on 17x17', conv(1, 3, 17, 17, 9, 7, 2, 3)],
  ['1x1 on 1x1', conv(1, 5, 1, 1, 3, 1, 1, 0)],
];

for (const [name, p] of fusedCases) {
  test(`conv2dFused with constant weights packs them once and equals ref conv+bias+residual+relu: ${name} (rtol 1e-4, atol 1e-5)`, () => {
    const Cg = p.C / p.groups;
    const x = rand(p.N * p.C * p.H * p.W),
      w = rand(p.K * Cg * p.R * p.S),
      b = rand(p.K),
      res = rand(p.N * p.K * p.OH * p.OW);
    const [xb, wb, bb, rb] = [x, w, b, res].map(up);
    const y = be.alloc(res.length),
      want = new Float32Array(res.length);
    const savedWino = be.winograd;
    be.winograd = 'off';
    try {
      const packs = be.counters.packA;
      for (const [relu, residual] of [
        [true, true],
        [false, false],
        [true, false],
      ] as const) {
        be.conv2dFused(xb, wb, bb, y, p, relu, residual ? rb : null, true);
        ref.conv2dFused(x, w, b, want, p, relu, residual ? res : null, true);
        close(be.readSync(y), want, 1e-4, 1e-5, `relu ${relu} residual ${residual}`);
      }
      assert.equal(be.counters.packA - packs, 1, 'the weights were packed once for the three calls');
      const live = be.heap.liveByteCount;
      be.free(wb);
      assert.ok(live - be.heap.liveByteCount > w.length * 4, 'the packed copy is freed with the weights');
    } finally {
      be.winograd = savedWino;
    }
    for (const a of [xb, bb, rb, y]) be.free(a);
  });
}

test('gemm with 1..8-column tails (narrow micro-kernels) equals ref for every N from 1 to 40 (error <= 1e-5 * sum|a||b|)', () => {
  const M = 13,
    K = 37;
  for (let N = 1; N <= 40; N++) {
    const A = rand(M * K),
      B = rand(K * N),
      Cb = be.alloc(M * N),
      want = new Float32Array(M * N);
    const [Ab, Bb] = [A, B].map(up);
    be.gemm(false, false, M, N, K, Ab, Bb, Cb, false);
    ref.gemm(false, false, M, N, K, A, B, want, false);
    const C = be.readSync(Cb);
    for (let i = 0; i < M * N; i++) {
      let bound = 0;
      const r = Math.floor(i / N),
        j = i % N;
      for (let k = 0; k < K; k++) bound += Math.abs(A[r * K + k] * B[k * N + j]);
      assert.ok(Math.abs(C[i] - want[i]) <= 1e-5 * bound, `N=${N} element ${i}: ${C[i]} vs ${want[i]}`);
    }
    for (const a of [Ab, Bb, Cb]) be.free(a);
  }
});

test('a batch-1 7x7 layer (2048x512 weights) is split into at least 16 tasks on 2 threads, and equals ref (rtol 1e-4, atol 1e-4)', () => {
  const p = conv(1, 512, 7, 7, 2048, 1, 1, 0);
  const x = rand(512 * 49),
    w = rand(2048 * 512),
    b = rand(2048);
  const [xb, wb, bb] = [x, w, b].map(up);
  const y = be.alloc(2048 * 49),
    want = new Float32Array(2048 * 49);
  be.conv2dFused(xb, wb, bb, y, p, true, null, true);
  const tasks = be.lastJobTasksPerThread();
  assert.equal(tasks.length, 2);
  assert.ok(tasks[0] + tasks[1] >= 16, `tasks ${tasks.join(' + ')}`);
  ref.conv2dFused(x, w, b, want, p, true, null, true);
  close(be.readSync(y), want, 1e-4, 1e-4, 'y');
  for (const a of [xb, wb, bb, y]) be.free(a);
});

const groupedCases: [string, Conv2dParams][] = [
  ['ResNeXt stage 1: 32 groups of 4, 3x3 on 10x13', conv(1, 128, 10, 13, 128, 3, 1, 1, 32)],
  ['8 per group, 3x3 s2 on odd 11x9, batch 3', conv(3, 32, 11, 9, 32, 3, 2, 1, 4)],
  ['Cg 3 -> Kg 12, 3x3 on 7x7 (a 7-pixel row)', conv(1, 6, 7, 7, 24, 3, 1, 1, 2)],
  ['16 per group, 3x3 s2 on 14x14 -> 7x7', conv(1, 64, 14, 14, 64, 3, 2, 1, 4)],
  ['1x1 groups 8 (Cg 2, Kg 4) on 5x17', conv(1, 16, 5, 17, 32, 1, 1, 0, 8)],
  ['5x5 s2 p2 groups 2 on 1x1 (all padding)', conv(1, 4, 1, 1, 8, 5, 2, 2, 2)],
];

for (const [name, p] of groupedCases) {
  test(`grouped conv by the direct kernel equals ref (conv2d, and conv2dFused with bias, residual, ReLU): ${name} (rtol 1e-4, atol 1e-5)`, () => {
    const Cg = p.C / p.groups;
    const x = rand(p.N * p.C * p.H * p.W),
      w = rand(p.K * Cg * p.R * p.S),
      b = rand(p.K),
      res = rand(p.N * p.K * p.OH * p.OW);
    const [xb, wb, bb, rb] = [x, w, b, res].map(up);
    const y = be.alloc(res.length),
      want = new Float32Array(res.length);
    const n0 = be.counters.grouped,
      savedMax = be.groupedDirectMax;
    be.groupedDirectMax = 32; // the kernel takes any channels per group; the default picks it for <= 8
    be.conv2d(xb, wb, null, y, p);
    ref.conv2d(x, w, null, want, p);
    close(be.readSync(y), want, 1e-4, 1e-5, 'conv2d');
    be.conv2dFused(xb, wb, bb, y, p, true, rb, true);
    ref.conv2dFused(x, w, b, want, p, true, res, true);
    close(be.readSync(y), want, 1e-4, 1e-5, 'conv2dFused');
    be.conv2dFused(xb, wb, bb, y, p, true, null, false);
    ref.conv2dFused(x, w, b, want, p, true, null, false);
    close(be.readSync(y), want, 1e-4, 1e-5, 'conv2dFused without residual');
    assert.equal(be.counters.grouped - n0, 3, 'the direct grouped kernel ran');
    be.groupedDirectMax = savedMax;
    for (const a of [xb, wb, bb, rb, y]) be.free(a);
  });
}

test('grouped conv with row dilation 2 equals ref (rtol 1e-4, atol 1e-5)', () => {
  const p: Conv2dParams = { ...conv(1, 16, 9, 8, 16, 3, 1, 1, 4), dilH: 2, padH: 2, OH: 9 };
  const x = rand(16 * 72),
    w = rand(16 * 4 * 9);
  const [xb, wb] = [x, w].map(up);
  const y = be.alloc(16 * 9 * 8),
    want = new Float32Array(y.length);
  const n0 = be.counters.grouped;
  be.conv2d(xb, wb, null, y, p);
  ref.conv2d(x, w, null, want, p);
  assert.equal(be.counters.grouped - n0, 1);
  close(be.readSync(y), want, 1e-4, 1e-5, 'y');
  for (const a of [xb, wb, y]) be.free(a);
});
