// Per-layer profile of a fused inference forward on the wasm backend (what `npm run bench` times
// for `ours`): every conv2dFused call's shape, path (direct GEMM or Winograd), median wall time,
// CPU time / wall time (how many threads were busy), GFLOP/s, and efficiency against threads x
// the micro-kernel's own L1-resident rate measured in the same process (bench/micro-kernel.ts).
//
//   node --import tsx bench/profile.ts [--model resnet50] [--batch 1] [--threads 2] [--runs 7] [--json out.json]
//
// The table goes to stdout (markdown); --json also writes the rows. Layers with the same shape
// are listed separately (in forward order). "other" is the forward's time outside the convs
// (pools, the fc head, tensor bookkeeping).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Conv2dParams } from '../src/backend/backend.js';
import { setBackend } from '../src/backend/registry.js';
import { setThreads } from '../src/backend/wasm/settings.js';
import type { WasmBackend } from '../src/backend/wasm/wasm.js';
import { fuseForInference } from '../src/models/fused.js';
import { createModel } from '../src/models/registry.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad, scope } from '../src/tensor/tensor.js';
import { microKernelGflops } from './micro-kernel.js';
import { timeCall } from './peers/common.js';

const { values: opt } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet50' },
    batch: { type: 'string', default: '1' },
    size: { type: 'string', default: '224' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '7' },
    json: { type: 'string' },
  },
});
const batch = Number(opt.batch),
  size = Number(opt.size),
  threads = Number(opt.threads),
  runs = Number(opt.runs);
for (const [k, v] of [
  ['batch', batch],
  ['size', size],
  ['threads', threads],
  ['runs', runs],
] as const)
  if (!Number.isInteger(v) || v < 1) throw new Error(`bench/profile: --${k} must be a positive integer, got ${opt[k]}`);

await setThreads(threads);
const be = (await setBackend('wasm')) as WasmBackend;
const peaks = [microKernelGflops(be, 300), microKernelGflops(be, 300)];
const peak1 = Math.max(...peaks);

interface Call {
  p: Conv2dParams;
  winograd: boolean;
  /** F(4x4,3x3) (else F(2x2) when winograd) */
  wino4: boolean;
  grouped: boolean;
  ms: number[];
  cpu: number[];
}
const calls: Call[] = [];
let idx = 0,
  recording = false;
const orig = be.conv2dFused.bind(be);
be.conv2dFused = (x, w, bias, y, p, relu, residual, constWeights) => {
  if (!recording) return orig(x, w, bias, y, p, relu, residual, constWeights);
  const wino0 = be.counters.winograd,
    wino40 = (be.counters as { winograd4?: number }).winograd4 ?? 0,
    grouped0 = (be.counters as { grouped?: number }).grouped ?? 0;
  const c0 = process.cpuUsage(),
    t0 = performance.now();
  orig(x, w, bias, y, p, relu, residual, constWeights);
  const ms = performance.now() - t0,
    c = process.cpuUsage(c0);
  const e = (calls[idx] ??= {
    p: { ...p },
    winograd: be.counters.winograd !== wino0,
    wino4: ((be.counters as { winograd4?: number }).winograd4 ?? 0) !== wino40,
    grouped: ((be.counters as { grouped?: number }).grouped ?? 0) !== grouped0,
    ms: [],
    cpu: [],
  });
  e.ms.push(ms);
  e.cpu.push((c.user + c.system) / 1000);
  idx++;
};

const model = noGrad(() => createModel(opt.model!)).eval();
const fused = fuseForInference(model);
const x = ops.tensor(
  Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i * 0.37)),
  [batch, 3, size, size],
);
const forward = () => scope(() => void fused.forward(x).shape);

const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];
// warm-up, then the whole forward without instrumentation, then instrumented runs
for (let i = 0; i < 2; i++) forward();
const whole: number[] = [],
  wholeCpu: number[] = [];
for (let i = 0; i < runs; i++) {
  const t = await timeCall(forward);
  whole.push(t.ms);
  wholeCpu.push(t.cpuMs!); // timeCall always measures CPU time
}
recording = true;
const instr: number[] = [];
for (let i = 0; i < runs; i++) {
  idx = 0;
  const t0 = performance.now();
  forward();
  instr.push(performance.now() - t0);
}
recording = false;

const flopsOf = (p: Conv2dParams) => 2 * p.N * p.K * (p.C / p.groups) * p.R * p.S * p.OH * p.OW;
const rows = calls.map((e, i) => {
  const p = e.p,
    ms = median(e.ms),
    gf = flopsOf(p) / (ms * 1e6);
  return {
    layer: i,
    shape: `${p.R}x${p.S}${p.strideH > 1 ? 's' + p.strideH : ''}${p.groups > 1 ? ' g' + p.groups : ''} ${p.C}->${p.K} ${p.H}x${p.W}->${p.OH}x${p.OW}`,
    path: e.grouped ? 'grouped' : e.winograd ? (e.wino4 ? 'winograd F4' : 'winograd F2') : 'gemm',
    ms: +ms.toFixed(3),
    cpu_ms: +median(e.cpu).toFixed(3),
    cpu_over_wall: +(median(e.cpu) / ms).toFixed(2),
    mflop: +(flopsOf(p) / 1e6).toFixed(1),
    gflops: +gf.toFixed(1),
    pct_of_microkernel_x_threads: +((100 * gf) / (threads * peak1)).toFixed(1),
  };
});
const convMs = rows.reduce((a, r) => a + r.ms, 0),
  flops = calls.reduce((a, e) => a + flopsOf(e.p), 0);
