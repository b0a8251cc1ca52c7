// A restricted unpickler (protocols 0-5), the equivalent of PyTorch's weights_only=True. It
// builds only primitives, str/bytes, lists, tuples, dicts and the values of a short allow-list
// of globals (OrderedDict, torch's tensor/parameter rebuilders, storage types, torch.Size, a
// numpy scalar); any other global, extension code or out-of-band buffer is an
// UnsafePickleError naming it. Nothing is ever called: the "callables" are our own small
// functions. Stack, memo, mark depth and int sizes are capped. Browser-safe.
import { FormatError, UnsafePickleError } from '../base/errors.js';
import type { DType } from './types.js';

// --- values -----------------------------------------------------------------------------------

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

export type PyKey = string | number | bigint | boolean | null;

export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
  /** Instance attributes set by BUILD (an OrderedDict's _metadata, for example). */
  attrs: PyDict | null = null;
  constructor(readonly ordered = false) {}
}

/** A reference to an allowed global (a class or function we emulate). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A storage named by a persistent id; its bytes live outside the pickle. */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
    readonly location: string,
  ) {}
}

/** A tensor view onto a storage, as _rebuild_tensor_v2 describes it. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}

/** numpy.dtype as pickled (only the simple numeric kinds). */
export class NumpyDType {
  constructor(
    public descr: string,
    public order = '<',
  ) {}
}

export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PyGlobal | StorageRef | TensorRef | NumpyDType;

// --- the allow-list ---------------------------------------------------------------------------

/** torch storage classes -> element type. */
export const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  UntypedStorage: 'U8',
};

type Handler = (args: PyValue[], what: string) => PyValue;

const ALLOWED: Record<string, Handler | null> = {
  // null: may be referenced (e.g. as a storage type in a persistent id) but not called.
  'collections.OrderedDict': (args, what) => {
    const d = new PyDict(true);
    if (args.length > 1) throw new FormatError(`${what}: OrderedDict takes at most one argument`);
    if (args.length === 1) {
      const items = args[0] instanceof PyTuple ? args[0].items : args[0];
      if (!Array.isArray(items)) throw new FormatError(`${what}: OrderedDict argument is not a list of pairs`);
      for (const it of items) {
        const pair = it instanceof PyTuple ? it.items : it;
        if (!Array.isArray(pair) || pair.length !== 2) throw new FormatError(`${what}: OrderedDict item is not a pair`);
        d.map.set(dictKey(pair[0], what), pair[1]);
      }
    }
    return d;
  },
  'torch._utils._rebuild_tensor_v2': (args, what) => rebuildTensor(args, what, 6),
  'torch._utils._rebuild_tensor': (args, what) => rebuildTensor(args, what, 4),
  'torch._utils._rebuild_parameter': (args, what) => rebuildParameter(args, what, 3),
  'torch._utils._rebuild_parameter_with_state': (args, what) => rebuildParameter(args, what, 4),
  'torch.Size': (args, what) => {
    const t = args[0];
    if (args.length !== 1 || !(t instanceof PyTuple || Array.isArray(t))) throw new FormatError(`${what}: bad torch.Size arguments`);
    return new PyTuple(t instanceof PyTuple ? t.items : t);
  },
  '_codecs.encode': (args, what) => {
    // Protocol 2 pickles bytes as _codecs.encode(str, 'latin1').
    const [s, enc] = args;
    if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) throw new FormatError(`${what}: only _codecs.encode(str, 'latin1') is supported`);
    return latin1Bytes(s, what);
  },
  'numpy.dtype': (args, what) => {
    if (typeof args[0] !== 'string' || !/^[fiub]\d$/.test(args[0])) throw new FormatError(`${what}: unsupported numpy dtype ${String(args[0]).slice(0, 20)}`);
    return new NumpyDType(args[0]);
  },
  'numpy.core.multiarray.scalar': (args, what) => numpyScalar(args, what),
  'numpy._core.multiarray.scalar': (args, what) => numpyScalar(args, what),
};
for (const s of Object.keys(STORAGE_DTYPES)) ALLOWED[`torch.${s}`] = null;
ALLOWED['torch.storage.UntypedStorage'] = null;
ALLOWED['torch.storage.TypedStorage'] = null;

