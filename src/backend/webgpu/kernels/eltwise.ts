// WebGPU kernels: fill, unary, binary, affine, reluBackward, unaryBackward, maxMinBackward,
// transpose2d, addInPlace, sumTo. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
import { Uniforms, type GpuRuntime, type GpuStorage } from '../runtime.js';
import type { BinaryOp, UnaryOp } from '../../backend.js';

/** A 2D grid of `groups` workgroups (x ≤ maxGroups), so that big element counts fit the per-dimension limit. */
export function grid(rt: GpuRuntime, groups: number): [number, number] {
  const gx = Math.max(1, Math.min(groups, rt.maxGroups));
  return [gx, Math.ceil(groups / gx)];
}

/** WGSL: `isnan` that no fast-math assumption can fold away (WGSL lets compilers assume finite floats). */
const ISNAN = `fn isnan_(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }`;

export interface MapSpec {
  /** Names the WGSL body (the pipeline key adds the aliasing pattern). */
  key: string;
  n: number;
  /** Buffers read at [i] into `var <name>`. */
  ins: Record<string, GpuStorage>;
  /** Buffers written at [i] from `var <name>` (declared, or loaded when the name is also in ins). */
  outs: Record<string, GpuStorage>;
  /** WGSL statements that assign the outs from the ins and `u.<param>`. */
  body: string;
  /** Uniform f32 parameters, in order, read as u.<name>. */
  params?: Record<string, number>;
  /** Element type of every buffer (u32 for bit-exact kernels such as relu). */
  type?: 'f32' | 'u32';
}

/**
 * An elementwise kernel over n elements: each thread reads element i of its ins and writes
 * element i of its outs. One buffer that appears under several names (in-place use, y = f(y))
 * is bound once, read_write, since WebGPU rejects a writable buffer bound twice; that is safe
 * here because every thread touches only its own element.
 */
export function map(rt: GpuRuntime, s: MapSpec): void {
  const type = s.type ?? 'f32';
  const bufs: GpuStorage[] = [];
  const writable: boolean[] = [];
  const slot = (b: GpuStorage, w: boolean): number => {
    let k = bufs.findIndex((x) => x.buffer === b.buffer);
    if (k < 0) {
      k = bufs.length;
      bufs.push(b);
      writable.push(false);
    }
    if (w) writable[k] = true;
    return k;
  };
  const inSlots = Object.entries(s.ins).map(([name, b]) => [name, slot(b, false)] as const);
  const outSlots = Object.entries(s.outs).map(([name, b]) => [name, slot(b, true)] as const);
  for (const [name, b] of [...Object.entries(s.ins), ...Object.entries(s.outs)]) {
    if (b.length < s.n) throw new RangeError(`webgpu ${s.key}: buffer ${name} holds ${b.length} floats, needs ${s.n}`);
  }
  const params = Object.entries(s.params ?? {});
  const [gx, gy] = grid(rt, Math.ceil(s.n / 256));
  const pattern = [...inSlots, ...outSlots].map(([, k]) => k).join('');
  const u = new Uniforms().u32(s.n, gx);
  for (const [, v] of params) u.f32(v);
  rt.dispatch({
    key: `map:${s.key}:${pattern}`,
    code: () => `
${ISNAN}
struct U { n: u32, gx: u32, ${params.map(([p]) => `${p}: f32,`).join(' ')} }
@group(0) @binding(0) var<uniform> u: U;
${bufs.map((_, k) => `@group(0) @binding(${k + 1}) var<storage, ${writable[k] ? 'read_write' : 'read'}> b${k}: array<${type}>;`).join('\n')}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * u.gx + wg.x) * 256u + li;
  if (i >= u.n) { return; }
  ${inSlots.map(([name, k]) => `var ${name} = b${k}[i];`).join(' ')}
  ${outSlots
    .filter(([name]) => !(name in s.ins))
    .map(([name]) => `var ${name}: ${type};`)
    .join(' ')}
  ${s.body}
  ${outSlots.map(([name, k]) => `b${k}[i] = ${name};`).join(' ')}
}`,
    uniforms: u,
    buffers: bufs,
    groups: [gx, gy],
  });
}

