// Shared test helpers: closeness checks that report the worst element, and a finite-difference
// gradient checker for the ref backend.
import assert from 'node:assert/strict';
import { RNG } from '../src/base/rng.js';
import { Tensor } from '../src/tensor/tensor.js';
import { tensor } from '../src/tensor/ops.js';

/** Assert |a-b| <= atol + rtol*|b| elementwise; the message names the worst element. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  let worst = -1,
    worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i],
      b = expected[i];
    if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue; // equal infinities, NaN where NaN is expected
    const excess = Math.abs(a - b) - (atol + rtol * Math.abs(b));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    assert.fail(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}

/** ||a - b|| / ||b|| (relative L2 error). */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = 0,
    d = 0;
  for (let i = 0; i < a.length; i++) {
    n += (a[i] - b[i]) ** 2;
    d += b[i] ** 2;
  }
  return d === 0 ? Math.sqrt(n) : Math.sqrt(n / d);
}

export function isClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number): boolean {
  for (let i = 0; i < actual.length; i++) if (!(Math.abs(actual[i] - expected[i]) <= atol + rtol * Math.abs(expected[i]))) return false;
  return true;
}

export function randArray(n: number, rng: RNG, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(lo, hi);
  return a;
}

/** Values with distinct magnitudes (no near-ties), for max-pool and ReLU-like kinks. */
export function distinctArray(n: number, rng: RNG): Float32Array {
  const p = rng.permutation(n);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((p[i] - n / 2) / n) * 4 + 0.01;
  return a;
}

/**
 * Compare the autograd gradient of L = sum(f(inputs) * R) with central differences.
 * Tolerance is relative to the largest gradient magnitude (float32 forward passes).
 */
export function gradCheck(f: (xs: Tensor[]) => Tensor, inputs: { shape: number[]; data: Float32Array }[], tol = 1e-2, h = 1e-2): void {
  const rng = new RNG(123);
  const mk = (datas: Float32Array[], grad: boolean) =>
    inputs.map((s, i) => {
      const t = tensor(datas[i], s.shape);
      if (grad) t.requiresGrad = true;
      return t;
    });
  const base = inputs.map((s) => s.data.slice());
  const xs = mk(base, true);
  const y = f(xs);
  const R = randArray(y.size, rng);
  const loss = (out: Tensor) => {
    let s = 0;
    const od = out.dataSync();
    for (let i = 0; i < out.size; i++) s += od[i] * R[i];
    return s;
  };
  y.backward(tensor(R, y.shape));
  for (let k = 0; k < inputs.length; k++) {
    const analytic = xs[k].grad?.dataSync() ?? new Float32Array(inputs[k].data.length);
    const numeric = new Float64Array(analytic.length);
    for (let i = 0; i < analytic.length; i++) {
      const plus = base.map((d) => d.slice()),
        minus = base.map((d) => d.slice());
      plus[k][i] += h;
      minus[k][i] -= h;
      numeric[i] = (loss(f(mk(plus, false))) - loss(f(mk(minus, false)))) / (2 * h);
    }
    let scale = 1e-3;
    for (const v of numeric) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < analytic.length; i++) {
      if (Math.abs(analytic[i] - numeric[i]) > tol * scale) {
        assert.fail(`input ${k} element ${i}: autograd ${analytic[i]}, finite difference ${numeric[i]} (tol ${tol} x ${scale.toPrecision(3)})`);
      }
    }
  }
}
