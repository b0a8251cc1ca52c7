// safetensors, .npy and .npz: golden files written by NumPy/PyTorch (test/io-golden, made by
// scripts/make_io_golden.py), round trips, strict validation, and Python reading what we write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShapeError } from '../src/base/errors.js';
import type { ArrayMap, NamedArray } from '../src/io/types.js';
import { readSafetensors, readSafetensorsHeader, readSafetensorsMetadata, writeSafetensors } from '../src/io/safetensors.js';
import { readNpy, readNpz, writeNpy, writeNpz } from '../src/io/npy.js';
import {
  readArraysFile,
  readNpyFile,
  readNpyFolder,
  readSafetensorsFile,
  readSafetensorsMetadataFile,
  writeNpyFile,
  writeNpyFolder,
  writeSafetensorsFile,
} from '../src/io/files.js';
import { detectFormat, readArrays } from '../src/io/detect.js';
import { assertSameValues, pythonMissing, runPython, throwsFormat } from './io-util.js';

const GOLDEN = new URL('./io-golden/', import.meta.url).pathname;
const expected = JSON.parse(readFileSync(join(GOLDEN, 'expected.json'), 'utf8')) as Record<string, Record<string, unknown>>;
type Rec = { dtype: string; shape: number[]; values: number[] };

function checkRecord(a: NamedArray | undefined, e: Rec, what: string): void {
  assert.ok(a, `${what}: missing`);
  assert.equal(a.dtype, e.dtype, `${what}: dtype`);
  assert.deepEqual(a.shape, e.shape, `${what}: shape`);
  assertSameValues(a.data, e.values, what);
}

function sample(): ArrayMap {
  const m: ArrayMap = new Map();
  m.set('conv1.weight', { dtype: 'F32', shape: [2, 1, 3, 3], data: Float32Array.from({ length: 18 }, (_, i) => (i - 9) / 7) });
  m.set('bn1.num_batches_tracked', { dtype: 'I64', shape: [], data: Float32Array.from([12345]) });
  m.set('half_stored', { dtype: 'F16', shape: [3], data: Float32Array.from([0.5, -1e-3, 65504]) });
  m.set('empty', { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) });
  m.set('steps', { dtype: 'I64', shape: [2], data: Float32Array.from([-7, 16777216]) });
  m.set('fc.bias', { dtype: 'F32', shape: [5], data: Float32Array.from([1, NaN, Infinity, -0, 3.4028234663852886e38]) });
  return m;
}

// --- safetensors -------------------------------------------------------------------------------

test('safetensors: round trip keeps names, order, shapes, values (exact), I64 and metadata', () => {
  const m = sample();
  const bytes = writeSafetensors(m, { format: 'pt', by: 'resnet-ts' });
  const back = readSafetensors(bytes);
  assert.deepEqual([...back.keys()], [...m.keys()]);
  for (const [k, a] of m) {
    const b = back.get(k)!;
    assert.equal(b.dtype, a.dtype === 'I64' ? 'I64' : 'F32', `${k} dtype`);
    assert.deepEqual(b.shape, a.shape);
    assertSameValues(b.data, [...a.data], k);
  }
  assert.deepEqual(readSafetensorsMetadata(bytes), { format: 'pt', by: 'resnet-ts' });
});

test('safetensors: header padded to 8 bytes, every tensor aligned to its element size', () => {
  const bytes = writeSafetensors(sample());
  const h = readSafetensorsHeader(bytes);
  assert.equal(h.dataStart % 8, 0);
  assert.equal(bytes[h.dataStart - 1], 0x20, 'padding is spaces');
  for (const e of h.entries) assert.equal(e.begin % (e.dtype === 'I64' ? 8 : 4), 0, `${e.name} aligned`);
});

test('safetensors: golden file of every dtype (written by Python) reads exactly', () => {
  const bytes = readFileSync(join(GOLDEN, 'dtypes.safetensors'));
  const m = readSafetensors(bytes);
  const exp = expected['dtypes.safetensors'];
  for (const [k, e] of Object.entries(exp)) {
    if (k === '__metadata__') continue;
    checkRecord(m.get(k), e as Rec, k);
  }
  assert.equal(m.size, Object.keys(exp).length - 1);
  assert.deepEqual(readSafetensorsMetadata(bytes), exp.__metadata__);
});

