// WebGPU kernels: maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward, adaptiveAvgPool2d, adaptiveAvgPool2dBackward. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
//
// Forward: one invocation per output value. Backward: one invocation per input value, gathering
// over the windows that cover it (no scatter, so no atomics and no race), in the order the ref
// kernel adds them (oh, then ow, ascending), so the f32 sums round the same way.
import { Uniforms, type GpuRuntime, type GpuStorage } from '../runtime.js';
import type { Pool2dParams } from '../../backend.js';
import { flatGrid, storage, HELPERS } from './wgsl-util.js';

// Uniform block shared by the strided pools (i32: window origins go negative with padding).
const POOL_U = `struct U { n: u32, gx: u32, H: i32, W: i32, kH: i32, kW: i32, sH: i32, sW: i32, pH: i32, pW: i32, dH: i32, dW: i32, OH: i32, OW: i32, includePad: u32, negInf: f32 }
@group(0) @binding(0) var<uniform> u: U;`;

function poolUniforms(n: number, gx: number, p: Pool2dParams): Uniforms {
  return new Uniforms()
    .u32(n, gx)
    .i32(p.H, p.W, p.kH, p.kW, p.sH, p.sW, p.pH, p.pW, p.dH, p.dW, p.OH, p.OW)
    .u32(p.countIncludePad ? 1 : 0)
    .f32(-Infinity); // WGSL has no -inf literal (a constant -inf is a compile error)
}

// Invocation index i over n values, and its plane nc and position (a, b) in a plane of R×S.
const INDEX = (R: string, S: string): string => `
  let i = (wg.y * u.gx + wg.x) * 256u + li;
  if (i >= u.n) { return; }
  let plane = u32(${R} * ${S});
  let nc = i / plane;
  let a = i32((i % plane) / u32(${S}));
  let b = i32(i % u32(${S}));`;

const MAIN = '@compute @workgroup_size(256)\nfn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {';

// The first maximum of output (oh, ow)'s window in plane nc, as an index into the plane (-1 when
// the window holds no input); NaN wins and propagates, as in the ref kernel (and PyTorch).
const ARGMAX = `
fn windowArgmax(nc: u32, oh: i32, ow: i32) -> i32 {
  let xo = nc * u32(u.H * u.W);
  var m = 0.0;
  var at = -1;
  for (var i = 0; i < u.kH; i++) {
    let ih = oh * u.sH - u.pH + i * u.dH;
    if (ih < 0 || ih >= u.H) { continue; }
    for (var j = 0; j < u.kW; j++) {
      let iw = ow * u.sW - u.pW + j * u.dW;
      if (iw < 0 || iw >= u.W) { continue; }
      let v = x[xo + u32(ih * u.W + iw)];
      if (at < 0 || v > m || isNan(v)) {
        m = v;
        at = ih * u.W + iw;
      }
    }
  }
  return at;
}`;

export function maxPool2d(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, p: Pool2dParams): void {
  const n = p.N * p.C * p.OH * p.OW;
  const groups = flatGrid(rt, n);
  rt.dispatch({
    key: 'pool.max',
    code: () => `${POOL_U}
${storage(['x', 'w y'])}
${HELPERS}
${ARGMAX}
${MAIN}
${INDEX('u.OH', 'u.OW')}
  let at = windowArgmax(nc, a, b);
  // -inf for a window that holds no input (the ref's starting value)
  y[i] = select(u.negInf, x[nc * u32(u.H * u.W) + u32(max(at, 0))], at >= 0);
}`,
    uniforms: poolUniforms(n, groups[0], p),
    buffers: [x, y],
    groups,
  });
}

