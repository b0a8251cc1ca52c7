// Checkpoints that survive anything, shown on real processes: `resnet train` is SIGKILLed at more
// than 20 instants (inside every step of every save, and at random moments), each time `--resume`
// must succeed, and the run must end bit-identical to one that was never interrupted. Then a second
// run on the same --out while the first lives, and flipped bytes in every file of a checkpoint.
// Tiny workload: CIFAR ResNet-8 at 8x8 on 64 Fashion-MNIST images, ref backend, no workers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from './cli-run.js';
import { EMBEDDED_SLICE_DIR } from '../src/data/fashion-mnist.js';
import { RNG } from '../src/base/rng.js';
import { SAVE_PHASES, loadCheckpoint, type LoadedCheckpoint } from '../src/train/checkpoint.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EPOCHS = 6;
const TRAIN = [
  'train',
  '--model',
  'cifar_resnet8',
  '--size',
  '8',
  '--limit-train',
  '64',
  '--limit-test',
  '16',
  '--batch-size',
  '16',
  '--epochs',
  String(EPOCHS),
  '--lr',
  '0.1',
  '--momentum',
  '0.9',
  '--schedule',
  'cosine',
  '--seed',
  '3',
  '--workers',
  '0',
  '--data-dir',
  EMBEDDED_SLICE_DIR,
  '--no-progress',
];
const PAUSE_MS = 1500; // how long a targeted save step is held open; the kill comes within the first third

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'resnet-ckpt-kill-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Launch {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
  /** Milliseconds after the start when the kill was sent (null: not killed). */
  killedAt: number | null;
  /** Milliseconds after the start of the first 'model: ' line and the first save step; the shortest training step. */
  modelAt: number | null;
  firstSaveAt: number | null;
  minStepMs: number;
}

/**
 * Spawn the CLI. `kill` decides when to SIGKILL it: after a fixed delay, or a delay after a line of
 * stderr matches. RESNET_TS_SAVE_HOOK makes every save step print `save-phase WHAT PHASE` (and hold one step open).
 */
function launch(args: string[], hook: string, kill: { afterMs: number } | { line: string; count?: number; delayMs: number } | null): Promise<Launch> {
  const lines = (text: string, prefix: string) => text.split('\n').filter((l) => l.startsWith(prefix)).length;
  const starts = (text: string, prefix: string) => lines(text, prefix) > 0;
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--backend', 'ref', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RESNET_TS_SAVE_HOOK: hook },
    });
    let stderr = '';
    let killedAt: number | null = null,
      modelAt: number | null = null,
      firstSaveAt: number | null = null;
    let lastStepAt = 0,
      minStepMs = Infinity;
    let timer: NodeJS.Timeout | null = null;
    const fire = () => {
      if (killedAt === null && child.exitCode === null) {
        killedAt = Date.now() - t0;
        child.kill('SIGKILL');
      }
    };
    if (kill && 'afterMs' in kill) timer = setTimeout(fire, kill.afterMs);
    child.stderr.on('data', (d) => {
      stderr += String(d);
      modelAt ??= starts(stderr, 'model: ') ? Date.now() - t0 : null;
      firstSaveAt ??= starts(stderr, 'save-phase ') ? Date.now() - t0 : null;
      if (/train-step \d+:\d+\n$/.test(stderr)) {
        const now = Date.now() - t0;
        if (lastStepAt && !/train-step \d+:1\n$/.test(stderr)) minStepMs = Math.min(minStepMs, now - lastStepAt);
        lastStepAt = now;
      }
      if (kill && 'line' in kill && !timer && lines(stderr, kill.line) >= (kill.count ?? 1)) timer = setTimeout(fire, kill.delayMs);
    });
    child.stdout.resume();
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stderr, ms: Date.now() - t0, killedAt, modelAt, firstSaveAt, minStepMs });
    });
  });
}

const run = runCli;

