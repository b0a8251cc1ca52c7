import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { ConfigError, FormatError, ShapeError } from '../src/base/errors.js';
import { trainValSplit } from '../src/data/dataset.js';
import { FashionMNIST, loadFashionMNIST, type LoadedFashionMNIST } from '../src/data/fashion-mnist.js';
import { ImageFolder } from '../src/data/image-folder.js';
import { DataLoader, epochOrder, type Batch } from '../src/data/loader.js';
import '../src/data/loader-pool.js'; // registers the worker pool, as the Node entry does
import { Lambda, Normalize, RandomCrop, RandomHorizontalFlip, RandomResizedCrop, Resize, ToFloat, compose } from '../src/data/transforms.js';

let fm: LoadedFashionMNIST;
let dir: string;
before(async () => {
  fm = await loadFashionMNIST({ download: false, env: {}, systemDir: '/nonexistent', cacheDir: '/nonexistent', onWarning: () => {} });
  dir = mkdtempSync(join(tmpdir(), 'loader-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const augment = () => compose(new RandomCrop(28, { padding: 4 }), new RandomHorizontalFlip(), new ToFloat(), new Normalize([0.286], [0.353]));

async function collect(loader: DataLoader, epochs = 1): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let e = 0; e < epochs; e++) for await (const b of loader) out.push(b);
  return out;
}

function sameBatches(a: Batch[], b: Batch[]): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(a[i].shape, b[i].shape);
    assert.deepEqual(a[i].y, b[i].y);
    assert.deepEqual(a[i].indices, b[i].indices);
    assert.ok(
      Buffer.from(a[i].x.buffer, a[i].x.byteOffset, a[i].x.byteLength).equals(Buffer.from(b[i].x.buffer, b[i].x.byteOffset, b[i].x.byteLength)),
      `batch ${i} pixels differ`,
    );
  }
}

test('every epoch is a permutation; sizes with and without drop-last; labels match the dataset', async () => {
  const ds = fm.test; // 1000 images
  const loader = new DataLoader(ds, { batchSize: 64, shuffle: true, seed: 1, numWorkers: 0 });
  assert.equal(loader.length, 16);
  const batches = await collect(loader, 2);
  assert.equal(batches.length, 32);
  assert.equal(batches[15].y.length, 1000 - 15 * 64);
  for (const e of [0, 1]) {
    const seen = new Int32Array(1000);
    for (const b of batches.filter((b) => b.epoch === e)) {
      b.indices.forEach((i, k) => {
        seen[i]++;
        assert.equal(b.y[k], ds.labels[i]);
      });
    }
    assert.ok(
      seen.every((v) => v === 1),
      `epoch ${e} is not a permutation`,
    );
  }
  assert.notDeepEqual(batches[0].indices, batches[16].indices, 'epochs should be shuffled differently');
  const x = batches[0].x; // uint8 images are scaled to [0, 1]
  assert.equal(x[0], ds.images[batches[0].indices[0] * 784] / 255);
  const dl = new DataLoader(ds, { batchSize: 64, dropLast: true, numWorkers: 0 });
  assert.equal(dl.length, 15);
  const plain = await collect(dl);
  assert.deepEqual(Array.from(plain[0].indices.slice(0, 3)), [0, 1, 2]);
  assert.ok(plain.every((b) => b.y.length === 64));
});

test('same seed, same batches with 0, 1 and 3 worker threads (augmented Fashion-MNIST slice)', async () => {
  const runs: Batch[][] = [];
  for (const numWorkers of [0, 1, 3]) {
    const loader = new DataLoader(fm.train, { batchSize: 100, shuffle: true, seed: 42, transform: augment(), numWorkers, prefetch: 3 });
    runs.push(await collect(loader, 2));
    await loader.close();
  }
  sameBatches(runs[0], runs[1]);
  sameBatches(runs[0], runs[2]);
  const other = new DataLoader(fm.train, { batchSize: 100, shuffle: true, seed: 43, transform: augment(), numWorkers: 0 });
  const o = await collect(other);
  assert.notDeepEqual(o[0].indices, runs[0][0].indices);
});

test('resume from getState() mid-epoch and across the epoch boundary gives the uninterrupted batches', async () => {
  const opts = { batchSize: 128, shuffle: true, seed: 7, transform: augment() };
  const full = await collect(new DataLoader(fm.train, { ...opts, numWorkers: 0 }), 3); // 16 batches per epoch
  for (const stopAfter of [5, 16, 20]) {
    const a = new DataLoader(fm.train, { ...opts, numWorkers: 1 });
    const got: Batch[] = [];
    outer: for (let e = 0; e < 3; e++) {
      for await (const b of a) {
        got.push(b);
        if (got.length === stopAfter) break outer;
      }
    }
    const state = JSON.parse(JSON.stringify(a.getState()));
    await a.close();
    const b = new DataLoader(fm.train, { ...opts, seed: 999, numWorkers: 0 });
    b.setState(state);
    while (got.length < full.length) for await (const x of b) got.push(x);
    sameBatches(got, full);
  }
});

