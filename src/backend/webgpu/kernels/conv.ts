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

// cols(x)[t = (c, r, s), p = (n, oh, ow)] of group z: the input pixel under tap (r, s) of output
// pixel (oh, ow), 0 in the padding. As WGSL: (c·RS + r·S + s, n·L + oh·OW + ow, z) -> f32.
const gatherX = `
fn gatherX(t: u32, p: u32, z: u32) -> f32 {
  let c = t / u.RS; let rs = t - c * u.RS; let r = rs / u.S; let s = rs - r * u.S;
  let n = p / u.L; let l = p - n * u.L; let oh = l / u.OW; let ow = l - oh * u.OW;
  let ih = i32(oh * u.sh + r * u.dh) - i32(u.ph);
  let iw = i32(ow * u.sw + s * u.dw) - i32(u.pw);
  if (ih < 0 || iw < 0 || ih >= i32(u.H) || iw >= i32(u.W)) { return 0.0; }
  return x[((n * u.C + z * u.Cg + c) * u.H + u32(ih)) * u.W + u32(iw)];
}`;

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
  const buffers = [
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
    const b: Operand = {
      fast: 'outer',
      vec4: false,
      fn: `${gatherX}
fn loadB(t: u32, p: u32, z: u32) -> f32 { if (t >= u.KR || p >= u.N) { return 0.0; } return gatherX(t, p, z); }`,
    };
    runTiled(rt, {
      key: `conv/${a.vec4 ? 4 : 1}${flags}`,
      M: Kg,
      N: N * L,
      KR: CRS,
      batch: groups,
      chunk: split?.chunk,
      uniforms,
      buffers: buffers.map((bb) => ({ ...bb, vec4: bb.name === 'w' && a.vec4 })),
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
function taps(phase: number, pad: number, dil: number, stride: number, R: number): { r0: number; step: number; n: number } {
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
const phaseTaps = `
fn tap(t: u32) -> vec3u {
  let k = t / u.nrs; let j = t - k * u.nrs; let jr = j / u.ns;
  return vec3u(k, u.r0 + jr * u.rst, u.s0 + (j - jr * u.ns) * u.sst);
}
fn pixel(q: u32) -> vec3u {
  let n = q / u.HWp; let rem = q - n * u.HWp; let i = rem / u.Wp;
  return vec3u(n, u.pa + i * u.sh, u.pb + (rem - i * u.Wp) * u.sw);
}`;

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
    fn: `${phaseTaps}
fn loadA(c: u32, t: u32, z: u32) -> f32 {
  if (c >= u.M || t >= u.KR) { return 0.0; }
  let k = tap(t);
  return w[((z * u.Kg + k.x) * u.Cg + c) * u.RS + k.y * u.S + k.z];
}`,
  };
  const b: Operand = {
    fast: 'outer',
    vec4: false,
    fn: `
fn loadB(t: u32, q: u32, z: u32) -> f32 {
  if (t >= u.KR || q >= u.N) { return 0.0; }
  let k = tap(t); let px = pixel(q);
  let ohs = i32(px.y + u.ph) - i32(k.y * u.dh);
  let ows = i32(px.z + u.pw) - i32(k.z * u.dw);
  if (ohs < 0 || ows < 0) { return 0.0; }
  let oh = u32(ohs) / u.sh; let ow = u32(ows) / u.sw; // exact: the phase's taps
  if (oh >= u.OH || ow >= u.OW) { return 0.0; }
  return dy[((px.x * u.K + z * u.Kg + k.x) * u.OH + oh) * u.OW + ow];
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
        uniforms: [
          ...shapeUniforms(p),
          ['pa', pa],
          ['pb', pb],
          ['Wp', Wp],
          ['HWp', Hp * Wp],
          ['r0', th.r0],
          ['rst', th.step],
          ['s0', tw.r0],
          ['sst', tw.step],
          ['ns', tw.n],
          ['nrs', th.n * tw.n],
        ],
        buffers: [
          { name: 'dy', buf: dy },
          { name: 'w', buf: w },
          { name: 'dx', buf: dx, write: true },
        ],
        a,
        b,
        store: `fn store(c: u32, q: u32, z: u32, sp: u32, v: f32) {
  let px = pixel(q); dx[((px.x * u.C + z * u.Cg + c) * u.H + px.y) * u.W + px.z] = v; }`,
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
    fn: `${gatherX}
fn loadB(t: u32, crs: u32, z: u32) -> f32 { if (t >= u.KR || crs >= u.N) { return 0.0; } return gatherX(crs, t, z); }`,
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
