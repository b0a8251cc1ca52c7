// The webgpu softmax-family kernels against the ref backend (the oracle): softmax and
// log-softmax with large logits (the row max must be subtracted), their backward, argmax with
// ties and NaN, and softmax cross-entropy with label smoothing 0 and 0.1 (loss stays on the GPU;
// dloss is a GPU buffer). Rows of 1, 10 and 1000 columns (over the 256-wide workgroup), 1-300 rows.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { RefBackend } from '../src/backend/ref/ref.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { RNG } from '../src/base/rng.js';
import { skip, gpu, onGpu, rand, assertClose, maxErr } from './webgpu-oracle.js';

const ref = new RefBackend();
const rng = new RNG(14_333);
let b: WebGpuBackend;
const report = (what: string, e: number): void => {
  if (process.env.REPORT) console.log(`${what}: ${e.toExponential(2)}`);
};
before(async () => {
  if (!skip) b = await gpu();
});

const SHAPES: [number, number][] = [
  [1, 1],
  [3, 10],
  [1, 1000],
  [5, 257],
  [300, 7],
];

test('softmax and log-softmax equal ref, logits up to ±100 (softmax atol 1e-6 rtol 1e-5; log-softmax atol 1e-6 rtol 1e-6)', { skip }, async () => {
  for (const [rows, cols] of SHAPES) {
    for (const log of [false, true]) {
      const x = rand(rng, rows * cols, -100, 100);
      const want = new Float32Array(x.length);
      ref.softmax(x, want, rows, cols, log);
      const got = await onGpu(b, { x, y: new Float32Array(x.length) }, (s) => b.softmax(s.x!, s.y!, rows, cols, log));
      report(`softmax log=${log} [${rows},${cols}]`, maxErr(got.y, want));
      if (log) assertClose(got.y, want, 1e-6, 1e-6, `log-softmax [${rows},${cols}]`);
      else assertClose(got.y, want, 1e-5, 1e-6, `softmax [${rows},${cols}]`);
    }
  }
});

test('softmaxBackward equals ref, softmax and log-softmax (rtol 1e-5, atol 1e-6)', { skip }, async () => {
  for (const [rows, cols] of SHAPES) {
    for (const log of [false, true]) {
      const y = new Float32Array(rows * cols);
      ref.softmax(rand(rng, rows * cols, -5, 5), y, rows, cols, log);
      const dy = rand(rng, rows * cols);
      const want = new Float32Array(y.length);
      ref.softmaxBackward(dy, y, want, rows, cols, log);
      const got = await onGpu(b, { dy, y, dx: new Float32Array(y.length) }, (s) => b.softmaxBackward(s.dy!, s.y!, s.dx!, rows, cols, log));
      assertClose(got.dx, want, 1e-5, 1e-6, `softmaxBackward log=${log} [${rows},${cols}]`);
    }
  }
});

test('argmax equals ref: the first maximum under ties, NaN skipped (exact)', { skip }, async () => {
  for (const [rows, cols] of [...SHAPES, [4, 600] as [number, number]]) {
    for (const ties of [false, true]) {
      const x = rand(rng, rows * cols);
      if (ties) for (let i = 0; i < x.length; i++) x[i] = Math.floor(rng.uniform(0, 3));
      if (ties && cols > 2) {
        x[1] = NaN; // row 0: a NaN inside the row is never the maximum
        if (rows > 1) x[cols] = NaN; // row 1: a NaN in column 0 wins (the ref's scan starts there)
      }
      const want = new Float32Array(rows);
      ref.argmax(x, want, rows, cols);
      const got = await onGpu(b, { x, out: new Float32Array(rows) }, (s) => b.argmax(s.x!, s.out!, rows, cols));
      assertClose(got.out, want, 0, 0, `argmax [${rows},${cols}] ties=${ties}`);
    }
  }
});

test(
  'softmaxCrossEntropy and its backward equal ref, label smoothing 0 and 0.1 (probs atol 1e-6 rtol 1e-5; loss rtol 1e-5; dlogits from the same probs atol 1e-7 rtol 1e-6)',
  { skip },
  async () => {
    for (const [N, C] of [
      [1, 1],
      [3, 10],
      [2, 1000],
      [300, 7],
    ] as [number, number][]) {
      for (const eps of [0, 0.1]) {
        const logits = rand(rng, N * C, -100, 100);
        const targets = Int32Array.from({ length: N }, () => Math.floor(rng.uniform(0, C)));
        const dl = [rng.uniform(0.5, 2)];
        const want = { probs: new Float32Array(N * C), loss: new Float32Array(1), d: new Float32Array(N * C) };
        ref.softmaxCrossEntropy(logits, targets, want.probs, want.loss, N, C, eps);
        const got = await onGpu(b, { logits, probs: new Float32Array(N * C), loss: new Float32Array(1), dl, d: rand(rng, N * C) }, (s) => {
          b.softmaxCrossEntropy(s.logits!, targets, s.probs!, s.loss!, N, C, eps);
          b.softmaxCrossEntropyBackward(s.probs!, targets, s.dl!, s.d!, N, C, eps);
        });
        // the backward is judged on the probs the GPU computed (the forward's error is judged on its own)
        ref.softmaxCrossEntropyBackward(got.probs, targets, Float32Array.from(dl), want.d, N, C, eps);
        const at = `[${N},${C}] smoothing=${eps}`;
        report(`probs ${at}`, maxErr(got.probs, want.probs));
        report(`loss ${at}`, maxErr(got.loss, want.loss));
        report(`dlogits ${at}`, maxErr(got.d, want.d));
        assertClose(got.probs, want.probs, 1e-5, 1e-6, `probs ${at}`);
        assertClose(got.loss, want.loss, 1e-5, 0, `loss ${at}`);
        assertClose(got.d, want.d, 1e-6, 1e-7, `dlogits ${at}`);
      }
    }
  },
);

test('softmaxCrossEntropy names a target outside [0, C) and leaves nothing allocated', { skip }, async () => {
  const before = b.allocatedFloats();
  const logits = b.alloc(6),
    probs = b.alloc(6),
    loss = b.alloc(1);
  assert.throws(() => b.softmaxCrossEntropy(logits, Int32Array.of(0, 3), probs, loss, 2, 3, 0), /target 3 of sample 1 is not a class in \[0, 3\)/);
  assert.throws(() => b.softmaxCrossEntropyBackward(probs, Int32Array.of(-1, 0), loss, logits, 2, 3, 0), /target -1 of sample 0/);
  for (const s of [logits, probs, loss]) b.free(s);
  assert.equal(b.allocatedFloats(), before);
});
