// SGEMM in SIMD128: packed panels, a 2x16 register-blocked micro-kernel (8 f32x4 accumulators),
// cache blocking over K, and a task = one (batch, M-tile, N-tile) block of the output so that
// threads split the work by output tiles.
//
// Why 2x16: V8's register allocator (x64, 15 usable xmm registers) keeps 8 accumulators, 4 B
// vectors, 2 A splats and a product in registers with no spills; bigger tiles (4x8 excepted)
// spill and run at half speed. Measured in the kernel microbenchmark: 2x16 ~60 GFLOP/s in L1,
// 4x8 ~48, 6x8/4x12/3x16 ~28.
//
// Operand modes:
//   A: 0 = row-major [M,K] (lda), 1 = transposed, stored [K,M] (lda),
//      2 = conv weights w[Kg, Cg, R, S] read as the flipped transpose A[c, k*RS + rs] =
//          w[k, c, RS-1-rs] (backward-data as a forward convolution, without a flip pass)
//      3 = rows of several images: A[i, n*L + l] = a[n*AIMG + i*lda + l] (dy [N, K, L] of a
//          filter gradient, with the K index running over the images of a K segment)
//      4 = as 3 over a sub-rectangle of each plane: l = oh*OW + ow (L, OW: the sub-rectangle's)
//          at a[n*AIMG + i*lda + COFF + oh*COW + ow] (the per-tap filter gradient on small maps)
//   B: 0 = row-major [K,N] (ldb), 1 = transposed, stored [N,K] (ldb),
//      2 = implicit im2col of a (padded) NCHW input: B[crs, j], j = n*L + oh*OW + ow
//      3 = implicit transposed im2col of several images: B[n*L + l, crs] (image n at n*XIMG)
//   C: 0 = row-major [M,N] (ldc), 1 = conv scatter: column j -> (j / L) * CIMG + j % L,
//      2 = conv scatter into a sub-rectangle of the planes (G_COFF, G_COW)
import { D_ARGS, D_COUNTER, D_NTASKS, D_SCRATCH, D_SCRATCH_STRIDE, di, du } from './desc';

export const G_M: i32 = D_ARGS + 0;
export const G_N: i32 = D_ARGS + 1;
export const G_K: i32 = D_ARGS + 2;
export const G_A: i32 = D_ARGS + 3;
export const G_LDA: i32 = D_ARGS + 4;
export const G_ATRANS: i32 = D_ARGS + 5;
export const G_B: i32 = D_ARGS + 6;
export const G_LDB: i32 = D_ARGS + 7;
export const G_BMODE: i32 = D_ARGS + 8;
export const G_C: i32 = D_ARGS + 9;
export const G_LDC: i32 = D_ARGS + 10;
export const G_ACC: i32 = D_ARGS + 11;
export const G_BIAS: i32 = D_ARGS + 12;
export const G_RELU: i32 = D_ARGS + 13;
export const G_MCT: i32 = D_ARGS + 14;
export const G_NCT: i32 = D_ARGS + 15;
export const G_MTILES: i32 = D_ARGS + 16;
export const G_NTILES: i32 = D_ARGS + 17;
export const G_NB1: i32 = D_ARGS + 18;
export const G_NB2: i32 = D_ARGS + 19;
export const G_AS1: i32 = D_ARGS + 20;
export const G_AS2: i32 = D_ARGS + 21;
export const G_BS1: i32 = D_ARGS + 22;
export const G_BS2: i32 = D_ARGS + 23;
export const G_CS1: i32 = D_ARGS + 24;
export const G_CS2: i32 = D_ARGS + 25;
export const G_KSEGS: i32 = D_ARGS + 26;
export const G_ASEG: i32 = D_ARGS + 27;
export const G_BSEG: i32 = D_ARGS + 28;
export const G_CMODE: i32 = D_ARGS + 29;
export const G_L: i32 = D_ARGS + 30;
export const G_OW: i32 = D_ARGS + 31;
export const G_XIMG: i32 = D_ARGS + 32;
export const G_CIMG: i32 = D_ARGS + 33;
export const G_WP: i32 = D_ARGS + 34;
export const G_HWP: i32 = D_ARGS + 35;
export const G_SH: i32 = D_ARGS + 36;
export const G_SW: i32 = D_ARGS + 37;
export const G_DH: i32 = D_ARGS + 38;
export const G_DW: i32 = D_ARGS + 39;
export const G_R: i32 = D_ARGS + 40;
export const G_S: i32 = D_ARGS + 41;
export const G_KC: i32 = D_ARGS + 42;
export const G_BIASS2: i32 = D_ARGS + 43;
export const G_ACG: i32 = D_ARGS + 44; // A mode 2: channels per group
export const G_ARS: i32 = D_ARGS + 45; // A mode 2: R*S
export const G_KSPLIT: i32 = D_ARGS + 46; // K segments split over this many tasks per output tile
export const G_PART: i32 = D_ARGS + 47; // partial outputs of splits 1.. (same layout as C)
export const G_PARTS: i32 = D_ARGS + 48; // floats between partial outputs
export const G_PREPACK: i32 = D_ARGS + 49; // 0, or B panels packed once by packBTask (shared by the M tiles)
export const G_NK: i32 = D_ARGS + 50; // K chunks per segment (prepacked layout)
// 0, or A panels packed once (constant weights, kept by the JS side): batch entry b, K chunk at k0,
// rows i0.. at floats b*Mp*K + Mp*k0 + i0*kc (Mp = M rounded up to even), as packA lays them out.
export const G_APACK: i32 = D_ARGS + 51;
// K of the last K segment when it is shorter than G_K (0: all segments have G_K)
export const G_KLAST: i32 = D_ARGS + 52;
// A mode 3: floats between consecutive images of A (rows of L floats: the K index kk = n*L + l)
export const G_AIMG: i32 = D_ARGS + 53;
// C mode 2: output sub-rectangle (L = OHt*OW columns per image, OW = its width) at plane offset
// G_COFF of planes G_COW wide: column j = n*L + oh*OW + ow -> n*CIMG + COFF + oh*COW + ow
export const G_COFF: i32 = D_ARGS + 54;
export const G_COW: i32 = D_ARGS + 55;

