// Job descriptor layout shared with src/backend/wasm/desc.ts (keep the two in sync).
// A descriptor is an array of 32-bit slots in wasm memory; slot i lives at desc + 4*i.
// Floats are stored as f32 bits in the same slots.

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
