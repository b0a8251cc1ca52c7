// Compiles the kernel module once (it is embedded as base64 by the build) and instantiates it on
// a given shared memory. Browser-safe: no node: imports.
import { ARG_SLOTS, CONSTS, KERNELS_WASM_BASE64, KERNELS_WASM_UNSHARED_BASE64 } from './kernels.generated.js';

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
}

/**
 * Throws unless the module's exported globals are exactly the layout kernels.generated.ts was
 * built with (ARG_SLOTS and CONSTS): a module and a layout from different builds never run.
 */
export function checkLayout(globals: Record<string, number>, layout: Record<string, number> = { ...ARG_SLOTS, ...CONSTS }): void {
  const bad: string[] = [];
  for (const [k, v] of Object.entries(layout)) if (globals[k] !== v) bad.push(`${k}: module ${globals[k] ?? 'missing'}, layout ${v}`);
  for (const k of Object.keys(globals)) if (!(k in layout)) bad.push(`${k}: not in the layout`);
  if (bad.length) {
    throw new Error(
      `wasm kernel layout mismatch (rebuild with npm run build:wasm): ${bad.slice(0, 5).join('; ')}${bad.length > 5 ? `; … ${bad.length - 5} more` : ''}`,
    );
  }
}

/** The module's exported i32 globals (descriptor slots, job kinds, op codes, sizes). */
export function moduleGlobals(inst: WebAssembly.Instance): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(inst.exports)) if (v instanceof WebAssembly.Global) out[k] = v.value as number;
  return out;
}

export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const inst = new WebAssembly.Instance(module, { env: { memory } });
  const ex = inst.exports as Record<string, unknown>;
  checkLayout(moduleGlobals(inst));
  return {
    run_job: ex.run_job as (d: number, t: number) => void,
    heap_base: ex.heap_base as () => number,
    zero_bytes: ex.zero_bytes as KernelExports['zero_bytes'],
    copy_bytes: ex.copy_bytes as KernelExports['copy_bytes'],
    bench_kernel: ex.bench_kernel as KernelExports['bench_kernel'],
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
