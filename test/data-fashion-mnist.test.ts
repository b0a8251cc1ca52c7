import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { FormatError } from '../src/base/errors.js';
import {
  EMBEDDED_SLICE_DIR,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_FILES,
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
  FashionMNIST,
  findFashionMNIST,
  loadFashionMNIST,
  verifyRaw,
  type FileKey,
} from '../src/data/fashion-mnist.js';

const DEBIAN = '/usr/share/datasets/fashion-mnist';
const hasDebian = existsSync(join(DEBIAN, 'train-images-idx3-ubyte.gz'));

function stats(ds: FashionMNIST): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (const v of ds.images) {
    s += v;
    s2 += v * v;
  }
  const n = ds.images.length;
  const mean = s / n / 255;
  return { mean, std: Math.sqrt(s2 / n / 65025 - mean * mean) };
}

function linkAll(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from)) if (f.endsWith('.gz')) symlinkSync(join(from, f), join(to, f));
}

const offline = { download: false, env: {} as Record<string, string>, onWarning: () => {} };

test('class names are the ten Fashion-MNIST classes in label order', () => {
  assert.equal(FASHION_MNIST_CLASSES.length, 10);
  assert.equal(FASHION_MNIST_CLASSES[0], 'T-shirt/top');
  assert.equal(FASHION_MNIST_CLASSES[9], 'Ankle boot');
  assert.equal(FashionMNIST.classes, FASHION_MNIST_CLASSES);
});

test('embedded slice: 2000 train / 1000 test, stratified, labels in range, mean/std near the full data (atol 0.02)', async () => {
  const d = await loadFashionMNIST({ ...offline, systemDir: '/nonexistent', cacheDir: '/nonexistent' });
  assert.equal(d.source, 'embedded-slice');
  assert.equal(d.full, false);
  assert.match(d.warnings.at(-1)!, /embedded/);
  assert.equal(d.train.length, 2000);
  assert.equal(d.test.length, 1000);
  for (const ds of [d.train, d.test]) {
    const counts = new Array(10).fill(0);
    for (const y of ds.labels) counts[y]++;
    assert.deepEqual(counts, new Array(10).fill(ds.length / 10));
  }
  const { mean, std } = stats(d.train);
  assert.ok(Math.abs(mean - FASHION_MNIST_MEAN[0]) < 0.02, `mean ${mean}`);
  assert.ok(Math.abs(std - FASHION_MNIST_STD[0]) < 0.02, `std ${std}`);
  const s = d.train.get(5);
  assert.deepEqual([s.image.c, s.image.h, s.image.w], [1, 28, 28]);
  assert.ok(s.image.data instanceof Uint8Array);
});

test(
  'full Fashion-MNIST train pixel mean ≈ 0.2860 and std ≈ 0.3530 (atol 5e-4), test labels 1000 per class',
  { skip: !hasDebian && 'dataset-fashion-mnist not installed' },
  async () => {
    const d = await loadFashionMNIST({ ...offline, cacheDir: '/nonexistent' });
    assert.equal(d.source, 'system');
    assert.equal(d.train.length, 60000);
    assert.equal(d.test.length, 10000);
    const { mean, std } = stats(d.train);
    assert.ok(Math.abs(mean - 0.286) < 5e-4, `mean ${mean}`);
    assert.ok(Math.abs(std - 0.353) < 5e-4, `std ${std}`);
    const counts = new Array(10).fill(0);
    for (const y of d.test.labels) counts[y]++;
    assert.deepEqual(counts, new Array(10).fill(1000));
    assert.ok(d.train.images.buffer instanceof SharedArrayBuffer);
    // the Debian copies carry the official contents
    assert.deepEqual(verifyRaw(d.files), []);
  },
);

