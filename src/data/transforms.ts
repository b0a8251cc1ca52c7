// Image transforms on single CHW images, browser-safe, torchvision semantics. Every random choice
// comes from the RNG passed to apply() (the loader gives each sample its own RNG derived from
// seed, epoch and index, so results do not depend on worker count or order). Transforms never
// write into their input (dataset images may be views of a shared buffer).
//
// dtype: geometric transforms keep the input dtype. Resize on uint8 interpolates in float and
// rounds half-to-even back to uint8, as torchvision does on uint8 tensors. ToFloat maps uint8 to
// [0, 1]; Normalize needs float input.
import { ConfigError, ShapeError } from '../base/errors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../base/imagenet.js';
import { RNG } from '../base/rng.js';
import { importSpecModule } from './spec-module.js';
import type { FloatImage, Image } from './dataset.js';
import { resizePil } from './pil-resize.js';

export type TransformSpec =
  | { name: string; args: Record<string, unknown> }
  | { module: string; factory: string; args: unknown };

export interface Transform {
  apply(img: Image, rng: RNG): Image;
  /** Serializable description (rebuilt in loader workers by transformFromSpec); null if not serializable. */
  spec(): TransformSpec | null;
}

export { IMAGENET_MEAN, IMAGENET_STD };

type Size2 = [number, number];

function size2(s: number | readonly number[], what: string): Size2 {
  const a = typeof s === 'number' ? [s, s] : s.length === 1 ? [s[0], s[0]] : [s[0], s[1]];
  if (a.length !== 2 || !a.every((v) => Number.isInteger(v) && v > 0)) {
    throw new ConfigError(`${what}: size must be a positive integer or [h, w], got ${JSON.stringify(s)}`);
  }
  return a as Size2;
}

function alloc(like: Image['data'], n: number): Image['data'] {
  return like instanceof Uint8Array ? new Uint8Array(n) : new Float32Array(n);
}

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---------------------------------------------------------------------------------------------
// functional ops

/** Crop rows [top, top+h) and columns [left, left+w); regions outside the image read as 0 (like torchvision's crop). */
export function crop(img: Image, top: number, left: number, h: number, w: number): Image {
  const { c, h: ih, w: iw, data } = img;
  const out = alloc(data, c * h * w);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      const sy = top + y;
      if (sy < 0 || sy >= ih) continue;
      const x0 = Math.max(0, -left);
      const x1 = Math.min(w, iw - left);
      if (x1 <= x0) continue;
      const src = (ch * ih + sy) * iw + left;
      const dst = (ch * h + y) * w;
      out.set(data.subarray(src + x0, src + x1), dst + x0);
    }
  }
  return { data: out, c, h, w };
}

export type PaddingMode = 'constant' | 'edge' | 'reflect' | 'symmetric';

function padIndex(i: number, n: number, mode: PaddingMode): number {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case 'edge':
      return i < 0 ? 0 : n - 1;
    case 'reflect': {
      if (n === 1) return 0;
      const p = 2 * (n - 1);
      let k = ((i % p) + p) % p;
      if (k >= n) k = p - k;
      return k;
    }
    case 'symmetric': {
      const p = 2 * n;
      let k = ((i % p) + p) % p;
      if (k >= n) k = p - 1 - k;
      return k;
    }
    default:
      return -1;
  }
}

/** Pad by [left, top, right, bottom]. */
export function pad(img: Image, ltrb: readonly [number, number, number, number], fill = 0, mode: PaddingMode = 'constant'): Image {
  const [l, t, r, b] = ltrb;
  const { c, h, w, data } = img;
  if (mode === 'reflect' && (l >= w || r >= w || t >= h || b >= h)) {
    throw new ConfigError(`reflect padding ${JSON.stringify(ltrb)} must be smaller than the image (${h}x${w})`);
  }
  const oh = h + t + b;
  const ow = w + l + r;
  const out = alloc(data, c * oh * ow);
  const xs = new Int32Array(ow);
  for (let x = 0; x < ow; x++) xs[x] = padIndex(x - l, w, mode);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < oh; y++) {
      const sy = padIndex(y - t, h, mode);
      const dst = (ch * oh + y) * ow;
      if (sy < 0) {
        out.fill(fill, dst, dst + ow);
        continue;
      }
      const src = (ch * h + sy) * w;
      for (let x = 0; x < ow; x++) out[dst + x] = xs[x] < 0 ? fill : data[src + xs[x]];
    }
  }
  return { data: out, c, h: oh, w: ow };
}

