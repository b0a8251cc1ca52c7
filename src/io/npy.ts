// NumPy .npy (format versions 1.0, 2.0, 3.0) and .npz (a zip of .npy files). Browser-safe.
// Layout: "\x93NUMPY", major, minor, header length (u16 for 1.x, u32 for 2.x/3.x), a Python
// dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces
// and a newline, then the raw C-order data.
import { zipSync, type Zippable } from 'fflate';
import { FormatError } from '../base/errors.js';
import { type ArrayMap, type DType, type NamedArray, DTYPE_SIZE, checkArray, checkedNumel, decodeLE, encodeLE, writtenDType } from './types.js';
import { type ZipLimits, ZipReader } from './zip.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const MAX_HEADER = 1 << 20;

const DESCR: Record<string, DType> = {
  f4: 'F32',
  f8: 'F64',
  f2: 'F16',
  i8: 'I64',
  i4: 'I32',
  i2: 'I16',
  i1: 'I8',
  u1: 'U8',
  b1: 'BOOL',
};

export function readNpy(bytes: Uint8Array): NamedArray {
  const hdr = readNpyHeader(bytes);
  const { dtype, shape, dataStart } = hdr;
  const what = `npy: shape (${shape.join(', ')}) of ${hdr.descr}`;
  const numel = checkedNumel(shape, what, DTYPE_SIZE[dtype]);
  const have = bytes.length - dataStart;
  const need = numel * DTYPE_SIZE[dtype];
  if (have !== need) throw new FormatError(`${what} needs ${need} data bytes, file has ${have}`);
  return { dtype, shape, data: decodeLE(dtype, bytes.subarray(dataStart), numel) };
}

export interface NpyHeader {
  descr: string;
  dtype: DType;
  shape: number[];
  dataStart: number;
}

