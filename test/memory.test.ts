// Memory: scope() frees what it made, dispose() is idempotent, and on the wasm backend 1,000
// training steps (by hand and through trainStep) and 10,000 forwards in the README's noGrad pattern
// do not grow its heap after warm-up, with no help from GC.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../src/backend/wasm/index.js';
import { getBackend, setBackend } from '../src/backend/registry.js';
import type { Storage } from '../src/backend/backend.js';
import { sgdStep } from '../src/backend/ref/optim.js';
import { RNG } from '../src/base/rng.js';
import { BatchNorm2d, Conv2d, Linear, ReLU, AdaptiveAvgPool2d, Flatten, Sequential, MaxPool2d } from '../src/nn/layers.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad, scope, Tensor } from '../src/tensor/tensor.js';
import { SGD } from '../src/optim/sgd.js';
import { trainStep } from '../src/train/trainer.js';

test('scope frees everything made inside except what it returns; dispose is idempotent', async () => {
  await setBackend('ref');
  const be = getBackend();
  const before = be.allocatedFloats();
  const kept = scope(() => {
    const a = ops.randn([10, 10]);
    const b = ops.mul(a, a);
    const c = ops.add(b, a);
    return { c, nested: [ops.sum(c)] };
  });
  assert.equal(be.allocatedFloats() - before, 100 + 1, 'only the returned tensors survive');
  kept.c.dispose();
  kept.c.dispose();
  kept.nested[0][Symbol.dispose]();
  assert.equal(be.allocatedFloats(), before);
  assert.throws(() => kept.c.dataSync(), /used after dispose/);
});

function tinyNet(): Sequential {
  return new Sequential(
    new Conv2d(1, 8, 3, { padding: 1, bias: false }),
    new BatchNorm2d(8),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(8, 16, 3, { padding: 1 }),
    new BatchNorm2d(16),
    new ReLU(),
    new AdaptiveAvgPool2d(1),
    new Flatten(),
    new Linear(16, 3),
  );
}

test('1,000 training steps on the wasm backend do not grow memory after warm-up', async () => {
  const be = await setBackend('wasm');
  try {
    const net = noGrad(() => tinyNet());
    const rng = new RNG(1);
    const bufs = new Map<Tensor, Storage>();
    const step = () =>
      scope(() => {
        const x = ops.randn([4, 1, 8, 8], rng);
        const loss = ops.crossEntropy(net.forward(x), [0, 1, 2, 1]);
        loss.backward();
        for (const p of net.parameters()) {
          let b = bufs.get(p);
          if (!b) bufs.set(p, (b = be.alloc(p.size)));
          sgdStep(be, p.storage, p.grad!.storage, b, 0.01, 0.9, 0, 1e-4, false, false);
        }
        net.zeroGrad();
        return loss.item();
      });
    for (let i = 0; i < 50; i++) step();
    const heap = (be as unknown as { heap: { byteLength: number; liveByteCount: number } }).heap;
    const warm = be.allocatedFloats(),
      warmMemory = heap.byteLength,
      warmLive = heap.liveByteCount;
    let last = 0;
    for (let i = 0; i < 1000; i++) last = step();
    assert.ok(Number.isFinite(last));
    assert.equal(be.allocatedFloats(), warm, `allocated floats grew from ${warm} to ${be.allocatedFloats()}`);
    assert.equal(heap.byteLength, warmMemory, `wasm memory grew from ${warmMemory} to ${heap.byteLength} bytes`);
    assert.equal(heap.liveByteCount, warmLive, `live heap bytes grew from ${warmLive} to ${heap.liveByteCount}`);
  } finally {
    await setBackend('ref');
  }
});

