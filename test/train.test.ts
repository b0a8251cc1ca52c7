// Training end to end on the ref backend with tiny workloads: learning on real Fashion-MNIST
// images (the embedded slice), exact resume after an interruption, fine-tuning a trained model on
// an image folder written with sharp, checkpoints, metrics, curves and the step memory scope.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { setBackend, getBackend } from '../src/backend/registry.js';
import { RNG } from '../src/base/rng.js';
import { EMBEDDED_SLICE_DIR } from '../src/data/fashion-mnist.js';
import { readSafetensorsFile } from '../src/io/files.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { DEFAULT_CONFIG, buildModel, type TrainConfig } from '../src/train/config.js';
import { ClassificationMetrics, topKIndices } from '../src/train/metrics.js';
import { runTraining } from '../src/train/run.js';
import { trainingCurvesSvg } from '../src/train/svg.js';
import { evaluate, hflipBatch, predictLogits, trainStep } from '../src/train/trainer.js';
import { DataLoader } from '../src/data/loader.js';
import { ModelEma } from '../src/train/ema.js';
import { SGD } from '../src/optim/sgd.js';
import { findHead, freeze, loadPretrained, parameterGroups } from '../src/train/transfer.js';
import { BatchNorm2d } from '../src/nn/layers.js';

