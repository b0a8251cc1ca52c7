// PyTorch .pth/.pt reader, through the restricted unpickler: never runs code, and writer
// (writePth: the zip format of torch.save, loadable by torch.load(..., weights_only=True)). Reads
//  - the zip format of torch.save (<archive>/data.pkl + <archive>/data/<key> storages),
//  - the legacy format (_use_new_zipfile_serialization=False): five pickles, then the storages,
//  - {"state_dict": ...} / {"model": ...} wrappers and a DataParallel "module." prefix,
//  - storage offsets and strides (non-contiguous views become contiguous copies),
//  - every storage type, converted to float32 with the stored dtype recorded.
// Browser-safe.
import { FormatError, UnsafePickleError } from '../base/errors.js';
import { type ArrayMap, DTYPE_SIZE, checkArray, decodeLE, encodeLE, writtenDType } from './types.js';
import {
  type PyValue,
  type UnpickleLimits,
  PickleWriter,
  PyDict,
  PyGlobal,
  PyTuple,
  STORAGE_DTYPES,
  StorageRef,
  TensorRef,
  describe,
  unpickle,
} from './pickle.js';
import { type ZipLimits, ZipReader, writeZipStored } from './zip.js';

export interface PthOptions {
  /** Take the state dict from this top-level key instead of guessing. */
  key?: string;
  /** Strip a "module." prefix carried by every key (DataParallel). Default true. */
  stripModulePrefix?: boolean;
  zipLimits?: Partial<ZipLimits>;
  pickleLimits?: Partial<UnpickleLimits>;
}

/** Keys under which checkpoints commonly keep the model weights, in order of preference. */
const WRAPPER_KEYS = ['state_dict', 'model_state_dict', 'model', 'net', 'network', 'module', 'weights', 'params'];

/** Most elements that stride-0 views may add beyond their storages, over the whole file. */
const MAX_EXPANDED = 1 << 26;
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

export interface PthObject {
  /** The unpickled object (dicts, lists, tuples, TensorRefs, primitives). */
  root: PyValue;
  /** The raw little-endian bytes of a storage. */
  storageBytes(ref: StorageRef): Uint8Array;
}

/** Read a .pth file into named float32 arrays (its state dict). */
export function readPth(bytes: Uint8Array, opts: PthOptions = {}): ArrayMap {
  const obj = readPthObject(bytes, opts);
  const { dict, where } = findStateDict(obj.root, opts.key);
  let names = [...dict.map.keys()] as string[];
  const strip = (opts.stripModulePrefix ?? true) && names.every((n) => n.startsWith('module.'));
  const refs = names.map((n) => dict.map.get(n) as TensorRef);
  if (strip) names = names.map((n) => n.slice('module.'.length));
  // Decode each storage once; hand it over without a copy when one tensor uses all of it.
  const uses = new Map<string, number>();
  for (const r of refs) uses.set(r.storage.key, (uses.get(r.storage.key) ?? 0) + 1);
  const decoded = new Map<string, Float32Array>();
  const out: ArrayMap = new Map();
  const budget = { expanded: 0 };
  names.forEach((name, i) => {
    const t = refs[i];
    const s = t.storage;
    let data = decoded.get(s.key);
    if (!data) {
      data = decodeLE(s.dtype, obj.storageBytes(s), s.numel);
      decoded.set(s.key, data);
    }
    const view = viewOf(t, data, `${where}"${name}"`, uses.get(s.key) === 1, budget);
    out.set(name, { dtype: s.dtype, shape: [...t.size], data: view });
  });
  return out;
}

/** Unpickle a .pth file (zip or legacy) without materialising any tensor. */
export function readPthObject(bytes: Uint8Array, opts: PthOptions = {}): PthObject {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    return readZipPth(bytes, opts);
  }
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5) return readLegacyPth(bytes, opts);
  throw new FormatError('pth: not a PyTorch file (neither a torch.save zip nor a legacy pickle)');
}

