// Every backward rule against central finite differences on the ref backend.
import { test } from 'node:test';
import { RNG } from '../src/base/rng.js';
import * as ops from '../src/tensor/ops.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { distinctArray, gradCheck, randArray } from './helpers.js';

const rng = new RNG(7);
const r = (...shape: number[]) => ({
  shape,
  data: randArray(
    shape.reduce((a, b) => a * b, 1),
    rng,
  ),
});
const pos = (...shape: number[]) => ({
  shape,
  data: randArray(
    shape.reduce((a, b) => a * b, 1),
    rng,
    0.5,
    2,
  ),
});
const d = (...shape: number[]) => ({
  shape,
  data: distinctArray(
    shape.reduce((a, b) => a * b, 1),
    rng,
  ),
});
const TOL = 'rel. tol 1e-2 of max |grad|, h 1e-2';

test(`unary ops: neg exp log sqrt abs relu sigmoid tanh (${TOL})`, () => {
  gradCheck(([x]) => ops.neg(x), [r(3, 4)]);
  gradCheck(([x]) => ops.exp(x), [r(3, 4)]);
  gradCheck(([x]) => ops.log(x), [pos(3, 4)]);
  gradCheck(([x]) => ops.sqrt(x), [pos(3, 4)]);
  gradCheck(([x]) => ops.abs(x), [d(3, 4)]);
  gradCheck(([x]) => ops.relu(x), [d(2, 3, 5)]);
  gradCheck(([x]) => ops.sigmoid(x), [r(7)]);
  gradCheck(([x]) => ops.tanh(x), [r(7)]);
});

test(`binary ops with broadcasting: add sub mul div max min (${TOL})`, () => {
  gradCheck(([a, b]) => ops.add(a, b), [r(2, 3, 4), r(3, 1)]);
  gradCheck(([a, b]) => ops.sub(a, b), [r(2, 1, 4), r(3, 4)]);
  gradCheck(([a, b]) => ops.mul(a, b), [r(2, 3), r(2, 3)]);
  gradCheck(([a, b]) => ops.mul(a, b), [r(2, 3), r(1)]);
  gradCheck(([a, b]) => ops.div(a, b), [r(4, 3), pos(3)]);
  gradCheck(([a, b]) => ops.maximum(a, b), [d(3, 4), d(3, 4)]);
  gradCheck(([a, b]) => ops.minimum(a, b), [d(3, 4), d(4)]);
  gradCheck(([a]) => ops.add(a, a), [r(5)]);
});

test(`affine, sum, mean, reshape, flatten, transpose (${TOL})`, () => {
  gradCheck(([x]) => ops.affineScalar(x, -1.5, 0.3), [r(6)]);
  gradCheck(([x]) => ops.sum(x), [r(2, 3, 4)]);
  gradCheck(([x]) => ops.sum(x, [0, 2], true), [r(2, 3, 4)]);
  gradCheck(([x]) => ops.mean(x, 1), [r(2, 3, 4)]);
  gradCheck(([x]) => ops.reshape(x, [4, -1]), [r(2, 3, 4)]);
  gradCheck(([x]) => ops.flatten(x, 1), [r(2, 3, 2, 2)]);
  gradCheck(([x]) => ops.transpose(x), [r(3, 5)]);
});

test(`matmul and linear (${TOL})`, () => {
  gradCheck(([a, b]) => ops.matmul(a, b), [r(3, 5), r(5, 4)]);
  gradCheck(([x, w, b]) => ops.linear(x, w, b), [r(3, 5), r(4, 5), r(4)]);
  gradCheck(([x, w]) => ops.linear(x, w, null), [r(2, 3), r(6, 3)]);
});

