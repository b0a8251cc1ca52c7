// No silent wrong numbers: loadStateDict is all or nothing (lengths checked against shapes,
// integer data never cast into float weights), a second backward() over one graph is refused
// unless the graph was retained (as in PyTorch), NaN/Inf weights are reported on load (refused with
// --strict-finite), and NaN/Inf logits stop eval and predict with an error instead of a number.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { setBackend } from '../src/backend/registry.js';
import { StateDictError } from '../src/base/errors.js';
import { runCli } from './cli-run.js';
import { EMBEDDED_SLICE_DIR } from '../src/data/fashion-mnist.js';
import { DataLoader } from '../src/data/loader.js';
import { writeNpyFile, writeSafetensorsFile } from '../src/io/files.js';
import { stateDictToArrays } from '../src/nn/state.js';
import { mul, sum, tensor } from '../src/tensor/ops.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { DEFAULT_CONFIG, buildModel } from '../src/train/config.js';
import { runTraining } from '../src/train/run.js';
import { NonFiniteOutputError, evaluate } from '../src/train/trainer.js';

let dir: string;
before(async () => {
  await setBackend('ref');
  dir = mkdtempSync(join(tmpdir(), 'resnet-load-checks-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const run = runCli;

const snapshot = (m: ReturnType<typeof buildModel>) => [...m.stateDict()].map(([k, t]) => [k, t.dataSync()] as const);
function unchanged(m: ReturnType<typeof buildModel>, before: ReturnType<typeof snapshot>): void {
  for (const [k, d] of before) assert.deepEqual(m.stateDict().get(k)!.dataSync(), d, `${k} was written`);
}

test('loadStateDict is all or nothing: short data, long data, a shape mismatch and int8 data leave the model untouched', () => {
  const m = buildModel('cifar_resnet8', { numClasses: 10, inChannels: 1 });
  const good = stateDictToArrays(m);
  for (const a of good.values()) a.data = a.data.map((v) => v + 1);
  const before = snapshot(m);
  const cases: [string, (sd: typeof good) => void, RegExp][] = [
    [
      'short data',
      (sd) => {
        const a = sd.get('layer1.0.conv1.weight')!;
        a.data = a.data.subarray(0, a.data.length - 5);
      },
      /layer1\.0\.conv1\.weight: shape \[16, 16, 3, 3\] needs 2304 values, the data has 2299/,
    ],
    [
      'long data',
      (sd) => {
        const a = sd.get('fc.weight')!;
        a.data = new Float32Array(a.data.length + 3);
      },
      /fc\.weight: shape \[10, 64\] needs 640 values, the data has 643/,
    ],
    [
      'a shape mismatch late in the order',
      (sd) => {
        sd.get('fc.bias')!.shape = [11];
      },
      /fc\.bias: expected \[10\], got \[11\]/,
    ],
    [
      'int8 data',
      (sd) => {
        (sd.get('conv1.weight') as { dtype: string }).dtype = 'I8';
      },
      /integer data for 1 floating-point tensor\(s\): conv1\.weight \(I8\); not cast silently/,
    ],
  ];
  for (const [what, spoil, re] of cases) {
    const sd = new Map([...good].map(([k, a]) => [k, { ...a }]));
    spoil(sd);
    assert.throws(
      () => m.loadStateDict(sd),
      (e: Error) => e instanceof StateDictError && re.test(e.message),
      what,
    );
    assert.throws(() => m.loadStateDict(sd, { strict: false }), StateDictError, `${what} (strict: false)`);
    unchanged(m, before);
  }
  // the int64 counter of BatchNorm is an integer in every torchvision file and loads
  assert.equal(good.get('bn1.num_batches_tracked')!.dtype, 'I64');
  m.loadStateDict(good);
  assert.equal(m.stateDict().get('conv1.weight')!.dataSync()[0], good.get('conv1.weight')!.data[0]);
});

test('backward() twice over one graph is an error unless the first retained it; retained passes accumulate', () => {
  const x = tensor([1, 2, 3], [3]).setRequiresGrad();
  const w = tensor([0.5, -1, 2], [3]).setRequiresGrad();
  const y = sum(mul(x, w));
  y.backward();
  assert.deepEqual([...x.grad!.dataSync()], [0.5, -1, 2]);
  assert.throws(() => y.backward(), /backward\(\) through a graph that was already walked .*retainGraph: true/);
  assert.deepEqual([...x.grad!.dataSync()], [0.5, -1, 2], 'nothing accumulated by the refused pass');
  // a new graph over the same leaves is fine; retained, it can be walked again
  x.zeroGrad();
  const z = sum(mul(x, w));
  z.backward({ retainGraph: true });
  z.backward(undefined, { retainGraph: true });
  z.backward();
  assert.deepEqual([...x.grad!.dataSync()], [1.5, -3, 6]);
  assert.deepEqual([...w.grad!.dataSync()], [4, 8, 12], 'w.grad: one pass of y, three of z');
  assert.throws(() => z.backward(), /already walked/);
});

test('NaN weights: a warning on load (an error with --strict-finite), and predict/eval stop on NaN logits instead of printing numbers', async () => {
  const m = buildModel('cifar_resnet8', { numClasses: 10, inChannels: 1 });
  const sd = stateDictToArrays(m);
  sd.get('fc.bias')!.data[3] = NaN;
  sd.get('layer1.0.bn1.weight')!.data[0] = Infinity;
  const bare = join(dir, 'nan.safetensors');
  writeSafetensorsFile(bare, sd);
  const img = join(dir, 'pics', 'a.png');
  mkdirSync(join(dir, 'pics'));
  await sharp(Buffer.alloc(28 * 28, 90), { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toFile(img);

  const p = await run(['predict', img, '--checkpoint', bare, '--model', 'cifar_resnet8']);
  assert.match(
    p.err,
    new RegExp(
      `^warning: .*nan\\.safetensors: 2 tensor\\(s\\) hold non-finite values: layer1\\.0\\.bn1\\.weight \\(1 Inf\\), fc\\.bias \\(1 NaN\\); .*--strict-finite`,
      'm',
    ),
  );
  assert.equal(p.code, 1, p.err);
  assert.match(
    p.err,
    /^error: .*a\.png: the model's output is non-finite \(NaN; the weights in .*nan\.safetensors hold non-finite values or overflow\); no prediction$/m,
  );
  assert.equal(p.out, '', 'no prediction printed');
  const s = await run(['predict', img, '--checkpoint', bare, '--model', 'cifar_resnet8', '--strict-finite']);
  assert.equal(s.code, 1);
  assert.match(s.err, /^error: .*nan\.safetensors: 2 tensor\(s\) hold non-finite values: .*; refused \(--strict-finite\)$/m);
  // forward and export --weights: the same warning, the same refusal
  const x = join(dir, 'x.npy');
  writeNpyFile(x, { dtype: 'F32', shape: [1, 1, 8, 8], data: new Float32Array(64).fill(0.5) });
  const fw = await run([
    'forward',
    '--model',
    'cifar_resnet8',
    '--arch',
    '{"numClasses":10,"inChannels":1}',
    '--weights',
    bare,
    '--input',
    x,
    '--output',
    join(dir, 'y.npy'),
  ]);
  assert.match(fw.err, /^warning: .*nan\.safetensors: 2 tensor\(s\) hold non-finite values/m);
  const fs = await run([
    'forward',
    '--model',
    'cifar_resnet8',
    '--arch',
    '{"numClasses":10,"inChannels":1}',
    '--weights',
    bare,
    '--input',
    x,
    '--output',
    join(dir, 'y.npy'),
    '--strict-finite',
  ]);
  assert.equal(fs.code, 1);
  assert.match(fs.err, /^error: .*nan\.safetensors: 2 tensor\(s\) hold non-finite values: .*; refused \(--strict-finite\)$/m);

  // eval: a checkpoint whose (finite) weights overflow to Inf logits
  const out = join(dir, 'run');
  const cfg = {
    ...DEFAULT_CONFIG,
    model: 'cifar_resnet8',
    out,
    epochs: 1,
    batchSize: 16,
    workers: 0,
    seed: 1,
    data: { ...DEFAULT_CONFIG.data, dataDir: EMBEDDED_SLICE_DIR, size: 8, augment: 'none' as const, limitTrain: 32, limitTest: 16 },
  };
  const r = await runTraining(cfg, { maxSteps: 1 });
  const ck = loadCheckpoint(join(out, 'last.json'));
  const fcw = r.model.getModule('fc').parameters()[0];
  fcw.write(new Float32Array(fcw.size).fill(3e38));
  const { weights: _w, optimizerFile: _o, files: _f, id: _i, created: _c, format: _fm, version: _v, optimizer: _op, sidecarSha256: _s, ...meta } = ck.meta;
  saveCheckpoint(join(dir, 'overflow'), { model: r.model, meta });
  const e = await run(['eval', '--checkpoint', join(dir, 'overflow.json'), '--data-dir', EMBEDDED_SLICE_DIR, '--limit-test', '16', '--no-progress']);
  assert.equal(e.code, 1, e.err);
  assert.match(
    e.err,
    /^error: .*overflow(\.[0-9a-f]{16})?\.safetensors: the model's output is non-finite \((-?Infinity|NaN)\) for image \d+ of the test set; no accuracy is computed from it/m,
  );
  assert.ok(!/test_acc=/.test(e.out));
  // the library call says the same
  const { loadFashionMNIST } = await import('../src/data/fashion-mnist.js');
  const fm = await loadFashionMNIST({ dataDir: EMBEDDED_SLICE_DIR, download: false });
  const { transformFromSpec } = await import('../src/data/transforms.js');
  const loader = new DataLoader(fm.test, { batchSize: 8, transform: await transformFromSpec(ck.meta.evalTransform as never) });
  await assert.rejects(evaluate(r.model, loader, { numClasses: 10 }), NonFiniteOutputError);
  await loader.close();
});
