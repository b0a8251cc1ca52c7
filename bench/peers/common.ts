// Types shared by the benchmark harness (bench/run.ts), the worker host of the JavaScript
// peers (bench/peers/host.ts) and the clients that drive them (bench/peers/clients.ts).

/** What one peer is asked to run: a model forward, a training step, or one SGEMM. */
export type CaseSpec =
  | { kind: 'infer'; model: 'resnet18' | 'resnet50' | 'resnext50_32x4d' | 'd2l_resnet18'; batch: number; channels: number; size: number; classes: number }
  | {
      kind: 'train';
      model: 'resnet18' | 'resnet50' | 'resnext50_32x4d' | 'd2l_resnet18';
      batch: number;
      channels: number;
      size: number;
      classes: number;
      lr: number;
      momentum: number;
    }
  | { kind: 'gemm'; n: number };

export type PeerName = 'ours' | 'ours-webgpu' | 'onnxruntime-web' | 'onnxruntime-node' | 'tfjs-wasm' | 'tfjs-cpu' | 'tfjs-webgpu' | 'pytorch';

/** Facts a peer reports when a case is set up. */
export interface PeerInfo {
  /** Library version. */
  version?: string;
  /** Threads it computes with (what it reports, not only what was asked). */
  threads?: number;
  /** Batch it actually runs (a slow peer may run a smaller one). */
  batch?: number;
  /** Trainable parameters of the model it built (must equal ours). */
  params?: number;
  [k: string]: unknown;
}

/** Setup for a JavaScript peer hosted in a worker thread. */
export interface HostInit {
  peer: Exclude<PeerName, 'ours' | 'pytorch'>;
  spec: CaseSpec;
  threads: number;
  /** ONNX file for onnxruntime peers. */
  onnxPath?: string;
  /** Trainable parameter count the model must have (tfjs builds its own). */
  expectParams?: number;
}

export type HostRequest = { cmd: 'run' } | { cmd: 'close' };
export type HostReply = { type: 'ready'; info: PeerInfo } | { type: 'ms'; ms: number; cpuMs: number } | { type: 'closed' } | { type: 'error'; message: string };

/** Trainable parameter counts, as PyTorch counts them (torchvision / d2l). */
export const PARAMS: Record<string, number> = {
  resnet18: 11_689_512,
  resnet50: 25_557_032,
  resnext50_32x4d: 25_028_904,
  d2l_resnet18: 11_178_378,
};

/** Deterministic values in [-1, 1) (a small LCG), so every peer sees the same kind of data. */
export function fillRandom(a: Float32Array, seed = 12345): Float32Array {
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

export function targetsFor(batch: number, classes: number): number[] {
  return Array.from({ length: batch }, (_, i) => (i * 7 + 3) % classes);
}

/** One timed call: wall time, and the process's CPU time (all its threads) over the same span. */
export interface Timing {
  ms: number;
  cpuMs?: number;
}

export async function timeCall(fn: () => unknown): Promise<Timing> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { ms, cpuMs: (c.user + c.system) / 1000 };
}

export function errorMessage(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0].slice(0, 400);
}
