// The training commands as a user runs them: a real kill (SIGKILL) and a Ctrl-C (SIGINT) in the
// middle of `resnet train`, then `--resume`, must end with the same weights as an uninterrupted
// run; eval/predict read class names and preprocessing from the checkpoint; bad input gives one
// clear line naming the file and leaves existing checkpoints intact. Tiny workloads, ref backend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { runCli } from './cli-run.js';
import { EMBEDDED_SLICE_DIR } from '../src/data/fashion-mnist.js';
import { readSafetensorsFile } from '../src/io/files.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'resnet-cli-train-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const run = runCli;

/** One line on stderr, starting with "error: ", naming `file`. */
function assertOneLineError(r: { code: number; err: string }, file: string, re?: RegExp): void {
  assert.equal(r.code, 1, `exit code; stderr: ${r.err}`);
  const errLines = r.err
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('error: '));
  assert.equal(errLines.length, 1, r.err);
  assert.ok(errLines[0].includes(file), `"${errLines[0]}" does not name ${file}`);
  if (re) assert.match(errLines[0], re);
  assert.ok(!/\n\s+at /.test(r.err), 'no stack trace');
}

const TRAIN = [
  'train',
  '--model',
  'cifar_resnet8',
  '--size',
  '12',
  '--limit-train',
  '64',
  '--limit-test',
  '16',
  '--batch-size',
  '16',
  '--epochs',
  '4',
  '--lr',
  '0.05',
  '--momentum',
  '0.9',
  '--schedule',
  'cosine',
  '--augment',
  'light',
  '--seed',
  '3',
  '--workers',
  '0',
  '--data-dir',
  EMBEDDED_SLICE_DIR,
];

function sameWeights(a: string, b: string): void {
  const wa = readSafetensorsFile(a),
    wb = readSafetensorsFile(b);
  assert.deepEqual([...wb.keys()], [...wa.keys()]);
  for (const [k, v] of wa) assert.ok(Buffer.from(wb.get(k)!.data.buffer).equals(Buffer.from(v.data.buffer)), `${k} differs between ${a} and ${b}`);
}

/** Spawn `resnet train` and stop it with `signal` once `ready(stderr, out)` holds. */
function spawnAndStop(
  args: string[],
  out: string,
  signal: NodeJS.Signals,
  ready: (stderr: string) => boolean,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--backend', 'ref', ...args, '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let sent = false;
    const check = () => {
      if (!sent && ready(stderr)) {
        sent = true;
        child.kill(signal);
      }
    };
    child.stderr.on('data', (d) => {
      stderr += String(d);
      check();
    });
    const timer = setInterval(check, 20);
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      clearInterval(timer);
      resolve({ code, signal: sig, stderr });
    });
  });
}

let refOut = '';
let refSummary = '';

test('uninterrupted reference run: summary line, checkpoint, curves', async () => {
  refOut = join(dir, 'ref');
  const r = await run([...TRAIN, '--out', refOut]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out.trim(), /^test_acc=0\.\d{4} test_loss=\d+\.\d{4} test_top5=\d\.\d{4} best_test_acc=0\.\d{4}@\d epochs=4\/4/);
  assert.ok(existsSync(join(refOut, 'curves.svg')));
  refSummary = r.out.trim();
  // the same --out again without --resume is refused, and nothing is touched
  const before = readFileSync(join(refOut, 'last.json'));
  const again = await run([...TRAIN, '--out', refOut]);
  assertOneLineError(again, refOut, /already holds a checkpoint .*--resume/);
  assert.ok(readFileSync(join(refOut, 'last.json')).equals(before));
});

test('SIGKILL after the first epoch, then --resume: bit-identical final weights', async () => {
  const out = join(dir, 'killed');
  const metaPath = join(out, 'last.json');
  const s = await spawnAndStop(TRAIN, out, 'SIGKILL', () => {
    try {
      return JSON.parse(readFileSync(metaPath, 'utf8')).epoch >= 1;
    } catch {
      return false;
    }
  });
  assert.equal(s.signal, 'SIGKILL', s.stderr);
  const killedAt = loadCheckpoint(metaPath).meta.epoch;
  const r = await run(['train', '--resume', out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, new RegExp(`resuming from .*last\\.json \\(epoch ${killedAt}, `));
  sameWeights(join(refOut, 'last.safetensors'), join(out, 'last.safetensors'));
  assert.equal(r.out.trim().split(' ').slice(0, 4).join(' '), refSummary.split(' ').slice(0, 4).join(' '));
  const refLog = readFileSync(join(refOut, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).val_acc);
  const resLog = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).val_acc);
  assert.deepEqual(resLog, refLog);
});

