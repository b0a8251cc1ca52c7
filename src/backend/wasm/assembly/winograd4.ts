// Winograd F(4x4, 3x3): 36 multiplies per 4x4 output tile instead of 144 (4x fewer; F(2x2) saves
// 2.25x), at the price of larger transforms and more rounding (the transform entries reach 5 and
// 8, and G has 1/6, 1/12, 1/24). Same data layout and argument slots as F(2x2) (winograd.ts):
//   V[xi][c][t] = (B^T d B)[xi]   6x6 input tiles at stride 4, xi = i*6 + j (36 planes)
//   U[xi][k][c] = (G g G^T)[xi]   (computed in f64, rounded once)
//   M[xi]       = U[xi] @ V[xi]   (36 x groups batched GEMMs, done by the GEMM kernel)
//   y tile      = A^T M A         (+ bias, optional ReLU)
// with (Lavin & Gray 2015)
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// Tasks are planes (image n, channel); a plane's P = TH*TW tiles go 4 at a time, lanes = tiles.
// Both transforms are two passes over the 36 slots of a group of 4 tiles, in place in V / M
// (rows first, then columns), so no per-thread scratch and few live registers.
import { W_X, W_V, W_C, W_HP, W_WP, W_TH, W_TW, W_T, W_BIAS, W_RELU, W_W, W_U, W_K, W_CG, W_FLIP, W_CO, W_XS, W_US } from './winograd';
import { di, du } from './desc';

