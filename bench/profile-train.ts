// Per-op profile of one training step on the wasm backend (what `npm run bench` times for `ours`
// in d2l-train-b128): every top-level backend call of forward, cross-entropy, backward and the
// SGD update, timed (wall and CPU, all threads), with GFLOP/s for the convolutions' forward,
// backward-data and backward-filter and their efficiency against threads x the micro-kernel's
// L1-resident rate measured in the same process (bench/micro-kernel.ts).
//
//   node --import tsx bench/profile-train.ts [--model d2l_resnet18] [--arch '{"width":40}'] [--batch 128] [--size 96]
//        [--channels 1] [--threads 2] [--runs 3] [--json out.json]
//
// Calls a backend method makes to another public method (conv2d -> conv2dFused) count once, under
// the outer one. Calls are matched across steps by their order (a step makes the same calls).
// "step (untimed)" is the step without instrumentation; the sum of the calls is smaller by the
// time spent outside the backend (autograd bookkeeping, allocation).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Conv2dParams, Pool2dParams } from '../src/backend/backend.js';
import { setBackend } from '../src/backend/registry.js';
import { setThreads } from '../src/backend/wasm/settings.js';
import type { WasmBackend } from '../src/backend/wasm/wasm.js';
import * as layout from '../src/backend/wasm/kernels.generated.js';
import { createModel } from '../src/models/registry.js';
import { SGD } from '../src/optim/sgd.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad, scope } from '../src/tensor/tensor.js';
import { microKernelGflops } from './micro-kernel.js';
import { timeCall } from './peers/common.js';