/** The single "error: " line of a failed command (exit 1, no stack trace). */
function errorLine(r: { code: number; err: string }): string {
  assert.equal(r.code, 1, `exit code; stderr: ${r.err}`);
  const lines = r.err
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('error: '));
  assert.equal(lines.length, 1, r.err);
  assert.ok(!/\n\s+at /.test(r.err), `no stack trace: ${r.err}`);
  return lines[0];
}

function sameArrays(a: Map<string, { data: Float32Array }>, b: Map<string, { data: Float32Array }>, what: string): void {
  assert.deepEqual([...b.keys()], [...a.keys()], what);
  for (const [k, v] of a)
    assert.ok(
      Buffer.from(b.get(k)!.data.buffer, b.get(k)!.data.byteOffset, b.get(k)!.data.byteLength).equals(
        Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength),
      ),
      `${what}: ${k} differs`,
    );
}

function sameCheckpoint(a: LoadedCheckpoint, b: LoadedCheckpoint, what: string): void {
  sameArrays(a.weights, b.weights, `${what} weights`);
  assert.equal(b.meta.epoch, a.meta.epoch);
  assert.equal(b.meta.globalStep, a.meta.globalStep);
  if (a.optimizer) {
    assert.ok(b.optimizer, `${what}: no optimizer state`);
    for (const [k, st] of Object.entries(a.optimizer.state)) {
      for (const [bn, buf] of Object.entries(st.buffers)) {
        assert.ok(
          Buffer.from(new Float32Array(b.optimizer.state[k].buffers[bn].data).buffer).equals(Buffer.from(new Float32Array(buf.data).buffer)),
          `${what}: optimizer ${k}.${bn} differs`,
        );
      }
    }
  }
}

/** What the process was doing when it died: the last save step it announced, or the stage of the run. */
function stageAt(stderr: string): string {
  const lines = stderr.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  const m = /^save-phase (\S+) (\S+)$/.exec(last);
  if (m) return `${m[1]}:${m[2]}`;
  if (!lines.some((l) => l.startsWith('model: '))) return 'startup';
  return 'training';
}

let refOut = '';
let refLast: LoadedCheckpoint;
let refBest: LoadedCheckpoint;
let minStartupMs = Infinity;
let minStepMs = Infinity;
const STEPS = 4; // 64 images in batches of 16

test('reference run (uninterrupted)', async () => {
  refOut = join(dir, 'ref');
  const r = await launch([...TRAIN, '--out', refOut], '', null);
  assert.equal(r.code, 0, r.stderr);
  minStartupMs = r.modelAt!;
  minStepMs = r.minStepMs;
  refLast = loadCheckpoint(join(refOut, 'last.json'), { withOptimizer: true });
  refBest = loadCheckpoint(join(refOut, 'best.json'));
  assert.equal(refLast.meta.epoch, EPOCHS);
  // a best checkpoint after the first epoch is what lets a kill inside best's save be followed by a --resume
  assert.ok(refBest.meta.epoch >= 2, `the reference run's best is at epoch ${refBest.meta.epoch}; the kill test needs one at epoch >= 2`);
});

