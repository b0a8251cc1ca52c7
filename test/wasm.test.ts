// The wasm backend against the ref backend (the oracle), kernel by kernel, on awkward shapes.
// Runs with 2 threads so the worker pool and the tile split are exercised too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RefBackend } from '../src/backend/ref/ref.js';
import type { Conv2dParams } from '../src/backend/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/wasm.js';
import { RNG } from '../src/base/rng.js';
import { WasmHeap } from '../src/backend/wasm/memory.js';

const ref = new RefBackend();
let be: WasmBackend;
const rng = new RNG(1234);

before(async () => {
  be = await createWasmBackend({ threads: 2 });
});
after(() => be.dispose());

function rand(n: number, inHeap = true): Float32Array {
  const a = inHeap ? be.alloc(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(-1, 1);
  return a;
}

/** |got - want| <= atol + rtol * |want| elementwise; reports the worst element. */
function close(got: Float32Array, want: Float32Array, rtol: number, atol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = -1, worstX = 0;
  for (let i = 0; i < got.length; i++) {
    const x = Math.abs(got[i] - want[i]) - (atol + rtol * Math.abs(want[i]));
    if (!(x <= 0) && (worst < 0 || !(x <= worstX))) { worst = i; worstX = x; }
  }
  if (worst >= 0) assert.fail(`${what}: element ${worst} is ${got[worst]}, want ${want[worst]}`);
}

/** The scale of each C element, sum_k |a||b|, so GEMM errors are judged against it. */
function gemmScale(ta: boolean, tb: boolean, M: number, N: number, K: number, A: Float32Array, B: Float32Array): Float32Array {
  const s = new Float32Array(M * N);
  ref.gemm(ta, tb, M, N, K, A.map(Math.abs), B.map(Math.abs), s, false);
  return s;
}

test('gemm equals ref for all transposes, accumulate, awkward sizes (error <= 1e-5 * sum|a||b|)', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1], [1, 17, 3], [3, 5, 17], [17, 1, 5], [5, 3, 1], [2, 16, 1], [33, 47, 65], [100, 37, 513], [257, 19, 7], [6, 530, 40],
  ];
  for (const [M, N, K] of shapes) {
    for (const ta of [false, true]) for (const tb of [false, true]) for (const acc of [false, true]) {
      const A = rand(M * K), B = rand(K * N), C = rand(M * N), want = Float32Array.from(C);
      be.gemm(ta, tb, M, N, K, A, B, C, acc);
      ref.gemm(ta, tb, M, N, K, A, B, want, acc);
      const scale = gemmScale(ta, tb, M, N, K, A, B);
      for (let i = 0; i < M * N; i++) {
        const tol = 1e-5 * (scale[i] + (acc ? Math.abs(want[i]) : 0)) + 1e-7;
        if (!(Math.abs(C[i] - want[i]) <= tol)) {
          assert.fail(`gemm ${M}x${N}x${K} tA=${ta} tB=${tb} acc=${acc}: C[${i}] = ${C[i]}, want ${want[i]}`);
        }
      }
      for (const x of [A, B, C]) be.free(x);
    }
  }
});

test('gemm on arrays outside wasm memory and on subarray views (error <= 1e-5 * sum|a||b|)', () => {
  const M = 19, N = 23, K = 29;
  const A = rand(M * K, false), Bbig = rand(K * N + 8), B = Bbig.subarray(8), C = new Float32Array(M * N).fill(3);
  const want = Float32Array.from(C);
  be.gemm(false, false, M, N, K, A, B, C, true);
  ref.gemm(false, false, M, N, K, A, B, want, true);
  const scale = gemmScale(false, false, M, N, K, A, B);
  for (let i = 0; i < M * N; i++) assert.ok(Math.abs(C[i] - want[i]) <= 1e-5 * (scale[i] + 3) + 1e-7, `C[${i}]`);
});