/** Stores the first nl lanes of v at p (nl = 4: one vector store). */
@inline function st(p: usize, v: v128, nl: i32): void {
  if (nl == 4) { v128.store(p, v); return; }
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (nl > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (nl > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/** (B^T .) of 6 vectors d0..d5, stored to o, o + s, ..., o + 5s. */
@inline function bt6(o: usize, s: usize, nl: i32, d0: v128, d1: v128, d2: v128, d3: v128, d4: v128, d5: v128): void {
  const four = f32x4.splat(4), five = f32x4.splat(5), two = f32x4.splat(2);
  const a = f32x4.sub(d4, f32x4.mul(four, d2)), b = f32x4.sub(d3, f32x4.mul(four, d1));
  const c = f32x4.sub(d4, d2), e = f32x4.mul(two, f32x4.sub(d3, d1));
  st(o, f32x4.add(f32x4.sub(f32x4.mul(four, d0), f32x4.mul(five, d2)), d4), nl);
  st(o + s, f32x4.add(a, b), nl);
  st(o + 2 * s, f32x4.sub(a, b), nl);
  st(o + 3 * s, f32x4.add(c, e), nl);
  st(o + 4 * s, f32x4.sub(c, e), nl);
  st(o + 5 * s, f32x4.add(f32x4.sub(f32x4.mul(four, d1), f32x4.mul(five, d3)), d5), nl);
}

/** Input transform of one plane (image n, channel c) of the padded input [Hp = 4TH+2, Wp = 4TW+2]. */
export function wino4InTask(d: usize, p: i32): void {
  const C = di(d, W_C), Hp = di(d, W_HP), Wp = di(d, W_WP), TH = di(d, W_TH), TW = di(d, W_TW), T = di(d, W_T);
  const n = p / C, c = p - n * C;
  const x = du(d, W_X) + (<usize>p * <usize>(Hp * Wp) << 2);
  const s = du(d, W_XS) << 2; // bytes between xi planes
  const v = du(d, W_V) + ((<usize>c * <usize>T + <usize>(n * TH * TW)) << 2);
  const P = TH * TW, rowB = <usize>Wp << 2;
  // groups of 4 tiles: along each tile row when TW >= 4 (a ragged row end reruns the row's last
  // 4 tiles: the row pass recomputes them from x, so the in-place column pass stays right), else
  // across rows; fewer than 4 tiles in all store only nl lanes
  let g = 0;
  while (g < P) {
    let g0: i32, nl = 4;
    if (TW >= 4) {
      const th = g / TW, tw = g - th * TW;
      g0 = th * TW + min(tw, TW - 4);
      g = tw + 4 >= TW ? (th + 1) * TW : g + 4;
    } else {
      g0 = P >= 4 ? min(g, P - 4) : 0;
      nl = min(4, P);
      g = g0 + 4;
    }
    const o = v + (<usize>g0 << 2);
    const th0 = g0 / TW, tw0 = g0 - th0 * TW;
    if (nl == 4 && tw0 + 4 <= TW) {
      // 4 tiles of one tile row: columns 4tw0 .. 4tw0 + 17, lanes by two 4x4 transposes
      let q = x + (<usize>(4 * th0 * Wp + 4 * tw0) << 2);
      for (let r = 0; r < 6; r++) {
        const l0 = v128.load(q), l1 = v128.load(q, 16), l2 = v128.load(q, 32), l3 = v128.load(q, 48), l4 = v128.load64_zero(q, 64);
        const t0 = v128.shuffle<f32>(l0, l1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(l2, l3, 0, 4, 1, 5);
        const t2 = v128.shuffle<f32>(l0, l1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(l2, l3, 2, 6, 3, 7);
        const u0 = v128.shuffle<f32>(l1, l2, 0, 4, 1, 5), u1 = v128.shuffle<f32>(l3, l4, 0, 4, 1, 5);
        bt6(o + <usize>(r * 6) * s, s, 4,
          v128.shuffle<f32>(t0, t1, 0, 1, 4, 5), v128.shuffle<f32>(t0, t1, 2, 3, 6, 7),
          v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), v128.shuffle<f32>(t2, t3, 2, 3, 6, 7),
          v128.shuffle<f32>(u0, u1, 0, 1, 4, 5), v128.shuffle<f32>(u0, u1, 2, 3, 6, 7));
        q += rowB;
      }
    } else {
      // tiles from different tile rows (small maps, row ends): gather lane by lane
      const b0 = tileBase(x, g0, TW, Wp), b1 = tileBase(x, g0 + min(1, nl - 1), TW, Wp);
      const b2 = tileBase(x, g0 + min(2, nl - 1), TW, Wp), b3 = tileBase(x, g0 + min(3, nl - 1), TW, Wp);
      for (let r = 0; r < 6; r++) {
        const ro = <usize>r * rowB;
        bt6(o + <usize>(r * 6) * s, s, nl,
          gat(b0 + ro, b1 + ro, b2 + ro, b3 + ro, 0), gat(b0 + ro, b1 + ro, b2 + ro, b3 + ro, 4),
          gat(b0 + ro, b1 + ro, b2 + ro, b3 + ro, 8), gat(b0 + ro, b1 + ro, b2 + ro, b3 + ro, 12),
          gat(b0 + ro, b1 + ro, b2 + ro, b3 + ro, 16), gat(b0 + ro, b1 + ro, b2 + ro, b3 + ro, 20));
      }
    }
    // columns: V[i*6 + j] = sum_r B^T[i][r] E[r*6 + j] (lanes past nl are read but never stored)
    for (let j = 0; j < 6; j++) {
      const q = o + <usize>j * s;
      bt6(q, 6 * s, nl, v128.load(q), v128.load(q + 6 * s), v128.load(q + 12 * s), v128.load(q + 18 * s), v128.load(q + 24 * s), v128.load(q + 30 * s));
    }
  }
}

@inline function tileBase(x: usize, t: i32, TW: i32, Wp: i32): usize {
  const th = t / TW, tw = t - th * TW;
  return x + (<usize>(4 * th * Wp + 4 * tw) << 2);
}

@inline function gat(b0: usize, b1: usize, b2: usize, b3: usize, off: usize): v128 {
  return f32x4(load<f32>(b0 + off), load<f32>(b1 + off), load<f32>(b2 + off), load<f32>(b3 + off));
}

const R4: f64 = 0.25, R6: f64 = 1.0 / 6, R12: f64 = 1.0 / 12, R24: f64 = 1.0 / 24;

/** 6 values G (x0, x1, x2)^T, in f64, stored as f32 at o, o + s, ..., o + 5s. */
@inline function g6(o: usize, s: usize, x0: f64, x1: f64, x2: f64): void {
  const e = x0 + x2, f = R24 * x0 + R6 * x2, h = R12 * x1;
  store<f32>(o, <f32>(R4 * x0));
  store<f32>(o + s, <f32>(-R6 * (e + x1)));
  store<f32>(o + 2 * s, <f32>(-R6 * (e - x1)));
  store<f32>(o + 3 * s, <f32>(f + h));
  store<f32>(o + 4 * s, <f32>(f - h));
  store<f32>(o + 5 * s, <f32>x2);
}

/** The same for the first pass (H = G g), kept in f64. */
@inline function h6(x0: f64, x1: f64, x2: f64, i: i32): f64 {
  if (i == 0) return R4 * x0;
  if (i == 1) return -R6 * (x0 + x1 + x2);
  if (i == 2) return -R6 * (x0 - x1 + x2);
  if (i == 3) return R24 * x0 + R12 * x1 + R6 * x2;
  if (i == 4) return R24 * x0 - R12 * x1 + R6 * x2;
  return x2;
}

/** Weight transform U = G g G^T of filters k (one task per output channel row of U). */
export function wino4WeightTask(d: usize, k: i32): void {
  const K = di(d, W_K), Cg = di(d, W_CG), flip = di(d, W_FLIP) != 0, Co = di(d, W_CO);
  const w = du(d, W_W), u = du(d, W_U);
  const s = du(d, W_US) << 2;
  for (let c = 0; c < Cg; c++) {
    // as in F(2x2): flip reads the flipped transpose of the original w[Ko, Co, 3, 3]
    let src: usize;
    if (!flip) src = w + (<usize>(k * Cg + c) * 9 << 2);
    else {
      const grp = k / Co, cl = k - grp * Co;
      src = w + (<usize>(((grp * Cg + c) * Co + cl) * 9) << 2);
    }
    // gg(r, col): element (r, col) of g, rotated by 180 degrees for flip
    const g00 = gg(src, 0, flip), g01 = gg(src, 1, flip), g02 = gg(src, 2, flip);
    const g10 = gg(src, 3, flip), g11 = gg(src, 4, flip), g12 = gg(src, 5, flip);
    const g20 = gg(src, 6, flip), g21 = gg(src, 7, flip), g22 = gg(src, 8, flip);
    // H = G g (6x3), row i of H times G^T gives U[i*6 + 0..5]
    const o = u + (<usize>(k * Cg + c) << 2);
    for (let i = 0; i < 6; i++) g6(o + <usize>(i * 6) * s, s, h6(g00, g10, g20, i), h6(g01, g11, g21, i), h6(g02, g12, g22, i));
  }
}

@inline function gg(src: usize, i: i32, flip: bool): f64 {
  return <f64>load<f32>(src + (<usize>(flip ? 8 - i : i) << 2));
}

/** (A^T .) of 6 vectors, stored to o, o + s, o + 2s, o + 3s. */
@inline function at4(o: usize, s: usize, m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128): void {
  const a = f32x4.add(m1, m2), b = f32x4.sub(m1, m2), c = f32x4.add(m3, m4), e = f32x4.sub(m3, m4);
  v128.store(o, f32x4.add(f32x4.add(m0, a), c));
  v128.store(o + s, f32x4.add(b, f32x4.mul(f32x4.splat(2), e)));
  v128.store(o + 2 * s, f32x4.add(a, f32x4.mul(f32x4.splat(4), c)));
  v128.store(o + 3 * s, f32x4.add(f32x4.add(b, f32x4.mul(f32x4.splat(8), e)), m5));
}

/** Output transform of one plane (image n, output channel k): y = A^T M A + bias (then ReLU). */
export function wino4OutTask(d: usize, p: i32): void {
  const K = di(d, W_C), OH = di(d, W_HP), OW = di(d, W_WP), TH = di(d, W_TH), TW = di(d, W_TW), T = di(d, W_T);
  const n = p / K, k = p - n * K;
  const y = du(d, W_X) + (<usize>p * <usize>(OH * OW) << 2);
  const s = du(d, W_XS) << 2;
  const m = du(d, W_V) + ((<usize>k * <usize>T + <usize>(n * TH * TW)) << 2);
  const biasPtr = du(d, W_BIAS);
  const bv = f32x4.splat(biasPtr != 0 ? load<f32>(biasPtr + (<usize>k << 2)) : 0);
  const relu = di(d, W_RELU) != 0;
  const z = f32x4.splat(0);
  const P = TH * TW;
  let g = 0;
  while (g < P) {
    // in place, so no rerun of tiles at a ragged end: a row's (or the plane's) last group may
    // have fewer lanes (lanes past nl are read, never written; M has 64 bytes of slack)
    const g0 = g;
    let nl: i32;
    if (TW >= 4) {
      const tw = g - (g / TW) * TW;
      nl = min(4, TW - tw);
    } else nl = min(4, P - g);
    g += nl;
    const o = m + (<usize>g0 << 2);
    // columns: S[i*6 + j] = sum_r A^T[i][r] M[r*6 + j], i < 4, in place
    for (let j = 0; j < 6; j++) {
      const q = o + <usize>j * s;
      const m0 = v128.load(q), m1 = v128.load(q + 6 * s), m2 = v128.load(q + 12 * s);
      const m3 = v128.load(q + 18 * s), m4 = v128.load(q + 24 * s), m5 = v128.load(q + 30 * s);
      if (nl == 4) at4(q, 6 * s, m0, m1, m2, m3, m4, m5);
      else atPart(q, 6 * s, nl, m0, m1, m2, m3, m4, m5);
    }
    const th0 = g0 / TW, tw0 = g0 - th0 * TW;
    const fast = nl == 4 && tw0 + 4 <= TW && 4 * (tw0 + 4) <= OW;
    for (let i = 0; i < 4; i++) {
      const q = o + <usize>(i * 6) * s;
      const s0 = v128.load(q), s1 = v128.load(q + s), s2 = v128.load(q + 2 * s), s3 = v128.load(q + 3 * s), s4 = v128.load(q + 4 * s), s5 = v128.load(q + 5 * s);
      const a = f32x4.add(s1, s2), b = f32x4.sub(s1, s2), c = f32x4.add(s3, s4), e = f32x4.sub(s3, s4);
      let y0 = f32x4.add(f32x4.add(f32x4.add(s0, a), c), bv);
      let y1 = f32x4.add(f32x4.add(b, f32x4.mul(f32x4.splat(2), e)), bv);
      let y2 = f32x4.add(f32x4.add(a, f32x4.mul(f32x4.splat(4), c)), bv);
      let y3 = f32x4.add(f32x4.add(f32x4.add(b, f32x4.mul(f32x4.splat(8), e)), s5), bv);
      if (relu) {
        // keeps NaN like relu (a NaN is not < 0)
        y0 = v128.andnot(y0, f32x4.lt(y0, z)); y1 = v128.andnot(y1, f32x4.lt(y1, z));
        y2 = v128.andnot(y2, f32x4.lt(y2, z)); y3 = v128.andnot(y3, f32x4.lt(y3, z));
      }
      if (fast) {
        const oh = 4 * th0 + i;
        if (oh < OH) {
          // transpose: lane l of y_c is column c of tile l; tile l's 4 columns are contiguous
          const t0 = v128.shuffle<f32>(y0, y1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(y2, y3, 0, 4, 1, 5);
          const t2 = v128.shuffle<f32>(y0, y1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(y2, y3, 2, 6, 3, 7);
          const row = y + (<usize>(oh * OW + 4 * tw0) << 2);
          v128.store(row, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
          v128.store(row, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 16);
          v128.store(row, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 32);
          v128.store(row, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 48);
        }
      } else {
        for (let l = 0; l < nl; l++) {
          const t = g0 + l, th = t / TW, tw = t - th * TW;
          const oh = 4 * th + i, ow = 4 * tw;
          if (oh >= OH) continue;
          const row = y + (<usize>(oh * OW + ow) << 2);
          storeLane(row, y0, l, ow < OW);
          storeLane(row + 4, y1, l, ow + 1 < OW);
          storeLane(row + 8, y2, l, ow + 2 < OW);
          storeLane(row + 12, y3, l, ow + 3 < OW);
        }
      }
    }
  }
}

@inline function storeLane(p: usize, v: v128, l: i32, ok: bool): void {
  if (!ok) return;
  let x: f32;
  if (l == 0) x = f32x4.extract_lane(v, 0);
  else if (l == 1) x = f32x4.extract_lane(v, 1);
  else if (l == 2) x = f32x4.extract_lane(v, 2);
  else x = f32x4.extract_lane(v, 3);
  store<f32>(p, x);
}

/** at4 storing only the first nl lanes (planes with fewer than 4 tiles). */
function atPart(o: usize, s: usize, nl: i32, m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128): void {
  const a = f32x4.add(m1, m2), b = f32x4.sub(m1, m2), c = f32x4.add(m3, m4), e = f32x4.sub(m3, m4);
  st(o, f32x4.add(f32x4.add(m0, a), c), nl);
  st(o + s, f32x4.add(b, f32x4.mul(f32x4.splat(2), e)), nl);
  st(o + 2 * s, f32x4.add(a, f32x4.mul(f32x4.splat(4), c)), nl);
  st(o + 3 * s, f32x4.add(f32x4.add(b, f32x4.mul(f32x4.splat(8), e)), m5), nl);
}
