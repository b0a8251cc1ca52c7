// Full models on the wasm backend against the same PyTorch fixtures as the ref backend.
// The wasm kernels accumulate in float32 like PyTorch (ref accumulates dot products in float64),
// so they round differently from both. Eval logits must match PyTorch float64 elementwise
// (rtol 1e-4, atol 1e-5). Every gradient and BN statistic must have a relative L2 error vs
// float64 within max(1e-3, 8x PyTorch float32's own): measured, wasm's is mostly 1.0-1.4x PyTorch's,
// up to ~4.2x on single tensors of the dilated resnet50 (PyTorch's own error there: 1.5e-3).
// The kernels themselves are at float32 roundoff vs ref (~3e-7 relative L2 on dilated 3x3 convs,
// test/wasm.test.ts); these nets amplify roundoff ~1e4-fold, so the summation order decides.
// Elementwise at 1e-4 is not a fair demand there: on elements where PyTorch float32 happens to
// land within 1e-4, a float32 implementation with the same error level but another summation
// order lands outside it about as often as not (train-mode BN over tiny batches, cancellation).
// The 1e-3 floor: the last BN weight of the dilated resnet50 (N*HW = 64) came out at 7e-4 where
// PyTorch float32 happened to get 5e-5.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../src/backend/wasm/index.js';
import { setBackend } from '../src/backend/registry.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { relL2 } from './helpers.js';
import { buildFromFixture, fixturesSkipReason, npy, st } from './fixtures.js';

const RTOL = 1e-4,
  ATOL = 1e-5;
let worstRatio = 0;

function check(what: string, ours: Float32Array, f64: Float32Array, f32: Float32Array, elementwise = false): 'elementwise' | 'l2' {
  if (elementwise) {
    const worst = worstIndex(ours, f64);
    assert.ok(worst < 0, `${what}: element ${worst} is ${ours[worst]}, float64 ${f64[worst]} (rtol ${RTOL}, atol ${ATOL})`);
    return 'elementwise';
  }
  const e = relL2(ours, f64),
    t = relL2(f32, f64);
  worstRatio = Math.max(worstRatio, e / Math.max(t, 1e-12));
  assert.ok(e <= Math.max(1e-3, 8 * t), `${what}: relative L2 error ${e.toExponential(2)} vs float64, PyTorch float32's is ${t.toExponential(2)}`);
  return 'l2';
}

function worstIndex(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i] - b[i]) <= ATOL + RTOL * Math.abs(b[i]))) return i;
  return -1;
}

for (const name of ['resnet18', 'resnet50', 'resnext50_32x4d', 'd2l_resnet18', 'cifar_resnet20', 'resnet50_dilated']) {
  const skip = fixturesSkipReason(name);
  test(
    `[wasm] ${name}: eval logits vs PyTorch float64 (rtol ${RTOL}, atol ${ATOL}); gradients and BN stats rel. L2 <= max(1e-3, 8x PyTorch float32's)`,
    { skip },
    async () => {
      await setBackend('wasm');
      try {
        const x = npy(name, 'input.npy');
        const t = npy(name, 'targets.npy').data;
        let elementwise = 0,
          l2 = 0;
        const tally = (r: 'elementwise' | 'l2') => (r === 'elementwise' ? elementwise++ : l2++);
        const m1 = buildFromFixture(name).eval();
        const le = noGrad(() => m1.forward(ops.tensor(x.data, x.shape)));
        tally(check(`${name} eval logits`, le.dataSync(), npy(name, 'logits_eval_f64.npy').data, npy(name, 'logits_eval.npy').data, true));
        const le2 = m1.forward(ops.tensor(x.data, x.shape));
        ops.crossEntropy(le2, t).backward();
        const ge64 = st(name, 'grads_eval_f64.safetensors'),
          ge32 = st(name, 'grads_eval.safetensors');
        for (const [k, p] of m1.namedParameters()) tally(check(`${name} eval-mode grad ${k}`, p.grad!.dataSync(), ge64.get(k)!.data, ge32.get(k)!.data));
        m1.dispose();

        const m = buildFromFixture(name).train();
        const lt = m.forward(ops.tensor(x.data, x.shape));
        tally(check(`${name} train logits`, lt.dataSync(), npy(name, 'logits_train_f64.npy').data, npy(name, 'logits_train.npy').data));
        const after64 = st(name, 'state_after_train_f64.safetensors'),
          after32 = st(name, 'state_after_train.safetensors');
        const sd = m.stateDict();
        for (const [k, v] of after64) tally(check(`${name} ${k}`, sd.get(k)!.dataSync(), v.data, after32.get(k)!.data));
        ops.crossEntropy(lt, t).backward();
        const g64 = st(name, 'grads_f64.safetensors'),
          g32 = st(name, 'grads.safetensors');
        for (const [k, p] of m.namedParameters()) tally(check(`${name} grad ${k}`, p.grad!.dataSync(), g64.get(k)!.data, g32.get(k)!.data));
        m.dispose();
        console.log(
          `# [wasm] ${name}: ${elementwise} checked elementwise, ${l2} by relative L2; worst error ratio to PyTorch float32 so far ${worstRatio.toFixed(2)}`,
        );
      } finally {
        await setBackend('ref');
      }
    },
  );
}