test('search order: data dir, then $FASHION_MNIST_DIR, then system dir, then cache', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fm-'));
  try {
    const [a, b, c, e] = ['a', 'b', 'c', 'e'].map((x) => join(root, x));
    linkAll(EMBEDDED_SLICE_DIR, a);
    linkAll(EMBEDDED_SLICE_DIR, join(b, 'FashionMNIST', 'raw')); // torchvision layout
    linkAll(EMBEDDED_SLICE_DIR, c);
    linkAll(EMBEDDED_SLICE_DIR, e);
    const base = { download: false, onWarning: () => {} };
    let r = await findFashionMNIST({ ...base, dataDir: a, env: { FASHION_MNIST_DIR: b }, systemDir: c, cacheDir: e });
    assert.deepEqual([r.source, r.dir], ['data-dir', a]);
    r = await findFashionMNIST({ ...base, dataDir: join(root, 'missing'), env: { FASHION_MNIST_DIR: b }, systemDir: c, cacheDir: e });
    assert.deepEqual([r.source, r.dir], ['env', b]);
    assert.match(r.warnings[0], /not found in .*missing/);
    assert.ok(r.files.trainImages.includes(join('FashionMNIST', 'raw')));
    r = await findFashionMNIST({ ...base, env: {}, systemDir: c, cacheDir: e });
    assert.deepEqual([r.source, r.dir], ['system', c]);
    r = await findFashionMNIST({ ...base, env: {}, systemDir: join(root, 'none'), cacheDir: e });
    assert.deepEqual([r.source, r.dir], ['cache', e]);
    // verify: the slice is not the official data, so a verified search skips it
    r = await findFashionMNIST({ ...base, env: {}, systemDir: join(root, 'none'), cacheDir: e, verify: true, allowSlice: true });
    assert.equal(r.source, 'embedded-slice');
    assert.ok(r.warnings.some((w) => /differ from the official/.test(w)));
    await assert.rejects(
      findFashionMNIST({ ...base, env: {}, systemDir: join(root, 'none'), cacheDir: join(root, 'none'), allowSlice: false }),
      /Fashion-MNIST not found/,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a bad label file is a FormatError naming the file', () => {
  const root = mkdtempSync(join(tmpdir(), 'fm-'));
  try {
    const lab = join(root, 'labels.idx');
    writeFileSync(lab, Buffer.from([0, 0, 8, 1, 0, 0, 0, 2, 3, 12]));
    const img = join(root, 'images.idx');
    writeFileSync(img, Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]), Buffer.alloc(2 * 784)]));
    assert.throws(
      () => FashionMNIST.fromFiles(img, lab, 'train'),
      (e: Error) => e instanceof FormatError && e.message.includes(lab) && /label 12/.test(e.message),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

// The official .gz files differ from Debian's only in the gzip header: Debian stripped the original
// file name and mtime. Putting them back rebuilds the official bytes (their published MD5 matches),
// so the download path can be tested against a local server without network access.
const OFFICIAL_MTIME: Record<FileKey, number> = {
  trainImages: 1504176606,
  trainLabels: 1504176606,
  testImages: 1504176627,
  testLabels: 1504176627,
};
function officialBytes(k: FileKey): Buffer {
  const deb = readFileSync(join(DEBIAN, FASHION_MNIST_FILES[k] + '.gz'));
  const head = Buffer.alloc(10);
  head.set([0x1f, 0x8b, 8, 8]);
  head.writeUInt32LE(OFFICIAL_MTIME[k], 4);
  head.set([0, 3], 8);
  return Buffer.concat([head, Buffer.from(FASHION_MNIST_FILES[k] + '\0', 'latin1'), deb.subarray(10)]);
}

test(
  'download: verified against the official size/MD5/SHA-256, a corrupt mirror is skipped, offline falls back to the slice',
  { skip: !hasDebian && 'dataset-fashion-mnist not installed (needed to rebuild the official files)' },
  async () => {
    const files = new Map<string, Buffer>();
    for (const k of Object.keys(FASHION_MNIST_FILES) as FileKey[]) files.set(FASHION_MNIST_FILES[k] + '.gz', officialBytes(k));
    const hits: string[] = [];
    const server = createServer((req, res) => {
      hits.push(req.url!);
      const [, mirror, name] = req.url!.split('/');
      let body = files.get(name);
      if (!body || mirror === 'missing') {
        res.writeHead(404).end();
        return;
      }
      if (mirror === 'corrupt') {
        body = Buffer.from(body);
        body[body.length >> 1] ^= 1;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const root = mkdtempSync(join(tmpdir(), 'fm-dl-'));
    try {
      const cache = join(root, 'cache');
      const common = { env: {}, systemDir: join(root, 'none'), cacheDir: cache, onWarning: () => {} };
      const r = await findFashionMNIST({ ...common, mirrors: [`${url}/missing/`, `${url}/corrupt/`, `${url}/good/`] });
      assert.equal(r.source, 'download');
      assert.equal(r.dir, cache);
      assert.ok(hits.includes('/corrupt/train-labels-idx1-ubyte.gz') && hits.includes('/good/train-labels-idx1-ubyte.gz'));
      assert.deepEqual(
        readdirSync(cache).sort(),
        Object.values(FASHION_MNIST_FILES)
          .map((f) => f + '.gz')
          .sort(),
      ); // no .part files left
      // the next search finds the cache without downloading
      hits.length = 0;
      const again = await findFashionMNIST({ ...common, mirrors: [`${url}/good/`] });
      assert.equal(again.source, 'cache');
      assert.equal(hits.length, 0);
      const train = FashionMNIST.fromFiles(again.files.trainImages, again.files.trainLabels, 'train');
      assert.equal(train.length, 60000);
      // only corrupt mirrors: the download fails and the slice is used, with both warnings
      const bad = await findFashionMNIST({ ...common, cacheDir: join(root, 'cache2'), mirrors: [`${url}/corrupt/`] });
      assert.equal(bad.source, 'embedded-slice');
      assert.match(bad.warnings[0], /checksum verification failed: MD5/);
      assert.ok(!readdirSync(join(root, 'cache2')).some((f) => f.includes('.gz')));
      // RESNET_TS_OFFLINE=1 never touches the network
      hits.length = 0;
      const off = await findFashionMNIST({ ...common, cacheDir: join(root, 'cache3'), env: { RESNET_TS_OFFLINE: '1' }, mirrors: [`${url}/good/`] });
      assert.equal(off.source, 'embedded-slice');
      assert.equal(hits.length, 0);
    } finally {
      server.close();
      rmSync(root, { recursive: true, force: true });
    }
  },
);