test('worker threads: errors keep their class, non-serializable transforms are refused, auto falls back in-process', async () => {
  const t = compose(new ToFloat(), new Lambda((img) => img));
  assert.throws(() => new DataLoader(fm.test, { transform: t, numWorkers: 2 }).workerCount(), ConfigError);
  assert.equal(new DataLoader(fm.test, { transform: t }).workerCount(), 0);
  assert.equal(new DataLoader(fm.test, { batchSize: 512 }).workerCount(), 0, 'tiny dataset: in-process');
  const bad = new DataLoader(fm.test, { transform: compose(new ToFloat(), new Normalize([0, 0, 0], [1, 1, 1])), numWorkers: 1, batchSize: 10 });
  await assert.rejects(collect(bad), (e: Error) => e instanceof ShapeError && /3 channel means/.test(e.message));
  await bad.close();
  assert.throws(() => new DataLoader(fm.test, { batchSize: 0 }), ConfigError);
  assert.throws(() => new DataLoader(fm.test, { batchSize: 2000, dropLast: true }), /no batch/);
});

test('ImageFolder through worker threads (sharp in workers) equals in-process; corrupt file -> FormatError; mixed sizes -> ShapeError', async () => {
  const root = join(dir, 'photos');
  for (const [k, cls] of ['cat', 'dog', 'fox'].entries()) {
    mkdirSync(join(root, cls), { recursive: true });
    for (let i = 0; i < 8; i++) {
      const w = 40 + 3 * i;
      const h = 30 + 2 * i;
      const raw = Buffer.alloc(w * h * 3);
      for (let p = 0; p < raw.length; p++) raw[p] = (p * (k + 3) + i * 11) & 255;
      const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
      await (i % 2 ? img.jpeg() : img.png()).toFile(join(root, cls, `${i}.${i % 2 ? 'jpg' : 'png'}`));
    }
  }
  const ds = ImageFolder.open(root);
  const { train } = trainValSplit(ds, 0.25, { seed: 3 });
  const tf = compose(new RandomResizedCrop(24, { scale: [0.3, 1] }), new RandomHorizontalFlip(), new ToFloat(), Normalize.imagenet());
  const a = await collect(new DataLoader(train, { batchSize: 5, shuffle: true, seed: 5, transform: tf, numWorkers: 0 }));
  const wl = new DataLoader(train, { batchSize: 5, shuffle: true, seed: 5, transform: tf, numWorkers: 2 });
  const b = await collect(wl);
  await wl.close();
  sameBatches(a, b);
  assert.deepEqual(a[0].shape, [5, 3, 24, 24]);

  const mixed = new DataLoader(ds, { batchSize: 4, numWorkers: 0, transform: new ToFloat() });
  await assert.rejects(collect(mixed), (e: Error) => e instanceof ShapeError && /differ in size/.test(e.message));

  writeFileSync(join(root, 'dog', '3.jpg'), Buffer.from('truncated'));
  const broken = new DataLoader(ImageFolder.open(root), { batchSize: 4, transform: new Resize([8, 8]), numWorkers: 1 });
  await assert.rejects(collect(broken), (e: Error) => e instanceof FormatError && e.message.includes(join(root, 'dog', '3.jpg')));
  await broken.close();
});

test("a process that never calls close() still exits (idle workers are unref'd)", async () => {
  const script = join(dir, 'noclose.mts');
  const src = new URL('../src/data/', import.meta.url).pathname;
  writeFileSync(
    script,
    [
      `import { loadFashionMNIST } from '${src}fashion-mnist.ts';`,
      `import { DataLoader } from '${src}loader.ts';`,
      `const d = await loadFashionMNIST({ download: false, env: {}, systemDir: '/none', cacheDir: '/none', onWarning: () => {} });`,
      `const l = new DataLoader(d.train, { batchSize: 50, numWorkers: 2, shuffle: true });`,
      `let n = 0; for await (const b of l) { n += b.y.length; if (n >= 200) break; }`,
      `console.log('done', n);`,
    ].join('\n'),
  );
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
    timeout: 60_000,
    cwd: new URL('..', import.meta.url).pathname,
  });
  assert.match(stdout, /done 200/);
});

test(
  'full Fashion-MNIST through the loader: 6000 per class and mean pixel ≈ 0.2860 (atol 5e-4)',
  { skip: !existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz') && 'dataset-fashion-mnist not installed' },
  async () => {
    const train = FashionMNIST.fromFiles(
      '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz',
      '/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz',
      'train',
    );
    const loader = new DataLoader(train, { batchSize: 1000, shuffle: true, seed: 0, numWorkers: 0 });
    const counts = new Array(10).fill(0);
    let s = 0;
    let n = 0;
    for await (const b of loader) {
      for (const y of b.y) counts[y]++;
      for (const v of b.x) s += v;
      n += b.x.length;
    }
    assert.deepEqual(counts, new Array(10).fill(6000));
    assert.ok(Math.abs(s / n - 0.286) < 5e-4, `mean ${s / n}`);
    assert.deepEqual(epochOrder(5, 0, 0, false), Int32Array.from([0, 1, 2, 3, 4]));
  },
);