let dir: string;
before(async () => {
  await setBackend('ref');
  dir = mkdtempSync(join(tmpdir(), 'resnet-train-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A tiny Fashion-MNIST run: CIFAR ResNet-8 at 12 px on the embedded slice. */
function fmConfig(out: string, over: Partial<TrainConfig> = {}, data: Partial<TrainConfig['data']> = {}): TrainConfig {
  return {
    ...DEFAULT_CONFIG,
    model: 'cifar_resnet8',
    out,
    epochs: 3,
    batchSize: 16,
    lr: 0.05,
    momentum: 0.9,
    nesterov: true,
    weightDecay: 5e-4,
    schedule: 'cosine',
    labelSmoothing: 0.1,
    workers: 0,
    seed: 7,
    ...over,
    data: { ...DEFAULT_CONFIG.data, dataDir: EMBEDDED_SLICE_DIR, size: 12, augment: 'light', normalize: 'dataset', limitTrain: 64, limitTest: 48, ...data },
  };
}

let fmOut = '';

test('Fashion-MNIST slice: training loss falls and test accuracy rises well above chance (ResNet-8, 12 px, ref)', async () => {
  fmOut = join(dir, 'fm');
  const r = await runTraining(
    fmConfig(fmOut, { epochs: 3, batchSize: 16, lr: 0.1, schedule: 'onecycle', pctStart: 0.3 }, { limitTrain: 192, limitTest: 200, augment: 'none' }),
  );
  const h = r.history;
  assert.equal(h.length, 3);
  assert.ok(h[2].train_loss < h[0].train_loss - 0.2, `train loss ${h.map((x) => x.train_loss.toFixed(3)).join(' → ')}`);
  assert.ok(h[2].train_acc > h[0].train_acc, `train acc ${h.map((x) => x.train_acc.toFixed(3)).join(' → ')}`);
  assert.ok(r.final && r.final.name === 'test' && r.final.acc >= 0.45, `test acc ${r.final?.acc} (chance 0.1)`);
  assert.ok(h[2].val_acc! > h[0].val_acc!, `test acc ${h.map((x) => x.val_acc!.toFixed(3)).join(' → ')}`);
  assert.match(r.summary, /^test_acc=0\.\d{4} test_loss=\d+\.\d{4} /);
  // artefacts
  for (const f of ['last.safetensors', 'last.json', 'last.prev.json', 'best.safetensors', 'best.json', 'metrics.jsonl', 'curves.svg', 'class_indices.json']) {
    assert.ok(existsSync(join(fmOut, f)), f);
  }
  // the sidecar names its data files (id in the name) with their SHA-256; last.safetensors is the same weights
  const side = JSON.parse(readFileSync(join(fmOut, 'last.json'), 'utf8'));
  assert.match(side.weights, /^last\.[0-9a-f]{16}\.safetensors$/);
  assert.match(side.optimizerFile, /^last\.[0-9a-f]{16}\.optim\.safetensors$/);
  assert.ok(readFileSync(join(fmOut, side.weights)).equals(readFileSync(join(fmOut, 'last.safetensors'))));
  assert.match(side.files[side.optimizerFile].sha256, /^[0-9a-f]{64}$/);
  const lines = readFileSync(join(fmOut, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => l.epoch),
    [1, 2, 3],
  );
  assert.ok(readFileSync(join(fmOut, 'curves.svg'), 'utf8').startsWith('<svg'));
  // torchvision key names in the weights file, our ids in metadata, and the sidecar describes the model
  const w = readSafetensorsFile(join(fmOut, 'last.safetensors'));
  assert.ok(w.has('layer1.0.conv1.weight') && w.has('bn1.running_mean') && w.has('fc.bias'));
  assert.equal(w.get('bn1.num_batches_tracked')!.dtype, 'I64');
  const ck = loadCheckpoint(join(fmOut, 'last.json'), { withOptimizer: true });
  assert.equal(ck.meta.model.name, 'cifar_resnet8');
  assert.equal(ck.meta.classes[9], 'Ankle boot');
  assert.equal(ck.meta.epoch, 3);
  assert.ok(ck.optimizer && Object.keys(ck.optimizer.state).includes('layer1.0.conv1.weight'));
  const best = loadCheckpoint(join(fmOut, 'best'));
  assert.equal(best.meta.best!.value, Math.max(...h.map((x) => x.val_acc!)));
});

for (const ema of [0, 0.9])
  test(`resume after an interruption mid-epoch gives bit-identical weights and optimizer state to an uninterrupted run${ema ? ' (with an EMA of the weights)' : ''}`, async () => {
    const cfgA = fmConfig(join(dir, `uninterrupted${ema}`), { ema });
    const a = await runTraining(cfgA);
    const cfgB = fmConfig(join(dir, `interrupted${ema}`), { ema });
    const b1 = await runTraining(cfgB, { maxSteps: 6 }); // 4 steps per epoch: stops in epoch 2
    assert.equal(b1.interrupted, true);
    const mid = loadCheckpoint(join(cfgB.out, 'last.json'), { withOptimizer: true });
    assert.equal(mid.meta.globalStep, 6);
    assert.deepEqual(mid.meta.loader, { seed: 7, epoch: 1, batch: 2 });
    assert.ok(mid.meta.epochProgress, 'running metrics of the unfinished epoch are saved');
    if (ema) {
      assert.deepEqual(mid.meta.ema, { decay: ema, updates: 6 });
      assert.ok(mid.rawWeights, 'the raw training weights are kept beside the optimizer state');
      const differs = [...mid.weights].some(([k, v]) => !k.endsWith('num_batches_tracked') && v.data.some((x, i) => x !== mid.rawWeights!.get(k)!.data[i]));
      assert.ok(differs, 'the weights file holds the average, not the raw weights');
    }
    const b2 = await runTraining(cfgB, { resume: cfgB.out });
    assert.equal(b2.interrupted, false);
    assert.equal(b2.globalStep, a.globalStep);
    const wa = readSafetensorsFile(join(cfgA.out, 'last.safetensors'));
    const wb = readSafetensorsFile(join(cfgB.out, 'last.safetensors'));
    assert.deepEqual([...wb.keys()], [...wa.keys()]);
    for (const [k, v] of wa) assert.deepEqual(Buffer.from(wb.get(k)!.data.buffer), Buffer.from(v.data.buffer), `weights differ at ${k}`);
    const optimFile = (d: string) => join(d, JSON.parse(readFileSync(join(d, 'last.json'), 'utf8')).optimizerFile);
    const oa = readSafetensorsFile(optimFile(cfgA.out));
    const ob = readSafetensorsFile(optimFile(cfgB.out));
    for (const [k, v] of oa) assert.deepEqual(Buffer.from(ob.get(k)!.data.buffer), Buffer.from(v.data.buffer), `optimizer state differs at ${k}`);
    assert.deepEqual(
      b2.history.map((r) => [r.train_loss, r.train_acc, r.val_loss, r.val_acc]),
      a.history.map((r) => [r.train_loss, r.train_acc, r.val_loss, r.val_acc]),
    );
    assert.equal(b2.final!.acc, a.final!.acc);
  });

test('EMA of the weights: ema = d*ema + (1-d)*w with d = min(decay, (1+t)/(10+t)), within 1e-5 (30 float32 roundings) of a float64 recurrence; evaluation swaps it in and back', async () => {
  const model = buildModel('cifar_resnet8', { numClasses: 10, inChannels: 1 });
  const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const ema = new ModelEma(model, 0.8);
  const expect = new Map<string, Float64Array>();
  for (const [k, t] of model.stateDict()) expect.set(k, Float64Array.from(t.dataSync()));
  const rng = new RNG(11);
  for (let t = 0; t < 30; t++) {
    const x = Float32Array.from({ length: 4 * 12 * 12 }, () => rng.normal());
    trainStep({ model, optimizer: opt }, { x, shape: [4, 1, 12, 12], y: Int32Array.from([0, 1, 2, 3]) });
    ema.update(model);
    const d = Math.min(0.8, (1 + t) / (10 + t));
    for (const [k, w] of model.stateDict()) {
      const e = expect.get(k)!;
      const wv = w.dataSync();
      for (let i = 0; i < e.length; i++) e[i] = k.endsWith('num_batches_tracked') ? wv[i] : d * e[i] + (1 - d) * wv[i];
    }
  }
  assert.equal(ema.updates, 30);
  const got = ema.arrays(model);
  let worst = 0;
  for (const [k, e] of expect) {
    const g = got.get(k)!.data;
    for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(g[i] - e[i]) / (Math.abs(e[i]) + 1e-3));
  }
  assert.ok(worst <= 1e-5, `worst relative error ${worst}`);
  assert.equal(got.get('bn1.num_batches_tracked')!.data[0], 30);
  // withAveraged: the model holds the average inside, its own weights after
  const before = model.stateDict().get('conv1.weight')!.dataSync().slice();
  const inside = await ema.withAveraged(model, async () => model.stateDict().get('conv1.weight')!.dataSync().slice());
  assert.deepEqual(inside, got.get('conv1.weight')!.data);
  assert.deepEqual(model.stateDict().get('conv1.weight')!.dataSync(), before);
  assert.notDeepEqual(inside, before);
  assert.throws(() => new ModelEma(model, 1), /EMA decay must be in \(0, 1\)/);
});

/** Three classes told apart by pattern (not colour): horizontal stripes, vertical stripes, a checkerboard. */
async function writePatternFolder(root: string, perClass: number, opts: { emptyClass?: boolean } = {}): Promise<void> {
  const rng = new RNG(3);
  const classes = ['checker', 'hstripes', 'vstripes'];
  for (const c of classes) {
    mkdirSync(join(root, c), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const w = 20 + (i % 3) * 4,
        h = 20 + (i % 2) * 4;
      const period = 3 + (i % 3),
        phase = rng.int(period);
      const base = 40 + rng.int(60),
        amp = 120 + rng.int(80);
      const tint = [rng.int(40), rng.int(40), rng.int(40)];
      const raw = Buffer.alloc(w * h * 3);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const on =
            c === 'hstripes'
              ? Math.floor((y + phase) / period) % 2
              : c === 'vstripes'
                ? Math.floor((x + phase) / period) % 2
                : (Math.floor((x + phase) / period) + Math.floor(y / period)) % 2;
          for (let k = 0; k < 3; k++) raw[(y * w + x) * 3 + k] = Math.min(255, base + on * amp + tint[k] + rng.int(20));
        }
      const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
      await (i % 2 ? img.png() : img.jpeg({ quality: 95 })).toFile(join(root, c, `${i}.${i % 2 ? 'png' : 'jpg'}`));
    }
  }
  if (opts.emptyClass) mkdirSync(join(root, 'empty'), { recursive: true });
}

test('fine-tune the Fashion-MNIST model on an image folder (new head, frozen stem, head lr x10) learns the new classes', async () => {
  assert.ok(fmOut, 'needs the Fashion-MNIST run');
  const root = join(dir, 'patterns');
  await writePatternFolder(root, 16);
  const messages: string[] = [];
  const r = await runTraining(
    {
      ...DEFAULT_CONFIG,
      task: 'finetune',
      model: '',
      weights: join(fmOut, 'best'),
      out: join(dir, 'ft'),
      epochs: 5,
      batchSize: 12,
      lr: 0.02,
      momentum: 0.9,
      headLrMult: 10,
      freeze: 'stem',
      schedule: 'cosine',
      labelSmoothing: 0,
      workers: 0,
      seed: 1,
      data: { kind: 'image-folder', root, valSplit: 0.25, size: 16, augment: 'light', normalize: 'imagenet' },
    },
    { hooks: { onMessage: (m) => messages.push(m) } },
  );
  assert.ok(
    messages.some((m) => /loaded \d+ of \d+ tensors from .*best\.safetensors; new head 'fc'/.test(m)),
    messages.join('\n'),
  );
  assert.ok(
    messages.some((m) => /froze conv1, bn1, relu/.test(m)),
    messages.join('\n'),
  );
  assert.deepEqual(r.classes, ['checker', 'hstripes', 'vstripes']);
  assert.ok(r.final && r.final.name === 'val', 'evaluated on the validation split');
  assert.ok(r.final!.acc >= 0.75, `val acc ${r.final!.acc} after ${r.history.map((h) => h.val_acc!.toFixed(2)).join(' → ')}`);
  const ck = loadCheckpoint(join(dir, 'ft', 'best'));
  assert.deepEqual(ck.meta.classes, ['checker', 'hstripes', 'vstripes']);
  assert.equal(ck.meta.input.mode, 'gray', 'a 1-channel model reads the folder in gray');
  assert.deepEqual(ck.weights.get('fc.weight')!.shape, [3, 64]);
});

test("buildModel: CIFAR ResNets of any depth 6n+2 take the registry's CIFAR options, checked by name and type", () => {
  const m = buildModel('cifar_resnet14', { numClasses: 4, inChannels: 1, width: 8 });
  assert.deepEqual(m.stateDict().get('fc.weight')!.shape, [4, 32]); // width 8: stages 8, 16, 32
  assert.throws(() => buildModel('cifar_resnet14', { depth: 3 }), /unknown option 'depth' for cifar_resnet14 \(allowed: numClasses, inChannels, width\)/);
  assert.throws(() => buildModel('cifar_resnet14', { width: '8' }), /option 'width' for cifar_resnet14 must be an integer from 1 to 4,096, got "8"/);
  m.dispose();
});

test('transfer helpers: head, non-strict load report, another architecture refused, freeze keeps BN in eval', () => {
  const src = buildModel('cifar_resnet8', { numClasses: 10, inChannels: 1 });
  const dst = buildModel('cifar_resnet8', { numClasses: 4, inChannels: 1 });
  assert.equal(findHead(dst).name, 'fc');
  assert.equal(findHead(buildModel('d2l_resnet18', {})).name, '7');
  const rep = loadPretrained(dst, src.stateDict(), 'src.safetensors');
  assert.deepEqual(rep.headInitialised, ['fc.weight', 'fc.bias']);
  assert.equal(rep.loaded, rep.total - 2);
  assert.deepEqual(Array.from(dst.stateDict().get('layer2.0.conv1.weight')!.dataSync()), Array.from(src.stateDict().get('layer2.0.conv1.weight')!.dataSync()));
  const deeper = buildModel('cifar_resnet20', { numClasses: 4, inChannels: 1 });
  assert.throws(
    () => loadPretrained(deeper, src.stateDict(), 'r8.safetensors'),
    /r8\.safetensors does not fit this CifarResNet .*missing: layer1\.1\.conv1\.weight/,
  );
  const d2l = buildModel('d2l_resnet18', {});
  assert.throws(() => loadPretrained(d2l, src.stateDict(), 'r8.safetensors'), /r8\.safetensors: none of its \d+ tensors fit/);

  const m = buildModel('cifar_resnet8', { numClasses: 3, inChannels: 1 });
  const fr = freeze(m, 'layer2');
  assert.deepEqual(fr.frozenModules, ['conv1', 'bn1', 'relu', 'layer1', 'layer2']);
  assert.ok(!m.stateDict().get('layer2.0.conv1.weight')!.requiresGrad && m.stateDict().get('layer3.0.conv1.weight')!.requiresGrad);
  assert.equal(fr.frozenBN.length, 1 + 2 + 2);
  const groups = parameterGroups(m, { lr: 0.1, weightDecay: 1e-4, headLrMult: 10 });
  assert.deepEqual(
    groups.map((g) => [g.name, g.lr, g.weightDecay]),
    [
      ['backbone', 0.1, 1e-4],
      ['backbone_no_decay', 0.1, 0],
      ['head', 1, 1e-4],
      ['head_no_decay', 1, 0],
    ],
  );
  // a training step leaves the frozen part untouched, including BN running statistics
  const before = new Map([...m.stateDict()].map(([k, t]) => [k, t.toFloat32Array()]));
  const opt = new SGD(groups, { lr: 0.1, momentum: 0.9 });
  m.train();
  for (const bn of fr.frozenBN) bn.train(false);
  const x = new Float32Array(4 * 14 * 14).map((_, i) => Math.sin(i));
  trainStep({ model: m, optimizer: opt }, { x, shape: [4, 1, 14, 14], y: new Int32Array([0, 1, 2, 0]) });
  for (const [k, t] of m.stateDict()) {
    const same = Buffer.from(t.dataSync().buffer, t.dataSync().byteOffset, t.dataSync().byteLength).equals(Buffer.from(before.get(k)!.buffer));
    if (/^(conv1|bn1|layer1|layer2)\./.test(k)) assert.ok(same, `${k} changed although frozen`);
    if (k === 'layer3.0.conv1.weight' || k === 'fc.weight' || k === 'layer3.0.bn1.running_mean') assert.ok(!same, `${k} did not train`);
  }
  assert.ok(fr.frozenBN.every((b: BatchNorm2d) => !b.training));
  assert.throws(() => freeze(m, 'layer7'), /no such stage \(stages: stem, layer1, layer2, layer3\)/);
  assert.throws(() => freeze(m, 'head'), /--freeze must be none, backbone, stem or layerN/);
});

test('memory: 1,000 training steps do not grow the backend allocation (step scopes)', () => {
  const m = buildModel('cifar_resnet8', { numClasses: 3, inChannels: 1 });
  const opt = new SGD(m.parameters(), { lr: 0.01, momentum: 0.9 });
  m.train();
  const x = new Float32Array(2 * 4 * 4).map((_, i) => Math.cos(i));
  const y = new Int32Array([0, 2]);
  trainStep({ model: m, optimizer: opt }, { x, shape: [2, 1, 4, 4], y }); // momentum buffers appear on the first step
  const base = getBackend().allocatedFloats();
  for (let i = 0; i < 1000; i++) trainStep({ model: m, optimizer: opt }, { x, shape: [2, 1, 4, 4], y });
  assert.equal(getBackend().allocatedFloats(), base);
});

test('flip TTA: evaluate scores the mean of the logits of each image and its mirror image (loss within 1e-5), and reports the plain top-1 beside it', async () => {
  assert.deepEqual(Array.from(hflipBatch(Float32Array.from([1, 2, 3, 4, 5, 6]), [1, 1, 2, 3])), [3, 2, 1, 6, 5, 4]);
  const model = buildModel('cifar_resnet8', { inChannels: 1, numClasses: 4 });
  const rng = new RNG(3);
  // not mirror-symmetric images, so the mirrored pass differs
  const n = 10,
    h = 8,
    w = 8;
  const x = Float32Array.from({ length: n * h * w }, () => rng.normal());
  const y = Int32Array.from({ length: n }, (_, i) => i % 4);
  const ds = { length: n, get: (i: number) => ({ image: { data: x.slice(i * h * w, (i + 1) * h * w), c: 1, h, w }, label: y[i] }) };
  const loader = new DataLoader(ds, { batchSize: 4, numWorkers: 0 });
  model.eval();
  const a = await predictLogits(model, x, [n, 1, h, w]);
  const b = await predictLogits(model, hflipBatch(x, [n, 1, h, w]), [n, 1, h, w]);
  let loss = 0,
    correct = 0,
    plainCorrect = 0;
  const argmax = (v: ArrayLike<number>, i: number) => {
    let k = 0;
    for (let j = 1; j < 4; j++) if (v[i * 4 + j] > v[i * 4 + k]) k = j;
    return k;
  };
  const mean = a.map((v, i) => (v + b[i]) / 2);
  for (let i = 0; i < n; i++) {
    const row = Array.from(mean.subarray(i * 4, i * 4 + 4));
    const m = Math.max(...row);
    loss += Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) + m - row[y[i]];
    if (argmax(mean, i) === y[i]) correct++;
    if (argmax(a, i) === y[i]) plainCorrect++;
  }
  const r = await evaluate(model, loader, { numClasses: 4, tta: 'flip' });
  assert.ok(Math.abs(r.loss - loss / n) < 1e-5, `loss ${r.loss} vs ${loss / n}`);
  assert.equal(r.acc, correct / n);
  assert.equal(r.accNoTta, plainCorrect / n);
  const p = await evaluate(model, loader, { numClasses: 4 });
  assert.equal(p.accNoTta, undefined);
  assert.equal(p.acc, plainCorrect / n);
  assert.notEqual(p.loss, r.loss);
  await loader.close();
});

test('metrics: top-1, top-5, per-class accuracy and confusion matrix (hand-checked batch)', () => {
  const mt = new ClassificationMetrics(3, 2);
  // rows: predictions 0, 2, 1, 1 ; targets 0, 1, 1, 2
  mt.update(Float32Array.from([3, 1, 0, 0, 1, 2, 0, 5, 1, 0.5, 2, 1]), [0, 1, 1, 2], 0.5);
  mt.update(Float32Array.from([0, 0, 9]), [2], 2);
  const r = mt.result();
  assert.equal(r.count, 5);
  assert.equal(r.acc, 3 / 5);
  assert.equal(r.topk, 5 / 5);
  assert.equal(r.loss, (0.5 * 4 + 2) / 5);
  assert.deepEqual(r.confusion, [
    [1, 0, 0],
    [0, 1, 1],
    [0, 1, 1],
  ]);
  assert.deepEqual(r.perClassAcc, [1, 0.5, 0.5]);
  assert.deepEqual(topKIndices([0.1, 0.5, 0.5, 0.2], 3), [1, 2, 3]);
  const svg = trainingCurvesSvg([
    { epoch: 1, train_loss: 1, train_acc: 0.5, val_loss: 0.9, val_acc: 0.6 },
    { epoch: 2, train_loss: 0.5, train_acc: 0.8, val_loss: 0.7, val_acc: 0.7 },
  ]);
  assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal((svg.match(/<path /g) ?? []).length, 4);
});
