// Compiles the kernel module once (it is embedded as base64 by the build) and instantiates it on
// a given shared memory. Browser-safe: no node: imports.
import { KERNELS_WASM_BASE64, KERNELS_WASM_UNSHARED_BASE64 } from './kernels.generated.js';

const compiled = new Map<boolean, Promise<WebAssembly.Module>>();

/** The module's bytes: the shared-memory build, or the one for an unshared memory. */
export function wasmBytes(shared: boolean): Uint8Array<ArrayBuffer> {
  const bin = atob(shared ? KERNELS_WASM_BASE64 : KERNELS_WASM_UNSHARED_BASE64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function compileKernels(shared: boolean): Promise<WebAssembly.Module> {
  let m = compiled.get(shared);
  if (!m) compiled.set(shared, (m = WebAssembly.compile(wasmBytes(shared))));
  return m;
}

export interface KernelExports {
  run_job(desc: number, tid: number): void;
  heap_base(): number;
  zero_bytes(p: number, n: number): void;
  copy_bytes(dst: number, src: number, n: number): void;
  /** Benchmark only: the 2x16 micro-kernel on L1-resident panels. */
  bench_kernel(ap: number, bp: number, kc: number, c: number, reps: number): void;
  /** Descriptor slot numbers and job kinds, read from the module's exported globals. */
  consts: Record<string, number>;
}

export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const inst = new WebAssembly.Instance(module, { env: { memory } });
  const ex = inst.exports as Record<string, unknown>;
  const consts: Record<string, number> = {};
  for (const [k, v] of Object.entries(ex)) {
    if (v instanceof WebAssembly.Global) consts[k] = v.value as number;
  }
  return {
    run_job: ex.run_job as (d: number, t: number) => void,
    heap_base: ex.heap_base as () => number,
    zero_bytes: ex.zero_bytes as KernelExports['zero_bytes'],
    copy_bytes: ex.copy_bytes as KernelExports['copy_bytes'],
    bench_kernel: ex.bench_kernel as KernelExports['bench_kernel'],
    consts,
  };
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
