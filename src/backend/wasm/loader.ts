// Compiles the kernel module once (it is embedded zlib-deflated as base64 by the build) and
// instantiates it on a given memory. Browser-safe: no node: imports. The job layout (argument
// slots, constants) is generated from the same build beside the module (build.mjs), so no check
// runs here.

import type { WasmMemory, WasmModule } from './wasm-types.js';

const compiled = new Map<boolean, Promise<WasmModule>>();

/** The module's bytes: the shared-memory build, or the one for an unshared memory. */
export async function wasmBytes(shared: boolean): Promise<Uint8Array<ArrayBuffer>> {
  // import(): bundlers put the 14 kB of base64 in a chunk of its own, gzipped apart from the code
  const { KERNELS_SHARED_FLAG_OFFSET, KERNELS_WASM_DEFLATE_BASE64 } = await import('./kernels-wasm.generated.js');
  const bin = atob(KERNELS_WASM_DEFLATE_BASE64);
  const packed = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) packed[i] = bin.charCodeAt(i);
  const inflated = new Blob([packed]).stream().pipeThrough(new DecompressionStream('deflate'));
  const bytes = new Uint8Array(await new Response(inflated).arrayBuffer());
  // The unshared build differs in one byte (build.mjs checks it): the memory import's limits flag,
  // 3 (shared, with a maximum) -> 1 (with a maximum).
  if (!shared) bytes[KERNELS_SHARED_FLAG_OFFSET] = 1;
  return bytes;
}

export function compileKernels(shared: boolean): Promise<WasmModule> {
  let m = compiled.get(shared);
  if (!m) {
    compiled.set(shared, (m = wasmBytes(shared).then((bytes) => WebAssembly.compile(bytes))));
    m.catch(() => compiled.delete(shared));
  }
  return m;
}

export interface KernelExports {
  run_job(desc: number, tid: number): void;
  heap_base(): number;
  zero_bytes(p: number, n: number): void;
  copy_bytes(dst: number, src: number, n: number): void;
  /** Benchmark only: the 2x16 micro-kernel on L1-resident panels. */
  bench_kernel(ap: number, bp: number, kc: number, c: number, reps: number): void;
}

export function instantiate(module: WasmModule, memory: WasmMemory): KernelExports {
  // the stored module exports exactly these functions (build.mjs KERNEL_API; test/wasm-build.test.ts)
  return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
}

/** Whether this runtime can share a WebAssembly.Memory between threads. */
export function sharedMemorySupported(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  try {
    const m = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return m.buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}
