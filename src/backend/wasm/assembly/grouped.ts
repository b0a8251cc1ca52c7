// Direct grouped convolution for few channels per group (ResNeXt 32x4d: 4, 8 and 16 input and
// output channels per group), where one GEMM per group would have 2-8 row pairs and a K of
// 36-144: the micro-kernel's loops would be too short to pay for the packing.
//
// A task = (image, group, block of 4 output channels, a few output rows). For 8 output pixels of
// a row it keeps 4 channels x 2 f32x4 = 8 accumulators (the 2x16 GEMM micro-kernel's 8), and per
// (input channel, r, s) loads 8 input pixels (2 vectors; stride 2: 4 vectors and 2 shuffles that
// keep the even lanes) and splats 4 weights: 16 mul/add per 6-8 loads, no packing at all.
// The input is zero-padded with at least 16 extra columns on the right, so the last block of a
// row may read past the row's outputs without bounds checks (lanes beyond OW are not stored).
// Epilogue: bias (accumulator start), + y when accumulating (a residual already copied there), ReLU.
import { D_ARGS, D_SCRATCH, D_SCRATCH_STRIDE, di, du } from './desc';

export const GC_X: i32 = D_ARGS + 0; // padded input [N, C, HP, WP]
export const GC_W: i32 = D_ARGS + 1; // weights [K, Cg, R, S]
export const GC_BIAS: i32 = D_ARGS + 2; // [K] or 0
export const GC_Y: i32 = D_ARGS + 3; // [N, K, OH, OW]
export const GC_C: i32 = D_ARGS + 4;
export const GC_K: i32 = D_ARGS + 5;
export const GC_CG: i32 = D_ARGS + 6;
export const GC_KG: i32 = D_ARGS + 7; // a multiple of 4
export const GC_HP: i32 = D_ARGS + 8;
export const GC_WP: i32 = D_ARGS + 9;
export const GC_OH: i32 = D_ARGS + 10;
export const GC_OW: i32 = D_ARGS + 11;
export const GC_R: i32 = D_ARGS + 12;
export const GC_S: i32 = D_ARGS + 13;
export const GC_SH: i32 = D_ARGS + 14;
export const GC_SW: i32 = D_ARGS + 15; // 1 or 2
export const GC_DH: i32 = D_ARGS + 16; // row dilation (columns: 1)
export const GC_ACC: i32 = D_ARGS + 17;
export const GC_RELU: i32 = D_ARGS + 18;
export const GC_RB: i32 = D_ARGS + 19; // output rows per task

const S_GTMP: usize = 128; // per-thread scratch: f32[4][8]

