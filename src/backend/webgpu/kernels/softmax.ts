// WebGPU kernels: softmax, softmaxBackward, argmax, softmaxCrossEntropy, softmaxCrossEntropyBackward. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
//
// Row kernels over [rows, cols]: one 256-wide workgroup per row (rows beyond the per-dimension
// limit wrap onto a second grid dimension), reductions over the row in workgroup memory. The
// cross-entropy loss never leaves the GPU: per-row losses go to a scratch buffer and a second
// dispatch averages them into loss[0]. Targets arrive on the host and are uploaded per call.
import { Uniforms, type GpuRuntime, type GpuStorage } from '../runtime.js';
import { flatGrid, storage, reducers } from './wgsl-util.js';

const ROW_MAIN = `@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let r = wg.y * u.gx + wg.x;
  if (r >= u.rows) { return; }
  let o = r * u.cols;`;

/** One workgroup per row: grid [gx, gy] and gx for the uniform block. */
const rowGrid = (rt: GpuRuntime, rows: number): [number, number] => flatGrid(rt, rows, 1);

export function softmax(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, rows: number, cols: number, log: boolean): void {
  const groups = rowGrid(rt, rows);
  rt.dispatch({
    key: `softmax.${+log}`,
    code: () => `
struct U { rows: u32, cols: u32, gx: u32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(['x', 'w y'])}
${reducers(['max', 'sum'])}
${ROW_MAIN}
  var m = LOWEST;
  for (var c = li; c < u.cols; c += 256u) { m = max(m, x[o + c]); }
  m = r0(m, li);
  var s = 0.0;
  for (var c = li; c < u.cols; c += 256u) { s += exp(x[o + c] - m); }
  s = r1(s, li);
  ${
    log
      ? `let ls = log(s); // (x - m) - log(s), not x - lse: lse would be rounded at the logits' magnitude
  for (var c = li; c < u.cols; c += 256u) { y[o + c] = (x[o + c] - m) - ls; }`
      : `for (var c = li; c < u.cols; c += 256u) { y[o + c] = exp(x[o + c] - m) / s; }`
  }
}`,
    uniforms: new Uniforms().u32(rows, cols, groups[0]),
    buffers: [x, y],
    groups,
  });
}

export function softmaxBackward(rt: GpuRuntime, dy: GpuStorage, y: GpuStorage, dx: GpuStorage, rows: number, cols: number, log: boolean): void {
  const groups = rowGrid(rt, rows);
  rt.dispatch({
    key: `softmaxBackward.${+log}`,
    code: () => `
struct U { rows: u32, cols: u32, gx: u32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(['dy', 'y', 'w dx'])}
${reducers(['sum'])}
${ROW_MAIN}
  var s = 0.0;
  for (var c = li; c < u.cols; c += 256u) { s += ${log ? 'dy[o + c]' : 'dy[o + c] * y[o + c]'}; }
  s = r0(s, li);
  for (var c = li; c < u.cols; c += 256u) {
    dx[o + c] = ${log ? 'dy[o + c] - exp(y[o + c]) * s' : 'y[o + c] * (dy[o + c] - s)'};
  }
}`,
    uniforms: new Uniforms().u32(rows, cols, groups[0]),
    buffers: [dy, y, dx],
    groups,
  });
}

export function argmax(rt: GpuRuntime, x: GpuStorage, out: GpuStorage, rows: number, cols: number): void {
  const groups = rowGrid(rt, rows);
  rt.dispatch({
    key: 'argmax',
    code: () => `
struct U { rows: u32, cols: u32, gx: u32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(['x', 'w out'])}
${reducers([])}
const NONE = 0xffffffffu;
var<workgroup> bestV: array<f32, 256>;
var<workgroup> bestI: array<u32, 256>;
${ROW_MAIN}
  // the first maximum, as the ref's scan: NaN never wins, except at column 0 where the scan starts
  var bv = 0.0;
  var bi = NONE;
  for (var c = li; c < u.cols; c += 256u) {
    let v = x[o + c];
    if (!isNan(v) && (bi == NONE || v > bv)) {
      bv = v;
      bi = c;
    }
  }
  bestV[li] = bv;
  bestI[li] = bi;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) {
      let v = bestV[li + s];
      let i = bestI[li + s];
      let mine = bestI[li];
      if (i != NONE && (mine == NONE || v > bestV[li] || (v == bestV[li] && i < mine))) {
        bestV[li] = v;
        bestI[li] = i;
      }
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    let b = bestI[0];
    out[r] = select(f32(b), 0.0, b == NONE || isNan(x[o]));
  }
}`,
    uniforms: new Uniforms().u32(rows, cols, groups[0]),
    buffers: [x, out],
    groups,
  });
}

