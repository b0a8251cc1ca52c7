// Pooling forward and backward; one task = a chunk of planes (n, c), so backward scatters never race.
import { D_ARGS, D_SCRATCH, D_SCRATCH_STRIDE, di, du } from './desc';
import { runSum } from './norm';
import { KCMAX, MCMAX } from './gemm';

export const Q_X: i32 = D_ARGS + 0;
export const Q_Y: i32 = D_ARGS + 1; // forward output / backward dy
export const Q_DX: i32 = D_ARGS + 2;
export const Q_PLANES: i32 = D_ARGS + 3;
export const Q_CHUNK: i32 = D_ARGS + 4;
export const Q_H: i32 = D_ARGS + 5;
export const Q_W: i32 = D_ARGS + 6;
export const Q_KH: i32 = D_ARGS + 7;
export const Q_KW: i32 = D_ARGS + 8;
export const Q_SH: i32 = D_ARGS + 9;
export const Q_SW: i32 = D_ARGS + 10;
export const Q_PH: i32 = D_ARGS + 11;
export const Q_PW: i32 = D_ARGS + 12;
export const Q_DH: i32 = D_ARGS + 13;
export const Q_DW: i32 = D_ARGS + 14;
export const Q_OH: i32 = D_ARGS + 15;
export const Q_OW: i32 = D_ARGS + 16;
export const Q_INCLPAD: i32 = D_ARGS + 17;
export const Q_MODE: i32 = D_ARGS + 18;

export const PM_MAX: i32 = 0;
export const PM_MAX_BWD: i32 = 1;
export const PM_AVG: i32 = 2;
export const PM_AVG_BWD: i32 = 3;
export const PM_ADAPT: i32 = 4;
export const PM_ADAPT_BWD: i32 = 5;

@inline function f(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}
@inline function put(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}

/** Per-thread scratch bytes the separable max pool may use (the GEMM's A-pack area). */
const SEP_SCRATCH_OFF: usize = 256;
const SEP_SCRATCH_BYTES: i32 = MCMAX * KCMAX * 4;

export function poolTask(d: usize, t: i32, tid: i32): void {
  const scratch = du(d, D_SCRATCH) + <usize>tid * du(d, D_SCRATCH_STRIDE) + SEP_SCRATCH_OFF;
  const planes = di(d, Q_PLANES), chunk = di(d, Q_CHUNK), mode = di(d, Q_MODE);
  const H = di(d, Q_H), W = di(d, Q_W), OH = di(d, Q_OH), OW = di(d, Q_OW);
  const p1 = min(planes, (t + 1) * chunk);
  for (let pl = t * chunk; pl < p1; pl++) {
    const x = du(d, Q_X) + (<usize>pl * <usize>(H * W) << 2);
    const y = du(d, Q_Y) + (<usize>pl * <usize>(OH * OW) << 2);
    const dx = du(d, Q_DX) + (<usize>pl * <usize>(H * W) << 2);
    if (mode == PM_ADAPT || mode == PM_ADAPT_BWD) adaptive(x, y, dx, H, W, OH, OW, mode == PM_ADAPT_BWD);
    else if ((mode == PM_MAX || mode == PM_MAX_BWD) && di(d, Q_DW) == 1 && di(d, Q_DH) == 1 && H * OW * 8 <= SEP_SCRATCH_BYTES) {
      maxSeparable(d, x, y, dx, H, W, OH, OW, mode == PM_MAX_BWD, scratch);
    } else windowed(d, x, y, dx, H, W, OH, OW, mode);
  }
}

/** First valid window index: smallest i >= 0 with start + i*step >= 0. */
@inline function firstIn(start: i32, step: i32): i32 {
  return start >= 0 ? 0 : (-start + step - 1) / step;
}
/** One past the last valid window index (capped at k): start + i*step < lim. */
@inline function endIn(start: i32, step: i32, lim: i32, k: i32): i32 {
  if (start >= lim) return 0;
  return min(k, (lim - 1 - start) / step + 1);
}

