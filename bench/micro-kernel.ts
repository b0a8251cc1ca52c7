// The wasm GEMM's 2x16 micro-kernel on panels that stay in L1, on the calling thread: the
// practical single-core SIMD128 mul+add ceiling that benchmark reports compare against. Lives
// here, not in the backend, so that a page never loads it (the module's bench_kernel export).
import type { WasmBackend } from '../src/backend/wasm/wasm.js';

/** GFLOP/s of the micro-kernel, best over `ms` milliseconds. */
export function microKernelGflops(be: WasmBackend, ms = 200): number {
  const kc = 256,
    a = be.alloc(2 * kc),
    b = be.alloc(16 * kc),
    cc = be.alloc(32);
  be.fill(a, 0.5);
  be.fill(b, 0.25);
  let reps = 1000,
    best = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t0 = performance.now();
    be.kernels.bench_kernel(a.offset, b.offset, kc, cc.offset, reps);
    const dt = performance.now() - t0;
    if (dt > 2) best = Math.max(best, (reps * 2 * 2 * 16 * kc) / (dt * 1e6));
    else reps *= 2;
  }
  for (const x of [a, b, cc]) be.free(x);
  return best;
}