test(`SIGKILL at >= 20 instants, inside every save step: every --resume works and the end is bit-identical (${EPOCHS} epochs)`, async (t) => {
  const out = join(dir, 'killed');
  const rng = new RNG(20261202);
  // random instants: within the start of the process (before the shortest start seen so far), or at a random
  // moment of a random step of its first epoch (anchored on the step marks: the shared machine's speed varies)
  type Kill = { kind: 'phase'; what: string; phase: string } | { kind: 'random' } | { kind: 'random-in-training' };
  // first a kill right after the first complete save (so every later launch has a checkpoint to resume);
  // then each step of best's save (best is written before last, so these leave last where it was),
  // the steps of last's save before its commit, the ones after it, and random instants
  const plan: Kill[] = [
    { kind: 'phase', what: 'last', phase: 'cleaned' },
    ...SAVE_PHASES.map((phase) => ({ kind: 'phase' as const, what: 'best', phase })),
    ...SAVE_PHASES.filter((p) => p !== 'cleaned').map((phase) => ({ kind: 'phase' as const, what: 'last', phase })),
    { kind: 'phase', what: 'metrics', phase: 'write' },
    ...Array.from({ length: 12 }, (_, j) => ({ kind: j % 3 ? ('random-in-training' as const) : ('random' as const) })),
  ];
  let killedInStartup = 0;
  const stages: string[] = [];
  let resumes = 0,
    resumesOk = 0,
    tookOver = 0,
    cleanedFiles = 0;
  for (const [i, k] of plan.entries()) {
    const hasCk = existsSync(join(out, 'last.json'));
    const args = hasCk ? ['train', '--resume', out, '--no-progress'] : [...TRAIN, '--out', out];
    const r =
      k.kind === 'phase'
        ? await launch(args, `${k.what}:${k.phase}:${PAUSE_MS}`, {
            line: `save-phase ${k.what} ${k.phase}`,
            delayMs: Math.floor((rng.random() * PAUSE_MS) / 3),
          })
        : k.kind === 'random'
          ? await launch(args, '', { afterMs: Math.floor(rng.random() * minStartupMs) })
          : await launch(args, '', {
              line: 'train-step ',
              count: 1 + Math.floor(rng.random() * STEPS),
              delayMs: Math.floor(rng.random() * (Number.isFinite(minStepMs) ? minStepMs : 200)),
            });
    if (r.modelAt !== null) minStartupMs = Math.min(minStartupMs, r.modelAt);
    minStepMs = Math.min(minStepMs, r.minStepMs);
    if (r.killedAt === null) assert.equal(r.code, 0, `launch ${i + 1} failed without being killed:\n${r.stderr}`);
    else assert.equal(r.signal, 'SIGKILL', r.stderr);
    let stage = r.killedAt === null ? 'finished before the kill' : stageAt(r.stderr);
    if (k.kind === 'phase') assert.equal(stage, `${k.what}:${k.phase}`, `kill ${i + 1} did not land inside ${k.what}:${k.phase} (last line: ${stage})`);
    // a random kill's last save step may be long over: say "after"
    else if (stage.includes(':')) stage = `after ${stage}`;
    stages.push(stage);
    if (hasCk) {
      resumes++;
      // the launch reached the training loop: the checkpoint loaded, verified, and the folder was taken
      if (/^resuming from /m.test(r.stderr) || r.code === 0) resumesOk++;
      else {
        // killed before it got to read the checkpoint: not a resume that failed, one that never tried
        assert.equal(stage, 'startup', `a --resume died before loading, but not in startup:\n${r.stderr}`);
        killedInStartup++;
      }
    }
    if (/^note: took over .* no longer running$/m.test(r.stderr)) tookOver++;
    const m = /^removed (\d+) stale file\(s\)/m.exec(r.stderr);
    if (m) cleanedFiles += Number(m[1]);
    // whatever the instant, the folder holds a complete checkpoint: last (with its optimizer state) and best load and verify
    if (existsSync(join(out, 'last.json'))) loadCheckpoint(join(out, 'last.json'), { withOptimizer: true, alternatives: false });
    if (existsSync(join(out, 'best.json'))) loadCheckpoint(join(out, 'best.json'), { alternatives: false });
  }
  // and on to the end
  const final = await launch(['train', '--resume', out, '--no-progress'], '', null);
  resumes++;
  assert.equal(final.code, 0, final.stderr);
  resumesOk++;
  if (/^note: took over/m.test(final.stderr)) tookOver++;
  const last = loadCheckpoint(join(out, 'last.json'), { withOptimizer: true });
  sameCheckpoint(refLast, last, 'last');
  sameCheckpoint(refBest, loadCheckpoint(join(out, 'best.json')), 'best');
  const log = (p: string) =>
    readFileSync(join(p, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const j = JSON.parse(l);
        return [j.epoch, j.train_loss, j.val_acc, j.val_loss];
      });
  assert.deepEqual(log(out), log(refOut));
  // nothing left behind: no temp files, no data file without a sidecar, no lock
  const left = readdirSync(out).filter((f) => f.endsWith('.tmp') || f === '.resnet-ts.lock');
  assert.deepEqual(left, []);
  const named = new Set(
    ['last.json', 'last.prev.json', 'best.json', 'best.prev.json']
      .filter((f) => existsSync(join(out, f)))
      .flatMap((f) => {
        const j = JSON.parse(readFileSync(join(out, f), 'utf8'));
        return [j.weights, j.optimizerFile];
      }),
  );
  for (const f of readdirSync(out)) if (/\.[0-9a-f]{16}\.(optim\.)?safetensors$/.test(f)) assert.ok(named.has(f), `${f} is named by no sidecar`);

  const kills = stages.filter((s) => s !== 'finished before the kill').length;
  const phases = [...new Set(stages.filter((s) => /^\w+:[\w-]+$/.test(s)))].sort();
  const count = (s: string) => stages.filter((x) => x === s).length;
  t.diagnostic(
    `kills: ${kills}; --resume launches: ${resumes}, killed in startup before reading the checkpoint: ${killedInStartup}, loaded it and resumed: ${resumesOk}; ` +
      `stale locks taken over: ${tookOver}; stale files removed at start: ${cleanedFiles}`,
  );
  t.diagnostic(`kill instants: ${[...new Set(stages)].map((s) => `${s} x${count(s)}`).join(', ')}`);
  assert.ok(kills >= 20, `only ${kills} kills`);
  assert.equal(resumesOk, resumes - killedInStartup, 'every --resume that got to its checkpoint resumed');
  for (const what of ['best', 'last']) for (const p of SAVE_PHASES) assert.ok(phases.includes(`${what}:${p}`), `no kill inside ${what}:${p}`);
  assert.ok(phases.includes('metrics:write'));
  assert.ok(tookOver > 0, 'a killed run leaves its lock; the next run takes it over');
  assert.ok(cleanedFiles > 0, 'a kill inside a save leaves temporary or unnamed files, removed by the next start');
});

