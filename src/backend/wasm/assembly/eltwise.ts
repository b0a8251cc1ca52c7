// Memory-bound elementwise kernels in SIMD128. A task is one chunk of E_CHUNK elements.
import { D_ARGS, df, di, du } from './desc';

export const E_OP: i32 = D_ARGS + 0;
export const E_N: i32 = D_ARGS + 1;
export const E_CHUNK: i32 = D_ARGS + 2;
export const E_X: i32 = D_ARGS + 3;
export const E_Y: i32 = D_ARGS + 4;
export const E_Z: i32 = D_ARGS + 5;
export const E_W: i32 = D_ARGS + 6;
export const E_F0: i32 = D_ARGS + 7; // float parameters
export const E_F1: i32 = D_ARGS + 8;
export const E_F2: i32 = D_ARGS + 9;
export const E_F3: i32 = D_ARGS + 10;
export const E_F4: i32 = D_ARGS + 11;
export const E_F5: i32 = D_ARGS + 12;
export const E_F6: i32 = D_ARGS + 13;
export const E_I0: i32 = D_ARGS + 14; // int parameters
export const E_I1: i32 = D_ARGS + 15;

// ops of the K_ELT job
export const OP_RELU: i32 = 1; // y = x < 0 ? 0 : x   (NaN stays NaN, as in PyTorch)
export const OP_NEG: i32 = 2;
export const OP_ABS: i32 = 3;
export const OP_SQRT: i32 = 4;
export const OP_AFFINE: i32 = 5; // y = x*F0 + F1
export const OP_RELU_BWD: i32 = 6; // z = y <= 0 ? 0 : x   (x = dy, y = forward output)
export const OP_ADD_INPLACE: i32 = 7; // y += x
export const OP_ADD: i32 = 10; // z = x op y (same shape); ops 10..15
export const OP_SUB: i32 = 11;
export const OP_MUL: i32 = 12;
export const OP_DIV: i32 = 13;
export const OP_MAX: i32 = 14;
export const OP_MIN: i32 = 15;
export const OP_ADD_S: i32 = 20; // z = x op scalar F0; ops 20..25 in the order of 10..15
export const OP_SUB_S: i32 = 21;
export const OP_MUL_S: i32 = 22;
export const OP_DIV_S: i32 = 23;
export const OP_MAX_S: i32 = 24;
export const OP_MIN_S: i32 = 25;
export const OP_SGD: i32 = 30; // x = param, y = grad, z = momentum buffer (0: none)
export const OP_ADAM: i32 = 31; // x = param, y = grad, z = m, w = v

@inline function binop(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case 0: return f32x4.add(a, b);
    case 1: return f32x4.sub(a, b);
    case 2: return f32x4.mul(a, b);
    case 3: return f32x4.div(a, b);
    // a when a > b or a is NaN, else b (the ref backend's rule, signed zeros included)
    case 4: return v128.bitselect(a, b, v128.or(f32x4.gt(a, b), f32x4.ne(a, a)));
    default: return v128.bitselect(a, b, v128.or(f32x4.lt(a, b), f32x4.ne(a, a)));
  }
}

@inline function binopS(op: i32, a: f32, b: f32): f32 {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return a > b || a != a ? a : b;
    default: return a < b || a != a ? a : b;
  }
}