// Per-thread scratch layout (bytes).
const S_POFF: usize = 0; // i32[16]
const S_COFF: usize = 64; // i32[16]: packBConvT's column offsets, then macro's C column offsets
const S_TMP: usize = 128; // f32[2*16]
const S_PACKA: usize = 256;
export const MCMAX: i32 = 256;
// K chunk: 256 costs nothing measurable against 320 and sums in shorter runs (more accurate).
export const KCMAX: i32 = 256;
export const NCMAX: i32 = 512;
const S_PACKB: usize = S_PACKA + <usize>(MCMAX * KCMAX * 4);
export const SCRATCH_BYTES: i32 = <i32>S_PACKB + NCMAX * KCMAX * 4;

/**
 * c + a * b. The relaxed-SIMD build (bench/relaxed-simd.ts; asc --enable relaxed-simd) uses
 * f32x4.relaxed_madd, a fused multiply-add where the hardware has one (or mul + add); the
 * default build is SIMD128's mul + add, and this constant folds the other branch away.
 */
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * C[0..2, 0..16] (+)= bias + Apanel[2 x kc] @ Bpanel[kc x 16], rows ldcB bytes apart.
 * ap: kc pairs (a0,a1); bp: kc rows of 16 floats.
 */
function kernel2x16(ap: usize, bp: usize, kc: i32, c: usize, ldcB: usize, add: bool,
                    b0: f32, b1: f32, relu: bool): void {
  let c00 = f32x4.splat(b0), c01 = c00, c02 = c00, c03 = c00;
  let c10 = f32x4.splat(b1), c11 = c10, c12 = c10, c13 = c10;
  for (let k = 0; k < kc; k++) {
    const v0 = v128.load(bp), v1 = v128.load(bp, 16), v2 = v128.load(bp, 32), v3 = v128.load(bp, 48);
    const a0 = v128.load32_splat(ap);
    c00 = madd(a0, v0, c00);
    c01 = madd(a0, v1, c01);
    c02 = madd(a0, v2, c02);
    c03 = madd(a0, v3, c03);
    const a1 = v128.load32_splat(ap, 4);
    c10 = madd(a1, v0, c10);
    c11 = madd(a1, v1, c11);
    c12 = madd(a1, v2, c12);
    c13 = madd(a1, v3, c13);
    ap += 8;
    bp += 64;
  }
  const c1 = c + ldcB;
  if (add) {
    c00 = f32x4.add(c00, v128.load(c)); c01 = f32x4.add(c01, v128.load(c, 16));
    c02 = f32x4.add(c02, v128.load(c, 32)); c03 = f32x4.add(c03, v128.load(c, 48));
    c10 = f32x4.add(c10, v128.load(c1)); c11 = f32x4.add(c11, v128.load(c1, 16));
    c12 = f32x4.add(c12, v128.load(c1, 32)); c13 = f32x4.add(c13, v128.load(c1, 48));
  }
  if (relu) {
    const z = f32x4.splat(0);
    c00 = f32x4.max(c00, z); c01 = f32x4.max(c01, z); c02 = f32x4.max(c02, z); c03 = f32x4.max(c03, z);
    c10 = f32x4.max(c10, z); c11 = f32x4.max(c11, z); c12 = f32x4.max(c12, z); c13 = f32x4.max(c13, z);
  }
  v128.store(c, c00); v128.store(c, c01, 16); v128.store(c, c02, 32); v128.store(c, c03, 48);
  v128.store(c1, c10); v128.store(c1, c11, 16); v128.store(c1, c12, 32); v128.store(c1, c13, 48);
}

