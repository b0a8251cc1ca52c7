// The wasm backend against the ref backend (the oracle), kernel by kernel, on awkward shapes.
// Runs with 2 threads so the worker pool and the tile split are exercised too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RefBackend } from '../src/backend/ref/ref.js';
import { adamStep, sgdStep } from '../src/backend/ref/optim.js';
import type { Conv2dParams, Pool2dParams, Storage } from '../src/backend/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/wasm.js';
import { RNG } from '../src/base/rng.js';
import { HeapBlock, WasmHeap } from '../src/backend/wasm/memory.js';
import { execFileSync } from 'node:child_process';

const ref = new RefBackend();
let be: WasmBackend;
const rng = new RNG(1234);

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

/** A block of the wasm heap holding a's values: the backend's own storage, which kernels use in place. */
function put(a: Float32Array): HeapBlock {
  const b = be.alloc(a.length);
  be.write(b, a);
  return b;
}

/** The values of a heap block (a copy). */
function got(b: Storage): Float32Array {
  return be.readSync(b);
}

/** A heap block of n floats, all `v`. */
function filled(n: number, v: number): HeapBlock {
  const b = be.alloc(n);
  be.fill(b, v);
  return b;
}

/** |got - want| <= atol + rtol * |want| elementwise; reports the worst element. */
function close(got: Float32Array, want: Float32Array, rtol: number, atol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = -1,
    worstX = 0;
  for (let i = 0; i < got.length; i++) {
    if (Number.isNaN(got[i]) && Number.isNaN(want[i])) continue;
    const x = Math.abs(got[i] - want[i]) - (atol + rtol * Math.abs(want[i]));
    if (!(x <= 0) && (worst < 0 || !(x <= worstX))) {
      worst = i;
      worstX = x;
    }
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
    [1, 1, 1],
    [1, 17, 3],
    [3, 5, 17],
    [17, 1, 5],
    [5, 3, 1],
    [2, 16, 1],
    [33, 47, 65],
    [100, 37, 513],
    [257, 19, 7],
    [6, 530, 40],
  ];
  for (const [M, N, K] of shapes) {
    for (const ta of [false, true])
      for (const tb of [false, true])
        for (const acc of [false, true]) {
          const A = rand(M * K),
            B = rand(K * N),
            want = rand(M * N),
            [Ah, Bh, Ch] = [A, B, want].map(put);
          be.gemm(ta, tb, M, N, K, Ah, Bh, Ch, acc);
          ref.gemm(ta, tb, M, N, K, A, B, want, acc);
          const scale = gemmScale(ta, tb, M, N, K, A, B),
            C = got(Ch);
          for (let i = 0; i < M * N; i++) {
            const tol = 1e-5 * (scale[i] + (acc ? Math.abs(want[i]) : 0)) + 1e-7;
            if (!(Math.abs(C[i] - want[i]) <= tol)) {
              assert.fail(`gemm ${M}x${N}x${K} tA=${ta} tB=${tb} acc=${acc}: C[${i}] = ${C[i]}, want ${want[i]}`);
            }
          }
          for (const x of [Ah, Bh, Ch]) be.free(x);
        }
  }
});

test('gemm on arrays outside wasm memory and on subarray views (error <= 1e-5 * sum|a||b|)', () => {
  const M = 19,
    N = 23,
    K = 29;
  const A = rand(M * K),
    B = rand(K * N + 8).subarray(8),
    C = new Float32Array(M * N).fill(3);
  const want = Float32Array.from(C);
  be.gemm(false, false, M, N, K, A, B, C, true);
  ref.gemm(false, false, M, N, K, A, B, want, true);
  const scale = gemmScale(false, false, M, N, K, A, B);
  for (let i = 0; i < M * N; i++) assert.ok(Math.abs(C[i] - want[i]) <= 1e-5 * (scale[i] + 3) + 1e-7, `C[${i}]`);
});

test('gemm tiles computed by the worker thread equal ref (error <= 1e-5 * sum|a||b|)', () => {
  const M = 192,
    N = 256,
    K = 96;
  const A = rand(M * K),
    B = rand(K * N),
    Ch = be.alloc(M * N),
    want = new Float32Array(M * N);
  be.workersOnly = true;
  try {
    be.gemm(false, false, M, N, K, put(A), put(B), Ch, false);
  } finally {
    be.workersOnly = false;
  }
  const tasks = be.lastJobTasksPerThread();
  assert.equal(tasks.length, 2);
  assert.ok(tasks[0] === 0 && tasks[1] >= 4, `tasks per thread ${tasks}`);
  ref.gemm(false, false, M, N, K, A, B, want, false);
  const scale = gemmScale(false, false, M, N, K, A, B),
    C = got(Ch);
  for (let i = 0; i < M * N; i++) assert.ok(Math.abs(C[i] - want[i]) <= 1e-5 * scale[i] + 1e-7, `C[${i}]`);
});

