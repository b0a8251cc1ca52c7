// Winograd F(2x2, 3x3) for 3x3 stride-1 dilation-1 convolutions: 16 multiplies per 2x2 output
// tile instead of 36 (2.25x fewer). Three transforms around 16 batched GEMMs:
//   V[xi][c][t] = (B^T d B)[xi]  for each input channel c and 4x4 input tile t (stride 2)
//   U[xi][k][c] = (G g G^T)[xi]  for each filter (k, c)
//   M[xi]       = U[xi] @ V[xi]  (the GEMM kernel, batched over xi and groups)
//   y tile      = A^T M A        (+ bias, optional ReLU)
// with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
// A^T = [1 1 1 0; 0 1 -1 -1]. Tiles of all images of a chunk are numbered t = n*TH*TW + th*TW + tw.
import { D_ARGS, di, du } from './desc';

export const W_X: i32 = D_ARGS + 0; // padded input (in) / output y (out)
export const W_V: i32 = D_ARGS + 1; // V (in) / M (out)
export const W_PLANES: i32 = D_ARGS + 2; // images*C (in) / images*K (out)
export const W_C: i32 = D_ARGS + 3; // channels of the transformed tensor
export const W_HP: i32 = D_ARGS + 4; // padded input plane, or output plane
export const W_WP: i32 = D_ARGS + 5;
export const W_TH: i32 = D_ARGS + 6;
export const W_TW: i32 = D_ARGS + 7;
export const W_T: i32 = D_ARGS + 8; // tiles in the chunk
export const W_BIAS: i32 = D_ARGS + 9;
export const W_RELU: i32 = D_ARGS + 10;
export const W_W: i32 = D_ARGS + 11; // weights (weight transform)
export const W_U: i32 = D_ARGS + 12;
export const W_K: i32 = D_ARGS + 13;
export const W_CG: i32 = D_ARGS + 14;
export const W_FLIP: i32 = D_ARGS + 15; // weight transform of the flipped transpose (backward data)
export const W_CO: i32 = D_ARGS + 16; // flip: input channels per group of the original weights
// Floats between transformed planes (xi) of V or M, and of U: a bit more than C*T, K*T, K*Cg so
// that the 16 (36) plane streams of a transform do not all map to the same L1 sets.
export const W_XS: i32 = D_ARGS + 17;
export const W_US: i32 = D_ARGS + 18;

/** (. B) of one row u = (x0, x1, x2, x3): (x0 - x2, x1 + x2, x2 - x1, x1 - x3), stored to 4 xi planes. */
@inline function rowT(o: usize, s: usize, u: v128): void {
  const x0 = f32x4.extract_lane(u, 0), x1 = f32x4.extract_lane(u, 1), x2 = f32x4.extract_lane(u, 2), x3 = f32x4.extract_lane(u, 3);
  store<f32>(o, x0 - x2);
  store<f32>(o + s, x1 + x2);
  store<f32>(o + 2 * s, x2 - x1);
  store<f32>(o + 3 * s, x1 - x3);
}

