// The stack above the backend on a backend that cannot read synchronously (webgpu has no
// readSync): the ref kernels behind NoSyncBackend (test/nosync-backend.ts), whose read() resolves
// on a later macrotask. Training (with clipping, an EMA, flip TTA, checkpoints and a resume),
// evaluation, predict, state dicts, optimizer state, ONNX export and the fused model all run on
// it and give exactly the numbers the ref backend gives (same kernels: bit-identical), and fit
// reads back only every `readEvery` steps.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noSync } from './nosync-backend.js';
import { setBackend, getBackend } from '../src/backend/registry.js';
import { manualSeed } from '../src/base/rng.js';
import { EMBEDDED_SLICE_DIR } from '../src/data/fashion-mnist.js';
import { DataLoader } from '../src/data/loader.js';
import { readSafetensorsFile } from '../src/io/files.js';
import { createModel } from '../src/models/registry.js';
import { fuseForInference } from '../src/models/fused.js';
import { exportOnnx, exportOnnxAsync } from '../src/convert/onnx-export.js';
import { readStateArrays, stateDictToArrays } from '../src/nn/state.js';
import { clipGradNorm } from '../src/optim/clip.js';
import { SGD } from '../src/optim/sgd.js';
import { ModelEma } from '../src/train/ema.js';
import { DEFAULT_CONFIG, type TrainConfig } from '../src/train/config.js';
import { runTraining } from '../src/train/run.js';
import { fit, NonFiniteLossError, predictLogits, trainStep, trainStepAsync } from '../src/train/trainer.js';
import { randn, tensor } from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import type { Module } from '../src/nn/module.js';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'resnet-nosync-'))));
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await setBackend('ref');
});

