// The `resnet` CLI end to end: info totals, forward against PyTorch logits, and bad input giving
// one clear line on stderr with a non-zero exit and no stack trace.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { assertClose } from './helpers.js';
import { FIXTURES, fixturesSkipReason, npy, st } from './fixtures.js';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
function resnet(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
function assertCleanError(r: ReturnType<typeof resnet>, pattern: RegExp) {
  assert.notEqual(r.code, 0, `expected a non-zero exit, stdout: ${r.out}`);
  const lines = r.err.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.err}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
}

const tmp = mkdtempSync(join(tmpdir(), 'resnet-cli-'));

test('info resnet50 at 3x224x224 totals 25,557,032 parameters and 4.09 GMACs', () => {
  const r = resnet('info', 'resnet50', '--input', '3x224x224', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.params, 25_557_032);
  assert.equal((j.macs / 1e9).toFixed(2), '4.09');
  const conv1 = j.layers.find((l: { name: string }) => l.name === 'conv1');
  assert.deepEqual(conv1.outShape, [64, 112, 112]); // floor((224 + 6 - 7)/2) + 1
  assert.deepEqual(j.layers.find((l: { name: string }) => l.name === 'maxpool').outShape, [64, 56, 56]);
  assert.deepEqual(j.output, [1000]);
  const table = resnet('info', 'resnet18');
  assert.equal(table.code, 0);
  assert.match(table.out, /total: 11,689,512 parameters, 1\.81 GMACs/);
});

test('info honours --arch (dilation keeps layer4 at stride 8)', () => {
  const r = resnet('info', 'resnet50', '--json', '--arch', '{"numClasses":7,"replaceStrideWithDilation":[false,true,true]}');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(j.layers.find((l: { name: string }) => l.name === 'layer4.2.conv3').outShape, [2048, 28, 28]);
  assert.deepEqual(j.output, [7]);
});

const skip = fixturesSkipReason('cifar_resnet20');
test("forward writes PyTorch's eval and train-mode logits (rtol 1e-4, atol 1e-5)", { skip }, () => {
  for (const [name, extra, golden] of [
    ['cifar_resnet20', [], 'logits_eval.npy'],
    ['resnet50_dilated', ['--arch', '{"numClasses":7,"replaceStrideWithDilation":[false,true,true]}'], 'logits_eval.npy'],
    ['d2l_resnet18', ['--train-mode'], 'logits_train_f64.npy'],
  ] as const) {
    const model = JSON.parse(readFileSync(join(FIXTURES, name, 'arch.json'), 'utf8')).model;
    const out = join(tmp, `${name}.npy`);
    const r = resnet(
      'forward',
      '--model',
      model,
      '--weights',
      join(FIXTURES, name, 'weights.safetensors'),
      '--input',
      join(FIXTURES, name, 'input.npy'),
      '--output',
      out,
      ...extra,
    );
    assert.equal(r.code, 0, r.err);
    assertClose(readNpy(new Uint8Array(readFileSync(out))).data, npy(name, golden).data, 1e-4, 1e-5, name);
  }
});

test('bad input: one clear line naming the problem, non-zero exit, no stack trace', { skip }, () => {
  const w = join(FIXTURES, 'cifar_resnet20', 'weights.safetensors');
  const x = join(FIXTURES, 'cifar_resnet20', 'input.npy');
  const out = join(tmp, 'y.npy');
  assertCleanError(resnet('info', 'resnet51'), /unknown model 'resnet51'/);
  assertCleanError(resnet('forward', '--model', 'resnet51', '--input', x, '--output', out), /unknown model 'resnet51'/);

  const sd = st('cifar_resnet20', 'weights.safetensors');
  const wrongShape = new Map(sd);
  wrongShape.set('fc.weight', { dtype: 'F32', shape: [5, 64], data: new Float32Array(5 * 64) });
  const ws = join(tmp, 'wrong-shape.safetensors');
  writeFileSync(ws, writeSafetensors(wrongShape));
  // bare weights: the model takes its class count from the file's head (fc.weight [5, 64]), so the bias is the misfit
  assertCleanError(
    resnet('forward', '--model', 'cifar_resnet20', '--weights', ws, '--input', x, '--output', out),
    /wrong-shape\.safetensors: shape mismatch .*fc\.bias: expected \[5\], got \[10\]/,
  );

  const missing = new Map(sd);
  missing.delete('layer2.1.bn1.running_var');
  const ms = join(tmp, 'missing.safetensors');
  writeFileSync(ms, writeSafetensors(missing));
  assertCleanError(resnet('forward', '--model', 'cifar_resnet20', '--weights', ms, '--input', x, '--output', out), /missing keys: layer2\.1\.bn1\.running_var/);

  const gray = join(tmp, 'gray.npy');
  writeFileSync(gray, writeNpy({ dtype: 'F32', shape: [1, 1, 32, 32], data: new Float32Array(32 * 32) }));
  assertCleanError(
    resnet('forward', '--model', 'cifar_resnet20', '--weights', w, '--input', gray, '--output', out),
    /1 channel\(s\), but cifar_resnet20 expects 3/,
  );

  const badNpy = join(tmp, 'bad.npy');
  writeFileSync(badNpy, Buffer.from('\x93NUMPY\x01\x00garbage'));
  assertCleanError(resnet('forward', '--model', 'cifar_resnet20', '--input', badNpy, '--output', out), /bad\.npy/);

  const badSt = join(tmp, 'bad.safetensors');
  writeFileSync(badSt, Buffer.from([255, 255, 255, 255, 255, 255, 255, 127, 1, 2, 3]));
  assertCleanError(resnet('forward', '--model', 'cifar_resnet20', '--weights', badSt, '--input', x, '--output', out), /bad\.safetensors/);

  assertCleanError(
    resnet('forward', '--model', 'cifar_resnet20', '--weights', join(tmp, 'nope.safetensors'), '--input', x, '--output', out),
    /nope\.safetensors.*no such file/,
  );
  assertCleanError(resnet('info', 'resnet18', '--arch', '{"numClass":3}'), /unknown option 'numClass'/);
  assertCleanError(resnet('info', 'resnet18', '--input', '3x224'), /CxHxW/);
});

test("presets: a flag overrides the preset's value; another --model drops the preset's model options unless --arch is given", async () => {
  const { resolveConfig } = await import('../src/cli/presets.js');
  const base = resolveConfig('fashion-mnist-28', { data: {} });
  assert.equal(base.model, 'cifar_resnet20');
  assert.deepEqual(base.arch, { width: 40 });
  const lr = resolveConfig('fashion-mnist-28', { lr: 0.05, data: { size: 32 } });
  assert.equal(lr.lr, 0.05);
  assert.equal(lr.data.size, 32);
  assert.equal(lr.data.cropPadding, base.data.cropPadding);
  assert.deepEqual(resolveConfig('fashion-mnist-28', { model: 'resnet18', data: {} }).arch, {});
  assert.deepEqual(resolveConfig('fashion-mnist-28', { model: 'cifar_resnet20', data: {} }).arch, { width: 40 });
  assert.deepEqual(resolveConfig('fashion-mnist-28', { model: 'cifar_resnet32', arch: { width: 16 }, data: {} }).arch, { width: 16 });
  assert.deepEqual(resolveConfig('d2l-fashion-mnist', { model: 'cifar_resnet8', data: {} }).arch, {});
});