export function hflip(img: Image): Image {
  const { c, h, w, data } = img;
  const out = alloc(data, data.length);
  for (let r = 0; r < c * h; r++) {
    const o = r * w;
    for (let x = 0; x < w; x++) out[o + x] = data[o + w - 1 - x];
  }
  return { data: out, c, h, w };
}

interface Taps {
  idx: Int32Array; // [outN * stride] source index per tap
  weights: Float32Array; // [outN * stride]
  count: Int32Array; // taps used per output index
  stride: number;
}

const f32 = Math.fround;

/**
 * Source taps along one axis for torch's interpolate(mode='bilinear', align_corners=False), with
 * torch's float32 weights: the 2-tap kernel
 * (antialias=False), or the antialiased triangle filter of _upsample_bilinear2d_aa, whose support
 * grows with the scale when shrinking and which equals plain bilinear when enlarging.
 */
function bilinearTaps(inN: number, outN: number, antialias: boolean): Taps {
  const scale = f32(inN / outN);
  if (antialias) {
    const support = scale >= 1 ? f32(scale) : 1; // (interp_size / 2) * scale, interp_size = 2
    const stride = Math.ceil(support) * 2 + 1;
    const idx = new Int32Array(outN * stride);
    const count = new Int32Array(outN);
    const weights = new Float32Array(outN * stride);
    const inv = scale >= 1 ? f32(1 / scale) : 1;
    for (let i = 0; i < outN; i++) {
      const center = f32(scale * (i + 0.5));
      const xmin = Math.max(Math.trunc(f32(center - support) + 0.5), 0);
      const xsize = Math.min(Math.trunc(f32(center + support) + 0.5), inN) - xmin;
      let total = 0;
      for (let j = 0; j < xsize; j++) {
        let x = f32((f32(j + xmin - center) + 0.5) * inv);
        if (x < 0) x = -x;
        const wgt = x < 1 ? f32(1 - x) : 0;
        weights[i * stride + j] = wgt;
        idx[i * stride + j] = xmin + j;
        total = f32(total + wgt);
      }
      if (total !== 0) for (let j = 0; j < xsize; j++) weights[i * stride + j] = f32(weights[i * stride + j] / total);
      count[i] = xsize;
    }
    return { idx, weights, count, stride };
  }
  const idx = new Int32Array(outN * 2);
  const weights = new Float32Array(outN * 2);
  for (let i = 0; i < outN; i++) {
    // torch: float32 scale, source index in double, lambdas rounded to float32 (matches torch's weights bit for bit)
    const src = Math.max(scale * (i + 0.5) - 0.5, 0);
    const i0 = Math.trunc(src);
    const l1 = f32(Math.min(Math.max(src - i0, 0), 1));
    idx[2 * i] = i0;
    idx[2 * i + 1] = i0 < inN - 1 ? i0 + 1 : i0;
    weights[2 * i] = f32(1 - l1);
    weights[2 * i + 1] = l1;
  }
  return { idx, weights, count: new Int32Array(outN).fill(2), stride: 2 };
}

function nearestTaps(inN: number, outN: number): Taps {
  const scale = f32(inN / outN);
  const idx = new Int32Array(outN);
  for (let i = 0; i < outN; i++) idx[i] = Math.min(Math.floor(f32(i * scale)), inN - 1);
  return { idx, weights: new Float32Array(outN).fill(1), count: new Int32Array(outN).fill(1), stride: 1 };
}

export type Interpolation = 'bilinear' | 'nearest';

/**
 * Resize to exactly (oh, ow): torch's interpolate with align_corners=False (bilinear or nearest).
 * Weights are torch's; sums are taken in float64 and rounded once (torch's float32 sums differ by
 * about one ulp, so a uint8 result can differ by 1 where the exact value is a .5 tie). antialias (default true, as torchvision >= 0.17 and PIL) only
 * changes the result when shrinking.
 */