/** Input transform of one plane (image n, channel c) of the padded input. */
export function winoInTask(d: usize, p: i32): void {
  const C = di(d, W_C), Hp = di(d, W_HP), Wp = di(d, W_WP), TH = di(d, W_TH), TW = di(d, W_TW), T = di(d, W_T);
  const n = p / C, c = p - n * C;
  const x = du(d, W_X) + (<usize>p * <usize>(Hp * Wp) << 2);
  const xiStride = du(d, W_XS) << 2;
  let v = du(d, W_V) + ((<usize>c * <usize>T + <usize>(n * TH * TW)) << 2);
  const rowB = <usize>Wp << 2;
  for (let th = 0; th < TH; th++) {
    const r0 = x + (<usize>(2 * th) * <usize>Wp << 2);
    let tw = 0;
    // 4 tiles at a time; a ragged end reruns the last 4 (rewriting the same values)
    if (TW >= 4) for (;;) {
      // 4 tiles at once: lanes are tiles tw..tw+3; columns 2tw + j
      const base = r0 + (<usize>(2 * tw) << 2);
      // rows i = 0..3 of the 4x4 patches, each column-transformed (d B): e0 = d0-d2, e1 = d1+d2, e2 = d2-d1, e3 = d1-d3
      let p0 = base;
      let a00: v128, a01: v128, a02: v128, a03: v128;
      let a10: v128, a11: v128, a12: v128, a13: v128;
      let a20: v128, a21: v128, a22: v128, a23: v128;
      let a30: v128, a31: v128, a32: v128, a33: v128;
      {
        const lo = v128.load(p0), hi = v128.load(p0, 16), lo2 = v128.load(p0, 8), hi2 = v128.load(p0, 24);
        const d0 = v128.shuffle<f32>(lo, hi, 0, 2, 4, 6), d1 = v128.shuffle<f32>(lo, hi, 1, 3, 5, 7);
        const d2 = v128.shuffle<f32>(lo2, hi2, 0, 2, 4, 6), d3 = v128.shuffle<f32>(lo2, hi2, 1, 3, 5, 7);
        a00 = f32x4.sub(d0, d2); a01 = f32x4.add(d1, d2); a02 = f32x4.sub(d2, d1); a03 = f32x4.sub(d1, d3);
      }
      p0 += rowB;
      {
        const lo = v128.load(p0), hi = v128.load(p0, 16), lo2 = v128.load(p0, 8), hi2 = v128.load(p0, 24);
        const d0 = v128.shuffle<f32>(lo, hi, 0, 2, 4, 6), d1 = v128.shuffle<f32>(lo, hi, 1, 3, 5, 7);
        const d2 = v128.shuffle<f32>(lo2, hi2, 0, 2, 4, 6), d3 = v128.shuffle<f32>(lo2, hi2, 1, 3, 5, 7);
        a10 = f32x4.sub(d0, d2); a11 = f32x4.add(d1, d2); a12 = f32x4.sub(d2, d1); a13 = f32x4.sub(d1, d3);
      }
      p0 += rowB;
      {
        const lo = v128.load(p0), hi = v128.load(p0, 16), lo2 = v128.load(p0, 8), hi2 = v128.load(p0, 24);
        const d0 = v128.shuffle<f32>(lo, hi, 0, 2, 4, 6), d1 = v128.shuffle<f32>(lo, hi, 1, 3, 5, 7);
        const d2 = v128.shuffle<f32>(lo2, hi2, 0, 2, 4, 6), d3 = v128.shuffle<f32>(lo2, hi2, 1, 3, 5, 7);
        a20 = f32x4.sub(d0, d2); a21 = f32x4.add(d1, d2); a22 = f32x4.sub(d2, d1); a23 = f32x4.sub(d1, d3);
      }
      p0 += rowB;
      {
        const lo = v128.load(p0), hi = v128.load(p0, 16), lo2 = v128.load(p0, 8), hi2 = v128.load(p0, 24);
        const d0 = v128.shuffle<f32>(lo, hi, 0, 2, 4, 6), d1 = v128.shuffle<f32>(lo, hi, 1, 3, 5, 7);
        const d2 = v128.shuffle<f32>(lo2, hi2, 0, 2, 4, 6), d3 = v128.shuffle<f32>(lo2, hi2, 1, 3, 5, 7);
        a30 = f32x4.sub(d0, d2); a31 = f32x4.add(d1, d2); a32 = f32x4.sub(d2, d1); a33 = f32x4.sub(d1, d3);
      }
      // row transform (B^T .): r0 = a0-a2, r1 = a1+a2, r2 = a2-a1, r3 = a1-a3; V[xi = i*4 + j]
      const o = v + (<usize>tw << 2);
      v128.store(o, f32x4.sub(a00, a20));
      v128.store(o + xiStride, f32x4.sub(a01, a21));
      v128.store(o + 2 * xiStride, f32x4.sub(a02, a22));
      v128.store(o + 3 * xiStride, f32x4.sub(a03, a23));
      v128.store(o + 4 * xiStride, f32x4.add(a10, a20));
      v128.store(o + 5 * xiStride, f32x4.add(a11, a21));
      v128.store(o + 6 * xiStride, f32x4.add(a12, a22));
      v128.store(o + 7 * xiStride, f32x4.add(a13, a23));
      v128.store(o + 8 * xiStride, f32x4.sub(a20, a10));
      v128.store(o + 9 * xiStride, f32x4.sub(a21, a11));
      v128.store(o + 10 * xiStride, f32x4.sub(a22, a12));
      v128.store(o + 11 * xiStride, f32x4.sub(a23, a13));
      v128.store(o + 12 * xiStride, f32x4.sub(a10, a30));
      v128.store(o + 13 * xiStride, f32x4.sub(a11, a31));
      v128.store(o + 14 * xiStride, f32x4.sub(a12, a32));
      v128.store(o + 15 * xiStride, f32x4.sub(a13, a33));
      if (tw + 4 >= TW) { tw = TW; break; }
      tw = min(tw + 4, TW - 4);
    }
    for (; tw < TW; tw++) {
      // single tile (rows narrower than 4 tiles), in registers
      const base = r0 + (<usize>(2 * tw) << 2);
      const o = v + (<usize>tw << 2);
      const r1 = base + rowB, r2 = r1 + rowB, r3 = r2 + rowB;
      const q0 = f32x4.sub(v128.load(base), v128.load(r2)); // rows of B^T d, lanes = columns j
      const q1 = f32x4.add(v128.load(r1), v128.load(r2));
      const q2 = f32x4.sub(v128.load(r2), v128.load(r1));
      const q3 = f32x4.sub(v128.load(r1), v128.load(r3));
      rowT(o, xiStride, q0);
      rowT(o + 4 * xiStride, xiStride, q1);
      rowT(o + 8 * xiStride, xiStride, q2);
      rowT(o + 12 * xiStride, xiStride, q3);
    }
    v += <usize>TW << 2;
  }
}

