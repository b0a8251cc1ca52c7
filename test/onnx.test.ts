// ONNX export and import.
//  - Export: the file runs in onnxruntime-node (npm) and gives our ref-backend logits, with a
//    symbolic batch (run at batch 1 and 3), for a torchvision ResNet, a ResNeXt, d2l's ResNet-18
//    and a CIFAR ResNet (option-A shortcut as Slice + Pad), plus dilation/opset 17/dynamic size.
//  - Import: files written by PyTorch's torch.onnx.export (Debian's torch 1.13, generated at test
//    time into a temp dir, BatchNorm folded into Conv as torch does by default, and unfolded)
//    are recognised and give PyTorch's logits; our own exports round-trip exactly.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { RNG } from '../src/base/rng.js';
import { readNpy } from '../src/io/npy.js';
import { exportOnnx } from '../src/convert/onnx-export.js';
import { parseOnnx } from '../src/io/onnx-graph.js';
import { importOnnx } from '../src/convert/onnx-import.js';
import { BatchNorm2d, Conv2d } from '../src/nn/layers.js';
import type { Module } from '../src/nn/module.js';
import { createModel } from '../src/models/registry.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad, type Tensor } from '../src/tensor/tensor.js';
import { assertClose } from './helpers.js';
import { PYTHON, pythonMissing } from './io-util.js';

const RTOL = 1e-4,
  ATOL = 1e-5;