export function resize(img: Image, oh: number, ow: number, opts: { interpolation?: Interpolation; antialias?: boolean } = {}): Image {
  const { c, h, w, data } = img;
  if (oh === h && ow === w) return img;
  const interp = opts.interpolation ?? 'bilinear';
  const aa = (opts.antialias ?? true) && interp === 'bilinear';
  // torch's antialiased kernel skips an axis whose size does not change; the plain kernel does both
  const doX = !aa || ow !== w;
  const doY = !aa || oh !== h;
  // everything runs on float64 scratch buffers so the loops below see one array type (monomorphic)
  const src = scratch(0, c * h * w);
  for (let i = 0; i < c * h * w; i++) src[i] = data[i];
  const n = c * oh * ow;
  const out = scratch(2, n);
  if (doX && doY) {
    const tmp = scratch(1, c * h * ow);
    hpass(src, c * h, w, ow, getTaps(interp, aa, w, ow), tmp);
    vpass(tmp, c, h, oh, ow, getTaps(interp, aa, h, oh), out);
  } else if (doX) {
    hpass(src, c * h, w, ow, getTaps(interp, aa, w, ow), out);
  } else {
    vpass(src, c, h, oh, ow, getTaps(interp, aa, h, oh), out);
  }
  if (data instanceof Uint8Array) {
    const u = new Uint8Array(n);
    for (let i = 0; i < n; i++) u[i] = Math.min(255, Math.max(0, roundHalfEven(out[i])));
    return { data: u, c, h: oh, w: ow };
  }
  return { data: Float32Array.from(out.subarray(0, n)), c, h: oh, w: ow };
}

const scratchBufs = [new Float64Array(0), new Float64Array(0), new Float64Array(0)];
function scratch(k: number, n: number): Float64Array {
  if (scratchBufs[k].length < n) scratchBufs[k] = new Float64Array(Math.max(n, scratchBufs[k].length * 2));
  return scratchBufs[k];
}

const tapCache = new Map<string, Taps>();
function getTaps(interp: Interpolation, aa: boolean, inN: number, outN: number): Taps {
  const key = `${interp}${aa ? 'a' : ''}:${inN}:${outN}`;
  let t = tapCache.get(key);
  if (!t) {
    if (tapCache.size > 256) tapCache.clear();
    t = interp === 'nearest' ? nearestTaps(inN, outN) : bilinearTaps(inN, outN, aa);
    tapCache.set(key, t);
  }
  return t;
}

/** Resample each of `rows` rows of length w to length ow. */
function hpass(src: Float64Array, rows: number, w: number, ow: number, t: Taps, dst: Float64Array): void {
  const { idx, weights, count, stride } = t;
  for (let r = 0; r < rows; r++) {
    const s = r * w;
    const d = r * ow;
    if (stride === 2) {
      for (let x = 0; x < ow; x++) dst[d + x] = weights[2 * x] * src[s + idx[2 * x]] + weights[2 * x + 1] * src[s + idx[2 * x + 1]];
    } else {
      for (let x = 0; x < ow; x++) {
        const o = x * stride;
        let acc = 0;
        for (let k = 0; k < count[x]; k++) acc += weights[o + k] * src[s + idx[o + k]];
        dst[d + x] = acc;
      }
    }
  }
}

/** Resample the columns of c planes of h rows × ow to oh rows. */
function vpass(src: Float64Array, c: number, h: number, oh: number, ow: number, t: Taps, dst: Float64Array): void {
  const { idx, weights, count, stride } = t;
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < oh; y++) {
      const d = (ch * oh + y) * ow;
      const o = y * stride;
      if (count[y] === 2) {
        const w0 = weights[o];
        const w1 = weights[o + 1];
        const r0 = (ch * h + idx[o]) * ow;
        const r1 = (ch * h + idx[o + 1]) * ow;
        for (let x = 0; x < ow; x++) dst[d + x] = w0 * src[r0 + x] + w1 * src[r1 + x];
      } else {
        for (let x = 0; x < ow; x++) {
          let acc = 0;
          for (let k = 0; k < count[y]; k++) acc += weights[o + k] * src[(ch * h + idx[o + k]) * ow + x];
          dst[d + x] = acc;
        }
      }
    }
  }
}

