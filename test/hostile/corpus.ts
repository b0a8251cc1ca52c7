// The hostile corpus, built byte by byte: pickles that would run commands (each payload would
// create `marker`), absurd nesting and sizes, broken and bomb zips, lying safetensors and .npy
// headers. test/io-hostile.test.ts feeds every case to every reader; scripts/make_hostile.py
// adds payloads produced by Python's own pickler (test/hostile/py/).
import { deflateSync } from 'fflate';

export type ReaderName = 'pickle' | 'pth' | 'zip' | 'npz' | 'safetensors' | 'npy';

export interface HostileCase {
  name: string;
  bytes: Uint8Array;
  /** The reader this file targets, and the error it must raise there. */
  reader: ReaderName;
  expect: RegExp;
  /** true: must be an UnsafePickleError (a refused global or call), not just a FormatError. */
  unsafe?: boolean;
}

// --- bytes -----------------------------------------------------------------------------------

type B = number[];
const enc = new TextEncoder();
const ascii = (s: string): B => [...enc.encode(s)];
const le32 = (n: number): B => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const le16 = (n: number): B => [n & 255, (n >>> 8) & 255];
const le64 = (n: number): B => [...le32(n % 2 ** 32), ...le32(Math.floor(n / 2 ** 32))];
const cat = (...parts: (B | Uint8Array)[]): Uint8Array => {
  const out: number[] = [];
  for (const p of parts) for (const x of p) out.push(x);
  return Uint8Array.from(out);
};

// --- pickle opcodes --------------------------------------------------------------------------

const MARK = 0x28,
  STOP = 0x2e,
  TUPLE = 0x74,
  TUPLE1 = 0x85,
  REDUCE = 0x52,
  DICT_EMPTY = 0x7d,
  SETITEMS = 0x75;
const PROTO = (v: number): B => [0x80, v];
const GLOBAL = (m: string, n: string): B => [0x63, ...ascii(`${m}\n${n}\n`)];
const STR = (s: string): B => {
  const b = ascii(s);
  return [0x58, ...le32(b.length), ...b];
};
const SSTR = (s: string): B => {
  const b = ascii(s);
  return [0x8c, b.length, ...b];
};
const INT = (n: number): B => (n >= -(2 ** 31) && n < 2 ** 31 ? [0x4a, ...le32(n)] : [0x8a, 8, ...le64(n)]); // BININT or LONG1
const TUP = (...items: B[]): B => [MARK, ...items.flat(), TUPLE];

/** A torch state-dict pickle: {name: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}. */
export function tensorPickle(
  tensors: { name: string; type?: string; key: string; numel: number; offset: number; size: number[]; stride: number[] }[],
): Uint8Array {
  const body: B = [];
  for (const t of tensors) {
    body.push(
      ...STR(t.name),
      ...GLOBAL('torch._utils', '_rebuild_tensor_v2'),
      MARK,
      ...TUP(STR('storage'), GLOBAL('torch', t.type ?? 'FloatStorage'), STR(t.key), STR('cpu'), INT(t.numel)),
      0x51,
      ...INT(t.offset),
      ...TUP(...t.size.map(INT)),
      ...TUP(...t.stride.map(INT)),
      0x89,
      ...GLOBAL('collections', 'OrderedDict'),
      0x29,
      REDUCE,
      TUPLE,
      REDUCE,
    );
  }
  return cat(PROTO(2), [DICT_EMPTY, MARK], body, [SETITEMS, STOP]);
}

// --- a zip writer with every field under our control -----------------------------------------

export interface RawEntry {
  name: string;
  data: Uint8Array; // bytes as stored (already deflated when method is 8)
  method?: number;
  size?: number; // declared uncompressed size (default data.length)
  crc?: number;
  flags?: number;
  localOffset?: number; // override in the central directory
  csize?: number; // override of the compressed size in the central directory
}