test('Ctrl-C (SIGINT) saves mid-run and exits with 130; --resume ends bit-identical', async () => {
  const out = join(dir, 'sigint');
  const s = await spawnAndStop(TRAIN, out, 'SIGINT', (e) => /epoch 1: /.test(e));
  assert.equal(s.code, 130, s.stderr);
  assert.match(s.stderr, /interrupt: finishing this step and saving a checkpoint/);
  assert.match(s.stderr, /resume with: resnet train --resume /);
  assert.ok(!/error|at .*\.ts:\d+/.test(s.stderr), s.stderr);
  const mid = loadCheckpoint(join(out, 'last.json'), { withOptimizer: true });
  assert.ok(mid.meta.globalStep > 4 && mid.meta.globalStep < 16, `stopped at step ${mid.meta.globalStep}`);
  const r = await run(['train', '--resume', out]);
  assert.equal(r.code, 0, r.err);
  sameWeights(join(refOut, 'last.safetensors'), join(out, 'last.safetensors'));
});

test('eval and predict take classes and preprocessing from the checkpoint; folders go in batches with a partial last one', async () => {
  const e = await run(['eval', '--checkpoint', refOut, '--data-dir', EMBEDDED_SLICE_DIR, '--limit-test', '50', '--confusion']);
  assert.equal(e.code, 0, e.err);
  assert.match(e.out, /^T-shirt\/top /m);
  assert.match(e.out, /^test_acc=0\.\d{4} test_loss=\d+\.\d{4} test_top5=\d\.\d{4} n=50$/m);
  // flip TTA: the plain accuracy is reported beside it and equals the plain evaluation's
  const t = await run(['eval', '--checkpoint', refOut, '--data-dir', EMBEDDED_SLICE_DIR, '--limit-test', '50', '--tta', 'flip', '--json']);
  assert.equal(t.code, 0, t.err);
  const plainAcc = Number(/^test_acc=(0\.\d{4})/m.exec(e.out)![1]);
  const tj = JSON.parse(t.out);
  assert.equal(tj.tta, 'flip');
  assert.equal(tj.accNoTta.toFixed(4), plainAcc.toFixed(4));
  const badTta = await run(['eval', '--checkpoint', refOut, '--data-dir', EMBEDDED_SLICE_DIR, '--tta', 'mirror']);
  assert.equal(badTta.code, 1);
  assert.match(badTta.err, /^error: --tta must be none or flip, got 'mirror'$/m);
  const badErase = await run([...TRAIN, '--erase', '1.5', '--out', join(dir, 'erase')]);
  assert.equal(badErase.code, 1);
  assert.match(badErase.err, /^error: --erase must be a probability in \[0, 1\], got 1\.5$/m);
  const pics = join(dir, 'pics');
  mkdirSync(join(pics, 'sub'), { recursive: true });
  const { loadFashionMNIST } = await import('../src/data/fashion-mnist.js');
  const fm = await loadFashionMNIST({ dataDir: EMBEDDED_SLICE_DIR, download: false });
  for (let i = 0; i < 7; i++) {
    const s = fm.test.get(i);
    // larger than 28x28 and RGB: predict must convert and resize like the training data
    await sharp(Buffer.from(s.image.data as Uint8Array), { raw: { width: 28, height: 28, channels: 1 } })
      .resize(56, 56)
      .toColourspace('srgb')
      .png()
      .toFile(join(pics, i < 5 ? '' : 'sub', `img${i}.png`));
  }
  const p = await run(['predict', pics, '--checkpoint', join(refOut, 'best.safetensors'), '--batch-size', '3', '--topk', '2', '--json']);
  assert.equal(p.code, 0, p.err);
  const rows = p.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(rows.length, 7);
  assert.deepEqual(
    rows.map((r) => r.file),
    ['img0.png', 'img1.png', 'img2.png', 'img3.png', 'img4.png', join('sub', 'img5.png'), join('sub', 'img6.png')],
  );
  const names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
  for (const r of rows) {
    assert.equal(r.predictions.length, 2);
    assert.ok(names.includes(r.predictions[0].label));
    assert.ok(r.predictions[0].prob >= r.predictions[1].prob);
  }
  // the same image alone gives the same answer as inside a batch
  const one = await run(['predict', join(pics, 'sub', 'img6.png'), '--checkpoint', refOut, '--topk', '2', '--json']);
  assert.deepEqual(JSON.parse(one.out).predictions, rows[6].predictions);
  const text = await run(['predict', join(pics, 'img0.png'), '--checkpoint', refOut, '--topk', '3']);
  assert.match(text.out, /^.*img0\.png: [^,]+ \d+\.\d%, [^,]+ \d+\.\d%, [^,]+ \d+\.\d%$/m);
});

async function writeFolder(root: string, classes: string[], perClass: number): Promise<void> {
  for (const [ci, c] of classes.entries()) {
    mkdirSync(join(root, c), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const raw = Buffer.alloc(16 * 16 * 3);
      for (let j = 0; j < 16 * 16; j++) raw.fill(((j % 16) * (ci + 1) * 16 + i * 7) & 255, 3 * j, 3 * j + 3);
      await sharp(raw, { raw: { width: 16, height: 16, channels: 3 } })
        .jpeg()
        .toFile(join(root, c, `${i}.jpg`));
    }
  }
}

