// DataLoader throughput: one JSON line per case on stdout, then a table on stderr.
//
//   node --import tsx bench/data-loader.ts [--workers 0,1,2] [--images 20000] [--quick]
//
// Cases: Fashion-MNIST 28 px with the fashion-mnist-28 style augmentation, Fashion-MNIST resized
// to 96 px (d2l's recipe), and JPEG photos decoded with sharp and cropped to 224 (fine-tuning).
// "free" is images/s with a consumer that does nothing; "busy" gives the main thread a fixed
// amount of CPU work per batch (a stand-in for a training step) and reports how long the consumer
// waited for data in total: with workers it should be close to 0.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Subset, type Dataset } from '../src/data/dataset.js';
import { loadFashionMNIST } from '../src/data/fashion-mnist.js';
import { ImageFolder } from '../src/data/image-folder.js';
import { DataLoader } from '../src/data/loader.js';
import { Normalize, RandomCrop, RandomHorizontalFlip, RandomResizedCrop, Resize, ToFloat, compose, type Transform } from '../src/data/transforms.js';

const args = process.argv.slice(2);
function opt(name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
const quick = args.includes('--quick');
const workerList = opt('workers', '0,1,2').split(',').map(Number);
const nImages = Number(opt('images', quick ? '5000' : '20000'));

interface Row {
  case: string;
  workers: number;
  mode: 'free' | 'busy';
  images: number;
  images_per_s: number;
  wait_ms?: number;
  busy_ms?: number;
  total_ms: number;
}
const rows: Row[] = [];

function spin(ms: number): void {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
}

async function run(name: string, ds: Dataset, transform: Transform, batchSize: number, busyMsPerBatch: number): Promise<void> {
  for (const workers of workerList) {
    for (const mode of ['free', 'busy'] as const) {
      if (mode === 'busy' && busyMsPerBatch === 0) continue;
      const loader = new DataLoader(ds, { batchSize, shuffle: true, seed: 0, transform, numWorkers: workers, dropLast: true });
      // warm-up (starts workers, JIT)
      for await (const b of loader.epochBatches(99, loader.length - 1)) void b;
      let images = 0;
      let wait = 0;
      const t0 = performance.now();
      let tw = performance.now();
      for await (const b of loader.epochBatches(0, 0)) {
        wait += performance.now() - tw;
        images += b.y.length;
        if (mode === 'busy') spin(busyMsPerBatch);
        tw = performance.now();
      }
      const total = performance.now() - t0;
      await loader.close();
      const row: Row = { case: name, workers, mode, images, images_per_s: Math.round(images / (total / 1000)), total_ms: Math.round(total) };
      if (mode === 'busy') {
        row.wait_ms = Math.round(wait);
        row.busy_ms = Math.round(busyMsPerBatch * loader.length);
      }
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
}

const fm = await loadFashionMNIST({ download: false });
const n = Math.min(nImages, fm.train.length);
const sub = new Subset(
  fm.train,
  Int32Array.from({ length: n }, (_, i) => i),
);
const norm = new Normalize([0.286], [0.353]);
await run(`fmnist-28 aug (${fm.source})`, sub, compose(new RandomCrop(28, { padding: 4 }), new RandomHorizontalFlip(), new ToFloat(), norm), 256, 20);
await run(`fmnist-96 d2l (${fm.source})`, sub, compose(new ToFloat(), new Resize(96)), 256, 60);

const dir = mkdtempSync(join(tmpdir(), 'bench-photos-'));
try {
  const per = quick ? 40 : 100;
  for (const [k, cls] of ['a', 'b', 'c', 'd'].entries()) {
    mkdirSync(join(dir, cls));
    for (let i = 0; i < per; i++) {
      const w = 500;
      const h = 375;
      const raw = Buffer.alloc(w * h * 3);
      for (let p = 0; p < raw.length; p++) raw[p] = (p * (k + 3) + i * 7 + ((p / 1500) | 0)) & 255;
      await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
        .jpeg({ quality: 90 })
        .toFile(join(dir, cls, `${i}.jpg`));
    }
  }
  const photos = ImageFolder.open(dir);
  await run(
    'jpeg 500x375 -> 224 RandomResizedCrop',
    photos,
    compose(new RandomResizedCrop(224), new RandomHorizontalFlip(), new ToFloat(), Normalize.imagenet()),
    32,
    100,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.error('\ncase                                     workers mode  images/s   wait ms / busy ms');
for (const r of rows) {
  console.error(
    `${r.case.padEnd(40)} ${String(r.workers).padStart(7)} ${r.mode.padEnd(5)} ${String(r.images_per_s).padStart(8)}   ${r.wait_ms !== undefined ? `${r.wait_ms} / ${r.busy_ms}` : ''}`,
  );
}
