// `npm run bench`: resnet-ts (wasm backend) beside its peers, measured in one process run on
// one machine, runs interleaved round by round so that drift hits everyone alike.
//
//   npm run bench -- [--quick] [--only resnet18-b1,sgemm-1024] [--runs 5] [--warmup 2]
//                    [--threads 2] [--peers ours,onnxruntime-web,...] [--cap 60] [--slow-batch 2]
//                    [--onnx-source ours|torch] [--out file.json | --no-write] [--tiny] [--list]
//
// stdout: one JSON line per case, then a markdown table (progress goes to stderr).
// The results also go to bench/results/<date>-<host>.json. See bench/README.md.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import '../src/backend/wasm/index.js';
import { getThreads, setThreads, WasmBackend } from '../src/backend/wasm/index.js';
import { setBackend } from '../src/backend/registry.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { SOFTWARE_ADAPTER } from '../src/backend/webgpu/device.js';
import { createModel } from '../src/models/registry.js';
import { SGD } from '../src/optim/sgd.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad, scope } from '../src/tensor/tensor.js';
import { fuseForInference } from '../src/models/fused.js';
import { CapError, openWorkerPeer, TorchPeer, type Session } from './peers/clients.js';
import { microKernelGflops } from './micro-kernel.js';
import { errorMessage, fillRandom, PARAMS, targetsFor, timeCall, type CaseSpec, type PeerInfo, type PeerName } from './peers/common.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CACHE = path.join(HERE, '.cache');
const RESULTS = path.join(HERE, 'results');

// ---------------------------------------------------------------------------- options

const { values: opt } = (() => {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        runs: { type: 'string' },
        warmup: { type: 'string' },
        threads: { type: 'string' },
        peers: { type: 'string' },
        cap: { type: 'string', default: '60' },
        'slow-batch': { type: 'string', default: '2' },
        'onnx-source': { type: 'string', default: 'ours' },
        out: { type: 'string' },
        'no-write': { type: 'boolean', default: false },
        tiny: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (e) {
    return die((e as Error).message);
  }
})();

function die(msg: string): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

