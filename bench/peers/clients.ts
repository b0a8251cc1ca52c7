// Harness-side clients of the peers: JavaScript peers in worker threads (host.ts), PyTorch in
// one long-lived Python process (torch_peer.py). Both give a Session whose run() resolves to
// the milliseconds the peer measured around its own call, and reject with CapError when a call
// runs past its time limit (the worker is terminated / the process killed).
import { fork, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import type { CaseSpec, HostInit, HostReply, PeerInfo, Timing } from './common.js';

export interface Session {
  info: PeerInfo;
  /** One timed call; resolves to the peer's own measurement (wall ms, process CPU ms). */
  run(timeoutMs: number): Promise<Timing>;
  close(): Promise<void>;
}

export class CapError extends Error {
  constructor(readonly limitMs: number) {
    super(`did not finish within ${Math.round(limitMs / 1000)} s (stopped)`);
  }
}

export class PeerError extends Error {}

// ---------------------------------------------------------------------------- worker peers

/** What openWorkerPeer needs of a worker thread or a child process. */
interface PeerHost {
  on(ev: 'message', fn: (r: HostReply) => void): void;
  on(ev: 'error', fn: (e: Error) => void): void;
  on(ev: 'exit', fn: (code: number | null, signal?: NodeJS.Signals | null) => void): void;
  postMessage(m: unknown): void;
  terminate(): Promise<unknown>;
}

/**
 * A WebGPU peer runs in a child process, not a worker thread: Dawn (the npm package `webgpu`) in a
 * worker thread crashes the process (SIGSEGV) when the main thread has its own Dawn instance, as
 * ours has; and Mesa reads EGL_PLATFORM from the real environment, which a worker cannot set.
 */
function childHost(init: HostInit): PeerHost {
  const child = fork(new URL('./worker.mjs', import.meta.url), [], {
    env: { ...process.env, EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'], // the host writes nothing on stdout (console.log goes to stderr there)
  });
  child.send({ init });
  return {
    on: (ev: string, fn: (...a: unknown[]) => void) => void child.on(ev, fn),
    postMessage: (m) => child.send(m as object),
    terminate: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  } as PeerHost;
}

export async function openWorkerPeer(init: HostInit, setupTimeoutMs = 180_000): Promise<Session> {
  const worker: PeerHost = init.peer === 'tfjs-webgpu' ? childHost(init) : new Worker(new URL('./worker.mjs', import.meta.url), { workerData: init });
  let waiting: { resolve: (r: HostReply) => void; reject: (e: Error) => void } | null = null;
  let dead: Error | null = null;
  worker.on('message', (r: HostReply) => {
    const w = waiting;
    waiting = null;
    w?.resolve(r);
  });
  worker.on('error', (e) => {
    dead = e;
    const w = waiting;
    waiting = null;
    w?.reject(new PeerError(`worker crashed: ${e.message}`));
  });
  worker.on('exit', (code, signal?: NodeJS.Signals | null) => {
    dead ??= new PeerError(signal ? `peer process killed by ${signal}` : `worker exited (code ${code})`);
    const w = waiting;
    waiting = null;
    w?.reject(dead);
  });

  const next = (timeoutMs: number): Promise<HostReply> =>
    new Promise((resolve, reject) => {
      if (dead) return reject(dead);
      const timer = setTimeout(() => {
        waiting = null;
        dead = new CapError(timeoutMs);
        void worker.terminate();
        reject(dead);
      }, timeoutMs);
      waiting = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });

  const first = await next(setupTimeoutMs).catch(async (e) => {
    await worker.terminate();
    throw e;
  });
  if (first.type === 'error') {
    await worker.terminate();
    throw new PeerError(first.message);
  }
  if (first.type !== 'ready') {
    await worker.terminate();
    throw new PeerError(`unexpected reply ${first.type}`);
  }
  return {
    info: first.info,
    async run(timeoutMs) {
      const p = next(timeoutMs);
      worker.postMessage({ cmd: 'run' });
      const r = await p;
      if (r.type === 'ms') return { ms: r.ms, cpuMs: r.cpuMs };
      throw new PeerError(r.type === 'error' ? r.message : `unexpected reply ${r.type}`);
    },
    async close() {
      if (!dead) {
        const p = next(30_000).catch(() => undefined);
        worker.postMessage({ cmd: 'close' });
        await p;
      }
      await worker.terminate();
    },
  };
}

// ---------------------------------------------------------------------------- PyTorch

export const PYTHON = '/usr/bin/python3';
const SCRIPT = new URL('./torch_peer.py', import.meta.url).pathname;

/** One Python process serving setup/run/export requests, one at a time. */
export class TorchPeer {
  private proc: ChildProcessWithoutNullStreams | null = null;
  private waiting: { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void } | null = null;
  private stderr = '';
  info: PeerInfo = {};

  constructor(readonly threads: number) {}

  /** Starts Python and checks that torch imports; returns null or why it is not available. */
  async start(): Promise<string | null> {
    if (!existsSync(PYTHON)) return `${PYTHON} not found`;
    this.spawn();
    try {
      const r = await this.request({ cmd: 'info' }, 120_000);
      this.info = { version: String(r.torch), threads: Number(r.threads), interopThreads: Number(r.interop_threads) };
      return null;
    } catch (e) {
      this.stop();
      return `PyTorch not usable: ${(e as Error).message}`;
    }
  }

  private spawn(): void {
    const p = spawn(PYTHON, [SCRIPT, '--threads', String(this.threads)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = p;
    this.stderr = '';
    p.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-2000);
    });
    createInterface({ input: p.stdout }).on('line', (line) => {
      const w = this.waiting;
      this.waiting = null;
      try {
        w?.resolve(JSON.parse(line));
      } catch {
        w?.reject(new PeerError(`bad reply from Python: ${line.slice(0, 200)}`));
      }
    });
    p.on('exit', (code) => {
      if (this.proc === p) this.proc = null;
      const w = this.waiting;
      this.waiting = null;
      w?.reject(new PeerError(`Python exited (code ${code}): ${this.stderr.trim().split('\n').pop() ?? ''}`));
    });
  }

  request(msg: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    if (!this.proc) this.spawn();
    const proc = this.proc!;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        this.stop();
        reject(new CapError(timeoutMs));
      }, timeoutMs);
      this.waiting = {
        resolve: (v) => {
          clearTimeout(timer);
          if (typeof v.error === 'string') reject(new PeerError(v.error));
          else resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      proc.stdin.write(JSON.stringify(msg) + '\n');
    });
  }

  async open(spec: CaseSpec, setupTimeoutMs = 300_000): Promise<Session> {
    const r = await this.request({ cmd: 'setup', ...spec }, setupTimeoutMs);
    const info: PeerInfo = { ...this.info, ...(spec.kind !== 'gemm' ? { batch: spec.batch, params: Number(r.params) } : {}) };
    return {
      info,
      run: async (timeoutMs) => {
        const r = await this.request({ cmd: 'run' }, timeoutMs);
        return { ms: Number(r.ms), cpuMs: typeof r.cpu_ms === 'number' ? r.cpu_ms : undefined };
      },
      close: async () => {
        if (this.proc) await this.request({ cmd: 'release' }, 30_000).catch(() => undefined);
      },
    };
  }

  async exportOnnx(model: string, path: string, size: number, channels: number): Promise<void> {
    await this.request({ cmd: 'export', model, path, size, channels }, 600_000);
  }

  stop(): void {
    const p = this.proc;
    this.proc = null;
    if (p) {
      p.stdin.end();
      p.kill('SIGKILL');
    }
  }

  async quit(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = null;
    const exited = new Promise((r) => p.once('exit', r));
    p.stdin.write(JSON.stringify({ cmd: 'quit' }) + '\n');
    p.stdin.end();
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}
