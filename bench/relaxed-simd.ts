// Relaxed SIMD (f32x4.relaxed_madd in the GEMM micro-kernel) against the default SIMD128 build,
// in one process, interleaved round by round, one thread each, in CPU time.
//
//   node --experimental-wasm-relaxed-simd --import tsx bench/relaxed-simd.ts [--rounds 7]
//
// Node 20 needs the flag (Node 22+ and current Chromium have relaxed SIMD on). The relaxed build
// comes from the same AssemblyScript (build.mjs --relaxed, into bench/.cache/); the default build
// is the embedded one. Prints per case the two medians and relaxed/default (below 1: relaxed is
// faster), and the relaxed build's numbers against the default build's and against ref.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/wasm.js';
import { RefBackend } from '../src/backend/ref/ref.js';
import { registerBackend, setBackend } from '../src/backend/registry.js';
import { createModel } from '../src/models/registry.js';
import { fuseForInference } from '../src/models/fused.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad, scope } from '../src/tensor/tensor.js';
import { manualSeed } from '../src/base/rng.js';
import { microKernelGflops } from './micro-kernel.js';

const { values: opt } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
const ROUNDS = Number(opt.rounds);

/** A 3-v128-parameter function returning f32x4.relaxed_madd of them: validates where the runtime has relaxed SIMD. */
// prettier-ignore
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, // type (v128, v128, v128) -> v128
  0x03, 0x02, 0x01, 0x00, // one function of type 0
  0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b, // local.get 0 1 2; f32x4.relaxed_madd
]);
if (!WebAssembly.validate(PROBE)) {
  console.log(`relaxed SIMD is off in this runtime (Node ${process.version}); run with --experimental-wasm-relaxed-simd`);
  process.exit(0);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const asm = path.join(here, '..', 'src', 'backend', 'wasm', 'assembly');
const out = path.join(here, '.cache', 'kernels-relaxed.wasm');
mkdirSync(path.dirname(out), { recursive: true });
const newest = Math.max(...readdirSync(asm).map((f) => statSync(path.join(asm, f)).mtimeMs));
if (!existsSync(out) || statSync(out).mtimeMs < newest) execFileSync(process.execPath, [path.join(asm, 'build.mjs'), '--relaxed', out], { stdio: 'inherit' });
const relaxedModule = await WebAssembly.compile(readFileSync(out));

const plain = await createWasmBackend({ threads: 1 });
const relaxed = await createWasmBackend({ threads: 1, kernelModule: relaxedModule });
registerBackend('wasm-default', () => plain);
registerBackend('wasm-relaxed', () => relaxed);
const builds: [string, WasmBackend][] = [
  ['wasm-default', plain],
  ['wasm-relaxed', relaxed],
];

function random(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}
const relL2 = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let n = 0,
    d = 0;
  for (let i = 0; i < a.length; i++) {
    n += (a[i] - b[i]) ** 2;
    d += b[i] ** 2;
  }
  return Math.sqrt(n / d);
};
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];

interface Session {
  run: () => void;
  result?: () => Float32Array;
}
type Case = (name: string, be: WasmBackend) => Promise<Session>;

async function model(arch: string): Promise<Case> {
  return async (name) => {
    await setBackend(name);
    manualSeed(1); // the same weights in both builds
    const net = noGrad(() => createModel(arch)).eval();
    const f = fuseForInference(net);
    const x = ops.tensor(random(3 * 224 * 224, 2), [1, 3, 224, 224]);
    let y: Float32Array = new Float32Array(0);
    return {
      run: () => {
        y = scope(() => f.forward(x).dataSync());
      },
      result: () => y,
    };
  };
}
const sgemm: Case = async (_name, be) => {
  const n = 512;
  const A = be.alloc(n * n),
    B = be.alloc(n * n),
    C = be.alloc(n * n);
  be.write(A, random(n * n, 3));
  be.write(B, random(n * n, 4));
  return { run: () => be.gemm(false, false, n, n, n, A, B, C, false), result: () => be.readSync(C) };
};

console.log(
  `load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}, Node ${process.version}, ${os.cpus()[0].model}`,
);
// the micro-kernel on L1-resident panels (the backend's own measurement, GFLOP/s)
{
  const g: number[][] = [[], []];
  for (let r = 0; r < ROUNDS; r++) for (const i of r % 2 ? [1, 0] : [0, 1]) g[i].push(microKernelGflops(builds[i][1], 200));
  console.log(
    JSON.stringify({
      case: 'micro-kernel 2x16 (GFLOP/s, higher is better)',
      default: +median(g[0]).toFixed(1),
      relaxed: +median(g[1]).toFixed(1),
      relaxed_over_default: +(median(g[1]) / median(g[0])).toFixed(4),
    }),
  );
}
const cases: [string, Case][] = [
  ['sgemm-512', sgemm],
  ['resnet18-b1-fused', await model('resnet18')],
  ['resnet50-b1-fused', await model('resnet50')],
];
for (const [label, make] of cases) {
  const sessions: Session[] = [];
  for (const [name, be] of builds) sessions.push(await make(name, be));
  // ops run on the current backend: switch before each call (not timed)
  for (let i = 0; i < 2; i++) {
    await setBackend(builds[i][0]);
    sessions[i].run();
    sessions[i].run();
  }
  const t: number[][] = [[], []];
  for (let r = 0; r < ROUNDS; r++)
    for (const i of r % 2 ? [1, 0] : [0, 1]) {
      await setBackend(builds[i][0]);
      const c0 = cpu();
      sessions[i].run();
      t[i].push(cpu() - c0);
    }
  const [a, b] = t.map(median);
  const row: Record<string, unknown> = { case: label, default_cpu_ms: +a.toFixed(2), relaxed_cpu_ms: +b.toFixed(2), relaxed_over_default: +(b / a).toFixed(4) };
  const [ra, rb] = sessions.map((s) => s.result!());
  row.relaxed_vs_default_relL2 = +relL2(rb, ra).toExponential(2);
  if (label === 'sgemm-512') {
    const n = 512,
      ref = new RefBackend(),
      [A, B, C] = [ref.alloc(n * n), ref.alloc(n * n), ref.alloc(n * n)];
    ref.write(A, random(n * n, 3));
    ref.write(B, random(n * n, 4));
    ref.gemm(false, false, n, n, n, A, B, C, false);
    const want = ref.readSync(C);
    row.default_vs_ref_relL2 = +relL2(ra, want).toExponential(2);
    row.relaxed_vs_ref_relL2 = +relL2(rb, want).toExponential(2);
  }
  console.log(JSON.stringify(row));
}
console.log(
  `load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
plain.dispose();
relaxed.dispose();
process.exit(0);