function readZipPth(bytes: Uint8Array, opts: PthOptions): PthObject {
  const zip = new ZipReader(bytes, opts.zipLimits);
  const pkls = zip.entries.filter((e) => /^([^/]*\/)?data\.pkl$/.test(e.name));
  if (pkls.length !== 1) {
    throw new FormatError(pkls.length ? 'pth: several data.pkl entries in the zip' : 'pth: zip has no data.pkl (not a torch.save file)');
  }
  const prefix = pkls[0].name.slice(0, -'data.pkl'.length);
  if (zip.has(prefix + 'byteorder')) {
    const order = new TextDecoder().decode(zip.read(prefix + 'byteorder'));
    if (order !== 'little') throw new FormatError(`pth: byteorder "${order.slice(0, 20)}" is not supported`);
  }
  const refs = new Map<string, StorageRef>();
  let value: PyValue;
  try {
    value = unpickle(zip.read(pkls[0]), {
      source: `pth ${pkls[0].name}`,
      limits: opts.pickleLimits,
      persistentLoad: (pid) => storageFromPid(pid, refs, false),
    }).value;
  } catch (e) {
    if (e instanceof UnsafePickleError && zip.has(prefix + 'constants.pkl')) {
      throw new UnsafePickleError(`${e.message} (a TorchScript archive: save model.state_dict() with torch.save instead)`);
    }
    throw withHint(e);
  }
  return {
    root: value,
    storageBytes(ref) {
      const name = `${prefix}data/${ref.key}`;
      const e = zip.get(name);
      if (!e) throw new FormatError(`pth: storage "${ref.key}" missing from the zip (${name})`);
      const need = ref.numel * DTYPE_SIZE[ref.dtype];
      if (e.size !== need) throw new FormatError(`pth: storage "${ref.key}" has ${e.size} bytes, expected ${need} (${ref.numel} x ${ref.dtype})`);
      return zip.read(e);
    },
  };
}

function readLegacyPth(bytes: Uint8Array, opts: PthOptions): PthObject {
  const src = 'pth (legacy format)';
  const base = { limits: opts.pickleLimits, source: src };
  const magic = unpickle(bytes, base);
  if (magic.value !== LEGACY_MAGIC) throw new FormatError(`${src}: bad magic number (not a torch.save file)`);
  const proto = unpickle(bytes, { ...base, start: magic.end });
  if (proto.value !== LEGACY_PROTOCOL) throw new FormatError(`${src}: unsupported protocol version ${String(proto.value).slice(0, 20)}`);
  const sys = unpickle(bytes, { ...base, start: proto.end });
  if (sys.value instanceof PyDict && sys.value.map.get('little_endian') === false) {
    throw new FormatError(`${src}: big-endian files are not supported`);
  }
  const refs = new Map<string, StorageRef>();
  let main;
  try {
    main = unpickle(bytes, { ...base, start: sys.end, persistentLoad: (pid) => storageFromPid(pid, refs, true) });
  } catch (e) {
    throw withHint(e);
  }
  const keys = unpickle(bytes, { ...base, start: main.end });
  const list = keys.value;
  if (!Array.isArray(list) || !list.every((k) => typeof k === 'string')) throw new FormatError(`${src}: storage key list is malformed`);
  // Then each storage in that order: an int64 element count and the raw bytes.
  const data = new Map<string, Uint8Array>();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keys.end;
  for (const key of list as string[]) {
    const ref = refs.get(key);
    if (!ref) throw new FormatError(`${src}: storage "${key}" is listed but never used`);
    if (pos + 8 > bytes.length) throw new FormatError(`${src}: truncated before storage "${key}"`);
    const count = dv.getUint32(pos + 4, true) * 4294967296 + dv.getUint32(pos, true);
    const n = count * DTYPE_SIZE[ref.dtype];
    if (count !== ref.numel || pos + 8 + n > bytes.length) {
      throw new FormatError(`${src}: storage "${key}" has a bad size (${count} elements, expected ${ref.numel})`);
    }
    data.set(key, bytes.subarray(pos + 8, pos + 8 + n));
    pos += 8 + n;
  }
  return {
    root: main.value,
    storageBytes(ref) {
      const b = data.get(ref.key);
      if (!b) throw new FormatError(`${src}: storage "${ref.key}" has no data`);
      return b;
    },
  };
}

/**
 * The refusal of a global the unpickler does not allow, with what the user most likely saved:
 * quantized tensors (qint8 storages, _rebuild_qtensor) or a whole pickled model (a class).
 */
function withHint(e: unknown): unknown {
  if (!(e instanceof UnsafePickleError)) return e;
  const m = /refused global ([\w.]+)/.exec(e.message);
  if (!m) return e;
  const q = m[1];
  if (/^torch\.(_utils\._rebuild_qtensor|Q\w*Storage|per_\w+_affine|q(u)?int\w*)$/.test(q)) {
    return new UnsafePickleError(
      `${e.message} (quantized tensors: resnet-ts reads float weights; save the float model's state_dict, before quantization, or each tensor's .dequantize())`,
    );
  }
  if (/\.[A-Z]\w*$/.test(q) && !q.startsWith('torch._utils.')) {
    return new UnsafePickleError(`${e.message} (a whole pickled model, torch.save(model): save its weights with torch.save(model.state_dict(), path) instead)`);
  }
  return e;
}