export function rawZip(entries: RawEntry[], opts: { cdOffsetDelta?: number; count?: number } = {}): Uint8Array {
  const locals: B = [];
  const central: B = [];
  for (const e of entries) {
    const name = ascii(e.name);
    const off = locals.length;
    const size = e.size ?? e.data.length;
    const crc = e.crc ?? crc32(e.data);
    const common = (csize: number) => [
      ...le16(20),
      ...le16(e.flags ?? 0),
      ...le16(e.method ?? 0),
      0,
      0,
      0x21,
      0,
      ...le32(crc),
      ...le32(csize),
      ...le32(size),
      ...le16(name.length),
      ...le16(0),
    ];
    for (const x of [...le32(0x04034b50), ...common(e.data.length), ...name]) locals.push(x);
    for (const x of e.data) locals.push(x);
    central.push(
      ...le32(0x02014b50),
      ...le16(20),
      ...common(e.csize ?? e.data.length),
      ...le16(0),
      ...le16(0),
      ...le16(0),
      ...le32(0),
      ...le32(e.localOffset ?? off),
      ...name,
    );
  }
  const eocd = [
    ...le32(0x06054b50),
    0,
    0,
    0,
    0,
    ...le16(opts.count ?? entries.length),
    ...le16(opts.count ?? entries.length),
    ...le32(central.length),
    ...le32(locals.length + (opts.cdOffsetDelta ?? 0)),
    0,
    0,
  ];
  return cat(locals, central, eocd);
}

