// Issue 15, items 9-14: bad sizes, unreadable file names, pickled models and quantized files,
// out-of-range model options and thread counts, any checkpoint model name usable everywhere, .gif
// in image folders and a readable loss. Each bad input: one line naming the problem, no stack.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { ConfigError, ShapeError, UnsafePickleError } from '../src/base/errors.js';
import { setThreads } from '../src/backend/wasm/settings.js';
import { ImageFolder } from '../src/data/image-folder.js';
import { readNpyFile, readPthFile, readSafetensorsFile, writeNpyFile, writeSafetensorsFile } from '../src/io/files.js';
import { createModel } from '../src/models/registry.js';
import { stateDictToArrays } from '../src/nn/state.js';
import { runCli } from './cli-run.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { formatLoss } from '../src/train/metrics.js';
import { assertClose } from './helpers.js';
import { pythonMissing, runPython } from './io-util.js';

const noTorch = pythonMissing(['torch']) ?? false;
const dir = mkdtempSync(join(tmpdir(), 'resnet-issue15-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const run = runCli;

function oneLineError(r: { code: number; err: string }, re: RegExp): void {
  assert.equal(r.code, 1, `exit code; stderr: ${r.err}`);
  // train also notes its backend on stderr ("backend: ref"); the error is the one error line
  const lines = r.err
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('error: '));
  assert.equal(lines.length, 1, r.err);
  assert.match(lines[0], re);
  assert.ok(!/\n\s+at /.test(r.err), 'no stack trace');
}

const TRAIN = ['train', '--model', 'cifar_resnet8', '--epochs', '1', '--limit-train', '32', '--limit-test', '16', '--no-progress'];

test("item 9: --size below the model's minimum input or absurdly large is one clear line, before any data is read", async () => {
  oneLineError(await run([...TRAIN, '--size', '1', '--out', join(dir, 's1')]), /--size 1 is below cifar_resnet8's minimum input of 4 px/);
  oneLineError(await run([...TRAIN, '--size', '100000', '--out', join(dir, 's2')]), /--size 100000 is above the largest supported input of 4096 px/);
  oneLineError(await run([...TRAIN, '--size', '4000', '--batch-size', '64', '--out', join(dir, 's3')]), /one input batch alone would take 3\.8 GiB/);
  oneLineError(await run(['train', '--model', 'resnet18', '--size', '16', '--out', join(dir, 's4')]), /--size 16 is below resnet18's minimum input of 32 px/);
  assert.ok(!existsSync(join(dir, 's1', 'last.json')));
});

test("item 12: --arch numClasses 0 / 1e12 / not the data's count, --threads 1000, setThreads(0), tensor([], [-1, 0]) are refused or capped", async () => {
  oneLineError(
    await run([...TRAIN, '--arch', '{"numClasses":0}', '--out', join(dir, 'a1')]),
    /option 'numClasses' for cifar_resnet8 must be an integer from 1 to 1,000,000, got 0/,
  );
  oneLineError(await run([...TRAIN, '--arch', '{"numClasses":1e12}', '--out', join(dir, 'a2')]), /must be an integer from 1 to 1,000,000, got 1000000000000/);
  oneLineError(await run(['info', 'resnet18', '--arch', '{"groups":1e9}']), /option 'groups' for resnet18 must be an integer from 1 to 1,024/);
  oneLineError(
    await run([...TRAIN, '--size', '12', '--arch', '{"numClasses":5}', '--out', join(dir, 'a3')]),
    /--arch numClasses 5 does not match the data's 10 classes/,
  );
  const r = await run(['--threads', '1000', 'info', 'cifar_resnet8']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /^warning: --threads 1000 is more than the machine's \d+ cores; using \d+\n$/);
  assert.throws(
    () => setThreads(0),
    (e: Error) => e instanceof ConfigError && /positive integer, got 0/.test(e.message),
  );
  assert.throws(() => setThreads(2.5), ConfigError);
  assert.throws(
    () => ops.tensor([], [-1, 0]),
    (e: Error) => e instanceof ShapeError && /invalid shape \[-1, 0\]/.test(e.message),
  );
  assert.throws(() => ops.tensor([1, 2], [NaN, 2]), ShapeError);
  assert.deepEqual(ops.tensor([], [0, 3]).shape, [0, 3]);
});

test('item 13: forward and export take cifar_resnet8 (any cifar_resnet<6n+2> a checkpoint names); bad depths are one line', async () => {
  const m = noGrad(() => createModel('cifar_resnet8'));
  const w = join(dir, 'r8.safetensors');
  writeSafetensorsFile(w, stateDictToArrays(m));
  const x = ops.randn([2, 3, 12, 12]);
  writeNpyFile(join(dir, 'x.npy'), { dtype: 'F32', shape: [...x.shape], data: x.dataSync() });
  const f = await run(['forward', '--model', 'cifar_resnet8', '--weights', w, '--input', join(dir, 'x.npy'), '--output', join(dir, 'y.npy')]);
  assert.equal(f.code, 0, f.err);
  m.eval();
  assertClose(readNpyFile(join(dir, 'y.npy')).data, noGrad(() => m.forward(x)).dataSync(), 1e-5, 1e-6, 'forward --model cifar_resnet8');
  const e = await run(['export', '--model', 'cifar_resnet8', '--weights', w, '--onnx', join(dir, 'r8.onnx')]);
  assert.equal(e.code, 0, e.err);
  assert.ok(readFileSync(join(dir, 'r8.onnx')).length > 10_000);
  oneLineError(
    await run(['forward', '--model', 'cifar_resnet9', '--weights', w, '--input', join(dir, 'x.npy'), '--output', join(dir, 'z.npy')]),
    /unknown model 'cifar_resnet9' \(a CIFAR ResNet's depth must be 6n\+2 between 8 and 1202\)/,
  );
  m.dispose();
});

test('items 10 and 14: predict DIR reports a non-UTF-8 name and a corrupt file per file, predicts the rest (.gif included), exits 1; --json carries the errors; training refuses the folder up front', async () => {
  const root = join(dir, 'imgs'),
    cls = join(root, 'a');
  mkdirSync(cls, { recursive: true });
  mkdirSync(join(root, 'b'));
  const px = { create: { width: 16, height: 16, channels: 3 as const, background: { r: 200, g: 10, b: 40 } } };
  await sharp(px).png().toFile(join(cls, '1.png'));
  await sharp(px).gif().toFile(join(cls, '2.gif'));
  await sharp(px)
    .png()
    .toFile(join(root, 'b', '3.png'));
  writeFileSync(join(cls, '4.png'), 'not a PNG');
  // "5\xff.png": byte 0xff is not UTF-8; Node lists it as "5\uFFFD.png", which cannot be opened.
  writeFileSync(Buffer.concat([Buffer.from(cls + '/5'), Buffer.from([0xff]), Buffer.from('.png')]), readFileSync(join(cls, '1.png')));
  const w = join(dir, 'p8.safetensors');
  const m = noGrad(() => createModel('cifar_resnet8', { numClasses: 2 }));
  writeSafetensorsFile(w, stateDictToArrays(m));
  m.dispose();
  const args = ['predict', root, '--checkpoint', w, '--model', 'cifar_resnet8', '--topk', '1'];
  const r = await run(args);
  assert.equal(r.code, 1, r.err);
  const outLines = r.out.trim().split('\n');
  assert.deepEqual(
    outLines.map((l) => l.split(':')[0]),
    ['a/1.png', 'a/2.gif', 'b/3.png'],
  );
  const errLines = r.err.trim().split('\n');
  assert.equal(errLines.length, 3, r.err);
  assert.match(errLines[0], /^error: .*4\.png: cannot decode image/);
  assert.match(errLines[1], /^error: .*5\uFFFD\.png: the file name is not valid UTF-8/);
  assert.equal(errLines[2], 'error: 2 of 5 images could not be predicted');
  const j = await run([...args, '--json']);
  assert.equal(j.code, 1);
  const rows = j.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    rows.map((o) => o.file),
    ['a/1.png', 'a/2.gif', 'a/4.png', 'a/5\uFFFD.png', 'b/3.png'],
  );
  assert.deepEqual(
    rows.map((o) => (o.error ? 'error' : o.predictions.length)),
    [1, 1, 'error', 'error', 1],
  );
  // Training on that folder stops before anything runs, naming the file.
  assert.throws(
    () => ImageFolder.open(root),
    (e: Error) => e instanceof ConfigError && /5\uFFFD\.png: the file name is not valid UTF-8/.test(e.message),
  );
  rmSync(Buffer.concat([Buffer.from(cls + '/5'), Buffer.from([0xff]), Buffer.from('.png')]));
  const f = ImageFolder.open(root);
  assert.deepEqual(
    f.paths.map((p) => p.slice(root.length + 1)),
    ['a/1.png', 'a/2.gif', 'a/4.png', 'b/3.png'],
  );
  // item 14: a huge loss is printed as a number a person can read.
  assert.equal(formatLoss(5.621775693469714e35), '5.622e+35');
  assert.equal(formatLoss(0.25), '0.2500');
  assert.equal(formatLoss(NaN), 'NaN');
});

test('item 11: a whole pickled model (torch.save(model), zip and legacy) and a quantized qint8 .pth are refused with a hint', { skip: noTorch }, () => {
  runPython(
    String.raw`
import sys, torch, torch.nn as nn
d = sys.argv[1]
torch.save(nn.Sequential(nn.Linear(2, 2)), d + '/model.pth')
torch.save(nn.Sequential(nn.Linear(2, 2)), d + '/model_legacy.pth', _use_new_zipfile_serialization=False)
torch.save({'w': torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8)}, d + '/q.pth')
`,
    [dir],
  );
  for (const f of ['model.pth', 'model_legacy.pth']) {
    assert.throws(
      () => readPthFile(join(dir, f)),
      (e: Error) =>
        e instanceof UnsafePickleError &&
        /refused global torch\.nn\.modules\.container\.Sequential \(a whole pickled model, torch\.save\(model\): save its weights with torch\.save\(model\.state_dict\(\), path\) instead\)/.test(
          e.message,
        ) &&
        !e.message.includes('\n'),
    );
  }
  assert.throws(
    () => readPthFile(join(dir, 'q.pth')),
    (e: Error) => e instanceof UnsafePickleError && /quantized tensors: resnet-ts reads float weights/.test(e.message),
  );
});

test('--save-format pth: best.pth and last.pth beside the checkpoint hold its weights exactly, and torch.load(weights_only=True) reads them', async () => {
  const out = join(dir, 'pthrun');
  const r = await run([...TRAIN, '--size', '12', '--batch-size', '16', '--workers', '0', '--save-format', 'pth', '--out', out]);
  assert.equal(r.code, 0, r.err);
  for (const name of ['best', 'last']) {
    const pth = readPthFile(join(out, `${name}.pth`));
    const st = readSafetensorsFile(join(out, `${name}.safetensors`));
    assert.deepEqual([...pth.keys()], [...st.keys()], name);
    for (const [k, a] of st) assert.deepEqual(pth.get(k)!.data, a.data, `${name} ${k}`);
  }
  if (noTorch) return;
  const said = runPython(
    String.raw`
import sys, torch
sd = torch.load(sys.argv[1], weights_only=True)
print(len(sd), sd['bn1.num_batches_tracked'].dtype, sd['fc.weight'].shape)
`,
    [join(out, 'last.pth')],
  ).trim();
  assert.equal(said, `${readSafetensorsFile(join(out, 'last.safetensors')).size} torch.int64 torch.Size([10, 64])`);
});