/** torchvision's output size for Resize(size): an int resizes the shorter edge keeping the aspect ratio. */
export function resizedSize(h: number, w: number, size: number | readonly number[], maxSize?: number): Size2 {
  if (typeof size !== 'number' && size.length === 2) return [size[0], size[1]];
  const s = typeof size === 'number' ? size : size[0];
  const [short, long] = w <= h ? [w, h] : [h, w];
  let newShort = s;
  let newLong = Math.floor((s * long) / short);
  if (maxSize !== undefined) {
    if (maxSize <= s) throw new ConfigError(`Resize: maxSize ${maxSize} must be larger than size ${s}`);
    if (newLong > maxSize) {
      newShort = Math.floor((maxSize * newShort) / newLong);
      newLong = maxSize;
    }
  }
  return w <= h ? [newLong, newShort] : [newShort, newLong];
}

// ---------------------------------------------------------------------------------------------
// transform classes

export class ToFloat implements Transform {
  apply(img: Image): FloatImage {
    if (img.data instanceof Float32Array) return img as FloatImage;
    const out = new Float32Array(img.data.length);
    const s = 1 / 255;
    for (let i = 0; i < out.length; i++) out[i] = img.data[i] * s;
    return { data: out, c: img.c, h: img.h, w: img.w };
  }
  spec(): TransformSpec {
    return { name: 'ToFloat', args: {} };
  }
}

export class Resize implements Transform {
  readonly size: number | Size2;
  /**
   * `pil: true` resamples uint8 images exactly as Pillow does (what torchvision does to a PIL image,
   * e.g. in a weight set's transforms()); bilinear only. Float images take the torch path.
   */
  constructor(size: number | readonly number[], readonly opts: { interpolation?: Interpolation; antialias?: boolean; maxSize?: number; pil?: boolean } = {}) {
    this.size = typeof size === 'number' ? size2(size, 'Resize')[0] : size.length === 1 ? size2(size, 'Resize')[0] : size2(size, 'Resize');
    if (opts.pil && ((opts.interpolation ?? 'bilinear') !== 'bilinear' || opts.antialias === false)) {
      throw new ConfigError('Resize: pil: true is Pillow\'s antialiased bilinear resize (no other interpolation)');
    }
  }
  apply(img: Image): Image {
    const [oh, ow] = resizedSize(img.h, img.w, this.size, this.opts.maxSize);
    if (this.opts.pil && img.data instanceof Uint8Array) return resizePil(img as Image & { data: Uint8Array }, oh, ow);
    return resize(img, oh, ow, this.opts);
  }
  spec(): TransformSpec {
    return { name: 'Resize', args: { size: this.size, ...this.opts } };
  }
}

export class CenterCrop implements Transform {
  readonly size: Size2;
  constructor(size: number | readonly number[]) {
    this.size = size2(size, 'CenterCrop');
  }
  apply(img: Image): Image {
    const [ch, cw] = this.size;
    if (cw > img.w || ch > img.h) {
      img = pad(img, [
        cw > img.w ? (cw - img.w) >> 1 : 0,
        ch > img.h ? (ch - img.h) >> 1 : 0,
        cw > img.w ? (cw - img.w + 1) >> 1 : 0,
        ch > img.h ? (ch - img.h + 1) >> 1 : 0,
      ]);
      if (img.w === cw && img.h === ch) return img;
    }
    return crop(img, roundHalfEven((img.h - ch) / 2), roundHalfEven((img.w - cw) / 2), ch, cw);
  }
  spec(): TransformSpec {
    return { name: 'CenterCrop', args: { size: this.size } };
  }
}