const { values: opt } = parseArgs({
  options: {
    model: { type: 'string', default: 'd2l_resnet18' },
    arch: { type: 'string', default: '{}' },
    batch: { type: 'string', default: '128' },
    size: { type: 'string', default: '96' },
    channels: { type: 'string', default: '1' },
    classes: { type: 'string', default: '10' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    json: { type: 'string' },
  },
});
const num = (k: keyof typeof opt) => {
  const v = Number(opt[k]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`bench/profile-train: --${k} must be a positive integer, got ${opt[k]}`);
  return v;
};
const batch = num('batch'),
  size = num('size'),
  channels = num('channels'),
  classes = num('classes'),
  threads = num('threads'),
  runs = num('runs');

await setThreads(threads);
const be = (await setBackend('wasm')) as WasmBackend;
const peak1 = Math.max(microKernelGflops(be, 300), microKernelGflops(be, 300));

interface Call {
  op: string;
  shape: string;
  mflop: number;
  path: string;
  ms: number[];
  cpu: number[];
  /** wall ms per wasm job kind inside the call (summed over its jobs), per run */
  jobs: Map<string, number[]>;
}
const convShape = (p: Conv2dParams) =>
  `${p.R}x${p.S}${p.strideH > 1 ? 's' + p.strideH : ''}${p.groups > 1 ? ' g' + p.groups : ''} ${p.C}->${p.K} ${p.H}x${p.W}->${p.OH}x${p.OW}`;
const convFlop = (p: Conv2dParams) => (2 * p.N * p.K * (p.C / p.groups) * p.R * p.S * p.OH * p.OW) / 1e6;

/** Shape label and MFLOP of a call, from its arguments. */
function describe(name: string, a: unknown[]): { shape: string; mflop: number } {
  if (name.startsWith('conv2d')) {
    const p = a[name === 'conv2d' || name === 'conv2dFused' || name === 'conv2dEx' ? 4 : 3] as Conv2dParams;
    return { shape: convShape(p), mflop: convFlop(p) };
  }
  if (name.startsWith('batchNorm') && name !== 'batchNormUpdateStats') {
    const n = a.length;
    // ... N, C, HW(, eps) at the end
    const [N, C, HW] = (name === 'batchNormTrainBackward' ? a.slice(n - 3) : a.slice(n - 4, n - 1)) as number[];
    return { shape: `N${N} C${C} ${Math.sqrt(HW)}^2`, mflop: 0 };
  }
  if (name.includes('Pool2d') && !name.startsWith('adaptive')) {
    const p = a[a.length - 1] as Pool2dParams;
    return { shape: `${p.kH}x${p.kW}s${p.sH} C${p.C} ${p.H}x${p.W}->${p.OH}x${p.OW}`, mflop: 0 };
  }
  if (name === 'gemm')
    return {
      shape: `${a[2]}x${a[3]}x${a[4]}${a[0] ? ' tA' : ''}${a[1] ? ' tB' : ''}`,
      mflop: (2 * (a[2] as number) * (a[3] as number) * (a[4] as number)) / 1e6,
    };
  if (name === 'unary' || name === 'binary') return { shape: `${String(a[0])} n${(a[1] as { length: number }).length}`, mflop: 0 };
  const first = a.find((v) => v && typeof v === 'object' && 'length' in (v as object)) as { length: number } | undefined;
  return { shape: first ? `n${first.length}` : '', mflop: 0 };
}

// Wasm jobs inside a call, by kind (K_GEMM, K_WINO_IN, ...): wall ms summed per call.
const KIND = new Map<number, string>(
  Object.entries(layout)
    .filter(([k]) => k.startsWith('K_'))
    .map(([k, v]) => [v as number, k.slice(2).toLowerCase()]),
);
let jobMs = new Map<string, number>();
{
  const b = be as unknown as { run: (kind: number, ntasks: number, flops: number) => void };
  const orig = b.run.bind(be);
  b.run = (kind, ntasks, flops) => {
    if (!recording) return orig(kind, ntasks, flops);
    const t0 = performance.now();
    orig(kind, ntasks, flops);
    const k = KIND.get(kind) ?? String(kind);
    jobMs.set(k, (jobMs.get(k) ?? 0) + performance.now() - t0);
  };
}

// Wrap every method of the backend: time top-level calls only.
const calls: Call[] = [];
let idx = 0,
  depth = 0,
  recording = false;
const SKIP = new Set(['constructor', 'alloc', 'free', 'reserve', 'view', 'read', 'write', 'setThreads', 'dispose', 'lastJobTasksPerThread']);
const methods = new Set<string>();
for (let o = Object.getPrototypeOf(be); o && o !== Object.prototype; o = Object.getPrototypeOf(o))
  for (const k of Object.getOwnPropertyNames(o)) {
    const d = Object.getOwnPropertyDescriptor(o, k);
    if (d && typeof d.value === 'function' && !SKIP.has(k)) methods.add(k);
  }
const target = be as unknown as Record<string, (...a: unknown[]) => unknown>;
for (const name of methods) {
  const orig = target[name].bind(be);
  target[name] = (...a: unknown[]) => {
    if (!recording || depth > 0) {
      depth++;
      try {
        return orig(...a);
      } finally {
        depth--;
      }
    }
    const w0 = be.counters.winograd,
      w40 = be.counters.winograd4,
      sm0 = (be.counters as { smallMap?: number }).smallMap ?? 0;
    depth++;
    jobMs = new Map();
    const c0 = process.cpuUsage(),
      t0 = performance.now();
    let r: unknown;
    try {
      r = orig(...a);
    } finally {
      depth--;
    }
    const ms = performance.now() - t0,
      c = process.cpuUsage(c0);
    const d = describe(name, a);
    const sm = ((be.counters as { smallMap?: number }).smallMap ?? 0) !== sm0;
    const path = name.startsWith('conv2d')
      ? be.counters.winograd4 !== w40
        ? 'wino F4'
        : be.counters.winograd !== w0
          ? 'wino F2'
          : sm
            ? 'per-tap'
            : 'gemm'
      : '';
    const e = (calls[idx] ??= { op: name, shape: d.shape, mflop: d.mflop, path, ms: [], cpu: [], jobs: new Map() });
    if (e.op !== name) throw new Error(`bench/profile-train: call ${idx} was ${e.op}, now ${name}: steps differ`);
    for (const [k, v] of jobMs) e.jobs.set(k, [...(e.jobs.get(k) ?? []), v]);
    e.ms.push(ms);
    e.cpu.push((c.user + c.system) / 1000);
    idx++;
    return r;
  };
}

const net = noGrad(() => createModel(opt.model!, { ...(JSON.parse(opt.arch!) as object), numClasses: classes, inChannels: channels })).train();
const x = ops.tensor(
  Float32Array.from({ length: batch * channels * size * size }, (_, i) => Math.sin(i * 0.37)),
  [batch, channels, size, size],
);
const targets = Array.from({ length: batch }, (_, i) => i % classes);
const sgd = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9 });
const step = () =>
  scope(() => {
    sgd.zeroGrad();
    const l = ops.crossEntropy(net.forward(x), targets);
    l.backward();
    noGrad(() => sgd.step());
    return l.item();
  });
const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];

step(); // warm-up
const whole: number[] = [],
  wholeCpu: number[] = [];
for (let i = 0; i < runs; i++) {
  const t = await timeCall(step);
  whole.push(t.ms);
  wholeCpu.push(t.cpuMs!); // timeCall always measures CPU time
}
recording = true;
const instr: number[] = [];
for (let i = 0; i < runs; i++) {
  idx = 0;
  const t0 = performance.now();
  step();
  instr.push(performance.now() - t0);
}
recording = false;

const rows = calls.map((e, i) => ({
  i,
  op: e.op,
  shape: e.shape,
  path: e.path,
  mflop: e.mflop,
  ms: median(e.ms),
  cpu: median(e.cpu),
  jobs: Object.fromEntries([...e.jobs].map(([k, v]) => [k, +median(v).toFixed(2)])),
}));
const callMs = rows.reduce((a, r) => a + r.ms, 0);
const stepMs = median(whole),
  stepCpu = median(wholeCpu);
