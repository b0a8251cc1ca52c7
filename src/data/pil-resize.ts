// Bilinear resize of a uint8 image exactly as Pillow's Image.resize(size, BILINEAR) does it, which
// is what torchvision's Resize (and a weight set's transforms()) does to a PIL image: an
// antialiased triangle filter whose support grows with the shrink factor, coefficients computed in
// double and turned into 22-bit fixed point, a horizontal pass rounded to uint8, then a vertical
// pass over that rounded intermediate. The float path in transforms.ts (torch's kernel on tensors)
// rounds only once, so it differs from Pillow by one level at a few pixels; this one is bit-exact
// (checked against Debian's Pillow 9.4 in test/pretrained-http.test.ts).
import type { Image } from './dataset.js';

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

interface Coeffs {
  bounds: Int32Array; // [outN * 2]: first source index, tap count
  k: Int32Array; // [outN * ksize] fixed-point weights
  ksize: number;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis (box = the whole input). */
function coeffs(inN: number, outN: number): Coeffs {
  const scale = inN / outN;
  const filterscale = Math.max(scale, 1);
  const support = 1 * filterscale; // bilinear filter support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outN * 2);
  const k = new Int32Array(outN * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outN; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inN) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1 ? 1 - t : 0;
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { bounds, k, ksize };
}

function clip8(v: number): number {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / ONE);
}

/** Resize a uint8 CHW image to (oh, ow) as Pillow's BILINEAR resize; an axis whose size is kept is not filtered. */
export function resizePil(img: Image & { data: Uint8Array }, oh: number, ow: number): Image & { data: Uint8Array } {
  const { c, h, w, data } = img;
  let cur: Uint8Array = data;
  let curW = w;
  // Pillow filters the rows first, but only the rows the vertical pass will read
  // (ybox_first .. ybox_last); the result is the same as filtering all of them.
  if (ow !== w) {
    const { bounds, k, ksize } = coeffs(w, ow);
    const out = new Uint8Array(c * h * ow);
    for (let r = 0; r < c * h; r++) {
      const s = r * w;
      const d = r * ow;
      for (let x = 0; x < ow; x++) {
        const x0 = bounds[2 * x], n = bounds[2 * x + 1], o = x * ksize;
        let ss = ONE / 2;
        for (let j = 0; j < n; j++) ss += data[s + x0 + j] * k[o + j];
        out[d + x] = clip8(ss);
      }
    }
    cur = out;
    curW = ow;
  }
  if (oh !== h) {
    const { bounds, k, ksize } = coeffs(h, oh);
    const out = new Uint8Array(c * oh * curW);
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < oh; y++) {
        const y0 = bounds[2 * y], n = bounds[2 * y + 1], o = y * ksize;
        const d = (ch * oh + y) * curW;
        for (let x = 0; x < curW; x++) {
          let ss = ONE / 2;
          for (let j = 0; j < n; j++) ss += cur[(ch * h + y0 + j) * curW + x] * k[o + j];
          out[d + x] = clip8(ss);
        }
      }
    }
    cur = out;
  }
  return { data: cur, c, h: oh, w: curW };
}