test('gemm tiles computed by the worker thread equal ref (error <= 1e-5 * sum|a||b|)', () => {
  const M = 192, N = 256, K = 96;
  const A = rand(M * K), B = rand(K * N), C = be.alloc(M * N), want = new Float32Array(M * N);
  be.workersOnly = true;
  try {
    be.gemm(false, false, M, N, K, A, B, C, false);
  } finally {
    be.workersOnly = false;
  }
  const tasks = be.lastJobTasksPerThread();
  assert.equal(tasks.length, 2);
  assert.ok(tasks[0] === 0 && tasks[1] >= 4, `tasks per thread ${tasks}`);
  ref.gemm(false, false, M, N, K, A, B, want, false);
  const scale = gemmScale(false, false, M, N, K, A, B);
  for (let i = 0; i < M * N; i++) assert.ok(Math.abs(C[i] - want[i]) <= 1e-5 * scale[i] + 1e-7, `C[${i}]`);
});

test('heap: zero-filled blocks, 64-byte aligned, reused after free, views survive growth', () => {
  const a = be.alloc(5);
  assert.equal(a.byteOffset % 64, 0);
  a.fill(7);
  const before = be.allocatedFloats();
  be.free(a);
  assert.equal(be.allocatedFloats(), before - 5);
  const b = be.alloc(5);
  assert.equal(b.byteOffset, a.byteOffset, 'same-size block is reused');
  assert.deepEqual(Array.from(b), [0, 0, 0, 0, 0]);
  b[4] = 42;
  const len0 = be.heap.byteLength;
  const huge = be.alloc((len0 / 4) | 0); // forces the memory to grow
  assert.ok(be.heap.byteLength > len0);
  assert.equal(b[4], 42, 'old view still reads the same memory after grow');
  assert.equal(huge[huge.length - 1], 0);
  be.free(huge);
  be.free(b);
  assert.equal(be.alloc(0).length, 0);
});

test('heap: coalesces freed neighbours to serve a bigger block before growing', () => {
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true });
  const h = new WasmHeap(mem, true, 0);
  const offs = [0, 1, 2, 3].map(() => h.allocBytes(16384, true));
  assert.equal(h.byteLength, 65536);
  h.freeBytesAt(offs[1]);
  h.freeBytesAt(offs[2]);
  assert.equal(h.allocBytes(32768, true), offs[1], 'two freed neighbours merged');
  assert.equal(h.byteLength, 65536, 'no growth');
  h.freeBytesAt(offs[3]);
  const big = h.allocBytes(65536, true); // the trailing free block returns to the bump region, then grows
  assert.equal(big, offs[3]);
  assert.ok(h.byteLength > 65536);
  assert.throws(() => h.freeBytesAt(12345), /unknown block/);
});

test('heap: without shared memory the size is fixed and exhaustion is a clear error', () => {
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  const h = new WasmHeap(mem, false, 0);
  h.allocBytes(60000, true);
  assert.throws(() => h.allocBytes(10000, true), /out of memory/);
});

function convParams(N: number, C: number, H: number, W: number, K: number, R: number, S: number,
                    stride: number, pad: number, dil: number, groups: number, padW = pad, strideW = stride): Conv2dParams {
  const OH = Math.floor((H + 2 * pad - dil * (R - 1) - 1) / stride) + 1;
  const OW = Math.floor((W + 2 * padW - dil * (S - 1) - 1) / strideW) + 1;
  return { N, C, H, W, K, R, S, strideH: stride, strideW, padH: pad, padW, dilH: dil, dilW: dil, groups, OH, OW };
}