/** Targets as a GPU buffer of floats (exact below 2^24), after checking they are classes in [0, C). */
function uploadTargets(rt: GpuRuntime, targets: Int32Array, N: number, C: number, what: string): GpuStorage {
  if (targets.length < N) throw new RangeError(`${what}: ${targets.length} targets for a batch of ${N}`);
  const f = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    const t = targets[i];
    if (!(t >= 0 && t < C)) throw new RangeError(`${what}: target ${t} of sample ${i} is not a class in [0, ${C})`);
    f[i] = t;
  }
  const buf = rt.alloc(N);
  if (N > 0) rt.write(buf, f);
  return buf;
}

export function softmaxCrossEntropy(
  rt: GpuRuntime,
  logits: GpuStorage,
  targets: Int32Array,
  probs: GpuStorage,
  loss: GpuStorage,
  N: number,
  C: number,
  labelSmoothing: number,
): void {
  const t = uploadTargets(rt, targets, N, C, 'softmaxCrossEntropy');
  const rowLoss = rt.alloc(N);
  const groups = rowGrid(rt, N);
  rt.dispatch({
    key: 'softmaxCrossEntropy.rows',
    code: () => `
struct U { rows: u32, cols: u32, gx: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(['x', 'tgt', 'w probs', 'w rowLoss'])}
${reducers(['max', 'sum', 'sum'])}
${ROW_MAIN}
  var m = LOWEST;
  for (var c = li; c < u.cols; c += 256u) { m = max(m, x[o + c]); }
  m = r0(m, li);
  var s = 0.0;
  for (var c = li; c < u.cols; c += 256u) { s += exp(x[o + c] - m); }
  s = r1(s, li);
  // log p = (x - m) - log(s): no rounded lse of the logits' magnitude in it
  let ls = log(s);
  var sumLogp = 0.0;
  for (var c = li; c < u.cols; c += 256u) {
    let d = x[o + c] - m;
    sumLogp += d - ls;
    probs[o + c] = exp(d) / s;
  }
  sumLogp = r2(sumLogp, li);
  if (li == 0u) {
    let lpt = (x[o + u32(tgt[r])] - m) - ls;
    rowLoss[r] = -(1.0 - u.eps) * lpt - (u.eps / f32(u.cols)) * sumLogp;
  }
}`,
    uniforms: new Uniforms().u32(N, C, groups[0]).f32(labelSmoothing),
    buffers: [logits, t, probs, rowLoss],
    groups,
  });
  rt.dispatch({
    key: 'softmaxCrossEntropy.mean',
    code: () => `
struct U { n: u32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(['rowLoss', 'w loss'])}
${reducers(['sum'])}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var i = li; i < u.n; i += 256u) { s += rowLoss[i]; }
  s = r0(s, li);
  if (li == 0u) { loss[0] = s / f32(u.n); }
}`,
    uniforms: new Uniforms().u32(N),
    buffers: [rowLoss, loss],
    groups: [1],
  });
  rt.free(rowLoss);
  rt.free(t);
}

export function softmaxCrossEntropyBackward(
  rt: GpuRuntime,
  probs: GpuStorage,
  targets: Int32Array,
  dloss: GpuStorage,
  dlogits: GpuStorage,
  N: number,
  C: number,
  labelSmoothing: number,
): void {
  const t = uploadTargets(rt, targets, N, C, 'softmaxCrossEntropyBackward');
  const n = N * C;
  const groups = flatGrid(rt, n);
  rt.dispatch({
    key: 'softmaxCrossEntropy.backward',
    code: () => `
struct U { n: u32, C: u32, gx: u32, N: f32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
${storage(['probs', 'tgt', 'dloss', 'w dlogits'])}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * u.gx + wg.x) * 256u + li;
  if (i >= u.n) { return; }
  let hit = u32(tgt[i / u.C]) == i % u.C;
  dlogits[i] = (probs[i] - u.eps / f32(u.C) - select(0.0, 1.0 - u.eps, hit)) * (dloss[0] / u.N);
}`,
    uniforms: new Uniforms().u32(n, C, groups[0]).f32(N, labelSmoothing),
    buffers: [probs, t, dloss, dlogits],
    groups,
  });
  rt.free(t);
}