export function groupedConvTask(d: usize, t: i32, tid: i32): void {
  const C = di(d, GC_C), K = di(d, GC_K), Cg = di(d, GC_CG), Kg = di(d, GC_KG);
  const HP = di(d, GC_HP), WP = di(d, GC_WP), OH = di(d, GC_OH), OW = di(d, GC_OW);
  const R = di(d, GC_R), S = di(d, GC_S), SH = di(d, GC_SH), SW = di(d, GC_SW), DH = di(d, GC_DH);
  const RB = di(d, GC_RB);
  const G = C / Cg, nKB = Kg >> 2, nRB = (OH + RB - 1) / RB;
  const rbi = t % nRB;
  let r1 = t / nRB;
  const kb = r1 % nKB;
  r1 /= nKB;
  const g = r1 % G, n = r1 / G;
  const k0 = g * Kg + (kb << 2);
  const RS = R * S;
  const planeB = <usize>(HP * WP) << 2;
  const xg = du(d, GC_X) + (<usize>(n * C + g * Cg) * planeB);
  const wk = du(d, GC_W) + (<usize>(k0 * Cg * RS) << 2);
  const wS = <usize>(Cg * RS) << 2; // bytes between the 4 output channels' weights
  const biasP = du(d, GC_BIAS);
  const b0: f32 = biasP != 0 ? load<f32>(biasP + (<usize>k0 << 2)) : 0;
  const b1: f32 = biasP != 0 ? load<f32>(biasP + (<usize>(k0 + 1) << 2)) : 0;
  const b2: f32 = biasP != 0 ? load<f32>(biasP + (<usize>(k0 + 2) << 2)) : 0;
  const b3: f32 = biasP != 0 ? load<f32>(biasP + (<usize>(k0 + 3) << 2)) : 0;
  const outB = <usize>(OH * OW) << 2;
  const yk = du(d, GC_Y) + (<usize>(n * K + k0) * outB);
  const acc = di(d, GC_ACC) != 0, relu = di(d, GC_RELU) != 0;
  const tmp = du(d, D_SCRATCH) + <usize>tid * du(d, D_SCRATCH_STRIDE) + S_GTMP;
  const rowB = <usize>WP << 2, dRowB = <usize>(DH * WP) << 2;
  const oh1 = min(OH, (rbi + 1) * RB);
  for (let oh = rbi * RB; oh < oh1; oh++) {
    for (let ow0 = 0; ow0 < OW; ow0 += 8) {
      let a0 = f32x4.splat(b0), e0 = a0;
      let a1 = f32x4.splat(b1), e1 = a1;
      let a2 = f32x4.splat(b2), e2 = a2;
      let a3 = f32x4.splat(b3), e3 = a3;
      let plane = xg + <usize>(oh * SH) * rowB + (<usize>(ow0 * SW) << 2);
      let wc = wk;
      if (S == 3) {
        // the common 3-tap rows unrolled, every load at a constant offset
        let q0 = wk, q1 = wk + wS, q2 = wk + 2 * wS, q3 = wk + 3 * wS;
        let v0: v128, v1: v128, w: v128;
        for (let c = 0; c < Cg; c++) {
          let row = plane;
          for (let r = 0; r < R; r++) {
            if (SW == 1) {
              v0 = v128.load(row, 0); v1 = v128.load(row, 16);
              w = v128.load32_splat(q0, 0); a0 = f32x4.add(a0, f32x4.mul(w, v0)); e0 = f32x4.add(e0, f32x4.mul(w, v1));
              w = v128.load32_splat(q1, 0); a1 = f32x4.add(a1, f32x4.mul(w, v0)); e1 = f32x4.add(e1, f32x4.mul(w, v1));
              w = v128.load32_splat(q2, 0); a2 = f32x4.add(a2, f32x4.mul(w, v0)); e2 = f32x4.add(e2, f32x4.mul(w, v1));
              w = v128.load32_splat(q3, 0); a3 = f32x4.add(a3, f32x4.mul(w, v0)); e3 = f32x4.add(e3, f32x4.mul(w, v1));
              v0 = v128.load(row, 4); v1 = v128.load(row, 20);
              w = v128.load32_splat(q0, 4); a0 = f32x4.add(a0, f32x4.mul(w, v0)); e0 = f32x4.add(e0, f32x4.mul(w, v1));
              w = v128.load32_splat(q1, 4); a1 = f32x4.add(a1, f32x4.mul(w, v0)); e1 = f32x4.add(e1, f32x4.mul(w, v1));
              w = v128.load32_splat(q2, 4); a2 = f32x4.add(a2, f32x4.mul(w, v0)); e2 = f32x4.add(e2, f32x4.mul(w, v1));
              w = v128.load32_splat(q3, 4); a3 = f32x4.add(a3, f32x4.mul(w, v0)); e3 = f32x4.add(e3, f32x4.mul(w, v1));
              v0 = v128.load(row, 8); v1 = v128.load(row, 24);
              w = v128.load32_splat(q0, 8); a0 = f32x4.add(a0, f32x4.mul(w, v0)); e0 = f32x4.add(e0, f32x4.mul(w, v1));
              w = v128.load32_splat(q1, 8); a1 = f32x4.add(a1, f32x4.mul(w, v0)); e1 = f32x4.add(e1, f32x4.mul(w, v1));
              w = v128.load32_splat(q2, 8); a2 = f32x4.add(a2, f32x4.mul(w, v0)); e2 = f32x4.add(e2, f32x4.mul(w, v1));
              w = v128.load32_splat(q3, 8); a3 = f32x4.add(a3, f32x4.mul(w, v0)); e3 = f32x4.add(e3, f32x4.mul(w, v1));
            } else {
              v0 = v128.shuffle<f32>(v128.load(row, 0), v128.load(row, 16), 0, 2, 4, 6);
              v1 = v128.shuffle<f32>(v128.load(row, 32), v128.load(row, 48), 0, 2, 4, 6);
              w = v128.load32_splat(q0, 0); a0 = f32x4.add(a0, f32x4.mul(w, v0)); e0 = f32x4.add(e0, f32x4.mul(w, v1));
              w = v128.load32_splat(q1, 0); a1 = f32x4.add(a1, f32x4.mul(w, v0)); e1 = f32x4.add(e1, f32x4.mul(w, v1));
              w = v128.load32_splat(q2, 0); a2 = f32x4.add(a2, f32x4.mul(w, v0)); e2 = f32x4.add(e2, f32x4.mul(w, v1));
              w = v128.load32_splat(q3, 0); a3 = f32x4.add(a3, f32x4.mul(w, v0)); e3 = f32x4.add(e3, f32x4.mul(w, v1));
              v0 = v128.shuffle<f32>(v128.load(row, 4), v128.load(row, 20), 0, 2, 4, 6);
              v1 = v128.shuffle<f32>(v128.load(row, 36), v128.load(row, 52), 0, 2, 4, 6);
              w = v128.load32_splat(q0, 4); a0 = f32x4.add(a0, f32x4.mul(w, v0)); e0 = f32x4.add(e0, f32x4.mul(w, v1));
              w = v128.load32_splat(q1, 4); a1 = f32x4.add(a1, f32x4.mul(w, v0)); e1 = f32x4.add(e1, f32x4.mul(w, v1));
              w = v128.load32_splat(q2, 4); a2 = f32x4.add(a2, f32x4.mul(w, v0)); e2 = f32x4.add(e2, f32x4.mul(w, v1));
              w = v128.load32_splat(q3, 4); a3 = f32x4.add(a3, f32x4.mul(w, v0)); e3 = f32x4.add(e3, f32x4.mul(w, v1));
              v0 = v128.shuffle<f32>(v128.load(row, 8), v128.load(row, 24), 0, 2, 4, 6);
              v1 = v128.shuffle<f32>(v128.load(row, 40), v128.load(row, 56), 0, 2, 4, 6);
              w = v128.load32_splat(q0, 8); a0 = f32x4.add(a0, f32x4.mul(w, v0)); e0 = f32x4.add(e0, f32x4.mul(w, v1));
              w = v128.load32_splat(q1, 8); a1 = f32x4.add(a1, f32x4.mul(w, v0)); e1 = f32x4.add(e1, f32x4.mul(w, v1));
              w = v128.load32_splat(q2, 8); a2 = f32x4.add(a2, f32x4.mul(w, v0)); e2 = f32x4.add(e2, f32x4.mul(w, v1));
              w = v128.load32_splat(q3, 8); a3 = f32x4.add(a3, f32x4.mul(w, v0)); e3 = f32x4.add(e3, f32x4.mul(w, v1));
            }
            row += dRowB;
            q0 += 12; q1 += 12; q2 += 12; q3 += 12;
          }
          plane += planeB;
        }
      } else for (let c = 0; c < Cg; c++) {
        let row = plane;
        for (let r = 0; r < R; r++) {
          for (let s = 0; s < S; s++) {
            const p = row + (<usize>s << 2);
            let v0: v128, v1: v128;
            if (SW == 1) {
              v0 = v128.load(p);
              v1 = v128.load(p, 16);
            } else {
              v0 = v128.shuffle<f32>(v128.load(p), v128.load(p, 16), 0, 2, 4, 6);
              v1 = v128.shuffle<f32>(v128.load(p, 32), v128.load(p, 48), 0, 2, 4, 6);
            }
            const w = wc + (<usize>s << 2);
            const w0 = v128.load32_splat(w);
            a0 = f32x4.add(a0, f32x4.mul(w0, v0));
            e0 = f32x4.add(e0, f32x4.mul(w0, v1));
            const w1 = v128.load32_splat(w + wS);
            a1 = f32x4.add(a1, f32x4.mul(w1, v0));
            e1 = f32x4.add(e1, f32x4.mul(w1, v1));
            const w2 = v128.load32_splat(w + 2 * wS);
            a2 = f32x4.add(a2, f32x4.mul(w2, v0));
            e2 = f32x4.add(e2, f32x4.mul(w2, v1));
            const w3 = v128.load32_splat(w + 3 * wS);
            a3 = f32x4.add(a3, f32x4.mul(w3, v0));
            e3 = f32x4.add(e3, f32x4.mul(w3, v1));
          }
          row += dRowB;
          wc += <usize>S << 2;
        }
        plane += planeB;
      }
      const yo = yk + (<usize>(oh * OW + ow0) << 2);
      if (ow0 + 8 <= OW) {
        store8(yo, a0, e0, acc, relu);
        store8(yo + outB, a1, e1, acc, relu);
        store8(yo + 2 * outB, a2, e2, acc, relu);
        store8(yo + 3 * outB, a3, e3, acc, relu);
      } else {
        v128.store(tmp, a0); v128.store(tmp, e0, 16);
        v128.store(tmp, a1, 32); v128.store(tmp, e1, 48);
        v128.store(tmp, a2, 64); v128.store(tmp, e2, 80);
        v128.store(tmp, a3, 96); v128.store(tmp, e3, 112);
        const valid = OW - ow0;
        for (let j = 0; j < 4; j++) {
          for (let i = 0; i < valid; i++) {
            const ptr = yo + <usize>j * outB + (<usize>i << 2);
            let x = load<f32>(tmp + (<usize>(j * 8 + i) << 2));
            if (acc) x += load<f32>(ptr);
            if (relu && x < 0) x = 0;
            store<f32>(ptr, x);
          }
        }
      }
    }
  }
}

@inline function store8(p: usize, a: v128, e: v128, acc: bool, relu: bool): void {
  if (acc) {
    a = f32x4.add(a, v128.load(p));
    e = f32x4.add(e, v128.load(p, 16));
  }
  if (relu) {
    const z = f32x4.splat(0);
    a = f32x4.max(a, z);
    e = f32x4.max(e, z);
  }
  v128.store(p, a);
  v128.store(p, e, 16);
}
