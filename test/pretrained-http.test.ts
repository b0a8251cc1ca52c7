// Pretrained weights end to end, offline: a server on 127.0.0.1 serves a torchvision-built
// resnet18 .pth with random weights (scripts/make_pretrained_fixtures.py), registered under a test
// id with its real SHA-256 prefix. Download → cache → hash check → predict / eval / embed / forward,
// with logits equal to PyTorch's for the same preprocessed photos; the preprocessing itself equals
// torchvision's weights.transforms() on a real JPEG and a real PNG. A wrong-hash download is
// refused and leaves nothing; so does a download cut off half-way. The browser loader (fetch +
// Web Crypto + a cache) is run on Node's global fetch with an in-memory cache.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import '../src/backend/wasm/index.js';
import { setBackend } from '../src/backend/registry.js';
import { RNG } from '../src/base/rng.js';
import { FormatError } from '../src/base/errors.js';
import { decodeImage } from '../src/data/image-folder.js';
import { readNpy } from '../src/io/npy.js';
import { IMAGENET_CLASSES, IMAGENET_WNIDS } from '../src/models/imagenet-classes.js';
import {
  DownloadError,
  type PretrainedWeights,
  clearRegisteredPretrained,
  getPretrained,
  loadPretrained as loadPretrainedBrowser,
  memoryCache,
  registerPretrained,
} from '../src/models/pretrained.js';
import { weightsTransforms } from '../src/data/transforms.js';
import { downloadPretrained, loadPretrained } from '../src/models/pretrained-node.js';
import { ResNet } from '../src/models/resnet.js';
import { tensor } from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { assertClose } from './helpers.js';
import { FIXTURES, fixturesSkipReason, json, npy } from './fixtures.js';

const skip = fixturesSkipReason('pretrained');
const DIR = join(FIXTURES, 'pretrained');
const PHOTOS = join(FIXTURES, 'photos');
const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
const tmp = mkdtempSync(join(tmpdir(), 'resnet-pretrained-http-'));

interface Manifest {
  file: string;
  sha256: string;
  size: number;
  top5: number[][];
}
let manifest: Manifest;
let bytes: Uint8Array;
let server: Server;
let base = '';
const hits: Record<string, number> = {};
const env: Record<string, string> = {};

before(async () => {
  if (skip) return;
  await setBackend('wasm');
  manifest = json<Manifest>('pretrained', 'manifest.json');
  bytes = new Uint8Array(readFileSync(join(DIR, manifest.file)));
  const bad = bytes.slice();
  bad[bad.length >> 1] ^= 0xff;
  server = createServer((req, res) => {
    const [, kind, file] = (req.url ?? '').split('/');
    hits[kind] = (hits[kind] ?? 0) + 1;
    if (file !== manifest.file) return void res.writeHead(404).end();
    // connection: close, so no test reuses a kept-alive socket the server is about to drop (ECONNRESET races)
    const headers = {
      'content-type': 'application/octet-stream',
      'content-length': String(bytes.length),
      'access-control-allow-origin': '*',
      connection: 'close',
    };
    if (kind === 'models') return void res.writeHead(200, headers).end(bytes);
    if (kind === 'bad') return void res.writeHead(200, headers).end(bad);
    if (kind === 'cut') {
      // half the body, then the connection drops
      res.writeHead(200, headers);
      res.write(bytes.subarray(0, bytes.length >> 1), () => res.destroy());
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const prefix = manifest.sha256.slice(0, 8);
  const specs = ['models', 'bad', 'cut'].map((kind) => ({
    id: `resnet18.TEST_${kind.toUpperCase()}`,
    url: `${base}/${kind}/${manifest.file}`,
    sha256Prefix: prefix,
  }));
  writeFileSync(join(tmp, 'registry.json'), JSON.stringify(specs));
  for (const s of specs) registerPretrained(s);
  Object.assign(env, { RESNET_TS_WEIGHTS_REGISTRY: join(tmp, 'registry.json'), RESNET_TS_CACHE: join(tmp, 'cli-cache') });
});

after(async () => {
  await setBackend('ref');
  clearRegisteredPretrained();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  rmSync(tmp, { recursive: true, force: true });
});

/** The CLI in a child process (async: this process must keep serving HTTP meanwhile). */
function resnet(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: { ...process.env, ...env }, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]) - Number(b[i])));
  return m;
}