/** A safetensors file from a header object and a data section of `dataLen` bytes. */
function st(header: unknown, dataLen: number, rawHeader?: string): Uint8Array {
  const h = new TextEncoder().encode(rawHeader ?? JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + dataLen);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  return out;
}

test('safetensors: strict validation, each problem a one-line FormatError naming the tensor', () => {
  const t = (dtype: string, shape: unknown[], offs: unknown) => ({ dtype, shape, data_offsets: offs });
  throwsFormat(() => readSafetensors(st({ a: t('F32', [2], [0, 8]), b: t('F32', [2], [4, 12]) }, 12)), /tensor "b" overlaps tensor "a"/);
  throwsFormat(() => readSafetensors(st({ a: t('F32', [1], [0, 4]), b: t('F32', [1], [8, 12]) }, 12)), /4 unused bytes before tensor "b"/);
  throwsFormat(() => readSafetensors(st({ a: t('F32', [4], [0, 16]) }, 8)), /tensor "a": data_offsets \[0, 16\] run past the 8-byte data section/);
  throwsFormat(() => readSafetensors(st({ a: t('F32', [2, 3], [0, 16]) }, 16)), /tensor "a": shape \[2, 3\] of F32 needs 24 bytes but data_offsets span 16/);
  throwsFormat(() => readSafetensors(st({ a: t('Q7', [1], [0, 4]) }, 4)), /tensor "a": unknown dtype "Q7"/);
  throwsFormat(() => readSafetensors(st({ a: t('U32', [1], [0, 4]) }, 4)), /tensor "a": unsupported dtype "U32"/);
  throwsFormat(() => readSafetensors(st({ a: t('F32', [-1], [0, 4]) }, 4)), /tensor "a": invalid dimension -1/);
  throwsFormat(() => readSafetensors(st({ a: t('F32', [1.5], [0, 4]) }, 4)), /tensor "a": invalid dimension 1.5/);
  throwsFormat(() => readSafetensors(st({ a: t('F32', ['2'], [0, 8]) }, 8)), /tensor "a": invalid dimension "2"/);
  throwsFormat(
    () => readSafetensors(st({ a: t('F32', [1], [0, 4]) }, 4, '{"a":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}}')),
    /tensor "a": invalid dimension Infinity/,
  );
  throwsFormat(() => readSafetensors(st({ a: t('F32', [2 ** 30, 2 ** 30, 2 ** 30], [0, 4]) }, 4)), /tensor "a": shape .* is too large/);
  throwsFormat(() => readSafetensors(st({ a: t('F32', [1], [4, 0]) }, 4)), /tensor "a": invalid data_offsets/);
  throwsFormat(() => readSafetensors(st({ a: t('F32', [1], [0, 4]) }, 8)), /4 bytes after the last tensor/);
  throwsFormat(() => readSafetensors(st({ a: { dtype: 'F32', shape: [1] } }, 4)), /tensor "a": data_offsets is not a \[begin, end\] pair/);
  throwsFormat(() => readSafetensors(st(null, 0, '{"a": ')), /header is not valid JSON/);
  throwsFormat(() => readSafetensors(st([1, 2], 0)), /header is not a JSON object/);
  throwsFormat(() => readSafetensors(st({ __metadata__: { k: 1 } }, 0)), /__metadata__ value for "k" is not a string/);
  throwsFormat(() => readSafetensors(new Uint8Array(5)), /too short/);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setUint32(4, 0x100, true); // 2^40 header bytes
  throwsFormat(() => readSafetensors(huge), /header length 1099511627776 exceeds/);
  const past = new Uint8Array(16);
  new DataView(past.buffer).setUint32(0, 1000, true);
  throwsFormat(() => readSafetensors(past), /header length 1000 runs past the end of the 16-byte file/);
});

test('safetensors: writer rejects data that does not fit its shape', () => {
  const m: ArrayMap = new Map([['w', { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }]]);
  assert.throws(
    () => writeSafetensors(m),
    (e: unknown) => e instanceof ShapeError && /w: data has 3 values but shape \[2, 2\] needs 4/.test((e as Error).message),
  );
});

