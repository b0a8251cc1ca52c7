// PyTorch .pth: the bounded zip reader, the restricted unpickler, and readPth on golden files
// (test/io-golden, scripts/make_io_golden.py) and on checkpoints PyTorch writes at test time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { UnsafePickleError } from '../src/base/errors.js';
import { readPth } from '../src/io/pth.js';
import { readPthFile } from '../src/io/files.js';
import { PyDict, PyTuple, type PyValue, unpickle } from '../src/io/pickle.js';
import { ZipReader, crc32 } from '../src/io/zip.js';
import { assertSameValues, pythonMissing, runPython, throwsFormat } from './io-util.js';

const GOLDEN = new URL('./io-golden/', import.meta.url).pathname;
const expected = JSON.parse(readFileSync(join(GOLDEN, 'expected.json'), 'utf8'));
type Rec = { dtype: string; shape: number[]; values: number[] };

// --- zip -----------------------------------------------------------------------------------------

test('zip: reads stored and deflated entries written by fflate, CRC-32 checked', () => {
  const a = new TextEncoder().encode('hello '.repeat(1000));
  const b = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7919) & 255);
  const z = zipSync({ 'x/a.txt': [a, { level: 9 }], 'x/b.bin': [b, { level: 0 }] });
  const r = new ZipReader(z);
  assert.deepEqual(
    r.entries.map((e) => [e.name, e.method]),
    [
      ['x/a.txt', 8],
      ['x/b.bin', 0],
    ],
  );
  assert.deepEqual(r.read('x/a.txt'), a);
  assert.deepEqual(r.read('x/b.bin'), b);
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  throwsFormat(() => r.read('nope'), /no entry named "nope"/);
  const bad = z.slice();
  bad[r.get('x/b.bin')!.dataOffset + 10] ^= 1;
  throwsFormat(() => new ZipReader(bad).read('x/b.bin'), /CRC-32 mismatch/);
});

// --- pickle --------------------------------------------------------------------------------------