/**
 * The last panel of a row when it has at most 8 (nv = 2) or 4 (nv = 1) valid columns: the same
 * packed panels (16 floats per k), only the first nv vectors computed; into tmp (rows 64 bytes apart).
 * Batch-1 maps have such tails: 7x7 = 49 = 3*16 + 1 columns, 14x14 = 196 = 12*16 + 4.
 */
function kernel2xNarrow(ap: usize, bp: usize, kc: i32, tmp: usize, b0: f32, b1: f32, nv: i32): void {
  let c00 = f32x4.splat(b0), c01 = c00;
  let c10 = f32x4.splat(b1), c11 = c10;
  if (nv == 1) {
    for (let k = 0; k < kc; k++) {
      const v0 = v128.load(bp);
      c00 = f32x4.add(c00, f32x4.mul(v128.load32_splat(ap), v0));
      c10 = f32x4.add(c10, f32x4.mul(v128.load32_splat(ap, 4), v0));
      ap += 8;
      bp += 64;
    }
  } else {
    for (let k = 0; k < kc; k++) {
      const v0 = v128.load(bp), v1 = v128.load(bp, 16);
      const a0 = v128.load32_splat(ap), a1 = v128.load32_splat(ap, 4);
      c00 = f32x4.add(c00, f32x4.mul(a0, v0));
      c01 = f32x4.add(c01, f32x4.mul(a0, v1));
      c10 = f32x4.add(c10, f32x4.mul(a1, v0));
      c11 = f32x4.add(c11, f32x4.mul(a1, v1));
      ap += 8;
      bp += 64;
    }
  }
  v128.store(tmp, c00); v128.store(tmp, c01, 16);
  v128.store(tmp, c10, 64); v128.store(tmp, c11, 80);
}

/** A tile rows i0.. (mc rows valid of M), K range [k0, k0+kc) -> panels of 2 rows. */
function packA(a: usize, lda: i32, trans: bool, i0: i32, mc: i32, k0: i32, kc: i32, dst: usize): void {
  const mcp = (mc + 1) & ~1;
  for (let p = 0; p < mcp; p += 2) {
    const i = i0 + p;
    const two = p + 1 < mc;
    if (!trans) {
      let r0 = a + ((<usize>i * <usize>lda + <usize>k0) << 2);
      if (two) {
        let r1 = r0 + (<usize>lda << 2);
        let k = 0;
        for (; k + 4 <= kc; k += 4) {
          const x = v128.load(r0), y = v128.load(r1);
          v128.store(dst, v128.shuffle<f32>(x, y, 0, 4, 1, 5));
          v128.store(dst, v128.shuffle<f32>(x, y, 2, 6, 3, 7), 16);
          r0 += 16; r1 += 16; dst += 32;
        }
        for (; k < kc; k++) {
          store<f32>(dst, load<f32>(r0)); store<f32>(dst, load<f32>(r1), 4);
          r0 += 4; r1 += 4; dst += 8;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          store<f32>(dst, load<f32>(r0)); store<f32>(dst, 0, 4);
          r0 += 4; dst += 8;
        }
      }
    } else {
      let src = a + ((<usize>k0 * <usize>lda + <usize>i) << 2);
      const step = <usize>lda << 2;
      if (two) {
        for (let k = 0; k < kc; k++) {
          store<u64>(dst, load<u64>(src));
          src += step; dst += 8;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          store<f32>(dst, load<f32>(src)); store<f32>(dst, 0, 4);
          src += step; dst += 8;
        }
      }
    }
  }
}