/** ('storage', <torch.XStorage>, key, location, numel[, view_metadata]) -> StorageRef. */
function storageFromPid(pid: PyValue, refs: Map<string, StorageRef>, legacy: boolean): StorageRef {
  const items = pid instanceof PyTuple ? pid.items : null;
  if (!items || items[0] !== 'storage') {
    if (items && items[0] === 'module') throw new UnsafePickleError('pth: refused a pickled module class (save model.state_dict() instead)');
    throw new FormatError('pth: unsupported persistent id');
  }
  const [, type, key, location, numel, view] = items;
  if (!(type instanceof PyGlobal) || !Object.prototype.hasOwnProperty.call(STORAGE_DTYPES, type.name)) {
    throw new FormatError(`pth: persistent id names ${describe(type)}, not a storage type`);
  }
  if (typeof key !== 'string' || typeof location !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
    throw new FormatError('pth: malformed storage persistent id');
  }
  if (legacy && view !== undefined && view !== null) throw new FormatError(`pth: storage views (storage "${key}") are not supported`);
  const dtype = STORAGE_DTYPES[type.name];
  const old = refs.get(key);
  if (old) {
    if (old.dtype !== dtype || old.numel !== numel) throw new FormatError(`pth: storage "${key}" is declared with two different types or sizes`);
    return old;
  }
  const ref = new StorageRef(key, dtype, numel, location);
  refs.set(key, ref);
  return ref;
}

function isStateDict(v: PyValue | undefined): v is PyDict {
  if (!(v instanceof PyDict) || v.map.size === 0) return false;
  for (const [k, t] of v.map) if (typeof k !== 'string' || !(t instanceof TensorRef)) return false;
  return true;
}

/** The dict of tensors: the root itself, the one under a known wrapper key, or the only one. */
function findStateDict(root: PyValue, key?: string): { dict: PyDict; where: string } {
  if (key !== undefined) {
    const v = root instanceof PyDict ? root.map.get(key) : undefined;
    if (isStateDict(v)) return { dict: v, where: `["${key}"]` };
    throw new FormatError(`pth: no state dict under key "${key}" (top level: ${topLevel(root)})`);
  }
  if (isStateDict(root)) return { dict: root, where: '' };
  if (root instanceof PyDict) {
    for (const k of WRAPPER_KEYS) {
      const v = root.map.get(k);
      if (isStateDict(v)) return { dict: v, where: `["${k}"]` };
    }
    const found = [...root.map].filter(([, v]) => isStateDict(v));
    if (found.length === 1) return { dict: found[0][1] as PyDict, where: `["${String(found[0][0])}"]` };
  }
  throw new FormatError(`pth: no state dict (a dict of tensors) found; top level: ${topLevel(root)}`);
}

function topLevel(root: PyValue): string {
  if (!(root instanceof PyDict)) return describe(root);
  const keys = [...root.map.keys()].map((k) => JSON.stringify(typeof k === 'bigint' ? k.toString() : k));
  return `a dict with keys ${keys.slice(0, 12).join(', ')}${keys.length > 12 ? ', …' : ''}`;
}

/** The tensor's elements in row-major order, bounds-checked against its storage. */
function viewOf(t: TensorRef, storage: Float32Array, what: string, exclusive: boolean, budget: { expanded: number }): Float32Array {
  const { size, stride, offset } = t;
  let numel = 1;
  let last = offset;
  for (let d = 0; d < size.length; d++) {
    numel *= size[d];
    last += (size[d] - 1) * stride[d];
  }
  if (numel === 0) return new Float32Array(0);
  // Only a stride-0 (expanded) view has more elements than its storage; cap what that may cost.
  if (numel > storage.length) {
    budget.expanded += numel - storage.length;
    if (!Number.isSafeInteger(numel) || budget.expanded > MAX_EXPANDED) {
      throw new FormatError(
        `pth: tensor ${what} expands its ${storage.length}-element storage to ${numel} elements (more than the ${MAX_EXPANDED}-element limit)`,
      );
    }
  }
  if (last >= storage.length) {
    throw new FormatError(
      `pth: tensor ${what} (size [${size.join(', ')}], stride [${stride.join(', ')}], offset ${offset}) reaches past its ${storage.length}-element storage`,
    );
  }
  // Contiguous row-major?
  let contiguous = true;
  for (let d = size.length - 1, s = 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== s) contiguous = false;
    s *= size[d];
  }
  if (contiguous) {
    if (exclusive && offset === 0 && numel === storage.length) return storage;
    return storage.slice(offset, offset + numel);
  }
  const out = new Float32Array(numel);
  const nd = size.length;
  const idx = new Array<number>(nd).fill(0);
  let src = offset;
  for (let i = 0; i < numel; i++) {
    out[i] = storage[src];
    for (let d = nd - 1; d >= 0; d--) {
      if (++idx[d] < size[d]) {
        src += stride[d];
        break;
      }
      src -= (size[d] - 1) * stride[d];
      idx[d] = 0;
    }
  }
  return out;
}

