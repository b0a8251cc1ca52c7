import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { ConfigError, FormatError } from '../src/base/errors.js';
import { ImageFolder, decodeImage, readClassIndices, writeClassIndices } from '../src/data/image-folder.js';

let root: string;
const COLORS: Record<string, [number, number, number]> = { daisy: [250, 240, 30], rose: [200, 20, 40], tulip: [120, 40, 200] };

async function writeImage(path: string, rgb: [number, number, number], w: number, h: number, fmt: 'png' | 'jpeg' | 'webp', variation = 0): Promise<void> {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      raw[o] = Math.min(255, rgb[0] + ((x * variation) % 5));
      raw[o + 1] = rgb[1];
      raw[o + 2] = Math.min(255, rgb[2] + ((y * variation) % 3));
    }
  }
  const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  await (fmt === 'png' ? img.png() : fmt === 'jpeg' ? img.jpeg({ quality: 95 }) : img.webp({ lossless: true })).toFile(path);
}

function crc32(b: Buffer): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** A valid-looking PNG whose header declares w×h pixels but carries almost no data. */
function bombPng(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(64))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'imgfolder-'));
  const tree = join(root, 'flowers');
  for (const [cls, rgb] of Object.entries(COLORS)) {
    mkdirSync(join(tree, cls, 'more'), { recursive: true });
    for (let i = 0; i < 6; i++) {
      const fmt = (['png', 'jpeg', 'webp'] as const)[i % 3];
      await writeImage(join(tree, cls, `${cls}_${i}.${fmt === 'jpeg' ? 'JPG' : fmt}`), rgb, 20 + i, 16 + 2 * i, fmt, i);
    }
    await writeImage(join(tree, cls, 'more', 'nested.png'), rgb, 8, 8, 'png');
    writeFileSync(join(tree, cls, 'notes.txt'), 'not an image');
    writeFileSync(join(tree, cls, '._daisy_0.png'), 'macOS resource fork');
  }
  mkdirSync(join(tree, '.ipynb_checkpoints'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('ImageFolder: sorted classes, recursive scan, only image files, decoded RGB CHW with the written colours', async () => {
  const ds = ImageFolder.open(join(root, 'flowers'));
  assert.deepEqual(ds.classes, ['daisy', 'rose', 'tulip']);
  assert.deepEqual(ds.counts(), [7, 7, 7]);
  assert.deepEqual(ds.classToIdx, { daisy: 0, rose: 1, tulip: 2 });
  assert.equal(ds.relativePath(0), join('daisy', 'daisy_0.png'));
  assert.equal(ds.relativePath(6), join('daisy', 'more', 'nested.png'));
  assert.ok(
    ds.paths.some((p) => p.endsWith('daisy_1.JPG')),
    'upper-case extension accepted',
  );
  for (let i = 0; i < ds.length; i++) {
    const { image, label } = await ds.get(i);
    assert.equal(image.c, 3);
    assert.ok(image.data instanceof Uint8Array);
    const rgb = COLORS[ds.classes[label]];
    const hw = image.h * image.w;
    const lossy = ds.paths[i].endsWith('.JPG');
    for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let k = 0; k < hw; k++) s += image.data[c * hw + k];
      assert.ok(Math.abs(s / hw - rgb[c]) < (lossy ? 6 : 3.5), `${ds.paths[i]} channel ${c}: mean ${s / hw} vs ${rgb[c]}`);
    }
  }
  const first = await ds.get(0); // daisy_0.png: 20x16, lossless
  assert.deepEqual([first.image.h, first.image.w], [16, 20]);
  assert.equal(first.image.data[0], 250);
  const gray = await decodeImage(ds.paths[0], { mode: 'gray' });
  assert.equal(gray.c, 1);
  assert.ok(Math.abs(gray.data[0] - (0.2989 * 250 + 0.587 * 240 + 0.114 * 30)) <= 2, `gray ${gray.data[0]}`);
  assert.deepEqual(await ds.check(), []);
});

test('seeded stratified train/val split: disjoint, covers all, same seed same split', () => {
  const ds = ImageFolder.open(join(root, 'flowers'));
  const a = ds.split(0.3, 1);
  const b = ds.split(0.3, 1);
  const c = ds.split(0.3, 2);
  assert.deepEqual(a.val.indices, b.val.indices);
  assert.notDeepEqual(a.val.indices, c.val.indices);
  assert.equal(a.train.length + a.val.length, ds.length);
  assert.equal(new Set([...a.train.indices, ...a.val.indices]).size, ds.length);
  const perClass = [0, 0, 0];
  for (const i of a.val.indices) perClass[ds.targets[i]]++;
  assert.deepEqual(perClass, [2, 2, 2]); // round(0.3 * 7) per class
  assert.deepEqual(a.val.classes, ds.classes);
});

