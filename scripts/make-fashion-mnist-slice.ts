// Writes data/fashion-mnist-slice/: a stratified slice of Fashion-MNIST (the first 200 training and
// the first 100 test images of each class, in file order) as gzipped IDX files. Deterministic: gzip
// level 9, no file name, mtime 0. Usage: npx tsx scripts/make-fashion-mnist-slice.ts [SRC_DIR]
import { writeFileSync, mkdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { readIdxFile } from '../src/data/idx-file.js';
import { encodeIdx } from '../src/data/idx.js';

const src = process.argv[2] ?? '/usr/share/datasets/fashion-mnist';
const out = 'data/fashion-mnist-slice';
mkdirSync(out, { recursive: true });

for (const [split, prefix, perClass] of [
  ['train', 'train', 200],
  ['test', 't10k', 100],
] as const) {
  const images = readIdxFile(join(src, `${prefix}-images-idx3-ubyte.gz`));
  const labels = readIdxFile(join(src, `${prefix}-labels-idx1-ubyte.gz`));
  const [n, h, w] = images.shape;
  const taken = new Array<number>(10).fill(0);
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = labels.data[i];
    if (taken[c] < perClass) {
      taken[c]++;
      keep.push(i);
    }
  }
  const img = new Uint8Array(keep.length * h * w);
  const lab = new Uint8Array(keep.length);
  keep.forEach((src, k) => {
    img.set((images.data as Uint8Array).subarray(src * h * w, (src + 1) * h * w), k * h * w);
    lab[k] = labels.data[src];
  });
  const gz = (b: Uint8Array) => gzipSync(b, { level: 9 });
  writeFileSync(join(out, `${prefix}-images-idx3-ubyte.gz`), gz(encodeIdx({ dtype: 'uint8', shape: [keep.length, h, w], data: img })));
  writeFileSync(join(out, `${prefix}-labels-idx1-ubyte.gz`), gz(encodeIdx({ dtype: 'uint8', shape: [keep.length], data: lab })));
  console.log(`${split}: ${keep.length} images (${perClass} per class), last source index ${keep[keep.length - 1]}`);
}
