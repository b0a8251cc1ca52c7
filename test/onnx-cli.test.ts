// `resnet export`, `resnet import`, `resnet convert x.onnx`, `resnet weights` end to end.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readSafetensorsFile, readSafetensorsMetadataFile } from '../src/io/files.js';
import { parseOnnx } from '../src/io/onnx-graph.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { RNG } from '../src/base/rng.js';
import { BatchNorm2d } from '../src/nn/layers.js';
import { stateDictToArrays } from '../src/nn/state.js';
import { createModel } from '../src/models/registry.js';
import { noGrad } from '../src/tensor/tensor.js';
import { readFileSync } from 'node:fs';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
function resnet(...args: string[]) {
  // The ref backend unless the test names one (the default, wasm, keeps tensors in shared memory).
  const backend = args.includes('--backend') ? [] : ['--backend', 'ref'];
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...backend, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
function assertCleanError(r: ReturnType<typeof resnet>, pattern: RegExp) {
  assert.notEqual(r.code, 0, `expected a non-zero exit, stdout: ${r.out}`);
  const lines = r.err.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.err}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], pattern);
}

const tmp = mkdtempSync(join(tmpdir(), 'resnet-onnx-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// Weights for cifar_resnet20 with 5 classes and non-trivial BatchNorm statistics.
const model = noGrad(() => createModel('cifar_resnet20', { numClasses: 5 }));
const rng = new RNG(2);
for (const [, m] of model.namedModules()) {
  if (m instanceof BatchNorm2d) {
    m.runningMean!.write(Float32Array.from({ length: m.runningMean!.size }, () => rng.uniform(-0.3, 0.3)));
    m.runningVar!.write(Float32Array.from({ length: m.runningVar!.size }, () => rng.uniform(0.5, 2)));
  }
}
const WEIGHTS = join(tmp, 'cifar.safetensors');
writeFileSync(WEIGHTS, writeSafetensors(stateDictToArrays(model)));

test('export --verify writes an ONNX file that onnxruntime-node runs with our logits; import gives back the model and weights', () => {
  const onnx = join(tmp, 'cifar.onnx');
  const r = resnet('--backend', 'wasm', 'export', '--model', 'cifar_resnet20', '--arch', '{"numClasses":5}', '--weights', WEIGHTS, '--onnx', onnx, '--verify');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /wrote .*cifar\.onnx: cifar_resnet20 \{"numClasses":5\}, opset 13, input \[batch, 3, 32, 32\] → logits \[batch, 5\]/);
  assert.match(r.out, /verify: onnxruntime-node .*matches our forward/);
  const p = parseOnnx(new Uint8Array(readFileSync(onnx)));
  assert.equal(p.metadata.get('resnet-ts.model'), 'cifar_resnet20');
  assert.equal(p.input.dims?.[0], 'batch');

  const out = join(tmp, 'back.safetensors');
  const i = resnet('import', onnx, '--out', out);
  assert.equal(i.code, 0, i.err);
  assert.match(i.out, /cifar_resnet20 \{"numClasses":5\}: CIFAR ResNet-20/);
  assert.match(i.out, /use it with: resnet forward --model cifar_resnet20 --arch '\{"numClasses":5\}' --weights /);
  assert.equal(readSafetensorsMetadataFile(out)['resnet-ts.model'], 'cifar_resnet20');
  const want = readSafetensorsFile(WEIGHTS),
    got = readSafetensorsFile(out);
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [k, a] of want) if (!k.endsWith('num_batches_tracked')) assert.deepEqual(got.get(k)!.data, a.data, k);

  const j = JSON.parse(resnet('import', onnx, '--json').out);
  assert.equal(j.model, 'cifar_resnet20');
  assert.deepEqual(j.arch, { numClasses: 5 });
  assert.equal(j.params, model.numParameters());

  const conv = join(tmp, 'conv.npz');
  const c = resnet('convert', onnx, conv);
  assert.equal(c.code, 0, c.err);
  assert.match(c.out, /from .*cifar\.onnx \(ONNX, cifar_resnet20/);
});

test('export with --opset 17 --dynamic-size --static-batch; clear errors for bad flags and files', () => {
  const onnx = join(tmp, 'd.onnx');
  const r = resnet(
    'export',
    '--model',
    'cifar_resnet20',
    '--arch',
    '{"numClasses":5}',
    '--weights',
    WEIGHTS,
    '--onnx',
    onnx,
    '--opset',
    '17',
    '--dynamic-size',
    '--static-batch',
  );
  assert.equal(r.code, 0, r.err);
  const p = parseOnnx(new Uint8Array(readFileSync(onnx)));
  assert.equal(p.opset, 17);
  assert.deepEqual(p.input.dims, [1, 3, 'height', 'width']);
  assertCleanError(resnet('export', '--model', 'cifar_resnet20', '--onnx', onnx, '--opset', '9'), /opset must be an integer from 13 to 21/);
  // bare weights bring their class count (fc.weight [5, 64]); an --arch that contradicts them is the error
  assertCleanError(
    resnet('export', '--model', 'cifar_resnet20', '--arch', '{"numClasses":7}', '--weights', WEIGHTS, '--onnx', onnx),
    /cifar\.safetensors.*shape mismatch.*fc\.weight/,
  );
  assertCleanError(resnet('export', '--model', 'resnet18', '--weights', 'resnet50.IMAGENET1K_V2', '--onnx', onnx), /are for resnet50, not resnet18/);
  writeFileSync(join(tmp, 'junk.onnx'), 'not a model');
  assertCleanError(resnet('import', join(tmp, 'junk.onnx')), /junk\.onnx: onnx: /);
  assertCleanError(resnet('import', join(tmp, 'missing.onnx')), /no such file/);
});

test('weights lists the 17 torchvision weight sets (table and JSON) and rejects an unknown model', () => {
  const t = resnet('weights', '--cache-dir', tmp);
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /resnet50\.IMAGENET1K_V2 \*\s+80\.858\s+95\.434\s+25,557,032\s+4\.09\s+97\.8\s+232\/224/);
  const j = JSON.parse(resnet('weights', '--json', '--model', 'resnet50', '--cache-dir', tmp).out);
  assert.deepEqual(
    j.map((w: { id: string }) => w.id),
    ['resnet50.IMAGENET1K_V1', 'resnet50.IMAGENET1K_V2'],
  );
  assert.equal(j[1].url, 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth');
  assert.equal(j[1].cached, null);
  assertCleanError(resnet('weights', '--model', 'cifar_resnet20'), /no pretrained weights for 'cifar_resnet20'/);
});