/** A mode 3: rows i0.. of A[i, n*L + l] = a[n*aimg + i*lda + l], K range [k0, k0+kc) -> panels of 2 rows. */
function packASeg(a: usize, lda: i32, L: i32, aimg: i32, i0: i32, mc: i32, k0: i32, kc: i32, dst: usize): void {
  const mcp = (mc + 1) & ~1;
  for (let p = 0; p < mcp; p += 2) {
    const i = i0 + p;
    const two = p + 1 < mc;
    let n = k0 / L, l = k0 - n * L;
    let left = kc;
    while (left > 0) {
      const run = min(L - l, left);
      let r0 = a + ((<usize>n * <usize>aimg + <usize>i * <usize>lda + <usize>l) << 2);
      if (two) {
        let r1 = r0 + (<usize>lda << 2);
        let k = 0;
        for (; k + 4 <= run; k += 4) {
          const x = v128.load(r0), y = v128.load(r1);
          v128.store(dst, v128.shuffle<f32>(x, y, 0, 4, 1, 5));
          v128.store(dst, v128.shuffle<f32>(x, y, 2, 6, 3, 7), 16);
          r0 += 16; r1 += 16; dst += 32;
        }
        for (; k < run; k++) {
          store<f32>(dst, load<f32>(r0)); store<f32>(dst, load<f32>(r1), 4);
          r0 += 4; r1 += 4; dst += 8;
        }
      } else {
        for (let k = 0; k < run; k++) {
          store<f32>(dst, load<f32>(r0)); store<f32>(dst, 0, 4);
          r0 += 4; dst += 8;
        }
      }
      left -= run;
      l = 0;
      n++;
    }
  }
}

/** A mode 4: rows i0.. of A[i, n*L + oh*OW + ow] = a[n*aimg + i*lda + coff + oh*cow + ow]. */
function packASub(d: usize, a: usize, lda: i32, i0: i32, mc: i32, k0: i32, kc: i32, dst: usize): void {
  const L = di(d, G_L), OW = di(d, G_OW), aimg = di(d, G_AIMG), coff = di(d, G_COFF), cow = di(d, G_COW);
  const mcp = (mc + 1) & ~1;
  const rowB = <usize>lda << 2;
  for (let p = 0; p < mcp; p += 2) {
    const two = p + 1 < mc;
    const rowp = a + (<usize>(i0 + p) * <usize>lda << 2);
    let n = k0 / L, l = k0 - n * L;
    let oh = l / OW, ow = l - oh * OW;
    let img = n * aimg;
    for (let k = 0; k < kc; k++) {
      const src = rowp + (<usize>(img + coff + oh * cow + ow) << 2);
      store<f32>(dst, load<f32>(src));
      store<f32>(dst, two ? load<f32>(src + rowB) : 0, 4);
      dst += 8;
      ow++;
      if (ow == OW) {
        ow = 0; oh++; l += OW;
        if (l >= L) { l = 0; oh = 0; img += aimg; }
      }
    }
  }
}

/** A mode 2: rows c.. of the flipped-transposed weights, K index kk = k*RS + rs. */
function packAFlip(a: usize, Cg: i32, RS: i32, i0: i32, mc: i32, k0: i32, kc: i32, dst: usize): void {
  const mcp = (mc + 1) & ~1;
  const kStep = <usize>(Cg * RS) << 2;
  for (let p = 0; p < mcp; p += 2) {
    const c = i0 + p;
    const two = p + 1 < mc;
    let k = k0 / RS, rs = k0 - k * RS;
    let row = a + ((<usize>k * <usize>Cg + <usize>c) * <usize>RS << 2);
    const rsB = <usize>RS << 2;
    for (let kk = 0; kk < kc; kk++) {
      const src = row + (<usize>(RS - 1 - rs) << 2);
      store<f32>(dst, load<f32>(src));
      store<f32>(dst, two ? load<f32>(src + rsB) : 0, 4);
      dst += 8;
      rs++;
      if (rs == RS) { rs = 0; row += kStep; }
    }
  }
}

/** Row-major or transposed B: columns j0.. (nc valid), K range [k0, k0+kc) -> panels of 16 columns. */
function packBPlain(b: usize, ldb: i32, trans: bool, j0: i32, nc: i32, k0: i32, kc: i32, dst: usize): void {
  for (let q = 0; q < nc; q += 16) {
    const j = j0 + q;
    const v = min(16, nc - q);
    if (!trans) {
      let src = b + ((<usize>k0 * <usize>ldb + <usize>j) << 2);
      const step = <usize>ldb << 2;
      if (v == 16) {
        for (let k = 0; k < kc; k++) {
          v128.store(dst, v128.load(src)); v128.store(dst, v128.load(src, 16), 16);
          v128.store(dst, v128.load(src, 32), 32); v128.store(dst, v128.load(src, 48), 48);
          src += step; dst += 64;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          let jj = 0;
          for (; jj < v; jj++) store<f32>(dst + (<usize>jj << 2), load<f32>(src + (<usize>jj << 2)));
          for (; jj < 16; jj++) store<f32>(dst + (<usize>jj << 2), 0);
          src += step; dst += 64;
        }
      }
    } else {
      // B stored [N, K]: column j of op(B) is row j of B.
      let jj = 0;
      for (; jj < v; jj++) {
        let src = b + ((<usize>(j + jj) * <usize>ldb + <usize>k0) << 2);
        let o = dst + (<usize>jj << 2);
        for (let k = 0; k < kc; k++) {
          store<f32>(o, load<f32>(src));
          src += 4; o += 64;
        }
      }
      for (; jj < 16; jj++) {
        let o = dst + (<usize>jj << 2);
        for (let k = 0; k < kc; k++) { store<f32>(o, 0); o += 64; }
      }
      dst += <usize>kc << 6;
    }
  }
}