export class RandomResizedCrop implements Transform {
  readonly size: Size2;
  readonly scale: [number, number];
  readonly ratio: [number, number];
  constructor(size: number | readonly number[], readonly opts: { scale?: [number, number]; ratio?: [number, number]; interpolation?: Interpolation; antialias?: boolean } = {}) {
    this.size = size2(size, 'RandomResizedCrop');
    this.scale = opts.scale ?? [0.08, 1];
    this.ratio = opts.ratio ?? [3 / 4, 4 / 3];
    if (this.scale[0] > this.scale[1] || this.ratio[0] > this.ratio[1]) {
      throw new ConfigError(`RandomResizedCrop: scale and ratio must be [min, max], got ${JSON.stringify([this.scale, this.ratio])}`);
    }
  }
  /** torchvision's get_params: [top, left, h, w]. */
  params(h: number, w: number, rng: RNG): [number, number, number, number] {
    const r = drawRect(h, w, this.scale, this.ratio, 'width', rng, (ch, cw) => cw > 0 && cw <= w && ch > 0 && ch <= h);
    if (r) return r;
    const inRatio = w / h;
    let cw = w;
    let ch = h;
    if (inRatio < this.ratio[0]) ch = roundHalfEven(cw / this.ratio[0]);
    else if (inRatio > this.ratio[1]) cw = roundHalfEven(ch * this.ratio[1]);
    return [(h - ch) >> 1, (w - cw) >> 1, ch, cw];
  }
  apply(img: Image, rng: RNG): Image {
    const [t, l, ch, cw] = this.params(img.h, img.w, rng);
    return resize(crop(img, t, l, ch, cw), this.size[0], this.size[1], this.opts);
  }
  spec(): TransformSpec {
    return { name: 'RandomResizedCrop', args: { size: this.size, ...this.opts, scale: this.scale, ratio: this.ratio } };
  }
}

export class RandomCrop implements Transform {
  readonly size: Size2;
  readonly padding: [number, number, number, number] | null;
  constructor(size: number | readonly number[], readonly opts: { padding?: number | readonly number[]; padIfNeeded?: boolean; fill?: number; paddingMode?: PaddingMode } = {}) {
    this.size = size2(size, 'RandomCrop');
    const p = opts.padding;
    this.padding =
      p === undefined ? null
      : typeof p === 'number' ? [p, p, p, p]
      : p.length === 2 ? [p[0], p[1], p[0], p[1]]
      : p.length === 4 ? [p[0], p[1], p[2], p[3]]
      : null;
    if (p !== undefined && this.padding === null) throw new ConfigError(`RandomCrop: padding must be an int or 2 or 4 ints, got ${JSON.stringify(p)}`);
  }
  apply(img: Image, rng: RNG): Image {
    const fill = this.opts.fill ?? 0;
    const mode = this.opts.paddingMode ?? 'constant';
    if (this.padding) img = pad(img, this.padding, fill, mode);
    const [th, tw] = this.size;
    if (this.opts.padIfNeeded && img.w < tw) img = pad(img, [tw - img.w, 0, tw - img.w, 0], fill, mode);
    if (this.opts.padIfNeeded && img.h < th) img = pad(img, [0, th - img.h, 0, th - img.h], fill, mode);
    if (img.h < th || img.w < tw) throw new ShapeError(`RandomCrop: crop ${th}x${tw} is larger than the (padded) image ${img.h}x${img.w}`);
    if (img.h === th && img.w === tw) return img;
    const top = rng.int(img.h - th + 1);
    const left = rng.int(img.w - tw + 1);
    return crop(img, top, left, th, tw);
  }
  spec(): TransformSpec {
    return { name: 'RandomCrop', args: { size: this.size, ...this.opts } };
  }
}

export class RandomHorizontalFlip implements Transform {
  constructor(readonly p = 0.5) {}
  apply(img: Image, rng: RNG): Image {
    return rng.random() < this.p ? hflip(img) : img;
  }
  spec(): TransformSpec {
    return { name: 'RandomHorizontalFlip', args: { p: this.p } };
  }
}

/**
 * torchvision's RandomErasing (Zhong et al. 2017, arXiv:1708.04896): with probability p, one
 * rectangle covering scale[0]..scale[1] of the area, aspect ratio log-uniform in ratio, is set to
 * `value` in every channel. Meant for float images after Normalize (value 0 = the dataset mean).
 * Up to 10 draws for a rectangle that fits strictly inside; if none does, the image is unchanged.
 */
