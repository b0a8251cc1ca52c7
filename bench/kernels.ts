// Kernel microbenchmarks of the wasm backend: one JSON line per case on stdout, then a table on
// stderr. GFLOP/s best and median of several runs, and the percentage of the SIMD128 ceiling.
//
//   node --import tsx bench/kernels.ts [--threads 1,2] [--reps 7] [--only gemm|conv|eltwise] [--quick]
//
// The ceiling: WebAssembly SIMD128 has no FMA, so a core does at most 2 f32x4.mul + 2 f32x4.add
// per cycle = 16 FLOP/cycle. The "nominal" ceiling is threads x 16 x 3.5 GHz (the figure in
// ../shared/BENCHMARKS.md); "measured" is threads x the micro-kernel's own rate on L1-resident
// panels in this run (the most the GEMM can reach on this machine and clock).
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/wasm.js';
import type { Conv2dParams } from '../src/backend/backend.js';
import type { HeapBlock } from '../src/backend/wasm/memory.js';
import { microKernelGflops } from './micro-kernel.js';

const args = process.argv.slice(2);
function opt(name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
const quick = args.includes('--quick');
const threadList = opt('threads', '1,2').split(',').map(Number);
const reps = Number(opt('reps', quick ? '3' : '7'));
const only = opt('only', '');
const NOMINAL_GHZ = 3.5;

interface Row {
  kernel: string;
  case: string;
  threads: number;
  gflops_best: number;
  gflops_median: number;
  pct_nominal_ceiling: number;
  pct_measured_ceiling: number;
  ms_best: number;
}
const rows: Row[] = [];
const eltRows: { kernel: string; case: string; threads: number; gbps_best: number; gbps_median: number; ms_best: number }[] = [];

function time(fn: () => void, n: number): number[] {
  fn(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

function report(kernel: string, name: string, threads: number, flops: number, ms: number[], peak1: number, bytes = 0): void {
  const best = flops / (ms[0] * 1e6),
    med = flops / (ms[Math.floor(ms.length / 2)] * 1e6);
  if (bytes) {
    const r = {
      kernel,
      case: name,
      threads,
      gbps_best: +(bytes / (ms[0] * 1e6)).toFixed(2),
      gbps_median: +(bytes / (ms[Math.floor(ms.length / 2)] * 1e6)).toFixed(2),
      ms_best: +ms[0].toFixed(4),
    };
    eltRows.push(r);
    console.log(JSON.stringify(r));
    return;
  }
  const r: Row = {
    kernel,
    case: name,
    threads,
    gflops_best: +best.toFixed(2),
    gflops_median: +med.toFixed(2),
    pct_nominal_ceiling: +((100 * best) / (threads * 16 * NOMINAL_GHZ)).toFixed(1),
    pct_measured_ceiling: +((100 * best) / (threads * peak1)).toFixed(1),
    ms_best: +ms[0].toFixed(3),
  };
  rows.push(r);
  console.log(JSON.stringify(r));
}

function rand(be: WasmBackend, n: number): HeapBlock {
  const a = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  const b = be.alloc(n);
  be.write(b, a);
  return b;
}

function conv(N: number, C: number, H: number, K: number, R: number, stride: number, pad: number, groups = 1): Conv2dParams {
  const OH = Math.floor((H + 2 * pad - R) / stride) + 1;
  return { N, C, H, W: H, K, R, S: R, strideH: stride, strideW: stride, padH: pad, padW: pad, dilH: 1, dilW: 1, groups, OH, OW: OH };
}

const be = await createWasmBackend({ threads: Math.max(...threadList) });
const peaks: number[] = [];
for (let i = 0; i < 3; i++) peaks.push(microKernelGflops(be, 300));
const peak1 = Math.max(...peaks);
console.log(
  JSON.stringify({
    kernel: 'microkernel-2x16-L1',
    case: 'single core SIMD128 mul+add ceiling',
    threads: 1,
    gflops_best: +peak1.toFixed(2),
    nominal_1core: 16 * NOMINAL_GHZ,
  }),
);

for (const threads of threadList) {
  await be.setThreads(threads);
  if (!only || only === 'gemm') {
    for (const n of quick ? [256, 512] : [256, 512, 1024]) {
      const A = rand(be, n * n),
        B = rand(be, n * n),
        C = be.alloc(n * n);
      report(
        'sgemm',
        `${n}x${n}x${n} NN`,
        threads,
        2 * n ** 3,
        time(() => be.gemm(false, false, n, n, n, A, B, C, false), reps),
        peak1,
      );
      if (n === 512) {
        report(
          'sgemm',
          `${n}x${n}x${n} TN`,
          threads,
          2 * n ** 3,
          time(() => be.gemm(true, false, n, n, n, A, B, C, false), reps),
          peak1,
        );
        report(
          'sgemm',
          `${n}x${n}x${n} NT`,
          threads,
          2 * n ** 3,
          time(() => be.gemm(false, true, n, n, n, A, B, C, false), reps),
          peak1,
        );
      }
      for (const x of [A, B, C]) be.free(x);
    }
  }
  if (!only || only === 'conv') {
    const cases: [string, Conv2dParams][] = [
      ['resnet stem 7x7s2 3->64 224 b1', conv(1, 3, 224, 64, 7, 2, 3)],
      ['3x3 64->64 56 b1', conv(1, 64, 56, 64, 3, 1, 1)],
      ['3x3 128->128 28 b1', conv(1, 128, 28, 128, 3, 1, 1)],
      ['3x3 256->256 14 b1', conv(1, 256, 14, 256, 3, 1, 1)],
      ['3x3 512->512 7 b1', conv(1, 512, 7, 512, 3, 1, 1)],
      ['3x3s2 128->256 28 b1', conv(1, 128, 28, 256, 3, 2, 1)],
      ['1x1 256->64 56 b1', conv(1, 256, 56, 64, 1, 1, 0)],
      ['1x1 1024->256 14 b1', conv(1, 1024, 14, 256, 1, 1, 0)],
      ['1x1s2 256->512 56 b1', conv(1, 256, 56, 512, 1, 2, 0)],
      ['3x3 64->64 24 b16 (d2l@96)', conv(16, 64, 24, 64, 3, 1, 1)],
      ['3x3 256->256 6 b16 (d2l@96)', conv(16, 256, 6, 256, 3, 1, 1)],
      ['3x3 g32 128->128 56 b1 (resnext)', conv(1, 128, 56, 128, 3, 1, 1, 32)],
    ];
    for (const [name, p] of quick ? cases.slice(1, 3) : cases) {
      const Cg = p.C / p.groups;
      const flops = 2 * p.N * p.K * Cg * p.R * p.S * p.OH * p.OW;
      const x = rand(be, p.N * p.C * p.H * p.W),
        w = rand(be, p.K * Cg * p.R * p.S),
        b = rand(be, p.K);
      const y = be.alloc(p.N * p.K * p.OH * p.OW),
        dy = rand(be, y.length),
        dx = be.alloc(x.length),
        dw = be.alloc(w.length);
      report(
        'conv2d',
        name,
        threads,
        flops,
        time(() => be.conv2d(x, w, b, y, p), reps),
        peak1,
      );
      report(
        'conv2dBackwardData',
        name,
        threads,
        flops,
        time(() => be.conv2dBackwardData(dy, w, dx, p), reps),
        peak1,
      );
      report(
        'conv2dBackwardFilter',
        name,
        threads,
        flops,
        time(() => be.conv2dBackwardFilter(x, dy, dw, p), reps),
        peak1,
      );
      for (const a of [x, w, b, y, dy, dx, dw]) be.free(a);
    }
  }
  if (!only || only === 'eltwise') {
    // Memory-bound kernels: GB/s of compulsory traffic (bytes read + written once).
    const N = 16,
      C = 64,
      HW = 56 * 56,
      n = N * C * HW;
    const x = rand(be, n),
      y = be.alloc(n),
      dy = rand(be, n),
      g = rand(be, C),
      b = rand(be, C);
    const m = be.alloc(C),
      is = be.alloc(C),
      v = be.alloc(C),
      dg = be.alloc(C),
      db = be.alloc(C);
    const eltCase = (kernel: string, bytes: number, fn: () => void) => {
      const ms = time(fn, reps);
      report(kernel, `${N}x${C}x56x56`, threads, 0, ms, peak1, bytes);
    };
    eltCase('relu', 8 * n, () => be.unary('relu', x, y));
    eltCase('reluBackward', 12 * n, () => be.reluBackward(dy, x, y));
    eltCase('addInPlace', 12 * n, () => be.addInPlace(y, x));
    eltCase('batchNormTrain', 12 * n, () => be.batchNormTrain(x, g, b, y, m, is, v, N, C, HW, 1e-5));
    const v1 = be.alloc(C);
    be.write(
      v1,
      be.readSync(v).map((q) => q + 1),
    );
    eltCase('batchNormEval', 8 * n, () => be.batchNormEval(x, g, b, m, v1, y, N, C, HW, 1e-5));
    eltCase('batchNormTrainBackward', 20 * n, () => be.batchNormTrainBackward(dy, x, g, m, is, y, dg, db, N, C, HW));
    const pp = { N, C, H: 56, W: 56, kH: 3, kW: 3, sH: 2, sW: 2, pH: 1, pW: 1, dH: 1, dW: 1, OH: 28, OW: 28, countIncludePad: true };
    const py = be.alloc(N * C * 28 * 28);
    eltCase('maxPool2d 3x3s2', 4 * n + 4 * py.length, () => be.maxPool2d(x, py, pp));
    eltCase('maxPool2dBackward 3x3s2', 8 * n + 4 * py.length, () => be.maxPool2dBackward(x, py, y, pp));
    const gp = be.alloc(N * C);
    eltCase('adaptiveAvgPool2d global', 4 * n, () => be.adaptiveAvgPool2d(x, gp, N, C, 56, 56, 1, 1));
    const buf = be.alloc(n);
    eltCase('sgdStep momentum', 20 * n, () => be.sgdStep(y, x, buf, 1e-9, 0.9, 0, 1e-4, false, false));
    const small = be.alloc(1024),
      small2 = be.alloc(1024);
    eltCase('addInPlace 1024 floats (call overhead)', 12 * 1024, () => be.addInPlace(small, small2));
    for (const a of [x, y, dy, g, b, m, is, v, v1, dg, db, py, gp, buf, small, small2]) be.free(a);
  }
}
be.dispose();

// A compact table on stderr (stdout stays pure JSON lines).
const lines = ['| kernel | case | threads | GFLOP/s best | median | % nominal | % measured |', '|---|---|---|---|---|---|---|'];
for (const r of rows) {
  lines.push(`| ${r.kernel} | ${r.case} | ${r.threads} | ${r.gflops_best} | ${r.gflops_median} | ${r.pct_nominal_ceiling} | ${r.pct_measured_ceiling} |`);
}
console.error(`\nmicro-kernel ceiling (1 core, measured): ${peak1.toFixed(1)} GFLOP/s; nominal 1 core: ${16 * NOMINAL_GHZ}`);
console.error(lines.join('\n'));
if (eltRows.length) {
  const el = ['| kernel | case | threads | GB/s best | median | ms best |', '|---|---|---|---|---|---|'];
  for (const r of eltRows) el.push(`| ${r.kernel} | ${r.case} | ${r.threads} | ${r.gbps_best} | ${r.gbps_median} | ${r.ms_best} |`);
  console.error(el.join('\n'));
}