const HALF: f32 = 0.5;

/** Weight transform of filters k (one task per output channel row of U). */
export function winoWeightTask(d: usize, k: i32): void {
  const K = di(d, W_K), Cg = di(d, W_CG), flip = di(d, W_FLIP) != 0, Co = di(d, W_CO);
  const w = du(d, W_W), u = du(d, W_U);
  const xiStride = du(d, W_US) << 2;
  for (let c = 0; c < Cg; c++) {
    // forward: g = w[k, c]. Flipped transpose (backward data as a convolution of dy): k is an
    // input channel of the original w[Ko, Co, 3, 3] and c an output channel within its group,
    // g = w[grp*Cg + c, k % Co] rotated by 180 degrees.
    let src: usize;
    if (!flip) src = w + (<usize>(k * Cg + c) * 9 << 2);
    else {
      const grp = k / Co, cl = k - grp * Co;
      src = w + (<usize>(((grp * Cg + c) * Co + cl) * 9) << 2);
    }
    let g00 = load<f32>(src), g01 = load<f32>(src, 4), g02 = load<f32>(src, 8);
    let g10 = load<f32>(src, 12), g11 = load<f32>(src, 16), g12 = load<f32>(src, 20);
    let g20 = load<f32>(src, 24), g21 = load<f32>(src, 28), g22 = load<f32>(src, 32);
    if (flip) {
      let t = g00; g00 = g22; g22 = t; t = g01; g01 = g21; g21 = t; t = g02; g02 = g20; g20 = t;
      t = g10; g10 = g12; g12 = t;
    }
    // G g: rows [g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2] (per column)
    const h00 = g00, h01 = g01, h02 = g02;
    const h10 = HALF * (g00 + g10 + g20), h11 = HALF * (g01 + g11 + g21), h12 = HALF * (g02 + g12 + g22);
    const h20 = HALF * (g00 - g10 + g20), h21 = HALF * (g01 - g11 + g21), h22 = HALF * (g02 - g12 + g22);
    const h30 = g20, h31 = g21, h32 = g22;
    const o = u + (<usize>(k * Cg + c) << 2);
    // (G g) G^T: for each row i: [h0, (h0+h1+h2)/2, (h0-h1+h2)/2, h2]
    store<f32>(o, h00);
    store<f32>(o + xiStride, HALF * (h00 + h01 + h02));
    store<f32>(o + 2 * xiStride, HALF * (h00 - h01 + h02));
    store<f32>(o + 3 * xiStride, h02);
    store<f32>(o + 4 * xiStride, h10);
    store<f32>(o + 5 * xiStride, HALF * (h10 + h11 + h12));
    store<f32>(o + 6 * xiStride, HALF * (h10 - h11 + h12));
    store<f32>(o + 7 * xiStride, h12);
    store<f32>(o + 8 * xiStride, h20);
    store<f32>(o + 9 * xiStride, HALF * (h20 + h21 + h22));
    store<f32>(o + 10 * xiStride, HALF * (h20 - h21 + h22));
    store<f32>(o + 11 * xiStride, h22);
    store<f32>(o + 12 * xiStride, h30);
    store<f32>(o + 13 * xiStride, HALF * (h30 + h31 + h32));
    store<f32>(o + 14 * xiStride, HALF * (h30 - h31 + h32));
    store<f32>(o + 15 * xiStride, h32);
  }
}

