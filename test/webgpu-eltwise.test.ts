// The webgpu backend's elementwise, reduction, optimizer and layout kernels against the ref
// backend (the oracle), on awkward shapes. Needs the npm package `webgpu` and an adapter (here
// Mesa's llvmpipe through Dawn's OpenGL backend); skipped with the reason where there is none.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { RefBackend } from '../src/backend/ref/ref.js';
import { adamStep, movingAverage, sgdStep } from '../src/backend/ref/optim.js';
import type { BinaryOp, UnaryOp } from '../src/backend/backend.js';
import { RNG } from '../src/base/rng.js';
import { webgpuSkipReason, webgpuForTests } from './webgpu-env.js';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import type { GpuStorage } from '../src/backend/webgpu/runtime.js';

const skip = await webgpuSkipReason();
const ref = new RefBackend();
let gpu: WebGpuBackend;
const rng = new RNG(99);

before(async () => {
  if (!skip) gpu = await webgpuForTests();
});

function rand(n: number, lo = -2, hi = 2): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(lo, hi);
  return a;
}
function up(v: ArrayLike<number>): GpuStorage {
  const s = gpu.alloc(v.length);
  gpu.write(s, v);
  return s;
}
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** |got - want| <= atol + rtol*|want| elementwise (NaN where NaN is wanted); names the worst. */
function close(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = -1,
    worstX = 0;
  for (let i = 0; i < got.length; i++) {
    if (got[i] === want[i] || (Number.isNaN(got[i]) && Number.isNaN(want[i]))) continue;
    const x = Math.abs(got[i] - want[i]) - (atol + rtol * Math.abs(want[i]));
    if (!(x <= 0) && (worst < 0 || !(x <= worstX))) {
      worst = i;
      worstX = x;
    }
  }
  if (worst >= 0) assert.fail(`${what}: element ${worst} is ${got[worst]}, want ${want[worst]}`);
}
/** Bit-exact (NaN, ±0 and infinities told apart). */
function same(got: Float32Array, want: Float32Array, what: string): void {
  assert.deepEqual(
    Array.from(new Uint32Array(got.buffer, got.byteOffset, got.length)),
    Array.from(new Uint32Array(want.buffer, want.byteOffset, want.length)),
    what,
  );
}

const UNARY: [UnaryOp, number, number][] = [
  // op, input range lo..hi
  ['neg', -3, 3],
  ['exp', -10, 10],
  ['log', 1e-3, 50],
  ['sqrt', 0, 50],
  ['abs', -3, 3],
  ['sigmoid', -20, 20],
  ['tanh', -12, 12],
];

test('webgpu unary ops vs ref on 1, 257 and 70001 elements (rtol 2e-6, atol 1e-7)', { skip }, async () => {
  for (const n of [1, 257, 70001])
    for (const [op, lo, hi] of UNARY) {
      const x = rand(n, lo, hi);
      if (op === 'tanh') x.set([0, -1e-6, 0.2499, -0.25, 0.3, 9, -40, 1e-30].slice(0, n));
      const want = new Float32Array(n);
      ref.unary(op, x, want);
      const gx = up(x),
        gy = gpu.alloc(n);
      gpu.unary(op, gx, gy);
      close(await gpu.read(gy), want, 2e-6, 1e-7, `${op} n=${n}`);
      gpu.free(gx);
      gpu.free(gy);
    }
});

test('webgpu relu, reluBackward and in-place relu keep NaN, ±inf and ±0 bit for bit as ref (exact)', { skip }, async () => {
  const x = new Float32Array([NaN, -NaN, Infinity, -Infinity, 0, -0, 1.5, -1.5, 1e-45, -1e-45, 3.4e38, -3.4e38]);
  const want = new Float32Array(x.length);
  ref.unary('relu', x, want);
  const gx = up(x),
    gy = gpu.alloc(x.length);
  gpu.unary('relu', gx, gy);
  same(await gpu.read(gy), want, 'relu');
  gpu.unary('relu', gx, gx); // in place: one binding, read_write
  same(await gpu.read(gx), want, 'relu in place');
  const dy = new Float32Array([1, 2, NaN, 4, 5, 6, -0, 8, 9, 10, 11, 12]);
  const dxWant = new Float32Array(x.length);
  ref.reluBackward(dy, want, dxWant);
  const gdx = gpu.alloc(x.length);
  gpu.reluBackward(up(dy), gy, gdx);
  same(await gpu.read(gdx), dxWant, 'reluBackward');
});

