// Hostile files and fuzzing. Every file of the corpus (test/hostile/corpus.ts, built here; and
// test/hostile/py/, made by Python's own pickler via scripts/make_hostile.py) goes to every
// reader: each must answer with a typed error (a FormatError subclass) or a value, within a
// second and without a memory blow-up, and no payload may run (a marker file stays absent).
// Then fast-check throws random and mutated bytes at each parser for a bounded number of runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { zipSync } from 'fflate';
import { FormatError, UnsafePickleError } from '../src/base/errors.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { readNpy, readNpz, writeNpz } from '../src/io/npy.js';
import { readPth } from '../src/io/pth.js';
import { readArrays } from '../src/io/detect.js';
import { unpickle } from '../src/io/pickle.js';
import { ZipReader } from '../src/io/zip.js';
import type { ArrayMap } from '../src/io/types.js';
import { type ReaderName, hostileCases, rawZip, tensorPickle } from './hostile/corpus.js';
import { pythonMissing, runPython, throwsFormat } from './io-util.js';

const HOSTILE = new URL('./hostile/', import.meta.url).pathname;
const GOLDEN = new URL('./io-golden/', import.meta.url).pathname;
const PY_MARKER = '/tmp/resnet-ts-hostile-marker';

const READERS: Record<ReaderName | 'any', (b: Uint8Array) => unknown> = {
  pickle: (b) => unpickle(b, { persistentLoad: (pid) => pid }),
  pth: (b) => readPth(b),
  zip: (b) => {
    const z = new ZipReader(b);
    for (const e of z.entries) z.read(e);
  },
  npz: (b) => readNpz(b),
  safetensors: (b) => readSafetensors(b),
  npy: (b) => readNpy(b),
  any: (b) => readArrays(b),
};

// a hang guard, not a speed check (the machine may be loaded): an inflated bomb or a runaway loop takes
// minutes or exhausts memory; a refused one takes milliseconds when the machine is quiet
const TIME_LIMIT_MS = 10_000;
const RSS_LIMIT = 512 * 2 ** 20;

/** Run fn; it may return or throw a FormatError (subclass). Anything else fails the test. */
function typedOrValue(fn: () => unknown, what: string): { error?: FormatError; ms: number; rss: number } {
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  let error: FormatError | undefined;
  try {
    fn();
  } catch (e) {
    if (!(e instanceof FormatError)) assert.fail(`${what}: threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}, not a FormatError`);
    error = e;
  }
  const ms = performance.now() - t0;
  const rss = process.memoryUsage().rss - rss0;
  assert.ok(ms < TIME_LIMIT_MS, `${what}: took ${ms.toFixed(0)} ms`);
  assert.ok(rss < RSS_LIMIT, `${what}: resident memory grew by ${(rss / 2 ** 20).toFixed(0)} MiB`);
  if (error) assert.ok(!error.message.includes('\n'), `${what}: message is not one line`);
  return { error, ms, rss };
}

function feedEverywhere(c: { name: string; bytes: Uint8Array; reader: ReaderName; expect: RegExp; unsafe?: boolean }): number {
  let slowest = 0;
  for (const [reader, fn] of Object.entries(READERS)) {
    const r = typedOrValue(() => fn(c.bytes), `${c.name} in ${reader}`);
    slowest = Math.max(slowest, r.ms);
    if (reader === c.reader) {
      assert.ok(r.error, `${c.name}: ${reader} accepted it`);
      assert.match(r.error.message, c.expect, `${c.name} in ${reader}`);
      if (c.unsafe) assert.ok(r.error instanceof UnsafePickleError, `${c.name}: ${r.error.name}, expected UnsafePickleError`);
    }
  }
  return slowest;
}