let table: number[] | null = null;
function crc32(d: Uint8Array): number {
  if (!table) {
    table = [];
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table.push(c >>> 0);
    }
  }
  let c = 0xffffffff;
  for (const x of d) c = table[(c ^ x) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const pthZip = (pkl: Uint8Array, storages: Record<string, Uint8Array> = {}): Uint8Array =>
  rawZip([{ name: 'archive/data.pkl', data: pkl }, ...Object.entries(storages).map(([k, d]) => ({ name: `archive/data/${k}`, data: d }))]);

// --- safetensors / npy -------------------------------------------------------------------------

function safetensors(header: string, data: number, headerLen?: number): Uint8Array {
  const h = ascii(header);
  return cat(le64(headerLen ?? h.length), h, new Uint8Array(data));
}

function npy(header: string, data: number, version = 1, headerLen?: number): Uint8Array {
  const h = ascii(header);
  const len = headerLen ?? h.length;
  return cat([0x93, ...ascii('NUMPY'), version, 0], version === 1 ? le16(len) : le32(len), h, new Uint8Array(data));
}

// --- the corpus --------------------------------------------------------------------------------

export function hostileCases(marker: string): HostileCase[] {
  const cmd = `touch '${marker}'`;
  const py = `__import__('os').system("touch '${marker}'")`;
  const refused = (g: string) => new RegExp(`refused global ${g.replace(/[.]/g, '\\.')}`);
  const cases: HostileCase[] = [];
  const add = (c: HostileCase) => cases.push(c);

  // Code execution through every route a pickle has to a callable.
  const reduceSystem = cat(PROTO(2), GLOBAL('posix', 'system'), STR(cmd), [TUPLE1, REDUCE, STOP]);
  add({ name: 'reduce-posix-system.pkl', bytes: reduceSystem, reader: 'pickle', expect: refused('posix.system'), unsafe: true });
  add({
    name: 'reduce-os-system-p0.pkl',
    bytes: cat(GLOBAL('os', 'system'), [MARK], ascii(`V${cmd}\n`), [TUPLE, REDUCE, STOP]),
    reader: 'pickle',
    expect: refused('os.system'),
    unsafe: true,
  });
  add({
    name: 'stack-global-eval.pkl',
    bytes: cat(PROTO(4), SSTR('builtins'), SSTR('eval'), [0x93], SSTR(py), [TUPLE1, REDUCE, STOP]),
    reader: 'pickle',
    expect: refused('builtins.eval'),
    unsafe: true,
  });
  add({
    name: 'stack-global-exec-memo.pkl',
    bytes: cat(PROTO(4), SSTR('builtins'), [0x94], SSTR('exec'), [0x94, 0x93], SSTR(py), [TUPLE1, REDUCE, STOP]),
    reader: 'pickle',
    expect: refused('builtins.exec'),
    unsafe: true,
  });
  add({
    name: 'import-getattr-chain.pkl',
    bytes: cat(
      PROTO(2),
      GLOBAL('builtins', 'getattr'),
      GLOBAL('builtins', '__import__'),
      STR('os'),
      [TUPLE1, REDUCE],
      STR('system'),
      [0x86, REDUCE],
      STR(cmd),
      [TUPLE1, REDUCE, STOP],
    ),
    reader: 'pickle',
    expect: refused('builtins.getattr'),
    unsafe: true,
  });
  add({
    name: 'py2-builtin-eval.pkl',
    bytes: cat(GLOBAL('__builtin__', 'eval'), [MARK], ascii(`V${py}\n`), [TUPLE, REDUCE, STOP]),
    reader: 'pickle',
    expect: refused('__builtin__.eval'),
    unsafe: true,
  });
  add({
    name: 'inst-os-system.pkl',
    bytes: cat([MARK], ascii(`V${cmd}\n`), [0x69], ascii('os\nsystem\n'), [STOP]),
    reader: 'pickle',
    expect: refused('os.system'),
    unsafe: true,
  });
  add({
    name: 'obj-subprocess.pkl',
    bytes: cat([MARK], GLOBAL('subprocess', 'check_call'), STR('sh'), STR('-c'), STR(cmd), [0x6f, STOP]),
    reader: 'pickle',
    expect: refused('subprocess.check_call'),
    unsafe: true,
  });
  add({
    name: 'newobj-popen.pkl',
    bytes: cat(PROTO(2), GLOBAL('subprocess', 'Popen'), [MARK], STR('sh'), STR('-c'), STR(cmd), [TUPLE, TUPLE1, 0x81, STOP]),
    reader: 'pickle',
    expect: refused('subprocess.Popen'),
    unsafe: true,
  });
  add({
    name: 'reconstructor.pkl',
    bytes: cat(PROTO(2), GLOBAL('copyreg', '_reconstructor'), [MARK], GLOBAL('os', 'system'), [TUPLE, REDUCE, STOP]),
    reader: 'pickle',
    expect: refused('copyreg._reconstructor'),
    unsafe: true,
  });
  add({
    name: 'torch-load-nested.pkl',
    bytes: cat(PROTO(2), GLOBAL('torch', 'load'), STR('/tmp/x'), [TUPLE1, REDUCE, STOP]),
    reader: 'pickle',
    expect: refused('torch.load'),
    unsafe: true,
  });
  add({
    name: 'global-name-injection.pkl',
    bytes: cat(PROTO(2), [0x8c, 12], ascii('collections'), [0x20], [0x8c, 11], ascii('OrderedDict'), [0x93, 0x29, REDUCE, STOP]),
    reader: 'pickle',
    expect: /refused global collections \.OrderedDict/,
    unsafe: true,
  });
  add({
    name: 'build-setstate-on-global.pkl',
    bytes: cat(PROTO(2), GLOBAL('collections', 'OrderedDict'), [DICT_EMPTY], STR('__reduce__'), GLOBAL('torch', 'FloatStorage'), [0x73, 0x62, STOP]),
    reader: 'pickle',
    expect: /refused BUILD \(setstate\) on collections\.OrderedDict/,
    unsafe: true,
  });
  add({
    name: 'build-setstate-on-list.pkl',
    bytes: cat(PROTO(2), [0x5d, DICT_EMPTY, 0x62, STOP]),
    reader: 'pickle',
    expect: /refused BUILD \(setstate\) on a list/,
    unsafe: true,
  });
  add({
    name: 'call-storage-class.pkl',
    bytes: cat(PROTO(2), GLOBAL('torch', 'FloatStorage'), INT(10), [TUPLE1, REDUCE, STOP]),
    reader: 'pickle',
    expect: /refused call of torch\.FloatStorage/,
    unsafe: true,
  });
  add({
    name: 'codecs-misuse.pkl',
    bytes: cat(PROTO(2), GLOBAL('_codecs', 'encode'), STR('x'), STR('rot13'), [0x86, REDUCE, STOP]),
    reader: 'pickle',
    expect: /only _codecs\.encode\(str, 'latin1'\)/,
  });
  add({ name: 'ext1.pkl', bytes: cat(PROTO(2), [0x82, 1, STOP]), reader: 'pickle', expect: /refused extension code/, unsafe: true });
  // Type confusion: opcodes applied to the wrong kind of value.
  add({
    name: 'setitem-on-list.pkl',
    bytes: cat(PROTO(2), [0x5d, 0x4b, 1, 0x4b, 2, 0x73, STOP]),
    reader: 'pickle',
    expect: /SETITEM\(S\) on a value that is not a dict/,
  });
  add({
    name: 'setitems-on-string.pkl',
    bytes: cat(PROTO(2), SSTR('x'), [MARK, 0x4b, 1, 0x4b, 2, SETITEMS, STOP]),
    reader: 'pickle',
    expect: /SETITEM\(S\) on a value that is not a dict/,
  });
  add({
    name: 'append-on-dict.pkl',
    bytes: cat(PROTO(2), [DICT_EMPTY, 0x4b, 1, 0x61, STOP]),
    reader: 'pickle',
    expect: /APPEND\(S\) on a value that is not a list/,
  });
  add({
    name: 'reduce-on-int.pkl',
    bytes: cat(PROTO(2), [0x4b, 1, 0x29, REDUCE, STOP]),
    reader: 'pickle',
    expect: /call of a value that is not an allowed global/,
  });
  add({
    name: 'reduce-args-not-tuple.pkl',
    bytes: cat(PROTO(2), GLOBAL('collections', 'OrderedDict'), [0x5d, REDUCE, STOP]),
    reader: 'pickle',
    expect: /REDUCE arguments are not a tuple/,
  });
  add({
    name: 'rebuild-tensor-bad-args.pkl',
    bytes: cat(PROTO(2), GLOBAL('torch._utils', '_rebuild_tensor_v2'), TUP(INT(1), INT(2), INT(3), INT(4), INT(5), INT(6)), [REDUCE, STOP]),
    reader: 'pickle',
    expect: /first argument is not a storage/,
  });
  add({
    name: 'ordered-dict-bad-arg.pkl',
    bytes: cat(PROTO(2), GLOBAL('collections', 'OrderedDict'), INT(5), [TUPLE1, REDUCE, STOP]),
    reader: 'pickle',
    expect: /OrderedDict argument is not a list of pairs/,
  });
  add({
    name: 'stack-global-non-string.pkl',
    bytes: cat(PROTO(4), [0x4b, 1, 0x4b, 2, 0x93, STOP]),
    reader: 'pickle',
    expect: /STACK_GLOBAL needs two strings/,
  });
  add({ name: 'dict-key-list.pkl', bytes: cat(PROTO(2), [DICT_EMPTY, 0x5d, 0x4b, 1, 0x73, STOP]), reader: 'pickle', expect: /unsupported dict key type/ });
  add({ name: 'pop-mark-underflow.pkl', bytes: cat(PROTO(2), [0x31, STOP]), reader: 'pickle', expect: /no MARK to pop to/ });
  add({ name: 'persid-without-loader.pth', bytes: pthZip(cat(PROTO(2), SSTR('x'), [0x51, STOP])), reader: 'pth', expect: /unsupported persistent id/ });
  add({ name: 'reduce-in-torch-zip.pth', bytes: pthZip(reduceSystem), reader: 'pth', expect: refused('posix.system'), unsafe: true });
  add({ name: 'reduce-legacy.pth', bytes: reduceSystem, reader: 'pth', expect: refused('posix.system'), unsafe: true });
  add({
    name: 'module-persistent-id.pth',
    bytes: pthZip(cat(PROTO(2), TUP(STR('module'), STR('evil.py'), STR('import os')), [0x51, STOP])),
    reader: 'pth',
    expect: /refused a pickled module class/,
    unsafe: true,
  });

  // Nested and recursive structures, resource exhaustion.
  add({ name: 'mark-nesting.pkl', bytes: cat(PROTO(2), new Uint8Array(200_000).fill(MARK), [STOP]), reader: 'pickle', expect: /MARK nesting exceeds 1000/ });
  add({ name: 'stack-flood.pkl', bytes: cat(PROTO(2), new Uint8Array(120_000).fill(0x5d), [STOP]), reader: 'pickle', expect: /stack exceeds 100000 items/ });
  add({
    name: 'dup-flood.pkl',
    bytes: cat(PROTO(2), [0x5d], new Uint8Array(120_000).fill(0x32), [STOP]),
    reader: 'pickle',
    expect: /stack exceeds 100000 items/,
  });
  const deep = 90_000;
  add({
    name: 'deep-list.pth',
    bytes: pthZip(cat(PROTO(2), new Uint8Array(deep).fill(0x5d), new Uint8Array(deep - 1).fill(0x61), [STOP])),
    reader: 'pth',
    expect: /no state dict .* found; top level: a list/,
  });
  add({
    name: 'self-containing-list.pth',
    bytes: pthZip(cat(PROTO(2), [0x5d, 0x71, 0, 0x68, 0, 0x61, STOP])),
    reader: 'pth',
    expect: /no state dict .* found; top level: a list/,
  });
  add({
    name: 'self-containing-dict.pth',
    bytes: pthZip(cat(PROTO(2), [DICT_EMPTY, 0x71, 0], STR('state_dict'), [0x68, 0, 0x73, STOP])),
    reader: 'pth',
    expect: /no state dict .* found; top level: a dict with keys "state_dict"/,
  });
  // "billion laughs": 40 levels of lists holding 10 references to the level below.
  const laughs: B = [...PROTO(2), 0x5d, 0x71, 0, 0x30];
  for (let i = 1; i <= 40; i++) laughs.push(MARK, ...new Array(10).fill([0x68, i - 1]).flat(), 0x6c, 0x71, i, 0x30);
  laughs.push(0x68, 40, STOP);
  add({ name: 'billion-laughs.pth', bytes: pthZip(Uint8Array.from(laughs)), reader: 'pth', expect: /no state dict .* found; top level: a list/ });
  add({ name: 'huge-long4.pkl', bytes: cat(PROTO(2), [0x8b], le32(0x7fffffff), [STOP]), reader: 'pickle', expect: /integer of 2147483647 bytes exceeds/ });
  add({ name: 'huge-binunicode8.pkl', bytes: cat(PROTO(4), [0x8d], le64(2 ** 50), [STOP]), reader: 'pickle', expect: /truncated/ });
  add({ name: 'huge-binbytes.pkl', bytes: cat(PROTO(3), [0x42], le32(0xffffffff), [STOP]), reader: 'pickle', expect: /truncated/ });
  add({
    name: 'huge-frame.pkl',
    bytes: cat(PROTO(4), [0x95], [255, 255, 255, 255, 255, 255, 255, 255], [STOP]),
    reader: 'pickle',
    expect: /length out of range/,
  });
  add({ name: 'memo-miss.pkl', bytes: cat(PROTO(2), [0x6a], le32(0xfffffff0), [STOP]), reader: 'pickle', expect: /memo key 4294967280 not defined/ });
  add({ name: 'no-stop.pkl', bytes: cat(PROTO(2), [0x5d, 0x71, 0]), reader: 'pickle', expect: /truncated/ });
  add({
    name: 'float-backtrack.pkl',
    bytes: cat([0x46], new Uint8Array(100_000).fill(0x31), ascii('x\n'), [STOP]),
    reader: 'pickle',
    expect: /bad float literal/,
  });
  add({
    name: 'tensor-past-storage.pth',
    bytes: pthZip(tensorPickle([{ name: 'w', key: '0', numel: 4, offset: 2, size: [2, 2], stride: [2, 1] }]), { 0: new Uint8Array(16) }),
    reader: 'pth',
    expect: /tensor "w" .*reaches past its 4-element storage/,
  });
  add({
    name: 'tensor-stride0-expansion.pth',
    bytes: pthZip(tensorPickle([{ name: 'w', key: '0', numel: 1, offset: 0, size: [1 << 20, 1 << 20], stride: [0, 0] }]), { 0: new Uint8Array(4) }),
    reader: 'pth',
    expect: /expands its 1-element storage to 1099511627776 elements/,
  });
  add({
    name: 'storage-numel-lie.pth',
    bytes: pthZip(tensorPickle([{ name: 'w', key: '0', numel: 2 ** 40, offset: 0, size: [4], stride: [1] }]), { 0: new Uint8Array(16) }),
    reader: 'pth',
    expect: /storage "0" has 16 bytes, expected 4398046511104/,
  });
  add({
    name: 'storage-missing.pth',
    bytes: pthZip(tensorPickle([{ name: 'w', key: '../../etc/passwd', numel: 1, offset: 0, size: [1], stride: [1] }])),
    reader: 'pth',
    expect: /storage "\.\.\/\.\.\/etc\/passwd" missing from the zip/,
  });
  add({
    name: 'storage-not-a-storage-type.pth',
    bytes: pthZip(tensorPickle([{ name: 'w', type: 'Tensor', key: '0', numel: 1, offset: 0, size: [1], stride: [1] }]), { 0: new Uint8Array(4) }),
    reader: 'pth',
    expect: refused('torch.Tensor'),
    unsafe: true,
  });

  // Zips: bad offsets, lies, bombs.
  const good = rawZip([{ name: 'a.npy', data: new Uint8Array(100) }]);
  add({ name: 'zip-no-eocd.zip', bytes: cat(ascii('PK\x03\x04'), new Uint8Array(200)), reader: 'zip', expect: /end of central directory not found/ });
  add({
    name: 'zip-cd-past-end.zip',
    bytes: rawZip([{ name: 'a', data: new Uint8Array(10) }], { cdOffsetDelta: 1000 }),
    reader: 'zip',
    expect: /central directory .* runs past its end record/,
  });
  add({
    name: 'zip-local-offset-out.zip',
    bytes: rawZip([{ name: 'a', data: new Uint8Array(10), localOffset: 0x7ffffff0 }]),
    reader: 'zip',
    expect: /local header offset 2147483632 is outside the entry area/,
  });
  add({
    name: 'zip-local-offset-wrong.zip',
    bytes: rawZip([
      { name: 'a', data: new Uint8Array(40) },
      { name: 'b', data: new Uint8Array(40), localOffset: 5 },
    ]),
    reader: 'zip',
    expect: /no local header at offset 5/,
  });
  add({
    name: 'zip-data-overrun.zip',
    bytes: rawZip([{ name: 'a', data: new Uint8Array(10), size: 10000, csize: 10000 }]),
    reader: 'zip',
    expect: /"a": data \(offset 31, 10000 bytes\) runs past the entry area/,
  });
  add({
    name: 'zip-overlapping-entries.zip',
    bytes: rawZip([
      { name: 'a', data: new Uint8Array(64) },
      { name: 'b', data: new Uint8Array(64), localOffset: 0 },
    ]),
    reader: 'zip',
    expect: /entries "a" and "b" overlap/,
  });
  add({
    name: 'zip-entry-count-lie.zip',
    bytes: rawZip([{ name: 'a', data: new Uint8Array(4) }], { count: 60000 }),
    reader: 'zip',
    expect: /cannot hold 60000 entries/,
  });
  add({
    name: 'zip-encrypted.zip',
    bytes: rawZip([{ name: 'a', data: new Uint8Array(4), flags: 1 }]),
    reader: 'zip',
    expect: /encrypted entries are not supported/,
  });
  add({
    name: 'zip-method-bzip2.zip',
    bytes: rawZip([{ name: 'a', data: new Uint8Array(4), method: 12 }]),
    reader: 'zip',
    expect: /unsupported compression method 12/,
  });
  add({ name: 'zip-bad-crc.zip', bytes: rawZip([{ name: 'a', data: new Uint8Array(4), crc: 1234 }]), reader: 'zip', expect: /CRC-32 mismatch/ });
  add({
    name: 'zip-duplicate-name.zip',
    bytes: rawZip([
      { name: 'a', data: new Uint8Array(4) },
      { name: 'a', data: new Uint8Array(4) },
    ]),
    reader: 'zip',
    expect: /duplicate entry name/,
  });
  const zeros = deflateSync(new Uint8Array(16 << 20), { level: 9 }); // 16 MiB of zeros in ~16 KB
  add({
    name: 'zip-bomb-size-lie.zip',
    bytes: rawZip([{ name: 'a.npy', data: zeros, method: 8, size: 1000 }]),
    reader: 'zip',
    expect: /inflates past its declared 1000 bytes/,
  });
  add({
    name: 'zip-bomb-ratio.zip',
    bytes: rawZip([{ name: 'a.npy', data: zeros.subarray(0, 1000), method: 8, size: 2 ** 31 - 16 }]),
    reader: 'zip',
    expect: /claims 2147483632 bytes from 1000 compressed/,
  });
  add({
    name: 'zip-bomb-too-big.zip',
    bytes: rawZip([{ name: 'a.npy', data: zeros, method: 8, size: 0xfffffff0 }]),
    reader: 'zip',
    expect: /size 4294967280 exceeds the limit/,
  });
  // Many central-directory entries sharing one deflated kernel (a non-recursive zip bomb).
  const kernel: RawEntry = { name: 'k', data: zeros, method: 8, size: 16 << 20, crc: 0 };
  const overlapping = [
    kernel,
    ...Array.from({ length: 50 }, (_, i): RawEntry => ({ ...kernel, name: `k${i}`, data: new Uint8Array(0), csize: zeros.length, localOffset: 0 })),
  ];
  add({ name: 'zip-bomb-overlap.zip', bytes: rawZip(overlapping), reader: 'zip', expect: /entries "k" and "k0" overlap/ });
  add({
    name: 'zip-corrupt-deflate.zip',
    bytes: rawZip([{ name: 'a', data: Uint8Array.from([0xff, 0xff, 0xff, 0xff]), method: 8, size: 10 }]),
    reader: 'zip',
    expect: /corrupt deflate data/,
  });
  add({
    name: 'npz-entry-not-npy.npz',
    bytes: rawZip([{ name: 'x.txt', data: enc.encode('hello') }]),
    reader: 'npz',
    expect: /entry "x\.txt" is not a \.npy file/,
  });
  add({
    name: 'npz-bad-member.npz',
    bytes: rawZip([{ name: 'x.npy', data: npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000,), }\n", 4) }]),
    reader: 'npz',
    expect: /npz entry "x\.npy": npy: shape \(1000000\) of <f4 needs 4000000 data bytes, file has 4/,
  });
  add({ name: 'zip-truncated.pth', bytes: good.subarray(0, good.length - 30), reader: 'pth', expect: /end of central directory not found|not a PyTorch file/ });

  // safetensors
  const t = (name: string, dtype: string, shape: number[], b: number | bigint, e: number | bigint) =>
    `"${name}":{"dtype":"${dtype}","shape":[${shape}],"data_offsets":[${b},${e}]}`;
  add({ name: 'st-huge-header.safetensors', bytes: safetensors('{}', 0, 2 ** 53), reader: 'safetensors', expect: /header length 9007199254740992 exceeds/ });
  add({ name: 'st-header-past-end.safetensors', bytes: safetensors('{}', 0, 99_999_999), reader: 'safetensors', expect: /runs past the end/ });
  add({
    name: 'st-overlap.safetensors',
    bytes: safetensors(`{${t('a', 'F32', [4], 0, 16)},${t('b', 'F32', [4], 8, 24)}}`, 24),
    reader: 'safetensors',
    expect: /tensor "b" overlaps tensor "a"/,
  });
  add({
    name: 'st-aliased.safetensors',
    bytes: safetensors(`{${t('a', 'F32', [4], 0, 16)},${t('b', 'F32', [4], 0, 16)}}`, 16),
    reader: 'safetensors',
    expect: /overlaps/,
  });
  add({
    name: 'st-out-of-range.safetensors',
    bytes: safetensors(`{${t('a', 'F32', [4], 0, 16)}}`, 8),
    reader: 'safetensors',
    expect: /run past the 8-byte data section/,
  });
  add({
    name: 'st-offset-overflow.safetensors',
    bytes: safetensors(`{${t('a', 'F32', [1], 18446744073709551612n, 18446744073709551616n)}}`, 4),
    reader: 'safetensors',
    expect: /invalid data_offsets/,
  });
  add({
    name: 'st-shape-overflow.safetensors',
    bytes: safetensors(`{${t('a', 'F32', [4294967296, 4294967296], 0, 0)}}`, 0),
    reader: 'safetensors',
    expect: /too large/,
  });
  add({
    name: 'st-many-dims.safetensors',
    bytes: safetensors(`{${t('a', 'F32', new Array(100000).fill(1), 0, 4)}}`, 4),
    reader: 'safetensors',
    expect: /shape has 100000 dimensions/,
  });
  add({ name: 'st-json-nesting.safetensors', bytes: safetensors('['.repeat(500_000), 0), reader: 'safetensors', expect: /not valid JSON/ });

  // npy
  const h = (shape: string, descr = '<f4') => `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }\n`;
  add({ name: 'npy-bad-magic.npy', bytes: cat([0x93], ascii('NUMPX\x01\x00'), [0, 0]), reader: 'npy', expect: /missing \\x93NUMPY magic/ });
  add({ name: 'npy-header-not-dict.npy', bytes: npy('[1, 2, 3]\n', 0), reader: 'npy', expect: /header is not a dict/ });
  add({
    name: 'npy-header-code.npy',
    bytes: npy(`{'descr': __import__('os').system("${cmd}"), 'fortran_order': False, 'shape': (1,), }\n`, 4),
    reader: 'npy',
    expect: /bad header \(unexpected token/,
  });
  add({ name: 'npy-unterminated.npy', bytes: npy("{'descr': '<f4', 'shape': (1,", 4), reader: 'npy', expect: /bad header/ });
  add({ name: 'npy-shape-overflow.npy', bytes: npy(h('(4294967296, 4294967296, 4294967296)'), 16), reader: 'npy', expect: /too large/ });
  add({ name: 'npy-shape-mismatch.npy', bytes: npy(h('(1000, 1000)'), 16), reader: 'npy', expect: /needs 4000000 data bytes, file has 16/ });
  add({ name: 'npy-huge-header-len.npy', bytes: npy(h('(1,)'), 4, 2, 0xfffffff0), reader: 'npy', expect: /header length 4294967280 exceeds/ });
  add({
    name: 'npy-paren-bomb.npy',
    bytes: npy(`{'descr': '<f4', 'fortran_order': False, 'shape': ${'('.repeat(50_000)}`, 0, 2),
    reader: 'npy',
    expect: /nesting too deep/,
  });
  add({ name: 'npy-object-dtype.npy', bytes: npy(h('(1,)', '|O'), 8), reader: 'npy', expect: /unsupported dtype '\|O'/ });

  return cases;
}