export function fill(rt: GpuRuntime, dst: GpuStorage, value: number): void {
  map(rt, { key: 'fill', n: dst.length, ins: {}, outs: { y: dst }, body: 'y = u.value;', params: { value } });
}

// relu works on the bits: WGSL may assume floats are finite, and PyTorch's relu keeps NaN and -0
// exactly (zero only where the value is negative and not NaN).
const UNARY: Record<UnaryOp, string> = {
  neg: 'y = -x;',
  exp: 'y = exp(x);',
  log: 'y = log(x);',
  sqrt: 'y = sqrt(x);',
  abs: 'y = abs(x);',
  relu: 'y = select(x, 0u, (x >> 31u) == 1u && (x & 0x7fffffffu) <= 0x7f800000u && (x & 0x7fffffffu) != 0u);',
  sigmoid: 'y = 1.0 / (1.0 + exp(-x));',
  // tanh(x) = sign(x) (1 - 2/(exp(2|x|)+1)): ±1 at large |x| where (e^x-e^-x)/(e^x+e^-x) is inf/inf;
  // a Taylor series below 0.25, where that form would lose digits to cancellation
  tanh: 'let x2 = x * x; if (abs(x) < 0.25) { y = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * 62.0 / 2835.0)))); } else { y = sign(x) * (1.0 - 2.0 / (exp(2.0 * abs(x)) + 1.0)); }',
};

export function unary(rt: GpuRuntime, op: UnaryOp, x: GpuStorage, y: GpuStorage): void {
  const body = UNARY[op];
  if (!body) throw new Error(`webgpu: unknown unary op ${op as string}`);
  map(rt, { key: `unary-${op}`, n: x.length, ins: { x }, outs: { y }, body, type: op === 'relu' ? 'u32' : 'f32' });
}

const BINARY: Record<BinaryOp, string> = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  // NaN in either operand wins, as in the ref (and PyTorch's maximum/minimum)
  max: 'select(b, a, a > b || isnan_(a))',
  min: 'select(b, a, a < b || isnan_(a))',
};

/** Contiguous strides with 0 where a dimension is broadcast (size 1). */
function bstrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = shape[i] === 1 ? 0 : s;
    s *= shape[i];
  }
  return st;
}

const MAX_RANK = 8;

/**
 * The output shape and each operand's strides with size-1 output dims dropped and neighbouring
 * dims merged where every operand steps through them contiguously alike, so that what the GPU
 * decodes is short (a [N,C,H,W] + [1,C,1,1] add becomes [N, C, HW] with strides [0,1,0]).
 */
function collapse(outShape: readonly number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const shape: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let d = 0; d < outShape.length; d++) {
    if (outShape[d] === 1) continue;
    const last = shape.length - 1;
    // merge d into the previous kept dim when, for every operand, stride[prev] == stride[d] * size[d]
    if (last >= 0 && strides.every((s, k) => st[k][last] === s[d] * outShape[d])) {
      shape[last] *= outShape[d];
      strides.forEach((s, k) => (st[k][last] = s[d]));
    } else {
      shape.push(outShape[d]);
      strides.forEach((s, k) => st[k].push(s[d]));
    }
  }
  if (shape.length === 0) {
    shape.push(1);
    st.forEach((s) => s.push(0));
  }
  if (shape.length > MAX_RANK) throw new RangeError(`webgpu: broadcast over ${shape.length} independent dimensions (at most ${MAX_RANK})`);
  return { shape, strides: st };
}

/** Uniform words for up to MAX_RANK dims as two vec4u (uniform arrays need a 16-byte stride). */
function dims8(v: number[]): number[] {
  const out = new Array<number>(MAX_RANK).fill(0);
  v.forEach((x, i) => (out[i] = x));
  return out;
}

/** WGSL: offsets into up to 3 broadcast operands from the flat output index i (shape/strides in u). */
const BCAST_DECODE = (ops: number) => `
  var rem = i;
  ${Array.from({ length: ops }, (_, k) => `var o${k} = 0u;`).join(' ')}
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let sz = u.shape[d / 4][d % 4];
    let c = rem % sz;
    rem = rem / sz;
    ${Array.from({ length: ops }, (_, k) => `o${k} += c * u.s${k}[d / 4][d % 4];`).join(' ')}
  }`;