export interface WritePthOptions {
  /** The folder every entry sits in: torch.save uses the file's stem (1.13) or 'archive' (2.x). */
  archiveName?: string;
}

/**
 * A state dict as torch.save(OrderedDict) writes it: a zip of stored entries, 64-byte aligned,
 * <archive>/data.pkl (pickle protocol 2, one storage per tensor, `_rebuild_tensor_v2` with
 * contiguous strides), <archive>/byteorder ("little"), <archive>/data/<i> (raw little-endian
 * bytes) and <archive>/version ("3"). Values are written as float32, I64 entries
 * (num_batches_tracked) as int64, as the other writers do. torch.load(f, weights_only=True)
 * returns the OrderedDict; the pickle is byte for byte what PyTorch 1.13's pickler writes for it.
 */
export function writePth(arrays: ArrayMap, opts: WritePthOptions = {}): Uint8Array {
  const dir = opts.archiveName ?? 'archive';
  if (!/^[\w.-]+$/.test(dir)) throw new FormatError(`pth: archive name "${dir}" must be letters, digits, '_', '-' or '.'`);
  const p = new PickleWriter();
  p.global('collections', 'OrderedDict');
  const hooksClass = 0; // memo index of the OrderedDict global, reused for every tensor's backward hooks
  p.bytes(0x29, 0x52).put(); // EMPTY_TUPLE REDUCE: OrderedDict()
  const storages: Uint8Array[] = [];
  const names = [...arrays.keys()];
  // CPython batches dict items by 1000: MARK k v k v ... SETITEMS, or k v SETITEM for one.
  for (let b = 0; b < names.length; b += 1000) {
    const batch = names.slice(b, b + 1000);
    if (batch.length > 1) p.mark();
    for (const name of batch) {
      const a = arrays.get(name)!;
      checkArray(name, a);
      const dtype = writtenDType(a);
      const key = String(storages.length);
      storages.push(encodeLE(dtype, a.data, name));
      p.str(name);
      p.global('torch._utils', '_rebuild_tensor_v2');
      p.mark(); // args: (storage, offset, size, stride, requires_grad, backward_hooks)
      p.mark()
        .str('storage')
        .global('torch', dtype === 'I64' ? 'LongStorage' : 'FloatStorage')
        .str(key)
        .str('cpu')
        .int(a.data.length);
      p.bytes(0x74).put(); // TUPLE: the persistent id
      p.bytes(0x51); // BINPERSID
      p.int(0).intTuple(a.shape).intTuple(contiguousStrides(a.shape));
      p.bytes(0x89); // NEWFALSE: requires_grad
      p.get(hooksClass).bytes(0x29, 0x52).put(); // OrderedDict()
      p.bytes(0x74).put(); // TUPLE
      p.bytes(0x52).put(); // REDUCE
    }
    if (batch.length > 1)
      p.bytes(0x75); // SETITEMS
    else p.bytes(0x73); // SETITEM
  }
  const enc = new TextEncoder();
  const entries: [string, Uint8Array][] = [
    [`${dir}/data.pkl`, p.finish()],
    [`${dir}/byteorder`, enc.encode('little')],
  ];
  storages.forEach((b, i) => entries.push([`${dir}/data/${i}`, b]));
  entries.push([`${dir}/version`, enc.encode('3\n')]);
  return writeZipStored(entries);
}

function contiguousStrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  for (let d = shape.length - 1, s = 1; d >= 0; d--) {
    st[d] = s;
    s *= Math.max(shape[d], 1); // as torch: a zero-size dim does not zero the outer strides
  }
  return st;
}
