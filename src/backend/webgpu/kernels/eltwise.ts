// WebGPU kernels: fill, unary, binary, affine, reluBackward, unaryBackward, maxMinBackward, transpose2d, addInPlace, sumTo. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
import { Uniforms, type GpuRuntime, type GpuStorage } from '../runtime.js';
import type { BinaryOp, UnaryOp } from '../../backend.js';
import { notYet } from './not-yet.js';

// An example of the conventions (runtime.ts): uniforms at binding 0, buffers from 1; a 2D grid
// of 256-wide workgroups so that more than 65535*256 elements still fit the per-dimension limit.
export function fill(rt: GpuRuntime, dst: GpuStorage, value: number): void {
  const n = dst.length;
  const groups = Math.ceil(n / 256);
  const gx = Math.min(groups, rt.maxGroups);
  rt.dispatch({
    key: 'fill',
    code: () => `
struct U { n: u32, value: f32, gx: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * u.gx + wg.x) * 256u + li;
  if (i < u.n) { y[i] = u.value; }
}`,
    uniforms: new Uniforms().u32(n).f32(value).u32(gx),
    buffers: [dst],
    groups: [gx, Math.ceil(groups / gx)],
  });
}

export function unary(rt: GpuRuntime, op: UnaryOp, x: GpuStorage, y: GpuStorage): void {
  notYet('unary', rt, op, x, y);
}

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
  notYet('binary', rt, op, a, aShape, b, bShape, out, outShape);
}

export function affine(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, alpha: number, beta: number): void {
  notYet('affine', rt, x, y, alpha, beta);
}

export function reluBackward(rt: GpuRuntime, dy: GpuStorage, y: GpuStorage, dx: GpuStorage): void {
  notYet('reluBackward', rt, dy, y, dx);
}

export function unaryBackward(rt: GpuRuntime, op: 'abs' | 'sigmoid' | 'tanh', dy: GpuStorage, x: GpuStorage, y: GpuStorage, dx: GpuStorage): void {
  notYet('unaryBackward', rt, op, dy, x, y, dx);
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
  notYet('maxMinBackward', rt, dy, a, aShape, y, yShape, da, db);
}

export function transpose2d(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, rows: number, cols: number): void {
  notYet('transpose2d', rt, x, y, rows, cols);
}

export function addInPlace(rt: GpuRuntime, y: GpuStorage, x: GpuStorage): void {
  notYet('addInPlace', rt, y, x);
}

export function sumTo(rt: GpuRuntime, x: GpuStorage, shape: readonly number[], out: GpuStorage, outShape: readonly number[]): void {
  notYet('sumTo', rt, x, shape, out, outShape);
}