test('safetensors: file helpers write atomically (no temp file left) and name the file in errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'io-st-'));
  try {
    const p = join(dir, 'w.safetensors');
    writeFileSync(p, 'old contents');
    writeSafetensorsFile(p, sample(), { format: 'pt' });
    assert.deepEqual(readdirSync(dir), ['w.safetensors']);
    const m = readSafetensorsFile(p); // a Node Buffer (pooled, non-zero byteOffset for small files)
    assertSameValues(m.get('conv1.weight')!.data, [...sample().get('conv1.weight')!.data], 'conv1.weight');
    assert.deepEqual(readSafetensorsMetadataFile(p), { format: 'pt' });
    writeFileSync(p, new Uint8Array(4));
    throwsFormat(() => readSafetensorsFile(p), new RegExp(`^${p.replace(/[.]/g, '\\.')}: safetensors: file is 4 bytes`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('safetensors: PyTorch reads our file back unchanged (F32 as float32, I64 as int64)', (t) => {
  const why = pythonMissing(['torch', 'json']);
  if (why) return t.skip(why);
  const dir = mkdtempSync(join(tmpdir(), 'io-st-py-'));
  try {
    const p = join(dir, 'w.safetensors');
    writeSafetensorsFile(p, sample());
    // A reader written from the format spec (the `safetensors` package is not installed here).
    const out = runPython(
      `
import json, struct, sys, torch
raw = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', raw[:8])
assert (8 + n) % 8 == 0
hdr = json.loads(raw[8:8 + n])
data = raw[8 + n:]
dt = {'F32': torch.float32, 'I64': torch.int64}
res = {}
for k, v in hdr.items():
    if k == '__metadata__': continue
    b, e = v['data_offsets']
    t = torch.frombuffer(bytearray(data[b:e]), dtype=dt[v['dtype']]) if e > b else torch.empty(0, dtype=dt[v['dtype']])
    t = t.reshape(v['shape'])
    res[k] = {'dtype': str(t.dtype), 'shape': list(t.shape), 'values': [repr(x) for x in t.reshape(-1).tolist()]}
print(json.dumps(res))
`,
      [p],
    );
    const res = JSON.parse(out) as Record<string, { dtype: string; shape: number[]; values: string[] }>;
    for (const [k, a] of sample()) {
      const r = res[k];
      assert.equal(r.dtype, a.dtype === 'I64' ? 'torch.int64' : 'torch.float32', `${k} dtype in PyTorch`);
      assert.deepEqual(r.shape, a.shape);
      const vals = r.values.map((s) => (s === 'nan' ? NaN : s === 'inf' ? Infinity : s === '-inf' ? -Infinity : Number(s)));
      assertSameValues(a.data, vals, `${k} as read by PyTorch`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// --- npy / npz ---------------------------------------------------------------------------------

test('npy: golden files of every dtype and format version (written by NumPy) read exactly', () => {
  const names = Object.keys(expected).filter((k) => k.endsWith('.npy'));
  assert.ok(names.length >= 14);
  for (const name of names) {
    const e = expected[name] as Rec | { error: string };
    const bytes = readFileSync(join(GOLDEN, name));
    if ('error' in e) throwsFormat(() => readNpy(bytes), new RegExp(e.error as string));
    else checkRecord(readNpy(bytes), e, name);
  }
});

test('npy: fortran order and big-endian are refused with a clear message', () => {
  throwsFormat(() => readNpy(readFileSync(join(GOLDEN, 'fortran.npy'))), /fortran_order=True .* not supported; save np\.ascontiguousarray/);
  throwsFormat(() => readNpy(readFileSync(join(GOLDEN, 'bigendian.npy'))), /big-endian dtype '>f4' is not supported/);
});

test('npy: round trip of F32 and I64 arrays of every rank, header aligned to 64 bytes', () => {
  const cases: NamedArray[] = [
    { dtype: 'F32', shape: [], data: Float32Array.from([3.5]) },
    { dtype: 'F32', shape: [0], data: new Float32Array(0) },
    { dtype: 'F32', shape: [5], data: Float32Array.from([1, -2, NaN, Infinity, 1e-45]) },
    { dtype: 'F32', shape: [2, 3, 4], data: Float32Array.from({ length: 24 }, (_, i) => i / 3) },
    { dtype: 'I64', shape: [3], data: Float32Array.from([-1, 0, 2 ** 24]) },
    { dtype: 'F16', shape: [1, 1], data: Float32Array.from([0.25]) },
  ];
  for (const a of cases) {
    const bytes = writeNpy(a);
    const hlen = new DataView(bytes.buffer).getUint16(8, true);
    assert.equal((10 + hlen) % 64, 0);
    assert.equal(bytes[10 + hlen - 1], 0x0a);
    const b = readNpy(bytes);
    assert.equal(b.dtype, a.dtype === 'I64' ? 'I64' : 'F32');
    assert.deepEqual(b.shape, a.shape);
    assertSameValues(b.data, [...a.data], `shape [${a.shape}]`);
  }
});

/** An .npy file with a hand-written header and `dataLen` zero bytes of data. */
function npy(header: string, dataLen: number, version = 1): Uint8Array {
  const pre = version === 1 ? 10 : 12;
  const out = new Uint8Array(pre + header.length + dataLen);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[pre + i] = header.charCodeAt(i);
  return out;
}

test('npy: malformed headers and sizes give one-line FormatErrors', () => {
  const h = (shape: string, descr = '<f4', extra = '') => `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, ${extra}}\n`;
  assert.deepEqual(readNpy(npy(h('(2, 3)'), 24)).shape, [2, 3]);
  assert.deepEqual(readNpy(npy(h('(2L, 3L)'), 24)).shape, [2, 3]);
  throwsFormat(() => readNpy(new TextEncoder().encode('PK\x03\x04 not npy')), /not a \.npy file/);
  throwsFormat(() => readNpy(npy(h('(1,)'), 4, 4)), /unsupported format version 4\.0/);
  throwsFormat(() => readNpy(npy(h('(2, 3)'), 20)), /shape \(2, 3\) of <f4 needs 24 data bytes, file has 20/);
  throwsFormat(() => readNpy(npy(h('(2, 3)'), 28)), /needs 24 data bytes, file has 28/);
  throwsFormat(() => readNpy(npy(h('(1099511627776, 1099511627776)'), 4)), /too large/);
  throwsFormat(() => readNpy(npy(h('(99999999999999999999,)'), 4)), /integer 99999999999999999999 is too large/);
  throwsFormat(() => readNpy(npy(h('(-1,)'), 4)), /invalid dimension -1/);
  throwsFormat(() => readNpy(npy(h('[2, 3]'), 24)), /shape is not a tuple/);
  throwsFormat(() => readNpy(npy(h('(2,)', '<U3'), 24)), /unsupported dtype '<U3'/);
  throwsFormat(() => readNpy(npy(h('(2,)', '<f4', "'x': 1, "), 8)), /header keys/);
  throwsFormat(() => readNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } trailing", 8)), /bad header \(trailing characters/);
  throwsFormat(() => readNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,", 8)), /bad header/);
  throwsFormat(() => readNpy(npy('['.repeat(100), 0)), /nesting too deep/);
  const short = npy(h('(1,)'), 4);
  new DataView(short.buffer).setUint16(8, 60000, true);
  throwsFormat(() => readNpy(short), /header length 60000 runs past the end/);
  const big = npy(h('(1,)'), 4, 2);
  new DataView(big.buffer).setUint32(8, 0xffffffff, true);
  throwsFormat(() => readNpy(big), /header length 4294967295 exceeds/);
});

test('npy: file helpers round trip and name the file in errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'io-npy-'));
  try {
    const p = join(dir, 'x.npy');
    writeNpyFile(p, { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) });
    assertSameValues(readNpyFile(p).data, [1, 2], 'x.npy');
    assert.deepEqual(readdirSync(dir), ['x.npy']);
    writeFileSync(p, 'junk');
    throwsFormat(() => readNpyFile(p), /x\.npy: npy: not a \.npy file/);
    assert.throws(() => readNpyFile(join(dir, 'missing.npy')), /cannot read .*missing\.npy: no such file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('npz: golden np.savez and np.savez_compressed archives read exactly', () => {
  for (const name of ['savez.npz', 'savez_compressed.npz']) {
    const m = readNpz(readFileSync(join(GOLDEN, name)));
    const exp = expected[name] as Record<string, Rec>;
    assert.deepEqual([...m.keys()].sort(), Object.keys(exp).sort());
    for (const [k, e] of Object.entries(exp)) checkRecord(m.get(k), e, `${name}:${k}`);
  }
});

test('npz: round trip, stored and compressed', () => {
  for (const compress of [false, true]) {
    const m = sample();
    const back = readNpz(writeNpz(m, { compress }));
    assert.deepEqual([...back.keys()], [...m.keys()]);
    for (const [k, a] of m) assertSameValues(back.get(k)!.data, [...a.data], `${k} (compress ${compress})`);
  }
});

test('npy/npz: NumPy loads what we write (values exact, int64 stays int64)', (t) => {
  const why = pythonMissing(['numpy']);
  if (why) return t.skip(why);
  const dir = mkdtempSync(join(tmpdir(), 'io-np-py-'));
  try {
    const m = sample();
    writeFileSync(join(dir, 'a.npy'), writeNpy(m.get('conv1.weight')!));
    writeFileSync(join(dir, 'b.npy'), writeNpy(m.get('steps')!));
    writeFileSync(join(dir, 'c.npz'), writeNpz(m));
    writeFileSync(join(dir, 'd.npz'), writeNpz(m, { compress: true }));
    const out = runPython(
      `
import json, sys, os, numpy as np
d = sys.argv[1]
def rec(a): return {'dtype': a.dtype.str, 'shape': list(a.shape), 'values': [repr(float(x)) for x in a.reshape(-1)]}
res = {'a': rec(np.load(os.path.join(d, 'a.npy'))), 'b': rec(np.load(os.path.join(d, 'b.npy')))}
for f in ['c', 'd']:
    z = np.load(os.path.join(d, f + '.npz'))
    res[f] = {k: rec(z[k]) for k in z.files}
print(json.dumps(res))
`,
      [dir],
    );
    const res = JSON.parse(out);
    const num = (s: string) => (s === 'nan' ? NaN : s === 'inf' ? Infinity : s === '-inf' ? -Infinity : Number(s));
    assert.equal(res.a.dtype, '<f4');
    assert.deepEqual(res.a.shape, [2, 1, 3, 3]);
    assertSameValues(m.get('conv1.weight')!.data, res.a.values.map(num), 'a.npy in NumPy');
    assert.equal(res.b.dtype, '<i8');
    assertSameValues(m.get('steps')!.data, res.b.values.map(num), 'b.npy in NumPy');
    for (const f of ['c', 'd']) {
      assert.deepEqual(Object.keys(res[f]).sort(), [...m.keys()].sort());
      for (const [k, a] of m) {
        assert.equal(res[f][k].dtype, a.dtype === 'I64' ? '<i8' : '<f4');
        assertSameValues(a.data, res[f][k].values.map(num), `${f}.npz:${k} in NumPy`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readArrays recognises safetensors, npy, npz and pth by content; npy folders round trip', () => {
  const m = sample();
  const dir = mkdtempSync(join(tmpdir(), 'io-any-'));
  try {
    assert.equal(detectFormat(writeSafetensors(m)), 'safetensors');
    assert.equal(detectFormat(writeNpz(m)), 'npz');
    assert.equal(detectFormat(writeNpy(m.get('fc.bias')!)), 'npy');
    assert.equal(detectFormat(readFileSync(join(GOLDEN, 'tensors.pth'))), 'pth');
    assert.equal(detectFormat(readFileSync(join(GOLDEN, 'tensors_legacy.pth'))), 'pth');
    throwsFormat(() => detectFormat(new TextEncoder().encode('hello world')), /unrecognised file format/);
    for (const bytes of [writeSafetensors(m), writeNpz(m)]) {
      const back = readArrays(bytes);
      assert.deepEqual([...back.keys()], [...m.keys()]);
      for (const [k, a] of m) assertSameValues(back.get(k)!.data, [...a.data], k);
    }
    writeFileSync(join(dir, 'bias.npy'), writeNpy(m.get('fc.bias')!));
    assert.deepEqual([...readArraysFile(join(dir, 'bias.npy')).keys()], ['bias']);
    assert.equal(readArraysFile(join(GOLDEN, 'checkpoint.pth')).size, 7);
    const folder = join(dir, 'weights');
    writeNpyFolder(folder, m);
    const back = readNpyFolder(folder);
    assert.deepEqual([...back.keys()].sort(), [...m.keys()].sort());
    for (const [k, a] of m) assertSameValues(back.get(k)!.data, [...a.data], `${k} via folder`);
    assert.throws(() => writeNpyFolder(folder, new Map([['../escape', m.get('fc.bias')!]])), /cannot write tensor "\.\.\/escape" as a file name/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
