// Inference-only fused models (models/fused.ts: BN folded into the convs, ReLU and the residual add
// in the conv epilogue) against PyTorch's eval logits, on both backends, plus the wasm paths the
// fixtures' small inputs do not reach (Winograd with cached weight transforms at 224 px, batch 1).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../src/backend/wasm/index.js';
import { setBackend } from '../src/backend/registry.js';
import { RNG } from '../src/base/rng.js';
import { Module } from '../src/nn/module.js';
import { createModel } from '../src/models/registry.js';
import { fuseForInference } from '../src/models/fused.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad, Tensor } from '../src/tensor/tensor.js';
import { buildFromFixture, fixturesSkipReason, npy } from './fixtures.js';

const RTOL = 1e-4,
  ATOL = 1e-5;

function worstIndex(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i] - b[i]) <= ATOL + RTOL * Math.abs(b[i]))) return i;
  return -1;
}

for (const backend of ['ref', 'wasm'] as const) {
  for (const name of ['resnet18', 'resnet50', 'resnext50_32x4d', 'd2l_resnet18', 'cifar_resnet20', 'resnet50_dilated']) {
    test(`[${backend}] fused ${name}: logits vs PyTorch float64 eval logits (rtol ${RTOL}, atol ${ATOL})`, { skip: fixturesSkipReason(name) }, async () => {
      await setBackend(backend);
      const x = npy(name, 'input.npy');
      const m = buildFromFixture(name);
      m.train(); // fusing folds the running statistics whatever mode the model is in
      using f = fuseForInference(m);
      const y = f.forward(ops.tensor(x.data, x.shape));
      const ref = npy(name, 'logits_eval_f64.npy').data;
      const w = worstIndex(y.dataSync(), ref);
      assert.ok(w < 0, `element ${w}: ${y.dataSync()[w]} vs ${ref[w]}`);
      assert.equal(m.training, true, 'the model keeps its mode');
      m.dispose();
    });
  }
}

/** Random BN statistics and affine parameters, so folding has something to fold. */
function randomizeBn(m: Module, seed: number): void {
  const rng = new RNG(seed);
  for (const [k, t] of m.stateDict()) {
    if (k.endsWith('running_mean') || k.endsWith('bn2.bias') || k.endsWith('bn3.bias'))
      t.write(Float32Array.from({ length: t.size }, () => 0.1 * rng.normal()));
    else if (k.endsWith('running_var')) t.write(Float32Array.from({ length: t.size }, () => 0.5 + rng.uniform(0, 1)));
  }
}

test(`[wasm] fused resnet18 at 3x224x224, batch 1 and 2 (Winograd with cached transforms, residual after it) equals the unfused eval forward (rtol ${RTOL}, atol ${ATOL})`, async () => {
  const be = await setBackend('wasm');
  const m = createModel('resnet18', { numClasses: 10 });
  randomizeBn(m, 1);
  m.eval();
  const rng = new RNG(2);
  using f = fuseForInference(m);
  const wino0 = (be as unknown as { counters: { winograd: number } }).counters.winograd;
  for (const n of [1, 2]) {
    const x = ops.tensor(
      Float32Array.from({ length: n * 3 * 224 * 224 }, () => rng.normal()),
      [n, 3, 224, 224],
    );
    const want = noGrad(() => m.forward(x));
    for (let rep = 0; rep < 2; rep++) {
      // the second run uses the cached weight transforms
      const got = f.forward(x);
      const w = worstIndex(got.dataSync(), want.dataSync());
      assert.ok(w < 0, `batch ${n} run ${rep}: element ${w}: ${got.dataSync()[w]} vs ${want.dataSync()[w]}`);
      got.dispose();
    }
  }
  assert.ok((be as unknown as { counters: { winograd: number } }).counters.winograd > wino0, 'the Winograd path ran');
  const before = be.allocatedFloats();
  f.dispose();
  assert.ok(be.allocatedFloats() < before, 'disposing frees the folded weights');
  assert.throws(() => f.forward(ops.zeros([1, 3, 32, 32])), /disposed/);
  m.dispose();
});

test('fused models: clear errors for wrong input channels, unsupported modules, and conv2dFused with gradients', async () => {
  await setBackend('ref');
  const m = createModel('cifar_resnet20', { inChannels: 1 });
  using f = fuseForInference(m);
  assert.throws(() => f.forward(ops.zeros([1, 3, 28, 28])), /expects 1 input channel\(s\), the input has shape \[1, 3, 28, 28\]/);
  class Odd extends Module {
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  assert.throws(() => fuseForInference(new Odd()), /cannot fuse Odd \(Odd\) for inference/);
  const w = ops.zeros([2, 1, 3, 3]);
  w.requiresGrad = true;
  assert.throws(() => ops.conv2dFused(ops.zeros([1, 1, 5, 5]), w, null, {}), /inference-only/);
  assert.throws(
    () => noGrad(() => ops.conv2dFused(ops.zeros([1, 1, 5, 5]), ops.zeros([2, 1, 3, 3]), null, {}, { residual: ops.zeros([1, 2, 5, 5]) })),
    /residual has shape \[1, 2, 5, 5\], the output \[1, 2, 3, 3\]/,
  );
  m.dispose();
});