/**
 * torchvision's get_params loop, shared by RandomResizedCrop and RandomErasing: up to 10 draws of a
 * rectangle whose area is a uniform share (`scale`) of h*w and whose aspect ratio is log-uniform in
 * `ratio`; the ratio is width/height for the crop and height/width for the erasing (as torchvision has
 * them). Returns [top, left, rh, rw] of the first draw that `fits`, placed uniformly, or null.
 */
function drawRect(h: number, w: number, scale: [number, number], ratio: [number, number], ratioOf: 'width' | 'height', rng: RNG,
  fits: (rh: number, rw: number) => boolean): [number, number, number, number] | null {
  const logR = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = h * w * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logR[0], logR[1]));
    const num = roundHalfEven(Math.sqrt(target * aspect)); // the ratio's numerator side
    const den = roundHalfEven(Math.sqrt(target / aspect));
    const [rh, rw] = ratioOf === 'width' ? [den, num] : [num, den];
    if (fits(rh, rw)) return [rng.int(h - rh + 1), rng.int(w - rw + 1), rh, rw];
  }
  return null;
}

export class RandomErasing implements Transform {
  constructor(readonly p = 0.5, readonly scale: [number, number] = [0.02, 0.33], readonly ratio: [number, number] = [0.3, 3.3], readonly value = 0) {
    if (!(p >= 0 && p <= 1)) throw new ConfigError(`RandomErasing: p must be in [0, 1], got ${p}`);
    if (!(scale[0] >= 0 && scale[0] <= scale[1] && scale[1] <= 1) || !(ratio[0] > 0 && ratio[0] <= ratio[1])) {
      throw new ConfigError(`RandomErasing: scale must be [min, max] within [0, 1] and ratio [min, max] > 0, got ${JSON.stringify([scale, ratio])}`);
    }
  }
  /** The rectangle [top, left, h, w] (torchvision's get_params), or null when no draw fits. */
  params(h: number, w: number, rng: RNG): [number, number, number, number] | null {
    return drawRect(h, w, this.scale, this.ratio, 'height', rng, (eh, ew) => eh < h && ew < w);
  }
  apply(img: Image, rng: RNG): Image {
    if (!(img.data instanceof Float32Array)) throw new ConfigError('RandomErasing needs a float image: put it after ToFloat()/Normalize()');
    if (!(rng.random() < this.p)) return img;
    const r = this.params(img.h, img.w, rng);
    if (!r) return img;
    const [top, left, eh, ew] = r;
    const out = img.data.slice();
    for (let ch = 0; ch < img.c; ch++) {
      for (let y = top; y < top + eh; y++) out.fill(this.value, (ch * img.h + y) * img.w + left, (ch * img.h + y) * img.w + left + ew);
    }
    return { data: out, c: img.c, h: img.h, w: img.w };
  }
  spec(): TransformSpec {
    return { name: 'RandomErasing', args: { p: this.p, scale: this.scale, ratio: this.ratio, value: this.value } };
  }
}

export class Normalize implements Transform {
  readonly mean: number[];
  readonly std: number[];
  constructor(mean: readonly number[], std: readonly number[]) {
    if (mean.length !== std.length || mean.length === 0) throw new ConfigError(`Normalize: mean and std need the same non-zero length (${mean.length} vs ${std.length})`);
    if (std.some((s) => !(s > 0))) throw new ConfigError(`Normalize: std must be positive, got ${JSON.stringify(std)}`);
    this.mean = [...mean];
    this.std = [...std];
  }
  static imagenet(): Normalize {
    return new Normalize(IMAGENET_MEAN, IMAGENET_STD);
  }
  apply(img: Image): FloatImage {
    if (!(img.data instanceof Float32Array)) throw new ConfigError('Normalize needs a float image: put ToFloat() before it');
    const { c, h, w, data } = img;
    if (this.mean.length !== 1 && this.mean.length !== c) {
      throw new ShapeError(`Normalize: ${this.mean.length} channel means for an image with ${c} channels`);
    }
    const out = new Float32Array(data.length);
    const hw = h * w;
    for (let ch = 0; ch < c; ch++) {
      const m = this.mean.length === 1 ? this.mean[0] : this.mean[ch];
      const inv = 1 / (this.std.length === 1 ? this.std[0] : this.std[ch]);
      for (let i = ch * hw; i < (ch + 1) * hw; i++) out[i] = (data[i] - m) * inv;
    }
    return { data: out, c, h, w };
  }
  spec(): TransformSpec {
    return { name: 'Normalize', args: { mean: this.mean, std: this.std } };
  }
}

