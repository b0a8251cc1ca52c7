// WebGPU kernels: batchNormTrain, batchNormEval, batchNormEvalBackward, batchNormUpdateStats, batchNormTrainBackward. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
//
// Data is [N, C, HW]; channel c's M = N*HW values are split into S chunks of `chunk` values and
// reduced by one 256-wide workgroup per (chunk, channel), then one thread per channel combines the
// S partials. Statistics are two-pass within a chunk (mean, then squared deviations from it) and
// chunks are combined with Chan et al.'s pairwise formula, so a large mean does not cancel the
// variance away in f32. A null gamma/beta (affine=false) selects a shader variant without that
// binding (WGSL cannot bind null).
import { Uniforms, type GpuRuntime, type GpuStorage } from '../runtime.js';
import { flatGrid, storage, reducers } from './wgsl-util.js';

const MIN_CHUNK = 4096; // values per workgroup (16 per invocation) before a channel is split
const MAX_CHUNKS = 512;

function chunking(M: number): { S: number; chunk: number } {
  const chunk = Math.max(MIN_CHUNK, Math.ceil(M / MAX_CHUNKS));
  return { S: Math.max(1, Math.ceil(M / chunk)), chunk };
}

// Index of channel c's m-th value (m < N*HW) in [N, C, HW].
const AT = `fn at(c: u32, m: u32) -> u32 { return ((m / u.HW) * u.C + c) * u.HW + m % u.HW; }`;

/** part[(c*S + s)*3 + 0..2] = count, mean, sum of squared deviations of chunk s of channel c. */
function statsPartial(rt: GpuRuntime, x: GpuStorage, part: GpuStorage, C: number, HW: number, M: number, S: number, chunk: number): void {
  rt.dispatch({
    key: 'bn.statsPartial',
    code: () => `
struct U { C: u32, HW: u32, M: u32, chunk: u32, S: u32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(['x', 'w part'])}
${reducers(['sum', 'sum'])}
${AT}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let s = wg.x;
  let c = wg.y;
  let m0 = s * u.chunk;
  let m1 = min(m0 + u.chunk, u.M);
  var acc = 0.0;
  for (var m = m0 + li; m < m1; m += 256u) { acc += x[at(c, m)]; }
  let cnt = f32(m1 - m0);
  let mean = r0(acc, li) / cnt;
  var acc2 = 0.0;
  for (var m = m0 + li; m < m1; m += 256u) {
    let d = x[at(c, m)] - mean;
    acc2 += d * d;
  }
  let m2 = r1(acc2, li);
  if (li == 0u) {
    let o = (c * u.S + s) * 3u;
    part[o] = cnt;
    part[o + 1u] = mean;
    part[o + 2u] = m2;
  }
}`,
    uniforms: new Uniforms().u32(C, HW, M, chunk, S),
    buffers: [x, part],
    groups: [S, C],
  });
}

export function batchNormTrain(
  rt: GpuRuntime,
  x: GpuStorage,
  gamma: GpuStorage | null,
  beta: GpuStorage | null,
  y: GpuStorage,
  saveMean: GpuStorage,
  saveInvStd: GpuStorage,
  batchVar: GpuStorage,
  N: number,
  C: number,
  HW: number,
  eps: number,
): void {
  const M = N * HW;
  const { S, chunk } = chunking(M);
  const part = rt.alloc(C * S * 3);
  statsPartial(rt, x, part, C, HW, M, S, chunk);
  rt.dispatch({
    key: 'bn.statsFinal',
    code: () => `
struct U { C: u32, S: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(['part', 'w outMean', 'w outInvStd', 'w outVar'])}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= u.C) { return; }
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var s = 0u; s < u.S; s++) {
    let o = (c * u.S + s) * 3u;
    let nb = part[o];
    let d = part[o + 1u] - mean;
    let tot = n + nb;
    mean += d * (nb / tot);
    m2 += part[o + 2u] + d * d * (n * nb / tot);
    n = tot;
  }
  let v = m2 / n;
  outMean[c] = mean;
  outVar[c] = v;
  outInvStd[c] = 1.0 / sqrt(v + u.eps);
}`,
    uniforms: new Uniforms().u32(C, S).f32(eps),
    buffers: [part, saveMean, saveInvStd, batchVar],
    groups: [Math.ceil(C / 64)],
  });
  rt.free(part);
  normalize(rt, x, gamma, beta, saveMean, saveInvStd, false, y, N, C, HW, eps);
}