export function maxPool2dBackward(rt: GpuRuntime, x: GpuStorage, dy: GpuStorage, dx: GpuStorage, p: Pool2dParams): void {
  // 1) the argmax of every window; 2) each input value sums dy over the windows whose argmax it is
  const nOut = p.N * p.C * p.OH * p.OW;
  const arg = rt.alloc(nOut);
  const g1 = flatGrid(rt, nOut);
  rt.dispatch({
    key: 'pool.maxArg',
    code: () => `${POOL_U}
${storage(['x', 'w arg:i32'])}
${HELPERS}
${ARGMAX}
${MAIN}
${INDEX('u.OH', 'u.OW')}
  arg[i] = windowArgmax(nc, a, b);
}`,
    uniforms: poolUniforms(nOut, g1[0], p),
    buffers: [x, arg],
    groups: g1,
  });
  const nIn = p.N * p.C * p.H * p.W;
  const g2 = flatGrid(rt, nIn);
  rt.dispatch({
    key: 'pool.maxBackward',
    code: () => `${POOL_U}
${storage(['arg:i32', 'dy', 'w dx'])}
${MAIN}
${INDEX('u.H', 'u.W')}
  let here = a * u.W + b;
  let yo = nc * u32(u.OH * u.OW);
  var acc = 0.0;
  // window oh covers row a at kernel row i when oh*sH - pH + i*dH == a; i descending is oh ascending
  for (var ki = u.kH - 1; ki >= 0; ki--) {
    let th = a + u.pH - ki * u.dH;
    if (th < 0 || th % u.sH != 0 || th / u.sH >= u.OH) { continue; }
    let oh = th / u.sH;
    for (var kj = u.kW - 1; kj >= 0; kj--) {
      let tw = b + u.pW - kj * u.dW;
      if (tw < 0 || tw % u.sW != 0 || tw / u.sW >= u.OW) { continue; }
      let o = yo + u32(oh * u.OW + tw / u.sW);
      if (arg[o] == here) { acc += dy[o]; }
    }
  }
  dx[i] = acc;
}`,
    uniforms: poolUniforms(nIn, g2[0], p),
    buffers: [arg, dy, dx],
    groups: g2,
  });
  rt.free(arg);
}

// Window (oh, ow) of an average pool: rows [h0, h1) including padding, cut to [hs, he) inside the input.
const AVG_WINDOW = `
fn avgDivisor(oh: i32, ow: i32) -> f32 {
  let h0 = oh * u.sH - u.pH;
  let w0 = ow * u.sW - u.pW;
  let h1 = min(h0 + u.kH, u.H + u.pH);
  let w1 = min(w0 + u.kW, u.W + u.pW);
  if (u.includePad != 0u) { return f32((h1 - h0) * (w1 - w0)); }
  return f32((min(h1, u.H) - max(h0, 0)) * (min(w1, u.W) - max(w0, 0)));
}`;

export function avgPool2d(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, p: Pool2dParams): void {
  const n = p.N * p.C * p.OH * p.OW;
  const groups = flatGrid(rt, n);
  rt.dispatch({
    key: 'pool.avg',
    code: () => `${POOL_U}
${storage(['x', 'w y'])}
${AVG_WINDOW}
${MAIN}
${INDEX('u.OH', 'u.OW')}
  let xo = nc * u32(u.H * u.W);
  let h0 = a * u.sH - u.pH;
  let w0 = b * u.sW - u.pW;
  let he = min(min(h0 + u.kH, u.H + u.pH), u.H);
  let we = min(min(w0 + u.kW, u.W + u.pW), u.W);
  var s = 0.0;
  for (var ih = max(h0, 0); ih < he; ih++) {
    for (var iw = max(w0, 0); iw < we; iw++) { s += x[xo + u32(ih * u.W + iw)]; }
  }
  y[i] = s / avgDivisor(a, b);
}`,
    uniforms: poolUniforms(n, groups[0], p),
    buffers: [x, y],
    groups,
  });
}

