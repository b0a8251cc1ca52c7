// A/B of two checkouts of resnet-ts in ONE process, case by case, interleaved round by round
// (A B, then B A), on one thread, timed in CPU milliseconds (process.cpuUsage) as well as wall
// time: on a loaded shared machine the CPU time of single-threaded work drifts far less than
// the wall time. Each checkout is imported from its own src/, so each has its own modules,
// backend registry and wasm memory.
//
//   node --import tsx bench/ab.ts <checkout A> <checkout B> [--rounds 7] [--only case,...] [--threads 1]
//
// --threads 2 measures the thread split too; CPU time then counts both threads (work, not
// balance), so read the wall time beside it.
//
// Prints one line per case: A and B medians, and B/A (below 1: B is faster).
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '7' }, only: { type: 'string' }, threads: { type: 'string', default: '1' } },
});
if (positionals.length !== 2) throw new Error('usage: bench/ab.ts <checkout A> <checkout B> [--rounds N] [--only case,...]');
const ROUNDS = Number(opt.rounds);
const THREADS = Number(opt.threads);
if (!Number.isInteger(THREADS) || THREADS < 1) throw new Error(`bench/ab.ts: --threads must be a positive integer, got ${opt.threads}`);

/* eslint-disable @typescript-eslint/no-explicit-any -- two checkouts whose APIs may differ */
interface Tree {
  name: string;
  m: Record<string, any>;
}

async function load(dir: string): Promise<Tree> {
  const imp = (p: string) => import(pathToFileURL(path.resolve(dir, 'src', p)).href);
  const [registry, wasm, models, fused, ops, tensor, sgd] = await Promise.all([
    imp('backend/registry.ts'),
    imp('backend/wasm/settings.ts'),
    imp('models/registry.ts'),
    imp('models/fused.ts'),
    imp('tensor/ops.ts'),
    imp('tensor/tensor.ts'),
    imp('optim/sgd.ts'),
  ]);
  await wasm.setThreads(THREADS);
  return { name: dir, m: { registry, wasm, models, fused, ops, tensor, sgd } };
}

type Case = (t: Tree) => Promise<{ run: () => void; close: () => void }>;

function random(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

function trainCase(backend: string, model: string, shape: number[], classes: number): Case {
  return async ({ m }) => {
    await m.registry.setBackend(backend);
    const net = m.tensor.noGrad(() => m.models.createModel(model, { numClasses: classes, inChannels: shape[1] })).train();
    const x = m.ops.tensor(
      random(
        shape.reduce((a, b) => a * b, 1),
        1,
      ),
      shape,
    );
    const y = Array.from({ length: shape[0] }, (_, i) => i % classes);
    const opt = new m.sgd.SGD(net.parameters(), { lr: 0.01, momentum: 0.9 });
    return {
      run: () =>
        m.tensor.scope(() => {
          opt.zeroGrad();
          const l = m.ops.crossEntropy(net.forward(x), y);
          l.backward();
          m.tensor.noGrad(() => opt.step());
          return l.item();
        }),
      close: () => {
        opt.zeroGrad();
        x.dispose();
        net.dispose();
      },
    };
  };
}

function fusedCase(model: string, batch: number): Case {
  return async ({ m }) => {
    await m.registry.setBackend('wasm');
    const net = m.tensor.noGrad(() => m.models.createModel(model)).eval();
    const f = m.fused.fuseForInference(net);
    const x = m.ops.tensor(random(batch * 3 * 224 * 224, 2), [batch, 3, 224, 224]);
    return {
      run: () => m.tensor.scope(() => f.forward(x).shape),
      close: () => {
        f.dispose();
        x.dispose();
        net.dispose();
      },
    };
  };
}

function sgemmCase(n: number): Case {
  return async ({ m }) => {
    const be = await m.registry.setBackend('wasm');
    const A = be.alloc(n * n),
      B = be.alloc(n * n),
      C = be.alloc(n * n);
    be.write(A, random(n * n, 3));
    be.write(B, random(n * n, 4));
    return {
      run: () => be.gemm(false, false, n, n, n, A, B, C, false),
      close: () => {
        for (const a of [A, B, C]) be.free(a);
      },
    };
  };
}

const CASES: Record<string, Case> = {
  'wasm-resnet18-b1-fused': fusedCase('resnet18', 1),
  'wasm-resnet50-b1-fused': fusedCase('resnet50', 1),
  'wasm-resnext50-b1-fused': fusedCase('resnext50_32x4d', 1),
  'wasm-resnet18-b1-module': async ({ m }) => {
    await m.registry.setBackend('wasm');
    const net = m.tensor.noGrad(() => m.models.createModel('resnet18')).eval();
    const x = m.ops.tensor(random(3 * 224 * 224, 2), [1, 3, 224, 224]);
    return {
      run: () => m.tensor.scope(() => m.tensor.noGrad(() => net.forward(x).shape)),
      close: () => {
        x.dispose();
        net.dispose();
      },
    };
  },
  'wasm-d2l-train-b16': trainCase('wasm', 'd2l_resnet18', [16, 1, 96, 96], 10),
  'wasm-d2l-train-b128': trainCase('wasm', 'd2l_resnet18', [128, 1, 96, 96], 10),
  'wasm-cifar20-train-b32': trainCase('wasm', 'cifar_resnet20', [32, 3, 32, 32], 10),
  'wasm-sgemm-512': sgemmCase(512),
  'wasm-sgemm-1024': sgemmCase(1024),
  'ref-cifar20-train-b8': trainCase('ref', 'cifar_resnet20', [8, 3, 32, 32], 10),
};

const median = (a: number[]) => {
  const s = [...a].sort((p, q) => p - q);
  return s[s.length >> 1];
};

const trees = [await load(positionals[0]), await load(positionals[1])];
const names = opt.only ? opt.only.split(',') : Object.keys(CASES);
for (const name of names) {
  const sessions = [];
  for (const t of trees) sessions.push(await CASES[name](t));
  for (const s of sessions) {
    s.run();
    s.run();
  } // warm-up
  const cpu: number[][] = [[], []],
    wall: number[][] = [[], []];
  for (let r = 0; r < ROUNDS; r++) {
    for (const i of r % 2 ? [1, 0] : [0, 1]) {
      const c0 = process.cpuUsage(),
        w0 = performance.now();
      sessions[i].run();
      const c = process.cpuUsage(c0);
      wall[i].push(performance.now() - w0);
      cpu[i].push((c.user + c.system) / 1000);
    }
  }
  for (const s of sessions) s.close();
  const [ca, cb] = cpu.map(median),
    [wa, wb] = wall.map(median);
  console.log(
    JSON.stringify({
      case: name,
      rounds: ROUNDS,
      threads: THREADS,
      a_cpu_ms: +ca.toFixed(2),
      b_cpu_ms: +cb.toFixed(2),
      b_over_a_cpu: +(cb / ca).toFixed(4),
      a_wall_ms: +wa.toFixed(2),
      b_wall_ms: +wb.toFixed(2),
      b_over_a_wall: +(wb / wa).toFixed(4),
    }),
  );
}
process.exit(0);
