// Kernel microbenchmarks of the webgpu backend on the current adapter: one JSON line per case on
// stdout, then a table on stderr. GFLOP/s best and median of several timed batches.
//
//   node --import tsx bench/webgpu-kernels.ts [--reps 5] [--only gemm|conv] [--gemm 512,1024,2048] [--batch 1] [--quick]
//
// Timing: each sample records `inner` dispatches of the kernel, then waits for the queue to drain
// (rt.sync()), so it measures GPU execution plus the submit/wait round trip, amortised over inner.
// A warm-up sample first compiles the pipeline. On a software adapter (Mesa llvmpipe through
// Dawn's OpenGL backend, or SwiftShader) every row says so: those figures measure a CPU emulation
// and say nothing about a GPU. There, 2048³ GEMM (17 GFLOP, ~10-60 s per run) is left out unless
// --gemm names it.
import { webgpuBackend } from '../src/backend/webgpu/index.js';
import '../src/backend/webgpu/node.js';
import type { Conv2dParams } from '../src/backend/backend.js';
import type { GpuStorage } from '../src/backend/webgpu/runtime.js';

const args = process.argv.slice(2);
function opt(name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
const quick = args.includes('--quick');
const only = opt('only', '');
const batch = Number(opt('batch', '1'));

const be = await webgpuBackend();
const rt = be.rt;
const adapter = be.adapterDescription;
const software = /llvmpipe|swiftshader|softpipe|lavapipe|basic render/i.test(adapter);
const reps = Number(opt('reps', quick || software ? '3' : '7'));
const gemmSizes = opt('gemm', software ? '512,1024' : '512,1024,2048')
  .split(',')
  .map(Number);

console.log(JSON.stringify({ adapter, software_adapter: software, reps }));
if (software) console.error(`note: ${adapter} is a software adapter: figures measure a CPU emulation, not a GPU`);

interface Row {
  kernel: string;
  case: string;
  gflops_best: number;
  gflops_median: number;
  ms_best: number;
  adapter: string;
  software_adapter: boolean;
}
const rows: Row[] = [];

/** ms per call, sorted: each sample is `inner` calls then a queue drain. */
async function time(fn: () => void, flops: number): Promise<number[]> {
  // aim for ~50 ms of GPU work per sample, at least one call (the warm-up measures one)
  const t0 = performance.now();
  fn();
  await rt.sync();
  const first = performance.now() - t0;
  const inner = Math.max(1, Math.min(64, Math.round(50 / Math.max(first, 0.01)), Math.ceil(2e9 / flops)));
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    for (let j = 0; j < inner; j++) fn();
    await rt.sync();
    out.push((performance.now() - s) / inner);
  }
  return out.sort((a, b) => a - b);
}

function report(kernel: string, name: string, flops: number, ms: number[]): void {
  const r: Row = {
    kernel,
    case: name,
    gflops_best: +(flops / (ms[0] * 1e6)).toFixed(2),
    gflops_median: +(flops / (ms[Math.floor(ms.length / 2)] * 1e6)).toFixed(2),
    ms_best: +ms[0].toFixed(3),
    adapter,
    software_adapter: software,
  };
  rows.push(r);
  console.log(JSON.stringify(r));
}

function rand(n: number): GpuStorage {
  const a = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  const g = be.alloc(n);
  be.write(g, a);
  return g;
}

function conv(N: number, C: number, H: number, K: number, R: number, stride: number, pad: number, groups = 1): Conv2dParams {
  const OH = Math.floor((H + 2 * pad - R) / stride) + 1;
  return { N, C, H, W: H, K, R, S: R, strideH: stride, strideW: stride, padH: pad, padW: pad, dilH: 1, dilW: 1, groups, OH, OW: OH };
}

if (!only || only === 'gemm') {
  for (const n of gemmSizes) {
    const A = rand(n * n),
      B = rand(n * n),
      C = be.alloc(n * n);
    report('sgemm', `${n}x${n}x${n} NN`, 2 * n ** 3, await time(() => be.gemm(false, false, n, n, n, A, B, C, false), 2 * n ** 3));
    if (n === gemmSizes[0]) {
      report('sgemm', `${n}x${n}x${n} TN`, 2 * n ** 3, await time(() => be.gemm(true, false, n, n, n, A, B, C, false), 2 * n ** 3));
      report('sgemm', `${n}x${n}x${n} NT`, 2 * n ** 3, await time(() => be.gemm(false, true, n, n, n, A, B, C, false), 2 * n ** 3));
    }
    for (const x of [A, B, C]) be.free(x);
  }
}

if (!only || only === 'conv') {
  const b = batch;
  // ResNet-50 / ResNeXt layer shapes at 224×224
  const cases: [string, Conv2dParams][] = [
    [`stem 7x7s2 3->64 224 b${b}`, conv(b, 3, 224, 64, 7, 2, 3)],
    [`3x3 64->64 56 b${b}`, conv(b, 64, 56, 64, 3, 1, 1)],
    [`3x3 256->256 14 b${b}`, conv(b, 256, 14, 256, 3, 1, 1)],
    [`3x3 512->512 7 b${b}`, conv(b, 512, 7, 512, 3, 1, 1)],
    [`3x3s2 128->128 56 b${b}`, conv(b, 128, 56, 128, 3, 2, 1)],
    [`1x1 256->64 56 b${b}`, conv(b, 256, 56, 64, 1, 1, 0)],
    [`1x1 1024->256 14 b${b}`, conv(b, 1024, 14, 256, 1, 1, 0)],
    [`1x1s2 1024->2048 14 b${b} (downsample)`, conv(b, 1024, 14, 2048, 1, 2, 0)],
    [`3x3 g32 128->128 56 b${b} (resnext)`, conv(b, 128, 56, 128, 3, 1, 1, 32)],
  ];
  for (const [name, p] of quick ? cases.slice(1, 3) : cases) {
    const Cg = p.C / p.groups;
    const flops = 2 * p.N * p.K * Cg * p.R * p.S * p.OH * p.OW;
    const x = rand(p.N * p.C * p.H * p.W),
      w = rand(p.K * Cg * p.R * p.S),
      bias = rand(p.K);
    const yn = p.N * p.K * p.OH * p.OW;
    const y = be.alloc(yn),
      dy = rand(yn),
      dx = be.alloc(x.length),
      dw = be.alloc(w.length);
    report('conv2d', name, flops, await time(() => be.conv2d(x, w, bias, y, p), flops));
    report('conv2dBackwardData', name, flops, await time(() => be.conv2dBackwardData(dy, w, dx, p), flops));
    report('conv2dBackwardFilter', name, flops, await time(() => be.conv2dBackwardFilter(x, dy, dw, p), flops));
    for (const a of [x, w, bias, y, dy, dx, dw]) be.free(a);
  }
}

const tag = software ? ' (software adapter)' : '';
console.error(`\nwebgpu kernels on ${adapter}${tag}, best of ${reps}\n`);
console.error('| kernel | case | GFLOP/s best | GFLOP/s median | ms best |');
console.error('|---|---|---:|---:|---:|');
for (const r of rows) console.error(`| ${r.kernel} | ${r.case} | ${r.gflops_best} | ${r.gflops_median} | ${r.ms_best} |`);