/** y = (x - mean) * gamma * invStd + beta, with invStd given or (fromVar) 1/sqrt(s + eps). */
function normalize(
  rt: GpuRuntime,
  x: GpuStorage,
  gamma: GpuStorage | null,
  beta: GpuStorage | null,
  mean: GpuStorage,
  s: GpuStorage,
  fromVar: boolean,
  y: GpuStorage,
  N: number,
  C: number,
  HW: number,
  eps: number,
): void {
  const n = N * C * HW;
  const groups = flatGrid(rt, n);
  const names = ['x', 'w y', 'mean', 'stat'];
  const bufs = [x, y, mean, s];
  if (gamma) {
    names.push('gamma');
    bufs.push(gamma);
  }
  if (beta) {
    names.push('beta');
    bufs.push(beta);
  }
  rt.dispatch({
    key: `bn.normalize.${+fromVar}${+!!gamma}${+!!beta}`,
    code: () => `
struct U { n: u32, C: u32, HW: u32, gx: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(names)}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * u.gx + wg.x) * 256u + li;
  if (i >= u.n) { return; }
  let c = (i / u.HW) % u.C;
  let inv = ${fromVar ? '1.0 / sqrt(stat[c] + u.eps)' : 'stat[c]'};
  y[i] = (x[i] - mean[c]) * (${gamma ? 'gamma[c]' : '1.0'} * inv) + ${beta ? 'beta[c]' : '0.0'};
}`,
    uniforms: new Uniforms().u32(n, C, HW, groups[0]).f32(eps),
    buffers: bufs,
    groups,
  });
}

export function batchNormEval(
  rt: GpuRuntime,
  x: GpuStorage,
  gamma: GpuStorage | null,
  beta: GpuStorage | null,
  mean: GpuStorage,
  variance: GpuStorage,
  y: GpuStorage,
  N: number,
  C: number,
  HW: number,
  eps: number,
): void {
  normalize(rt, x, gamma, beta, mean, variance, true, y, N, C, HW, eps);
}

/**
 * sums[2c] = sum(dy), sums[2c+1] = sum(dy * xhat) over channel c, xhat = (x - mean) * invStd
 * (invStd given, or from variance + eps); dgamma[c] = sum(dy*xhat) and dbeta[c] = sum(dy) when given.
 */
function gradSums(
  rt: GpuRuntime,
  dy: GpuStorage,
  x: GpuStorage,
  mean: GpuStorage,
  s: GpuStorage,
  fromVar: boolean,
  sums: GpuStorage | null,
  dgamma: GpuStorage | null,
  dbeta: GpuStorage | null,
  N: number,
  C: number,
  HW: number,
  eps: number,
): void {
  const M = N * HW;
  const { S, chunk } = chunking(M);
  const part = rt.alloc(C * S * 2);
  rt.dispatch({
    key: `bn.gradPartial.${+fromVar}`,
    code: () => `
struct U { C: u32, HW: u32, M: u32, chunk: u32, S: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(['dy', 'x', 'mean', 'stat', 'w part'])}
${reducers(['sum', 'sum'])}
${AT}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let s0 = wg.x;
  let c = wg.y;
  let mu = mean[c];
  let inv = ${fromVar ? '1.0 / sqrt(stat[c] + u.eps)' : 'stat[c]'};
  let m0 = s0 * u.chunk;
  let m1 = min(m0 + u.chunk, u.M);
  var a = 0.0;
  var b = 0.0;
  for (var m = m0 + li; m < m1; m += 256u) {
    let k = at(c, m);
    a += dy[k];
    b += dy[k] * ((x[k] - mu) * inv);
  }
  let sa = r0(a, li);
  let sb = r1(b, li);
  if (li == 0u) {
    let o = (c * u.S + s0) * 2u;
    part[o] = sa;
    part[o + 1u] = sb;
  }
}`,
    uniforms: new Uniforms().u32(C, HW, M, chunk, S).f32(eps),
    buffers: [dy, x, mean, s, part],
    groups: [S, C],
  });
  const names = ['part'];
  const bufs = [part];
  if (sums) {
    names.push('w sums');
    bufs.push(sums);
  }
  if (dgamma) {
    names.push('w dgamma');
    bufs.push(dgamma);
  }
  if (dbeta) {
    names.push('w dbeta');
    bufs.push(dbeta);
  }
  rt.dispatch({
    key: `bn.gradFinal.${+!!sums}${+!!dgamma}${+!!dbeta}`,
    code: () => `
struct U { C: u32, S: u32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(names)}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= u.C) { return; }
  var a = 0.0;
  var b = 0.0;
  for (var s = 0u; s < u.S; s++) {
    a += part[(c * u.S + s) * 2u];
    b += part[(c * u.S + s) * 2u + 1u];
  }
  ${sums ? 'sums[2u * c] = a; sums[2u * c + 1u] = b;' : ''}
  ${dgamma ? 'dgamma[c] = b;' : ''}
  ${dbeta ? 'dbeta[c] = a;' : ''}
}`,
    uniforms: new Uniforms().u32(C, S),
    buffers: bufs,
    groups: [Math.ceil(C / 64)],
  });
  rt.free(part);
}

