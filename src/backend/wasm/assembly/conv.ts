// Convolution helpers around the GEMM: zero padding (so the implicit-im2col packers need no
// bounds checks) and col2im (the adjoint of im2col, for strided backward-data).
import { D_ARGS, di, du } from './desc';

// ---- pad: dst[p, Hp, Wp] = x[p, H, W] placed at (PT, PL), zeros around; one task = CHUNK planes
export const P_SRC: i32 = D_ARGS + 0;
export const P_DST: i32 = D_ARGS + 1;
export const P_PLANES: i32 = D_ARGS + 2;
export const P_CHUNK: i32 = D_ARGS + 3;
export const P_H: i32 = D_ARGS + 4;
export const P_W: i32 = D_ARGS + 5;
export const P_HP: i32 = D_ARGS + 6;
export const P_WP: i32 = D_ARGS + 7;
export const P_PT: i32 = D_ARGS + 8;
export const P_PL: i32 = D_ARGS + 9;

@inline function zero(p: usize, n: i32): void {
  memory.fill(p, 0, <usize>n << 2);
}

export function padTask(d: usize, t: i32): void {
  const H = di(d, P_H), W = di(d, P_W), Hp = di(d, P_HP), Wp = di(d, P_WP), PT = di(d, P_PT), PL = di(d, P_PL);
  const planes = di(d, P_PLANES), chunk = di(d, P_CHUNK);
  const p0 = t * chunk, p1 = min(planes, p0 + chunk);
  const PR = Wp - W - PL;
  for (let p = p0; p < p1; p++) {
    let src = du(d, P_SRC) + (<usize>p * <usize>(H * W) << 2);
    let dst = du(d, P_DST) + (<usize>p * <usize>(Hp * Wp) << 2);
    zero(dst, PT * Wp);
    dst += <usize>(PT * Wp) << 2;
    for (let h = 0; h < H; h++) {
      if (PL > 0) zero(dst, PL);
      memory.copy(dst + (<usize>PL << 2), src, <usize>W << 2);
      if (PR > 0) zero(dst + (<usize>(PL + W) << 2), PR);
      src += <usize>W << 2;
      dst += <usize>Wp << 2;
    }
    zero(dst, (Hp - H - PT) * Wp);
  }
}

// ---- col2im: dx[n, c] (overwritten) = sum over (r, s) of cols rows scattered back
export const I_COLS: i32 = D_ARGS + 0;
export const I_DX: i32 = D_ARGS + 1;
export const I_PLANES: i32 = D_ARGS + 2; // images in this chunk * C
export const I_C: i32 = D_ARGS + 3;
export const I_CG: i32 = D_ARGS + 4;
export const I_H: i32 = D_ARGS + 5;
export const I_W: i32 = D_ARGS + 6;
export const I_R: i32 = D_ARGS + 7;
export const I_S: i32 = D_ARGS + 8;
export const I_OH: i32 = D_ARGS + 9;
export const I_OW: i32 = D_ARGS + 10;
export const I_SH: i32 = D_ARGS + 11;
export const I_SW: i32 = D_ARGS + 12;
export const I_PH: i32 = D_ARGS + 13;
export const I_PW: i32 = D_ARGS + 14;
export const I_DH: i32 = D_ARGS + 15;
export const I_DW: i32 = D_ARGS + 16;
export const I_NL: i32 = D_ARGS + 17; // columns of cols: images in the chunk * OH*OW

/**
 * cols layout: [g][Cg*R*S][n*L + l] (NL = images * L columns), i.e. row (c*R*S + rs) holds
 * channel c's (r, s) tap for every image: image n's part starts at (c*R*S + rs)*NL + n*L.
 */
export function col2imTask(d: usize, t: i32): void {
  const H = di(d, I_H), W = di(d, I_W), R = di(d, I_R), S = di(d, I_S);
  const OH = di(d, I_OH), OW = di(d, I_OW), SH = di(d, I_SH), SW = di(d, I_SW);
  const PH = di(d, I_PH), PW = di(d, I_PW), DH = di(d, I_DH), DW = di(d, I_DW);
  const L = OH * OW, NL = di(d, I_NL), C = di(d, I_C);
  // plane index t = n*C + c; groups lie consecutively, so row g*Cg*RS + cl*RS = c*RS
  const n = t / C, c = t - n * C;
  const dx = du(d, I_DX) + (<usize>t * <usize>(H * W) << 2);
  zero(dx, H * W);
  let cols = du(d, I_COLS) + ((<usize>c * <usize>(R * S) * <usize>NL + <usize>n * <usize>L) << 2);
  for (let r = 0; r < R; r++) {
    for (let s = 0; s < S; s++) {
      // valid ow range: 0 <= ow*SW - PW + s*DW < W
      const off = s * DW - PW;
      let ow0 = 0;
      if (off < 0) ow0 = (-off + SW - 1) / SW;
      let ow1 = OW;
      if ((OW - 1) * SW + off >= W) ow1 = (W - 1 - off) / SW + 1;
      for (let oh = 0; oh < OH; oh++) {
        const ih = oh * SH - PH + r * DH;
        if (ih < 0 || ih >= H) continue;
        const src = cols + (<usize>(oh * OW) << 2);
        const row = dx + (<usize>(ih * W + off) << 2);
        if (SW == 1) {
          let ow = ow0;
          for (; ow + 4 <= ow1; ow += 4) {
            const p = row + (<usize>ow << 2);
            v128.store(p, f32x4.add(v128.load(p), v128.load(src + (<usize>ow << 2))));
          }
          for (; ow < ow1; ow++) {
            const p = row + (<usize>ow << 2);
            store<f32>(p, load<f32>(p) + load<f32>(src + (<usize>ow << 2)));
          }
        } else {
          for (let ow = ow0; ow < ow1; ow++) {
            const p = row + (<usize>(ow * SW) << 2);
            store<f32>(p, load<f32>(p) + load<f32>(src + (<usize>ow << 2)));
          }
        }
      }
      cols += <usize>NL << 2;
    }
  }
}

// ---- tap-major weights: dst[rs][k][c] = w[k][c][rs] (one GEMM operand per kernel tap), or back
// (T_INV: w[k][c][rs] = dst[rs][k][c], the per-tap filter gradients into dw)
export const T_W: i32 = D_ARGS + 0;
export const T_DST: i32 = D_ARGS + 1;
export const T_K: i32 = D_ARGS + 2;
export const T_C: i32 = D_ARGS + 3;
export const T_RS: i32 = D_ARGS + 4;
export const T_INV: i32 = D_ARGS + 5;

/** Task k: filter row k of every tap. */
export function tapWeightsTask(d: usize, k: i32): void {
  const K = di(d, T_K), C = di(d, T_C), RS = di(d, T_RS), inv = di(d, T_INV) != 0;
  let w = du(d, T_W) + (<usize>k * <usize>C * <usize>RS << 2);
  const dst = du(d, T_DST) + (<usize>k * <usize>C << 2);
  const tapB = <usize>K * <usize>C << 2;
  for (let c = 0; c < C; c++) {
    let o = dst + (<usize>c << 2);
    for (let t = 0; t < RS; t++) {
      if (inv) store<f32>(w, load<f32>(o));
      else store<f32>(o, load<f32>(w));
      w += 4;
      o += tapB;
    }
  }
}