const softmax = (row: ArrayLike<number>) => {
  const mx = Math.max(...Array.from(row));
  const e = Array.from(row, (v) => Math.exp(v - mx));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

test("preprocessing equals torchvision's weights.transforms() on a real JPEG and a PNG, V1 (256) and V2 (232) (atol 1e-6)", { skip }, async () => {
  for (const [photo, stem] of [
    ['rocket.jpg', 'rocket'],
    ['chelsea.png', 'chelsea'],
  ]) {
    const img = await decodeImage(join(PHOTOS, photo));
    for (const [id, fx] of [
      ['resnet18.IMAGENET1K_V1', `pre_${stem}`],
      ['resnet50.IMAGENET1K_V2', `pre232_${stem}`],
    ]) {
      const ours = weightsTransforms(getPretrained(id)).apply(img, new RNG(0));
      const theirs = npy('pretrained', `${fx}.npy`);
      assert.deepEqual([ours.c, ours.h, ours.w], theirs.shape);
      const d = maxAbsDiff(ours.data, theirs.data as Float32Array);
      assert.ok(d <= 1e-6, `${photo} ${id}: max abs diff ${d}`);
      console.log(`# ${photo} ${id}: max abs diff vs torchvision ${d.toExponential(2)}`);
    }
  }
});

test(
  "Node loader: download from 127.0.0.1 once, then the cache; logits, pooled features and layer2 equal PyTorch's (rtol 1e-4, atol 1e-4)",
  { skip },
  async () => {
    const cacheDir = join(tmp, 'node-cache');
    const before = hits.models ?? 0;
    const progress: [number, number | null][] = [];
    const a = await loadPretrained('resnet18.TEST_MODELS', { cacheDir, useTorchCache: false, onProgress: (r, t) => progress.push([r, t]) });
    assert.equal(hits.models, before + 1);
    assert.deepEqual(readdirSync(cacheDir), [manifest.file]);
    assert.deepEqual(progress.at(-1), [manifest.size, manifest.size]);
    const b = await loadPretrained('resnet18.TEST_MODELS', { cacheDir, useTorchCache: false });
    assert.equal(hits.models, before + 1, 'second load comes from the cache');
    assert.equal(b.path, join(cacheDir, manifest.file));
    const x = [npy('pretrained', 'pre_rocket.npy'), npy('pretrained', 'pre_chelsea.npy')];
    const input = new Float32Array(2 * 3 * 224 * 224);
    input.set(x[0].data as Float32Array, 0);
    input.set(x[1].data as Float32Array, 3 * 224 * 224);
    const m = a.model as ResNet;
    const out = noGrad(() => m.forwardFeatures(tensor(input, [2, 3, 224, 224]), { layers: ['layer2', 'pool', 'logits'] }));
    assert.deepEqual([...out.layer2.shape], [2, 128, 28, 28]);
    assertClose(out.layer2.dataSync(), npy('pretrained', 'layer2.npy').data as Float32Array, 1e-4, 1e-4, 'layer2');
    assertClose(out.pool.dataSync(), npy('pretrained', 'pool.npy').data as Float32Array, 1e-4, 1e-4, 'pooled features');
    assertClose(out.logits.dataSync(), npy('pretrained', 'logits.npy').data as Float32Array, 1e-4, 1e-4, 'logits');
    assert.throws(() => m.forwardFeatures(tensor(input, [2, 3, 224, 224]), { layers: ['layer9' as 'pool'] }), /no layer 'layer9' \(choices: stem, layer1/);
  },
);

test(
  'a download whose SHA-256 does not match is refused and nothing is kept; a cut-off download leaves no partial file, nor does a killed one after the next try',
  { skip },
  async () => {
    const cacheDir = join(tmp, 'bad-cache');
    await assert.rejects(downloadPretrained('resnet18.TEST_BAD', { cacheDir, useTorchCache: false }), (e: unknown) => {
      assert.ok(e instanceof FormatError, String(e));
      assert.match(e.message, new RegExp(`does not start with ${manifest.sha256.slice(0, 8)}.*nothing was saved`));
      return true;
    });
    assert.deepEqual(readdirSync(cacheDir), []);
    await assert.rejects(downloadPretrained('resnet18.TEST_CUT', { cacheDir, useTorchCache: false }), (e: unknown) => {
      assert.ok(e instanceof DownloadError, String(e));
      assert.match(e.message, /download of http:\/\/127\.0\.0\.1:\d+\/cut\/.* (broke off|stopped at)/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    assert.deepEqual(readdirSync(cacheDir), []);
    // the partial file of a download whose process was killed is removed by the next download
    // (pid 2^22 + 1 is above Linux's pid_max, so no process has it)
    writeFileSync(join(cacheDir, `${manifest.file}.${2 ** 22 + 1}.part`), bytes.subarray(0, 1000));
    await assert.rejects(downloadPretrained('resnet18.TEST_CUT', { cacheDir, useTorchCache: false }), DownloadError);
    assert.deepEqual(readdirSync(cacheDir), []);
    // a corrupt file already in the cache is not used
    copyFileSync(join(DIR, 'pre_rocket.npy'), join(cacheDir, manifest.file));
    await assert.rejects(
      downloadPretrained('resnet18.TEST_MODELS', { cacheDir, useTorchCache: false }),
      /the file is corrupt or not resnet18\.TEST_MODELS — delete it/,
    );
  },
);

test(
  "browser loader (global fetch, Web Crypto, in-memory cache): progress, hash check, one fetch, the file's exact tensors, baseUrl for self-hosting",
  { skip },
  async () => {
    const cache = memoryCache();
    const before = hits.models ?? 0;
    const seen: number[] = [];
    const a = await loadPretrainedBrowser('resnet18.TEST_MODELS', { cache, onProgress: (r) => seen.push(r) });
    assert.equal(hits.models, before + 1);
    assert.equal(seen.at(-1), manifest.size);
    assert.ok(seen.length > 2, 'progress during the download');
    assert.equal(cache.entries.get(`${base}/models/${manifest.file}`)?.length, manifest.size);
    await loadPretrainedBrowser('resnet18.TEST_MODELS', { cache });
    assert.equal(hits.models, before + 1, 'second load comes from the cache');
    // the same tensors as the file (whose logits the Node test and the CLI test compare with PyTorch's)
    const { readPth } = await import('../src/io/pth.js');
    const ref = readPth(bytes);
    for (const [k, t] of a.model.stateDict()) assert.equal(maxAbsDiff(t.dataSync(), ref.get(k)!.data as Float32Array), 0, k);
    // wrong hash: refused, nothing cached
    const c2 = memoryCache();
    await assert.rejects(
      loadPretrainedBrowser('resnet18.TEST_BAD', { cache: c2 }),
      (e: unknown) => e instanceof FormatError && /nothing was cached/.test(e.message),
    );
    assert.equal(c2.entries.size, 0);
    await assert.rejects(loadPretrainedBrowser('resnet18.TEST_CUT', { cache: c2 }), DownloadError);
    assert.equal(c2.entries.size, 0);
    // a corrupt cache entry is dropped and fetched again
    c2.entries.set(`${base}/models/${manifest.file}`, new Uint8Array(10));
    await loadPretrainedBrowser('resnet18.TEST_MODELS', { cache: c2 });
    assert.equal(c2.entries.get(`${base}/models/${manifest.file}`)?.length, manifest.size);
    // self-hosting: baseUrl points the same weight set at another server
    const w: PretrainedWeights = getPretrained('resnet18.TEST_MODELS');
    const c3 = memoryCache();
    const viaBase = await loadPretrainedBrowser({ ...w, url: 'https://nowhere.invalid/x.pth' }, { cache: c3, baseUrl: `${base}/models` });
    assert.equal(viaBase.path, `${base}/models/${manifest.file}`);
  },
);

test('browser loader: a fetch that fails in a page says the host may send no CORS headers and how to self-host', async () => {
  const g = globalThis as { document?: unknown };
  g.document = {};
  try {
    const blocked = (async () => {
      throw new TypeError('Failed to fetch');
    }) as unknown as typeof fetch;
    await assert.rejects(loadPretrainedBrowser('resnet18.IMAGENET1K_V1', { fetch: blocked, cache: memoryCache() }), (e: unknown) => {
      assert.ok(e instanceof DownloadError, String(e));
      assert.match(e.message, /cannot fetch resnet18\.IMAGENET1K_V1 from https:\/\/download\.pytorch\.org\/models\/resnet18-f37072fd\.pth \(Failed to fetch\)/);
      assert.match(
        e.message,
        /download\.pytorch\.org sends no CORS headers for this page; self-host it: .*npx resnet weights --download resnet18\.IMAGENET1K_V1.*baseUrl/,
      );
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  } finally {
    delete g.document;
  }
});

test(
  "CLI predict / eval / embed / forward with --weights ID from 127.0.0.1: top-5 ImageNet names, eval on synset and class-name folders, embeddings and logits equal PyTorch's (atol 1e-4)",
  { skip },
  async () => {
    const logits = npy('pretrained', 'logits.npy').data as Float32Array;
    const photos = join(tmp, 'photos');
    mkdirSync(photos, { recursive: true });
    copyFileSync(join(PHOTOS, 'chelsea.png'), join(photos, 'chelsea.png'));
    copyFileSync(join(PHOTOS, 'rocket.jpg'), join(photos, 'rocket.jpg'));

    const p = await resnet('predict', photos, '--weights', 'resnet18.TEST_MODELS', '--topk', '5', '--json');
    assert.equal(p.status, 0, p.stderr);
    const lines = p.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { file: string; predictions: { label: string; index: number; prob: number }[] });
    assert.deepEqual(
      lines.map((l) => l.file),
      ['chelsea.png', 'rocket.jpg'],
    );
    for (const [i, row] of [
      [0, 1],
      [1, 0],
    ]) {
      const probs = softmax(logits.subarray(row * 1000, row * 1000 + 1000));
      assert.deepEqual(
        lines[i].predictions.map((q) => q.index),
        manifest.top5[row],
      );
      assert.deepEqual(
        lines[i].predictions.map((q) => q.label),
        manifest.top5[row].map((k) => IMAGENET_CLASSES[k]),
      );
      for (const q of lines[i].predictions) assert.ok(Math.abs(q.prob - probs[q.index]) < 1e-4, `${q.label}: ${q.prob} vs ${probs[q.index]}`);
    }
    assert.match(p.stderr, /downloading/);
    assert.deepEqual(readdirSync(env.RESNET_TS_CACHE), [manifest.file]);

    // ImageNet-style folder: rocket under the synset of its top-1 class (a hit), chelsea under the
    // name (underscores for spaces) of its 2nd class: top-1 0.5, top-5 1.0.
    const val = join(tmp, 'val');
    const r1 = manifest.top5[0][0],
      c2 = manifest.top5[1][1];
    mkdirSync(join(val, IMAGENET_WNIDS[r1]), { recursive: true });
    mkdirSync(join(val, IMAGENET_CLASSES[c2].replace(/ /g, '_')), { recursive: true });
    copyFileSync(join(PHOTOS, 'rocket.jpg'), join(val, IMAGENET_WNIDS[r1], 'rocket.jpg'));
    copyFileSync(join(PHOTOS, 'chelsea.png'), join(val, IMAGENET_CLASSES[c2].replace(/ /g, '_'), 'chelsea.png'));
    const e = await resnet('eval', '--weights', 'resnet18.TEST_MODELS', '--images', val, '--json', '--no-progress');
    assert.equal(e.status, 0, e.stderr);
    assert.ok(e.stdout.length < 2000, `eval --json prints a short line for 1000 classes: ${e.stdout.length} chars`);
    const ev = JSON.parse(e.stdout) as { acc: number; topk: number; k: number; count: number };
    assert.deepEqual([ev.count, ev.acc, ev.k, ev.topk], [2, 0.5, 5, 1]);
    const bad = join(tmp, 'val-bad', 'n99999999');
    mkdirSync(bad, { recursive: true });
    copyFileSync(join(PHOTOS, 'chelsea.png'), join(bad, 'chelsea.png'));
    const eb = await resnet('eval', '--weights', 'resnet18.TEST_MODELS', '--images', join(tmp, 'val-bad'), '--no-progress');
    assert.equal(eb.status, 1);
    assert.match(eb.stderr, /^error: .*class folder\(s\) n99999999 are not classes of the model \(tench, goldfish, .*or ImageNet synset ids\)\)\n$/);

    const emb = join(tmp, 'emb.npy');
    const m = await resnet('embed', photos, '--weights', 'resnet18.TEST_MODELS', '--out', emb, '--batch-size', '1');
    assert.equal(m.status, 0, m.stderr);
    assert.match(m.stderr, /embedded 2\/2 images/);
    const feats = readNpy(new Uint8Array(readFileSync(emb)));
    assert.deepEqual(feats.shape, [2, 512]);
    const pool = npy('pretrained', 'pool.npy').data as Float32Array;
    assert.deepEqual(readFileSync(join(tmp, 'emb.files.txt'), 'utf8').trim().split('\n'), [join(photos, 'chelsea.png'), join(photos, 'rocket.jpg')]);
    assertClose((feats.data as Float32Array).subarray(0, 512), pool.subarray(512), 1e-4, 1e-4, 'chelsea embedding');
    assertClose((feats.data as Float32Array).subarray(512), pool.subarray(0, 512), 1e-4, 1e-4, 'rocket embedding');

    const { writeNpy } = await import('../src/io/npy.js');
    writeFileSync(join(tmp, 'x.npy'), writeNpy({ dtype: 'F32', shape: [1, 3, 224, 224], data: npy('pretrained', 'pre_rocket.npy').data as Float32Array }));
    const f2 = await resnet('forward', '--weights', 'resnet18.TEST_MODELS', '--input', join(tmp, 'x.npy'), '--output', join(tmp, 'out.npy'));
    assert.equal(f2.status, 0, f2.stderr);
    assertClose(readNpy(new Uint8Array(readFileSync(join(tmp, 'out.npy')))).data as Float32Array, logits.subarray(0, 1000), 1e-4, 1e-4, 'forward logits');

    const u = await resnet('predict', join(photos, 'rocket.jpg'), '--weights', 'resnet18.IMAGENET1K_V3');
    assert.equal(u.status, 1);
    assert.match(u.stderr, /^error: .*'resnet18\.IMAGENET1K_V3' is neither a file nor a known weight id \(ids: .*resnet18\.TEST_MODELS/);
  },
);