const BCAST_UNIFORMS = (ops: number) =>
  `struct U { n: u32, gx: u32, rank: u32, pad: u32, shape: array<vec4u, 2>, ${Array.from({ length: ops }, (_, k) => `s${k}: array<vec4u, 2>,`).join(' ')} }`;

export function binary(
  rt: GpuRuntime,
  op: BinaryOp,
  a: GpuStorage,
  aShape: readonly number[],
  b: GpuStorage,
  bShape: readonly number[],
  out: GpuStorage,
  outShape: readonly number[],
): void {
  const expr = BINARY[op];
  if (!expr) throw new Error(`webgpu: unknown binary op ${op as string}`);
  const n = out.length;
  if (a.length === n && b.length === n) {
    map(rt, { key: `binary-${op}`, n, ins: { a, b }, outs: { y: out }, body: `y = ${expr};` });
    return;
  }
  const { shape, strides } = collapse(outShape, [bstrides(aShape), bstrides(bShape)]);
  // the output is written at i and read nowhere else, but a or b may be the output buffer itself
  // (x += bias, in place): bind each distinct buffer once
  const bufs: GpuStorage[] = [];
  const slot = (s: GpuStorage): number => {
    const k = bufs.findIndex((x) => x.buffer === s.buffer);
    return k >= 0 ? k : bufs.push(s) - 1;
  };
  const [sa, sb, so] = [slot(a), slot(b), slot(out)];
  const [gx, gy] = grid(rt, Math.ceil(n / 256));
  rt.dispatch({
    key: `binary-bcast-${op}:${sa}${sb}${so}`,
    code: () => `
${ISNAN}
${BCAST_UNIFORMS(2)}
@group(0) @binding(0) var<uniform> u: U;
${bufs.map((_, k) => `@group(0) @binding(${k + 1}) var<storage, ${k === so ? 'read_write' : 'read'}> b${k}: array<f32>;`).join('\n')}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * u.gx + wg.x) * 256u + li;
  if (i >= u.n) { return; }
  ${BCAST_DECODE(2)}
  let a = b${sa}[o0];
  let b = b${sb}[o1];
  b${so}[i] = ${expr};
}`,
    uniforms: new Uniforms()
      .u32(n, gx, shape.length, 0)
      .u32(...dims8(shape))
      .u32(...dims8(strides[0]))
      .u32(...dims8(strides[1])),
    buffers: bufs,
    groups: [gx, gy],
  });
}

export function affine(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, alpha: number, beta: number): void {
  map(rt, { key: 'affine', n: x.length, ins: { x }, outs: { y }, body: 'y = x * u.alpha + u.beta;', params: { alpha, beta } });
}

export function reluBackward(rt: GpuRuntime, dy: GpuStorage, y: GpuStorage, dx: GpuStorage): void {
  // bits again: zero where y <= 0 (not NaN, and -0 or +0 or negative), else dy's bits unchanged
  map(rt, {
    key: 'relu-backward',
    n: dy.length,
    ins: { dy, y },
    outs: { dx },
    body: 'let m = y & 0x7fffffffu; dx = select(dy, 0u, m <= 0x7f800000u && ((y >> 31u) == 1u || m == 0u));',
    type: 'u32',
  });
}

const UNARY_BACKWARD = {
  abs: 'dx = dy * select(sign(x), x, isnan_(x));',
  sigmoid: 'dx = dy * y * (1.0 - y);',
  tanh: 'dx = dy * (1.0 - y * y);',
};

export function unaryBackward(rt: GpuRuntime, op: 'abs' | 'sigmoid' | 'tanh', dy: GpuStorage, x: GpuStorage, y: GpuStorage, dx: GpuStorage): void {
  const body = UNARY_BACKWARD[op];
  if (!body) throw new Error(`webgpu: no backward kernel for unary op ${op as string}`);
  map(rt, { key: `unary-backward-${op}`, n: dy.length, ins: op === 'abs' ? { dy, x } : { dy, y }, outs: { dx }, body });
}

