import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FormatError } from '../src/base/errors.js';
import { encodeIdx, parseIdx, type IdxArray } from '../src/data/idx.js';
import { readIdxFile } from '../src/data/idx-file.js';

const SLICE = new URL('../data/fashion-mnist-slice/', import.meta.url).pathname;
const DEBIAN = '/usr/share/datasets/fashion-mnist';

test('slice: IDX headers, shapes and label range of the embedded Fashion-MNIST slice', () => {
  const img = readIdxFile(join(SLICE, 'train-images-idx3-ubyte.gz'));
  const lab = readIdxFile(join(SLICE, 'train-labels-idx1-ubyte.gz'));
  assert.equal(img.dtype, 'uint8');
  assert.deepEqual(img.shape, [2000, 28, 28]);
  assert.deepEqual(lab.shape, [2000]);
  const counts = new Array(10).fill(0);
  for (const y of lab.data) counts[y]++;
  assert.deepEqual(counts, new Array(10).fill(200));
  const timg = readIdxFile(join(SLICE, 't10k-images-idx3-ubyte.gz'));
  assert.deepEqual(timg.shape, [1000, 28, 28]);
});

test('browser path (fflate) and node:zlib path decode the same bytes', () => {
  const f = join(SLICE, 't10k-images-idx3-ubyte.gz');
  const a = parseIdx(readFileSync(f), f);
  const b = readIdxFile(f);
  assert.deepEqual(a.shape, b.shape);
  assert.deepEqual(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength), Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
});

test('Debian copy: 60000 train / 10000 test images, labels 0..9', { skip: !existsSync(DEBIAN) && 'dataset-fashion-mnist not installed' }, () => {
  const lab = readIdxFile(join(DEBIAN, 'train-labels-idx1-ubyte.gz'));
  assert.deepEqual(lab.shape, [60000]);
  let max = 0;
  for (const y of lab.data) max = Math.max(max, y);
  assert.equal(max, 9);
  assert.deepEqual(readIdxFile(join(DEBIAN, 't10k-labels-idx1-ubyte.gz')).shape, [10000]);
});

test('encode/parse round trip for every IDX type (big-endian)', () => {
  const cases: IdxArray[] = [
    { dtype: 'uint8', shape: [2, 3], data: new Uint8Array([0, 1, 2, 253, 254, 255]) },
    { dtype: 'int8', shape: [3], data: new Int8Array([-128, 0, 127]) },
    { dtype: 'int16', shape: [1, 2], data: new Int16Array([-300, 12345]) },
    { dtype: 'int32', shape: [2], data: new Int32Array([-70000, 2 ** 31 - 1]) },
    { dtype: 'float32', shape: [2], data: new Float32Array([1.5, -0.25]) },
    { dtype: 'float64', shape: [1, 1, 1], data: new Float64Array([Math.PI]) },
  ];
  for (const c of cases) {
    const enc = encodeIdx(c);
    const back = parseIdx(enc);
    assert.equal(back.dtype, c.dtype);
    assert.deepEqual(back.shape, c.shape);
    assert.deepEqual(Array.from(back.data), Array.from(c.data));
    // gzipped too
    assert.deepEqual(Array.from(parseIdx(gzipSync(enc)).data), Array.from(c.data));
  }
  // int16 is stored big-endian: -300 = 0xfed4
  const enc = encodeIdx({ dtype: 'int16', shape: [1], data: new Int16Array([-300]) });
  assert.deepEqual(Array.from(enc.subarray(8)), [0xfe, 0xd4]);
});

test('bad files: wrong magic, short data, trailing data, truncated gzip name the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'idx-'));
  try {
    const good = encodeIdx({ dtype: 'uint8', shape: [10, 28, 28], data: new Uint8Array(7840).fill(7) });
    const wrongMagic = join(dir, 'magic.idx');
    writeFileSync(wrongMagic, Buffer.concat([Buffer.from([0x50, 0x4b, 3, 4]), good.subarray(4)]));
    assert.throws(
      () => readIdxFile(wrongMagic),
      (e: Error) => e instanceof FormatError && e.message.includes(wrongMagic) && /not an IDX file/.test(e.message),
    );

    const short = join(dir, 'short-images.gz');
    writeFileSync(short, gzipSync(good.subarray(0, good.length - 100)));
    assert.throws(
      () => readIdxFile(short),
      (e: Error) => e instanceof FormatError && e.message.includes(short) && /short IDX data/.test(e.message),
    );

    const trailing = join(dir, 'trailing.idx');
    writeFileSync(trailing, Buffer.concat([good, Buffer.from([1, 2])]));
    assert.throws(
      () => readIdxFile(trailing),
      (e: Error) => e instanceof FormatError && /trailing/.test(e.message),
    );

    const gz = gzipSync(good);
    const trunc = join(dir, 'truncated.gz');
    writeFileSync(trunc, gz.subarray(0, gz.length - 20));
    assert.throws(
      () => readIdxFile(trunc),
      (e: Error) => e instanceof FormatError && e.message.includes(trunc) && /truncated/.test(e.message),
    );
    // the browser-safe path reports it too
    assert.throws(
      () => parseIdx(gz.subarray(0, gz.length - 20), 'x.gz'),
      (e: Error) => e instanceof FormatError && e.message.startsWith('x.gz:'),
    );
    // a real file cut in half
    const real = readFileSync(join(SLICE, 'train-images-idx3-ubyte.gz'));
    writeFileSync(trunc, real.subarray(0, real.length >> 1));
    assert.throws(() => readIdxFile(trunc), FormatError);
    assert.throws(() => parseIdx(real.subarray(0, real.length >> 1), 'half.gz'), FormatError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