function rebuildTensor(args: PyValue[], what: string, minArgs: number): TensorRef {
  if (args.length < minArgs) throw new FormatError(`${what}: expected at least ${minArgs} arguments, got ${args.length}`);
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) throw new FormatError(`${what}: first argument is not a storage`);
  const ints = (v: PyValue, name: string): number[] => {
    const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : null;
    if (!items || items.length > 64 || !items.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
      throw new FormatError(`${what}: bad ${name}`);
    }
    return items as number[];
  };
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw new FormatError(`${what}: bad storage offset`);
  const sz = ints(size, 'size');
  const st = ints(stride, 'stride');
  if (sz.length !== st.length) throw new FormatError(`${what}: size has ${sz.length} dims but stride has ${st.length}`);
  return new TensorRef(storage, offset, sz, st);
}

function rebuildParameter(args: PyValue[], what: string, n: number): PyValue {
  if (args.length !== n || !(args[0] instanceof TensorRef)) throw new FormatError(`${what}: bad parameter arguments`);
  return args[0];
}

function numpyScalar(args: PyValue[], what: string): number {
  const [dt, raw] = args;
  if (!(dt instanceof NumpyDType) || !(raw instanceof Uint8Array)) throw new FormatError(`${what}: bad numpy scalar`);
  const kind = dt.descr[0];
  const size = Number(dt.descr.slice(1));
  if (raw.length !== size || dt.order === '>') throw new FormatError(`${what}: bad numpy scalar bytes`);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (kind === 'f' && size === 8) return v.getFloat64(0, true);
  if (kind === 'f' && size === 4) return v.getFloat32(0, true);
  if (kind === 'i' && size === 8) return Number(v.getBigInt64(0, true));
  if (kind === 'i' && size === 4) return v.getInt32(0, true);
  if (kind === 'u' && size === 8) return Number(v.getBigUint64(0, true));
  if ((kind === 'u' || kind === 'b') && size === 1) return kind === 'b' ? (raw[0] ? 1 : 0) : raw[0];
  throw new FormatError(`${what}: unsupported numpy scalar type ${dt.descr}`);
}

function latin1Bytes(s: string, what: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) throw new FormatError(`${what}: character outside latin-1`);
    out[i] = c;
  }
  return out;
}

function dictKey(k: PyValue, what: string): PyKey {
  if (k === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof k)) return k as PyKey;
  throw new FormatError(`${what}: unsupported dict key type`);
}

// --- the machine ------------------------------------------------------------------------------

export interface UnpickleLimits {
  maxStack: number;
  maxMemo: number;
  maxMarkDepth: number;
  /** Largest LONG1/LONG4 integer, in bytes. */
  maxLongBytes: number;
}

export const DEFAULT_UNPICKLE_LIMITS: Readonly<UnpickleLimits> = {
  maxStack: 100_000,
  maxMemo: 1_000_000,
  maxMarkDepth: 1000,
  maxLongBytes: 1024,
};

export interface UnpickleOptions {
  /** Offset of the first opcode (several pickles may follow each other). */
  start?: number;
  /** Resolves BINPERSID/PERSID ids; without it, a persistent id is an error. */
  persistentLoad?: (pid: PyValue) => PyValue;
  limits?: Partial<UnpickleLimits>;
  /** Name used in error messages (e.g. the zip entry). */
  source?: string;
}