const ALLOWED_OPS = new Set(['Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'Add', 'GlobalAveragePool', 'Flatten', 'Gemm', 'Slice', 'Pad']);

/** A registry model with non-trivial BatchNorm statistics and affine parameters (and conv biases), in eval mode. */
function build(name: string, opts: Record<string, unknown> = {}, seed = 1): Module {
  const m = noGrad(() => createModel(name, opts));
  const rng = new RNG(seed);
  for (const [, mod] of m.namedModules()) {
    if (mod instanceof BatchNorm2d) {
      const fill = (t: Tensor | null, lo: number, hi: number) => t?.write(Float32Array.from({ length: t.size }, () => rng.uniform(lo, hi)));
      fill(mod.runningMean, -0.2, 0.2);
      fill(mod.runningVar, 0.5, 1.5);
      fill(mod.weight, 0.5, 1.5);
      fill(mod.bias, -0.2, 0.2);
    } else if (mod instanceof Conv2d && mod.bias) mod.bias.write(Float32Array.from({ length: mod.bias.size }, () => rng.uniform(-0.1, 0.1)));
  }
  return m.eval();
}

function randInput(shape: number[], seed: number) {
  const rng = new RNG(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return ops.tensor(
    Float32Array.from({ length: n }, () => rng.normal()),
    shape,
  );
}

async function runOrt(bytes: Uint8Array, x: Float32Array, shape: number[]): Promise<{ data: Float32Array; dims: readonly number[]; name: string }> {
  const sess = await ort.InferenceSession.create(bytes);
  const out = await sess.run({ [sess.inputNames[0]]: new ort.Tensor('float32', x, shape) });
  const t = out[sess.outputNames[0]];
  return { data: t.data as Float32Array, dims: t.dims, name: sess.outputNames[0] };
}

const EXPORT_CASES: [string, number[]][] = [
  ['resnet18', [3, 64, 64]],
  ['resnext50_32x4d', [3, 40, 40]],
  ['d2l_resnet18', [1, 64, 64]],
  ['cifar_resnet20', [3, 32, 32]],
];

for (const [name, chw] of EXPORT_CASES) {
  test(`${name}: exported ONNX in onnxruntime-node matches our ref forward at batch 1 and 3 (dynamic batch; rtol ${RTOL}, atol ${ATOL})`, async () => {
    const m = build(name);
    const bytes = exportOnnx(m, { inputShape: chw, opset: 13, dynamicBatch: true });
    // The graph: standard ops only, weights named by state-dict keys, a symbolic batch.
    const p = parseOnnx(bytes);
    assert.equal(p.opset, 13);
    assert.deepEqual(p.input.dims, ['batch', ...chw]);
    for (const n of p.nodes) assert.ok(ALLOWED_OPS.has(n.op), `unexpected op ${n.op}`);
    const sd = m.stateDict();
    const keys = [...p.initializers.keys()].filter((k) => !k.startsWith('shortcut.'));
    assert.deepEqual(keys.sort(), [...sd.keys()].filter((k) => !k.endsWith('num_batches_tracked')).sort());
    for (const k of keys) assert.deepEqual(p.initializers.get(k)!.dims, [...sd.get(k)!.shape], k);
    if (name.startsWith('cifar')) assert.ok(p.nodes.some((n) => n.op === 'Slice') && p.nodes.some((n) => n.op === 'Pad'), 'option-A shortcut as Slice + Pad');

    const x = randInput([3, ...chw], 7);
    const ref = noGrad(() => m.forward(x));
    const classes = ref.shape[1];
    const b3 = await runOrt(bytes, x.dataSync(), [3, ...chw]);
    assert.deepEqual(b3.dims, [3, classes]);
    assert.equal(b3.name, 'logits');
    assertClose(b3.data, ref.dataSync(), RTOL, ATOL, `${name} batch 3`);
    const b1 = await runOrt(bytes, x.dataSync().slice(0, x.size / 3), [1, ...chw]);
    assert.deepEqual(b1.dims, [1, classes]);
    assertClose(b1.data, ref.dataSync().slice(0, classes), RTOL, ATOL, `${name} batch 1`);
  });
}

test(`resnet50 with dilation and 7 classes, opset 17, dynamic height/width: onnxruntime matches our forward at two sizes (rtol ${RTOL}, atol ${ATOL})`, async () => {
  const m = build('resnet50', { numClasses: 7, replaceStrideWithDilation: [false, true, true] });
  const bytes = exportOnnx(m, { inputShape: [3, 32, 32], opset: 17, dynamicSpatial: true });
  assert.deepEqual(parseOnnx(bytes).input.dims, ['batch', 3, 'height', 'width']);
  for (const shape of [
    [2, 3, 32, 32],
    [1, 3, 40, 24],
  ]) {
    const x = randInput(shape, 3);
    const ref = noGrad(() => m.forward(x));
    const got = await runOrt(bytes, x.dataSync(), shape);
    assertClose(got.data, ref.dataSync(), RTOL, ATOL, `resnet50 dilated ${shape}`);
  }
});

test(`resnet18 without its top (includeTop false, 1 input channel) exports its feature map (rtol ${RTOL}, atol ${ATOL})`, async () => {
  const m = build('resnet18', { includeTop: false, inChannels: 1 });
  const bytes = exportOnnx(m, { inputShape: [1, 32, 32] });
  const x = randInput([2, 1, 32, 32], 5);
  const ref = noGrad(() => m.forward(x));
  const got = await runOrt(bytes, x.dataSync(), [2, 1, 32, 32]);
  assert.equal(got.name, 'features');
  assert.deepEqual(got.dims, [2, 512, 1, 1]);
  assertClose(got.data, ref.dataSync(), RTOL, ATOL, 'resnet18 features');
});

test('exportOnnx rejects an opset below 13 and an input the model cannot take', () => {
  const m = build('cifar_resnet20');
  assert.throws(() => exportOnnx(m, { inputShape: [3, 32, 32], opset: 12 }), /opset must be an integer from 13/);
  assert.throws(() => exportOnnx(m, { inputShape: [1, 32, 32] }), /input channels|expects 3/);
});

// --- Import ----------------------------------------------------------------------------------

const ROUND_TRIP: [string, Record<string, unknown>][] = [
  ['resnet18', {}],
  ['resnext50_32x4d', {}],
  ['d2l_resnet18', {}],
  ['cifar_resnet20', {}],
  ['cifar_resnet32', { numClasses: 100 }],
  ['cifar_resnet20', { inChannels: 1, width: 24 }],
  ['resnet50', { numClasses: 7, replaceStrideWithDilation: [false, true, true] }],
  ['resnet50', { groups: 2, widthPerGroup: 32 }],
  ['resnet18', { includeTop: false, inChannels: 1 }],
  ['d2l_resnet18', { numClasses: 5, inChannels: 3 }],
];

for (const [name, opts] of ROUND_TRIP) {
  test(`our export of ${name} ${JSON.stringify(opts)} imports as the same model with identical weights`, () => {
    const m = build(name, opts, 11);
    const entryChw = name.startsWith('cifar')
      ? [(opts.inChannels as number) ?? 3, 32, 32]
      : [(opts.inChannels as number) ?? (name === 'd2l_resnet18' ? 1 : 3), 64, 64];
    const r = importOnnx(exportOnnx(m, { inputShape: entryChw }));
    assert.deepEqual(r.arch, { model: name, options: opts });
    assert.equal(r.info.foldedBatchNorm, false);
    const want = m.stateDict();
    const got = r.model.stateDict();
    assert.deepEqual([...got.keys()], [...want.keys()]);
    for (const [k, t] of want) {
      if (k.endsWith('num_batches_tracked')) continue;
      assert.deepEqual(got.get(k)!.dataSync(), t.dataSync(), k);
    }
  });
}

// Files written by PyTorch's own exporter, made at test time.
const GEN_PY = String.raw`
import json, os, sys
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F, torchvision
out = sys.argv[1]

class Residual(nn.Module):  # d2l 8.6
    def __init__(self, ic, nc, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(ic, nc, 3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(nc, nc, 3, padding=1)
        self.conv3 = nn.Conv2d(ic, nc, 1, stride=strides) if use_1x1conv else None
        self.bn1 = nn.BatchNorm2d(nc); self.bn2 = nn.BatchNorm2d(nc)
    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None: x = self.conv3(x)
        return F.relu(y + x)

def d2l_resnet18():
    def stage(ic, nc, n, first=False):
        return nn.Sequential(*[Residual(ic, nc, True, 2) if i == 0 and not first else Residual(nc, nc) for i in range(n)])
    b1 = nn.Sequential(nn.Conv2d(1, 64, 7, stride=2, padding=3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    return nn.Sequential(b1, stage(64, 64, 2, True), stage(64, 128, 2), stage(128, 256, 2), stage(256, 512, 2),
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))

class CifarBlock(nn.Module):  # He et al. 2015, option A
    def __init__(self, inp, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(planes)
        self.pad = (planes - inp) // 2 if stride != 1 or inp != planes else -1
        self.stride = stride
    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        sc = x if self.pad < 0 else F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(y + sc)

class CifarResNet(nn.Module):
    def __init__(self, depth=20, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(16); self.relu = nn.ReLU()
        def stage(i, p, s): return nn.Sequential(CifarBlock(i, p, s), *[CifarBlock(p, p) for _ in range(n - 1)])
        self.layer1 = stage(16, 16, 1); self.layer2 = stage(16, 32, 2); self.layer3 = stage(32, 64, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1); self.fc = nn.Linear(64, num_classes)
    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x))))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

unfolded = dict(do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
CASES = [
    ('resnet18', torchvision.models.resnet18, {'model': 'resnet18', 'options': {}}, (2, 3, 64, 64), dict(opset_version=13)),
    ('resnext50_32x4d', torchvision.models.resnext50_32x4d, {'model': 'resnext50_32x4d', 'options': {}}, (2, 3, 40, 40), dict(opset_version=13)),
    ('resnet50_dilated_unfolded', lambda: torchvision.models.resnet50(num_classes=7, replace_stride_with_dilation=[False, True, True]),
     {'model': 'resnet50', 'options': {'numClasses': 7, 'replaceStrideWithDilation': [False, True, True]}}, (2, 3, 48, 48), dict(opset_version=17, **unfolded)),
    ('d2l_resnet18', d2l_resnet18, {'model': 'd2l_resnet18', 'options': {}}, (2, 1, 64, 64), dict(opset_version=13)),
    ('d2l_resnet18_unfolded', d2l_resnet18, {'model': 'd2l_resnet18', 'options': {}}, (2, 1, 64, 64), dict(opset_version=13, **unfolded)),
    ('cifar_resnet20', CifarResNet, {'model': 'cifar_resnet20', 'options': {}}, (2, 3, 32, 32), dict(opset_version=13)),
]
for name, build, arch, shape, kw in CASES:
    torch.manual_seed(len(name))
    m = build()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):  # non-trivial statistics, so folding matters
            n = mod.num_features
            mod.running_mean.copy_(torch.rand(n) * 0.4 - 0.2); mod.running_var.copy_(torch.rand(n) + 0.5)
            mod.weight.data.copy_(torch.rand(n) + 0.5); mod.bias.data.copy_(torch.rand(n) * 0.4 - 0.2)
    m.eval()
    x = torch.randn(*shape)
    torch.onnx.export(m, x, os.path.join(out, name + '.onnx'), input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, **kw)
    with torch.no_grad():
        y = m(x)
    np.save(os.path.join(out, name + '_input.npy'), x.numpy())
    np.save(os.path.join(out, name + '_logits.npy'), y.numpy())
    json.dump(arch, open(os.path.join(out, name + '.json'), 'w'))
print('ok')
`;

const TORCH_CASES = ['resnet18', 'resnext50_32x4d', 'resnet50_dilated_unfolded', 'd2l_resnet18', 'd2l_resnet18_unfolded', 'cifar_resnet20'];
const torchSkip = pythonMissing(['torch', 'torchvision', 'numpy']);
let genDir = '';

before(async () => {
  if (torchSkip) return;
  genDir = mkdtempSync(join(tmpdir(), 'resnet-onnx-torch-'));
  writeFileSync(join(genDir, 'gen.py'), GEN_PY);
  const { execFileSync } = await import('node:child_process');
  execFileSync(PYTHON, [join(genDir, 'gen.py'), genDir], { encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] });
});
after(() => {
  if (genDir) rmSync(genDir, { recursive: true, force: true });
});

for (const name of TORCH_CASES) {
  test(`torch.onnx.export'ed ${name} imports as the right model and gives PyTorch's logits (rtol ${RTOL}, atol ${ATOL})`, { skip: torchSkip ?? false }, () => {
    const file = (s: string) => readFileSync(join(genDir, name + s));
    const r = importOnnx(file('.onnx'));
    assert.deepEqual(r.arch, JSON.parse(file('.json').toString('utf8')));
    assert.equal(r.info.producer, 'pytorch 1.13.0');
    assert.equal(r.info.foldedBatchNorm, !name.endsWith('_unfolded'));
    const x = readNpy(file('_input.npy'));
    const got = noGrad(() => r.model.forward(ops.tensor(x.data, x.shape)));
    const want = readNpy(file('_logits.npy'));
    assert.deepEqual([...got.shape], want.shape);
    assertClose(got.dataSync(), want.data, RTOL, ATOL, `${name} logits vs PyTorch`);
  });
}

test('a PyTorch export re-exported by us runs in onnxruntime with the same logits (rtol 1e-4, atol 1e-5)', { skip: torchSkip ?? false }, async () => {
  const r = importOnnx(readFileSync(join(genDir, 'cifar_resnet20.onnx')));
  const x = readNpy(readFileSync(join(genDir, 'cifar_resnet20_input.npy')));
  const got = await runOrt(exportOnnx(r.model, { inputShape: [3, 32, 32] }), x.data, x.shape);
  assertClose(got.data, readNpy(readFileSync(join(genDir, 'cifar_resnet20_logits.npy'))).data, RTOL, ATOL, 'cifar_resnet20 via ORT');
});
