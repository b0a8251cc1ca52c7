// Job descriptor layout. A descriptor is an array of 32-bit slots in wasm memory; slot i lives
// at desc + 4*i. A slot read with df() holds f32 bits, any other an i32 (pointers as u32).
// The JS side never keeps a copy of these numbers: build.mjs reads the module's exported
// globals and writes them, with each argument slot's type, into kernels.generated.ts.

export const D_KIND: i32 = 0;
export const D_COUNTER: i32 = 1; // next task index (atomic)
export const D_NTASKS: i32 = 2;
export const D_SCRATCH: i32 = 3; // per-thread scratch base (bytes)
export const D_SCRATCH_STRIDE: i32 = 4; // bytes per thread
export const D_ARGS: i32 = 8; // first kernel-specific slot
export const D_STATS: i32 = 192; // tasks done by thread tid, at slot D_STATS + tid (diagnostics)

@inline export function di(d: usize, slot: i32): i32 {
  return load<i32>(d + (<usize>slot << 2));
}
@inline export function du(d: usize, slot: i32): usize {
  return <usize>load<u32>(d + (<usize>slot << 2));
}
@inline export function df(d: usize, slot: i32): f32 {
  return load<f32>(d + (<usize>slot << 2));
}