/** The same model (same seed) on `backend`. */
async function modelOn(backend: string, name = 'cifar_resnet8', opts: Record<string, unknown> = { numClasses: 4, inChannels: 1 }): Promise<Module> {
  await setBackend(backend);
  manualSeed(3);
  return createModel(name, opts);
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

test('ref-nosync has no readSync, and dataSync() there says to use await data()', async () => {
  await setBackend('ref-nosync');
  assert.equal(getBackend().readSync, undefined);
  const t = tensor([1, 2]);
  assert.throws(() => t.dataSync(), /the ref-nosync backend cannot read values synchronously: use await tensor\.data\(\)/);
  assert.deepEqual([...(await t.data())], [1, 2]);
});

/** A tiny Fashion-MNIST run: CIFAR ResNet-8 at 12 px, 3 steps per epoch, clipping, EMA and flip TTA. */
function cfg(out: string): TrainConfig {
  return {
    ...DEFAULT_CONFIG,
    model: 'cifar_resnet8',
    out,
    epochs: 2,
    batchSize: 16,
    lr: 0.05,
    momentum: 0.9,
    weightDecay: 5e-4,
    schedule: 'cosine',
    labelSmoothing: 0.1,
    clipGradNorm: 1,
    ema: 0.9,
    tta: 'flip',
    workers: 0,
    seed: 7,
    data: { ...DEFAULT_CONFIG.data, dataDir: EMBEDDED_SLICE_DIR, size: 12, augment: 'light', normalize: 'dataset', limitTrain: 48, limitTest: 32 },
  };
}

const files = (d: string) => {
  const side = JSON.parse(readFileSync(join(d, 'last.json'), 'utf8'));
  return { w: readSafetensorsFile(join(d, 'last.safetensors')), o: readSafetensorsFile(join(d, side.optimizerFile)) };
};

test('training run on ref-nosync (clip, EMA, flip TTA, checkpoints, interrupted + resumed) equals the ref run bit for bit', async () => {
  await setBackend('ref');
  const a = await runTraining(cfg(join(dir, 'ref')));
  await setBackend('ref-nosync');
  const c = cfg(join(dir, 'nosync'));
  const b1 = await runTraining(c, { maxSteps: 4 }); // 3 steps per epoch: stops inside epoch 2
  assert.equal(b1.interrupted, true);
  const b2 = await runTraining(c, { resume: c.out });
  assert.equal(b2.interrupted, false);
  assert.equal(b2.globalStep, a.globalStep);
  assert.deepEqual(
    b2.history.map((r) => [r.train_loss, r.train_acc, r.val_loss, r.val_acc, r.val_acc_no_tta]),
    a.history.map((r) => [r.train_loss, r.train_acc, r.val_loss, r.val_acc, r.val_acc_no_tta]),
  );
  assert.deepEqual(b2.final, a.final);
  const fa = files(c.out.replace(/nosync$/, 'ref')),
    fb = files(c.out);
  for (const part of ['w', 'o'] as const) {
    assert.deepEqual([...fb[part].keys()], [...fa[part].keys()]);
    for (const [k, v] of fa[part])
      assert.ok(bits(fb[part].get(k)!.data).equals(bits(v.data)), `${part === 'w' ? 'weights' : 'optimizer state'} differ at ${k}`);
  }
});

/** 10 random 1×10×10 images of 4 classes, batches of 2 (5 steps per epoch). */
function loader(): DataLoader {
  manualSeed(11);
  const x = randn([10, 1, 10, 10]);
  const xs = x.storage as Float32Array; // ref storage: a Float32Array
  const ds = { length: 10, get: (i: number) => ({ image: { data: xs.slice(i * 100, (i + 1) * 100), c: 1, h: 10, w: 10 }, label: i % 4 }) };
  return new DataLoader(ds, { batchSize: 2, numWorkers: 0, shuffle: true, seed: 5 });
}

test('fit on ref-nosync reports every step to onStep, in order, though it reads them in batches', async () => {
  const model = await modelOn('ref-nosync');
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const seen: number[] = [];
  await fit({ model, optimizer: opt, train: loader(), numClasses: 4, epochs: 3, clipGradNorm: 5, readEvery: 2, hooks: { onStep: (s) => seen.push(s.step) } });
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
});

test('fit on ref-nosync with readEvery 16 reads at steps 16, 32 and at the end only', async () => {
  const model = await modelOn('ref-nosync');
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  // a data loader whose epoch is one long epoch of 40 steps
  manualSeed(11);
  const xs = randn([80, 1, 10, 10]).storage as Float32Array;
  const ds = { length: 80, get: (i: number) => ({ image: { data: xs.slice(i * 100, (i + 1) * 100), c: 1, h: 10, w: 10 }, label: i % 4 }) };
  const train = new DataLoader(ds, { batchSize: 2, numWorkers: 0, shuffle: false });
  let steps = 0;
  const origStep = opt.step.bind(opt);
  opt.step = () => (steps++, origStep());
  noSync.reads.length = 0;
  noSync.onRead = () => steps;
  await fit({ model, optimizer: opt, train, numClasses: 4, epochs: 1, readEvery: 16 });
  noSync.onRead = () => null;
  const at = [...new Set(noSync.reads as number[])];
  assert.deepEqual(at, [16, 32, 40], `reads happened after steps ${at.join(', ')}`);
});

test('fit on ref-nosync stops with NonFiniteLossError naming the step when the loss blows up (read every 4 steps)', async () => {
  const model = await modelOn('ref-nosync');
  const opt = new SGD(model.parameters(), { lr: 1e12 });
  const train = loader();
  const before = noSync.allocatedFloats();
  await assert.rejects(
    fit({ model, optimizer: opt, train, numClasses: 4, epochs: 4, readEvery: 4 }),
    (e: unknown) => e instanceof NonFiniteLossError && /^the loss became (NaN|Infinity) at epoch \d, step \d/.test((e as Error).message),
  );
  // not more than before (earlier tests' garbage may be finalized meanwhile): the queued steps were freed
  assert.ok(noSync.allocatedFloats() <= before, `${noSync.allocatedFloats() - before} floats more after the error`);
});

test('trainStepAsync on ref-nosync equals trainStep on ref (loss and logits bit for bit); trainStep there says to use trainStepAsync', async () => {
  const batch = {
    x: Float32Array.from({ length: 2 * 100 }, (_, i) => Math.sin(i)),
    shape: [2, 1, 10, 10] as [number, number, number, number],
    y: Int32Array.from([1, 3]),
  };
  const mr = await modelOn('ref');
  const r = trainStep({ model: mr, optimizer: new SGD(mr.parameters(), { lr: 0.1 }), clipGradNorm: 0.5 }, batch);
  const mn = await modelOn('ref-nosync');
  const opt = new SGD(mn.parameters(), { lr: 0.1 });
  const n = await trainStepAsync({ model: mn, optimizer: opt, clipGradNorm: 0.5 }, batch);
  assert.equal(n.loss, r.loss);
  assert.ok(bits(n.logits).equals(bits(r.logits)));
  const sr = stateDictToArrays(mr),
    sn = await readStateArrays(mn);
  for (const [k, v] of sr) assert.ok(bits(sn.get(k)!.data).equals(bits(v.data)), `weights differ at ${k} after one step`);
  assert.throws(() => trainStep({ model: mn, optimizer: opt }, batch), /cannot read values synchronously/);
});

test('clipGradNorm on ref-nosync returns the norm as a tensor and scales on the device, as on ref (2 and inf, bit for bit)', async () => {
  for (const normType of [2, 'inf'] as const) {
    const grads = async (backend: string) => {
      await setBackend(backend);
      manualSeed(5);
      const ps = [randn([3, 4]), randn([7])].map((p) => {
        p.grad = randn(p.shape).keep();
        return p;
      });
      const norm = clipGradNorm(ps, 0.3, normType);
      return { norm: await norm.data(), g: await Promise.all(ps.map((p) => p.grad!.data())) };
    };
    const a = await grads('ref'),
      b = await grads('ref-nosync');
    assert.ok(bits(b.norm).equals(bits(a.norm)) && a.norm[0] > 0.3, `norm ${normType}: ${b.norm[0]} vs ${a.norm[0]}`);
    a.g.forEach((g, i) => assert.ok(bits(b.g[i]).equals(bits(g)), `grad ${i} (${normType})`));
  }
});

test('state dict, optimizer state and EMA (atol 1e-6) read asynchronously on ref-nosync; loading a state dict there copies on the device', async () => {
  const m = await modelOn('ref-nosync');
  const opt = new SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
  const w0 = await readStateArrays(m);
  const ema = new ModelEma(m, 0.5);
  const batch = {
    x: Float32Array.from({ length: 200 }, (_, i) => Math.cos(i)),
    shape: [2, 1, 10, 10] as [number, number, number, number],
    y: Int32Array.from([0, 2]),
  };
  await trainStepAsync({ model: m, optimizer: opt }, batch);
  ema.update(m);
  assert.throws(() => stateDictToArrays(m), /use await tensor\.data\(\)/);
  assert.throws(() => opt.stateDict(), /use await tensor\.data\(\)/);
  const sd = await readStateArrays(m);
  const od = await opt.readStateDict();
  const ea = await ema.readArrays(m);
  assert.equal(sd.size, m.stateDict().size);
  assert.ok(Object.keys(od.state).length > 0 && Object.values(od.state).every((s) => s.buffers.momentum_buffer.data.length > 0));
  // a fresh model and optimizer on ref take the read state and continue identically to the nosync pair
  const m2 = await modelOn('ref-nosync');
  m2.loadStateDict(m.stateDict()); // same backend: device copies
  const opt2 = new SGD(m2.parameters(), { lr: 0.1, momentum: 0.9 });
  opt2.loadStateDict(od);
  const r1 = await trainStepAsync({ model: m, optimizer: opt }, batch);
  const r2 = await trainStepAsync({ model: m2, optimizer: opt2 }, batch);
  assert.equal(r2.loss, r1.loss);
  const s1 = await readStateArrays(m),
    s2 = await readStateArrays(m2);
  for (const [k, v] of s1) assert.ok(bits(s2.get(k)!.data).equals(bits(v.data)), `continued training differs at ${k}`);
  // the EMA after one update with decay min(0.5, 1/10) = 0.1: 0.1*w0 + 0.9*w1 (atol 1e-6)
  for (const [k, v] of ea) {
    if (k.endsWith('num_batches_tracked')) continue;
    v.data.forEach((e, i) => assert.ok(Math.abs(e - (0.1 * w0.get(k)!.data[i] + 0.9 * sd.get(k)!.data[i])) <= 1e-6, `EMA of ${k}[${i}]`));
  }
  ema.dispose();
});

test('predictLogits, the fused model and ONNX export on ref-nosync equal ref (fused: bit for bit; ONNX bytes identical)', async () => {
  const x = Float32Array.from({ length: 3 * 3 * 20 * 20 }, (_, i) => Math.sin(i * 0.37));
  const run = async (backend: string) => {
    const m = await modelOn(backend, 'resnet18', { numClasses: 5 });
    // non-trivial BN statistics, so folding matters
    m.train();
    noGrad(() => m.forward(tensor(x, [3, 3, 20, 20])));
    m.eval();
    const plain = await predictLogits(m, x, [3, 3, 20, 20]);
    using fused = fuseForInference(m);
    const f = await predictLogits(fused, x, [3, 3, 20, 20]);
    const onnx = backend === 'ref' ? exportOnnx(m, { inputShape: [3, 20, 20] }) : await exportOnnxAsync(m, { inputShape: [3, 20, 20] });
    return { plain, f, onnx };
  };
  const a = await run('ref'),
    b = await run('ref-nosync');
  assert.ok(bits(b.plain).equals(bits(a.plain)), 'eval logits');
  assert.ok(bits(b.f).equals(bits(a.f)), 'fused logits');
  assert.ok(Buffer.from(b.onnx).equals(Buffer.from(a.onnx)), 'ONNX bytes');
  let worst = 0;
  a.plain.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - a.f[i]))));
  assert.ok(worst < 1e-4, `fused vs plain eval logits differ by ${worst} (atol 1e-4)`);
});