/** RGB to luminance (0.2989 R + 0.587 G + 0.114 B, torchvision's weights), then 1 or 3 equal channels. */
export class Grayscale implements Transform {
  constructor(readonly numOutputChannels: 1 | 3 = 1) {
    if (numOutputChannels !== 1 && numOutputChannels !== 3) throw new ConfigError(`Grayscale: numOutputChannels must be 1 or 3, got ${numOutputChannels}`);
  }
  apply(img: Image): Image {
    const { c, h, w, data } = img;
    const hw = h * w;
    let gray: Image['data'];
    if (c === 1) gray = data;
    else if (c === 3 || c === 4) {
      gray = alloc(data, hw);
      const u8 = data instanceof Uint8Array;
      for (let i = 0; i < hw; i++) {
        const v = 0.2989 * data[i] + 0.587 * data[hw + i] + 0.114 * data[2 * hw + i];
        gray[i] = u8 ? Math.min(255, roundHalfEven(v)) : v;
      }
    } else throw new ShapeError(`Grayscale: cannot convert an image with ${c} channels`);
    const out = alloc(data, this.numOutputChannels * hw);
    for (let k = 0; k < this.numOutputChannels; k++) out.set(gray.subarray(0, hw), k * hw);
    return { data: out, c: this.numOutputChannels, h, w };
  }
  spec(): TransformSpec {
    return { name: 'Grayscale', args: { numOutputChannels: this.numOutputChannels } };
  }
}

/** To three channels: gray is repeated, alpha is dropped. */
export class ToRGB implements Transform {
  apply(img: Image): Image {
    const { c, h, w, data } = img;
    const hw = h * w;
    if (c === 3) return img;
    if (c !== 1 && c !== 2 && c !== 4) throw new ShapeError(`ToRGB: cannot convert an image with ${c} channels`);
    const out = alloc(data, 3 * hw);
    if (c === 4) out.set(data.subarray(0, 3 * hw));
    else for (let k = 0; k < 3; k++) out.set(data.subarray(0, hw), k * hw);
    return { data: out, c: 3, h, w };
  }
  spec(): TransformSpec {
    return { name: 'ToRGB', args: {} };
  }
}

export class Pad implements Transform {
  readonly padding: [number, number, number, number];
  constructor(padding: number | readonly number[], readonly fill = 0, readonly mode: PaddingMode = 'constant') {
    const p = typeof padding === 'number' ? [padding, padding, padding, padding] : padding.length === 2 ? [padding[0], padding[1], padding[0], padding[1]] : [...padding];
    if (p.length !== 4 || p.some((v) => !Number.isInteger(v) || v < 0)) throw new ConfigError(`Pad: padding must be 1, 2 or 4 non-negative ints, got ${JSON.stringify(padding)}`);
    this.padding = p as [number, number, number, number];
  }
  apply(img: Image): Image {
    return pad(img, this.padding, this.fill, this.mode);
  }
  spec(): TransformSpec {
    return { name: 'Pad', args: { padding: this.padding, fill: this.fill, mode: this.mode } };
  }
}

export class Compose implements Transform {
  readonly transforms: Transform[];
  constructor(transforms: Transform[]) {
    this.transforms = transforms;
  }
  apply(img: Image, rng: RNG): Image {
    for (const t of this.transforms) img = t.apply(img, rng);
    return img;
  }
  spec(): TransformSpec | null {
    const specs = this.transforms.map((t) => t.spec());
    return specs.some((s) => s === null) ? null : { name: 'Compose', args: { transforms: specs } };
  }
}

export function compose(...transforms: Transform[]): Compose {
  return new Compose(transforms);
}

