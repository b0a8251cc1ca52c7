// Issue 15, item 8: the wasm backend's train-mode forward (BatchNorm on batch statistics over
// few values per channel: layer4 of a 2x3x64x64 input normalises 8 values) against PyTorch
// float64, for every torchvision builder, must be within 2x of PyTorch float32's own error
// against float64. Fixtures: scripts/make_train_error_fixtures.py (logits only; the weights and
// input are a hash that test/train-error-weights.ts reproduces bit for bit).
// Where the error comes from (measured, ratio to PyTorch float32's error): the batch statistics
// were already summed in f64 (swapping in the ref kernel's changes little); Winograd moves
// single nets either way (resnet34 1.14x with it, 1.71x without); the largest single source was the
// f32 affine y = (x - m)*f32(scale) + f32(shift) (resnext50_32x4d 1.70x -> 1.27x once it is done in
// f64 and rounded once). What remains is float32 accumulation order in the convolutions, the same
// class of error as PyTorch's own: 0.48-1.32x across the 10 builders.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../src/backend/wasm/index.js';
import { setBackend } from '../src/backend/registry.js';
import { createModel } from '../src/models/registry.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { fixturesSkipReason, json, npy } from './fixtures.js';
import { relL2 } from './helpers.js';
import { hashed, syntheticStateDict } from './train-error-weights.js';

const skip = fixturesSkipReason('train_error');
const manifest = skip ? {} : json<Record<string, { builder: string; input: number[] }>>('train_error', 'manifest.json');

test(
  "[wasm] train-mode logits of all 10 torchvision builders at 2x3x64x64: rel. L2 error vs PyTorch float64 <= 2x PyTorch float32's own",
  { skip },
  async () => {
    assert.equal(Object.keys(manifest).length, 10, 'one fixture per torchvision builder');
    await setBackend('wasm');
    try {
      for (const [tag, e] of Object.entries(manifest)) {
        const f64 = npy('train_error', `${tag}_f64.npy`).data,
          f32 = npy('train_error', `${tag}_f32.npy`).data;
        const m = noGrad(() => createModel(e.builder, { numClasses: 10 }));
        m.loadStateDict(syntheticStateDict([...m.stateDict()].map(([k, t]) => [k, t.shape])), { strict: true });
        m.train();
        const n = e.input.reduce((a, b) => a * b, 1);
        const y = noGrad(() => m.forward(ops.tensor(hashed('input', n, 1), e.input)));
        const ours = relL2(y.dataSync(), f64),
          torch32 = relL2(f32, f64);
        console.log(`# ${tag}: wasm ${ours.toExponential(2)}, PyTorch float32 ${torch32.toExponential(2)} (${(ours / torch32).toFixed(2)}x)`);
        assert.ok(
          ours <= 2 * torch32,
          `${tag}: wasm train-mode logits are ${ours.toExponential(2)} from float64, more than 2x PyTorch float32's ${torch32.toExponential(2)}`,
        );
        m.dispose();
      }
    } finally {
      await setBackend('ref');
    }
  },
);