/**
 * Implicit im2col: B[crs, j] = xp[crs offset + column offset], xp a zero-padded NCHW input
 * (so no bounds checks). Column j = n*L + oh*OW + ow; row crs = (c*R + r)*S + s.
 */
function packBConv(d: usize, b: usize, j0: i32, nc: i32, k0: i32, kc: i32, dst: usize, poff: usize): void {
  const L = di(d, G_L), OW = di(d, G_OW), XIMG = di(d, G_XIMG), WP = di(d, G_WP), HWP = di(d, G_HWP);
  const SH = di(d, G_SH), SW = di(d, G_SW), DH = di(d, G_DH), DW = di(d, G_DW), R = di(d, G_R), S = di(d, G_S);
  const RS = R * S;
  for (let q = 0; q < nc; q += 16) {
    const jb = j0 + q;
    const v = min(16, nc - q);
    // column offsets for this panel
    let n = jb / L, l = jb - n * L;
    let oh = l / OW, ow = l - oh * OW;
    for (let jj = 0; jj < v; jj++) {
      store<i32>(poff + (<usize>jj << 2), n * XIMG + oh * SH * WP + ow * SW);
      ow++;
      if (ow == OW) { ow = 0; oh++; l += OW; if (l >= L) { l = 0; oh = 0; n++; } }
    }
    const p0 = load<i32>(poff);
    const contiguous = v == 16 && load<i32>(poff, 60) - p0 == 15;
    // row decode, incremental
    let c = k0 / RS, rs = k0 - c * RS;
    let r = rs / S, s = rs - r * S;
    let coff = c * HWP + r * DH * WP + s * DW;
    for (let k = 0; k < kc; k++) {
      const base = b + (<usize>coff << 2);
      if (contiguous) {
        const src = base + (<usize>p0 << 2);
        v128.store(dst, v128.load(src)); v128.store(dst, v128.load(src, 16), 16);
        v128.store(dst, v128.load(src, 32), 32); v128.store(dst, v128.load(src, 48), 48);
      } else {
        let jj = 0;
        for (; jj < v; jj++) {
          store<f32>(dst + (<usize>jj << 2), load<f32>(base + (<usize>load<i32>(poff + (<usize>jj << 2)) << 2)));
        }
        for (; jj < 16; jj++) store<f32>(dst + (<usize>jj << 2), 0);
      }
      dst += 64;
      s++;
      coff += DW;
      if (s == S) {
        s = 0; r++;
        coff += DH * WP - S * DW;
        if (r == R) { r = 0; c++; coff += HWP - R * DH * WP; }
      }
    }
  }
}

/**
 * Implicit transposed im2col of the images of a K segment: B[n*L + l, crs] with l = oh*OW + ow
 * (the K index runs over the images, image n at n*XIMG) and crs the column (N) index.
 */
function packBConvT(d: usize, b: usize, j0: i32, nc: i32, k0: i32, kc: i32, dst: usize, coffs: usize): void {
  const OW = di(d, G_OW), WP = di(d, G_WP), HWP = di(d, G_HWP), L = di(d, G_L), XIMG = di(d, G_XIMG);
  const SH = di(d, G_SH), SW = di(d, G_SW), DH = di(d, G_DH), DW = di(d, G_DW), R = di(d, G_R), S = di(d, G_S);
  const RS = R * S;
  for (let q = 0; q < nc; q += 16) {
    const jb = j0 + q;
    const v = min(16, nc - q);
    let c = jb / RS, rs = jb - c * RS;
    let r = rs / S, s = rs - r * S;
    for (let jj = 0; jj < v; jj++) {
      store<i32>(coffs + (<usize>jj << 2), c * HWP + r * DH * WP + s * DW);
      s++;
      if (s == S) { s = 0; r++; if (r == R) { r = 0; c++; } }
    }
    let n = k0 / L, l = k0 - n * L;
    let oh = l / OW, ow = l - oh * OW;
    let img = n * XIMG;
    let pos = img + oh * SH * WP + ow * SW;
    for (let k = 0; k < kc; k++) {
      const base = b + (<usize>pos << 2);
      let jj = 0;
      for (; jj < v; jj++) {
        store<f32>(dst + (<usize>jj << 2), load<f32>(base + (<usize>load<i32>(coffs + (<usize>jj << 2)) << 2)));
      }
      for (; jj < 16; jj++) store<f32>(dst + (<usize>jj << 2), 0);
      dst += 64;
      ow++;
      pos += SW;
      if (ow == OW) {
        ow = 0; oh++; l += OW;
        if (l >= L) { l = 0; oh = 0; img += XIMG; }
        pos = img + oh * SH * WP;
      }
    }
  }
}

