// Small pieces shared by the norm, pool and softmax kernels: a flat element grid that fits the
// per-dimension workgroup limit, storage-binding declarations numbered after the uniform block,
// and 256-wide workgroup tree reductions.
import type { GpuRuntime } from '../runtime.js';

/** Workgroups for n elements, `wg` per workgroup: [gx, gy] with gx ≤ the limit; index = (wg.y*gx + wg.x)*wg + local. */
export function flatGrid(rt: GpuRuntime, n: number, wg = 256): [number, number] {
  const groups = Math.ceil(n / wg);
  const gx = Math.max(1, Math.min(groups, rt.maxGroups));
  return [gx, Math.ceil(groups / gx)];
}

/** `@binding(1..)` declarations of f32 (or i32 with a `:i32` suffix on the name) storage arrays; `w ` marks a written one. */
export function storage(names: readonly string[]): string {
  return names
    .map((spec, k) => {
      const [name, type = 'f32'] = spec.replace(/^w /, '').split(':');
      const access = spec.startsWith('w ') ? 'read_write' : 'read';
      return `@group(0) @binding(${k + 1}) var<storage, ${access}> ${name}: array<${type}>;`;
    })
    .join('\n');
}

/**
 * WGSL: workgroup tree reductions over 256 invocations, one function per call site, `r0(v, li)`,
 * `r1(v, li)`, ..., with ops[k] 'sum' or 'max'. Call each from uniform control flow with every
 * invocation taking part; it returns the result to all of them. Each call site has its own
 * workgroup array on purpose: Mesa's llvmpipe (22.3) let a read of the first reduction's result
 * land after the next reduction had overwritten a shared array, despite the barrier between them.
 * Also isNan (by bit pattern: fast-math compilers may fold v != v) and LOWEST (most negative f32).
 */
export function reducers(ops: readonly ('sum' | 'max')[]): string {
  const fns = ops.map(
    (op, k) => `
var<workgroup> red${k}: array<f32, 256>;
fn r${k}(v: f32, li: u32) -> f32 {
  red${k}[li] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { red${k}[li] = ${op === 'sum' ? `red${k}[li] + red${k}[li + s]` : `max(red${k}[li], red${k}[li + s])`}; }
    workgroupBarrier();
  }
  return red${k}[0];
}`,
  );
  return fns.join('\n') + HELPERS;
}

export const HELPERS = `
fn isNan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
const LOWEST = bitcast<f32>(0xff7fffffu); // -3.4028235e38`;
