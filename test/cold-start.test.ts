// Cold start (issue 16): models built without random init for weights that are loaded next, fusing
// in place (no second copy of the weights), and the heap reserved before a fused model's first
// forward so that the second forward finds every block it needs (no growth, no new pages).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import '../src/backend/wasm/index.js';
import { setBackend } from '../src/backend/registry.js';
import { RNG, globalRng, manualSeed } from '../src/base/rng.js';
import { createModel, modelInChannels } from '../src/models/registry.js';
import { fuseForInference } from '../src/models/fused.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../src/io/files.js';
import { stateDictToArrays } from '../src/nn/state.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import type { WasmBackend } from '../src/backend/wasm/wasm.js';

const input = (shape: number[], seed: number) => {
  const rng = new RNG(seed);
  return ops.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal()),
    shape,
  );
};

// First in this file: it needs a fresh heap (a heap already grown by earlier tests hides the growth).
test('[wasm] a fused model reserves its working set before the first forward: the second forward does not grow the heap', async () => {
  const be = (await setBackend('wasm')) as WasmBackend;
  // Without the reservation this model's heap grew in its second forward: 135.3 -> 152.2 MiB (measured).
  const m = createModel('resnet18', { numClasses: 10 }, { init: false }).eval();
  using f = fuseForInference(m, { inPlace: true });
  const x = input([3, 3, 160, 160], 3);
  const sizes: number[] = [];
  for (let i = 0; i < 3; i++) {
    f.forward(x).dispose();
    sizes.push(be.heap.byteLength);
  }
  assert.equal(sizes[1], sizes[0], `heap bytes after each forward: ${sizes.join(', ')}`);
  assert.equal(sizes[2], sizes[0]);
  m.dispose();
});

for (const [name, opts, size] of [
  ['resnet18', { numClasses: 10 }, 64],
  ['resnext50_32x4d', { numClasses: 10 }, 32],
  ['d2l_resnet18', {}, 32],
  ['cifar_resnet20', {}, 32],
] as const) {
  test(`[wasm] ${name} built with init: false and loaded gives the logits of the initialised model, eval and fused (atol 0)`, async () => {
    await setBackend('wasm');
    manualSeed(3);
    const a = createModel(name, opts).eval();
    const seedAfterInit = globalRng.uniform(0, 1);
    manualSeed(3);
    const b = createModel(name, opts, { init: false }).eval();
    assert.equal(globalRng.uniform(0, 1), new RNG(3).uniform(0, 1), 'init: false does not advance the RNG');
    assert.notEqual(seedAfterInit, new RNG(3).uniform(0, 1));
    const conv = [...b.namedParameters()].find(([k]) => k.endsWith('conv1.weight'))![1];
    assert.ok(
      conv.dataSync().every((v) => v === 0),
      'weights stay as allocated (zero)',
    );
    // BN scale and running variance keep their constant init (1), so a forgotten key cannot divide by zero
    const bnVar = [...b.namedBuffers()].find(([k]) => k.endsWith('running_var'))![1];
    assert.ok(bnVar.dataSync().every((v) => v === 1));
    b.loadStateDict(stateDictToArrays(a));
    const x = input([2, modelInChannels(a), size, size], 5);
    const ya = noGrad(() => a.forward(x)).dataSync();
    assert.deepEqual(noGrad(() => b.forward(x)).dataSync(), ya);
    using fa = fuseForInference(a);
    using fb = fuseForInference(b);
    assert.deepEqual(fb.forward(x).dataSync(), fa.forward(x).dataSync());
    a.dispose();
    b.dispose();
  });
}

test('[wasm] fuseForInference inPlace: the same logits as a copy (atol 0) without a second copy of the weights; the spent model refuses to run', async () => {
  const be = await setBackend('wasm');
  manualSeed(1);
  const m = createModel('resnet18', { numClasses: 10 }).eval();
  const m2 = createModel('resnet18', { numClasses: 10 }, { init: false }).eval();
  m2.loadStateDict(stateDictToArrays(m));
  const x = input([1, 3, 64, 64], 2);
  const f0 = be.allocatedFloats();
  using copy = fuseForInference(m);
  const copyFloats = be.allocatedFloats() - f0;
  const f1 = be.allocatedFloats();
  using inPlace = fuseForInference(m2, { inPlace: true });
  const inPlaceFloats = be.allocatedFloats() - f1;
  assert.ok(copyFloats >= m.numParameters() * 0.99, `a copy holds the weights again (${copyFloats} floats)`);
  assert.ok(inPlaceFloats < 10_000, `in place adds only the folded biases (${inPlaceFloats} floats)`);
  assert.deepEqual(inPlace.forward(x).dataSync(), copy.forward(x).dataSync());
  assert.throws(() => noGrad(() => m2.forward(x)), /used after dispose/);
  m.dispose();
  m2.dispose();
});