function windowed(d: usize, x: usize, y: usize, dx: usize, H: i32, W: i32, OH: i32, OW: i32, mode: i32): void {
  const kH = di(d, Q_KH), kW = di(d, Q_KW), sH = di(d, Q_SH), sW = di(d, Q_SW);
  const pH = di(d, Q_PH), pW = di(d, Q_PW), dH = di(d, Q_DH), dW = di(d, Q_DW);
  if (mode == PM_MAX) maxFwd(x, y, H, W, OH, OW, kH, kW, sH, sW, pH, pW, dH, dW);
  else if (mode == PM_MAX_BWD) maxBwd(x, y, dx, H, W, OH, OW, kH, kW, sH, sW, pH, pW, dH, dW);
  else avg(x, y, dx, H, W, OH, OW, kH, kW, sH, sW, pH, pW, di(d, Q_INCLPAD) != 0, mode == PM_AVG_BWD);
}

function maxFwd(x: usize, y: usize, H: i32, W: i32, OH: i32, OW: i32, kH: i32, kW: i32,
                sH: i32, sW: i32, pH: i32, pW: i32, dH: i32, dW: i32): void {
  const rowStep = <usize>(dH * W) << 2, colStep = <usize>dW << 2;
  for (let oh = 0; oh < OH; oh++) {
    const hs = oh * sH - pH;
    const i0 = firstIn(hs, dH), i1 = endIn(hs, dH, H, kH);
    for (let ow = 0; ow < OW; ow++) {
      const ws = ow * sW - pW;
      const j0 = firstIn(ws, dW), j1 = endIn(ws, dW, W, kW);
      let m = -Infinity as f32;
      let row = x + (<usize>((hs + i0 * dH) * W + ws + j0 * dW) << 2);
      for (let i = i0; i < i1; i++) {
        let p = row;
        for (let j = j0; j < j1; j++) {
          const v = load<f32>(p);
          m = select<f32>(v, m, v > m || v != v);
          p += colStep;
        }
        row += rowStep;
      }
      put(y, oh * OW + ow, m);
    }
  }
}

function maxBwd(x: usize, dy: usize, dx: usize, H: i32, W: i32, OH: i32, OW: i32, kH: i32, kW: i32,
                sH: i32, sW: i32, pH: i32, pW: i32, dH: i32, dW: i32): void {
  memory.fill(dx, 0, <usize>(H * W) << 2);
  for (let oh = 0; oh < OH; oh++) {
    const hs = oh * sH - pH;
    const i0 = firstIn(hs, dH), i1 = endIn(hs, dH, H, kH);
    for (let ow = 0; ow < OW; ow++) {
      const ws = ow * sW - pW;
      const j0 = firstIn(ws, dW), j1 = endIn(ws, dW, W, kW);
      let m = -Infinity as f32;
      let at = -1;
      for (let i = i0; i < i1; i++) {
        const rowIdx = (hs + i * dH) * W + ws;
        for (let j = j0; j < j1; j++) {
          const idx = rowIdx + j * dW;
          const v = f(x, idx);
          const take = v > m || at < 0 || v != v;
          m = select<f32>(v, m, take);
          at = select<i32>(idx, at, take);
        }
      }
      if (at >= 0) put(dx, at, f(dx, at) + f(dy, oh * OW + ow));
    }
  }
}

function avg(x: usize, y: usize, dx: usize, H: i32, W: i32, OH: i32, OW: i32, kH: i32, kW: i32,
             sH: i32, sW: i32, pH: i32, pW: i32, inclPad: bool, bwd: bool): void {
  if (bwd) memory.fill(dx, 0, <usize>(H * W) << 2);
  for (let oh = 0; oh < OH; oh++) {
    for (let ow = 0; ow < OW; ow++) {
      const o = oh * OW + ow;
      const h0 = oh * sH - pH, w0 = ow * sW - pW;
      const h1 = min(h0 + kH, H + pH), w1 = min(w0 + kW, W + pW);
      const padCount = (h1 - h0) * (w1 - w0);
      const hs = max(h0, 0), ws = max(w0, 0), he = min(h1, H), we = min(w1, W);
      const div = <f32>(inclPad ? padCount : (he - hs) * (we - ws));
      if (!bwd) {
        let s: f32 = 0;
        for (let ih = hs; ih < he; ih++) for (let iw = ws; iw < we; iw++) s += f(x, ih * W + iw);
        put(y, o, s / div);
      } else {
        const g = f(y, o) / div;
        for (let ih = hs; ih < he; ih++) for (let iw = ws; iw < we; iw++) put(dx, ih * W + iw, f(dx, ih * W + iw) + g);
      }
    }
  }
}

