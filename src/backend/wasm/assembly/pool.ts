// Pooling forward and backward; one task = a chunk of planes (n, c), so backward scatters never race.
import { D_ARGS, di, du } from './desc';
import { runSum } from './norm';

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

export function poolTask(d: usize, t: i32): void {
  const planes = di(d, Q_PLANES), chunk = di(d, Q_CHUNK), mode = di(d, Q_MODE);
  const H = di(d, Q_H), W = di(d, Q_W), OH = di(d, Q_OH), OW = di(d, Q_OW);
  const p1 = min(planes, (t + 1) * chunk);
  for (let pl = t * chunk; pl < p1; pl++) {
    const x = du(d, Q_X) + (<usize>pl * <usize>(H * W) << 2);
    const y = du(d, Q_Y) + (<usize>pl * <usize>(OH * OW) << 2);
    const dx = du(d, Q_DX) + (<usize>pl * <usize>(H * W) << 2);
    if (mode == PM_ADAPT || mode == PM_ADAPT_BWD) adaptive(x, y, dx, H, W, OH, OW, mode == PM_ADAPT_BWD);
    else windowed(d, x, y, dx, H, W, OH, OW, mode);
  }
}

function windowed(d: usize, x: usize, y: usize, dx: usize, H: i32, W: i32, OH: i32, OW: i32, mode: i32): void {
  const kH = di(d, Q_KH), kW = di(d, Q_KW), sH = di(d, Q_SH), sW = di(d, Q_SW);
  const pH = di(d, Q_PH), pW = di(d, Q_PW), dH = di(d, Q_DH), dW = di(d, Q_DW);
  const inclPad = di(d, Q_INCLPAD) != 0;
  if (mode == PM_MAX_BWD || mode == PM_AVG_BWD) memory.fill(dx, 0, <usize>(H * W) << 2);
  for (let oh = 0; oh < OH; oh++) {
    for (let ow = 0; ow < OW; ow++) {
      const o = oh * OW + ow;
      if (mode == PM_MAX || mode == PM_MAX_BWD) {
        let m = -Infinity as f32;
        let at = -1;
        for (let i = 0; i < kH; i++) {
          const ih = oh * sH - pH + i * dH;
          if (ih < 0 || ih >= H) continue;
          for (let j = 0; j < kW; j++) {
            const iw = ow * sW - pW + j * dW;
            if (iw < 0 || iw >= W) continue;
            const v = f(x, ih * W + iw);
            if (v > m || at < 0 || v != v) { m = v; at = ih * W + iw; }
          }
        }
        if (mode == PM_MAX) put(y, o, at < 0 ? -Infinity as f32 : m);
        else if (at >= 0) put(dx, at, f(dx, at) + f(y, o));
      } else {
        const h0 = oh * sH - pH, w0 = ow * sW - pW;
        const h1 = min(h0 + kH, H + pH), w1 = min(w0 + kW, W + pW);
        const padCount = (h1 - h0) * (w1 - w0);
        const hs = max(h0, 0), ws = max(w0, 0), he = min(h1, H), we = min(w1, W);
        const div = <f32>(inclPad ? padCount : (he - hs) * (we - ws));
        if (mode == PM_AVG) {
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