const BIN: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'max', 'min'];
const SHAPES: [number[], number[], number[]][] = [
  // a, b, out (padded to the same rank)
  [
    [3, 5, 7],
    [3, 5, 7],
    [3, 5, 7],
  ],
  [
    [3, 5, 7],
    [1, 1, 1],
    [3, 5, 7],
  ],
  [
    [2, 3, 5, 7],
    [1, 3, 1, 1],
    [2, 3, 5, 7],
  ], // bias over NCHW
  [
    [1, 3, 1, 1],
    [2, 3, 5, 7],
    [2, 3, 5, 7],
  ],
  [
    [4, 1],
    [1, 6],
    [4, 6],
  ], // outer
  [
    [2, 1, 3, 1, 5, 1],
    [1, 4, 3, 2, 1, 3],
    [2, 4, 3, 2, 5, 3],
  ], // rank 6, alternating
  [
    [2, 1, 3, 1, 2, 1, 3, 2],
    [1, 2, 1, 3, 1, 2, 1, 2],
    [2, 2, 3, 3, 2, 2, 3, 2],
  ], // rank 8
  [
    [1, 1, 300, 257],
    [5, 1, 1, 257],
    [5, 1, 300, 257],
  ], // 385500 outputs: a 2D grid over 256-thread groups
];

test('webgpu binary ops with NumPy broadcasting vs ref, ranks 2 to 8, NaN through max/min (rtol 1e-6, atol 0)', { skip }, async () => {
  for (const [as, bs, os] of SHAPES)
    for (const op of BIN) {
      const a = rand(size(as)),
        b = rand(size(bs));
      if (op === 'div') for (let i = 0; i < b.length; i++) b[i] = b[i] >= 0 ? b[i] + 0.5 : b[i] - 0.5;
      if (op === 'max' || op === 'min') {
        a[0] = NaN;
        b[b.length - 1] = NaN;
      }
      const want = new Float32Array(size(os));
      ref.binary(op, a, as, b, bs, want, os);
      const ga = up(a),
        gb = up(b),
        go = gpu.alloc(want.length);
      gpu.binary(op, ga, as, gb, bs, go, os);
      close(await gpu.read(go), want, 1e-6, 0, `${op} [${as}] [${bs}]`);
      for (const s of [ga, gb, go]) gpu.free(s);
    }
  // in place, the output being an operand: x = x + bias, and x = bias * x
  const as = [3, 4, 5],
    bs = [1, 4, 1];
  const a = rand(60),
    b = rand(4);
  for (const op of ['add', 'mul'] as const) {
    const want = new Float32Array(60);
    ref.binary(op, a, as, b, bs, want, as);
    const ga = up(a),
      gb = up(b);
    gpu.binary(op, ga, as, gb, bs, ga, as);
    close(await gpu.read(ga), want, 1e-6, 0, `${op} in place`);
    const wantB = new Float32Array(60);
    ref.binary(op, b, bs, a, as, wantB, as);
    const ga2 = up(a);
    gpu.binary(op, gb, bs, ga2, as, ga2, as);
    close(await gpu.read(ga2), wantB, 1e-6, 0, `${op} in place, output second`);
  }
});