/** Output transform of one plane (image n, output channel k): y = A^T M A + bias. */
export function winoOutTask(d: usize, p: i32): void {
  const K = di(d, W_C), OH = di(d, W_HP), OW = di(d, W_WP), TH = di(d, W_TH), TW = di(d, W_TW), T = di(d, W_T);
  const n = p / K, k = p - n * K;
  const y = du(d, W_X) + (<usize>p * <usize>(OH * OW) << 2);
  const xiStride = du(d, W_XS) << 2;
  let m = du(d, W_V) + ((<usize>k * <usize>T + <usize>(n * TH * TW)) << 2);
  const biasPtr = du(d, W_BIAS);
  const b: f32 = biasPtr != 0 ? load<f32>(biasPtr + (<usize>k << 2)) : 0;
  const relu = di(d, W_RELU) != 0;
  const bv = f32x4.splat(b), z = f32x4.splat(0);
  for (let th = 0; th < TH; th++) {
    const oh = 2 * th;
    const two = oh + 1 < OH;
    const y0 = y + (<usize>(oh * OW) << 2), y1 = y0 + (<usize>OW << 2);
    let tw = 0;
    // 4 tiles at a time; with OW even a ragged end reruns the last 4 (same values again)
    const vecEnd = (OW & 1) == 0 ? TW : TW - 1;
    if (vecEnd >= 4) for (;;) {
      const q = m + (<usize>tw << 2);
      // A^T M: s_j = M0j + M1j + M2j, t_j = M1j - M2j - M3j (j = columns 0..3), then (.) A
      const m00 = v128.load(q), m01 = v128.load(q + xiStride), m02 = v128.load(q + 2 * xiStride), m03 = v128.load(q + 3 * xiStride);
      const m10 = v128.load(q + 4 * xiStride), m11 = v128.load(q + 5 * xiStride), m12 = v128.load(q + 6 * xiStride), m13 = v128.load(q + 7 * xiStride);
      const m20 = v128.load(q + 8 * xiStride), m21 = v128.load(q + 9 * xiStride), m22 = v128.load(q + 10 * xiStride), m23 = v128.load(q + 11 * xiStride);
      const m30 = v128.load(q + 12 * xiStride), m31 = v128.load(q + 13 * xiStride), m32 = v128.load(q + 14 * xiStride), m33 = v128.load(q + 15 * xiStride);
      const s0 = f32x4.add(f32x4.add(m00, m10), m20), s1 = f32x4.add(f32x4.add(m01, m11), m21);
      const s2 = f32x4.add(f32x4.add(m02, m12), m22), s3 = f32x4.add(f32x4.add(m03, m13), m23);
      const t0 = f32x4.sub(f32x4.sub(m10, m20), m30), t1 = f32x4.sub(f32x4.sub(m11, m21), m31);
      const t2 = f32x4.sub(f32x4.sub(m12, m22), m32), t3 = f32x4.sub(f32x4.sub(m13, m23), m33);
      let y00 = f32x4.add(f32x4.add(f32x4.add(s0, s1), s2), bv), y01 = f32x4.add(f32x4.sub(f32x4.sub(s1, s2), s3), bv);
      let y10 = f32x4.add(f32x4.add(f32x4.add(t0, t1), t2), bv), y11 = f32x4.add(f32x4.sub(f32x4.sub(t1, t2), t3), bv);
      if (relu) {
        y00 = v128.andnot(y00, f32x4.lt(y00, z)); y01 = v128.andnot(y01, f32x4.lt(y01, z));
        y10 = v128.andnot(y10, f32x4.lt(y10, z)); y11 = v128.andnot(y11, f32x4.lt(y11, z));
      }
      const o = <usize>(2 * tw) << 2;
      v128.store(y0 + o, v128.shuffle<f32>(y00, y01, 0, 4, 1, 5));
      v128.store(y0 + o, v128.shuffle<f32>(y00, y01, 2, 6, 3, 7), 16);
      if (two) {
        v128.store(y1 + o, v128.shuffle<f32>(y10, y11, 0, 4, 1, 5));
        v128.store(y1 + o, v128.shuffle<f32>(y10, y11, 2, 6, 3, 7), 16);
      }
      if (tw + 4 >= vecEnd) { tw += 4; break; }
      tw = min(tw + 4, vecEnd - 4);
    }
    for (; tw < TW; tw++) {
      const q = m + (<usize>tw << 2);
      let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0, t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
      for (let j = 0; j < 4; j++) {
        const a0 = load<f32>(q + <usize>j * xiStride), a1 = load<f32>(q + <usize>(4 + j) * xiStride);
        const a2 = load<f32>(q + <usize>(8 + j) * xiStride), a3 = load<f32>(q + <usize>(12 + j) * xiStride);
        const sj = a0 + a1 + a2, tj = a1 - a2 - a3;
        if (j == 0) { s0 = sj; t0 = tj; } else if (j == 1) { s1 = sj; t1 = tj; } else if (j == 2) { s2 = sj; t2 = tj; } else { s3 = sj; t3 = tj; }
      }
      let v00 = s0 + s1 + s2 + b, v01 = s1 - s2 - s3 + b, v10 = t0 + t1 + t2 + b, v11 = t1 - t2 - t3 + b;
      if (relu) { if (v00 < 0) v00 = 0; if (v01 < 0) v01 = 0; if (v10 < 0) v10 = 0; if (v11 < 0) v11 = 0; }
      const ow = 2 * tw;
      store<f32>(y0 + (<usize>ow << 2), v00);
      if (ow + 1 < OW) store<f32>(y0 + (<usize>(ow + 1) << 2), v01);
      if (two) {
        store<f32>(y1 + (<usize>ow << 2), v10);
        if (ow + 1 < OW) store<f32>(y1 + (<usize>(ow + 1) << 2), v11);
      }
    }
    m += <usize>TW << 2;
  }
}