/** Plain JSON-ish view of an unpickled value, for comparisons. */
function plain(v: PyValue): unknown {
  if (v instanceof PyTuple) return { tuple: v.items.map(plain) };
  if (v instanceof PyDict) return Object.fromEntries([...v.map].map(([k, x]) => [String(k), plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (typeof v === 'bigint') return { int: v.toString() };
  return v;
}

test('pickle: hand-written protocol 2 program (memo, marks, tuples, dict, list, longs)', () => {
  // {'a': [1, -2, 3.5, None, True], 'b': ('x', 2**64), 'c': <memo of the list>}
  const p = [
    0x80, 2, 0x7d, 0x71, 0, 0x28, 0x58, 1, 0, 0, 0, 0x61, 0x5d, 0x71, 1, 0x28, 0x4b, 1, 0x4a, 0xfe, 0xff, 0xff, 0xff, 0x47, 0x40, 0x0c, 0, 0, 0, 0, 0, 0, 0x4e,
    0x88, 0x65, 0x58, 1, 0, 0, 0, 0x62, 0x8c, 1, 0x78, 0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x86, 0x58, 1, 0, 0, 0, 0x63, 0x68, 1, 0x75, 0x2e,
  ];
  const { value, end } = unpickle(Uint8Array.from(p));
  assert.equal(end, p.length);
  assert.deepEqual(plain(value), { a: [1, -2, 3.5, null, true], b: { tuple: ['x', { int: '18446744073709551616' }] }, c: [1, -2, 3.5, null, true] });
  const d = value as PyDict;
  assert.equal(d.map.get('a'), d.map.get('c'), 'memo returns the same object');
});

test('pickle: every protocol 0-5 that Python writes decodes to the same value', (t) => {
  const why = pythonMissing(['pickle']);
  if (why) return t.skip(why);
  const out = runPython(`
import pickle, collections, json
obj = {'ints': [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**63, -2**70], 'floats': [0.5, -1e300, 1e-300],
       'strs': ['', 'abc', 'x' * 300], 'bytes': b'\\x00\\xffab', 'tuple': (1, (2, 3), ()), 'none': None, 'bools': [True, False],
       'nested': {'k': [{'z': 1}]}, 'od': collections.OrderedDict([('p', 1), ('q', [2])]), 3: 'intkey'}
print(json.dumps([pickle.dumps(obj, protocol=p).hex() for p in range(6)]))
`);
  const hexes = JSON.parse(out) as string[];
  const want = {
    ints: [0, 1, -1, 255, 256, 65535, 65536, -(2 ** 31), 2 ** 31, { int: (2n ** 63n).toString() }, { int: (-(2n ** 70n)).toString() }],
    floats: [0.5, -1e300, 1e-300],
    strs: ['', 'abc', 'x'.repeat(300)],
    bytes: { bytes: [0, 255, 97, 98] },
    tuple: { tuple: [1, { tuple: [2, 3] }, { tuple: [] }] },
    none: null,
    bools: [true, false],
    nested: { k: [{ z: 1 }] },
    od: { p: 1, q: [2] },
    3: 'intkey',
  };
  hexes.forEach((hex, proto) => {
    const bytes = Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
    assert.deepEqual(plain(unpickle(bytes, { source: `protocol ${proto}` }).value), want, `protocol ${proto}`);
  });
});

// --- .pth golden files ---------------------------------------------------------------------------

function checkAgainst(m: Map<string, { dtype: string; shape: number[]; data: Float32Array }>, exp: Record<string, Rec>, what: string): void {
  assert.deepEqual([...m.keys()].sort(), Object.keys(exp).sort(), `${what}: keys`);
  for (const [k, e] of Object.entries(exp)) {
    const a = m.get(k)!;
    assert.equal(a.dtype, e.dtype, `${what}:${k} dtype`);
    assert.deepEqual(a.shape, e.shape, `${what}:${k} shape`);
    assertSameValues(a.data, e.values, `${what}:${k}`);
  }
}

test('pth: golden zip, legacy and protocol-4 files: every dtype, views, offsets, strides (exact)', () => {
  for (const f of ['tensors.pth', 'tensors_legacy.pth', 'tensors_p4.pth']) {
    checkAgainst(readPth(readFileSync(join(GOLDEN, f))), expected[f], f);
  }
});

test('pth: a wrapped DataParallel checkpoint gives the state dict with "module." stripped', () => {
  const p = join(GOLDEN, 'checkpoint.pth');
  checkAgainst(readPthFile(p), expected['checkpoint.pth'], 'checkpoint.pth');
  const raw = readPth(readFileSync(p), { stripModulePrefix: false });
  assert.ok([...raw.keys()].every((k) => k.startsWith('module.')));
  assert.equal(readPth(readFileSync(p), { key: 'state_dict' }).size, raw.size);
  throwsFormat(() => readPth(readFileSync(p), { key: 'optimizer' }), /no state dict under key "optimizer" \(top level: a dict with keys "epoch", "arch"/);
});

test('pth: a pickled whole module is refused, naming the class (like weights_only=True)', () => {
  throwsFormat(
    () => readPthFile(join(GOLDEN, 'whole_module.pth')),
    /whole_module\.pth: pth whole_module\/data\.pkl: refused global torch\.nn\.modules\.container\.Sequential/,
    UnsafePickleError,
  );
});

test('pth: inconsistent storages, wrong-size storage data and out-of-range views are FormatErrors', () => {
  const r = new ZipReader(readFileSync(join(GOLDEN, 'tensors.pth')));
  const files = (): Record<string, Uint8Array> => Object.fromEntries(r.entries.map((e) => [e.name, new Uint8Array(r.read(e))]));
  const pkl = r.read('tensors/data.pkl');
  const text = [...pkl].map((b) => String.fromCharCode(b)).join('');
  const patch = (needle: string, at: number, value: number): Uint8Array => {
    const i = text.indexOf(needle);
    assert.ok(i > 0, `found ${JSON.stringify(needle)} in data.pkl`);
    const p = new Uint8Array(pkl); // a copy (a Buffer's slice would be a view)
    p[i + at] = value;
    return zipSync({ ...files(), 'tensors/data.pkl': p }, { level: 0 });
  };
  // 'transposed' and 'strided' share one 24-element storage: shrink its numel in one place only.
  throwsFormat(() => readPth(patch('K\x18tq', 1, 20)), /storage "\w+" is declared with two different types or sizes/);
  // 'offset_view' is shared[3:7]: (storage, 3, (4,), (1,)); move its offset to 7 so it ends at 10 of 10.
  throwsFormat(
    () => readPth(patch('QK\x03K\x04\x85', 2, 7)),
    /tensor "offset_view" \(size \[4\], stride \[1\], offset 7\) reaches past its 10-element storage/,
  );
  // Truncate the data of the f32 storage (the first persistent id, key "0"... whatever key it has).
  const f = files();
  const key = r.entries.find((e) => e.name.startsWith('tensors/data/') && e.size === 24)!.name;
  f[key] = f[key].subarray(0, 20);
  throwsFormat(() => readPth(zipSync(f, { level: 0 })), /storage "\w+" has 20 bytes, expected 24 \(6 x F32\)/);
});

// --- real checkpoints written by PyTorch at test time -----------------------------------------

test('pth: torchvision resnet18, a wrapped DataParallel resnext50_32x4d, fp16/bf16/fp64/int64 and transposed tensors match PyTorch exactly', (t) => {
  const why = pythonMissing(['torch', 'torchvision']);
  if (why) return t.skip(why);
  const dir = mkdtempSync(join(tmpdir(), 'io-pth-'));
  try {
    runPython(
      `
import collections, json, os, sys, numpy as np, torch, torchvision
d = sys.argv[1]
torch.manual_seed(0)
manifest = {}
def expect(name, sd):
    entries, off = [], 0
    with open(os.path.join(d, name + '.expected'), 'wb') as f:
        for k, v in sd.items():
            a = v.detach().float().contiguous().numpy().astype('<f4')
            f.write(a.tobytes())
            entries.append([k, str(v.dtype), list(v.shape), off])
            off += a.size
    manifest[name] = entries
r18 = torchvision.models.resnet18().state_dict()
torch.save(r18, os.path.join(d, 'resnet18.pth'))
expect('resnet18.pth', r18)
rx = torchvision.models.resnext50_32x4d().state_dict()
wrapped = collections.OrderedDict(('module.' + k, v) for k, v in rx.items())
wrapped._metadata = rx._metadata
torch.save({'epoch': 90, 'arch': 'resnext50_32x4d', 'best_acc1': torch.tensor(77.6), 'state_dict': wrapped,
            'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1, 'params': list(range(3))}]}},
           os.path.join(d, 'resnext.pth'))
expect('resnext.pth', rx)
base = torch.randn(7, 5, dtype=torch.float64)
mixed = collections.OrderedDict([('half', torch.randn(3, 4).half()), ('double', base), ('bf16', torch.randn(6).bfloat16()),
    ('transposed', torch.randn(3, 5).t()), ('double_t', base.t()[1:, ::2]), ('steps', torch.tensor(2**40 + 3)),
    ('weight', torch.nn.Parameter(torch.randn(2, 2)))])
torch.save(mixed, os.path.join(d, 'mixed.pth'))
expect('mixed.pth', mixed)
json.dump(manifest, open(os.path.join(d, 'manifest.json'), 'w'))
`,
      [dir],
      300_000,
    );
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, [string, string, number[], number][]>;
    const torchToOurs: Record<string, string> = {
      'torch.float32': 'F32',
      'torch.float16': 'F16',
      'torch.bfloat16': 'BF16',
      'torch.float64': 'F64',
      'torch.int64': 'I64',
    };
    for (const [file, entries] of Object.entries(manifest)) {
      const t0 = performance.now();
      const m = readPthFile(join(dir, file));
      const ms = performance.now() - t0;
      const ref = readFileSync(join(dir, `${file}.expected`));
      const refF32 = new Float32Array(ref.buffer, ref.byteOffset, ref.byteLength / 4);
      assert.deepEqual(
        [...m.keys()],
        entries.map((e) => e[0]),
        `${file}: key order`,
      );
      for (const [name, dtype, shape, off] of entries) {
        const a = m.get(name)!;
        assert.equal(a.dtype, torchToOurs[dtype], `${file}:${name} dtype`);
        assert.deepEqual(a.shape, shape, `${file}:${name} shape`);
        const want = refF32.subarray(off, off + a.data.length);
        for (let i = 0; i < want.length; i++) {
          if (a.data[i] !== want[i]) assert.fail(`${file}:${name}: element ${i} is ${a.data[i]}, PyTorch has ${want[i]}`);
        }
      }
      t.diagnostic(`${file}: ${m.size} tensors read in ${ms.toFixed(0)} ms`);
    }
    assert.equal(manifest['resnet18.pth'].length, 122);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pth: a TorchScript archive is refused with a hint to save a state dict', (t) => {
  const why = pythonMissing(['torch']);
  if (why) return t.skip(why);
  const dir = mkdtempSync(join(tmpdir(), 'io-jit-'));
  try {
    const p = join(dir, 'scripted.pt');
    runPython('import sys, torch; torch.jit.save(torch.jit.script(torch.nn.Linear(2, 3)), sys.argv[1])', [p]);
    throwsFormat(
      () => readPthFile(p),
      /refused global __torch__\..*\(a TorchScript archive: save model\.state_dict\(\) with torch\.save instead\)/,
      UnsafePickleError,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