/** C mode 2: offset of column (image n, position l of the sub-rectangle) in a row of C. */
@inline function cOff2(d: usize, n: i32, l: i32, CIMG: i32): i32 {
  const OW = di(d, G_OW);
  const oh = l / OW;
  return n * CIMG + di(d, G_COFF) + oh * di(d, G_COW) + l - oh * OW;
}

/** One output block: mc x nc at (i0, j0) of the current batch entry, over one K chunk. */
function macro(d: usize, pa: usize, pb: usize, mc: i32, nc: i32, kc: i32, c0: usize, ldc: i32, j0: i32,
               add: bool, bias: usize, relu: bool, tmp: usize, offs: usize): void {
  const cmode = di(d, G_CMODE);
  const L = di(d, G_L), CIMG = di(d, G_CIMG);
  const ldcB = <usize>ldc << 2;
  for (let q = 0; q < nc; q += 16) {
    const v = min(16, nc - q);
    const bp = pb + (<usize>q * <usize>kc << 2);
    const j = j0 + q;
    // column base offset of this panel in C, and whether the 16 columns are contiguous there
    let cb: i32, contig: bool;
    if (cmode == 0) {
      cb = j;
      contig = v == 16;
    } else if (cmode == 2) {
      cb = 0;
      contig = false;
    } else {
      const n = j / L, l = j - n * L;
      cb = n * CIMG + l;
      contig = v == 16 && l + 16 <= L;
    }
    if (!contig || (mc & 1) != 0) {
      // the panel's column offsets in a row of C, once for all its rows (an odd last row goes through tmp too)
      for (let jj = 0; jj < v; jj++) {
        const jg = j + jj;
        let off: i32 = jg;
        if (cmode != 0) { const n = jg / L; off = cmode == 2 ? cOff2(d, n, jg - n * L, CIMG) : n * CIMG + jg - n * L; }
        store<i32>(offs + (<usize>jj << 2), off);
      }
    }
    for (let p = 0; p < mc; p += 2) {
      const ap = pa + (<usize>p * <usize>kc << 2);
      const b0: f32 = bias != 0 ? load<f32>(bias + (<usize>p << 2)) : 0;
      const b1: f32 = bias != 0 && p + 1 < mc ? load<f32>(bias + (<usize>(p + 1) << 2)) : 0;
      const rows = min(2, mc - p);
      const cp = c0 + ((<usize>p * <usize>ldc + <usize>cb) << 2);
      if (contig && rows == 2) {
        kernel2x16(ap, bp, kc, cp, ldcB, add, b0, b1, relu);
      } else {
        if (v <= 8) kernel2xNarrow(ap, bp, kc, tmp, b0, b1, v <= 4 ? 1 : 2);
        else kernel2x16(ap, bp, kc, tmp, 64, false, b0, b1, false);
        for (let i = 0; i < rows; i++) {
          const crow = c0 + (<usize>(p + i) * <usize>ldc << 2);
          const trow = tmp + (<usize>(i * 16) << 2);
          for (let jj = 0; jj < v; jj++) {
            const ptr = crow + (<usize>load<i32>(offs + (<usize>jj << 2)) << 2);
            let x = load<f32>(trow + (<usize>jj << 2));
            if (add) x += load<f32>(ptr);
            if (relu && x < 0) x = 0;
            store<f32>(ptr, x);
          }
        }
      }
    }
  }
}