export function maxMinBackward(
  rt: GpuRuntime,
  dy: GpuStorage,
  a: GpuStorage,
  aShape: readonly number[],
  y: GpuStorage,
  yShape: readonly number[],
  da: GpuStorage,
  db: GpuStorage,
): void {
  const n = y.length;
  const { shape, strides } = collapse(yShape, [bstrides(aShape)]);
  const [gx, gy] = grid(rt, Math.ceil(n / 256));
  rt.dispatch({
    key: 'max-min-backward',
    code: () => `
${ISNAN}
${BCAST_UNIFORMS(1)}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> da: array<f32>;
@group(0) @binding(5) var<storage, read_write> db: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * u.gx + wg.x) * 256u + li;
  if (i >= u.n) { return; }
  ${BCAST_DECODE(1)}
  let yv = y[i];
  let sel = yv == a[o0] && !isnan_(yv);
  let g = dy[i];
  da[i] = select(0.0, g, sel);
  db[i] = select(g, 0.0, sel);
}`,
    uniforms: new Uniforms()
      .u32(n, gx, shape.length, 0)
      .u32(...dims8(shape))
      .u32(...dims8(strides[0])),
    buffers: [dy, a, y, da, db],
    groups: [gx, gy],
  });
}

export function transpose2d(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, rows: number, cols: number): void {
  // 16×16 tiles through workgroup memory (one row of padding against bank conflicts), so both the
  // reads of x and the writes of y are contiguous along a tile row
  rt.dispatch({
    key: 'transpose2d',
    code: () => `
struct U { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
var<workgroup> tile: array<f32, 272>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) l: vec3u) {
  let r = wg.y * 16u + l.y;
  let c = wg.x * 16u + l.x;
  if (r < u.rows && c < u.cols) { tile[l.y * 17u + l.x] = x[r * u.cols + c]; }
  workgroupBarrier();
  let yr = wg.x * 16u + l.y; // a column of x
  let yc = wg.y * 16u + l.x; // a row of x
  if (yr < u.cols && yc < u.rows) { y[yr * u.rows + yc] = tile[l.x * 17u + l.y]; }
}`,
    uniforms: new Uniforms().u32(rows, cols),
    buffers: [x, y],
    groups: [Math.ceil(cols / 16), Math.ceil(rows / 16)],
  });
}

export function addInPlace(rt: GpuRuntime, y: GpuStorage, x: GpuStorage): void {
  map(rt, { key: 'add-in-place', n: y.length, ins: { y, x }, outs: { y }, body: 'y = y + x;' });
}

/**
 * sumTo: out[o] = sum of x over the reduced axes. Axes are split into kept ones (out's order,
 * so o is row-major over them) and reduced ones, each list collapsed. Few values per output:
 * one thread per output. Many: a 256-thread workgroup per output (strided loads, then a tree in
 * workgroup memory), and when there are few outputs and very many values each (a bias gradient
 * over N*H*W), a first pass in which several workgroups each reduce a chunk to a partial sum,
 * then this same reduction over the partials.
 */
export function sumTo(rt: GpuRuntime, x: GpuStorage, shape: readonly number[], out: GpuStorage, outShape: readonly number[]): void {
  if (shape.length !== outShape.length) throw new RangeError(`webgpu sumTo: rank ${shape.length} vs ${outShape.length}`);
  const st = bstrides(shape).map((s, d) => (shape[d] === 1 ? 0 : s));
  const keep: [number, number][] = [],
    red: [number, number][] = [];
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    if (outShape[d] === shape[d]) keep.push([shape[d], st[d]]);
    else if (outShape[d] === 1) red.push([shape[d], st[d]]);
    else throw new RangeError(`webgpu sumTo: cannot sum [${shape.join(',')}] to [${outShape.join(',')}]`);
  }
  const M = keep.reduce((p, [s]) => p * s, 1);
  const R = red.reduce((p, [s]) => p * s, 1);
  if (out.length !== M) throw new RangeError(`webgpu sumTo: output buffer of ${out.length} floats for shape [${outShape.join(',')}]`);
  if (R === 1) {
    rt.copy(x, out);
    return;
  }
  reduce(rt, x, out, merge(keep), merge(red), M, R);
}