/** Parse and validate the magic, version and header dict. */
export function readNpyHeader(bytes: Uint8Array): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new FormatError('npy: not a .npy file (missing \\x93NUMPY magic)');
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (![1, 2, 3].includes(major) || minor !== 0) throw new FormatError(`npy: unsupported format version ${major}.${minor}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let hlen: number;
  let start: number;
  if (major === 1) {
    hlen = dv.getUint16(8, true);
    start = 10;
  } else {
    if (bytes.length < 12) throw new FormatError('npy: file too short for its header length');
    hlen = dv.getUint32(8, true);
    start = 12;
  }
  if (hlen > MAX_HEADER) throw new FormatError(`npy: header length ${hlen} exceeds the ${MAX_HEADER}-byte limit`);
  if (start + hlen > bytes.length) throw new FormatError(`npy: header length ${hlen} runs past the end of the ${bytes.length}-byte file`);
  const raw = bytes.subarray(start, start + hlen);
  let text: string;
  if (major === 3) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw new FormatError('npy: header is not valid UTF-8');
    }
  } else {
    text = '';
    for (let i = 0; i < raw.length; i += 8192) text += String.fromCharCode(...raw.subarray(i, i + 8192));
  }
  const dict = parsePyLiteral(text);
  if (!(dict instanceof Map)) throw new FormatError('npy: header is not a dict');
  const keys = [...dict.keys()].sort().join(',');
  if (keys !== 'descr,fortran_order,shape') {
    throw new FormatError(`npy: header keys are {${keys.slice(0, 80)}}, expected descr, fortran_order, shape`);
  }
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (typeof descr !== 'string') throw new FormatError('npy: descr is not a string (structured dtypes are not supported)');
  if (typeof fortran !== 'boolean') throw new FormatError('npy: fortran_order is not True or False');
  if (!(shape instanceof PyTuple)) throw new FormatError('npy: shape is not a tuple');
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  const dtype = m ? DESCR[m[2] + m[3]] : undefined;
  if (!m || !dtype) throw new FormatError(`npy: unsupported dtype '${descr.slice(0, 20)}' (supported: <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1)`);
  if (m[1] === '>' && DTYPE_SIZE[dtype] > 1) {
    throw new FormatError(`npy: big-endian dtype '${descr}' is not supported; save a little-endian array (arr.astype('<${m[2]}${m[3]}'))`);
  }
  if (fortran) {
    throw new FormatError('npy: fortran_order=True (column-major) arrays are not supported; save np.ascontiguousarray(arr)');
  }
  for (const d of shape.items) {
    if (typeof d !== 'number') throw new FormatError(`npy: shape entry ${String(d).slice(0, 20)} is not an integer`);
  }
  if (shape.items.length > 64) throw new FormatError(`npy: shape has ${shape.items.length} dimensions`);
  return { descr, dtype, shape: shape.items as number[], dataStart: start + hlen };
}

/** Serialize as .npy version 1.0 (2.0 for enormous headers): '<f4', or '<i8' for I64 arrays. */
export function writeNpy(arr: NamedArray): Uint8Array {
  checkArray('npy', arr);
  const dt = writtenDType(arr);
  const descr = dt === 'I64' ? '<i8' : '<f4';
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const v1 = Math.ceil((10 + dict.length + 1) / 64) * 64 - 10 <= 65535;
  const pre = v1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - pre - 1, ' ') + '\n';
  const data = encodeLE(dt, arr.data, 'npy');
  const out = new Uint8Array(total + data.length);
  out.set(MAGIC);
  out[6] = v1 ? 1 : 2;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (v1) dv.setUint16(8, dict.length, true);
  else dv.setUint32(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) out[pre + i] = dict.charCodeAt(i);
  out.set(data, total);
  return out;
}

/** Read an .npz archive (stored or deflated): entry "name.npy" becomes key "name". */
export function readNpz(bytes: Uint8Array, limits?: Partial<ZipLimits>): ArrayMap {
  const zip = new ZipReader(bytes, limits);
  const out: ArrayMap = new Map();
  for (const e of zip.entries) {
    if (e.name.endsWith('/')) continue;
    if (!e.name.endsWith('.npy')) throw new FormatError(`npz: entry "${e.name}" is not a .npy file`);
    const key = e.name.slice(0, -4);
    try {
      out.set(key, readNpy(zip.read(e.name)));
    } catch (err) {
      if (err instanceof FormatError) throw new FormatError(`npz entry "${e.name}": ${err.message}`);
      throw err;
    }
  }
  return out;
}

/** Write an .npz archive, like np.savez (stored) or np.savez_compressed ({compress: true}). */
export function writeNpz(map: ArrayMap, opts: { compress?: boolean } = {}): Uint8Array {
  const files: Zippable = {};
  for (const [name, arr] of map) files[`${name}.npy`] = [writeNpy(arr), { level: opts.compress ? 6 : 0 }];
  return zipSync(files, { mtime: new Date('1980-01-01T00:00:00') });
}

// --- A tiny parser for the Python literal in the header -------------------------------------

export class PyTuple {
  constructor(readonly items: PyLit[]) {}
}
type PyLit = string | number | boolean | null | PyTuple | PyLit[] | Map<string, PyLit>;

/** Parse a dict/tuple/list/str/int/bool/None literal (the subset numpy writes). */
export function parsePyLiteral(text: string): PyLit {
  let i = 0;
  const fail = (why: string): never => {
    throw new FormatError(`npy: bad header (${why} at character ${i})`);
  };
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
  };
  const value = (depth: number): PyLit => {
    if (depth > 16) fail('nesting too deep');
    ws();
    const c = text[i];
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      i++;
      const items: PyLit[] = [];
      const dict = new Map<string, PyLit>();
      let sawComma = false;
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          break;
        }
        if (items.length + dict.size > 0 && !sawComma) fail(`expected ',' or '${close}'`);
        const v = value(depth + 1);
        if (c === '{') {
          if (typeof v !== 'string') fail('dict key is not a string');
          ws();
          if (text[i++] !== ':') fail("expected ':'");
          if (dict.has(v as string)) fail(`duplicate key '${v}'`);
          dict.set(v as string, value(depth + 1));
        } else items.push(v);
        ws();
        sawComma = text[i] === ',';
        if (sawComma) i++;
      }
      if (c === '{') return dict;
      if (c === '(') {
        if (items.length === 1 && !sawComma) return items[0]; // parenthesised expression
        return new PyTuple(items);
      }
      return items;
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const s = text.slice(i + 1, end);
      if (s.includes('\\')) fail('escapes in strings are not supported');
      i = end + 1;
      return s;
    }
    const m = /^(?:True|False|None|-?\d+L?)/.exec(text.slice(i, i + 32));
    if (!m) return fail('unexpected token');
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    const n = Number(m[0].replace('L', ''));
    if (!Number.isSafeInteger(n)) fail(`integer ${m[0]} is too large`);
    return n;
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('trailing characters');
  return v;
}