test('webgpu affine, addInPlace, unaryBackward and maxMinBackward vs ref (rtol 1e-6, atol 1e-7)', { skip }, async () => {
  const n = 1001;
  const x = rand(n),
    dy = rand(n);
  x[3] = 0;
  x[4] = -0;
  x[5] = NaN;
  const want = new Float32Array(n);
  ref.affine(x, want, -1.75, 0.3);
  const gx = up(x),
    gy = gpu.alloc(n);
  gpu.affine(gx, gy, -1.75, 0.3);
  close(await gpu.read(gy), want, 1e-6, 1e-7, 'affine');
  gpu.affine(gy, gy, 2, 0); // in place
  close(
    await gpu.read(gy),
    want.map((v) => v * 2),
    1e-6,
    1e-7,
    'affine in place',
  );
  gpu.affine(gx, gy, -1.75, 0.3);
  const acc = await gpu.read(gy); // the GPU's own affine (it may fuse the multiply-add: an ulp apart)
  ref.addInPlace(acc, dy);
  gpu.addInPlace(gy, up(dy));
  close(await gpu.read(gy), acc, 1e-6, 1e-7, 'addInPlace');

  for (const op of ['abs', 'sigmoid', 'tanh'] as const) {
    const y = new Float32Array(n);
    ref.unary(op, x, y);
    const dx = new Float32Array(n);
    ref.unaryBackward(op, dy, x, y, dx);
    const gdx = gpu.alloc(n);
    gpu.unaryBackward(op, up(dy), gx, up(y), gdx);
    close(await gpu.read(gdx), dx, 1e-6, 1e-7, `${op} backward`);
  }

  for (const [as, ys] of [
    [
      [2, 1, 5],
      [2, 3, 5],
    ],
    [
      [1, 1, 1],
      [4, 3, 2],
    ],
    [
      [3, 4, 5],
      [3, 4, 5],
    ],
  ]) {
    const a = rand(size(as)),
      b = rand(size(ys)),
      g = rand(size(ys));
    b[1] = a[as.length === 3 && size(as) === 1 ? 0 : 1]; // a tie: a wins
    const y = new Float32Array(size(ys));
    ref.binary('max', a, as, b, ys, y, ys);
    const da = new Float32Array(y.length),
      db = new Float32Array(y.length);
    ref.maxMinBackward(g, a, as, y, ys, da, db);
    const gda = gpu.alloc(y.length),
      gdb = gpu.alloc(y.length);
    gpu.maxMinBackward(up(g), up(a), as, up(y), ys, gda, gdb);
    close(await gpu.read(gda), da, 0, 0, `maxMinBackward da [${as}]`);
    close(await gpu.read(gdb), db, 0, 0, `maxMinBackward db [${as}]`);
  }
});

test('webgpu transpose2d vs ref on 1x1, 1x37, 17x33 and 300x5 (exact)', { skip }, async () => {
  for (const [r, c] of [
    [1, 1],
    [1, 37],
    [17, 33],
    [300, 5],
  ]) {
    const x = rand(r * c);
    const want = new Float32Array(r * c);
    ref.transpose2d(x, want, r, c);
    const gy = gpu.alloc(r * c);
    gpu.transpose2d(up(x), gy, r, c);
    close(await gpu.read(gy), want, 0, 0, `transpose ${r}x${c}`);
  }
});

const SUMS: [number[], number[]][] = [
  [
    [7, 3],
    [1, 3],
  ], // linear bias grad: 7 values each, one thread per output
  [
    [5, 11],
    [5, 1],
  ],
  [
    [3, 6, 9, 11],
    [1, 6, 1, 1],
  ], // conv bias grad: N*H*W per channel
  [
    [2, 3, 4, 5, 6, 7],
    [2, 1, 4, 1, 6, 1],
  ], // rank 6, alternating
  [
    [4, 5, 6],
    [1, 1, 1],
  ], // everything
  [
    [4, 5, 6],
    [4, 5, 6],
  ], // nothing (a copy)
  [
    [1, 5, 1, 9],
    [1, 1, 1, 9],
  ],
  [
    [9, 3, 70, 71],
    [1, 3, 1, 1],
  ], // 44730 values per output: the split two-pass reduction
  [
    [600001, 1],
    [1, 1],
  ], // one output over 600001 values
];

test('webgpu sumTo vs ref (float64 sums), serial, workgroup-tree and split reductions (rtol 1e-5, atol 1e-5)', { skip }, async () => {
  for (const [xs, os] of SUMS) {
    const x = rand(size(xs));
    const want = new Float32Array(size(os));
    ref.sumTo(x, xs, want, os);
    const go = gpu.alloc(want.length);
    gpu.fill(go, 123); // every output is overwritten
    const gx = up(x);
    gpu.sumTo(gx, xs, go, os);
    close(await gpu.read(go), want, 1e-5, 1e-5, `sumTo [${xs}] -> [${os}]`);
    gpu.free(gx);
    gpu.free(go);
  }
});

