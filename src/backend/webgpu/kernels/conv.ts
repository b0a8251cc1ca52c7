// WebGPU convolutions as implicit GEMM on the tiled kernel of gemm.ts: no im2col buffer, the
// loaders gather from the image. The ref backend's kernels are the oracle (src/backend/ref/ref.ts).
// Shapes: x[N,C,H,W], w[K,Cg,R,S] (Cg = C/groups), y[N,K,OH,OW]; per group g (grid z):
//   forward          y_g[Kg, N·OH·OW]  = w_g[Kg, Cg·R·S] · cols(x)_g[Cg·R·S, N·OH·OW]
//   backward data    dx_g[Cg, N·H·W]   = w_gᵀ · dy_g, one product per stride phase (below)
//   backward filter  dw_g[Kg, Cg·R·S]  = dy_g[Kg, N·OH·OW] · cols(x)_gᵀ, split-K over N·OH·OW
// 1×1 stride-1 unpadded convs are plain batched GEMMs (grid z = image·groups + group), with vec4
// loads when H·W and the channel counts allow.
import type { GpuRuntime, GpuStorage } from '../runtime.js';
import type { Conv2dParams } from '../../backend.js';
import { finishSplits, plainOperand, runTiled, splitPlan, type Operand } from './gemm.js';

function check(p: Conv2dParams, what: string): void {
  const { N, C, H, W, K, R, S, OH, OW, groups } = p;
  if (!(groups >= 1 && C % groups === 0 && K % groups === 0)) throw new RangeError(`webgpu ${what}: groups ${groups} must divide C=${C} and K=${K}`);
  const oh = Math.floor((H + 2 * p.padH - p.dilH * (R - 1) - 1) / p.strideH) + 1;
  const ow = Math.floor((W + 2 * p.padW - p.dilW * (S - 1) - 1) / p.strideW) + 1;
  if (oh !== OH || ow !== OW)
    throw new RangeError(`webgpu ${what}: output ${OH}×${OW} does not match input ${H}×${W}, kernel ${R}×${S} (expected ${oh}×${ow})`);
  if (N < 0 || p.padH < 0 || p.padW < 0) throw new RangeError(`webgpu ${what}: negative size or padding`);
}

const isPlain1x1 = (p: Conv2dParams): boolean => p.R === 1 && p.S === 1 && p.strideH === 1 && p.strideW === 1 && p.padH === 0 && p.padW === 0;

/** The conv shape as u32 uniforms (u.C, u.H, ...). */
function shapeUniforms(p: Conv2dParams): [string, number][] {
  const Cg = p.C / p.groups,
    Kg = p.K / p.groups;
  return [
    ['C', p.C],
    ['H', p.H],
    ['W', p.W],
    ['K', p.K],
    ['Cg', Cg],
    ['Kg', Kg],
    ['R', p.R],
    ['S', p.S],
    ['RS', p.R * p.S],
    ['OH', p.OH],
    ['OW', p.OW],
    ['L', p.OH * p.OW],
    ['G', p.groups],
    ['sh', p.strideH],
    ['sw', p.strideW],
    ['ph', p.padH],
    ['pw', p.padW],
    ['dh', p.dilH],
    ['dw', p.dilW],
  ];
}

// cols(x)[t = (c, r, s), p = (n, oh, ow)] of group z is the input pixel under tap (r, s) of output
// pixel (oh, ow), 0 in the padding. Per device, the tap tables of the conv shapes seen: entry t holds
// (c·H·W + r·dh·W + s·dw, r·dh, s·dw, 0), the tap's offset from its window's top-left input pixel.
// A few KiB each, kept for the device's life (a model has a few dozen conv shapes; capped).
const tables = new WeakMap<GpuRuntime, Map<string, GPUBuffer>>();
const MAX_TABLES = 512;