export function eltTask(d: usize, t: i32): void {
  const op = di(d, E_OP), n = di(d, E_N), chunk = di(d, E_CHUNK);
  const i0 = t * chunk, i1 = min(n, i0 + chunk);
  const off = <usize>i0 << 2;
  const x = du(d, E_X) + off, y = du(d, E_Y) + off;
  const cnt = i1 - i0;
  const vend = cnt & ~3;
  const zero = f32x4.splat(0);
  if (op == OP_RELU) {
    for (let i = 0; i < vend; i += 4) {
      const p = <usize>i << 2;
      const v = v128.load(x + p);
      v128.store(y + p, v128.andnot(v, f32x4.lt(v, zero)));
    }
    for (let i = vend; i < cnt; i++) { const p = <usize>i << 2; const v = load<f32>(x + p); store<f32>(y + p, v < 0 ? 0 : v); }
  } else if (op == OP_NEG) {
    for (let i = 0; i < vend; i += 4) { const p = <usize>i << 2; v128.store(y + p, f32x4.neg(v128.load(x + p))); }
    for (let i = vend; i < cnt; i++) { const p = <usize>i << 2; store<f32>(y + p, -load<f32>(x + p)); }
  } else if (op == OP_ABS) {
    for (let i = 0; i < vend; i += 4) { const p = <usize>i << 2; v128.store(y + p, f32x4.abs(v128.load(x + p))); }
    for (let i = vend; i < cnt; i++) { const p = <usize>i << 2; store<f32>(y + p, Mathf.abs(load<f32>(x + p))); }
  } else if (op == OP_SQRT) {
    for (let i = 0; i < vend; i += 4) { const p = <usize>i << 2; v128.store(y + p, f32x4.sqrt(v128.load(x + p))); }
    for (let i = vend; i < cnt; i++) { const p = <usize>i << 2; store<f32>(y + p, Mathf.sqrt(load<f32>(x + p))); }
  } else if (op == OP_AFFINE) {
    const a = df(d, E_F0), b = df(d, E_F1);
    const av = f32x4.splat(a), bv = f32x4.splat(b);
    for (let i = 0; i < vend; i += 4) { const p = <usize>i << 2; v128.store(y + p, f32x4.add(f32x4.mul(v128.load(x + p), av), bv)); }
    for (let i = vend; i < cnt; i++) { const p = <usize>i << 2; store<f32>(y + p, load<f32>(x + p) * a + b); }
  } else if (op == OP_RELU_BWD) {
    const z = du(d, E_Z) + off;
    for (let i = 0; i < vend; i += 4) {
      const p = <usize>i << 2;
      v128.store(z + p, v128.andnot(v128.load(x + p), f32x4.le(v128.load(y + p), zero)));
    }
    for (let i = vend; i < cnt; i++) { const p = <usize>i << 2; store<f32>(z + p, load<f32>(y + p) <= 0 ? 0 : load<f32>(x + p)); }
  } else if (op == OP_ADD_INPLACE) {
    for (let i = 0; i < vend; i += 4) { const p = <usize>i << 2; v128.store(y + p, f32x4.add(v128.load(y + p), v128.load(x + p))); }
    for (let i = vend; i < cnt; i++) { const p = <usize>i << 2; store<f32>(y + p, load<f32>(y + p) + load<f32>(x + p)); }
  } else if (op >= OP_ADD && op <= OP_MIN) {
    const z = du(d, E_Z) + off, o = op - OP_ADD;
    for (let i = 0; i < vend; i += 4) { const p = <usize>i << 2; v128.store(z + p, binop(o, v128.load(x + p), v128.load(y + p))); }
    for (let i = vend; i < cnt; i++) { const p = <usize>i << 2; store<f32>(z + p, binopS(o, load<f32>(x + p), load<f32>(y + p))); }
  } else if (op >= OP_ADD_S && op <= OP_MIN_S) {
    const z = du(d, E_Z) + off, o = op - OP_ADD_S, s = df(d, E_F0), sv = f32x4.splat(s);
    for (let i = 0; i < vend; i += 4) { const p = <usize>i << 2; v128.store(z + p, binop(o, v128.load(x + p), sv)); }
    for (let i = vend; i < cnt; i++) { const p = <usize>i << 2; store<f32>(z + p, binopS(o, load<f32>(x + p), s)); }
  } else if (op == OP_SGD) {
    sgd(d, x, y, du(d, E_Z), off, cnt);
  } else if (op == OP_ADAM) {
    adam(d, x, y, du(d, E_Z) + off, du(d, E_W) + off, cnt);
  }
}

/** PyTorch SGD on one chunk; F0 lr, F1 momentum, F2 dampening, F3 weight decay, I0 nesterov, I1 first. */
function sgd(d: usize, p: usize, g: usize, bufBase: usize, off: usize, cnt: i32): void {
  const lr = df(d, E_F0), mom = df(d, E_F1), damp = df(d, E_F2), wd = df(d, E_F3);
  const nesterov = di(d, E_I0) != 0, first = di(d, E_I1) != 0;
  const hasBuf = bufBase != 0 && mom != 0;
  const buf = bufBase + off;
  const lrv = f32x4.splat(lr), momv = f32x4.splat(mom), dampv = f32x4.splat(1 - damp), wdv = f32x4.splat(wd);
  const vend = cnt & ~3;
  for (let i = 0; i < vend; i += 4) {
    const o = <usize>i << 2;
    const pv = v128.load(p + o);
    let gv = f32x4.add(v128.load(g + o), f32x4.mul(wdv, pv));
    if (hasBuf) {
      const b = first ? gv : f32x4.add(f32x4.mul(momv, v128.load(buf + o)), f32x4.mul(dampv, gv));
      v128.store(buf + o, b);
      gv = nesterov ? f32x4.add(gv, f32x4.mul(momv, b)) : b;
    }
    v128.store(p + o, f32x4.sub(pv, f32x4.mul(lrv, gv)));
  }
  for (let i = vend; i < cnt; i++) {
    const o = <usize>i << 2;
    const pv = load<f32>(p + o);
    let gv = load<f32>(g + o) + wd * pv;
    if (hasBuf) {
      const b = first ? gv : mom * load<f32>(buf + o) + (1 - damp) * gv;
      store<f32>(buf + o, b);
      gv = nesterov ? gv + mom * b : b;
    }
    store<f32>(p + o, pv - lr * gv);
  }
}

/**
 * Adam/AdamW on one chunk; F0 lr, F1 beta1, F2 beta2, F3 eps, F4 weight decay,
 * F5 = 1/bias_correction1, F6 = 1/bias_correction2, I0 decoupled.
 */
function adam(d: usize, p: usize, g: usize, m: usize, v: usize, cnt: i32): void {
  const lr = df(d, E_F0), b1 = df(d, E_F1), b2 = df(d, E_F2), eps = df(d, E_F3), wd = df(d, E_F4);
  const ibc1 = df(d, E_F5), ibc2 = df(d, E_F6);
  const decoupled = di(d, E_I0) != 0;
  const step = lr * ibc1;
  for (let i = 0; i < cnt; i++) {
    const o = <usize>i << 2;
    let pv = load<f32>(p + o);
    let gv = load<f32>(g + o);
    if (decoupled) pv *= 1 - lr * wd;
    else gv += wd * pv;
    const mv = b1 * load<f32>(m + o) + (1 - b1) * gv;
    const vv = b2 * load<f32>(v + o) + (1 - b2) * gv * gv;
    store<f32>(m + o, mv);
    store<f32>(v + o, vv);
    store<f32>(p + o, pv - step * (mv / (Mathf.sqrt(vv * ibc2) + eps)));
  }
}
