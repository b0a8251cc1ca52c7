// ResNet-D's average-pool shortcut (createModel('resnet50', { downsample: 'avgpool' })) against
// PyTorch: scripts/make_resnet_d_fixtures.py writes timm's avg_down shortcut out in plain torch
// on torchvision's ResNet-50 and records weights, a 2x3x40x40 input (odd sizes in layers 3 and 4,
// where the ceil-mode pool windows hang over the edge) and logits computed in float64 (PyTorch's own
// float32 logits differ from those by up to ~2e-4 relative in this 50-layer net with random BN). The same model through
// inference fusion, ONNX export (run in onnxruntime-node) and ONNX import.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { ConfigError } from '../src/base/errors.js';
import { exportOnnx } from '../src/convert/onnx-export.js';
import { importOnnx } from '../src/convert/onnx-import.js';
import { fuseForInference } from '../src/models/fused.js';
import { createModel } from '../src/models/registry.js';
import { tensor } from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { fixturesSkipReason, json, npy, st } from './fixtures.js';
import { assertClose } from './helpers.js';

const RTOL = 1e-4,
  ATOL = 1e-5;

/** ‖a − ref‖ / ‖ref‖. */
function relL2(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (a[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/** Float32 results that PyTorch's own float32 does not meet elementwise: within 2x its relative L2 error against float64. */
function assertNearF64(a: ArrayLike<number>, f32: string, f64: string, what: string): void {
  const ref = npy(CASE, f64).data,
    torch32 = relL2(npy(CASE, f32).data, ref),
    ours = relL2(a, ref);
  assert.ok(ours <= 2 * torch32, `${what}: relative L2 error ${ours.toExponential(2)} vs float64, PyTorch float32's is ${torch32.toExponential(2)}`);
}
const CASE = 'resnet50_avgdown';
const skip = fixturesSkipReason(CASE);

function loaded() {
  const arch = json<{ model: string; arch: Record<string, unknown>; numParams: number }>(CASE, 'arch.json');
  const m = noGrad(() => createModel(arch.model, arch.arch));
  m.loadStateDict(st(CASE, 'weights.safetensors')); // strict: every key (downsample.1/.2) must match
  const x = npy(CASE, 'input.npy');
  return { m, arch, x: tensor(x.data as Float32Array, x.shape) };
}

test(
  `resnet50 with downsample 'avgpool': eval and fused logits vs PyTorch float64 (rtol ${RTOL}, atol ${ATOL}); train-mode logits within 2x PyTorch float32's relative L2 error`,
  { skip },
  () => {
    const { m, arch, x } = loaded();
    assert.equal(m.numParameters(), arch.numParams);
    const rows = m.describe([3, 40, 40], '').rows;
    assert.deepEqual(rows.find((r) => r.name === 'layer3.0.downsample.0')?.outShape, [512, 3, 3]); // ceil mode: 5 -> 3
    assert.equal(
      rows.find((r) => r.name === 'layer1.0.downsample.0'),
      undefined,
    ); // stride 1: Identity
    const want = npy(CASE, 'logits_eval_f64.npy').data;
    assertClose(noGrad(() => m.eval().forward(x)).dataSync(), want, RTOL, ATOL, 'eval logits');
    using fused = fuseForInference(m);
    assertClose(fused.forward(x).dataSync(), want, RTOL, ATOL, 'fused logits');
    assertNearF64(noGrad(() => m.train().forward(x)).dataSync(), 'logits_train.npy', 'logits_train_f64.npy', 'train-mode logits');
  },
);

test(
  `resnet50 with downsample 'avgpool': ONNX export in onnxruntime-node within 2x PyTorch float32's relative L2 error; import recognises the option and gives PyTorch float64's logits (rtol ${RTOL}, atol ${ATOL})`,
  { skip },
  async () => {
    const { m, x } = loaded();
    m.eval();
    const bytes = exportOnnx(m, { inputShape: [3, 40, 40] });
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({ input: new ort.Tensor('float32', x.dataSync(), x.shape) });
    const want = npy(CASE, 'logits_eval_f64.npy').data;
    assertNearF64(out.logits.data as Float32Array, 'logits_eval.npy', 'logits_eval_f64.npy', 'onnxruntime logits');
    const imp = importOnnx(bytes);
    assert.deepEqual(imp.arch, { model: 'resnet50', options: { numClasses: 7, downsample: 'avgpool' } });
    assertClose(noGrad(() => imp.model.forward(x)).dataSync(), want, RTOL, ATOL, 'imported model logits');
  },
);

test("downsample: bad values and 'avgpool' with dilation are one-line ConfigErrors", () => {
  assert.throws(
    () => createModel('resnet50', { downsample: 'maxpool' }),
    (e: Error) => e instanceof ConfigError && /one of conv, avgpool/.test(e.message),
  );
  assert.throws(
    () => createModel('resnet50', { downsample: 'avgpool', replaceStrideWithDilation: [false, true, true] }),
    (e: Error) => e instanceof ConfigError && /replaceStrideWithDilation/.test(e.message),
  );
});