/** A small i32 table on the device, built once per key and kept (capped) for the device's life. */
function cachedTable(rt: GpuRuntime, key: string, build: () => Int32Array<ArrayBuffer>): GPUBuffer {
  let map = tables.get(rt);
  if (!map) tables.set(rt, (map = new Map()));
  let buf = map.get(key);
  if (!buf) {
    if (map.size >= MAX_TABLES) {
      rt.flush(); // a destroyed buffer must not be in an unsubmitted encoder; submitted work keeps it alive
      for (const b of map.values()) b.destroy();
      map.clear();
    }
    const data = build();
    buf = rt.device.createBuffer({ size: Math.max(16, data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    rt.device.queue.writeBuffer(buf, 0, data); // before any dispatch that reads it (those are submitted later)
    map.set(key, buf);
  }
  return buf;
}

function tapTable(rt: GpuRuntime, p: Conv2dParams): GPUBuffer {
  const Cg = p.C / p.groups;
  return cachedTable(rt, ['fwd', Cg, p.R, p.S, p.H, p.W, p.dilH, p.dilW].join(','), () => {
    const data = new Int32Array(Cg * p.R * p.S * 4);
    for (let c = 0, t = 0; c < Cg; c++) {
      for (let r = 0; r < p.R; r++) {
        for (let s = 0; s < p.S; s++, t++) data.set([(c * p.H + r * p.dilH) * p.W + s * p.dilW, r * p.dilH, s * p.dilW, 0], t * 4);
      }
    }
    return data;
  });
}

/** The epilogue: v (+ bias[k]) (+ residual) (ReLU), as ref: conv, then bias, then residual, then ReLU. */
function epilogue(bias: boolean, residual: boolean, relu: boolean): string {
  return [bias ? 'v += bias[k];' : '', residual ? 'v += res[i];' : '', relu ? 'v = max(v, 0.0);' : '', 'y[i] = v;'].join(' ');
}

function forward(
  rt: GpuRuntime,
  x: GpuStorage,
  w: GpuStorage,
  bias: GpuStorage | null,
  y: GpuStorage,
  p: Conv2dParams,
  relu: boolean,
  residual: GpuStorage | null,
): void {
  check(p, 'conv2d');
  const { N, C, K, OH, OW, groups } = p;
  const Cg = C / groups,
    Kg = K / groups,
    L = OH * OW,
    CRS = Cg * p.R * p.S;
  if (x.length < N * C * p.H * p.W || w.length < K * CRS || y.length < N * K * L)
    throw new RangeError('webgpu conv2d: a buffer is smaller than the shape says');
  const plain = isPlain1x1(p);
  // split-K when the output has few tiles (batch 1, late stages): partial sums into `part`, then
  // finishSplits adds them and applies the epilogue
  const split = plain ? splitPlan(rt, Kg, L, Cg, N * groups, N * K * L) : splitPlan(rt, Kg, N * L, CRS, groups, N * K * L);
  const part = split ? rt.alloc(split.splits * N * K * L) : null;
  const buffers: { name: string; buf: GpuStorage | GPUBuffer; write?: boolean }[] = [
    { name: 'x', buf: x },
    { name: 'w', buf: w },
    { name: 'y', buf: part ?? y, write: true },
    ...(bias && !part ? [{ name: 'bias', buf: bias }] : []),
    ...(residual && !part ? [{ name: 'res', buf: residual }] : []),
  ];
  // i: the index in y of output (k, pixel); with split-K, split sp goes to part[sp·|y| + i]
  const epi = part ? 'y[sp * u.total + i] = v;' : epilogue(!!bias, !!residual, relu);
  const flags = part ? 'split' : `${bias ? 'b' : ''}${residual ? 'r' : ''}${relu ? 'relu' : ''}`;
  const uniforms: [string, number][] = [...shapeUniforms(p), ['total', N * K * L]];
  if (plain) {
    // y[n]_g[Kg, L] = w_g[Kg, Cg] · x[n]_g[Cg, L]; z = n·G + g
    const a = plainOperand('A', 'w', false, Kg, Cg, '(z % u.G) * u.Kg * u.KR');
    const b = plainOperand('B', 'x', false, Cg, L, '((z / u.G) * u.C + (z % u.G) * u.Cg) * u.N');
    runTiled(rt, {
      key: `conv1x1/${a.vec4 ? 4 : 1}${b.vec4 ? 4 : 1}${flags}`,
      M: Kg,
      N: L,
      KR: Cg,
      batch: N * groups,
      chunk: split?.chunk,
      uniforms,
      buffers: buffers.map((bb) => ({ ...bb, vec4: (bb.name === 'x' && b.vec4) || (bb.name === 'w' && a.vec4) })),
      a,
      b,
      store: `fn store(m: u32, n: u32, z: u32, sp: u32, v0: f32) {
  let k = (z % u.G) * u.Kg + m; let i = ((z / u.G) * u.K + k) * u.N + n; var v = v0; ${epi} }`,
    });
  } else {
    const a = plainOperand('A', 'w', false, Kg, CRS, 'z * u.Kg * u.KR');
    // per thread, its column's output pixel (where its window starts); per reduction index t, the
    // tap's offsets from a table (taps() below) instead of two divisions per element
    const b: Operand = {
      fast: 'outer',
      vec4: false,
      ctx: true,
      fn: `
struct Px { pix: i32, ih0: i32, iw0: i32, ok: bool }
fn ctxB(p: u32, z: u32) -> Px {
  let n = p / u.L; let l = p - n * u.L; let oh = l / u.OW; let ow = l - oh * u.OW;
  let ih0 = i32(oh * u.sh) - i32(u.ph); let iw0 = i32(ow * u.sw) - i32(u.pw);
  return Px(i32((n * u.C + z * u.Cg) * u.H * u.W) + ih0 * i32(u.W) + iw0, ih0, iw0, p < u.N);
}
fn loadBc(t: u32, px: Px, z: u32) -> f32 {
  if (t >= u.KR || !px.ok) { return 0.0; }
  let e = tab[t];
  let ih = px.ih0 + e.y; let iw = px.iw0 + e.z;
  if (ih < 0 || iw < 0 || ih >= i32(u.H) || iw >= i32(u.W)) { return 0.0; }
  return x[u32(px.pix + e.x)];
}`,
    };
    buffers.push({ name: 'tab', buf: tapTable(rt, p) });
    runTiled(rt, {
      key: `conv/${a.vec4 ? 4 : 1}${flags}`,
      M: Kg,
      N: N * L,
      KR: CRS,
      batch: groups,
      chunk: split?.chunk,
      uniforms,
      buffers: buffers.map((bb) => ({ ...bb, vec4: bb.name === 'w' && a.vec4, type: bb.name === 'tab' ? 'vec4<i32>' : undefined })),
      a,
      b,
      store: `fn store(m: u32, p: u32, z: u32, sp: u32, v0: f32) {
  let n = p / u.L; let k = z * u.Kg + m; let i = (n * u.K + k) * u.L + (p - n * u.L); var v = v0; ${epi} }`,
    });
  }
  if (part && split) {
    finishSplits(rt, part, y, split.splits, N * K * L, { bias, K, L, residual, relu });
    rt.free(part); // safe at once: the queue runs the sum before any later use (runtime.ts)
  }
}

export function conv2d(rt: GpuRuntime, x: GpuStorage, w: GpuStorage, bias: GpuStorage | null, y: GpuStorage, p: Conv2dParams): void {
  forward(rt, x, w, bias, y, p, false, null);
}

export function conv2dFused(
  rt: GpuRuntime,
  x: GpuStorage,
  w: GpuStorage,
  bias: GpuStorage | null,
  y: GpuStorage,
  p: Conv2dParams,
  relu: boolean,
  residual: GpuStorage | null,
  _constWeights: boolean, // the kernel reads w as stored: no transformed copy to keep
): void {
  forward(rt, x, w, bias, y, p, relu, residual);
}

/** The r in [0, R) with (phase + pad - r·dil) ≡ 0 (mod stride): an arithmetic progression. */
interface Taps {
  r0: number;
  step: number;
  n: number;
}
function taps(phase: number, pad: number, dil: number, stride: number, R: number): Taps {
  const ok = (r: number): boolean => (((phase + pad - r * dil) % stride) + stride) % stride === 0;
  let r0 = 0;
  while (r0 < R && !ok(r0)) r0++;
  if (r0 >= R) return { r0: 0, step: 1, n: 0 };
  let step = 1;
  while (!ok(r0 + step)) step++; // ≤ stride
  return { r0, step, n: Math.floor((R - 1 - r0) / step) + 1 };
}

// Backward data, per stride phase (a, b): the input pixels ih ≡ a (mod sh), iw ≡ b (mod sw) receive
// gradient only from the taps r, s with (ih + ph - r·dh) divisible by sh (taps() above), so each
// phase is a dense product over Kg·nr·ns without the zeros a strided gather would multiply. A
// phase with no taps writes zeros (its reduction is empty).
const pixel = `
fn pixel(q: u32) -> vec3u {
  let n = q / u.HWp; let rem = q - n * u.HWp; let i = rem / u.Wp;
  return vec3u(n, i, rem - i * u.Wp); // image, row and column in the phase's grid
}`;

/**
 * Phase (pa, pb)'s reduction index t = (k, r, s) over its taps: (k·Cg·R·S + r·S + s, the offset
 * in w_g without c; k·OH·OW, in dy_g; and (pa + ph - r·dh)/sh, (pb + pw - s·dw)/sw, exact by the
 * phase's choice of taps: the output row of phase-grid row i is i + that).
 */
function phaseTable(rt: GpuRuntime, p: Conv2dParams, pa: number, pb: number, th: Taps, tw: Taps): GPUBuffer {
  const Cg = p.C / p.groups,
    Kg = p.K / p.groups;
  const key = ['bd', Cg, Kg, p.R, p.S, p.OH, p.OW, p.strideH, p.strideW, p.padH, p.padW, p.dilH, p.dilW, pa, pb].join(',');
  return cachedTable(rt, key, () => {
    const data = new Int32Array(Kg * th.n * tw.n * 4);
    let t = 0;
    for (let k = 0; k < Kg; k++) {
      for (let i = 0; i < th.n; i++) {
        const r = th.r0 + i * th.step;
        for (let j = 0; j < tw.n; j++, t++) {
          const s = tw.r0 + j * tw.step;
          data.set([k * Cg * p.R * p.S + r * p.S + s, k * p.OH * p.OW, (pa + p.padH - r * p.dilH) / p.strideH, (pb + p.padW - s * p.dilW) / p.strideW], t * 4);
        }
      }
    }
    return data;
  });
}

export function conv2dBackwardData(rt: GpuRuntime, dy: GpuStorage, w: GpuStorage, dx: GpuStorage, p: Conv2dParams): void {
  check(p, 'conv2dBackwardData');
  const { N, C, H, W, K, R, S, OH, OW, groups } = p;
  const Cg = C / groups,
    Kg = K / groups,
    L = OH * OW;
  if (dy.length < N * K * L || w.length < K * Cg * R * S || dx.length < N * C * H * W)
    throw new RangeError('webgpu conv2dBackwardData: a buffer is smaller than the shape says');
  if (isPlain1x1(p)) {
    // dx[n]_g[Cg, L] = w_g[Kg, Cg]ᵀ · dy[n]_g[Kg, L]; z = n·G + g
    const a = plainOperand('A', 'w', true, Cg, Kg, '(z % u.G) * u.Kg * u.Cg');
    const b = plainOperand('B', 'dy', false, Kg, L, '((z / u.G) * u.K + (z % u.G) * u.Kg) * u.N');
    runTiled(rt, {
      key: `convBD1x1/${a.vec4 ? 4 : 1}${b.vec4 ? 4 : 1}`,
      M: Cg,
      N: L,
      KR: Kg,
      batch: N * groups,
      uniforms: shapeUniforms(p),
      buffers: [
        { name: 'dy', buf: dy, vec4: b.vec4 },
        { name: 'w', buf: w, vec4: a.vec4 },
        { name: 'dx', buf: dx, write: true },
      ],
      a,
      b,
      store: `fn store(m: u32, n: u32, z: u32, sp: u32, v: f32) { dx[((z / u.G) * u.C + (z % u.G) * u.Cg + m) * u.N + n] = v; }`,
    });
    return;
  }
  const a: Operand = {
    fast: 'red',
    vec4: false,
    fn: `
fn loadA(c: u32, t: u32, z: u32) -> f32 {
  if (c >= u.M || t >= u.KR) { return 0.0; }
  return w[(z * u.Kg * u.Cg + c) * u.RS + u32(tab[t].x)];
}`,
  };
  // per thread, its column's dx pixel (image n, phase-grid row i, column j)
  const b: Operand = {
    fast: 'outer',
    vec4: false,
    ctx: true,
    fn: `${pixel}
struct Px { base: u32, i: i32, j: i32, ok: bool }
fn ctxB(q: u32, z: u32) -> Px {
  let px = pixel(q);
  return Px((px.x * u.K + z * u.Kg) * u.OH * u.OW, i32(px.y), i32(px.z), q < u.N);
}
fn loadBc(t: u32, px: Px, z: u32) -> f32 {
  if (t >= u.KR || !px.ok) { return 0.0; }
  let e = tab[t];
  let oh = px.i + e.z; let ow = px.j + e.w;
  if (oh < 0 || ow < 0 || oh >= i32(u.OH) || ow >= i32(u.OW)) { return 0.0; }
  return dy[px.base + u32(e.y + oh * i32(u.OW) + ow)];
}`,
  };
  for (let pa = 0; pa < Math.min(p.strideH, H); pa++) {
    for (let pb = 0; pb < Math.min(p.strideW, W); pb++) {
      const th = taps(pa, p.padH, p.dilH, p.strideH, R),
        tw = taps(pb, p.padW, p.dilW, p.strideW, S);
      const Hp = Math.ceil((H - pa) / p.strideH),
        Wp = Math.ceil((W - pb) / p.strideW);
      runTiled(rt, {
        key: 'convBD',
        M: Cg,
        N: N * Hp * Wp,
        KR: Kg * th.n * tw.n,
        batch: groups,
        uniforms: [...shapeUniforms(p), ['pa', pa], ['pb', pb], ['Wp', Wp], ['HWp', Hp * Wp]],
        buffers: [
          { name: 'dy', buf: dy },
          { name: 'w', buf: w },
          { name: 'dx', buf: dx, write: true },
          { name: 'tab', buf: phaseTable(rt, p, pa, pb, th, tw), type: 'vec4<i32>' },
        ],
        a,
        b,
        store: `fn store(c: u32, q: u32, z: u32, sp: u32, v: f32) {
  let px = pixel(q); dx[((px.x * u.C + z * u.Cg + c) * u.H + u.pa + px.y * u.sh) * u.W + u.pb + px.z * u.sw] = v; }`,
      });
    }
  }
}

export function conv2dBackwardFilter(rt: GpuRuntime, x: GpuStorage, dy: GpuStorage, dw: GpuStorage, p: Conv2dParams): void {
  check(p, 'conv2dBackwardFilter');
  const { N, C, H, W, K, R, S, OH, OW, groups } = p;
  const Cg = C / groups,
    Kg = K / groups,
    L = OH * OW,
    CRS = Cg * R * S,
    KR = N * L;
  if (x.length < N * C * H * W || dy.length < N * K * L || dw.length < K * CRS)
    throw new RangeError('webgpu conv2dBackwardFilter: a buffer is smaller than the shape says');
  const split = splitPlan(rt, Kg, CRS, KR, groups, K * CRS);
  const part = split ? rt.alloc(split.splits * K * CRS) : null;
  const a: Operand = {
    fast: 'red',
    vec4: false,
    fn: `
fn loadA(k: u32, t: u32, z: u32) -> f32 {
  if (k >= u.M || t >= u.KR) { return 0.0; }
  let n = t / u.L;
  return dy[(n * u.K + z * u.Kg + k) * u.L + (t - n * u.L)];
}`,
  };
  const b: Operand = {
    fast: 'red',
    vec4: false,
    // t = (n, oh, ow) is the same for all of a thread's loads in a slice; crs's tap from the table
    fn: `
fn loadB(t: u32, crs: u32, z: u32) -> f32 {
  if (t >= u.KR || crs >= u.N) { return 0.0; }
  let n = t / u.L; let l = t - n * u.L; let oh = l / u.OW; let ow = l - oh * u.OW;
  let e = tab[crs];
  let ih = i32(oh * u.sh) - i32(u.ph) + e.y; let iw = i32(ow * u.sw) - i32(u.pw) + e.z;
  if (ih < 0 || iw < 0 || ih >= i32(u.H) || iw >= i32(u.W)) { return 0.0; }
  return x[u32(i32((n * u.C + z * u.Cg) * u.H * u.W) + e.x + (ih - e.y) * i32(u.W) + (iw - e.z))];
}`,
  };
  runTiled(rt, {
    key: `convBF${part ? '/split' : ''}`,
    M: Kg,
    N: CRS,
    KR,
    batch: groups,
    chunk: split?.chunk,
    uniforms: shapeUniforms(p),
    buffers: [
      { name: 'x', buf: x },
      { name: 'dy', buf: dy },
      { name: 'out', buf: part ?? dw, write: true },
      { name: 'tab', buf: tapTable(rt, p), type: 'vec4<i32>' },
    ],
    a,
    b,
    store: `fn store(m: u32, n: u32, z: u32, sp: u32, v: f32) { out[((sp * u.G + z) * u.Kg + m) * u.N + n] = v; }`,
  });
  if (part && split) {
    finishSplits(rt, part, dw, split.splits, K * CRS);
    rt.free(part); // safe at once: the queue runs the reduction before any later use (runtime.ts)
  }
}