test('a second run on the same --out, and a --resume while the first lives, are refused with the first run named', async (t) => {
  const out = join(dir, 'busy');
  let child: ReturnType<typeof spawn> | null = null;
  const ready = new Promise<void>((resolve, reject) => {
    child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--backend', 'ref', ...TRAIN, '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RESNET_TS_SAVE_HOOK: 'last:data-written:60000' },
    });
    let e = '';
    child.stderr!.on('data', (d) => {
      e += String(d);
      if (e.includes('save-phase last data-written\n')) resolve();
    });
    child.on('exit', () => reject(new Error(`the first run exited early:\n${e}`)));
  });
  try {
    await ready; // the first run holds the folder and is inside its first save
    const pid = child!.pid;
    const second = errorLine(await run([...TRAIN, '--out', out]));
    const overwrite = errorLine(await run([...TRAIN, '--out', out, '--overwrite']));
    const resume = errorLine(await run(['train', '--resume', out, '--no-progress']));
    t.diagnostic(`second run: ${second}`);
    t.diagnostic(`--resume: ${resume}`);
    for (const l of [second, overwrite, resume]) {
      assert.match(
        l,
        new RegExp(`${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by another resnet-ts run \\(pid ${pid} on .*started .*: resnet .*train`),
      );
      assert.match(l, /delete .*\.resnet-ts\.lock\)$/);
    }
  } finally {
    (child as ReturnType<typeof spawn> | null)?.kill('SIGKILL');
  }
});