function int(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) die(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

const QUICK = opt.quick!;
const TINY = opt.tiny!;
const RUNS = int('runs', opt.runs, QUICK ? 2 : 5, 1);
const WARMUP = int('warmup', opt.warmup, QUICK ? 1 : 2);
const THREADS = int('threads', opt.threads, os.availableParallelism(), 1);
const CAP_MS = int('cap', opt.cap, 60, 1) * 1000;
const ONNX_SOURCE =
  opt['onnx-source'] === 'torch' ? 'torch' : opt['onnx-source'] === 'ours' ? 'ours' : die(`--onnx-source must be ours or torch, got '${opt['onnx-source']}'`);
const SLOW_BATCH = int('slow-batch', opt['slow-batch'], 2, 1);
/** Longest a single call of a not-capped peer may take before it is stopped. */
const CALL_LIMIT_MS = 300_000;
/** Pause between two calls, so spinning thread pools (OpenMP, onnxruntime) settle before the next peer. */
const GAP_MS = 100;

const ALL_PEERS: PeerName[] = ['ours', 'ours-webgpu', 'onnxruntime-web', 'onnxruntime-node', 'tfjs-wasm', 'tfjs-cpu', 'tfjs-webgpu', 'pytorch'];
const SLOW_PEERS: PeerName[] = ['tfjs-cpu', 'ours-webgpu', 'tfjs-webgpu'];
/** Peers whose ratio is taken against ours on webgpu (same adapter), not ours on wasm. */
const GPU_PEERS: PeerName[] = ['tfjs-webgpu'];
const LABEL: Record<PeerName, string> = {
  ours: 'ours (wasm)',
  'ours-webgpu': 'ours (webgpu)',
  'onnxruntime-web': 'ort-web',
  'onnxruntime-node': 'ort-node',
  'tfjs-wasm': 'tfjs-wasm',
  'tfjs-cpu': 'tfjs-cpu',
  'tfjs-webgpu': 'tfjs-webgpu',
  pytorch: 'PyTorch',
};

// ---------------------------------------------------------------------------- cases

interface BenchCase {
  id: string;
  title: string;
  spec: CaseSpec;
}

const TITLE = { resnet18: 'ResNet-18', resnet50: 'ResNet-50', resnext50_32x4d: 'ResNeXt-50 32x4d' } as const;
function inferCase(model: keyof typeof TITLE, batch: number): BenchCase {
  const size = TINY ? 32 : 224;
  return {
    id: `${model === 'resnext50_32x4d' ? 'resnext50' : model}-b${batch}`,
    title: `${TITLE[model]} inference 3x${size}x${size}, batch ${batch}`,
    spec: { kind: 'infer', model, batch, channels: 3, size, classes: 1000 },
  };
}
const TRAIN_BATCH = TINY ? 4 : 128,
  TRAIN_SIZE = TINY ? 32 : 96;
const CASES: BenchCase[] = [
  inferCase('resnet18', 1),
  inferCase('resnet18', TINY ? 2 : 8),
  inferCase('resnet50', 1),
  inferCase('resnet50', TINY ? 2 : 8),
  inferCase('resnext50_32x4d', 1),
  {
    id: `d2l-train-b${TRAIN_BATCH}`,
    title: `d2l ResNet-18 training step 1x${TRAIN_SIZE}x${TRAIN_SIZE}, batch ${TRAIN_BATCH}, SGD momentum`,
    spec: { kind: 'train', model: 'd2l_resnet18', batch: TRAIN_BATCH, channels: 1, size: TRAIN_SIZE, classes: 10, lr: 0.05, momentum: 0.9 },
  },
  ...(TINY ? [64, 128] : [256, 512, 1024]).map((n): BenchCase => ({ id: `sgemm-${n}`, title: `SGEMM ${n}x${n}x${n} (float32)`, spec: { kind: 'gemm', n } })),
];

if (opt.help || opt.list) {
  console.log(
    opt.help
      ? readFileSync(fileURLToPath(import.meta.url), 'utf8')
          .split('\n')
          .slice(0, 9)
          .join('\n')
      : '',
  );
  console.log(`cases: ${CASES.map((c) => c.id).join(', ')}\npeers: ${ALL_PEERS.join(', ')}`);
  process.exit(0);
}

let selected = CASES;
if (opt.only) {
  const want = opt.only
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = want.filter((w) => !CASES.some((c) => c.id === w));
  if (bad.length) die(`unknown case(s) ${bad.join(', ')} (known: ${CASES.map((c) => c.id).join(', ')})`);
  selected = CASES.filter((c) => want.includes(c.id));
}
let peers: PeerName[] = ALL_PEERS.filter((p) => !(QUICK && SLOW_PEERS.includes(p)));
if (opt.peers) {
  const want = opt.peers.split(',').map((s) => s.trim()) as PeerName[];
  const bad = want.filter((w) => !ALL_PEERS.includes(w));
  if (bad.length) die(`unknown peer(s) ${bad.join(', ')} (known: ${ALL_PEERS.join(', ')})`);
  peers = ALL_PEERS.filter((p) => want.includes(p));
}

const log = (s: string) => process.stderr.write(s + '\n');

// ---------------------------------------------------------------------------- machine facts

function cpuMHz(): number | null {
  try {
    const mhz = [...readFileSync('/proc/cpuinfo', 'utf8').matchAll(/^cpu MHz\s*:\s*([\d.]+)/gm)].map((m) => Number(m[1]));
    return mhz.length ? Math.max(...mhz) : null;
  } catch {
    return null;
  }
}

function machine() {
  const cpus = os.cpus();
  return {
    host: os.hostname(),
    cpu: cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    cpu_mhz_proc_cpuinfo: cpuMHz(),
    memory_gb: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: `${os.platform()} ${os.arch()} ${os.release()}`,
  };
}

function loadavg(): number[] {
  return os.loadavg().map((x) => +x.toFixed(2));
}

// ---------------------------------------------------------------------------- ours

let oursBackend: WasmBackend | null = null;

async function openOurs(spec: CaseSpec): Promise<Session> {
  if (!oursBackend) {
    await setThreads(THREADS);
    const be = await setBackend('wasm');
    if (!(be instanceof WasmBackend)) throw new Error('the wasm backend did not load');
    oursBackend = be;
  }
  const be = oursBackend;
  const info: PeerInfo = { version: readPkgVersion(), threads: getThreads(), backend: 'wasm' };
  if (spec.kind === 'gemm') {
    const n = spec.n;
    const A = be.alloc(n * n),
      B = be.alloc(n * n),
      C = be.alloc(n * n);
    be.write(A, fillRandom(new Float32Array(n * n), 1));
    be.write(B, fillRandom(new Float32Array(n * n), 2));
    return {
      info,
      run: () => timeCall(() => be.gemm(false, false, n, n, n, A, B, C, false)),
      close: async () => {
        for (const a of [A, B, C]) be.free(a);
      },
    };
  }
  const model = noGrad(() => createModel(spec.model));
  const params = model.numParameters();
  const x = ops.tensor(fillRandom(new Float32Array(spec.batch * spec.channels * spec.size * spec.size)), [spec.batch, spec.channels, spec.size, spec.size]);
  Object.assign(info, { batch: spec.batch, params });
  if (spec.kind === 'infer') {
    // as the ONNX peers do, BN is folded into the convs and ReLU + residual add fused (models/fused.ts)
    model.eval();
    const fused = fuseForInference(model);
    info.backend = 'wasm, fused';
    return {
      info,
      run: () =>
        timeCall(() =>
          scope(() => {
            const y = fused.forward(x);
            if (y.shape[0] !== spec.batch || y.shape[1] !== spec.classes) throw new Error(`logits have shape [${y.shape.join(', ')}]`);
          }),
        ),
      close: async () => {
        fused.dispose();
        x.dispose();
        model.dispose();
      },
    };
  }
  model.train();
  const targets = targetsFor(spec.batch, spec.classes);
  const sgd = new SGD(model.parameters(), { lr: spec.lr, momentum: spec.momentum });
  info.optimizer = `src/optim SGD(lr ${spec.lr}, momentum ${spec.momentum})`;
  return {
    info,
    run: async () => {
      let loss = 0;
      const t = await timeCall(() => {
        loss = scope(() => {
          sgd.zeroGrad();
          const l = ops.crossEntropy(model.forward(x), targets);
          l.backward();
          noGrad(() => sgd.step());
          return l.item();
        });
      });
      if (!Number.isFinite(loss)) throw new Error(`training loss is ${loss}`);
      return t;
    },
    close: async () => {
      sgd.zeroGrad();
      sgd.dispose();
      x.dispose();
      model.dispose();
    },
  };
}

// ---------------------------------------------------------------------------- ours on webgpu

/** A software adapter: its figures measure a CPU emulation of a GPU, and every row says so. */
export { SOFTWARE_ADAPTER };

/**
 * The same model and calls on the webgpu backend (Node: Dawn through the npm package `webgpu`; on
 * a real GPU its Vulkan/Metal/D3D12 backend, else OpenGL on llvmpipe). GPU work is asynchronous:
 * each timed call ends with the queue drained (rt.sync()) or a value read back, so it measures the
 * work, not its recording.
 */
async function openOursWebgpu(spec: CaseSpec): Promise<Session> {
  await import('../src/backend/webgpu/node.js');
  const be = (await setBackend('webgpu')) as WebGpuBackend;
  const software = SOFTWARE_ADAPTER.test(be.adapterDescription);
  const info: PeerInfo = {
    version: readPkgVersion(),
    threads: 1,
    backend: `webgpu: ${be.adapterDescription}${software ? ' (software adapter: not a GPU figure)' : ''}`,
  };
  // the backend is process-wide: every call selects it, and gives the wasm peer its own back after
  const onGpu = async <T>(f: () => Promise<T>): Promise<T> => {
    await setBackend('webgpu');
    try {
      return await f();
    } finally {
      if (oursBackend) await setBackend('wasm');
    }
  };
  if (spec.kind === 'gemm') {
    const n = spec.n;
    const A = be.alloc(n * n),
      B = be.alloc(n * n),
      C = be.alloc(n * n);
    be.write(A, fillRandom(new Float32Array(n * n), 1));
    be.write(B, fillRandom(new Float32Array(n * n), 2));
    await be.rt.sync();
    return {
      info,
      run: () =>
        timeCall(async () => {
          be.gemm(false, false, n, n, n, A, B, C, false);
          await be.rt.sync();
        }),
      close: async () => {
        for (const a of [A, B, C]) be.free(a);
      },
    };
  }
  const made = await onGpu(async () => {
    const model = noGrad(() => createModel(spec.model));
    const x = ops.tensor(fillRandom(new Float32Array(spec.batch * spec.channels * spec.size * spec.size)), [spec.batch, spec.channels, spec.size, spec.size]);
    return { model, x };
  });
  const { model, x } = made;
  Object.assign(info, { batch: spec.batch, params: model.numParameters() });
  if (spec.kind === 'infer') {
    model.eval();
    const fused = await onGpu(async () => fuseForInference(model));
    info.backend += ', fused';
    return {
      info,
      run: () =>
        onGpu(() =>
          timeCall(async () => {
            const y = scope(() => fused.forward(x).keep());
            await be.rt.sync();
            if (y.shape[0] !== spec.batch || y.shape[1] !== spec.classes) throw new Error(`logits have shape [${y.shape.join(', ')}]`);
            y.dispose();
          }),
        ),
      close: async () => {
        fused.dispose();
        x.dispose();
        model.dispose();
      },
    };
  }
  model.train();
  const targets = targetsFor(spec.batch, spec.classes);
  const sgd = new SGD(model.parameters(), { lr: spec.lr, momentum: spec.momentum });
  info.optimizer = `src/optim SGD(lr ${spec.lr}, momentum ${spec.momentum})`;
  return {
    info,
    run: () =>
      onGpu(async () => {
        let loss = 0;
        const t = await timeCall(async () => {
          const l = scope(() => {
            sgd.zeroGrad();
            const l = ops.crossEntropy(model.forward(x), targets);
            l.backward();
            noGrad(() => sgd.step());
            return l.keep();
          });
          loss = (await l.data())[0]; // the step's one read-back: the loss
          l.dispose();
        });
        if (!Number.isFinite(loss)) throw new Error(`training loss is ${loss}`);
        return t;
      }),
    close: async () => {
      sgd.zeroGrad();
      sgd.dispose();
      x.dispose();
      model.dispose();
    },
  };
}

function readPkgVersion(): string {
  try {
    return JSON.parse(readFileSync(path.join(HERE, '..', 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

// ---------------------------------------------------------------------------- ONNX files

let torch: TorchPeer | null = null;
let torchWhyNot: string | null = null;

async function getTorch(): Promise<TorchPeer | null> {
  if (torch || torchWhyNot) return torch;
  const t = new TorchPeer(THREADS);
  torchWhyNot = await t.start();
  if (!torchWhyNot) torch = t;
  else log(`PyTorch: ${torchWhyNot}`);
  return torch;
}

const onnxFiles = new Map<string, { path?: string; error?: string; source?: string }>();

/**
 * The ONNX file of a model (random weights) in bench/.cache: by default written by our own
 * exporter (src/convert/onnx-export.ts) from createModel; with --onnx-source torch (or when ours
 * fails) by torch.onnx.export. Cached files are reused.
 */
async function onnxFor(spec: CaseSpec & { kind: 'infer' }): Promise<string> {
  const key = `${spec.model}-c${spec.channels}-${spec.size}`;
  let f = onnxFiles.get(key);
  if (!f) {
    const errors: string[] = [];
    for (const source of ONNX_SOURCE === 'torch' ? ['torch'] : ['ours', 'torch']) {
      const file = path.join(CACHE, `${key}-${source}.onnx`);
      if (existsSync(file)) {
        f = { path: file, source: `${source === 'ours' ? 'exportOnnx (src/io)' : 'torch.onnx.export'}, cached` };
        break;
      }
      mkdirSync(CACHE, { recursive: true });
      try {
        if (source === 'ours') {
          log(`exporting ${path.basename(file)} with exportOnnx ...`);
          const { exportOnnx } = await import('../src/convert/onnx-export.js');
          const model = noGrad(() => createModel(spec.model)).eval();
          try {
            writeFileSync(file + '.tmp', exportOnnx(model, { inputShape: [spec.channels, spec.size, spec.size], dynamicBatch: true }));
          } finally {
            model.dispose();
          }
        } else {
          const t = await getTorch();
          if (!t) throw new Error(torchWhyNot ?? 'PyTorch not available');
          log(`exporting ${path.basename(file)} with torch.onnx.export ...`);
          await t.exportOnnx(spec.model, file + '.tmp', spec.size, spec.channels);
        }
        renameSync(file + '.tmp', file);
        f = { path: file, source: source === 'ours' ? 'exportOnnx (src/io)' : 'torch.onnx.export' };
        break;
      } catch (e) {
        errors.push(`${source}: ${errorMessage(e)}`);
        log(`ONNX export (${source}) failed: ${errorMessage(e)}`);
      }
    }
    f ??= { error: `no ONNX file (${errors.join('; ')})` };
    if (errors.length && f.path) f.source += ` (after: ${errors.join('; ')})`;
    onnxFiles.set(key, f);
  }
  if (!f.path) throw new Error(f.error);
  return f.path;
}

// ---------------------------------------------------------------------------- one case

interface PeerResult {
  ms_median?: number;
  ms_min?: number;
  ms_max?: number;
  runs_ms?: number[];
  warmup_ms?: number[];
  batch?: number;
  ms_per_image?: number;
  gflops?: number;
  /** Median of (process CPU time / wall time) over the runs: how many cores the peer kept busy. */
  cpu_per_wall?: number;
  info?: PeerInfo;
  /** Why there is no figure: not applicable, skipped, error text, or time cap. */
  skipped?: string;
  error?: string;
  capped?: string;
  note?: string;
}

interface CaseResult {
  case: string;
  title: string;
  spec: CaseSpec;
  started: string;
  loadavg_before: number[];
  loadavg_after?: number[];
  results: Partial<Record<PeerName, PeerResult>>;
  /** ours / peer (median time; per image where the batches differ): below 1 means ours is faster. */
  ratios: Partial<Record<PeerName, number>>;
  ceilings?: Record<string, number>;
}

/** A reason to not run a peer on this case, or null to run it. */
function notApplicable(peer: PeerName, spec: CaseSpec): string | null {
  if (peer.startsWith('onnxruntime')) {
    if (spec.kind === 'train') return 'n/a: onnxruntime has no training in JavaScript';
    if (spec.kind === 'gemm') return 'n/a: not measured (no ONNX MatMul model)';
  }
  if (peer.startsWith('tfjs') && spec.kind === 'infer' && spec.model === 'resnext50_32x4d') return 'n/a: tf.layers has no grouped convolution';
  if (peer === 'tfjs-cpu') {
    if (spec.kind === 'infer' && spec.batch > 1) return 'skipped: tfjs-cpu runs batch 1 only (slow)';
    if (spec.kind === 'gemm') return 'skipped: tfjs-cpu is not a SGEMM peer';
  }
  return null;
}

interface Policy {
  runs: number;
  warmup: number;
  capMs: number | null;
  note?: string;
}

function policyFor(peer: PeerName, spec: CaseSpec): Policy {
  if (peer === 'ours-webgpu' || peer === 'tfjs-webgpu') {
    // on a software adapter (llvmpipe, SwiftShader) a ResNet-50 forward takes seconds: capped like tfjs-cpu
    return { runs: RUNS, warmup: WARMUP, capMs: CAP_MS, note: `capped at ${CAP_MS / 1000} s` };
  }
  if (peer === 'tfjs-cpu') {
    if (spec.kind === 'train') return { runs: 1, warmup: 0, capMs: CAP_MS, note: `1 run, no warm-up, capped at ${CAP_MS / 1000} s` };
    return { runs: Math.min(RUNS, 3), warmup: 1, capMs: CAP_MS, note: `at most ${Math.min(RUNS, 3)} runs after 1 warm-up within ${CAP_MS / 1000} s` };
  }
  return { runs: RUNS, warmup: WARMUP, capMs: null };
}

async function openPeer(peer: PeerName, spec: CaseSpec, expectParams: number | undefined): Promise<Session> {
  switch (peer) {
    case 'ours':
      return openOurs(spec);
    case 'ours-webgpu':
      return openOursWebgpu(spec);
    case 'pytorch': {
      const t = await getTorch();
      if (!t) throw new Error(torchWhyNot ?? 'PyTorch not available');
      return t.open(spec);
    }
    case 'onnxruntime-web':
    case 'onnxruntime-node': {
      if (spec.kind !== 'infer') throw new Error('not applicable');
      const onnxPath = await onnxFor(spec);
      const s = await openWorkerPeer({ peer, spec, threads: THREADS, onnxPath });
      s.info.onnx = [...onnxFiles.values()].find((f) => f.path === onnxPath)?.source;
      return s;
    }
    case 'tfjs-wasm':
    case 'tfjs-webgpu':
    case 'tfjs-cpu': {
      const s = peer === 'tfjs-cpu' && spec.kind === 'train' ? { ...spec, batch: Math.min(SLOW_BATCH, spec.batch) } : spec;
      return openWorkerPeer({ peer, spec: s, threads: THREADS, expectParams }, Math.max(CAP_MS, 180_000));
    }
  }
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const r2 = (x: number) => +x.toFixed(x >= 100 ? 1 : x >= 1 ? 2 : 4);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runCase(c: BenchCase): Promise<CaseResult> {
  const { spec } = c;
  const res: CaseResult = { case: c.id, title: c.title, spec, started: new Date().toISOString(), loadavg_before: loadavg(), results: {}, ratios: {} };
  const expectParams = spec.kind === 'gemm' ? undefined : PARAMS[spec.model];
  type Live = { peer: PeerName; s: Session; pol: Policy; times: number[]; cpu: number[]; warm: number[]; spent: number; done: boolean; r: PeerResult };
  const live: Live[] = [];

  // Set up every peer (ours first), in the order of ALL_PEERS.
  for (const peer of peers) {
    const na = notApplicable(peer, spec);
    if (na) {
      res.results[peer] = { skipped: na };
      continue;
    }
    const pol = policyFor(peer, spec);
    log(`  ${c.id}: setting up ${peer}`);
    try {
      const s = await openPeer(peer, spec, expectParams);
      const r: PeerResult = { info: s.info, ...(pol.note ? { note: pol.note } : {}) };
      if (expectParams !== undefined && s.info.params !== undefined && s.info.params !== expectParams) {
        r.note = `${r.note ? r.note + '; ' : ''}parameter count ${s.info.params} differs from ${expectParams}`;
      }
      res.results[peer] = r;
      live.push({ peer, s, pol, times: [], cpu: [], warm: [], spent: 0, done: false, r });
    } catch (e) {
      res.results[peer] = e instanceof CapError ? { capped: `setup ${e.message}` } : { error: errorMessage(e) };
      log(`  ${c.id}: ${peer}: ${res.results[peer]!.error ?? res.results[peer]!.capped}`);
    }
  }

  const call = async (l: Live, warm: boolean) => {
    const limit = l.pol.capMs !== null ? Math.max(1000, l.pol.capMs - l.spent) : CALL_LIMIT_MS;
    const t0 = performance.now();
    try {
      const t = await l.s.run(limit);
      (warm ? l.warm : l.times).push(t.ms);
      if (!warm && t.cpuMs !== undefined) l.cpu.push(t.cpuMs / t.ms);
    } catch (e) {
      l.done = true;
      if (e instanceof CapError) {
        l.r.capped = `a call ${e.message}` + (l.times.length ? '' : `: more than ${r2(e.limitMs)} ms per batch`);
        if (!l.times.length && spec.kind !== 'gemm') {
          l.r.batch = l.s.info.batch;
          l.r.ms_per_image = r2(e.limitMs / (l.s.info.batch ?? 1));
        }
      } else l.r.error = errorMessage(e);
      log(`  ${c.id}: ${l.peer}: ${l.r.error ?? l.r.capped}`);
    }
    l.spent += performance.now() - t0;
    if (l.pol.capMs !== null && l.spent >= l.pol.capMs) l.done = true;
    await sleep(GAP_MS);
  };

  // Warm-up, then rounds: each round runs every live peer once, the order rotating by one each round.
  for (const l of live) for (let i = 0; i < l.pol.warmup && !l.done; i++) await call(l, true);
  const rounds = Math.max(0, ...live.map((l) => l.pol.runs));
  for (let round = 0; round < rounds; round++) {
    const got = new Map<PeerName, number>();
    for (let k = 0; k < live.length; k++) {
      const l = live[(k + round) % live.length];
      if (l.done || l.times.length >= l.pol.runs) continue;
      const n = l.times.length;
      await call(l, false);
      if (l.times.length > n) got.set(l.peer, l.times[n]);
    }
    log(`  ${c.id}: round ${round + 1}/${rounds}: ${live.map((l) => `${l.peer} ${got.has(l.peer) ? r2(got.get(l.peer)!) : '-'}`).join(', ')}`);
  }

  for (const l of live) {
    await l.s.close().catch(() => undefined);
    if (l.times.length) {
      const m = median(l.times);
      Object.assign(l.r, {
        ms_median: r2(m),
        ms_min: r2(Math.min(...l.times)),
        ms_max: r2(Math.max(...l.times)),
        runs_ms: l.times.map(r2),
        warmup_ms: l.warm.map(r2),
      });
      if (l.cpu.length) l.r.cpu_per_wall = r2(median(l.cpu));
      if (spec.kind === 'gemm') l.r.gflops = r2((2 * spec.n ** 3) / (m * 1e6));
      else {
        l.r.batch = l.s.info.batch ?? spec.batch;
        l.r.ms_per_image = r2(m / l.r.batch);
      }
      if (l.r.error) l.r.note = `${l.r.note ? l.r.note + '; ' : ''}failed after ${l.times.length} run(s)`;
    }
  }

  // Ratios: ours / peer, per image where the batches differ, a bound where the peer was capped;
  // a WebGPU peer (tfjs-webgpu) against ours on webgpu, on the same adapter.
  for (const p of peers) {
    const ours = GPU_PEERS.includes(p) ? res.results['ours-webgpu'] : res.results.ours;
    if (ours?.ms_median !== undefined) {
      const r = res.results[p];
      if (p === 'ours' || !r) continue;
      if (spec.kind === 'gemm' && r.ms_median !== undefined) res.ratios[p] = +(ours.ms_median / r.ms_median).toPrecision(3);
      else if (r.ms_per_image !== undefined && ours.ms_per_image !== undefined) res.ratios[p] = +(ours.ms_per_image / r.ms_per_image).toPrecision(3);
    }
  }
  const ours = res.results.ours;
  if (spec.kind === 'gemm' && ours?.gflops !== undefined) res.ceilings = gemmCeilings(ours.gflops, ours.info?.threads ?? THREADS);
  res.loadavg_after = loadavg();
  return res;
}

let microKernel: number | null = null;

/** SIMD128 ceilings: threads x 16 FLOP/cycle x clock (cpuinfo, nominal 3.5 GHz) and threads x the measured micro-kernel rate. */
function gemmCeilings(gflops: number, threads: number): Record<string, number> {
  const mhz = cpuMHz();
  const out: Record<string, number> = {};
  if (mhz) {
    out.ceiling_cpuinfo_gflops = r2((threads * 16 * mhz) / 1000);
    out.pct_of_ceiling_cpuinfo = r2((100 * gflops) / out.ceiling_cpuinfo_gflops);
  }
  out.ceiling_nominal_3_5ghz_gflops = threads * 16 * 3.5;
  out.pct_of_ceiling_nominal = r2((100 * gflops) / out.ceiling_nominal_3_5ghz_gflops);
  if (oursBackend) {
    microKernel ??= Math.max(microKernelGflops(oursBackend, 300), microKernelGflops(oursBackend, 300));
    out.microkernel_1core_gflops = r2(microKernel);
    out.pct_of_microkernel_x_threads = r2((100 * gflops) / (threads * microKernel));
  }
  return out;
}

// ---------------------------------------------------------------------------- table

function fmtMs(x: number): string {
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3);
}

function cell(r: PeerResult | undefined, caseBatch: number | null, foot: string[]): string {
  if (!r) return '';
  const mark = (text: string) => {
    foot.push(text);
    return `[${foot.length}]`;
  };
  if (r.ms_median !== undefined) {
    if (caseBatch !== null && r.batch !== undefined && r.batch !== caseBatch) {
      return `${fmtMs(r.ms_per_image!)}/img ${mark(`ms per image at batch ${r.batch}${r.note ? ` (${r.note})` : ''}`)}`;
    }
    const n = r.runs_ms?.length ?? 0;
    if (r.capped || r.error) return `${fmtMs(r.ms_median)} ${mark(`median of ${n} run(s), then ${r.capped ? `capped: ${r.capped}` : `error: ${r.error}`}`)}`;
    return fmtMs(r.ms_median);
  }
  if (r.capped)
    return r.ms_per_image !== undefined
      ? `>${fmtMs(r.ms_per_image)}/img ${mark(`capped: ${r.capped}${r.note ? '; ' + r.note : ''}`)}`
      : `capped ${mark(r.capped)}`;
  if (r.error) return `error ${mark(r.error)}`;
  if (r.skipped) return r.skipped.startsWith('n/a') ? 'n/a' : '—';
  return '';
}

/** The footnote number of `text`, added once. */
function mark(foot: string[], text: string): string {
  const i = foot.indexOf(text);
  return `[${(i >= 0 ? i : foot.push(text) - 1) + 1}]`;
}

/** The software adapter ours-webgpu ran on in this case (its info.backend names it), or null. */
function softwareAdapter(c: CaseResult): string | null {
  const b = c.results['ours-webgpu']?.info?.backend;
  const m = typeof b === 'string' ? /^webgpu: (.*) \(software adapter/.exec(b) : null;
  return m ? m[1] : null;
}

function table(results: CaseResult[]): string {
  const others = peers.filter((p) => p !== 'ours');
  const ratioOf = (p: PeerName) => (GPU_PEERS.includes(p) ? 'ours-webgpu' : 'ours');
  const ratioCols = others.filter((p) => peers.includes(ratioOf(p)));
  const head = [
    'case',
    'ours (ms)',
    ...others.map((p) => `${LABEL[p]} (ms)`),
    ...ratioCols.map((p) => `${ratioOf(p) === 'ours' ? 'ours' : LABEL['ours-webgpu']}/${LABEL[p]}`),
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  const foot: string[] = [];
  for (const c of results) {
    const batch = c.spec.kind === 'gemm' ? null : c.spec.batch;
    const row = [c.case, cell(c.results.ours, batch, foot), ...others.map((p) => cell(c.results[p], batch, foot))];
    row.push(
      ...ratioCols.map((p) => {
        const v = c.ratios[p];
        if (v === undefined) return '';
        const t = v >= 0.095 ? v.toFixed(2) : v.toPrecision(2);
        const sw = GPU_PEERS.includes(p) ? softwareAdapter(c) : null;
        return (c.results[p]?.capped ? `<${t}` : t) + (sw ? ` ${mark(foot, `software adapter (${sw}): a CPU emulation, not a GPU figure`)}` : '');
      }),
    );
    lines.push(`| ${row.join(' | ')} |`);
  }
  const gemm = results.filter((c) => c.ceilings);
  if (gemm.length) {
    lines.push(
      '',
      '| SGEMM | ours GFLOP/s | % of 2x16xcpuinfo clock | % of 2x16x3.5 GHz | % of threads x measured micro-kernel | PyTorch GFLOP/s | tfjs-wasm GFLOP/s |',
      '|---|---|---|---|---|---|---|',
    );
    for (const c of gemm) {
      const e = c.ceilings!;
      lines.push(
        `| ${c.case} | ${c.results.ours?.gflops ?? ''} | ${e.pct_of_ceiling_cpuinfo ?? '?'}% of ${e.ceiling_cpuinfo_gflops ?? '?'} | ${e.pct_of_ceiling_nominal}% of ${e.ceiling_nominal_3_5ghz_gflops} | ${e.pct_of_microkernel_x_threads ?? '?'}% | ${c.results.pytorch?.gflops ?? ''} | ${c.results['tfjs-wasm']?.gflops ?? ''} |`,
      );
    }
  }
  const withCpu = results.filter((c) => peers.some((p) => c.results[p]?.cpu_per_wall !== undefined));
  if (withCpu.length) {
    lines.push('', `| CPU time / wall time | ${peers.map((p) => LABEL[p]).join(' | ')} |`, `|---|${peers.map(() => '---').join('|')}|`);
    for (const c of withCpu) lines.push(`| ${c.case} | ${peers.map((p) => c.results[p]?.cpu_per_wall?.toFixed(2) ?? '').join(' | ')} |`);
  }
  if (foot.length) lines.push('', ...foot.map((f, i) => `[${i + 1}] ${f}`));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------- targets (issue 3)

interface Target {
  target: string;
  measured: string;
  met: boolean | null;
}

function targets(results: CaseResult[]): Target[] {
  const by = (id: string) => results.find((c) => c.case === id);
  const out: Target[] = [];
  const ratio = (id: string, peer: PeerName, max: number | null, what: string) => {
    const c = by(id);
    if (!c || !(peer in c.results) || !c.results.ours) return;
    const v = c.ratios[peer];
    const capped = !!c.results[peer]?.capped;
    out.push({
      target: `${what}: ours/${LABEL[peer]}${max !== null ? ` <= ${max}` : ''}`,
      measured: v === undefined ? 'no figure' : `${capped ? '<' : ''}${v}`,
      met: v === undefined || max === null ? null : v <= max,
    });
  };
  ratio('resnet50-b1', 'onnxruntime-web', 0.4, 'ResNet-50 batch 1');
  ratio('resnet50-b1', 'tfjs-wasm', 0.25, 'ResNet-50 batch 1');
  ratio('resnext50-b1', 'onnxruntime-web', 0.7, 'ResNeXt-50 32x4d batch 1 (issue 16)');
  ratio('resnet18-b1', 'pytorch', 1.0, 'ResNet-18 batch 1');
  ratio('d2l-train-b128', 'pytorch', 1.5, 'd2l training step');
  ratio('d2l-train-b128', 'tfjs-cpu', null, 'd2l training step, per image (far below)');
  const g = by('sgemm-1024');
  if (g?.ceilings?.pct_of_ceiling_cpuinfo !== undefined) {
    out.push({
      target: 'SGEMM 1024: >= 70% of 2 x 16 x cpuinfo clock',
      measured: `${g.ceilings.pct_of_ceiling_cpuinfo}% (${g.results.ours?.gflops} GFLOP/s)`,
      met: g.ceilings.pct_of_ceiling_cpuinfo >= 70,
    });
  }
  return out;
}

function targetTable(t: Target[]): string {
  if (!t.length) return '';
  return [
    '| target (issue 3) | measured | met |',
    '|---|---|---|',
    ...t.map((x) => `| ${x.target} | ${x.measured} | ${x.met === null ? '—' : x.met ? 'yes' : 'no'} |`),
  ].join('\n');
}

// ---------------------------------------------------------------------------- main

const meta = {
  date: new Date().toISOString(),
  machine: machine(),
  loadavg_start: loadavg(),
  uptime_start: uptimeLine(),
  options: {
    quick: QUICK,
    tiny: TINY,
    onnx_source: ONNX_SOURCE,
    runs: RUNS,
    warmup: WARMUP,
    threads: THREADS,
    cap_s: CAP_MS / 1000,
    slow_batch: SLOW_BATCH,
    peers,
    cases: selected.map((c) => c.id),
  },
  method:
    'one process; every peer set up per case, then warm-up, then rounds in which each peer runs once (order rotating); median of the runs; each peer times its own call; 100 ms pause between calls',
};
log(
  `bench: ${selected.length} case(s), peers ${peers.join(', ')}, ${RUNS} runs after ${WARMUP} warm-up, ${THREADS} threads; load ${meta.loadavg_start.join(' ')}`,
);

function uptimeLine(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `loadavg ${loadavg().join(' ')}`;
  }
}

const all: CaseResult[] = [];
try {
  for (const c of selected) {
    log(`case ${c.id}: ${c.title}`);
    const r = await runCase(c);
    all.push(r);
    console.log(JSON.stringify(r));
  }
} finally {
  await (torch as TorchPeer | null)?.quit();
  (oursBackend as WasmBackend | null)?.dispose();
}

const tg = targets(all);
const md = table(all) + (tg.length ? '\n\n' + targetTable(tg) : '');
console.log('\n' + md);
const peerInfo: Record<string, PeerInfo | undefined> = {};
for (const p of peers) peerInfo[p] = all.map((c) => c.results[p]?.info).find((i) => i);
const doc = {
  meta: { ...meta, loadavg_end: loadavg(), uptime_end: uptimeLine(), peers: peerInfo, onnx: Object.fromEntries(onnxFiles) },
  cases: all,
  targets: tg,
  table: md,
};
if (!opt['no-write']) {
  let file = opt.out;
  if (!file) {
    mkdirSync(RESULTS, { recursive: true });
    const day = meta.date.slice(0, 10);
    file = path.join(RESULTS, `${day}-${os.hostname()}${TINY ? '-tiny' : QUICK ? '-quick' : ''}.json`);
    if (existsSync(file)) file = file.replace(/\.json$/, `-${meta.date.slice(11, 16).replace(':', '')}.json`);
  }
  writeFileSync(file, JSON.stringify(doc, null, 1) + '\n');
  log(`wrote ${file}`);
}
// Worker pools (ours, onnxruntime's) must not keep the process alive.
process.exit(0);
