// BatchNorm over [N, C, HW] (one task per channel) and the per-channel / per-plane reductions.
// Sums are taken in f32x4 lanes over one contiguous run (an image's HW block) and added into
// an f64 total, which keeps them as accurate as the ref backend's float64 loops in practice.
import { D_ARGS, df, di, du } from './desc';

export const B_X: i32 = D_ARGS + 0;
export const B_Y: i32 = D_ARGS + 1;
export const B_GAMMA: i32 = D_ARGS + 2;
export const B_BETA: i32 = D_ARGS + 3;
export const B_MEAN: i32 = D_ARGS + 4;
export const B_INVSTD: i32 = D_ARGS + 5; // train: saveInvStd out; eval: running var in
export const B_VAR: i32 = D_ARGS + 6;
export const B_N: i32 = D_ARGS + 7;
export const B_C: i32 = D_ARGS + 8;
export const B_HW: i32 = D_ARGS + 9;
export const B_EPS: i32 = D_ARGS + 10;
export const B_DY: i32 = D_ARGS + 11;
export const B_DX: i32 = D_ARGS + 12;
export const B_DGAMMA: i32 = D_ARGS + 13;
export const B_DBETA: i32 = D_ARGS + 14;
export const B_MODE: i32 = D_ARGS + 15; // 0 train forward, 1 eval forward, 2 train backward
export const B_RELU: i32 = D_ARGS + 16; // fused ReLU on the forward output

@inline function lo64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
@inline function hi64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
}
@inline function h64(a: v128, b: v128): f64 {
  const s = f64x2.add(a, b);
  return f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
}

/** Sum of n floats at p: blocks of 16 are summed in f32 (a 2-level tree), blocks added in f64. */
export function runSum(p: usize, n: i32): f64 {
  let s0 = f64x2.splat(0), s1 = s0;
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = p + (<usize>i << 2);
    const a = f32x4.add(f32x4.add(v128.load(o), v128.load(o, 16)), f32x4.add(v128.load(o, 32), v128.load(o, 48)));
    s0 = f64x2.add(s0, lo64(a));
    s1 = f64x2.add(s1, hi64(a));
  }
  let s = h64(s0, s1);
  for (; i < n; i++) s += <f64>load<f32>(p + (<usize>i << 2));
  return s;
}

/** Sum of (x - m)^2, blocks of 8 in f32, blocks added in f64. */
function runSqDev(p: usize, n: i32, m: f32): f64 {
  const mv = f32x4.splat(m);
  let s0 = f64x2.splat(0), s1 = s0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = p + (<usize>i << 2);
    const u = f32x4.sub(v128.load(o), mv), w = f32x4.sub(v128.load(o, 16), mv);
    const a = f32x4.add(f32x4.mul(u, u), f32x4.mul(w, w));
    s0 = f64x2.add(s0, lo64(a));
    s1 = f64x2.add(s1, hi64(a));
  }
  let s = h64(s0, s1);
  for (; i < n; i++) { const u = <f64>(load<f32>(p + (<usize>i << 2)) - m); s += u * u; }
  return s;
}

/** y = (x - mean)*scale + shift (then max(., 0) when relu) over n floats */
function runAffine(x: usize, y: usize, n: i32, mean: f32, scale: f32, shift: f32, relu: bool): void {
  const mv = f32x4.splat(mean), sv = f32x4.splat(scale), bv = f32x4.splat(shift), z = f32x4.splat(0);
  let i = 0;
  if (relu) {
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      const v = f32x4.add(f32x4.mul(f32x4.sub(v128.load(x + o), mv), sv), bv);
      v128.store(y + o, v128.andnot(v, f32x4.lt(v, z)));
    }
  } else {
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, f32x4.add(f32x4.mul(f32x4.sub(v128.load(x + o), mv), sv), bv));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    let v = (load<f32>(x + o) - mean) * scale + shift;
    if (relu && v < 0) v = 0;
    store<f32>(y + o, v);
  }
}