test('hostile corpus (built in TypeScript): typed error in its reader, every reader survives it without hanging (10 s guard), nothing runs', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'io-hostile-'));
  const marker = join(dir, 'pwned');
  try {
    const cases = hostileCases(marker);
    assert.ok(cases.length >= 60, `${cases.length} cases`);
    let slowest = 0;
    for (const c of cases) {
      slowest = Math.max(slowest, feedEverywhere(c));
      assert.equal(existsSync(marker), false, `${c.name}: the payload ran`);
    }
    t.diagnostic(`${cases.length} files x ${Object.keys(READERS).length} readers; slowest call ${slowest.toFixed(0)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hostile corpus (made by Python pickle, numpy, torch.save): refused, nothing runs', () => {
  rmSync(PY_MARKER, { force: true });
  const manifest = JSON.parse(readFileSync(join(HOSTILE, 'py', 'manifest.json'), 'utf8')) as Record<
    string,
    { reader: ReaderName; expect: string; unsafe?: boolean }
  >;
  assert.ok(Object.keys(manifest).length >= 30);
  for (const [name, m] of Object.entries(manifest)) {
    feedEverywhere({ name, bytes: readFileSync(join(HOSTILE, 'py', name)), reader: m.reader, expect: new RegExp(m.expect), unsafe: m.unsafe });
    assert.equal(existsSync(PY_MARKER), false, `${name}: the payload ran`);
  }
});

test("positive control: the same payloads do run in Python's pickle (so the marker check can fail)", (t) => {
  const why = pythonMissing(['pickle']);
  if (why) return t.skip(why);
  const dir = mkdtempSync(join(tmpdir(), 'io-hostile-ctl-'));
  try {
    const marker = join(dir, 'pwned');
    const c = hostileCases(marker).find((x) => x.name === 'stack-global-eval.pkl')!;
    const f = join(dir, 'payload.pkl');
    writeFileSync(f, c.bytes);
    throwsFormat(() => READERS.pickle(c.bytes), /refused global builtins\.eval/, UnsafePickleError);
    assert.equal(existsSync(marker), false);
    runPython('import pickle, sys; pickle.loads(open(sys.argv[1], "rb").read())', [f]);
    assert.equal(existsSync(marker), true, 'Python ran the payload');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('"__proto__" and "constructor" are plain tensor names (no prototype pollution)', () => {
  const h = '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"constructor":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
  const b = new Uint8Array(8 + h.length + 8);
  new DataView(b.buffer).setUint32(0, h.length, true);
  b.set(new TextEncoder().encode(h), 8);
  const m = readSafetensors(b);
  assert.deepEqual([...m.keys()].sort(), ['__proto__', 'constructor']);
  assert.equal(({} as Record<string, unknown>).dtype, undefined);
});

test('limits are enforced and configurable (memo, stack, zip entries and total size)', () => {
  const puts = Uint8Array.from([0x80, 2, 0x5d, ...Array.from({ length: 11 }, (_, i) => [0x71, i]).flat(), 0x2e]);
  assert.ok(Array.isArray(unpickle(puts).value));
  throwsFormat(() => unpickle(puts, { limits: { maxMemo: 10 } }), /memo exceeds 10 entries/);
  throwsFormat(() => unpickle(Uint8Array.from([0x80, 2, 0x5d, 0x5d, 0x5d, 0x2e]), { limits: { maxStack: 2 } }), /stack exceeds 2 items/);
  const z = rawZip([
    { name: 'a', data: new Uint8Array(600) },
    { name: 'b', data: new Uint8Array(600) },
  ]);
  assert.equal(new ZipReader(z).entries.length, 2);
  throwsFormat(() => new ZipReader(z, { maxEntries: 1 }), /2 entries exceed the limit of 1/);
  throwsFormat(() => new ZipReader(z, { maxTotalSize: 1000 }), /total uncompressed size exceeds the limit of 1000 bytes/);
  throwsFormat(() => new ZipReader(z, { maxEntrySize: 500 }), /"a": size 600 exceeds the limit of 500 bytes/);
});

// --- fuzzing -----------------------------------------------------------------------------------

const RUNS = 300;
const SEED = 20261122;

function sampleMap(): ArrayMap {
  return new Map([
    ['conv.weight', { dtype: 'F32', shape: [2, 1, 2, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }],
    ['bn.num_batches_tracked', { dtype: 'I64', shape: [], data: Float32Array.from([3]) }],
    ['fc.bias', { dtype: 'F32', shape: [3], data: Float32Array.from([0.5, -0.5, 2]) }],
  ]);
}

/** Mutate a valid file: flip some bytes, maybe truncate, maybe append junk. */
const mutated = (seeds: Uint8Array[]) =>
  fc
    .record({
      seed: fc.constantFrom(...seeds),
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      tail: fc.uint8Array({ maxLength: 16 }),
    })
    .map(({ seed, flips, cut, tail }) => {
      const b = new Uint8Array(seed);
      for (const [i, v] of flips) b[i % b.length] = v;
      const c = cut === undefined ? b : b.subarray(0, cut % (b.length + 1));
      const out = new Uint8Array(c.length + tail.length);
      out.set(c);
      out.set(tail, c.length);
      return out;
    });

function fuzz(name: string, arb: fc.Arbitrary<Uint8Array>, read: (b: Uint8Array) => unknown): void {
  fc.assert(
    fc.property(arb, (b) => {
      typedOrValue(() => read(b), `${name} (${b.length} bytes)`);
    }),
    { numRuns: RUNS, seed: SEED },
  );
}

test(`fuzz safetensors: random, mutated and structured headers (${RUNS} runs each), only typed errors`, { timeout: 120_000 }, () => {
  const valid = writeSafetensors(sampleMap(), { format: 'pt' });
  fuzz('random', fc.uint8Array({ maxLength: 300 }), readSafetensors);
  fuzz('mutated', mutated([valid, readFileSync(join(GOLDEN, 'dtypes.safetensors'))]), readSafetensors);
  const entry = fc.record({
    dtype: fc.constantFrom('F32', 'F16', 'BF16', 'I64', 'U8', 'BOOL', 'X9', 'U32'),
    shape: fc.array(fc.oneof(fc.nat(6), fc.integer(), fc.double()), { maxLength: 4 }),
    data_offsets: fc.oneof(fc.tuple(fc.nat(64), fc.nat(64)), fc.array(fc.integer(), { maxLength: 3 })),
  });
  const header = fc.dictionary(fc.string({ maxLength: 6 }), entry, { maxKeys: 4 });
  fuzz(
    'structured',
    fc.tuple(header, fc.nat(64)).map(([h, n]) => {
      const j = new TextEncoder().encode(JSON.stringify(h));
      const b = new Uint8Array(8 + j.length + n);
      new DataView(b.buffer).setUint32(0, j.length, true);
      b.set(j, 8);
      return b;
    }),
    (b) => {
      const m = readSafetensors(b);
      for (const [k, a] of m)
        assert.equal(
          a.data.length,
          a.shape.reduce((x, y) => x * y, 1),
          `${k}: data fits shape`,
        );
    },
  );
});

test(`fuzz npy: random, mutated and structured headers (${RUNS} runs each), only typed errors`, { timeout: 120_000 }, () => {
  const seeds = ['f32.npy', 'f16.npy', 'i64.npy', 'bool.npy', 'v2.npy', 'v3.npy', 'scalar.npy'].map((f) => readFileSync(join(GOLDEN, f)));
  fuzz(
    'random',
    fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, ...b])),
    readNpy,
  );
  fuzz('mutated', mutated(seeds), readNpy);
  const token = fc.constantFrom(
    "'descr'",
    "'<f4'",
    "'|b1'",
    "'>i8'",
    "'fortran_order'",
    'False',
    'True',
    "'shape'",
    '(',
    ')',
    '[',
    ']',
    '{',
    '}',
    ',',
    ':',
    ' ',
    '2',
    '-1',
    '99999999999',
    'None',
    "'",
    '\\',
  );
  fuzz(
    'structured',
    fc.tuple(fc.array(token, { maxLength: 30 }), fc.nat(64)).map(([ts, n]) => {
      const h = `{'descr': '<f4', 'fortran_order': False, 'shape': ${ts.join('')}}\n`;
      const b = new Uint8Array(10 + h.length + n);
      b.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 255, h.length >> 8]);
      for (let i = 0; i < h.length; i++) b[10 + i] = h.charCodeAt(i);
      return b;
    }),
    readNpy,
  );
});

test(`fuzz zip / npz / pth containers: random and mutated archives (${RUNS} runs each), only typed errors`, { timeout: 120_000 }, () => {
  const pths = ['tensors.pth', 'tensors_legacy.pth', 'tensors_p4.pth', 'checkpoint.pth'].map((f) => readFileSync(join(GOLDEN, f)));
  const npzs = [writeNpz(sampleMap()), writeNpz(sampleMap(), { compress: true }), readFileSync(join(GOLDEN, 'savez_compressed.npz'))];
  fuzz(
    'random zip',
    fc.uint8Array({ maxLength: 400 }).map((b) => Uint8Array.from([0x50, 0x4b, 0x03, 0x04, ...b])),
    READERS.zip,
  );
  fuzz('mutated npz', mutated(npzs), READERS.npz);
  fuzz('mutated pth', mutated(pths), READERS.pth);
  fuzz('mutated anything', mutated([...pths, ...npzs]), READERS.any);
});

test(`fuzz the unpickler: random opcode programs and mutated torch pickles (${RUNS} runs each), only typed errors`, { timeout: 120_000 }, () => {
  const sstr = (s: string) => [0x8c, s.length, ...new TextEncoder().encode(s)].slice(0, 2 + s.length);
  const glob = (m: string, n: string) => [0x63, ...new TextEncoder().encode(`${m}\n${n}\n`)];
  // Weighted towards pushing values so that programs get past the first few opcodes.
  const op = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(0x28, 0x4e, 0x88, 0x5d, 0x29, 0x7d).map((x) => [x]) },
    fc
      .constantFrom(
        0x28,
        0x30,
        0x31,
        0x32,
        0x4e,
        0x88,
        0x89,
        0x5d,
        0x29,
        0x7d,
        0x6c,
        0x74,
        0x85,
        0x86,
        0x87,
        0x64,
        0x61,
        0x65,
        0x73,
        0x75,
        0x52,
        0x62,
        0x51,
        0x93,
        0x94,
        0x81,
        0x6f,
        0x2e,
        0x8f,
        0x97,
      )
      .map((x) => [x]),
    { weight: 3, arbitrary: fc.nat(255).map((n) => [0x4b, n]) },
    { weight: 2, arbitrary: fc.nat(6).map((n) => [0x68, n]) },
    fc.nat(6).map((n) => [0x71, n]),
    fc.double().map((d) => {
      const b = new Uint8Array(9);
      b[0] = 0x47;
      new DataView(b.buffer).setFloat64(1, d);
      return [...b];
    }),
    {
      weight: 2,
      arbitrary: fc.constantFrom('storage', 'cpu', '0', 'collections', 'OrderedDict', 'torch', 'FloatStorage', 'os', 'system', 'module.x').map(sstr),
    },
    fc.constantFrom(
      glob('collections', 'OrderedDict'),
      glob('torch._utils', '_rebuild_tensor_v2'),
      glob('torch', 'FloatStorage'),
      glob('torch._utils', '_rebuild_parameter'),
      glob('_codecs', 'encode'),
      glob('torch', 'Size'),
      glob('numpy', 'dtype'),
      glob('os', 'system'),
    ),
  );
  // Memo slots 0-6 hold a list, dict, tuple, str, int, OrderedDict and a global, so BINGETs hit.
  const preamble = [
    0x80,
    2,
    0x5d,
    0x71,
    0,
    0x30,
    0x7d,
    0x71,
    1,
    0x30,
    0x29,
    0x71,
    2,
    0x30,
    ...sstr('a'),
    0x71,
    3,
    0x30,
    0x4b,
    7,
    0x71,
    4,
    0x30,
    ...glob('collections', 'OrderedDict'),
    0x29,
    0x52,
    0x71,
    5,
    0x30,
    ...glob('torch', 'FloatStorage'),
    0x71,
    6,
    0x30,
  ];
  const program = fc.array(op, { maxLength: 60 }).map((ops) => Uint8Array.from([...preamble, ...ops.flat(), 0x2e]));
  fuzz('opcode programs', program, READERS.pickle);
  fuzz(
    'opcode programs in a torch zip',
    program.map((p) => zipSync({ 'archive/data.pkl': p, 'archive/data/0': new Uint8Array(64) }, { level: 0 })),
    READERS.pth,
  );
  const pkls = ['tensors.pth', 'checkpoint.pth', 'tensors_p4.pth'].map((f) => {
    const z = new ZipReader(readFileSync(join(GOLDEN, f)));
    return new Uint8Array(z.read(z.entries.find((e) => e.name.endsWith('data.pkl'))!));
  });
  fuzz('mutated torch pickles', mutated([...pkls, tensorPickle([{ name: 'w', key: '0', numel: 4, offset: 0, size: [2, 2], stride: [2, 1] }])]), READERS.pickle);
  const storages = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`archive/data/${i}`, new Uint8Array(96)]));
  fuzz(
    'mutated torch pickles in a zip',
    mutated(pkls).map((p) => zipSync({ 'archive/data.pkl': p, ...storages }, { level: 0 })),
    READERS.pth,
  );
});