export function gemmTask(d: usize, t: i32, tid: i32): void {
  const M = di(d, G_M), N = di(d, G_N), K = di(d, G_K);
  const MCT = di(d, G_MCT), NCT = di(d, G_NCT), mT = di(d, G_MTILES), nT = di(d, G_NTILES);
  const nb2 = di(d, G_NB2);
  const kSplit = di(d, G_KSPLIT);
  const tile = t / kSplit, ks = t - tile * kSplit;
  const per = mT * nT;
  const b = tile / per, rem = tile - b * per;
  const mi = rem / nT, ni = rem - mi * nT;
  const b1 = b / nb2, b2 = b - b1 * nb2;
  const scratch = du(d, D_SCRATCH) + <usize>tid * du(d, D_SCRATCH_STRIDE);
  const tmp = scratch + S_TMP;
  let pa = scratch + S_PACKA, pb = scratch + S_PACKB;
  const prepack = du(d, G_PREPACK);
  const apack = du(d, G_APACK);
  const Mp = <usize>((M + 1) & ~1);

  const aBase = du(d, G_A) + ((<usize>b1 * <usize>di(d, G_AS1) + <usize>b2 * <usize>di(d, G_AS2)) << 2);
  const bBase = du(d, G_B) + ((<usize>b1 * <usize>di(d, G_BS1) + <usize>b2 * <usize>di(d, G_BS2)) << 2);
  // split 0 writes C; split ks > 0 writes its own partial buffer, summed into C afterwards
  const cOut = ks == 0 ? du(d, G_C) : du(d, G_PART) + (<usize>(ks - 1) * <usize>di(d, G_PARTS) << 2);
  const cBase = cOut + ((<usize>b1 * <usize>di(d, G_CS1) + <usize>b2 * <usize>di(d, G_CS2)) << 2);
  const lda = di(d, G_LDA), ldb = di(d, G_LDB), ldc = di(d, G_LDC);
  const amode = di(d, G_ATRANS);
  const atrans = amode == 1;
  const bmode = di(d, G_BMODE);
  const kSegsAll = di(d, G_KSEGS);
  const seg0 = <i32>(<i64>ks * <i64>kSegsAll / <i64>kSplit), seg1 = <i32>(<i64>(ks + 1) * <i64>kSegsAll / <i64>kSplit);
  const aSeg = <usize>di(d, G_ASEG) << 2, bSeg = <usize>di(d, G_BSEG) << 2;
  const accumulate = ks == 0 && di(d, G_ACC) != 0;
  const relu = di(d, G_RELU) != 0;
  const kcMax = di(d, G_KC);
  let bias = ks == 0 ? du(d, G_BIAS) : 0;

  const i0 = mi * MCT, mc = min(MCT, M - i0);
  const j0 = ni * NCT, nc = min(NCT, N - j0);
  if (bias != 0) bias += (<usize>b2 * <usize>di(d, G_BIASS2) + <usize>i0) << 2;
  // C rows of this tile
  const c0 = cBase + (<usize>i0 * <usize>ldc << 2);

  const kLast = di(d, G_KLAST);
  let first = true;
  for (let seg = seg0; seg < seg1; seg++) {
    const aS = aBase + <usize>seg * aSeg, bS = bBase + <usize>seg * bSeg;
    const Ks = kLast != 0 && seg == kSegsAll - 1 ? kLast : K;
    for (let k0 = 0; k0 < Ks; k0 += kcMax) {
      const kc = min(kcMax, Ks - k0);
      if (apack != 0) pa = apack + ((<usize>b * Mp * <usize>K + Mp * <usize>k0 + <usize>i0 * <usize>kc) << 2);
      else if (amode == 2) packAFlip(aS, di(d, G_ACG), di(d, G_ARS), i0, mc, k0, kc, pa);
      else if (amode == 3) packASeg(aS, lda, di(d, G_L), di(d, G_AIMG), i0, mc, k0, kc, pa);
      else if (amode == 4) packASub(d, aS, lda, i0, mc, k0, kc, pa);
      else packA(aS, lda, atrans, i0, mc, k0, kc, pa);
      if (prepack != 0) pb = prepackSlot(d, prepack, b, ni, seg, k0 / kcMax);
      else if (bmode <= 1) packBPlain(bS, ldb, bmode == 1, j0, nc, k0, kc, pb);
      else if (bmode == 2) packBConv(d, bS, j0, nc, k0, kc, pb, scratch + S_POFF);
      else packBConvT(d, bS, j0, nc, k0, kc, pb, scratch + S_COFF);
      const last = seg == seg1 - 1 && k0 + kc >= Ks;
      macro(d, pa, pb, mc, nc, kc, c0, ldc, j0, !first || accumulate, first ? bias : 0, relu && last, tmp, scratch + S_COFF);
      first = false;
    }
  }
  if (first) {
    // C = bias (or unchanged when accumulating)
    for (let i = 0; i < mc; i++) {
      const bv: f32 = bias != 0 ? load<f32>(bias + (<usize>i << 2)) : 0;
      for (let jj = 0; jj < nc; jj++) {
        const jg = j0 + jj;
        let off: i32 = jg;
        if (di(d, G_CMODE) != 0) { const L = di(d, G_L); const n = jg / L; off = n * di(d, G_CIMG) + jg - n * L; if (di(d, G_CMODE) == 2) off = cOff2(d, n, jg - n * L, di(d, G_CIMG)); }
        const ptr = c0 + ((<usize>i * <usize>ldc + <usize>off) << 2);
        let x = bv;
        if (accumulate) x += load<f32>(ptr);
        if (relu && x < 0) x = 0;
        store<f32>(ptr, x);
      }
    }
  }
}