test('heap: zero-filled blocks, 64-byte aligned, reused after free, values survive growth', () => {
  const a = filled(5, 7);
  assert.equal(a.offset % 64, 0);
  const before = be.allocatedFloats();
  be.free(a);
  assert.equal(be.allocatedFloats(), before - 5);
  const b = be.alloc(5);
  assert.equal(b.offset, a.offset, 'same-size block is reused');
  assert.deepEqual(Array.from(got(b)), [0, 0, 0, 0, 0]);
  be.write(b, [42], 4);
  const len0 = be.heap.byteLength;
  const huge = be.alloc((len0 / 4) | 0); // forces the memory to grow
  assert.ok(be.heap.byteLength > len0);
  assert.equal(got(b)[4], 42, 'the block reads the same values after growth');
  assert.equal(got(huge)[huge.length - 1], 0);
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

test('heap: a request takes the front of the smallest larger free block before fresh memory; a freed block merges with free neighbours on both sides', () => {
  const mem = new WebAssembly.Memory({ initial: 2, maximum: 64, shared: true });
  const h = new WasmHeap(mem, true, 0);
  const [a, b, c, d, e] = [32768, 8192, 16384, 8192, 64].map((n) => h.allocBytes(n, true));
  h.freeBytesAt(a);
  h.freeBytesAt(c);
  const top = e + 64; // the bump pointer
  assert.equal(h.allocBytes(4096, true), c, 'the smallest larger free block (16 KiB, not 32 KiB)');
  assert.equal(h.allocBytes(12288, true), c + 4096, 'its rest');
  assert.equal(h.allocBytes(40960, false), top, 'nothing free fits: the bump region');
  h.freeBytesAt(b);
  h.freeBytesAt(c);
  h.freeBytesAt(c + 4096); // merges with c, then b (left), then a (left): one block from 0
  assert.equal(h.allocBytes(32768 + 8192 + 16384, true), a, 'one merged block');
  assert.equal(h.byteLength, 131072, 'no growth');
  void d;
});

test('heap: a memory that cannot grow further gives a clear error naming scope(), dispose() and cross-origin isolation', () => {
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  const h = new WasmHeap(mem, false, 0);
  h.allocBytes(60000, true);
  assert.throws(
    () => h.allocBytes(10000, true),
    /out of memory \(need 0\.1 MiB, have 0\.1 MiB, the runtime refused to grow it; 0\.1 MiB in live tensors\).*scope\(\(\) => …\).*dispose\(\).*Cross-origin isolation would give threads, not more memory/,
  );
  assert.throws(() => h.allocBytes(2 ** 32, true), /limit 4096 MiB/);
});

function convParams(
  N: number,
  C: number,
  H: number,
  W: number,
  K: number,
  R: number,
  S: number,
  stride: number,
  pad: number,
  dil: number,
  groups: number,
  padW = pad,
  strideW = stride,
): Conv2dParams {
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
  const w = rand(4 * 3 * 9),
    dy = rand(5 * 4 * p.OH * p.OW);
  const dx = be.alloc(5 * 3 * 9 * 7),
    dxr = new Float32Array(dx.length);
  const saved = be.colsBytes;
  be.colsBytes = 2 * 3 * 9 * p.OH * p.OW * 4; // two images per chunk: 3 chunks
  try {
    be.conv2dBackwardData(put(dy), put(w), dx, p);
  } finally {
    be.colsBytes = saved;
  }
  ref.conv2dBackwardData(dy, w, dxr, p);
  close(got(dx), dxr, 1e-4, 1e-5, 'dx');
});

for (const [name, p] of CONV_CASES) {
  test(`conv2d forward/backwardData/backwardFilter equal ref: ${name} (rtol 1e-4, atol 1e-5)`, () => {
    const { N, C, H, W, K, R, S, OH, OW, groups } = p;
    const x = rand(N * C * H * W),
      w = rand(K * (C / groups) * R * S),
      bias = rand(K),
      dy = rand(N * K * OH * OW);
    const [xh, wh, bh, dyh] = [x, w, bias, dy].map(put);
    const y = be.alloc(N * K * OH * OW),
      yr = new Float32Array(y.length);
    be.conv2d(xh, wh, bh, y, p);
    ref.conv2d(x, w, bias, yr, p);
    close(got(y), yr, 1e-4, 1e-5, 'y');
    const dx = filled(x.length, 9),
      dxr = new Float32Array(x.length);
    be.conv2dBackwardData(dyh, wh, dx, p);
    ref.conv2dBackwardData(dy, w, dxr, p);
    close(got(dx), dxr, 1e-4, 1e-5, 'dx');
    const dw = filled(w.length, 9),
      dwr = new Float32Array(w.length);
    be.conv2dBackwardFilter(xh, dyh, dw, p);
    ref.conv2dBackwardFilter(x, dy, dwr, p);
    close(got(dw), dwr, 1e-4, 1e-5, 'dw');
    for (const a of [xh, wh, bh, dyh, y, dx, dw]) be.free(a);
  });
}

const ELT_SIZES = [1, 3, 5, 17, 100003];

test('unary relu/neg/abs/sqrt and affine equal ref exactly or within rtol 1e-6', () => {
  for (const n of ELT_SIZES) {
    const x = rand(n);
    if (n > 3) {
      x[0] = NaN;
      x[1] = -0;
      x[2] = 0;
    }
    const xh = put(x);
    for (const op of ['relu', 'neg', 'abs', 'sqrt', 'exp'] as const) {
      const y = be.alloc(n),
        yr = new Float32Array(n);
      be.unary(op, xh, y);
      ref.unary(op, x, yr);
      assert.deepEqual(
        Array.from(got(y), (v) => (Object.is(v, -0) ? '-0' : v)),
        Array.from(yr, (v) => (Object.is(v, -0) ? '-0' : v)),
        `${op} n=${n}`,
      );
      be.free(y);
    }
    const y = be.alloc(n),
      yr = new Float32Array(n);
    be.affine(xh, y, 0.3, -1.7);
    ref.affine(x, yr, 0.3, -1.7);
    close(got(y), yr, 1e-6, 1e-6, `affine n=${n}`);
  }
});

test('binary ops (same shape, scalar, broadcast), reluBackward, addInPlace equal ref exactly', () => {
  for (const n of ELT_SIZES) {
    const a = rand(n),
      b = rand(n);
    if (n > 3) {
      a[0] = NaN;
      b[1] = NaN;
      a[2] = 0;
      b[2] = -0;
    }
    const ah = put(a),
      bh = put(b);
    for (const op of ['add', 'sub', 'mul', 'div', 'max', 'min'] as const) {
      for (const scalar of [false, true]) {
        const bb = scalar ? b.subarray(0, 1) : b;
        const o = be.alloc(n),
          orf = new Float32Array(n);
        be.binary(op, ah, [n], scalar ? put(bb) : bh, [bb.length], o, [n]);
        ref.binary(op, a, [n], bb, [bb.length], orf, [n]);
        assert.deepEqual(Array.from(got(o), String), Array.from(orf, String), `${op} n=${n} scalar=${scalar}`);
        be.free(o);
      }
    }
    const dx = be.alloc(n),
      dxr = new Float32Array(n);
    be.reluBackward(ah, bh, dx);
    ref.reluBackward(a, b, dxr);
    assert.deepEqual(Array.from(got(dx), String), Array.from(dxr, String), `reluBackward n=${n}`);
    const y = Float32Array.from(a),
      yw = put(a);
    be.addInPlace(yw, bh);
    ref.addInPlace(y, b);
    assert.deepEqual(Array.from(got(yw), String), Array.from(y, String), `addInPlace n=${n}`);
  }
  // general broadcasting falls back to ref
  const a = rand(2 * 3 * 4),
    b = rand(3),
    o = be.alloc(24),
    orf = new Float32Array(24);
  be.binary('mul', put(a), [2, 3, 4], put(b), [1, 3, 1], o, [2, 3, 4]);
  ref.binary('mul', a, [2, 3, 4], b, [1, 3, 1], orf, [2, 3, 4]);
  assert.deepEqual(Array.from(got(o)), Array.from(orf));
});

// A float32 sum's rounding error scales with the sum of the magnitudes it adds, not with the result (a
// channel of 73,728 values in [-1, 1) can sum to near 0), so the tolerance is relative to sum |x| per
// output: a fixed rtol/atol passed or failed depending on where the test sat in the RNG's sequence.
test('sumTo equals ref for channel sums, row/column sums and general patterns (|error| <= 1e-6 x sum|x| + 1e-6 per output)', () => {
  const cases: [number[], number[]][] = [
    [
      [3, 5, 17],
      [1, 5, 1],
    ],
    [
      [2, 3, 4, 5],
      [1, 3, 1, 1],
    ],
    [
      [17, 5],
      [1, 5],
    ],
    [
      [17, 5],
      [17, 1],
    ],
    [[7], [1]],
    [
      [2, 3, 4],
      [2, 1, 4],
    ],
    [
      [1, 6, 1],
      [1, 6, 1],
    ],
    [
      [4, 1, 3],
      [1, 1, 3],
    ],
    [
      [128, 64, 24, 24],
      [1, 64, 1, 1],
    ],
  ];
  for (const [shape, outShape] of cases) {
    const n = shape.reduce((p, q) => p * q, 1),
      m = outShape.reduce((p, q) => p * q, 1);
    const x = rand(n),
      xh = put(x),
      o = be.alloc(m),
      orf = new Float32Array(m);
    be.sumTo(xh, shape, o, outShape);
    ref.sumTo(x, shape, orf, outShape);
    const mag = new Float32Array(m);
    ref.sumTo(x.map(Math.abs), shape, mag, outShape);
    const g = got(o);
    for (let i = 0; i < m; i++) {
      const err = Math.abs(g[i] - orf[i]);
      assert.ok(err <= 1e-6 * mag[i] + 1e-6, `sumTo ${shape} -> ${outShape} [${i}]: ${g[i]} vs ref ${orf[i]} (sum |x| ${mag[i]})`);
    }
    be.free(xh);
    be.free(o);
  }
});

for (const [N, C, HW] of [
  [1, 1, 1],
  [3, 5, 17],
  [2, 3, 1],
  [4, 7, 5],
  [8, 16, 196],
] as const) {
  test(`batchNorm train/eval forward and backward equal ref: N=${N} C=${C} HW=${HW} (rtol 1e-4, atol 1e-5)`, () => {
    const x = rand(N * C * HW),
      g = rand(C),
      b = rand(C),
      dy = rand(N * C * HW);
    for (let i = 0; i < x.length; i++) x[i] = x[i] * 3 + 5; // offset mean: tests the variance's accuracy
    const [xh, gh, bh, dyh] = [x, g, b, dy].map(put);
    for (const affine of [true, false]) {
      const gg = affine ? g : null,
        bb = affine ? b : null;
      const y = be.alloc(x.length),
        m = be.alloc(C),
        is = be.alloc(C),
        v = be.alloc(C);
      const yr = new Float32Array(x.length),
        mr = new Float32Array(C),
        isr = new Float32Array(C),
        vr = new Float32Array(C);
      be.batchNormTrain(xh, affine ? gh : null, affine ? bh : null, y, m, is, v, N, C, HW, 1e-5);
      ref.batchNormTrain(x, gg, bb, yr, mr, isr, vr, N, C, HW, 1e-5);
      close(got(m), mr, 1e-5, 1e-6, 'mean');
      close(got(v), vr, 1e-4, 1e-6, 'var');
      close(got(is), isr, 1e-4, 1e-5, 'invStd');
      close(got(y), yr, 1e-4, 1e-4, 'y');
      const ye = be.alloc(x.length),
        yer = new Float32Array(x.length);
      const rv = got(v).map((q) => q + 0.5);
      be.batchNormEval(xh, affine ? gh : null, affine ? bh : null, m, put(rv), ye, N, C, HW, 1e-5);
      ref.batchNormEval(x, gg, bb, got(m), rv, yer, N, C, HW, 1e-5);
      close(got(ye), yer, 1e-4, 1e-5, 'eval y');
      const dx = be.alloc(x.length),
        dg = be.alloc(C),
        db = be.alloc(C);
      const dxr = new Float32Array(x.length),
        dgr = new Float32Array(C),
        dbr = new Float32Array(C);
      be.batchNormTrainBackward(dyh, xh, affine ? gh : null, m, is, dx, affine ? dg : null, affine ? db : null, N, C, HW);
      ref.batchNormTrainBackward(dy, x, gg, got(m), got(is), dxr, affine ? dgr : null, affine ? dbr : null, N, C, HW);
      close(got(dx), dxr, 1e-4, 1e-4, 'dx');
      if (affine) {
        close(got(dg), dgr, 1e-4, 1e-4, 'dgamma');
        close(got(db), dbr, 1e-4, 1e-4, 'dbeta');
      }
    }
  });
}

test('batchNorm with fused ReLU equals relu(batchNorm) of ref (rtol 1e-4, atol 1e-4)', () => {
  const N = 3,
    C = 5,
    HW = 17;
  const x = rand(N * C * HW),
    g = rand(C),
    b = rand(C);
  const y = be.alloc(x.length),
    m = be.alloc(C),
    is = be.alloc(C),
    v = be.alloc(C);
  const yr = new Float32Array(x.length),
    t = new Float32Array(C);
  be.batchNormTrainEx(put(x), put(g), put(b), y, m, is, v, N, C, HW, 1e-5, true);
  ref.batchNormTrain(x, g, b, yr, new Float32Array(C), t, new Float32Array(C), N, C, HW, 1e-5);
  ref.unary('relu', yr, yr);
  close(got(y), yr, 1e-4, 1e-4, 'relu(bn(x))');
});

test('fused ReLU epilogues (batch norm, Winograd and im2col conv) keep NaN like relu (rtol 1e-4, atol 1e-4, NaN where ref has NaN)', () => {
  // A NaN gamma or bias turns one channel NaN before the ReLU; PyTorch's relu keeps NaN, so must
  // the SIMD lanes and the scalar tails of every fused epilogue (HW = 9 and OW = 9 leave tails).
  const nans = (y: Float32Array) => y.reduce((n, v) => n + (Number.isNaN(v) ? 1 : 0), 0);
  const N = 2,
    C = 3,
    HW = 9;
  const x = rand(N * C * HW),
    g = rand(C),
    b = rand(C);
  g[1] = NaN;
  const y = be.alloc(x.length),
    yr = new Float32Array(x.length);
  be.batchNormTrainEx(put(x), put(g), put(b), y, be.alloc(C), be.alloc(C), be.alloc(C), N, C, HW, 1e-5, true);
  ref.batchNormTrain(x, g, b, yr, new Float32Array(C), new Float32Array(C), new Float32Array(C), N, C, HW, 1e-5);
  ref.unary('relu', yr, yr);
  assert.equal(nans(got(y)), N * HW, 'batch norm: the NaN channel stays NaN');
  close(got(y), yr, 1e-4, 1e-4, 'relu(bn(x)) with a NaN channel');

  const p = convParams(1, 8, 9, 9, 6, 3, 3, 1, 1, 1, 1);
  const cx = rand(8 * 81),
    w = rand(6 * 8 * 9),
    bias = rand(6);
  bias[2] = NaN;
  const cr = new Float32Array(6 * 81);
  ref.conv2d(cx, w, bias, cr, p);
  ref.unary('relu', cr, cr);
  const saved = [be.winograd, be.winogradMinTiles, be.winogradMinFill] as const;
  be.winogradMinTiles = 1;
  be.winogradMinFill = 0;
  try {
    for (const mode of ['all', 'off'] as const) {
      be.winograd = mode;
      const cy = be.alloc(cr.length);
      be.conv2dEx(put(cx), put(w), put(bias), cy, p, true);
      assert.equal(nans(got(cy)), 81, `conv (${mode}): the NaN channel stays NaN`);
      close(got(cy), cr, 1e-4, 1e-4, `relu(conv) fused with a NaN bias (${mode})`);
    }
  } finally {
    [be.winograd, be.winogradMinTiles, be.winogradMinFill] = saved;
  }
});

function poolParams(N: number, C: number, H: number, W: number, k: number, s: number, p: number, d = 1, ceil = false, countIncludePad = true): Pool2dParams {
  const size = (L: number) => {
    const num = L + 2 * p - d * (k - 1) - 1;
    let o = Math.floor((ceil ? num + s - 1 : num) / s) + 1;
    if (ceil && (o - 1) * s >= L + p) o--;
    return o;
  };
  return { N, C, H, W, kH: k, kW: k, sH: s, sW: s, pH: p, pW: p, dH: d, dW: d, OH: size(H), OW: size(W), countIncludePad };
}

const POOL_CASES: [string, Pool2dParams][] = [
  ['3x3 s2 p1 (resnet stem) odd size', poolParams(2, 3, 17, 17, 3, 2, 1)],
  ['2x2 s2 on 5x5', poolParams(1, 5, 5, 5, 2, 2, 0)],
  ['3x3 s1 p1 dilation 2', poolParams(2, 2, 9, 7, 3, 1, 1, 2)],
  ['3x3 s2 ceil mode', poolParams(1, 3, 6, 6, 3, 2, 1, 1, true, false)],
  ['1x1 on 1x1', poolParams(3, 4, 1, 1, 1, 1, 0)],
  ['3x3 s1 p1 on 9x13', poolParams(2, 3, 9, 13, 3, 1, 1)],
  ['2x2 s2 on 16x17', poolParams(1, 2, 16, 17, 2, 2, 0)],
  ['3x3 s2 p1 on 112x112 (resnet)', poolParams(1, 2, 112, 112, 3, 2, 1)],
];

test('maxPool2d keeps the ref rules for NaN, -inf and signed zeros (exact)', () => {
  for (const p of [poolParams(1, 2, 9, 13, 3, 1, 1), poolParams(1, 2, 17, 17, 3, 2, 1), poolParams(1, 1, 8, 8, 2, 2, 0)]) {
    const x = rand(p.N * p.C * p.H * p.W),
      dy = rand(p.N * p.C * p.OH * p.OW);
    for (let i = 0; i < x.length; i++) {
      const r = rng.uniform(0, 1);
      if (r < 0.05) x[i] = NaN;
      else if (r < 0.2) x[i] = -Infinity;
      else if (r < 0.35) x[i] = 0;
      else if (r < 0.5) x[i] = -0;
    }
    const xh = put(x);
    const y = be.alloc(dy.length),
      yr = new Float32Array(dy.length);
    be.maxPool2d(xh, y, p);
    ref.maxPool2d(x, yr, p);
    assert.deepEqual(
      Array.from(got(y), (v) => (Object.is(v, -0) ? '-0' : String(v))),
      Array.from(yr, (v) => (Object.is(v, -0) ? '-0' : String(v))),
    );
    const dx = be.alloc(x.length),
      dxr = new Float32Array(x.length);
    be.maxPool2dBackward(xh, put(dy), dx, p);
    ref.maxPool2dBackward(x, dy, dxr, p);
    close(got(dx), dxr, 1e-6, 1e-7, 'dx');
  }
});

for (const [name, p] of POOL_CASES) {
  test(`maxPool2d/avgPool2d forward and backward equal ref: ${name} (rtol 1e-5, atol 1e-6)`, () => {
    const x = rand(p.N * p.C * p.H * p.W),
      dy = rand(p.N * p.C * p.OH * p.OW);
    x[3 % x.length] = x[0]; // ties: the first maximum wins
    const xh = put(x),
      dyh = put(dy);
    const y = be.alloc(dy.length),
      yr = new Float32Array(dy.length);
    be.maxPool2d(xh, y, p);
    ref.maxPool2d(x, yr, p);
    close(got(y), yr, 0, 0, 'max y');
    const dx = be.alloc(x.length),
      dxr = new Float32Array(x.length);
    be.maxPool2dBackward(xh, dyh, dx, p);
    ref.maxPool2dBackward(x, dy, dxr, p);
    close(got(dx), dxr, 1e-6, 1e-7, 'max dx');
    if (p.dH === 1) {
      for (const inc of [true, false]) {
        const q = { ...p, countIncludePad: inc };
        be.avgPool2d(xh, y, q);
        ref.avgPool2d(x, yr, q);
        close(got(y), yr, 1e-5, 1e-6, 'avg y');
        be.avgPool2dBackward(dyh, dx, q);
        ref.avgPool2dBackward(dy, dxr, q);
        close(got(dx), dxr, 1e-5, 1e-6, 'avg dx');
      }
    }
  });
}

test('adaptiveAvgPool2d forward and backward equal ref, global and uneven windows (rtol 1e-5, atol 1e-6)', () => {
  for (const [N, C, H, W, OH, OW] of [
    [2, 3, 7, 7, 1, 1],
    [1, 5, 17, 5, 3, 2],
    [2, 2, 5, 5, 5, 5],
    [1, 1, 1, 1, 1, 1],
    [3, 17, 4, 4, 7, 3],
  ]) {
    const x = rand(N * C * H * W),
      dy = rand(N * C * OH * OW);
    const y = be.alloc(dy.length),
      yr = new Float32Array(dy.length);
    be.adaptiveAvgPool2d(put(x), y, N, C, H, W, OH, OW);
    ref.adaptiveAvgPool2d(x, yr, N, C, H, W, OH, OW);
    close(got(y), yr, 1e-5, 1e-6, `adaptive y ${[N, C, H, W, OH, OW]}`);
    const dx = be.alloc(x.length),
      dxr = new Float32Array(x.length);
    be.adaptiveAvgPool2dBackward(put(dy), dx, N, C, H, W, OH, OW);
    ref.adaptiveAvgPool2dBackward(dy, dxr, N, C, H, W, OH, OW);
    close(got(dx), dxr, 1e-5, 1e-6, `adaptive dx ${[N, C, H, W, OH, OW]}`);
  }
});

test('sgdStep and adamStep equal ref over several steps (rtol 1e-5, atol 1e-6)', () => {
  for (const n of [1, 5, 17, 100003]) {
    for (const [mom, damp, wd, nest] of [
      [0, 0, 0, false],
      [0.9, 0, 5e-4, false],
      [0.9, 0.1, 1e-4, true],
    ] as const) {
      const pr = rand(n),
        p = put(pr),
        buf = be.alloc(n),
        bufr = new Float32Array(n);
      for (let step = 0; step < 3; step++) {
        const g = rand(n),
          gh = put(g);
        be.sgdStep(p, gh, mom ? buf : null, 0.1, mom, damp, wd, nest, step === 0);
        sgdStep(ref, pr, g, mom ? bufr : null, 0.1, mom, damp, wd, nest, step === 0);
        be.free(gh);
      }
      close(got(p), pr, 1e-5, 1e-6, `sgd n=${n} momentum=${mom} nesterov=${nest}`);
      close(got(buf), bufr, 1e-5, 1e-6, 'sgd momentum buffer');
    }
    for (const decoupled of [false, true]) {
      const pr = rand(n),
        p = put(pr),
        m = be.alloc(n),
        v = be.alloc(n),
        mr = new Float32Array(n),
        vr = new Float32Array(n);
      for (let step = 1; step <= 3; step++) {
        const g = rand(n),
          gh = put(g);
        be.adamStep(p, gh, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.01, step, decoupled);
        adamStep(ref, pr, g, mr, vr, 1e-3, 0.9, 0.999, 1e-8, 0.01, step, decoupled);
        be.free(gh);
      }
      close(got(p), pr, 1e-5, 1e-6, `adam decoupled=${decoupled} n=${n}`);
      close(got(m), mr, 1e-5, 1e-6, 'adam m');
      close(got(v), vr, 1e-5, 1e-7, 'adam v');
    }
  }
});

const WINO_CASES: [string, Conv2dParams][] = [
  ['odd 17x13, C=9, K=10', convParams(2, 9, 17, 13, 10, 3, 3, 1, 1, 1, 1)],
  ['no padding 10x11, C=16, K=8', convParams(1, 16, 10, 11, 8, 3, 3, 1, 0, 1, 1)],
  ['groups 2 (Cg=8, Kg=12) 7x9', convParams(2, 16, 7, 9, 24, 3, 3, 1, 1, 1, 2)],
  ['1x1 images, pad 1', convParams(3, 8, 1, 1, 8, 3, 3, 1, 1, 1, 1)],
  ['pad 2 on 5x5', convParams(2, 8, 5, 5, 9, 3, 3, 1, 2, 1, 1)],
  ['56x56 C=K=16 (SIMD tile path)', convParams(1, 16, 56, 56, 16, 3, 3, 1, 1, 1, 1)],
  ['batch 3, 6x7 (4 tiles of 4x4 over two tile rows), C=12, K=8', convParams(3, 12, 6, 7, 8, 3, 3, 1, 1, 1, 1)],
  ['batch 3, 3x3 (one 4x4 tile per image), C=8, K=9', convParams(3, 8, 3, 3, 9, 3, 3, 1, 1, 1, 1)],
  ['30x21 C=8, K=16 (4x4 tiles: full rows, a ragged row end and a partial last row)', convParams(1, 8, 30, 21, 16, 3, 3, 1, 1, 1, 1)],
];

for (const [name, p] of WINO_CASES)
  for (const tile of [2, 4] as const) {
    // F(4x4)'s transforms have entries up to 8 and 1/24: its rounding error is larger (random data here)
    const tol = tile === 2 ? 1e-4 : 3e-4;
    test(`Winograd F(${tile}x${tile},3x3) conv2d and backwardData (backwardFilter: F(2x2)) equal ref and the im2col path: ${name} (rtol ${tol}, atol ${tol})`, () => {
      const { N, C, H, W, K, R, S, OH, OW, groups } = p;
      const x = rand(N * C * H * W),
        w = rand(K * (C / groups) * R * S),
        bias = rand(K),
        dy = rand(N * K * OH * OW);
      const yr = new Float32Array(N * K * OH * OW),
        dxr = new Float32Array(x.length),
        dwr = new Float32Array(w.length);
      ref.conv2d(x, w, bias, yr, p);
      ref.conv2dBackwardData(dy, w, dxr, p);
      ref.conv2dBackwardFilter(x, dy, dwr, p);
      const [xh, wh, bh, dyh] = [x, w, bias, dy].map(put);
      const saved = [be.winograd, be.winogradBytes, be.winogradMinTiles, be.winogradMinFill, be.winogradTile] as const;
      be.winogradMinTiles = 1;
      be.winogradMinFill = 0;
      be.winogradTile = tile;
      try {
        for (const mode of ['all', 'off'] as const) {
          be.winograd = mode;
          be.winogradBytes = (tile + 2) ** 2 * (C + K) * Math.ceil(OH / tile) * Math.ceil(OW / tile) * 4; // one image per chunk
          const y = be.alloc(yr.length),
            dx = be.alloc(x.length),
            dw = be.alloc(w.length);
          const before = be.counters.winograd,
            before4 = be.counters.winograd4;
          be.conv2d(xh, wh, bh, y, p);
          be.conv2dBackwardData(dyh, wh, dx, p);
          be.conv2dBackwardFilter(xh, dyh, dw, p);
          assert.equal(be.counters.winograd - before, mode === 'all' ? 3 : 0, 'Winograd path taken');
          assert.equal(be.counters.winograd4 - before4, mode === 'all' && tile === 4 ? 2 : 0, 'F(4x4) taken by conv2d and backwardData');
          close(got(y), yr, tol, tol, `y (${mode})`);
          close(got(dx), dxr, tol, tol, `dx (${mode})`);
          close(got(dw), dwr, 1e-4, 1e-4, `dw (${mode})`);
        }
        be.winograd = 'all';
        const y = be.alloc(yr.length),
          yr2 = Float32Array.from(yr, (v) => (v > 0 ? v : 0));
        be.conv2dEx(xh, wh, bh, y, p, true);
        close(got(y), yr2, tol, tol, 'relu(conv) fused');
      } finally {
        [be.winograd, be.winogradBytes, be.winogradMinTiles, be.winogradMinFill, be.winogradTile] = saved;
      }
    });
  }

test('1,000 small training-like steps do not grow wasm memory after warm-up', () => {
  const p = convParams(2, 8, 9, 9, 8, 3, 3, 1, 1, 1, 1);
  const w = put(rand(8 * 8 * 9)),
    g = put(rand(8)),
    b = put(rand(8)),
    mom = be.alloc(w.length);
  let len = 0,
    live = 0;
  for (let step = 0; step < 1000; step++) {
    const x = put(rand(p.N * p.C * p.H * p.W));
    const y = be.alloc(p.N * p.K * p.OH * p.OW),
      z = be.alloc(y.length);
    const m = be.alloc(8),
      is = be.alloc(8),
      v = be.alloc(8);
    be.conv2d(x, w, null, y, p);
    be.batchNormTrain(y, g, b, z, m, is, v, p.N, p.K, p.OH * p.OW, 1e-5);
    be.unary('relu', z, z);
    const dy = filled(y.length, 0.01),
      dx = be.alloc(x.length),
      dw = be.alloc(w.length);
    be.conv2dBackwardData(dy, w, dx, p);
    be.conv2dBackwardFilter(x, dy, dw, p);
    be.sgdStep(w, dw, mom, 1e-3, 0.9, 0, 0, false, step === 0);
    for (const a of [x, y, z, m, is, v, dy, dx, dw]) be.free(a);
    if (step === 10) {
      len = be.heap.byteLength;
      live = be.allocatedFloats();
    }
    if (step > 10) {
      assert.equal(be.heap.byteLength, len, `memory grew at step ${step}`);
      assert.equal(be.allocatedFloats(), live, `live floats changed at step ${step}`);
    }
  }
});

test('worker threads do not keep the process alive, and dispose() terminates them', () => {
  const script = `
    import { createWasmBackend } from './src/backend/wasm/wasm.ts';
    const be = await createWasmBackend({ threads: 2 });
    const a = be.alloc(256 * 256);
    be.gemm(false, false, 256, 256, 256, a, a, be.alloc(256 * 256), false);
    if (process.argv.includes('dispose')) be.dispose();
    console.log('ok', be.threads);`;
  for (const mode of ['exit', 'dispose']) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, mode], { encoding: 'utf8', timeout: 30000 });
    assert.match(out, /ok/);
  }
});