test('flipped bytes in any file of a checkpoint: eval, predict, finetune --weights and --resume refuse, naming the file and the previous good checkpoint', async (t) => {
  const flip = (file: string, at = 0.5) => {
    const b = readFileSync(file);
    b[Math.floor(b.length * at)] ^= 0x10;
    writeFileSync(file, b);
  };
  const copy = (name: string) => {
    const d = join(dir, name);
    cpSync(refOut, d, { recursive: true });
    return d;
  };
  const meta = (d: string, f: string) => JSON.parse(readFileSync(join(d, f), 'utf8'));
  const evalArgs = (ck: string) => ['eval', '--checkpoint', ck, '--data-dir', EMBEDDED_SLICE_DIR, '--limit-test', '16', '--no-progress'];

  // one flipped bit in the weights of last
  const a = copy('flip-weights');
  const wA = join(a, meta(a, 'last.json').weights);
  flip(wA);
  const prevA = meta(a, 'last.prev.json');
  const e1 = errorLine(await run(evalArgs(join(a, 'last.json'))));
  t.diagnostic(`eval, weights flipped: ${e1}`);
  assert.match(
    e1,
    new RegExp(
      `${wA.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is damaged: SHA-256 [0-9a-f]{16}… where .*last\\.json recorded [0-9a-f]{16}…; the previous good checkpoint is .*last\\.prev\\.json \\(epoch ${prevA.epoch}, step ${prevA.globalStep}\\)`,
    ),
  );
  const r1 = errorLine(await run(['train', '--resume', a, '--no-progress']));
  t.diagnostic(`--resume, weights flipped: ${r1}`);
  assert.match(r1, /is damaged: .*the previous good checkpoint is .*last\.prev\.json/);
  // the previous one it names does work
  const okPrev = await run(evalArgs(join(a, 'last.prev.json')));
  assert.equal(okPrev.code, 0, okPrev.err);

  // the optimizer file: eval does not read it, --resume refuses
  const b = copy('flip-optim');
  const oB = join(b, meta(b, 'last.json').optimizerFile);
  flip(oB, 0.9);
  assert.equal((await run(evalArgs(join(b, 'last.json')))).code, 0);
  const r2 = errorLine(await run(['train', '--resume', b, '--no-progress']));
  t.diagnostic(`--resume, optimizer state flipped: ${r2}`);
  assert.ok(r2.includes(`${oB} is damaged`), r2);
  assert.match(r2, /the previous good checkpoint is .*last\.prev\.json \(epoch \d, step \d+\)$/);

  // the sidecar itself (a digit of the learning rate in the saved config)
  const c = copy('flip-sidecar');
  const sc = join(c, 'last.json');
  writeFileSync(sc, readFileSync(sc, 'utf8').replace(/"lr": 0\.1,/, '"lr": 0.3,'));
  const r3 = errorLine(await run(['train', '--resume', c, '--no-progress']));
  t.diagnostic(`--resume, sidecar edited: ${r3}`);
  assert.ok(r3.includes(`${sc} is damaged: its content does not match its own SHA-256`), r3);

  // best: predict and finetune --weights refuse too; predict names the other good checkpoint
  const d = copy('flip-best');
  const wD = join(d, meta(d, 'best.json').weights);
  flip(wD, 0.7);
  const img = join(dir, 'img.png');
  const { default: sharp } = await import('sharp');
  await sharp(Buffer.alloc(64 * 3, 128), { raw: { width: 8, height: 8, channels: 3 } })
    .png()
    .toFile(img);
  const p = errorLine(await run(['predict', img, '--checkpoint', join(d, 'best.json')]));
  t.diagnostic(`predict, best flipped: ${p}`);
  assert.ok(p.includes(`${wD} is damaged`), p);
  assert.match(p, /the previous good checkpoint is .*(best\.prev|last)\.json/);
  const imgs = join(dir, 'imgs');
  for (const cls of ['a', 'b'])
    for (let i = 0; i < 3; i++) {
      mkdirSync(join(imgs, cls), { recursive: true });
      await sharp(Buffer.alloc(64 * 3, cls === 'a' ? 40 * i : 255 - 40 * i), { raw: { width: 8, height: 8, channels: 3 } })
        .png()
        .toFile(join(imgs, cls, `${i}.png`));
    }
  const f = errorLine(await run(['finetune', '--images', imgs, '--weights', join(d, 'best.json'), '--out', join(dir, 'ft'), '--no-progress']));
  t.diagnostic(`finetune --weights, best flipped: ${f}`);
  assert.ok(f.includes(`${wD} is damaged`), f);
});