/** The prepacked B block of (batch entry b, N tile ni, K segment seg, K chunk kci). */
@inline function prepackSlot(d: usize, base: usize, b: i32, ni: i32, seg: i32, kci: i32): usize {
  const nT = di(d, G_NTILES), nK = di(d, G_NK), kSegs = di(d, G_KSEGS);
  const slot = ((b * nT + ni) * kSegs + seg) * nK + kci;
  const slotFloats = <usize>(((di(d, G_NCT) + 15) & ~15)) * <usize>di(d, G_KC);
  return base + (<usize>slot * slotFloats << 2);
}

/** Packs one B block into the shared prepacked area; task t = slot index. */
export function packBTask(d: usize, t: i32, tid: i32): void {
  const N = di(d, G_N), K = di(d, G_K), NCT = di(d, G_NCT), nT = di(d, G_NTILES), nK = di(d, G_NK);
  const kSegs = di(d, G_KSEGS), nb2 = di(d, G_NB2), kcMax = di(d, G_KC);
  const kci = t % nK, r1 = t / nK;
  const seg = r1 % kSegs, r2 = r1 / kSegs;
  const ni = r2 % nT, b = r2 / nT;
  const b1 = b / nb2, b2 = b - b1 * nb2;
  const scratch = du(d, D_SCRATCH) + <usize>tid * du(d, D_SCRATCH_STRIDE);
  const bS = du(d, G_B) + ((<usize>b1 * <usize>di(d, G_BS1) + <usize>b2 * <usize>di(d, G_BS2)) << 2) +
    <usize>seg * (<usize>di(d, G_BSEG) << 2);
  const j0 = ni * NCT, nc = min(NCT, N - j0);
  const kLast = di(d, G_KLAST);
  const Ks = kLast != 0 && seg == kSegs - 1 ? kLast : K;
  const k0 = kci * kcMax, kc = min(kcMax, Ks - k0);
  if (kc <= 0) return; // the shorter last segment has fewer K chunks
  const dst = prepackSlot(d, du(d, G_PREPACK), b, ni, seg, kci);
  const bmode = di(d, G_BMODE);
  if (bmode <= 1) packBPlain(bS, di(d, G_LDB), bmode == 1, j0, nc, k0, kc, dst);
  else if (bmode == 2) packBConv(d, bS, j0, nc, k0, kc, dst, scratch + S_POFF);
  else packBConvT(d, bS, j0, nc, k0, kc, dst, scratch + S_COFF);
}

/**
 * Packs all of A once (constant weights) into G_APACK; task t = (batch entry b, K chunk kci).
 * Only for jobs with one K segment (conv forward).
 */
export function packATask(d: usize, t: i32): void {
  const M = di(d, G_M), K = di(d, G_K), nK = di(d, G_NK), kcMax = di(d, G_KC), nb2 = di(d, G_NB2);
  const kci = t % nK, b = t / nK;
  const b1 = b / nb2, b2 = b - b1 * nb2;
  const Mp = <usize>((M + 1) & ~1);
  const k0 = kci * kcMax, kc = min(kcMax, K - k0);
  const aS = du(d, G_A) + ((<usize>b1 * <usize>di(d, G_AS1) + <usize>b2 * <usize>di(d, G_AS2)) << 2);
  const dst = du(d, G_APACK) + ((<usize>b * Mp * <usize>K + Mp * <usize>k0) << 2);
  const amode = di(d, G_ATRANS);
  if (amode == 2) packAFlip(aS, di(d, G_ACG), di(d, G_ARS), 0, M, k0, kc, dst);
  else packA(aS, di(d, G_LDA), amode == 1, 0, M, k0, kc, dst);
}

/** Benchmark only: the micro-kernel on L1-resident panels, reps times (measures the SIMD ceiling). */
export function bench_kernel(ap: usize, bp: usize, kc: i32, c: usize, reps: i32): void {
  for (let r = 0; r < reps; r++) kernel2x16(ap, bp, kc, c, 64, r > 0, 0, 0, false);
}