/**
 * Train-mode y = (x - mean)*scale + shift in f64, rounded to f32 once (then max(., 0) when relu):
 * with few values per channel the f32 form's three roundings (scale and shift to f32, the
 * multiply, the add) were the largest error of the train-mode forward (resnext50_32x4d at
 * 2x3x64x64: 1.70x PyTorch float32's error vs float64 before, see test/train-error.test.ts).
 */
function runAffine64(x: usize, y: usize, n: i32, mean: f64, scale: f64, shift: f64, relu: bool): void {
  const mv = f64x2.splat(mean), sv = f64x2.splat(scale), bv = f64x2.splat(shift), z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const a = f64x2.add(f64x2.mul(f64x2.sub(lo64(v), mv), sv), bv);
    const b = f64x2.add(f64x2.mul(f64x2.sub(hi64(v), mv), sv), bv);
    let r = v128.shuffle<f32>(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
    if (relu) r = v128.andnot(r, f32x4.lt(r, z));
    v128.store(y + o, r);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    let v = <f32>((<f64>load<f32>(x + o) - mean) * scale + shift);
    if (relu && v < 0) v = 0;
    store<f32>(y + o, v);
  }
}

export function bnTask(d: usize, c: i32): void {
  const N = di(d, B_N), C = di(d, B_C), HW = di(d, B_HW), mode = di(d, B_MODE);
  const gamma = du(d, B_GAMMA), beta = du(d, B_BETA);
  const cb = <usize>c << 2;
  const plane = <usize>HW << 2, stride = <usize>(C * HW) << 2;
  const x0 = du(d, B_X) + <usize>c * plane;
  const M = <f64>N * <f64>HW;
  const g: f64 = gamma != 0 ? <f64>load<f32>(gamma + cb) : 1.0;
  if (mode == 0 || mode == 1) {
    const y0 = du(d, B_Y) + <usize>c * plane;
    let mean: f64, invStd: f64;
    if (mode == 0) {
      let s: f64 = 0;
      for (let n = 0; n < N; n++) s += runSum(x0 + <usize>n * stride, HW);
      mean = s / M;
      let ss: f64 = 0;
      const mf = <f32>mean;
      for (let n = 0; n < N; n++) ss += runSqDev(x0 + <usize>n * stride, HW, mf);
      // correct for rounding mean to f32: sum (x-m')^2 = sum (x-m)^2 + M (m-m')^2
      const dm = mean - <f64>mf;
      const v = ss / M - dm * dm;
      invStd = 1.0 / Math.sqrt(v + <f64>df(d, B_EPS));
      store<f32>(du(d, B_MEAN) + cb, <f32>mean);
      store<f32>(du(d, B_INVSTD) + cb, <f32>invStd);
      store<f32>(du(d, B_VAR) + cb, <f32>v);
    } else {
      mean = <f64>load<f32>(du(d, B_MEAN) + cb);
      invStd = 1.0 / Math.sqrt(<f64>load<f32>(du(d, B_VAR) + cb) + <f64>df(d, B_EPS));
    }
    const b: f64 = beta != 0 ? <f64>load<f32>(beta + cb) : 0.0;
    const relu0 = di(d, B_RELU) != 0;
    if (mode == 0) {
      const sc = g * invStd;
      for (let n = 0; n < N; n++) runAffine64(x0 + <usize>n * stride, y0 + <usize>n * stride, HW, mean, sc, b, relu0);
      return;
    }
    // eval: y = (x - m')*scale + (b + (m' - mean)*scale) with m' = f32(mean): exact cancellation near the mean
    const mf = <f32>mean;
    const scale = g * invStd, shift = b + (<f64>mf - mean) * scale;
    const relu = di(d, B_RELU) != 0;
    for (let n = 0; n < N; n++) runAffine(x0 + <usize>n * stride, y0 + <usize>n * stride, HW, mf, <f32>scale, <f32>shift, relu);
    return;
  }
  // backward: dgamma = sum dy*xhat, dbeta = sum dy, dx = g*invStd/M * (M*dy - dbeta - xhat*dgamma)
  const dy0 = du(d, B_DY) + <usize>c * plane, dx0 = du(d, B_DX) + <usize>c * plane;
  const mean = load<f32>(du(d, B_MEAN) + cb), invStd = load<f32>(du(d, B_INVSTD) + cb);
  const mv = f32x4.splat(mean);
  let sdy: f64 = 0, sdyx: f64 = 0;
  for (let n = 0; n < N; n++) {
    const xp = x0 + <usize>n * stride, gp = dy0 + <usize>n * stride;
    let a0 = f64x2.splat(0), a1 = a0, b0 = a0, b1 = a0;
    let i = 0;
    for (; i + 8 <= HW; i += 8) {
      const o = <usize>i << 2;
      const g0 = v128.load(gp + o), g1 = v128.load(gp + o, 16);
      const a = f32x4.add(g0, g1);
      const b = f32x4.add(f32x4.mul(g0, f32x4.sub(v128.load(xp + o), mv)), f32x4.mul(g1, f32x4.sub(v128.load(xp + o, 16), mv)));
      a0 = f64x2.add(a0, lo64(a)); a1 = f64x2.add(a1, hi64(a));
      b0 = f64x2.add(b0, lo64(b)); b1 = f64x2.add(b1, hi64(b));
    }
    sdy += h64(a0, a1);
    sdyx += h64(b0, b1);
    for (; i < HW; i++) {
      const o = <usize>i << 2;
      const gv = <f64>load<f32>(gp + o);
      sdy += gv;
      sdyx += gv * <f64>(load<f32>(xp + o) - mean);
    }
  }
  const sdyxh = sdyx * <f64>invStd;
  if (du(d, B_DGAMMA) != 0) store<f32>(du(d, B_DGAMMA) + cb, <f32>sdyxh);
  if (du(d, B_DBETA) != 0) store<f32>(du(d, B_DBETA) + cb, <f32>sdy);
  // dx = k*M*dy - k*sdy - k*invStd*sdyxh*(x - mean), k = g*invStd/M
  const k = g * <f64>invStd / M;
  const a1 = <f32>(k * M), a0 = <f32>(-k * sdy), a2 = <f32>(-k * <f64>invStd * sdyxh);
  const a1v = f32x4.splat(a1), a0v = f32x4.splat(a0), a2v = f32x4.splat(a2);
  for (let n = 0; n < N; n++) {
    const xp = x0 + <usize>n * stride, gp = dy0 + <usize>n * stride, op = dx0 + <usize>n * stride;
    let i = 0;
    for (; i + 4 <= HW; i += 4) {
      const o = <usize>i << 2;
      const v = f32x4.add(f32x4.add(f32x4.mul(a1v, v128.load(gp + o)), a0v), f32x4.mul(a2v, f32x4.sub(v128.load(xp + o), mv)));
      v128.store(op + o, v);
    }
    for (; i < HW; i++) {
      const o = <usize>i << 2;
      store<f32>(op + o, a1 * load<f32>(gp + o) + a0 + a2 * (load<f32>(xp + o) - mean));
    }
  }
}

// ---- per-channel sum of [A, B, Cc] -> [B] (sumTo for bias gradients and channel sums)
export const R_X: i32 = D_ARGS + 0;
export const R_Y: i32 = D_ARGS + 1;
export const R_A: i32 = D_ARGS + 2;
export const R_B: i32 = D_ARGS + 3;
export const R_CC: i32 = D_ARGS + 4;

/** One task per b: y[b] = sum over a, k of x[a, b, k]. */
export function sumMidTask(d: usize, b: i32): void {
  const A = di(d, R_A), B = di(d, R_B), Cc = di(d, R_CC);
  const x = du(d, R_X) + (<usize>b * <usize>Cc << 2);
  const stride = <usize>B * <usize>Cc << 2;
  let s: f64 = 0;
  for (let a = 0; a < A; a++) s += runSum(x + <usize>a * stride, Cc);
  store<f32>(du(d, R_Y) + (<usize>b << 2), <f32>s);
}