test(
  'webgpu sgdStep (plain, momentum, dampening, nesterov, first), movingAverage and Adam/AdamW vs ref over 3 steps (rtol 1e-5, atol 1e-7)',
  { skip },
  async () => {
    const n = 517;
    const p0 = rand(n),
      grads = [rand(n), rand(n), rand(n)];
    const sgdCases: [number, number, number, boolean][] = [
      // momentum, dampening, weight decay, nesterov
      [0, 0, 0, false],
      [0, 0, 1e-2, false],
      [0.9, 0, 5e-4, false],
      [0.9, 0.1, 0, false],
      [0.8, 0, 1e-3, true],
    ];
    for (const [mom, damp, wd, nest] of sgdCases) {
      const p = Float32Array.from(p0),
        buf = new Float32Array(n);
      const gp = up(p0),
        gbuf = gpu.alloc(n);
      grads.forEach((g, k) => {
        sgdStep(ref, p, g, mom ? buf : null, 0.1, mom, damp, wd, nest, k === 0);
        gpu.sgdStep(gp, up(g), mom ? gbuf : null, 0.1, mom, damp, wd, nest, k === 0);
      });
      close(await gpu.read(gp), p, 1e-5, 1e-7, `sgd momentum ${mom} dampening ${damp} wd ${wd} nesterov ${nest}: param`);
      if (mom) close(await gpu.read(gbuf), buf, 1e-5, 1e-7, `sgd momentum ${mom}: buffer`);
    }

    const avg = Float32Array.from(p0);
    const gavg = up(p0);
    for (const g of grads) {
      movingAverage(ref, avg, g, 0.999);
      gpu.movingAverage(gavg, up(g), 0.999);
    }
    close(await gpu.read(gavg), avg, 1e-5, 1e-7, 'movingAverage');

    for (const decoupled of [false, true])
      for (const wd of [0, 0.01]) {
        const p = Float32Array.from(p0),
          m = new Float32Array(n),
          v = new Float32Array(n);
        const gp = up(p0),
          gm = gpu.alloc(n),
          gv = gpu.alloc(n);
        grads.forEach((g, k) => {
          adamStep(ref, p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, wd, k + 1, decoupled);
          gpu.adamStep(gp, up(g), gm, gv, 1e-3, 0.9, 0.999, 1e-8, wd, k + 1, decoupled);
        });
        const what = `${decoupled ? 'AdamW' : 'Adam'} wd ${wd}`;
        close(await gpu.read(gp), p, 1e-5, 1e-7, `${what}: param`);
        close(await gpu.read(gm), m, 1e-5, 1e-7, `${what}: m`);
        close(await gpu.read(gv), v, 1e-5, 1e-9, `${what}: v`);
      }
  },
);

test('webgpu subsamplePadChannels forward and backward vs ref (odd sizes, stride 2 and 3, batch 1 and 3) (exact)', { skip }, async () => {
  for (const [N, C, H, W, s, pb, pa] of [
    [1, 3, 7, 5, 2, 2, 1],
    [3, 4, 8, 9, 3, 0, 4],
    [2, 1, 1, 1, 2, 1, 1],
  ]) {
    const OH = Math.ceil(H / s),
      OW = Math.ceil(W / s),
      OC = C + pb + pa;
    const x = rand(N * C * H * W),
      y = new Float32Array(N * OC * OH * OW);
    ref.subsamplePadChannels(x, y, N, C, H, W, s, pb, pa, false);
    const gy = gpu.alloc(y.length);
    gpu.subsamplePadChannels(up(x), gy, N, C, H, W, s, pb, pa, false);
    close(await gpu.read(gy), y, 0, 0, `forward ${[N, C, H, W, s, pb, pa]}`);
    const dy = rand(y.length),
      dx = new Float32Array(x.length);
    ref.subsamplePadChannels(dx, dy, N, C, H, W, s, pb, pa, true);
    const gdx = gpu.alloc(x.length);
    gpu.subsamplePadChannels(gdx, up(dy), N, C, H, W, s, pb, pa, true);
    close(await gpu.read(gdx), dx, 0, 0, `backward ${[N, C, H, W, s, pb, pa]}`);
  }
});