const wholeMs = median(whole),
  gfWhole = flops / (wholeMs * 1e6);
const summary = {
  model: opt.model,
  batch,
  size,
  threads,
  runs,
  loadavg: os.loadavg().map((v) => +v.toFixed(2)),
  microkernel_1core_gflops: +peak1.toFixed(1),
  forward_ms_median: +wholeMs.toFixed(2),
  forward_ms_min: +Math.min(...whole).toFixed(2),
  forward_cpu_over_wall: +(median(wholeCpu) / wholeMs).toFixed(2),
  instrumented_forward_ms: +median(instr).toFixed(2),
  conv_ms_sum: +convMs.toFixed(2),
  conv_gflop: +(flops / 1e9).toFixed(3),
  whole_gflops: +gfWhole.toFixed(1),
  whole_pct_of_microkernel_x_threads: +((100 * gfWhole) / (threads * peak1)).toFixed(1),
  // per CPU second (all threads): the work's efficiency whatever the load, not the balance
  forward_cpu_ms_median: +median(wholeCpu).toFixed(2),
  whole_gflop_per_cpu_s: +(flops / (median(wholeCpu) * 1e6)).toFixed(1),
  whole_pct_of_microkernel_per_cpu_s: +((100 * flops) / (median(wholeCpu) * 1e6 * peak1)).toFixed(1),
};

const lines = [
  `${opt.model} batch ${batch} ${size}x${size}, ${threads} threads, median of ${runs}; load average ${summary.loadavg.join(' ')}; micro-kernel ${summary.microkernel_1core_gflops} GFLOP/s per core`,
  `forward ${summary.forward_ms_median} ms (min ${summary.forward_ms_min}, CPU/wall ${summary.forward_cpu_over_wall}), ${summary.conv_gflop} GFLOP of convs: ${summary.whole_gflops} GFLOP/s = ${summary.whole_pct_of_microkernel_x_threads}% of ${threads} x micro-kernel`,
  `per CPU second (all threads, load-independent work efficiency, not balance): forward ${summary.forward_cpu_ms_median} CPU ms, ${summary.whole_gflop_per_cpu_s} GFLOP/s = ${summary.whole_pct_of_microkernel_per_cpu_s}% of the micro-kernel`,
  `instrumented forward ${summary.instrumented_forward_ms} ms: convs ${summary.conv_ms_sum} ms, other ${(summary.instrumented_forward_ms - convMs).toFixed(2)} ms`,
  '',
  '| # | conv | path | ms | CPU ms | CPU/wall | MFLOP | GFLOP/s | % of threads x micro-kernel |',
  '|---|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.layer} | ${r.shape} | ${r.path} | ${r.ms} | ${r.cpu_ms} | ${r.cpu_over_wall} | ${r.mflop} | ${r.gflops} | ${r.pct_of_microkernel_x_threads} |`,
  ),
];
// The same, grouped by shape and path (time summed over the layers of that shape).
const groups = new Map<string, { n: number; ms: number; cpu: number; mflop: number }>();
for (const r of rows) {
  const g = groups.get(`${r.shape} | ${r.path}`) ?? { n: 0, ms: 0, cpu: 0, mflop: 0 };
  g.n++;
  g.ms += r.ms;
  g.cpu += r.cpu_ms;
  g.mflop += r.mflop;
  groups.set(`${r.shape} | ${r.path}`, g);
}
lines.push(
  '',
  '| conv | path | layers | ms (sum) | CPU ms (sum) | % of conv time | GFLOP/s | % of threads x micro-kernel |',
  '|---|---|---|---|---|---|---|---|',
);
for (const [k, g] of [...groups].sort((a, b) => b[1].ms - a[1].ms)) {
  const gf = g.mflop / 1e3 / (g.ms / 1e3);
  lines.push(
    `| ${k} | ${g.n} | ${g.ms.toFixed(2)} | ${g.cpu.toFixed(2)} | ${((100 * g.ms) / convMs).toFixed(1)} | ${gf.toFixed(1)} | ${((100 * gf) / (threads * peak1)).toFixed(1)} |`,
  );
}
console.log(lines.join('\n'));
if (opt.json) writeFileSync(opt.json, JSON.stringify({ summary, rows }, null, 1) + '\n');
fused.dispose();
x.dispose();
model.dispose();
be.dispose();
process.exit(0);