const CONV_CASES: [string, Conv2dParams][] = [
  ['1x1 s1 (plain GEMM on NCHW)', convParams(2, 5, 3, 17, 7, 1, 1, 1, 0, 1, 1)],
  ['1x1 s2 odd size', convParams(3, 6, 5, 5, 10, 1, 1, 2, 0, 1, 1)],
  ['3x3 s1 p1', convParams(2, 3, 5, 17, 5, 3, 3, 1, 1, 1, 1)],
  ['3x3 s2 p1 odd size', convParams(2, 7, 17, 5, 9, 3, 3, 2, 1, 1, 1)],
  ['7x7 s2 p3 (stem)', convParams(1, 3, 17, 17, 4, 7, 7, 2, 3, 1, 1)],
  ['3x3 dilation 2 p2', convParams(2, 4, 9, 11, 6, 3, 3, 1, 2, 2, 1)],
  ['3x3 groups 2', convParams(2, 6, 5, 5, 10, 3, 3, 1, 1, 1, 2)],
  ['3x3 s2 groups 3 (ResNeXt-like)', convParams(1, 9, 7, 9, 6, 3, 3, 2, 1, 1, 3)],
  ['depthwise 3x3', convParams(2, 5, 6, 7, 5, 3, 3, 1, 1, 1, 5)],
  ['1x1 on 1x1 images', convParams(5, 17, 1, 1, 3, 1, 1, 1, 0, 1, 1)],
  ['3x3 no padding', convParams(2, 3, 5, 6, 4, 3, 3, 1, 0, 1, 1)],
  ['2x3 kernel, asymmetric pad and stride', convParams(2, 3, 9, 8, 5, 2, 3, 2, 1, 1, 1, 0, 1)],
  ['3x3 s3 padding 2 (pad > dil*(R-1)/2)', convParams(1, 2, 7, 7, 3, 3, 3, 3, 2, 1, 1)],
  ['5x5 p1 s1 (pad < dil*(R-1))', convParams(2, 3, 8, 9, 4, 5, 5, 1, 1, 1, 1)],
  ['wide: 40 channels, 20x20', convParams(2, 40, 20, 20, 36, 3, 3, 1, 1, 1, 1)],
  ['1x1 s1 p1 (padding beyond the kernel)', convParams(2, 3, 4, 5, 2, 1, 1, 1, 1, 1, 1)],
];

test('strided conv backwardData in image chunks equals ref (rtol 1e-4, atol 1e-5)', () => {
  const p = convParams(5, 3, 9, 7, 4, 3, 3, 2, 1, 1, 1);
  const w = rand(4 * 3 * 9), dy = rand(5 * 4 * p.OH * p.OW);
  const dx = be.alloc(5 * 3 * 9 * 7), dxr = new Float32Array(dx.length);
  const saved = be.colsBytes;
  be.colsBytes = 2 * 3 * 9 * p.OH * p.OW * 4; // two images per chunk: 3 chunks
  try {
    be.conv2dBackwardData(dy, w, dx, p);
  } finally {
    be.colsBytes = saved;
  }
  ref.conv2dBackwardData(dy, w, dxr, p);
  close(dx, dxr, 1e-4, 1e-5, 'dx');
});

for (const [name, p] of CONV_CASES) {
  test(`conv2d forward/backwardData/backwardFilter equal ref: ${name} (rtol 1e-4, atol 1e-5)`, () => {
    const { N, C, H, W, K, R, S, OH, OW, groups } = p;
    const x = rand(N * C * H * W), w = rand(K * (C / groups) * R * S), bias = rand(K), dy = rand(N * K * OH * OW);
    const y = be.alloc(N * K * OH * OW), yr = new Float32Array(y.length);
    be.conv2d(x, w, bias, y, p);
    ref.conv2d(x, w, bias, yr, p);
    close(y, yr, 1e-4, 1e-5, 'y');
    const dx = be.alloc(x.length).fill(9), dxr = new Float32Array(x.length);
    be.conv2dBackwardData(dy, w, dx, p);
    ref.conv2dBackwardData(dy, w, dxr, p);
    close(dx, dxr, 1e-4, 1e-5, 'dx');
    const dw = be.alloc(w.length).fill(9), dwr = new Float32Array(w.length);
    be.conv2dBackwardFilter(x, dy, dw, p);
    ref.conv2dBackwardFilter(x, dy, dwr, p);
    close(dw, dwr, 1e-4, 1e-5, 'dw');
    for (const a of [x, w, bias, dy, y, dx, dw]) be.free(a);
  });
}