test('B panels packed once and shared by the M tiles equal ref: conv K=300, gemm NT with M=600 (rtol 1e-4, atol 1e-5)', () => {
  const p = convParams(2, 5, 9, 7, 300, 3, 3, 2, 1, 1, 1);
  const x = rand(p.N * p.C * p.H * p.W),
    w = rand(300 * 5 * 9),
    y = be.alloc(p.N * 300 * p.OH * p.OW),
    yr = new Float32Array(y.length);
  const before = be.counters.prepack;
  be.conv2d(put(x), put(w), null, y, p);
  ref.conv2d(x, w, null, yr, p);
  close(got(y), yr, 1e-4, 1e-5, 'conv y');
  const M = 600,
    N = 37,
    K = 300;
  const A = rand(M * K),
    B = rand(N * K),
    C = be.alloc(M * N),
    Cr = new Float32Array(M * N);
  be.gemm(false, true, M, N, K, put(A), put(B), C, false);
  ref.gemm(false, true, M, N, K, A, B, Cr, false);
  close(got(C), Cr, 1e-4, 1e-5, 'gemm C');
  assert.equal(be.counters.prepack - before, 2, 'both used the prepacked path');
});

test('cacheWeights keeps Winograd weight transforms per weight buffer and frees them with it (rtol 1e-4, atol 1e-4)', () => {
  const p = convParams(1, 16, 20, 20, 16, 3, 3, 1, 1, 1, 1);
  const xr = rand(16 * 400),
    wr = rand(16 * 16 * 9),
    x = put(xr),
    w = put(wr),
    y = be.alloc(16 * 400),
    yr = new Float32Array(y.length);
  const savedMin = be.winogradMinTiles;
  be.winogradMinTiles = 1;
  be.winogradTile = 2;
  be.conv2d(x, w, null, y, p); // scratch areas are made here, not counted below
  const live0 = be.heap.liveByteCount,
    uBytes = 16 * 272 * 4, // 16 planes of K*Cg = 256 floats, 272 apart (an odd number of 64-byte lines)
    wBytes = 16 * 16 * 9 * 4;
  be.cacheWeights = true;
  try {
    const before = be.counters.winograd;
    be.conv2d(x, w, null, y, p);
    assert.equal(be.counters.winograd - before, 1, 'Winograd path');
    const live1 = be.heap.liveByteCount;
    assert.equal(live1 - live0, uBytes, 'one transform is cached');
    for (let i = 0; i < 3; i++) be.conv2d(x, w, null, y, p);
    assert.equal(be.heap.liveByteCount, live1, 'reused, not re-made');
    ref.conv2d(xr, wr, null, yr, p);
    close(got(y), yr, 1e-4, 1e-4, 'y with cached transform');
    be.free(w);
    assert.equal(live1 - be.heap.liveByteCount, uBytes + wBytes, 'freed with its weights');
  } finally {
    be.cacheWeights = false;
    be.winogradMinTiles = savedMin;
    be.winogradTile = 'auto';
  }
});

