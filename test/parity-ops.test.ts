// Op-level parity with PyTorch: forward values and gradients of sum(out * r) for conv, pooling,
// batch norm, log-softmax, cross-entropy, relu and linear, from test/fixtures/conv_cases; one
// test per case and per backend (test/backends.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setBackend } from '../src/backend/registry.js';
import * as ops from '../src/tensor/ops.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { TEST_BACKENDS } from './backends.js';
import { assertClose } from './helpers.js';
import { fixturesSkipReason, json, st } from './fixtures.js';

const skip = fixturesSkipReason('conv_cases');
const RTOL = 1e-4,
  ATOL = 1e-5;

interface Case {
  name: string;
  op: string;
  file: string;
  options: CaseOptions;
}
type Pair = number | [number, number];
/** The options the fixture script writes (each op reads its own). */
interface CaseOptions {
  bias?: boolean;
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  kernelSize: Pair;
  ceilMode?: boolean;
  countIncludePad?: boolean;
  outputSize: Pair;
  affine?: boolean;
  momentum: number;
  eps: number;
  labelSmoothing?: number;
}

const index = skip ? { cases: [] } : json<{ cases: Case[] }>('conv_cases', 'index.json');
test('the op case list is complete (at least 20 cases)', { skip }, () => {
  assert.ok(index.cases.length >= 20, `expected the full op case list, got ${index.cases.length}`);
});

for (const backend of TEST_BACKENDS)
  for (const c of index.cases) {
    test(`[${backend}] ${c.name}: output and gradients match PyTorch (rtol ${RTOL}, atol ${ATOL})`, async () => {
      await setBackend(backend);
      const a = st('conv_cases', c.file);
      const T = (k: string, grad = true): Tensor => {
        const e = a.get(k);
        if (!e) throw new Error(`${c.name}: fixture lacks ${k}`);
        const t = ops.tensor(e.data, e.shape);
        t.requiresGrad = grad;
        return t;
      };
      const o = c.options;
      const x = T('input');
      let out: Tensor;
      const params: Record<string, Tensor> = {};
      let rm: Tensor | null = null,
        rv: Tensor | null = null;
      switch (c.op) {
        case 'conv2d':
          params.weight = T('weight');
          if (o.bias) params.bias = T('bias');
          out = ops.conv2d(x, params.weight, params.bias ?? null, { stride: o.stride, padding: o.padding, dilation: o.dilation, groups: o.groups });
          break;
        case 'max_pool2d':
          out = ops.maxPool2d(x, { kernelSize: o.kernelSize, stride: o.stride, padding: o.padding, dilation: o.dilation, ceilMode: o.ceilMode });
          break;
        case 'avg_pool2d':
          out = ops.avgPool2d(x, { kernelSize: o.kernelSize, stride: o.stride, padding: o.padding, ceilMode: o.ceilMode, countIncludePad: o.countIncludePad });
          break;
        case 'adaptive_avg_pool2d':
          out = ops.adaptiveAvgPool2d(x, o.outputSize);
          break;
        case 'batch_norm':
          rm = T('running_mean', false);
          rv = T('running_var', false);
          if (o.affine) {
            params.weight = T('weight');
            params.bias = T('bias');
          }
          out = ops.batchNorm(x, rm, rv, params.weight ?? null, params.bias ?? null, true, o.momentum, o.eps);
          break;
        case 'log_softmax':
          out = ops.logSoftmax(x);
          break;
        case 'cross_entropy':
          out = ops.crossEntropy(x, a.get('target')!.data, o.labelSmoothing);
          break;
        case 'relu':
          out = ops.relu(x);
          break;
        case 'linear':
          params.weight = T('weight');
          params.bias = T('bias');
          out = ops.linear(x, params.weight, params.bias);
          break;
        default:
          throw new Error(`unknown op ${c.op}`);
      }
      assertClose(await out.data(), a.get('output')!.data, RTOL, ATOL, `${c.name} output`);
      if (c.op === 'cross_entropy') out.backward();
      else out.backward(T('r', false));
      assertClose(await x.grad!.data(), a.get('grad_input')!.data, RTOL, ATOL, `${c.name} grad_input`);
      for (const [k, p] of Object.entries(params)) assertClose(await p.grad!.data(), a.get(`grad_${k}`)!.data, RTOL, ATOL, `${c.name} grad_${k}`);
      if (rm && rv) {
        assertClose(await rm.data(), a.get('running_mean_after')!.data, RTOL, ATOL, `${c.name} running_mean`);
        assertClose(await rv.data(), a.get('running_var_after')!.data, RTOL, ATOL, `${c.name} running_var`);
      }
    });
  }

// NaN, ±inf and -0 through ReLU on both backends, bit for bit: PyTorch's relu keeps NaN and -0,
// and its backward (threshold_backward: zero where y <= 0) passes a NaN output's gradient on.
for (const backend of TEST_BACKENDS) {
  test(`[${backend}] relu and its gradient keep PyTorch's NaN, infinities and signed zeros (exact)`, { skip }, async () => {
    await setBackend(backend);
    const a = st('conv_cases', 'relu_special_values.safetensors');
    const show = (v: ArrayLike<number>) => Array.from(v, (x) => (Object.is(x, -0) ? '-0' : String(x)));
    const x = ops.tensor(a.get('input')!.data, a.get('input')!.shape);
    x.requiresGrad = true;
    const y = ops.relu(x);
    assert.deepEqual(show(await y.data()), show(a.get('output')!.data), 'relu(x)');
    y.backward(ops.tensor(a.get('r')!.data, a.get('r')!.shape));
    assert.deepEqual(show(await x.grad!.data()), show(a.get('grad_input')!.data), 'grad');
  });
}