test('class_indices.json round trip; Keras name->index and list forms; bad files are FormatErrors', () => {
  const p = join(root, 'class_indices.json');
  writeClassIndices(p, ['daisy', 'rose', 'tulip']);
  assert.deepEqual(JSON.parse(readFileSync(p, 'utf8')), { 0: 'daisy', 1: 'rose', 2: 'tulip' });
  assert.deepEqual(readClassIndices(p), ['daisy', 'rose', 'tulip']);
  writeFileSync(p, JSON.stringify({ rose: 1, daisy: 0 }));
  assert.deepEqual(readClassIndices(p), ['daisy', 'rose']);
  writeFileSync(p, JSON.stringify(['a', 'b']));
  assert.deepEqual(readClassIndices(p), ['a', 'b']);
  writeFileSync(p, JSON.stringify({ 0: 'a', 2: 'b' }));
  assert.throws(
    () => readClassIndices(p),
    (e: Error) => e instanceof FormatError && e.message.includes(p),
  );
  writeFileSync(p, '{"0": "a",');
  assert.throws(() => readClassIndices(p), /not valid JSON/);
});

test('corrupt, truncated and bomb images are FormatErrors naming the file', async () => {
  const tree = join(root, 'bad');
  for (const cls of ['a', 'b']) mkdirSync(join(tree, cls), { recursive: true });
  await writeImage(join(tree, 'a', 'ok.png'), [1, 2, 3], 10, 10, 'png');
  await writeImage(join(tree, 'b', 'full.jpg'), [1, 2, 3], 64, 48, 'jpeg', 3);
  const jpg = readFileSync(join(tree, 'b', 'full.jpg'));
  writeFileSync(join(tree, 'b', 'truncated.jpg'), jpg.subarray(0, jpg.length >> 1));
  writeFileSync(join(tree, 'b', 'garbage.png'), Buffer.from('definitely not a png file'));
  writeFileSync(join(tree, 'b', 'bomb.png'), bombPng(100000, 100000));
  const ds = ImageFolder.open(tree);
  const idx = (name: string) => ds.paths.findIndex((p) => p.endsWith(name));
  await ds.get(idx('ok.png'));
  await ds.get(idx('full.jpg'));
  for (const [name, re] of [
    ['truncated.jpg', /cannot decode/],
    ['garbage.png', /cannot decode/],
    ['bomb.png', /100000x100000\) exceed the limit/],
  ] as const) {
    await assert.rejects(ds.get(idx(name)), (e: Error) => e instanceof FormatError && e.message.includes(join(tree, 'b', name)) && re.test(e.message), name);
  }
  const bad = await ds.check();
  assert.deepEqual(bad.map((b) => b.path.slice(tree.length + 1)).sort(), ['b/bomb.png', 'b/garbage.png', 'b/truncated.jpg']);
});

test('folder errors: missing root, no class folders, empty class folder, a single class', () => {
  assert.throws(
    () => ImageFolder.open(join(root, 'nope')),
    (e: Error) => e instanceof ConfigError && /not found/.test(e.message),
  );
  const flat = join(root, 'flat');
  mkdirSync(flat);
  writeFileSync(join(flat, 'x.png'), '');
  assert.throws(() => ImageFolder.open(flat), /no class sub-folders/);
  const empty = join(root, 'empty');
  mkdirSync(join(empty, 'cat'), { recursive: true });
  mkdirSync(join(empty, 'dog'), { recursive: true });
  writeFileSync(join(empty, 'cat', 'a.png'), '');
  writeFileSync(join(empty, 'dog', 'readme.txt'), '');
  assert.throws(
    () => ImageFolder.open(empty),
    (e: Error) => e instanceof ConfigError && e.message.includes(join(empty, 'dog')) && /has no images/.test(e.message),
  );
  const single = join(root, 'single');
  mkdirSync(join(single, 'cat'), { recursive: true });
  writeFileSync(join(single, 'cat', 'a.png'), '');
  assert.throws(
    () => ImageFolder.open(single),
    (e: Error) => e instanceof ConfigError && /only 1 class folder \('cat'\)/.test(e.message),
  );
  assert.equal(ImageFolder.open(single, { minClasses: 1 }).length, 1);
});