// ---- separable max pool (dilation 1): a max over kW along each input row into hm[H, OW] (with
// the argmax column), then a max over kH down the columns of hm. The ref backend's rule, applied
// in window order, is kept exactly: v replaces m when v > m or v is NaN (and the first valid
// element is always taken, which decides the argmax of an all -inf window).

@inline function take4(v: v128, m: v128): v128 {
  return v128.or(f32x4.gt(v, m), f32x4.ne(v, v));
}

function maxSeparable(d: usize, x: usize, y: usize, dx: usize, H: i32, W: i32, OH: i32, OW: i32, bwd: bool, hm: usize): void {
  const kH = di(d, Q_KH), kW = di(d, Q_KW), sH = di(d, Q_SH), sW = di(d, Q_SW), pH = di(d, Q_PH), pW = di(d, Q_PW);
  const hi = hm + (<usize>(H * OW) << 2); // argmax flat index per hm element
  // interior columns: the whole window inside [0, W)
  let owA = (pW + sW - 1) / sW;
  let owB = OW;
  while (owB > owA && (owB - 1) * sW - pW + kW > W) owB--;
  if (owA > owB) owA = owB;
  for (let ih = 0; ih < H; ih++) {
    const xr = x + (<usize>(ih * W) << 2);
    const hr = hm + (<usize>(ih * OW) << 2), ir = hi + (<usize>(ih * OW) << 2);
    // scalar edges
    for (let ow = 0; ow < OW; ow++) {
      if (ow == owA && owB > owA) { ow = owB - 1; continue; }
      const ws = ow * sW - pW;
      const j0 = max(0, -ws), j1 = min(kW, W - ws);
      let m = -Infinity as f32;
      let at = -1;
      for (let j = j0; j < j1; j++) {
        const v = load<f32>(xr + (<usize>(ws + j) << 2));
        if (v > m || at < 0 || v != v) { m = v; at = ih * W + ws + j; }
      }
      store<f32>(hr + (<usize>ow << 2), m);
      store<i32>(ir + (<usize>ow << 2), at);
    }
    // interior, 4 outputs at a time when the stride is 1 or 2
    let ow = owA;
    if (sW <= 2) {
      for (; ow + 4 <= owB; ow += 4) {
        const ws = ow * sW - pW;
        let m = f32x4.splat(0), at = i32x4.splat(0);
        const base = i32x4.add(i32x4.splat(ih * W + ws), sW == 1 ? i32x4(0, 1, 2, 3) : i32x4(0, 2, 4, 6));
        for (let j = 0; j < kW; j++) {
          const src = xr + (<usize>(ws + j) << 2);
          let v: v128;
          if (sW == 1) v = v128.load(src);
          else v = v128.shuffle<f32>(v128.load(src), v128.load(src, 12), 0, 2, 5, 7); // reads x[+0..+6] only
          const idx = i32x4.add(base, i32x4.splat(j));
          if (j == 0) { m = v; at = idx; } else {
            const tk = take4(v, m);
            m = v128.bitselect(v, m, tk);
            at = v128.bitselect(idx, at, tk);
          }
        }
        v128.store(hr + (<usize>ow << 2), m);
        v128.store(ir + (<usize>ow << 2), at);
      }
    }
    for (; ow < owB; ow++) {
      const ws = ow * sW - pW;
      let m = -Infinity as f32;
      let at = -1;
      for (let j = 0; j < kW; j++) {
        const v = load<f32>(xr + (<usize>(ws + j) << 2));
        if (v > m || at < 0 || v != v) { m = v; at = ih * W + ws + j; }
      }
      store<f32>(hr + (<usize>ow << 2), m);
      store<i32>(ir + (<usize>ow << 2), at);
    }
  }
  if (bwd) memory.fill(dx, 0, <usize>(H * W) << 2);
  for (let oh = 0; oh < OH; oh++) {
    const hs = oh * sH - pH;
    const i0 = max(0, -hs), i1 = min(kH, H - hs);
    const yr = y + (<usize>(oh * OW) << 2);
    let ow = 0;
    if (i1 > i0) {
      for (; ow + 4 <= OW; ow += 4) {
        const o = <usize>ow << 2;
        let m = v128.load(hm + (<usize>((hs + i0) * OW) << 2) + o);
        let at = v128.load(hi + (<usize>((hs + i0) * OW) << 2) + o);
        for (let i = i0 + 1; i < i1; i++) {
          const r = <usize>((hs + i) * OW) << 2;
          const v = v128.load(hm + r + o);
          const tk = take4(v, m);
          m = v128.bitselect(v, m, tk);
          at = v128.bitselect(v128.load(hi + r + o), at, tk);
        }
        if (!bwd) v128.store(yr + o, m);
        else {
          const a0 = i32x4.extract_lane(at, 0), a1 = i32x4.extract_lane(at, 1), a2 = i32x4.extract_lane(at, 2), a3 = i32x4.extract_lane(at, 3);
          if (a0 >= 0) put(dx, a0, f(dx, a0) + load<f32>(yr + o));
          if (a1 >= 0) put(dx, a1, f(dx, a1) + load<f32>(yr + o, 4));
          if (a2 >= 0) put(dx, a2, f(dx, a2) + load<f32>(yr + o, 8));
          if (a3 >= 0) put(dx, a3, f(dx, a3) + load<f32>(yr + o, 12));
        }
      }
    }
    for (; ow < OW; ow++) {
      let m = -Infinity as f32;
      let at = -1;
      for (let i = i0; i < i1; i++) {
        const r = <usize>(((hs + i) * OW + ow)) << 2;
        const v = load<f32>(hm + r);
        if (v > m || at < 0 || v != v) { m = v; at = load<i32>(hi + r); }
      }
      if (!bwd) put(yr, 0 + ow, at < 0 ? -Infinity as f32 : m);
      else if (at >= 0) put(dx, at, f(dx, at) + load<f32>(yr + (<usize>ow << 2)));
    }
  }
}