test('thread pool: 3,000 back-to-back parallel jobs (post, run, cancel races) give exact results', () => {
  // 64x64x64 GEMMs are above the parallel threshold and split into tiles for both threads;
  // small integers make every sum exact, so any lost or doubled tile shows.
  const n = 64,
    A = Float32Array.from({ length: n * n }, (_, i) => (i % 7) - 3),
    B = Float32Array.from({ length: n * n }, (_, i) => (i % 5) - 2),
    want = new Float32Array(n * n);
  ref.gemm(false, false, n, n, n, A, B, want, false);
  for (let i = 0; i < n * n; i++) want[i] *= 3000;
  const [Ah, Bh] = [A, B].map(put),
    Ch = be.alloc(n * n);
  for (let r = 0; r < 3000; r++) be.gemm(false, false, n, n, n, Ah, Bh, Ch, r > 0);
  assert.ok(be.lastJobTasksPerThread().length === 2, 'the jobs were parallel');
  let bad = 0;
  const C = got(Ch);
  for (let i = 0; i < n * n; i++) if (C[i] !== want[i]) bad++;
  assert.equal(bad, 0, `${bad} elements differ`);
  for (const a of [Ah, Bh, Ch]) be.free(a);
});

test('the job writer clears every argument slot first, stores f32 slots (F32 + index) as floats and refuses a fraction in an integer slot', async () => {
  const c = await import('../src/backend/wasm/kernels.generated.js');
  const w = be as unknown as { args(a: Record<number, number>): void; di: Int32Array; df: Float32Array };
  assert.ok(c.E_F0 >= c.F32 && c.G_M < c.F32, 'E_F0 is an f32 slot, G_M an i32 one');
  w.args({ [c.G_M]: 7, [c.G_PART]: 123456, [c.E_F0]: 0.25 });
  assert.equal(w.di[c.G_M], 7);
  assert.equal(w.df[c.E_F0 - c.F32], 0.25);
  w.args({ [c.E_OP]: c.OP_RELU });
  const leftovers: number[] = [];
  for (let i = c.D_ARGS; i < c.D_STATS; i++) if (i !== c.E_OP && w.di[i] !== 0) leftovers.push(i);
  assert.deepEqual(leftovers, [], 'slots left over from the previous job');
  assert.throws(() => w.args({ [c.E_I1]: 1 / 0.999 }), new RegExp(`slot ${c.E_I1} is an integer slot, got 1\\.001`));
});

