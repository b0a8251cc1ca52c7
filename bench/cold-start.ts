// Cold start, as a user meets it: whole processes, each started fresh, timed from outside.
//
//   ours:  node bin/resnet.js forward --model M --weights M.safetensors --input x.npy --output y.npy
//   peer:  node bench/cold-start-ort.mjs M.onnx x.npy THREADS   (onnxruntime-web, wasm EP: load + run once)
//
// Wall time and peak RSS of each process come from /usr/bin/time (GNU time: %e, %M). Rounds are
// interleaved (ours, then each peer, the order rotating every round) so that the shared machine's
// load drifts over all alike; the load average (os.loadavg) is kept with every run. Then, per
// case, fresh in-process runs (`--inproc`) split ours into createModel, reading the file,
// loadStateDict, fusing, the first forward and the warm ones.
//
//   npm run bench:cold -- [--rounds 3] [--only resnet50-b8,resnet18-b1] [--threads 2] [--ort-threads 1,2] [--out FILE | --no-write]
//                         [--base DIR] [--modes module,fused] [--inproc-runs 2] [--skip-inproc]
//
// --base DIR adds another checkout (built, with this file copied into its bench/) as a peer: its
// CLI in the same rounds, its in-process runs interleaved with ours (before/after a change).
//
// Needs a build (`npm run build`: the CLI runs from dist/) and /usr/bin/time. The random weights,
// their ONNX export (src/convert/onnx-export.ts, as bench/run.ts) and the inputs are written once
// into bench/.cache/cold/ (delete it to remake them).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = path.join(ROOT, 'bench', '.cache', 'cold');
const CASES: Record<string, { model: string; batch: number }> = {
  'resnet50-b8': { model: 'resnet50', batch: 8 },
  'resnet18-b1': { model: 'resnet18', batch: 1 },
  'resnet50-b1': { model: 'resnet50', batch: 1 },
};

const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const log = (s: string) => process.stderr.write(s + '\n');