export function avgPool2dBackward(rt: GpuRuntime, dy: GpuStorage, dx: GpuStorage, p: Pool2dParams): void {
  const n = p.N * p.C * p.H * p.W;
  const groups = flatGrid(rt, n);
  rt.dispatch({
    key: 'pool.avgBackward',
    code: () => `${POOL_U}
${storage(['dy', 'w dx'])}
${AVG_WINDOW}
${MAIN}
${INDEX('u.H', 'u.W')}
  let yo = nc * u32(u.OH * u.OW);
  // windows with oh*sH - pH <= a < oh*sH - pH + kH (a < H keeps it inside the padded end too)
  let ohs = max(0, (a + u.pH - u.kH + u.sH) / u.sH);
  let ohe = min(u.OH - 1, (a + u.pH) / u.sH);
  let ows = max(0, (b + u.pW - u.kW + u.sW) / u.sW);
  let owe = min(u.OW - 1, (b + u.pW) / u.sW);
  var acc = 0.0;
  for (var oh = ohs; oh <= ohe; oh++) {
    let h0 = oh * u.sH - u.pH;
    if (a < h0 || a >= h0 + u.kH) { continue; }
    for (var ow = ows; ow <= owe; ow++) {
      let w0 = ow * u.sW - u.pW;
      if (b < w0 || b >= w0 + u.kW) { continue; }
      acc += dy[yo + u32(oh * u.OW + ow)] / avgDivisor(oh, ow);
    }
  }
  dx[i] = acc;
}`,
    uniforms: poolUniforms(n, groups[0], p),
    buffers: [dy, dx],
    groups,
  });
}

// PyTorch's adaptive windows: start = floor(o*In/Out), end = ceil((o+1)*In/Out).
const ADAPTIVE_U = `struct U { n: u32, gx: u32, H: u32, W: u32, OH: u32, OW: u32 }
@group(0) @binding(0) var<uniform> u: U;
fn wstart(o: u32, size: u32, out: u32) -> u32 { return (o * size) / out; }
fn wend(o: u32, size: u32, out: u32) -> u32 { return ((o + 1u) * size + out - 1u) / out; }`;

export function adaptiveAvgPool2d(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, N: number, C: number, H: number, W: number, OH: number, OW: number): void {
  const n = N * C * OH * OW;
  const groups = flatGrid(rt, n);
  rt.dispatch({
    key: 'pool.adaptive',
    code: () => `${ADAPTIVE_U}
${storage(['x', 'w y'])}
${MAIN}
${INDEX('u.OH', 'u.OW')}
  let xo = nc * u.H * u.W;
  let hs = wstart(u32(a), u.H, u.OH);
  let he = wend(u32(a), u.H, u.OH);
  let ws = wstart(u32(b), u.W, u.OW);
  let we = wend(u32(b), u.W, u.OW);
  var s = 0.0;
  for (var ih = hs; ih < he; ih++) {
    for (var iw = ws; iw < we; iw++) { s += x[xo + ih * u.W + iw]; }
  }
  y[i] = s / f32((he - hs) * (we - ws));
}`,
    uniforms: new Uniforms().u32(n, groups[0], H, W, OH, OW),
    buffers: [x, y],
    groups,
  });
}

export function adaptiveAvgPool2dBackward(
  rt: GpuRuntime,
  dy: GpuStorage,
  dx: GpuStorage,
  N: number,
  C: number,
  H: number,
  W: number,
  OH: number,
  OW: number,
): void {
  const n = N * C * H * W;
  const groups = flatGrid(rt, n);
  rt.dispatch({
    key: 'pool.adaptiveBackward',
    code: () => `${ADAPTIVE_U}
${storage(['dy', 'w dx'])}
${MAIN}
${INDEX('u.H', 'u.W')}
  let yo = nc * u.OH * u.OW;
  let ah = u32(a);
  let aw = u32(b);
  // the windows that can hold row a are oh in [floor(a*OH/H), ceil((a+1)*OH/H)); each is checked
  var acc = 0.0;
  for (var oh = (ah * u.OH) / u.H; oh < min(u.OH, ((ah + 1u) * u.OH + u.H - 1u) / u.H); oh++) {
    let hs = wstart(oh, u.H, u.OH);
    let he = wend(oh, u.H, u.OH);
    if (ah < hs || ah >= he) { continue; }
    for (var ow = (aw * u.OW) / u.W; ow < min(u.OW, ((aw + 1u) * u.OW + u.W - 1u) / u.W); ow++) {
      let ws = wstart(ow, u.W, u.OW);
      let we = wend(ow, u.W, u.OW);
      if (aw < ws || aw >= we) { continue; }
      acc += dy[yo + oh * u.OW + ow] / f32((he - hs) * (we - ws));
    }
  }
  dx[i] = acc;
}`,
    uniforms: new Uniforms().u32(n, groups[0], H, W, OH, OW),
    buffers: [dy, dx],
    groups,
  });
}
