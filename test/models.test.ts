// The model zoo against torchvision's constructors: parameter counts, state-dict key names,
// order and shapes (test/fixtures/model_zoo/zoo.json, written by scripts/make_fixtures.py).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StateDictError, ConfigError, ShapeError } from '../src/base/errors.js';
import { createModel, listModels } from '../src/models/registry.js';
import { ResNet } from '../src/models/resnet.js';
import { Linear } from '../src/nn/layers.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { fixturesSkipReason, json } from './fixtures.js';

const skip = fixturesSkipReason('model_zoo');

test("every model has torchvision's parameter count and state-dict keys, order and shapes", { skip }, () => {
  const zoo = json<Record<string, { numParams: number; stateDict: [string, number[]][] }>>('model_zoo', 'zoo.json');
  assert.ok(Object.keys(zoo).length >= 12);
  for (const [name, ref] of Object.entries(zoo)) {
    const m = noGrad(() => createModel(name));
    assert.equal(m.numParameters(), ref.numParams, `${name} parameter count`);
    const ours = [...m.stateDict()].map(([k, t]) => [k, [...t.shape]]);
    assert.deepEqual(ours, ref.stateDict, `${name} state dict`);
    m.dispose();
  }
});

test('CIFAR ResNet width option: width 32 doubles every channel dimension of the PyTorch ResNet-20 state dict; odd widths are refused', { skip }, () => {
  const zoo = json<Record<string, { numParams: number; stateDict: [string, number[]][] }>>('model_zoo', 'zoo.json');
  const ref = zoo.cifar_resnet20.stateDict;
  const m = noGrad(() => createModel('cifar_resnet20', { width: 32 }));
  // channel dims are 16/32/64 in the reference; the 3 input channels and 10 classes stay
  const want = ref.map(([k, shape]) => [k, shape.map((d) => ([16, 32, 64].includes(d) ? 2 * d : d))]);
  assert.deepEqual(
    [...m.stateDict()].map(([k, t]) => [k, [...t.shape]]),
    want,
  );
  const y = noGrad(() => m.forward(ops.randn([2, 3, 20, 20])));
  assert.deepEqual(y.shape, [2, 10]);
  m.dispose();
  assert.throws(() => createModel('cifar_resnet20', { width: 15 }), /even integer/);
  assert.throws(() => createModel('cifar_resnet20', { width: 2.5 }), ConfigError);
});

test('parameter counts quoted in the issue (torchvision documentation)', () => {
  const expected: Record<string, number> = {
    resnet18: 11_689_512,
    resnet34: 21_797_672,
    resnet50: 25_557_032,
    resnet101: 44_549_160,
    resnet152: 60_192_808,
    resnext50_32x4d: 25_028_904,
    wide_resnet50_2: 68_883_240,
    d2l_resnet18: 11_178_378,
  };
  for (const [name, n] of Object.entries(expected)) {
    const m = noGrad(() => createModel(name));
    assert.equal(m.numParameters(), n, name);
    m.dispose();
  }
  assert.ok(listModels().includes('cifar_resnet110'));
});

test('options: zeroInitResidual, includeTop, inChannels, head replacement and load reports', () => {
  const z = createModel('resnet18', { zeroInitResidual: true, numClasses: 3 }) as ResNet;
  assert.ok(
    z
      .stateDict()
      .get('layer1.0.bn2.weight')!
      .toArray()
      .every((v) => v === 0),
  );
  assert.ok(
    z
      .stateDict()
      .get('layer1.0.bn1.weight')!
      .toArray()
      .every((v) => v === 1),
  );

  const f = createModel('resnet18', { includeTop: false, inChannels: 1 }) as ResNet;
  assert.ok(![...f.stateDict().keys()].some((k) => k.startsWith('fc.')));
  const y = noGrad(() => f.eval().forward(ops.randn([1, 1, 64, 64])));
  assert.deepEqual(y.shape, [1, 512, 2, 2]);
  assert.throws(
    () => f.forward(ops.randn([1, 3, 64, 64])),
    (e: Error) => e instanceof ShapeError && /expects 1 input channel/.test(e.message),
  );

  // Replace the head, then a non-strict load reports the old head as unexpected/mismatched.
  const src = createModel('resnet18', { numClasses: 3 });
  const dst = createModel('resnet18', { numClasses: 3 });
  dst.setModule('fc', new Linear(512, 5));
  assert.throws(
    () => dst.loadStateDict(src.stateDict()),
    (e: Error) => e instanceof StateDictError && /fc\.weight: expected \[5, 512\], got \[3, 512\]/.test(e.message),
  );
  const sd = new Map(src.stateDict());
  sd.delete('fc.weight');
  sd.delete('fc.bias');
  sd.set('extra.weight', ops.zeros([1]));
  const rep = dst.loadStateDict(sd, { strict: false });
  assert.deepEqual(rep.missingKeys, ['fc.weight', 'fc.bias']);
  assert.deepEqual(rep.unexpectedKeys, ['extra.weight']);
  assert.deepEqual([...dst.stateDict().get('conv1.weight')!.dataSync().subarray(0, 5)], [...src.stateDict().get('conv1.weight')!.dataSync().subarray(0, 5)]);
  assert.throws(() => dst.loadStateDict(sd), /missing keys: fc\.weight, fc\.bias; unexpected keys: extra\.weight/);

  assert.throws(
    () => createModel('resnet18', { groups: 2 }),
    (e: Error) => e instanceof ConfigError && /BasicBlock/.test(e.message),
  );
  assert.throws(() => createModel('resnet18', { replaceStrideWithDilation: [false, false, true] }), /dilation > 1/);
  assert.throws(() => createModel('resnet50', { replaceStrideWithDilation: [true] }), /list of 3 booleans/);
});

test('every parameter of the small models gets a gradient', () => {
  for (const [name, shape] of [
    ['cifar_resnet20', [2, 3, 16, 16]],
    ['d2l_resnet18', [2, 1, 32, 32]],
    ['resnet18', [2, 3, 32, 32]],
  ] as const) {
    const m = createModel(name, { numClasses: 4 }).train();
    ops.crossEntropy(m.forward(ops.randn([...shape])), [1, 3]).backward();
    for (const [k, p] of m.namedParameters()) {
      assert.ok(p.grad, `${name} ${k} has no gradient`);
      assert.ok(
        p.grad.toArray().some((v) => v !== 0),
        `${name} ${k} gradient is all zero`,
      );
    }
  }
});

test('train/eval: BatchNorm uses batch statistics and updates running stats only in training', () => {
  const m = createModel('cifar_resnet20');
  const bn = m.stateDict();
  const before = bn.get('bn1.running_mean')!.toArray();
  const x = ops.randn([2, 3, 8, 8]);
  noGrad(() => m.eval().forward(x));
  assert.deepEqual(bn.get('bn1.running_mean')!.toArray(), before);
  assert.equal(bn.get('bn1.num_batches_tracked')!.item(), 0);
  noGrad(() => m.train().forward(x));
  assert.notDeepEqual(bn.get('bn1.running_mean')!.toArray(), before);
  assert.equal(bn.get('bn1.num_batches_tracked')!.item(), 1);
});