/** A transform from a plain function. Not serializable unless `spec` names an exported factory. */
export class Lambda implements Transform {
  constructor(readonly fn: (img: Image, rng: RNG) => Image, readonly specValue: TransformSpec | null = null) {}
  apply(img: Image, rng: RNG): Image {
    return this.fn(img, rng);
  }
  spec(): TransformSpec | null {
    return this.specValue;
  }
}

type A = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const REGISTRY: Record<string, (a: A) => Transform> = {
  ToFloat: () => new ToFloat(),
  Resize: (a) => new Resize(a.size, { interpolation: a.interpolation, antialias: a.antialias, maxSize: a.maxSize, ...(a.pil ? { pil: true } : {}) }),
  CenterCrop: (a) => new CenterCrop(a.size),
  RandomResizedCrop: (a) => new RandomResizedCrop(a.size, { scale: a.scale, ratio: a.ratio, interpolation: a.interpolation, antialias: a.antialias }),
  RandomCrop: (a) => new RandomCrop(a.size, { padding: a.padding, padIfNeeded: a.padIfNeeded, fill: a.fill, paddingMode: a.paddingMode }),
  RandomHorizontalFlip: (a) => new RandomHorizontalFlip(a.p),
  Normalize: (a) => new Normalize(a.mean, a.std),
  RandomErasing: (a) => new RandomErasing(a.p, a.scale, a.ratio, a.value),
  Grayscale: (a) => new Grayscale(a.numOutputChannels),
  ToRGB: () => new ToRGB(),
  Pad: (a) => new Pad(a.padding, a.fill, a.mode),
  Compose: (a) => new Compose((a.transforms as TransformSpec[]).map((s) => transformFromSpecSync(s))),
};

function transformFromSpecSync(spec: TransformSpec): Transform {
  if ('module' in spec) throw new ConfigError('module transforms must be loaded with transformFromSpec (async)');
  const f = REGISTRY[spec.name];
  if (!f) throw new ConfigError(`unknown transform '${spec.name}'`);
  return f(spec.args);
}

/** Rebuild a transform from its spec; `{module, factory}` specs import the module. */
export async function transformFromSpec(spec: TransformSpec): Promise<Transform> {
  if ('module' in spec) {
    const mod = await importSpecModule(spec.module);
    const f = mod[spec.factory];
    if (typeof f !== 'function') throw new ConfigError(`transform factory '${spec.factory}' not exported by ${spec.module}`);
    return await (f as (a: unknown) => Transform | Promise<Transform>)(spec.args);
  }
  if (spec.name === 'Compose') {
    return new Compose(await Promise.all((spec.args.transforms as TransformSpec[]).map(transformFromSpec)));
  }
  return transformFromSpecSync(spec);
}

/** The usual ImageNet-style training pipeline: RandomResizedCrop, horizontal flip, ToFloat, Normalize. */
export function imagenetTrainTransform(size = 224): Compose {
  return compose(new ToRGB(), new RandomResizedCrop(size), new RandomHorizontalFlip(), new ToFloat(), Normalize.imagenet());
}

/** The usual evaluation pipeline: Resize(size / 0.875), CenterCrop(size), ToFloat, Normalize. */
export function imagenetEvalTransform(size = 224, resizeSize = Math.round(size / 0.875)): Compose {
  return compose(new ToRGB(), new Resize(resizeSize), new CenterCrop(size), new ToFloat(), Normalize.imagenet());
}

/**
 * The evaluation transform of a weight set (a PretrainedWeights, or anything with its
 * `preprocessing`), as torchvision's `weights.transforms()` does it to a PIL image: resize the
 * shorter side (Pillow's antialiased bilinear, bit-exact on uint8 images), center crop, scale to
 * [0, 1], normalize. Gray or RGBA input is made RGB first, like `Image.convert('RGB')`.
 */
export function weightsTransforms(w: { preprocessing: { resizeSize: number; cropSize: number; interpolation: Interpolation; mean: readonly number[]; std: readonly number[] } }): Compose {
  const p = w.preprocessing;
  return compose(new ToRGB(), new Resize(p.resizeSize, { interpolation: p.interpolation, antialias: true, pil: true }), new CenterCrop(p.cropSize), new ToFloat(), new Normalize(p.mean, p.std));
}
