// Full models on the webgpu backend (Node: Dawn on whatever adapter is here; on this machine Mesa's
// llvmpipe through Dawn's OpenGL backend) against the PyTorch fixtures, by the wasm backend's
// rules (test/wasm-models.test.ts): eval logits elementwise vs PyTorch float64 (rtol 1e-4,
// atol 1e-5); train-mode logits, BN running stats and every gradient (eval and train mode) by
// relative L2 error vs float64 within max(1e-3, 8x PyTorch float32's own). Values are read with
// await data(): webgpu has no synchronous read. Skipped, with the reason, where there is no
// webgpu (no npm package `webgpu`, no adapter).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setBackend } from '../src/backend/registry.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { relL2 } from './helpers.js';
import { buildFromFixture, fixturesSkipReason, npy, st } from './fixtures.js';
import { webgpuSkipReason } from './webgpu-env.js';

const RTOL = 1e-4,
  ATOL = 1e-5;
const noGpu = await webgpuSkipReason();
let worstRatio = 0;

function check(what: string, ours: Float32Array, f64: Float32Array, f32: Float32Array, elementwise = false): void {
  if (elementwise) {
    for (let i = 0; i < ours.length; i++) {
      assert.ok(
        Math.abs(ours[i] - f64[i]) <= ATOL + RTOL * Math.abs(f64[i]),
        `${what}: element ${i} is ${ours[i]}, float64 ${f64[i]} (rtol ${RTOL}, atol ${ATOL})`,
      );
    }
    return;
  }
  const e = relL2(ours, f64),
    t = relL2(f32, f64);
  worstRatio = Math.max(worstRatio, e / Math.max(t, 1e-12));
  assert.ok(e <= Math.max(1e-3, 8 * t), `${what}: relative L2 error ${e.toExponential(2)} vs float64, PyTorch float32's is ${t.toExponential(2)}`);
}

/**
 * CI runs resnet18, d2l_resnet18 and cifar_resnet20 (llvmpipe does 0.3-2 GFLOP/s; those three took
 * 124 s on the loaded 2-core machine); RESNET_WEBGPU_MODELS=all adds resnet50 and resnext50_32x4d
 * (165 s and 131 s there; both pass), or names the models to run. d2l_resnet18's fixture seed is
 * chosen so that no ReLU or max-pool decision lies within float32 rounding of its threshold
 * (scripts/fixture_margin.py): on the old seed one pre-ReLU value 3.4e-6 from zero came out 0 here
 * and, through train-mode BN, moved the gradients below it by 7e-3 (ref/wasm forced to 0 did too).
 */
const ALL = ['resnet18', 'resnet50', 'resnext50_32x4d', 'd2l_resnet18', 'cifar_resnet20'];
const env = process.env.RESNET_WEBGPU_MODELS;
const CASES = env === 'all' ? ALL : env ? env.split(',') : ['resnet18', 'd2l_resnet18', 'cifar_resnet20'];

for (const name of CASES) {
  test(
    `[webgpu] ${name}: eval logits vs PyTorch float64 (rtol ${RTOL}, atol ${ATOL}); train logits, BN stats and gradients rel. L2 <= max(1e-3, 8x PyTorch float32's)`,
    { skip: noGpu || fixturesSkipReason(name) },
    async () => {
      await setBackend('webgpu');
      const t0 = performance.now();
      worstRatio = 0;
      try {
        const x = npy(name, 'input.npy');
        const t = npy(name, 'targets.npy').data;
        let n = 0;
        const m1 = buildFromFixture(name).eval();
        const le = noGrad(() => m1.forward(ops.tensor(x.data, x.shape)));
        check(`${name} eval logits`, await le.data(), npy(name, 'logits_eval_f64.npy').data, npy(name, 'logits_eval.npy').data, true);
        n++;
        const le2 = m1.forward(ops.tensor(x.data, x.shape));
        ops.crossEntropy(le2, t).backward();
        const ge64 = st(name, 'grads_eval_f64.safetensors'),
          ge32 = st(name, 'grads_eval.safetensors');
        for (const [k, p] of m1.namedParameters()) {
          check(`${name} eval-mode grad ${k}`, await p.grad!.data(), ge64.get(k)!.data, ge32.get(k)!.data);
          n++;
        }
        // the same model in train mode: eval mode changed no weight or BN buffer, only the grads
        m1.zeroGrad();
        const m = m1.train();
        const lt = m.forward(ops.tensor(x.data, x.shape));
        check(`${name} train logits`, await lt.data(), npy(name, 'logits_train_f64.npy').data, npy(name, 'logits_train.npy').data);
        n++;
        const after64 = st(name, 'state_after_train_f64.safetensors'),
          after32 = st(name, 'state_after_train.safetensors');
        const sd = m.stateDict();
        for (const [k, v] of after64) {
          check(`${name} ${k}`, await sd.get(k)!.data(), v.data, after32.get(k)!.data);
          n++;
        }
        ops.crossEntropy(lt, t).backward();
        const g64 = st(name, 'grads_f64.safetensors'),
          g32 = st(name, 'grads.safetensors');
        for (const [k, p] of m.namedParameters()) {
          check(`${name} grad ${k}`, await p.grad!.data(), g64.get(k)!.data, g32.get(k)!.data);
          n++;
        }
        m.dispose();
        console.log(
          `# [webgpu] ${name} (input ${x.shape.join('x')}): ${n} tensors checked in ${((performance.now() - t0) / 1000).toFixed(1)} s; worst relative L2 error / PyTorch float32's ${worstRatio.toFixed(2)}`,
        );
      } finally {
        await setBackend('ref');
      }
    },
  );
}