/** Merges neighbouring (size, stride) dims where the outer one steps as the inner one's extent. */
function merge(dims: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [s, t] of dims) {
    const last = out[out.length - 1];
    if (last && last[1] === t * s) {
      last[0] *= s;
      last[1] = t;
    } else out.push([s, t]);
  }
  if (out.length > MAX_RANK) throw new RangeError(`webgpu sumTo: ${out.length} separate axes (at most ${MAX_RANK})`);
  return out;
}

const SERIAL_MAX = 64; // at most this many values per output: one thread per output
const CHUNK = 4096; // values one workgroup reduces in the first pass of a split reduction

function reduce(rt: GpuRuntime, x: GpuStorage, out: GpuStorage, keep: [number, number][], red: [number, number][], M: number, R: number): void {
  const u = (splits: number, chunk: number, gx: number) =>
    new Uniforms()
      .u32(M, R, keep.length, red.length, splits, chunk, gx, 0)
      .u32(...dims8(keep.map((d) => d[0])))
      .u32(...dims8(keep.map((d) => d[1])))
      .u32(...dims8(red.map((d) => d[0])))
      .u32(...dims8(red.map((d) => d[1])));
  const header = `
struct U { m: u32, r: u32, nk: u32, nr: u32, splits: u32, chunk: u32, gx: u32, pad: u32,
  ks: array<vec4u, 2>, kt: array<vec4u, 2>, rs: array<vec4u, 2>, rt: array<vec4u, 2> }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
fn base(o: u32) -> u32 {
  var rem = o; var off = 0u;
  for (var d = i32(u.nk) - 1; d >= 0; d--) { let s = u.ks[d / 4][d % 4]; off += (rem % s) * u.kt[d / 4][d % 4]; rem = rem / s; }
  return off;
}
fn roff(r: u32) -> u32 {
  var rem = r; var off = 0u;
  for (var d = i32(u.nr) - 1; d >= 0; d--) { let s = u.rs[d / 4][d % 4]; off += (rem % s) * u.rt[d / 4][d % 4]; rem = rem / s; }
  return off;
}`;
  if (R <= SERIAL_MAX) {
    const [gx, gy] = grid(rt, Math.ceil(M / 256));
    rt.dispatch({
      key: 'sum-to-serial',
      code: () => `${header}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let o = (wg.y * u.gx + wg.x) * 256u + li;
  if (o >= u.m) { return; }
  let b = base(o);
  var s = 0.0;
  for (var r = 0u; r < u.r; r++) { s += x[b + roff(r)]; }
  y[o] = s;
}`,
      uniforms: u(1, R, gx),
      buffers: [x, out],
      groups: [gx, gy],
    });
    return;
  }
  // split the R values of each output into `splits` chunks when there are too few outputs to
  // fill the GPU (fewer than ~1024 workgroups) and the chunks are big
  const splits = M < 1024 && R > 2 * CHUNK ? Math.min(Math.ceil(R / CHUNK), Math.ceil(4096 / M)) : 1;
  const chunk = Math.ceil(R / splits);
  const target = splits > 1 ? rt.alloc(M * splits) : out;
  const [gx, gy] = grid(rt, M * splits);
  rt.dispatch({
    key: 'sum-to-tree',
    code: () => `${header}
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let g = wg.y * u.gx + wg.x; // = o * splits + split
  if (g >= u.m * u.splits) { return; } // the whole workgroup leaves together
  let o = g / u.splits;
  let r0 = (g % u.splits) * u.chunk;
  let r1 = min(r0 + u.chunk, u.r);
  let b = base(o);
  var s = 0.0;
  for (var r = r0 + li; r < r1; r += 256u) { s += x[b + roff(r)]; }
  part[li] = s;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w >>= 1u) {
    if (li < w) { part[li] += part[li + w]; }
    workgroupBarrier();
  }
  if (li == 0u) { y[g] = part[0]; }
}`,
    uniforms: u(splits, chunk, gx),
    buffers: [x, target],
    groups: [gx, gy],
  });
  if (splits > 1) {
    reduce(rt, target, out, [[M, splits]], [[splits, 1]], M, splits);
    rt.free(target);
  }
}