test('readSafetensorsFile(path, { copy: false }) keeps float32 tensors as views of the file bytes (no second copy), with the values of the copying reader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-cold-'));
  try {
    const rng = new RNG(4);
    const arrays = new Map(
      [
        ['a', [3, 5]],
        ['b', [7]],
        ['c', [2, 2, 3]],
      ].map(([k, shape]) => [
        k as string,
        {
          dtype: 'F32' as const,
          shape: shape as number[],
          data: Float32Array.from({ length: (shape as number[]).reduce((x, y) => x * y) }, () => rng.normal()),
        },
      ]),
    );
    const file = join(dir, 'w.safetensors');
    writeSafetensorsFile(file, arrays);
    const views = readSafetensorsFile(file, { copy: false });
    const copies = readSafetensorsFile(file);
    const buffers = new Set([...views.values()].map((e) => e.data.buffer));
    assert.equal(buffers.size, 1, 'all tensors share the file buffer');
    assert.ok([...buffers][0].byteLength >= statSync(file).size);
    for (const [k, e] of copies) {
      assert.deepEqual(views.get(k)!.data, e.data, k);
      assert.deepEqual(e.data, arrays.get(k)!.data);
      assert.notEqual(e.data.buffer, [...buffers][0], 'the default reader copies');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('[wasm] loadInferenceModel reads a weights file into the heap and gives that memory back after loading: the logits of a model loaded from a copy (atol 0)', async () => {
  const be = (await setBackend('wasm')) as WasmBackend;
  const { loadInferenceModel } = await import('../src/train/inference.js');
  const dir = mkdtempSync(join(tmpdir(), 'resnet-cold-'));
  try {
    manualSeed(5);
    const ref = createModel('resnet18', { numClasses: 10 }).eval();
    const file = join(dir, 'w.safetensors');
    writeSafetensorsFile(file, stateDictToArrays(ref));
    const live0 = be.heap.liveByteCount;
    const { model } = await loadInferenceModel(file, { model: 'resnet18' });
    const held = be.heap.liveByteCount - live0;
    const params = model.numParameters() * 4;
    assert.ok(held < params * 1.01 && held < statSync(file).size, `the heap holds the model only (${held} bytes for ${params} bytes of parameters)`);
    const x = input([2, 3, 32, 32], 6);
    assert.deepEqual(noGrad(() => model.forward(x)).dataSync(), noGrad(() => ref.forward(x)).dataSync());
    model.dispose();
    ref.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('[wasm] a fused model packs its GEMM-only convs (1x1, strided) into their own weight blocks: no packed copy, and at other input sizes, after cacheWeights off and on, the unfused logits (rtol 1e-4, atol 1e-5)', async () => {
  const be = (await setBackend('wasm')) as WasmBackend;
  manualSeed(7);
  const m = createModel('resnet50', { numClasses: 10, widthPerGroup: 16 }).eval();
  const f = fuseForInference(m);
  // bytes of the convs that never take Winograd: 1x1 and strided (packed in place), vs the others
  let gemmOnly = 0;
  for (const [, mod] of m.namedModules()) {
    const c = mod as unknown as { kernelSize?: number[]; stride?: number[]; weight?: { size: number } };
    if (c.kernelSize && c.weight && (c.kernelSize[0] !== 3 || c.stride![0] !== 1)) gemmOnly += c.weight.size * 4;
  }
  const close = (got: Float32Array, want: Float32Array) => got.every((v, i) => Math.abs(v - want[i]) <= 1e-5 + 1e-4 * Math.abs(want[i]));
  const live0 = be.heap.liveByteCount;
  for (const [i, shape] of [
    [1, 3, 64, 64],
    [2, 3, 48, 40],
    [1, 3, 64, 64],
  ].entries()) {
    if (i === 2) {
      be.cacheWeights = true;
      be.cacheWeights = false; // drops the caches it can rebuild, keeps the weights packed in place
    }
    const x = input(shape, 8 + i);
    const got = f.forward(x).dataSync();
    assert.ok(close(got, noGrad(() => m.forward(x)).dataSync()), `input ${shape.join('x')}: fused logits differ from the unfused ones`);
    if (i === 0) {
      const added = be.heap.liveByteCount - live0;
      // the Winograd transforms and scratch it keeps come to about half of those weights here; a
      // packed copy of them would add all of them again
      assert.ok(added < gemmOnly, `the first forward kept ${added} bytes: a packed copy of the ${gemmOnly} bytes of 1x1/strided weights?`);
    }
  }
  f.dispose();
  m.dispose();
});