test(`conv2d: stride, padding, dilation, groups, bias (${TOL})`, () => {
  gradCheck(([x, w, b]) => ops.conv2d(x, w, b, { padding: 1 }), [r(2, 3, 5, 5), r(4, 3, 3, 3), r(4)]);
  gradCheck(([x, w]) => ops.conv2d(x, w, null, { stride: 2, padding: 1 }), [r(1, 3, 7, 6), r(2, 3, 3, 3)]);
  gradCheck(([x, w]) => ops.conv2d(x, w, null, { dilation: 2, padding: 2 }), [r(1, 2, 6, 5), r(3, 2, 3, 3)]);
  gradCheck(([x, w, b]) => ops.conv2d(x, w, b, { groups: 2, stride: [2, 1], padding: [0, 1] }), [r(2, 4, 5, 5), r(6, 2, 3, 2), r(6)]);
  gradCheck(([x, w]) => ops.conv2d(x, w, null, { stride: 2 }), [r(2, 3, 5, 5), r(4, 3, 1, 1)]);
});

test(`batch norm train (affine and not) and eval (${TOL})`, () => {
  gradCheck(([x, g, b]) => ops.batchNorm(x, null, null, g, b, true, 0.1, 1e-5), [r(3, 2, 3, 2), pos(2), r(2)]);
  gradCheck(([x]) => ops.batchNorm(x, null, null, null, null, true, 0.1, 1e-5), [r(4, 3, 2, 1)]);
  const rm = ops.tensor([0.1, -0.2]),
    rv = ops.tensor([0.8, 1.3]);
  gradCheck(([x, g, b]) => ops.batchNorm(x, rm, rv, g, b, false, 0.1, 1e-5), [r(2, 2, 3, 3), pos(2), r(2)]);
});

test(`pooling: max (pad, ceil, dilation), avg (count_include_pad), adaptive (${TOL})`, () => {
  gradCheck(([x]) => ops.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }), [d(2, 2, 7, 6)]);
  gradCheck(([x]) => ops.maxPool2d(x, { kernelSize: 2, stride: 2, ceilMode: true }), [d(1, 2, 5, 5)]);
  gradCheck(([x]) => ops.maxPool2d(x, { kernelSize: 2, stride: 1, dilation: 2 }), [d(1, 1, 5, 5)]);
  gradCheck(([x]) => ops.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }), [r(2, 2, 5, 6)]);
  gradCheck(([x]) => ops.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false }), [r(1, 2, 5, 5)]);
  gradCheck(([x]) => ops.adaptiveAvgPool2d(x, 1), [r(2, 3, 4, 3)]);
  gradCheck(([x]) => ops.adaptiveAvgPool2d(x, [3, 2]), [r(1, 2, 7, 5)]);
});

test(`softmax, logSoftmax, crossEntropy with label smoothing (${TOL})`, () => {
  gradCheck(([x]) => ops.softmax(x), [r(3, 5)]);
  gradCheck(([x]) => ops.logSoftmax(x), [r(3, 5)]);
  gradCheck(([x]) => ops.crossEntropy(x, [1, 0, 4]), [r(3, 5)]);
  gradCheck(([x]) => ops.crossEntropy(x, [2, 2], 0.1), [r(2, 4)]);
});

test(`dropout with a fixed mask, option-A shortcut (${TOL})`, () => {
  gradCheck(([x]) => ops.dropout(x, 0.3, true, new RNG(5)), [r(4, 5)]);
  gradCheck(([x]) => ops.subsamplePadChannels(x, 2, 1, 2), [r(2, 2, 5, 4)]);
});

test('the checker itself rejects a wrong backward rule', async () => {
  const { record } = await import('../src/tensor/tensor.js');
  const { default: assert } = await import('node:assert/strict');
  // y = 2x, but the rule claims dy/dx = 3.
  const wrong = (x: Tensor) => {
    const out = ops.affineScalar(x, 2, 0).detach();
    return record(out, 'wrong', [x], (g) => [ops.affineScalar(g, 3, 0)]);
  };
  assert.throws(() => gradCheck(([x]) => wrong(x), [r(4)]), /finite difference/);
});