test('tensors an op saves for its backward (BN statistics, softmax) are freed with its output, at once under noGrad; max/min backward frees its temporaries', async () => {
  for (const backend of ['ref', 'wasm']) {
    const be = await setBackend(backend);
    const rng = new RNG(4);
    const x = ops
      .tensor(
        Float32Array.from({ length: 2 * 3 * 4 * 4 }, () => rng.normal()),
        [2, 3, 4, 4],
      )
      .setRequiresGrad();
    const gamma = ops.ones([3]).setRequiresGrad(),
      beta = ops.zeros([3]).setRequiresGrad();
    const base = be.allocatedFloats();
    const y = ops.batchNorm(x, null, null, gamma, beta, true, 0.1, 1e-5);
    assert.equal(be.allocatedFloats(), base + y.size + 2 * 3, `${backend}: output + saved mean and inverse std`);
    y.dispose();
    assert.equal(be.allocatedFloats(), base, `${backend}: disposing the output frees what it saved`);
    const y2 = noGrad(() => ops.batchNorm(x, null, null, gamma, beta, true, 0.1, 1e-5));
    assert.equal(be.allocatedFloats(), base + y2.size, `${backend}: nothing saved without a graph`);
    y2.dispose();
    const logits = ops.tensor([1, 2, 3, 0, 1, 0], [2, 3]).setRequiresGrad();
    const base2 = be.allocatedFloats();
    const l = ops.crossEntropy(logits, [2, 0]);
    assert.equal(be.allocatedFloats(), base2 + 1 + 6, `${backend}: loss + saved probabilities`);
    l.dispose();
    assert.equal(be.allocatedFloats(), base2);
    // max backward: only the gradients remain (no scope around it)
    const a = ops.tensor([1, 5, 3, 2], [2, 2]).setRequiresGrad(),
      b = ops.tensor([4, 0], [2]).setRequiresGrad();
    const m = ops.maximum(a, b);
    const s = ops.sum(m);
    const base3 = be.allocatedFloats();
    s.backward();
    assert.deepEqual(Array.from(a.grad!.dataSync()), [0, 1, 0, 1]);
    assert.deepEqual(Array.from(b.grad!.dataSync()), [2, 0]);
    assert.equal(be.allocatedFloats(), base3 + a.size + b.size, `${backend}: max backward keeps only the two gradients`);
    for (const t of [x, gamma, beta, logits, a, b, m, s]) {
      t.zeroGrad();
      t.dispose();
    }
  }
});

/** The wasm heap's figures: memory size, bytes in live blocks, floats the backend has handed out. */
function heapFigures(be: ReturnType<typeof getBackend>): { memory: number; live: number; floats: number } {
  const heap = (be as unknown as { heap: { byteLength: number; liveByteCount: number } }).heap;
  return { memory: heap.byteLength, live: heap.liveByteCount, floats: be.allocatedFloats() };
}

test('10,000 forwards as the README writes them, noGrad(() => model.forward(tensor(…))), hold wasm memory flat without GC', async () => {
  const be = await setBackend('wasm');
  try {
    const net = tinyNet().eval();
    const rng = new RNG(2);
    const pixels = Float32Array.from({ length: 2 * 1 * 8 * 8 }, () => rng.normal());
    const forward = () => {
      // the input tensor and every intermediate are made inside noGrad and freed when it returns
      const logits = noGrad(() => net.forward(ops.tensor(pixels, [2, 1, 8, 8])));
      const v = logits.dataSync()[0];
      logits.dispose(); // what the caller got back is the caller's (the README uses `using`)
      return v;
    };
    const first = forward();
    for (let i = 0; i < 100; i++) forward();
    const warm = heapFigures(be);
    let last = 0;
    for (let i = 0; i < 10_000; i++) last = forward();
    assert.equal(last, first, 'same input, same logits');
    assert.deepEqual(heapFigures(be), warm, 'memory size, live bytes and allocated floats after 10,000 forwards equal those after 100');
  } finally {
    await setBackend('ref');
  }
});

test('1,000 trainStep calls with new optim.SGD on the wasm backend do not grow memory after warm-up', async () => {
  const be = await setBackend('wasm');
  try {
    const model = tinyNet();
    const optimizer = new SGD(model.namedParameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
    const rng = new RNG(3);
    const batch = () => ({
      x: Float32Array.from({ length: 4 * 64 }, () => rng.normal()),
      shape: [4, 1, 8, 8] as [number, number, number, number],
      y: Int32Array.from([0, 1, 2, 1]),
    });
    for (let i = 0; i < 50; i++) trainStep({ model, optimizer }, batch());
    const warm = heapFigures(be);
    let loss = NaN;
    for (let i = 0; i < 1000; i++) loss = trainStep({ model, optimizer }, batch()).loss;
    assert.ok(Number.isFinite(loss));
    assert.deepEqual(heapFigures(be), warm, 'memory size, live bytes and allocated floats after 1,050 steps equal those after 50');
  } finally {
    await setBackend('ref');
  }
});