function adaptive(x: usize, y: usize, dx: usize, H: i32, W: i32, OH: i32, OW: i32, bwd: bool): void {
  if (OH == 1 && OW == 1) {
    // global average pool
    const n = H * W;
    if (!bwd) {
      put(y, 0, <f32>(runSum(x, n) / <f64>n));
    } else {
      const g = f(y, 0) / <f32>n;
      const gv = f32x4.splat(g);
      let i = 0;
      for (; i + 4 <= n; i += 4) v128.store(dx + (<usize>i << 2), gv);
      for (; i < n; i++) put(dx, i, g);
    }
    return;
  }
  if (bwd) memory.fill(dx, 0, <usize>(H * W) << 2);
  for (let oh = 0; oh < OH; oh++) {
    const hs = (oh * H) / OH, he = ((oh + 1) * H + OH - 1) / OH;
    for (let ow = 0; ow < OW; ow++) {
      const ws = (ow * W) / OW, we = ((ow + 1) * W + OW - 1) / OW;
      const cnt = <f32>((he - hs) * (we - ws));
      if (!bwd) {
        let s: f32 = 0;
        for (let ih = hs; ih < he; ih++) for (let iw = ws; iw < we; iw++) s += f(x, ih * W + iw);
        put(y, oh * OW + ow, s / cnt);
      } else {
        const g = f(y, oh * OW + ow) / cnt;
        for (let ih = hs; ih < he; ih++) for (let iw = ws; iw < we; iw++) put(dx, ih * W + iw, f(dx, ih * W + iw) + g);
      }
    }
  }
}
