// Training on the webgpu backend: 200 SGD steps of a CIFAR ResNet-8 (8x8 px, batch 4) follow
// the same steps on wasm, and 800 more through fit() (reading back every 16 steps) leave the
// allocated floats and the runtime's buffer pool where they were after the first 100 of them (no leak).
// Skipped, with the reason, where there is no webgpu.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../src/backend/wasm/index.js';
import { setBackend } from '../src/backend/registry.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { manualSeed, RNG } from '../src/base/rng.js';
import { DataLoader } from '../src/data/loader.js';
import { createModel } from '../src/models/registry.js';
import { readStateArrays } from '../src/nn/state.js';
import { SGD } from '../src/optim/sgd.js';
import { fit, trainStep, trainStepAsync } from '../src/train/trainer.js';
import { webgpuSkipReason } from './webgpu-env.js';

const noGpu = await webgpuSkipReason();
const N = 4,
  HW = 8,
  STEPS = 200;
const rng = new RNG(21);
const images = Float32Array.from({ length: 8 * HW * HW }, () => rng.normal());
const labels = Int32Array.from({ length: 8 }, (_, i) => i % 4);
const batch = (s: number) => {
  const i = (s % 2) * N;
  return { x: images.slice(i * HW * HW, (i + N) * HW * HW), shape: [N, 1, HW, HW] as [number, number, number, number], y: labels.slice(i, i + N) };
};
const opts = { lr: 0.02, momentum: 0.9, weightDecay: 5e-4 };

test(
  `[webgpu] ${STEPS} SGD steps of a CIFAR ResNet-8 follow the wasm run's loss (rtol 1e-3 each step); 800 more through fit() (reading every 16) do not grow allocated floats or the buffer pool after the first 100 of them`,
  { skip: noGpu },
  async () => {
    await setBackend('wasm');
    manualSeed(3);
    const mw = createModel('cifar_resnet8', { numClasses: 4, inChannels: 1 });
    const init = await readStateArrays(mw);
    const ow = new SGD(mw.parameters(), opts);
    const lw: number[] = [];
    for (let s = 0; s < STEPS; s++) lw.push(trainStep({ model: mw, optimizer: ow, clipGradNorm: 5 }, batch(s)).loss);

    const gpu = (await setBackend('webgpu')) as WebGpuBackend;
    try {
      const mg = createModel('cifar_resnet8', { numClasses: 4, inChannels: 1 });
      mg.loadStateDict(init);
      const og = new SGD(mg.parameters(), opts);
      const lg: number[] = [];
      for (let s = 0; s < STEPS; s++) lg.push((await trainStepAsync({ model: mg, optimizer: og, clipGradNorm: 5 }, batch(s))).loss);
      let worst = 0;
      lw.forEach((l, s) => (worst = Math.max(worst, Math.abs(lg[s] - l) / Math.abs(l))));
      console.log(
        `# webgpu vs wasm loss over ${STEPS} steps: ${lw[0].toFixed(4)} -> ${lw[STEPS - 1].toFixed(4)} (wasm), worst relative difference ${worst.toExponential(2)}`,
      );
      assert.ok(lw[STEPS - 1] < lw[0] * 0.5, `the loss falls (${lw[0]} -> ${lw[STEPS - 1]})`);
      lw.forEach((l, s) => assert.ok(Math.abs(lg[s] - l) <= 1e-3 * Math.abs(l), `step ${s + 1}: webgpu loss ${lg[s]}, wasm ${l}`));

      const ds = { length: 8, get: (i: number) => ({ image: { data: images.slice(i * HW * HW, (i + 1) * HW * HW), c: 1, h: HW, w: HW }, label: labels[i] }) };
      const train = new DataLoader(ds, { batchSize: N, numWorkers: 0, shuffle: true, seed: 1 });
      // 100 steps through fit first: its own buffer sizes (the finiteness probe) enter the pool once
      const r1 = await fit({ model: mg, optimizer: og, train, numClasses: 4, epochs: 50, clipGradNorm: 5 }); // 2 steps an epoch
      const floats = gpu.allocatedFloats(),
        pooled = gpu.rt.pooledBytes();
      const r = await fit({ model: mg, optimizer: og, train, numClasses: 4, epochs: 400, clipGradNorm: 5, globalStep: r1.globalStep, history: r1.history });
      assert.equal(r.globalStep, 800);
      console.log(`# after 300 steps: ${floats} floats allocated, pool ${pooled} bytes; after 1,000: ${gpu.allocatedFloats()}, pool ${gpu.rt.pooledBytes()}`);
      assert.equal(gpu.allocatedFloats(), floats, 'allocated floats after 1,000 steps');
      assert.ok(gpu.rt.pooledBytes() <= pooled, `buffer pool grew from ${pooled} to ${gpu.rt.pooledBytes()} bytes`);
    } finally {
      await setBackend('ref');
    }
  },
);
