// The record every reader returns and every writer takes, plus the little-endian element codecs
// the formats share. Browser-safe: no node: imports.
import { FormatError, ShapeError } from '../base/errors.js';

export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** One named array. `data` is always float32; `dtype` records the type it was stored as. */
export interface NamedArray {
  dtype: DType;
  shape: number[];
  data: Float32Array;
}

export type ArrayMap = Map<string, NamedArray>;

/** Bytes per element of each stored type. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

/**
 * Number of elements of `shape`, checking every dim is a non-negative safe integer and the
 * product (times `elemSize`, the bytes it will occupy) stays a safe integer. `what` names the
 * tensor in the FormatError message.
 */
export function checkedNumel(shape: readonly unknown[], what: string, elemSize = 1): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new FormatError(`${what}: invalid dimension ${fmtVal(d)} in shape`);
    }
    n *= d;
  }
  for (const d of shape) if (d === 0) return 0;
  if (!Number.isSafeInteger(n * elemSize)) {
    throw new FormatError(`${what}: shape [${shape.join(', ')}] is too large (${n} elements)`);
  }
  return n;
}

function fmtVal(v: unknown): string {
  if (typeof v === 'number') return String(v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 40 ? s.slice(0, 40) + '…' : s;
  } catch {
    return String(v);
  }
}

export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let halfTable: Float32Array | null = null;

/** float16 bit pattern -> float32 value. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

function halfLookup(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfTable[i] = halfToFloat(i);
  }
  return halfTable;
}

/**
 * Decode `count` little-endian elements of `dtype` from the start of `bytes` into a new
 * Float32Array. `bytes` may be unaligned and may be longer than needed. I64 values beyond 2^53
 * lose precision (and beyond 2^24 in the float32 result), as any float32 conversion must.
 */
export function decodeLE(dtype: DType, bytes: Uint8Array, count: number): Float32Array {
  const size = DTYPE_SIZE[dtype];
  if (bytes.length < count * size) {
    throw new FormatError(`need ${count * size} bytes of ${dtype} data, have ${bytes.length}`);
  }
  // A fresh aligned copy of exactly the bytes we need (not bytes.slice: a Node Buffer's slice is a view).
  const raw = new Uint8Array(count * size);
  raw.set(bytes.subarray(0, count * size));
  if (!LITTLE_ENDIAN_HOST) return decodeWithDataView(dtype, raw, count);
  const buf = raw.buffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf);
    case 'F64':
      return Float32Array.from(new Float64Array(buf));
    case 'F16': {
      const t = halfLookup();
      const u = new Uint16Array(buf);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = t[u[i]];
      return out;
    }
    case 'BF16': {
      const u = new Uint16Array(buf);
      const out = new Uint32Array(count);
      for (let i = 0; i < count; i++) out[i] = u[i] << 16;
      return new Float32Array(out.buffer);
    }
    case 'I64': {
      const w = new Int32Array(buf);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = (w[2 * i] >>> 0) + w[2 * i + 1] * 4294967296;
      return out;
    }
    case 'I32':
      return Float32Array.from(new Int32Array(buf));
    case 'I16':
      return Float32Array.from(new Int16Array(buf));
    case 'I8':
      return Float32Array.from(new Int8Array(buf));
    case 'U8':
      return Float32Array.from(raw);
    case 'BOOL': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = raw[i] ? 1 : 0;
      return out;
    }
  }
}

function decodeWithDataView(dtype: DType, raw: Uint8Array, count: number): Float32Array {
  const dv = new DataView(raw.buffer);
  const out = new Float32Array(count);
  const size = DTYPE_SIZE[dtype];
  for (let i = 0; i < count; i++) {
    const o = i * size;
    switch (dtype) {
      case 'F32':
        out[i] = dv.getFloat32(o, true);
        break;
      case 'F64':
        out[i] = dv.getFloat64(o, true);
        break;
      case 'F16':
        out[i] = halfToFloat(dv.getUint16(o, true));
        break;
      case 'BF16':
        out[i] = new Float32Array(new Uint32Array([dv.getUint16(o, true) << 16]).buffer)[0];
        break;
      case 'I64':
        out[i] = dv.getUint32(o, true) + dv.getInt32(o + 4, true) * 4294967296;
        break;
      case 'I32':
        out[i] = dv.getInt32(o, true);
        break;
      case 'I16':
        out[i] = dv.getInt16(o, true);
        break;
      case 'I8':
        out[i] = dv.getInt8(o);
        break;
      case 'U8':
        out[i] = dv.getUint8(o);
        break;
      case 'BOOL':
        out[i] = dv.getUint8(o) ? 1 : 0;
        break;
    }
  }
  return out;
}

/** The dtypes our writers emit: float32 for everything, except I64 entries stay int64. */
export type WrittenDType = 'F32' | 'I64';

export function writtenDType(a: NamedArray): WrittenDType {
  return a.dtype === 'I64' ? 'I64' : 'F32';
}

/** Encode float32 values as little-endian F32 or I64 bytes (I64 values are rounded). */
export function encodeLE(dtype: WrittenDType, data: Float32Array, what: string): Uint8Array {
  const n = data.length;
  const out = new Uint8Array(n * DTYPE_SIZE[dtype]);
  const dv = new DataView(out.buffer);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN_HOST) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else for (let i = 0; i < n; i++) dv.setFloat32(4 * i, data[i], true);
    return out;
  }
  for (let i = 0; i < n; i++) {
    const v = Math.round(data[i]);
    if (!Number.isFinite(v)) throw new ShapeError(`${what}: value ${data[i]} cannot be stored as I64`);
    dv.setBigInt64(8 * i, BigInt(v), true);
  }
  return out;
}

/** Throws a ShapeError when `a.data` does not hold exactly numel(a.shape) values. */
export function checkArray(name: string, a: NamedArray): void {
  let n = 1;
  for (const d of a.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ShapeError(`${name}: invalid shape [${a.shape.join(', ')}]`);
    n *= d;
  }
  if (a.data.length !== n) {
    throw new ShapeError(`${name}: data has ${a.data.length} values but shape [${a.shape.join(', ')}] needs ${n}`);
  }
}