// ---- in-process split (a child process per run: `--inproc MODEL BATCH PATH THREADS`) ----
async function inproc(model: string, batch: number, mode: 'module' | 'fused', threads: number, init: boolean): Promise<void> {
  const t0 = performance.now();
  const lib = await import('../src/index.js');
  const { setThreads } = await import('../src/backend/wasm/index.js');
  await setThreads(threads);
  await lib.setBackend('wasm');
  const tBackend = performance.now();
  const files = caseFiles(model, batch);
  // in the CLI's order (src/train/inference.ts): read the file, then build the model
  const { readArraysFile, readNpyFile } = await import('../src/io/files.js');
  // as the CLI reads bare weights (src/train/weights-source.ts): views of the file's bytes, read
  // into the backend's memory where it offers some and given back once loaded
  const be = (await import('../src/backend/registry.js')).getBackend() as import('../src/backend/backend.js').Backend;
  let staged: { bytes: Uint8Array; release(): void } | null = null;
  const into = be.stagingBytes ? (n: number) => (staged = be.stagingBytes!(n))?.bytes ?? new Uint8Array(n) : undefined;
  const sd = readArraysFile(files.weights, undefined, { copy: false, into });
  const x = readNpyFile(files.input);
  const tRead = performance.now();
  const m = lib.createModel(model, {}, { init });
  m.eval();
  const tCreate = performance.now();
  m.loadStateDict(sd);
  (staged as { release(): void } | null)?.release();
  const tLoad = performance.now();
  let fwd: (t: import('../src/tensor/tensor.js').Tensor) => import('../src/tensor/tensor.js').Tensor = (t) => m.forward(t);
  if (mode === 'fused') {
    const f = lib.fuseForInference(m, { inPlace: true }); // as `resnet forward`
    fwd = (t) => f.forward(t);
  }
  const tFuse = performance.now();
  const runs: number[] = [];
  // CPU time of all threads (user, system) and minor page faults per forward: on a loaded machine
  // wall time says little, these say what the first call does more than the next ones.
  const cpu: string[] = [];
  const cpuMs: number[] = [];
  const faults: number[] = [];
  for (let i = 0; i < 4; i++) {
    const a = performance.now();
    const c0 = process.cpuUsage();
    const f0 = process.resourceUsage().minorPageFault;
    lib.noGrad(() => {
      const y = fwd(lib.tensor(x.data, x.shape));
      y.dataSync();
      y.dispose();
    });
    runs.push(performance.now() - a);
    const c = process.cpuUsage(c0);
    cpu.push(`${(c.user / 1000).toFixed(0)}+${(c.system / 1000).toFixed(0)}`);
    cpuMs.push((c.user + c.system) / 1000);
    faults.push(process.resourceUsage().minorPageFault - f0);
  }
  const r = (a: number, b: number) => +(b - a).toFixed(1);
  const warm = median(runs.slice(1));
  const out = {
    model,
    batch,
    mode,
    init,
    threads,
    importAndBackendMs: r(t0, tBackend),
    readFilesMs: r(tBackend, tRead),
    createModelMs: r(tRead, tCreate),
    loadStateDictMs: r(tCreate, tLoad),
    fuseMs: r(tLoad, tFuse),
    firstForwardMs: +runs[0].toFixed(1),
    warmForwardMs: +warm.toFixed(1),
    firstOverWarm: +(runs[0] / warm).toFixed(2),
    firstOverWarmCpu: +(cpuMs[0] / median(cpuMs.slice(1))).toFixed(2),
    forwardsMs: runs.map((v) => +v.toFixed(1)),
    forwardsCpuUserSysMs: cpu,
    forwardsMinorFaults: faults,
    maxRssMB: +(process.resourceUsage().maxRSS / 1024).toFixed(0),
    wholeCpuMs: +((process.cpuUsage().user + process.cpuUsage().system) / 1000).toFixed(0),
    weightsMB: +(statSync(files.weights).size / 2 ** 20).toFixed(1),
    load: load(),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

function caseFiles(model: string, batch: number) {
  return {
    weights: path.join(CACHE, `${model}.safetensors`),
    onnx: path.join(CACHE, `${model}.onnx`),
    input: path.join(CACHE, `x-${model}-b${batch}.npy`),
  };
}

/** Random weights (seed 0) as safetensors, the same model as ONNX, an input batch of N(0,1). */
async function prepare(model: string, batch: number): Promise<void> {
  const f = caseFiles(model, batch);
  if (existsSync(f.weights) && existsSync(f.onnx) && existsSync(f.input)) return;
  mkdirSync(CACHE, { recursive: true });
  const lib = await import('../src/index.js');
  const { writeSafetensorsFile, writeNpyFile } = await import('../src/io/files.js');
  const { exportOnnx } = await import('../src/convert/onnx-export.js');
  await lib.setBackend('ref');
  if (!existsSync(f.weights) || !existsSync(f.onnx)) {
    log(`writing ${model}.safetensors and ${model}.onnx ...`);
    lib.manualSeed(0);
    const m = lib.createModel(model).eval();
    writeSafetensorsFile(f.weights, lib.stateDictToArrays(m));
    writeFileSync(f.onnx, exportOnnx(m, { inputShape: [3, 224, 224], dynamicBatch: true }));
  }
  if (!existsSync(f.input)) {
    const rng = new lib.RNG(1);
    const data = new Float32Array(batch * 3 * 224 * 224);
    for (let i = 0; i < data.length; i++) data[i] = rng.normal();
    writeNpyFile(f.input, { dtype: 'F32', shape: [batch, 3, 224, 224], data });
  }
}

interface Run {
  wallS: number;
  maxRssMB: number;
  load: string;
}

/** One whole process under /usr/bin/time: wall seconds and peak RSS. */
function timed(cmd: string[]): Run {
  const tmp = path.join(CACHE, 'time.out');
  const l = load();
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', tmp, ...cmd], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const [e, m] = readFileSync(tmp, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  return { wallS: e, maxRssMB: +(m / 1024).toFixed(0), load: l };
}

async function main(): Promise<void> {
  const { values: opt } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      only: { type: 'string', default: 'resnet50-b8,resnet18-b1' },
      threads: { type: 'string', default: String(Math.min(2, os.availableParallelism())) },
      'ort-threads': { type: 'string', default: '1,2' },
      'inproc-runs': { type: 'string', default: '2' },
      'skip-inproc': { type: 'boolean', default: false },
      base: { type: 'string' },
      modes: { type: 'string', default: 'module,fused' },
      init: { type: 'boolean', default: false },
      out: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      note: { type: 'string', default: '' },
      inproc: { type: 'string' },
    },
    allowPositionals: true,
  });
  if (opt.inproc) {
    const [model, batch, mode, threads, init] = opt.inproc.split(',');
    return inproc(model, Number(batch), mode as 'module' | 'fused', Number(threads), init === 'init');
  }
  if (!existsSync('/usr/bin/time')) throw new Error('bench/cold-start.ts needs GNU time at /usr/bin/time (apt install time)');
  if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('build first: npm run build (the CLI runs from dist/)');
  const rounds = Number(opt.rounds);
  const threads = Number(opt.threads);
  const ortThreads = opt['ort-threads'].split(',').filter(Boolean).map(Number);
  const cases = opt.only.split(',').map((id) => {
    if (!CASES[id]) throw new Error(`unknown case '${id}' (known: ${Object.keys(CASES).join(', ')})`);
    return { id, ...CASES[id] };
  });
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const results: Record<string, unknown>[] = [];
  for (const c of cases) {
    await prepare(c.model, c.batch);
    const f = caseFiles(c.model, c.batch);
    const out = path.join(CACHE, 'y.npy');
    const peers: [string, string[]][] = [
      [
        'ours',
        ['node', 'bin/resnet.js', '--threads', String(threads), 'forward', '--model', c.model, '--weights', f.weights, '--input', f.input, '--output', out],
      ],
      ...ortThreads.map((t): [string, string[]] => [`ort-web-${t}t`, ['node', 'bench/cold-start-ort.mjs', f.onnx, f.input, String(t)]]),
    ];
    // --base DIR: another checkout's CLI (built) as a peer in the same rounds: before/after a change
    const base = opt.base ? path.resolve(opt.base) : null;
    if (base) peers.push(['base', ['node', path.join(base, 'bin', 'resnet.js'), ...peers[0][1].slice(2)]]);
    const runs = new Map<string, Run[]>(peers.map(([n]) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < peers.length; k++) {
        const [name, cmd] = peers[(k + r) % peers.length];
        const run = timed(cmd);
        runs.get(name)!.push(run);
        log(`${c.id} ${name}: ${run.wallS.toFixed(2)} s, ${run.maxRssMB} MB (load ${run.load})`);
      }
    }
    const summary = (a: Run[]) => ({
      wallS: { min: Math.min(...a.map((x) => x.wallS)), median: median(a.map((x) => x.wallS)) },
      maxRssMB: { min: Math.min(...a.map((x) => x.maxRssMB)), median: median(a.map((x) => x.maxRssMB)) },
      runs: a,
    });
    const peerSummaries = Object.fromEntries([...runs].map(([n, a]) => [n, summary(a)]));
    const ours = peerSummaries.ours;
    const ratios: Record<string, { wall: number; rss: number }> = {};
    for (const [n, s] of Object.entries(peerSummaries)) {
      if (n === 'ours') continue;
      ratios[n] = { wall: +(ours.wallS.median / s.wallS.median).toFixed(2), rss: +(ours.maxRssMB.median / s.maxRssMB.median).toFixed(2) };
    }
    // MB here is MiB (2^20 bytes) throughout, as maxRssMB (GNU time %M KiB / 1024); before 2026-12-03
    // weightsMB was in 10^6 bytes, which made RSS over weights read 4.5% low
    const weightsMB = +(statSync(f.weights).size / 2 ** 20).toFixed(1);
    const inprocRuns: Record<string, unknown>[] = [];
    if (!opt['skip-inproc']) {
      // the base checkout runs this file's --inproc from its own tree (copy this file there first
      // when its own predates the staged read and the in-place fusion that the CLI does)
      const trees: [string, string][] = [['ours', ROOT], ...(base ? [['base', base] as [string, string]] : [])];
      for (let i = 0; i < Number(opt['inproc-runs']); i++) {
        for (const mode of opt.modes.split(',')) {
          for (const [tree, dir] of i % 2 ? [...trees].reverse() : trees) {
            const r = spawnSync(
              'node',
              [
                '--import',
                'tsx',
                path.join(dir, 'bench', 'cold-start.ts'),
                '--inproc',
                [c.model, c.batch, mode, threads, opt.init ? 'init' : 'noinit'].join(','),
              ],
              { cwd: dir, encoding: 'utf8' },
            );
            if (r.status !== 0) throw new Error(`in-process run failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
            const j = { tree, ...JSON.parse(r.stdout.trim().split('\n').pop()!) };
            inprocRuns.push(j);
            log(`${c.id} in-process ${tree} ${mode}: ${JSON.stringify(j)}`);
          }
        }
      }
    }
    const res = {
      case: c.id,
      ...c,
      threads,
      weightsMB,
      peers: peerSummaries,
      ratios,
      oursRssOverWeights: +(ours.maxRssMB.median / weightsMB).toFixed(2),
      inproc: inprocRuns,
    };
    results.push(res);
    process.stdout.write(JSON.stringify({ case: c.id, ratios, oursRssOverWeights: res.oursRssOverWeights }) + '\n');
  }
  // table
  const lines = [
    `| case | ours (s, MB) | ${ortThreads.map((t) => `ort-web ${t}t (s, MB)`).join(' | ')} | ${ortThreads.map((t) => `ours/ort-web ${t}t wall, RSS`).join(' | ')} |${opt.base ? ' base (s, MB) | ours/base wall, RSS |' : ''}`,
    `|---|---|${ortThreads.map(() => '---|').join('')}${ortThreads.map(() => '---|').join('')}${opt.base ? '---|---|' : ''}`,
  ];
  for (const r of results as {
    case: string;
    peers: Record<string, { wallS: { median: number }; maxRssMB: { median: number } }>;
    ratios: Record<string, { wall: number; rss: number }>;
  }[]) {
    const cell = (n: string) => `${r.peers[n].wallS.median.toFixed(2)}, ${r.peers[n].maxRssMB.median}`;
    lines.push(
      `| ${r.case} | ${cell('ours')} | ${ortThreads.map((t) => cell(`ort-web-${t}t`)).join(' | ')} | ${ortThreads.map((t) => `${r.ratios[`ort-web-${t}t`].wall}, ${r.ratios[`ort-web-${t}t`].rss}`).join(' | ')} |` +
        (opt.base ? ` ${cell('base')} | ${r.ratios.base.wall}, ${r.ratios.base.rss} |` : ''),
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
  if (!opt['no-write']) {
    const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
    const file = opt.out ?? path.join(ROOT, 'bench', 'results', `cold-start-${stamp}.json`);
    const doc = { date: new Date().toISOString(), commit, note: opt.note, host: os.hostname(), cpus: os.cpus().length, node: process.version, rounds, results };
    writeFileSync(file, JSON.stringify(doc, null, 1) + '\n');
    log(`wrote ${path.relative(ROOT, file)}`);
  }
}

await main();