// (At the end of the file: these draw from the shared rng, and the earlier tests' data stay as they were.)
// The filter gradient's K index runs over images; with few output tiles it is cut into segments
// of several images for the two threads (7 images: segments of 2, the last of 1).
for (const [name, p] of [
  ['3x3 s1 p1, 7 images', convParams(7, 5, 9, 9, 6, 3, 3, 1, 1, 1, 1)],
  ['3x3 s2 p1, 7 images, 11x13', convParams(7, 8, 11, 13, 8, 3, 3, 2, 1, 1, 1)],
] as const) {
  test(`conv2d backwardFilter over K segments of several images equals ref: ${name} (rtol 1e-4, atol 1e-5)`, () => {
    const { N, C, H, W, K, R, S, OH, OW } = p;
    assert.ok(2 * K * C * R * S * N * OH * OW >= 1 << 18, 'above the parallel threshold');
    const x = rand(N * C * H * W),
      dy = rand(N * K * OH * OW);
    const dw = filled(K * C * R * S, 9),
      dwr = new Float32Array(dw.length);
    const [xh, dyh] = [x, dy].map(put);
    const saved = be.winograd;
    be.winograd = 'off';
    try {
      be.conv2dBackwardFilter(xh, dyh, dw, p);
    } finally {
      be.winograd = saved;
    }
    ref.conv2dBackwardFilter(x, dy, dwr, p);
    close(got(dw), dwr, 1e-4, 1e-5, 'dw');
    for (const a of [xh, dyh, dw]) be.free(a);
  });
}