export interface UnpickleResult {
  value: PyValue;
  /** Offset just past the STOP opcode. */
  end: number;
}

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): UnpickleResult {
  const lim = { ...DEFAULT_UNPICKLE_LIMITS, ...opts.limits };
  const src = opts.source ?? 'pickle';
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = opts.start ?? 0;
  let stack: Slot[] = [];
  const marks: Slot[][] = [];
  const memo = new Map<number, PyValue>();
  let total = 0; // items on stack + metastack, bounded by maxStack

  const fail = (msg: string): never => {
    throw new FormatError(`${src}: ${msg} (at byte ${pos})`);
  };
  const need = (n: number): void => {
    if (n < 0 || pos + n > bytes.length) fail(`truncated (needs ${n} more bytes)`);
  };
  const u8 = (): number => (need(1), bytes[pos++]);
  const u16 = (): number => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = (): number => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const i32 = (): number => (need(4), (pos += 4), dv.getInt32(pos - 4, true));
  const u64 = (): number => {
    need(8);
    const v = dv.getUint32(pos + 4, true) * 4294967296 + dv.getUint32(pos, true);
    pos += 8;
    if (!Number.isSafeInteger(v)) fail('length out of range');
    return v;
  };
  const take = (n: number): Uint8Array => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) fail('unterminated text argument');
    let s = '';
    for (let i = pos; i < nl; i++) s += String.fromCharCode(bytes[i]);
    pos = nl + 1;
    return s;
  };
  const utf8 = (b: Uint8Array): string => {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      return fail('invalid UTF-8 in string');
    }
  };
  const push = (v: Slot): void => {
    if (++total > lim.maxStack) fail(`stack exceeds ${lim.maxStack} items`);
    stack.push(v);
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    const v = stack.pop()!;
    if (v === MARK) fail('unexpected MARK');
    total--;
    return v as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) fail('stack underflow');
    return stack[stack.length - 1] as PyValue;
  };
  const popMark = (): PyValue[] => {
    if (marks.length === 0) fail('no MARK to pop to');
    const items = stack as PyValue[];
    total -= items.length;
    stack = marks.pop()!;
    total--; // the mark itself
    return items;
  };
  const memoPut = (i: number, v: PyValue): void => {
    if (!memo.has(i) && memo.size >= lim.maxMemo) fail(`memo exceeds ${lim.maxMemo} entries`);
    memo.set(i, v);
  };
  const memoGet = (i: number): PyValue => {
    if (!memo.has(i)) fail(`memo key ${i} not defined`);
    return memo.get(i)!;
  };
  const global = (module: string, name: string): PyGlobal => {
    const q = `${module}.${name}`;
    if (!Object.prototype.hasOwnProperty.call(ALLOWED, q)) {
      throw new UnsafePickleError(`${src}: refused global ${q.slice(0, 200)}`);
    }
    return new PyGlobal(module, name);
  };
  const call = (fn: PyValue, args: PyValue[]): PyValue => {
    if (!(fn instanceof PyGlobal)) return fail('call of a value that is not an allowed global');
    const h = ALLOWED[fn.qualified];
    if (!h) throw new UnsafePickleError(`${src}: refused call of ${fn.qualified}`);
    return h(args, `${src}: ${fn.qualified}`);
  };
  const setItems = (d: PyValue, items: PyValue[]): void => {
    if (!(d instanceof PyDict)) fail('SETITEM(S) on a value that is not a dict');
    if (items.length % 2) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) (d as PyDict).map.set(dictKey(items[i], src), items[i + 1]);
  };
  const appendItems = (l: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(l)) fail('APPEND(S) on a value that is not a list');
    for (const it of items) (l as PyValue[]).push(it);
  };
  const intLiteral = (s: string): number | bigint => {
    const t = s.endsWith('L') ? s.slice(0, -1) : s;
    if (!/^[+-]?\d{1,4000}$/.test(t)) fail(`bad integer literal ${s.slice(0, 20)}`);
    const b = BigInt(t);
    return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
  };
  const longLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    const opPos = pos;
    const op = u8();
    switch (op) {
      // protocol and framing
      case 0x80: {
        // PROTO
        const v = u8();
        if (v > 5) fail(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: // FRAME: a length prefix we can ignore once checked
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length !== 0) fail('STOP with a malformed stack');
        return { value: pop(), end: pos };

      // stack manipulation
      case 0x28: // MARK
        if (marks.length >= lim.maxMarkDepth) fail(`MARK nesting exceeds ${lim.maxMarkDepth}`);
        if (++total > lim.maxStack) fail(`stack exceeds ${lim.maxStack} items`);
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length === 0) {
          if (marks.length === 0) fail('stack underflow');
          popMark(); // POP of a MARK
        } else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;

      // constants
      case 0x4e:
        push(null);
        break; // NONE
      case 0x88:
        push(true);
        break; // NEWTRUE
      case 0x89:
        push(false);
        break; // NEWFALSE
      case 0x4a:
        push(i32());
        break; // BININT
      case 0x4b:
        push(u8());
        break; // BININT1
      case 0x4d:
        push(u16());
        break; // BININT2
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const n = op === 0x8a ? u8() : i32();
        if (n < 0 || n > lim.maxLongBytes) fail(`integer of ${n} bytes exceeds the ${lim.maxLongBytes}-byte limit`);
        push(longLE(take(n)));
        break;
      }
      case 0x49: {
        // INT (text; I00/I01 are False/True)
        const s = line();
        push(s === '00' ? false : s === '01' ? true : intLiteral(s));
        break;
      }
      case 0x4c:
        push(intLiteral(line()));
        break; // LONG (text)
      case 0x46: {
        // FLOAT (text)
        const s = line().trim();
        // (unambiguous, so no catastrophic backtracking on long digit runs)
        if (s.length > 400 || !/^[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|inf|nan)$/i.test(s)) fail('bad float literal');
        push(Number(s.replace(/inf/i, 'Infinity').replace(/nan/i, 'NaN')));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        pos += 8;
        push(dv.getFloat64(pos - 8, false));
        break;

      // strings and bytes
      case 0x58:
        push(utf8(take(u32())));
        break; // BINUNICODE
      case 0x8c:
        push(utf8(take(u8())));
        break; // SHORT_BINUNICODE
      case 0x8d:
        push(utf8(take(u64())));
        break; // BINUNICODE8
      case 0x42:
        push(new Uint8Array(take(u32())));
        break; // BINBYTES
      case 0x43:
        push(new Uint8Array(take(u8())));
        break; // SHORT_BINBYTES
      case 0x8e:
        push(new Uint8Array(take(u64())));
        break; // BINBYTES8
      case 0x96:
        push(new Uint8Array(take(u64())));
        break; // BYTEARRAY8
      case 0x54: {
        // BINSTRING (Python 2 str, taken as latin-1 text)
        const n = i32();
        if (n < 0) fail('negative string length');
        push(latin1(take(n)));
        break;
      }
      case 0x55:
        push(latin1(take(u8())));
        break; // SHORT_BINSTRING
      case 0x53: {
        // STRING (quoted repr)
        const s = line();
        const m = /^(['"])(.*)\1$/s.exec(s);
        if (!m || m[2].includes('\\')) fail('unsupported STRING literal');
        push(m![2]);
        break;
      }
      case 0x56: {
        // UNICODE (raw-unicode-escape: latin-1 text with \uXXXX and \UXXXXXXXX escapes)
        const s = line().replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, u: string, w: string) => {
          const cp = parseInt(u ?? w, 16);
          if (cp > 0x10ffff) fail('bad escape in UNICODE');
          return String.fromCodePoint(cp);
        });
        push(s);
        break;
      }

      // containers
      case 0x5d:
        push([]);
        break; // EMPTY_LIST
      case 0x29:
        push(new PyTuple([]));
        break; // EMPTY_TUPLE
      case 0x7d:
        push(new PyDict());
        break; // EMPTY_DICT
      case 0x6c:
        push(popMark());
        break; // LIST
      case 0x74:
        push(new PyTuple(popMark()));
        break; // TUPLE
      case 0x85:
        push(new PyTuple([pop()]));
        break; // TUPLE1
      case 0x86: {
        // TUPLE2
        const b = pop();
        push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x64: {
        // DICT
        const d = new PyDict();
        setItems(d, popMark());
        push(d);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f:
      case 0x90:
      case 0x91: // EMPTY_SET, ADDITEMS, FROZENSET
        fail('sets are not supported');
        break;

      // memo
      case 0x67:
        memoPutOrGet(false, parseIndex(line()));
        break; // GET
      case 0x70:
        memoPutOrGet(true, parseIndex(line()));
        break; // PUT
      case 0x68:
        push(memoGet(u8()));
        break; // BINGET
      case 0x6a:
        push(memoGet(u32()));
        break; // LONG_BINGET
      case 0x71:
        memoPut(u8(), top());
        break; // BINPUT
      case 0x72:
        memoPut(u32(), top());
        break; // LONG_BINPUT
      case 0x94:
        memoPut(memo.size, top());
        break; // MEMOIZE

      // globals and calls: only the allow-list, never any Python code
      case 0x63: {
        // GLOBAL
        const module = line();
        push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(global(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!(args instanceof PyTuple)) fail('REDUCE arguments are not a tuple');
        push(call(fn, (args as PyTuple).items));
        break;
      }
      case 0x69: {
        // INST module\nname\n, args from the mark
        const module = line();
        const cls = global(module, line());
        push(call(cls, popMark()));
        break;
      }
      case 0x6f: {
        // OBJ: class and args from the mark
        const items = popMark();
        if (items.length === 0) fail('OBJ without a class');
        push(call(items[0], items.slice(1)));
        break;
      }
      case 0x81: {
        // NEWOBJ cls args
        const args = pop();
        const cls = pop();
        if (!(args instanceof PyTuple)) fail('NEWOBJ arguments are not a tuple');
        push(call(cls, (args as PyTuple).items));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX cls args kwargs
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(args instanceof PyTuple) || !(kwargs instanceof PyDict) || kwargs.map.size) fail('NEWOBJ_EX with keyword arguments is not supported');
        push(call(cls, (args as PyTuple).items));
        break;
      }
      case 0x62: {
        // BUILD: __setstate__, allowed only as data on our own objects
        const state = pop();
        const obj = top();
        if (obj instanceof PyDict && obj.ordered) {
          const st = state instanceof PyTuple && state.items.length === 2 ? state.items[0] : state;
          if (!(st instanceof PyDict) && st !== null) fail('BUILD state of an OrderedDict is not a dict');
          obj.attrs = st as PyDict | null;
        } else if (obj instanceof NumpyDType && state instanceof PyTuple && typeof state.items[1] === 'string') {
          obj.order = state.items[1];
        } else {
          throw new UnsafePickleError(`${src}: refused BUILD (setstate) on ${describe(obj)}`);
        }
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id without a loader');
        push(opts.persistentLoad!(pid));
        break;
      }
      case 0x50: {
        // PERSID (text)
        const pid = line();
        if (!opts.persistentLoad) fail('persistent id without a loader');
        push(opts.persistentLoad!(pid));
        break;
      }
      case 0x82:
      case 0x83:
      case 0x84: // EXT1/2/4: the copyreg extension registry
        throw new UnsafePickleError(`${src}: refused extension code (opcode 0x${op.toString(16)})`);
      case 0x97:
      case 0x98: // NEXT_BUFFER, READONLY_BUFFER
        fail('out-of-band buffers are not supported');
        break;
      default:
        pos = opPos;
        fail(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }

  function parseIndex(s: string): number {
    if (!/^\d{1,10}$/.test(s)) fail('bad memo index');
    return Number(s);
  }
  function memoPutOrGet(put: boolean, i: number): void {
    if (put) memoPut(i, top());
    else push(memoGet(i));
  }
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

export function describe(v: PyValue | undefined): string {
  if (v === null) return 'None';
  if (v instanceof PyGlobal) return v.qualified;
  if (v instanceof PyTuple) return 'a tuple';
  if (v instanceof PyDict) return 'a dict';
  if (v instanceof TensorRef) return 'a tensor';
  if (v instanceof StorageRef) return 'a storage';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'a list';
  return typeof v;
}

// --- the writer side --------------------------------------------------------------------------

/**
 * Emits pickle protocol 2 opcodes the way CPython's pickler does for the values torch.save
 * writes: strings and globals are memoized (BINPUT) on first use and fetched (BINGET) after,
 * ints take the shortest of BININT1/BININT2/BININT/LONG1. The caller drives the structure.
 */
export class PickleWriter {
  private buf = new Uint8Array(4096);
  private n = 0;
  private readonly memo = new Map<string, number>();
  private nextMemo = 0;

  constructor() {
    this.bytes(0x80, 2); // PROTO 2
  }

  bytes(...b: number[]): this {
    this.reserve(b.length);
    for (const v of b) this.buf[this.n++] = v;
    return this;
  }

  private raw(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }

  private reserve(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
  }

  private u32(v: number): void {
    this.bytes(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }

  /** BINPUT/LONG_BINPUT the top of the stack; returns its memo index. */
  put(): number {
    const i = this.nextMemo++;
    if (i < 256) this.bytes(0x71, i);
    else {
      this.bytes(0x72);
      this.u32(i);
    }
    return i;
  }

  /** BINGET/LONG_BINGET. */
  get(i: number): this {
    if (i < 256) return this.bytes(0x68, i);
    this.bytes(0x6a);
    this.u32(i);
    return this;
  }

  private memoized(key: string, emit: () => void): this {
    const i = this.memo.get(key);
    if (i !== undefined) return this.get(i);
    emit();
    this.memo.set(key, this.put());
    return this;
  }

  /** GLOBAL module\nname\n (memoized). */
  global(module: string, name: string): this {
    return this.memoized(`g:${module}.${name}`, () => {
      this.bytes(0x63);
      this.raw(new TextEncoder().encode(`${module}\n${name}\n`));
    });
  }

  /** BINUNICODE (memoized by value). */
  str(s: string): this {
    return this.memoized(`s:${s}`, () => {
      const b = new TextEncoder().encode(s);
      this.bytes(0x58);
      this.u32(b.length);
      this.raw(b);
    });
  }

  int(v: number): this {
    if (!Number.isSafeInteger(v)) throw new RangeError(`pickle: ${v} is not a safe integer`);
    if (v >= 0 && v < 256) return this.bytes(0x4b, v);
    if (v >= 0 && v < 65536) return this.bytes(0x4d, v & 0xff, v >>> 8);
    if (v >= -0x80000000 && v <= 0x7fffffff) {
      this.bytes(0x4a);
      this.u32(v >>> 0);
      return this;
    }
    // LONG1: little-endian two's complement, shortest form.
    let b = BigInt(v);
    const out: number[] = [];
    for (;;) {
      out.push(Number(b & 0xffn));
      b >>= 8n;
      const sign = out[out.length - 1] & 0x80;
      if ((b === 0n && !sign) || (b === -1n && sign)) break;
    }
    return this.bytes(0x8a, out.length, ...out);
  }

  /** A tuple of ints: EMPTY_TUPLE, TUPLE1-3, or MARK ... TUPLE; non-empty tuples are memoized (BINPUT). */
  intTuple(v: readonly number[]): this {
    if (v.length === 0) return this.bytes(0x29);
    if (v.length > 3) this.mark();
    for (const x of v) this.int(x);
    this.bytes(v.length > 3 ? 0x74 : [0, 0x85, 0x86, 0x87][v.length]);
    this.put();
    return this;
  }

  mark(): this {
    return this.bytes(0x28);
  }

  /** The pickle so far, closed with STOP. */
  finish(): Uint8Array {
    this.bytes(0x2e);
    return this.buf.slice(0, this.n);
  }
}