// ---- weight gradient: dU[xi] = sum over tiles of (A dY A^T)[xi] * V[xi] (16 GEMMs), dW = G^T dU G

/** Output-gradient transform of one plane (image n, channel k): Mdy[xi][k][t] = (A dy_t A^T)[xi]. */
export function winoDyTask(d: usize, p: i32): void {
  const K = di(d, W_C), OH = di(d, W_HP), OW = di(d, W_WP), TH = di(d, W_TH), TW = di(d, W_TW), T = di(d, W_T);
  const n = p / K, k = p - n * K;
  const dy = du(d, W_X) + (<usize>p * <usize>(OH * OW) << 2);
  const xiStride = du(d, W_XS) << 2;
  let m = du(d, W_V) + ((<usize>k * <usize>T + <usize>(n * TH * TW)) << 2);
  for (let th = 0; th < TH; th++) {
    const oh = 2 * th;
    const two = oh + 1 < OH;
    const r0 = dy + (<usize>(oh * OW) << 2), r1 = r0 + (<usize>OW << 2);
    let tw = 0;
    const vecEnd = (OW & 1) == 0 ? TW : TW - 1;
    if (vecEnd >= 4) for (;;) {
      const o = <usize>(2 * tw) << 2;
      const x0 = v128.load(r0 + o), x1 = v128.load(r0 + o, 16);
      const a = v128.shuffle<f32>(x0, x1, 0, 2, 4, 6), b = v128.shuffle<f32>(x0, x1, 1, 3, 5, 7);
      let c = f32x4.splat(0), e = c;
      if (two) {
        const y0 = v128.load(r1 + o), y1 = v128.load(r1 + o, 16);
        c = v128.shuffle<f32>(y0, y1, 0, 2, 4, 6); e = v128.shuffle<f32>(y0, y1, 1, 3, 5, 7);
      }
      storeDy4(m + (<usize>tw << 2), xiStride, a, b, c, e);
      if (tw + 4 >= vecEnd) { tw += 4; break; }
      tw = min(tw + 4, vecEnd - 4);
    }
    for (; tw < TW; tw++) {
      const ow = 2 * tw;
      const a = load<f32>(r0 + (<usize>ow << 2));
      const b: f32 = ow + 1 < OW ? load<f32>(r0 + (<usize>(ow + 1) << 2)) : 0;
      const c: f32 = two ? load<f32>(r1 + (<usize>ow << 2)) : 0;
      const e: f32 = two && ow + 1 < OW ? load<f32>(r1 + (<usize>(ow + 1) << 2)) : 0;
      storeDy1(m + (<usize>tw << 2), xiStride, a, b, c, e);
    }
    m += <usize>TW << 2;
  }
}