export function batchNormEvalBackward(
  rt: GpuRuntime,
  dy: GpuStorage,
  x: GpuStorage,
  gamma: GpuStorage | null,
  mean: GpuStorage,
  variance: GpuStorage,
  dx: GpuStorage | null,
  dgamma: GpuStorage | null,
  N: number,
  C: number,
  HW: number,
  eps: number,
): void {
  if (dx) {
    // dx = dy * gamma / sqrt(var + eps)
    const n = N * C * HW;
    const groups = flatGrid(rt, n);
    const names = ['dy', 'w dx', 'variance'];
    const bufs = [dy, dx, variance];
    if (gamma) {
      names.push('gamma');
      bufs.push(gamma);
    }
    rt.dispatch({
      key: `bn.evalDx.${+!!gamma}`,
      code: () => `
struct U { n: u32, C: u32, HW: u32, gx: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(names)}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * u.gx + wg.x) * 256u + li;
  if (i >= u.n) { return; }
  let c = (i / u.HW) % u.C;
  dx[i] = dy[i] * (${gamma ? 'gamma[c]' : '1.0'} / sqrt(variance[c] + u.eps));
}`,
      uniforms: new Uniforms().u32(n, C, HW, groups[0]).f32(eps),
      buffers: bufs,
      groups,
    });
  }
  if (dgamma) gradSums(rt, dy, x, mean, variance, true, null, dgamma, null, N, C, HW, eps);
}

export function batchNormUpdateStats(
  rt: GpuRuntime,
  runningMean: GpuStorage,
  runningVar: GpuStorage,
  batchMean: GpuStorage,
  batchVar: GpuStorage,
  momentum: number,
  count: number,
): void {
  const C = runningMean.length;
  rt.dispatch({
    key: 'bn.updateStats',
    code: () => `
struct U { C: u32, momentum: f32, unbias: f32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(['w rmean', 'w rvar', 'bmean', 'bvar'])}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= u.C) { return; }
  rmean[c] = (1.0 - u.momentum) * rmean[c] + u.momentum * bmean[c];
  rvar[c] = (1.0 - u.momentum) * rvar[c] + u.momentum * (bvar[c] * u.unbias);
}`,
    // PyTorch's unbiased running variance: batchVar * count/(count-1) (count 1 gives inf*0 = NaN, as ref)
    uniforms: new Uniforms().u32(C).f32(momentum, count / (count - 1)),
    buffers: [runningMean, runningVar, batchMean, batchVar],
    groups: [Math.ceil(C / 64)],
  });
}

export function batchNormTrainBackward(
  rt: GpuRuntime,
  dy: GpuStorage,
  x: GpuStorage,
  gamma: GpuStorage | null,
  saveMean: GpuStorage,
  saveInvStd: GpuStorage,
  dx: GpuStorage,
  dgamma: GpuStorage | null,
  dbeta: GpuStorage | null,
  N: number,
  C: number,
  HW: number,
): void {
  const sums = rt.alloc(2 * C);
  gradSums(rt, dy, x, saveMean, saveInvStd, false, sums, dgamma, dbeta, N, C, HW, 0);
  // dx = gamma*invStd * (dy - mean(dy) - xhat*mean(dy*xhat)); written with means, not M*dy - sum(dy),
  // so that f32 does not cancel two large terms.
  const n = N * C * HW;
  const groups = flatGrid(rt, n);
  const names = ['dy', 'x', 'mean', 'invStd', 'sums', 'w dx'];
  const bufs = [dy, x, saveMean, saveInvStd, sums, dx];
  if (gamma) {
    names.push('gamma');
    bufs.push(gamma);
  }
  rt.dispatch({
    key: `bn.trainDx.${+!!gamma}`,
    code: () => `
struct U { n: u32, C: u32, HW: u32, gx: u32, invM: f32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(names)}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * u.gx + wg.x) * 256u + li;
  if (i >= u.n) { return; }
  let c = (i / u.HW) % u.C;
  let inv = invStd[c];
  let xh = (x[i] - mean[c]) * inv;
  dx[i] = (${gamma ? 'gamma[c]' : '1.0'} * inv) * (dy[i] - sums[2u * c] * u.invM - xh * (sums[2u * c + 1u] * u.invM));
}`,
    uniforms: new Uniforms().u32(n, C, HW, groups[0]).f32(1 / (N * HW)),
    buffers: bufs,
    groups,
  });
  rt.free(sums);
}