const pct = (gf: number) => ((100 * gf) / (threads * peak1)).toFixed(1);
const f = (v: number, d = 1) => v.toFixed(d);
const lines = [
  `${opt.model} training step, batch ${batch} ${channels}x${size}x${size}, ${threads} threads, median of ${runs}; load average ${os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ')}; micro-kernel ${f(peak1)} GFLOP/s per core`,
  `step (untimed) ${f(stepMs)} ms (min ${f(Math.min(...whole))}), CPU ${f(stepCpu)} ms (CPU/wall ${f(stepCpu / stepMs, 2)}); instrumented step ${f(median(instr))} ms, of which backend calls ${f(callMs)} ms`,
  '',
  '### By operation',
  '',
  '| op | calls | ms | CPU ms | % of calls | GFLOP | GFLOP/s | % of threads x micro-kernel |',
  '|---|---|---|---|---|---|---|---|',
];
const byOp = new Map<string, { n: number; ms: number; cpu: number; mflop: number }>();
for (const r of rows) {
  const k = r.op + (r.path ? ` (${r.path})` : '');
  const g = byOp.get(k) ?? { n: 0, ms: 0, cpu: 0, mflop: 0 };
  g.n++;
  g.ms += r.ms;
  g.cpu += r.cpu;
  g.mflop += r.mflop;
  byOp.set(k, g);
}
for (const [k, g] of [...byOp].sort((a, b) => b[1].ms - a[1].ms)) {
  const gf = g.mflop / g.ms;
  lines.push(
    `| ${k} | ${g.n} | ${f(g.ms)} | ${f(g.cpu)} | ${f((100 * g.ms) / callMs)} | ${g.mflop ? f(g.mflop / 1e3, 2) : ''} | ${g.mflop ? f(gf) : ''} | ${g.mflop ? pct(gf) : ''} |`,
  );
}
// Per conv layer: forward, backward-data, backward-filter side by side (matched by shape, in order).
lines.push(
  '',
  '### Convolutions per layer (ms, GFLOP/s, % of threads x micro-kernel; path)',
  '',
  '| # | conv | MFLOP | forward | backward-data | backward-filter | layer ms | layer CPU/wall |',
  '|---|---|---|---|---|---|---|---|',
);
const fwd = rows.filter((r) => r.op === 'conv2d');
const used = new Set<number>();
const cell = (r: (typeof rows)[number] | undefined) => (r ? `${f(r.ms)} ms, ${f(r.mflop / r.ms)} (${pct(r.mflop / r.ms)}%) ${r.path}` : '—');
fwd.forEach((r, n) => {
  // the backward calls of this layer: the last unused ones with its shape (backward runs in reverse)
  const find = (op: string) => {
    for (let j = rows.length - 1; j >= 0; j--) if (rows[j].op === op && rows[j].shape === r.shape && !used.has(j)) return (used.add(j), rows[j]);
    return undefined;
  };
  const bd = find('conv2dBackwardData'),
    bf = find('conv2dBackwardFilter');
  const ms = r.ms + (bd?.ms ?? 0) + (bf?.ms ?? 0),
    cpu = r.cpu + (bd?.cpu ?? 0) + (bf?.cpu ?? 0);
  lines.push(`| ${n} | ${r.shape} | ${f(r.mflop, 0)} | ${cell(r)} | ${cell(bd)} | ${cell(bf)} | ${f(ms)} | ${f(cpu / ms, 2)} |`);
});
// Where a conv call's time goes: wasm job kinds, summed over the layers of an op and path.
lines.push(
  '',
  '### Conv calls by wasm job kind (ms, summed over layers)',
  '',
  '| op | ' + [...KIND.values()].join(' | ') + ' |',
  '|---|' + [...KIND.values()].map(() => '---|').join(''),
);
for (const k of byOp.keys()) {
  if (!k.startsWith('conv2d')) continue;
  const tot = new Map<string, number>();
  for (const r of rows) if (r.op + (r.path ? ` (${r.path})` : '') === k) for (const [j, v] of Object.entries(r.jobs)) tot.set(j, (tot.get(j) ?? 0) + v);
  lines.push(`| ${k} | ` + [...KIND.values()].map((j) => (tot.has(j) ? f(tot.get(j)!) : '')).join(' | ') + ' |');
}
// Everything else grouped by op and shape.
lines.push('', '### Other calls by op and shape', '', '| op | shape | calls | ms | CPU ms | % of calls |', '|---|---|---|---|---|---|');
const other = new Map<string, { n: number; ms: number; cpu: number }>();
for (const r of rows) {
  if (r.op.startsWith('conv2d')) continue;
  const k = `${r.op} | ${r.shape}`;
  const g = other.get(k) ?? { n: 0, ms: 0, cpu: 0 };
  g.n++;
  g.ms += r.ms;
  g.cpu += r.cpu;
  other.set(k, g);
}
for (const [k, g] of [...other].sort((a, b) => b[1].ms - a[1].ms))
  if (g.ms >= 0.05 * (callMs / 100)) lines.push(`| ${k} | ${g.n} | ${f(g.ms, 2)} | ${f(g.cpu, 2)} | ${f((100 * g.ms) / callMs)} |`);
console.log(lines.join('\n'));
if (opt.json)
  writeFileSync(
    opt.json,
    JSON.stringify({ model: opt.model, batch, size, threads, runs, loadavg: os.loadavg(), peak1, stepMs, stepCpu, instr: median(instr), rows }, null, 1) + '\n',
  );
sgd.zeroGrad();
x.dispose();
net.dispose();
be.dispose();
process.exit(0);