test('bad input: one line naming the file, and no checkpoint lost', async () => {
  const good = join(dir, 'good');
  await writeFolder(good, ['a', 'b'], 6);
  const ft = ['finetune', '--size', '12', '--batch-size', '4', '--workers', '0', '--schedule', 'step', '--epochs', '1', '--no-progress'];
  const ftOut = join(dir, 'ft');
  const ok = await run([...ft, '--images', good, '--weights', join(refOut, 'best'), '--out', ftOut]);
  assert.equal(ok.code, 0, ok.err);
  const lastJson = readFileSync(join(ftOut, 'last.json')),
    lastW = readFileSync(join(ftOut, 'last.safetensors'));

  // a corrupt image met while resuming: the error names it; the checkpoint on disk is untouched
  const bad = join(good, 'b', '3.jpg');
  writeFileSync(bad, Buffer.from('this is not a JPEG at all, just some bytes'));
  const c = await run(['finetune', '--resume', ftOut, '--epochs', '3', '--no-progress']);
  assertOneLineError(c, bad, /cannot decode image/);
  assert.ok(readFileSync(join(ftOut, 'last.json')).equals(lastJson) && readFileSync(join(ftOut, 'last.safetensors')).equals(lastW));
  assert.equal(loadCheckpoint(join(ftOut, 'last.json')).meta.epoch, 1);

  // an empty class folder, a single-class folder
  const empty = join(dir, 'empty');
  await writeFolder(empty, ['a', 'b'], 2);
  mkdirSync(join(empty, 'c'));
  assertOneLineError(await run([...ft, '--images', empty, '--weights', refOut, '--out', join(dir, 'o1')]), join(empty, 'c'), /has no images/);
  const single = join(dir, 'single');
  await writeFolder(single, ['only'], 3);
  assertOneLineError(await run([...ft, '--images', single, '--weights', refOut, '--out', join(dir, 'o2')]), single, /only 1 class folder \('only'\)/);

  // a checkpoint of another architecture: with its sidecar, and as bare weights
  const ck = join(refOut, 'best.safetensors');
  assertOneLineError(
    await run([...ft, '--images', good, '--weights', ck, '--model', 'cifar_resnet20', '--out', join(dir, 'o3')]),
    ck,
    /is a cifar_resnet8 checkpoint, not cifar_resnet20/,
  );
  const bare = join(dir, 'r8.safetensors');
  copyFileSync(ck, bare);
  assertOneLineError(
    await run([...ft, '--images', good, '--weights', bare, '--model', 'cifar_resnet20', '--out', join(dir, 'o4')]),
    bare,
    /does not fit .*missing: layer1\.1\.conv1\.weight/,
  );
  assertOneLineError(await run(['predict', join(dir, 'pics'), '--checkpoint', bare, '--model', 'd2l_resnet18']), bare, /state dict does not match/);
  // weights swapped under a sidecar (another run's) are refused on resume
  const torn = join(dir, 'torn');
  mkdirSync(torn);
  const side = JSON.parse(readFileSync(join(refOut, 'last.json'), 'utf8'));
  for (const f of ['last.json', side.optimizerFile]) copyFileSync(join(refOut, f), join(torn, f));
  copyFileSync(join(ftOut, 'last.safetensors'), join(torn, side.weights));
  assertOneLineError(
    await run(['train', '--resume', torn]),
    join(torn, side.weights),
    /is damaged: \d+ bytes where .*last\.json recorded \d+|is damaged: SHA-256/,
  );

  // an output directory that cannot be created or written
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  assertOneLineError(await run([...TRAIN, '--epochs', '1', '--out', join(file, 'run')]), join(file, 'run'), /cannot create output directory .*ENOTDIR/);
  if (process.getuid?.() !== 0) {
    const ro = join(dir, 'readonly');
    mkdirSync(ro, { mode: 0o555 });
    assertOneLineError(await run([...TRAIN, '--epochs', '1', '--out', ro]), ro, /not writable/);
  }
});

test('a loss that blows up stops with a clear message and keeps the last good checkpoint', async () => {
  const out = join(dir, 'nan');
  const r = await run([...TRAIN, '--epochs', '3', '--schedule', 'step', '--step-size', '1', '--gamma', '100000', '--out', out, '--no-progress']);
  assertOneLineError(r, join(out, 'last.json'), /non-finite|loss became/);
  const m = /the last good checkpoint is .*last\.json \(epoch (\d), step (\d+)\)/.exec(r.err);
  assert.ok(m, r.err);
  const ck = loadCheckpoint(join(out, 'last.json'), { withOptimizer: true });
  assert.deepEqual([ck.meta.epoch, ck.meta.globalStep], [Number(m[1]), Number(m[2])]);
  assert.ok(ck.meta.epoch < 3);
  for (const [k, a] of ck.weights) assert.ok(a.data.every(Number.isFinite), `${k} is not finite`);
  const e = await run(['eval', '--checkpoint', out, '--data-dir', EMBEDDED_SLICE_DIR, '--limit-test', '16', '--no-progress']);
  assert.equal(e.code, 0, e.err);
});