// 3x3 stride-1 pad-1 convolutions on maps where most im2col taps read padding take one GEMM per
// tap (smallMapConv); forward (with bias, fused residual and ReLU), backward-data and
// backward-filter (K segments of several images for the two threads), against ref.
for (const [name, p] of [
  ['3x3 maps, 20 -> 24 channels, 7 images', convParams(7, 20, 3, 3, 24, 3, 3, 1, 1, 1, 1)],
  ['2x3 maps', convParams(3, 9, 2, 3, 7, 3, 3, 1, 1, 1, 1)],
  ['1x1 maps', convParams(4, 6, 1, 1, 5, 3, 3, 1, 1, 1, 1)],
  ['4x4 maps', convParams(2, 8, 4, 4, 6, 3, 3, 1, 1, 1, 1)],
] as const) {
  test(`conv2d per-tap path on small maps equals ref: ${name} (rtol 1e-4, atol 1e-5)`, () => {
    const { N, C, H, W, K, OH, OW } = p;
    const x = rand(N * C * H * W),
      w = rand(K * C * 9),
      bias = rand(K),
      res = rand(N * K * OH * OW),
      dy = rand(N * K * OH * OW);
    const [xh, wh, bh, rh, dyh] = [x, w, bias, res, dy].map(put);
    const yr = new Float32Array(N * K * OH * OW),
      dxr = new Float32Array(x.length),
      dwr = new Float32Array(w.length);
    ref.conv2d(x, w, bias, yr, p);
    ref.conv2dBackwardData(dy, w, dxr, p);
    ref.conv2dBackwardFilter(x, dy, dwr, p);
    const before = be.counters.smallMap;
    const y = filled(yr.length, 9),
      dx = filled(x.length, 9),
      dw = filled(w.length, 9),
      yf = filled(yr.length, 9);
    be.conv2d(xh, wh, bh, y, p);
    be.conv2dBackwardData(dyh, wh, dx, p);
    be.conv2dBackwardFilter(xh, dyh, dw, p);
    be.conv2dFused(xh, wh, bh, yf, p, true, rh, false);
    assert.equal(be.counters.smallMap - before, 4, 'per-tap path taken');
    close(got(y), yr, 1e-4, 1e-5, 'y');
    close(got(dx), dxr, 1e-4, 1e-5, 'dx');
    close(got(dw), dwr, 1e-4, 1e-5, 'dw');
    close(
      got(yf),
      Float32Array.from(yr, (v, i) => Math.max(0, v + res[i])),
      1e-4,
      1e-5,
      'relu(conv + bias + residual)',
    );
    for (const a of [xh, wh, bh, rh, dyh, y, dx, dw, yf]) be.free(a);
  });
}