@inline function storeDy4(o: usize, s: usize, a: v128, b: v128, c: v128, e: v128): void {
  // rows of A d: [a, b], [a+c, b+e], [a-c, b-e], [-c, -e]; each row [x, y] -> [x, x+y, x-y, -y]
  const p = f32x4.add(a, c), q = f32x4.add(b, e), r = f32x4.sub(a, c), t = f32x4.sub(b, e);
  const nc = f32x4.neg(c), ne = f32x4.neg(e);
  v128.store(o, a); v128.store(o + s, f32x4.add(a, b)); v128.store(o + 2 * s, f32x4.sub(a, b)); v128.store(o + 3 * s, f32x4.neg(b));
  v128.store(o + 4 * s, p); v128.store(o + 5 * s, f32x4.add(p, q)); v128.store(o + 6 * s, f32x4.sub(p, q)); v128.store(o + 7 * s, f32x4.neg(q));
  v128.store(o + 8 * s, r); v128.store(o + 9 * s, f32x4.add(r, t)); v128.store(o + 10 * s, f32x4.sub(r, t)); v128.store(o + 11 * s, f32x4.neg(t));
  v128.store(o + 12 * s, nc); v128.store(o + 13 * s, f32x4.add(nc, ne)); v128.store(o + 14 * s, f32x4.sub(nc, ne)); v128.store(o + 15 * s, e);
}

@inline function storeDy1(o: usize, s: usize, a: f32, b: f32, c: f32, e: f32): void {
  const p = a + c, q = b + e, r = a - c, t = b - e;
  store<f32>(o, a); store<f32>(o + s, a + b); store<f32>(o + 2 * s, a - b); store<f32>(o + 3 * s, -b);
  store<f32>(o + 4 * s, p); store<f32>(o + 5 * s, p + q); store<f32>(o + 6 * s, p - q); store<f32>(o + 7 * s, -q);
  store<f32>(o + 8 * s, r); store<f32>(o + 9 * s, r + t); store<f32>(o + 10 * s, r - t); store<f32>(o + 11 * s, -t);
  store<f32>(o + 12 * s, -c); store<f32>(o + 13 * s, -c - e); store<f32>(o + 14 * s, e - c); store<f32>(o + 15 * s, e);
}

@inline function hrow(o: usize, s: usize, j: i32): v128 {
  // column j of dU as the lanes (u0, u1, u2, u3) = dU[0*4+j], dU[4+j], dU[8+j], dU[12+j]
  return f32x4(load<f32>(o + <usize>j * s), load<f32>(o + <usize>(4 + j) * s),
               load<f32>(o + <usize>(8 + j) * s), load<f32>(o + <usize>(12 + j) * s));
}

/** dW[k, c] = G^T dU[k, c] G for one filter row k (all c of its group); dU is [16][K][Cg]. */
export function winoWgradTask(d: usize, k: i32): void {
  const K = di(d, W_K), Cg = di(d, W_CG);
  const u = du(d, W_U), w = du(d, W_W);
  const s = <usize>K * <usize>Cg << 2;
  for (let c = 0; c < Cg; c++) {
    const o = u + (<usize>(k * Cg + c) << 2);
    // H = G^T dU (3x4); column j of H from column j of dU: (u0 + m, (u1 - u2)/2, m + u3), m = (u1 + u2)/2
    let h00: f32 = 0, h01: f32 = 0, h02: f32 = 0, h03: f32 = 0;
    let h10: f32 = 0, h11: f32 = 0, h12: f32 = 0, h13: f32 = 0;
    let h20: f32 = 0, h21: f32 = 0, h22: f32 = 0, h23: f32 = 0;
    for (let j = 0; j < 4; j++) {
      const col = hrow(o, s, j);
      const u0 = f32x4.extract_lane(col, 0), u1 = f32x4.extract_lane(col, 1), u2 = f32x4.extract_lane(col, 2), u3 = f32x4.extract_lane(col, 3);
      const m = HALF * (u1 + u2);
      const a = u0 + m, b = HALF * (u1 - u2), e = m + u3;
      if (j == 0) { h00 = a; h10 = b; h20 = e; } else if (j == 1) { h01 = a; h11 = b; h21 = e; }
      else if (j == 2) { h02 = a; h12 = b; h22 = e; } else { h03 = a; h13 = b; h23 = e; }
    }
    const out = w + (<usize>((k * Cg + c) * 9) << 2);
    wrow(out, h00, h01, h02, h03);
    wrow(out + 12, h10, h11, h12, h13);
    wrow(out + 24, h20, h21, h22, h23);
  }
}

/** A row h of H times G: (x0 + m, (x1 - x2)/2, m + x3), m = (x1 + x2)/2. */
@inline function wrow(out: usize, x0: f32, x1: f32, x2: f32, x3: f32): void {
  const m = HALF * (x1 + x2);
  store<f32>(out, x0 + m);
  store<f32>(out, HALF * (x1 - x2), 4);
  store<f32>(out, m + x3, 8);
}
