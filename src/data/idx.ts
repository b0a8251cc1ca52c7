// IDX reader (the MNIST / Fashion-MNIST container), browser-safe: gzip is inflated with fflate.
// Layout: magic = 0x00 0x00 <type code> <number of dims>, then one big-endian uint32 per dim, then
// the data in row-major order, big-endian for multi-byte types. The Node file helper (idx-file.ts)
// reads files and uses node:zlib, which is faster for the 26 MB Fashion-MNIST training images.
import { gunzipSync } from 'fflate';
import { FormatError } from '../base/errors.js';

export type IdxDType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDType;
  shape: number[];
  data: IdxData;
}

const TYPES: Record<number, { dtype: IdxDType; bytes: number }> = {
  0x08: { dtype: 'uint8', bytes: 1 },
  0x09: { dtype: 'int8', bytes: 1 },
  0x0b: { dtype: 'int16', bytes: 2 },
  0x0c: { dtype: 'int32', bytes: 4 },
  0x0d: { dtype: 'float32', bytes: 4 },
  0x0e: { dtype: 'float64', bytes: 8 },
};
const CODES: Record<IdxDType, number> = { uint8: 0x08, int8: 0x09, int16: 0x0b, int32: 0x0c, float32: 0x0d, float64: 0x0e };

/** True when the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Inflate a gzip member with fflate and check it against the gzip trailer (ISIZE), so a truncated
 * download is reported instead of being parsed as short data.
 */
export function gunzipChecked(bytes: Uint8Array, name: string): Uint8Array {
  if (bytes.length < 18) throw new FormatError(`${name}: truncated gzip file (${bytes.length} bytes)`);
  let out: Uint8Array;
  try {
    out = gunzipSync(bytes);
  } catch (e) {
    throw new FormatError(`${name}: corrupt or truncated gzip data (${(e as Error).message})`);
  }
  const n = bytes.length;
  const isize = (bytes[n - 4] | (bytes[n - 3] << 8) | (bytes[n - 2] << 16) | (bytes[n - 1] << 24)) >>> 0;
  if (isize !== out.length % 4294967296) {
    throw new FormatError(`${name}: truncated gzip data (inflated ${out.length} bytes, trailer says ${isize})`);
  }
  return out;
}

/**
 * Parse an IDX file held in memory. Gzipped input is detected by its magic and inflated. `name` is
 * used in error messages (normally the file path).
 */
export function parseIdx(bytes: Uint8Array, name = '<idx buffer>'): IdxArray {
  if (isGzip(bytes)) bytes = gunzipChecked(bytes, name);
  return parseRawIdx(bytes, name);
}

/** Parse an uncompressed IDX buffer. */
export function parseRawIdx(bytes: Uint8Array, name = '<idx buffer>'): IdxArray {
  if (bytes.length < 4) throw new FormatError(`${name}: too short for an IDX header (${bytes.length} bytes)`);
  const code = bytes[2];
  const nd = bytes[3];
  const t = TYPES[code];
  if (bytes[0] !== 0 || bytes[1] !== 0 || t === undefined) {
    const hex = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new FormatError(`${name}: not an IDX file (magic ${hex}; expected 00 00 <type 08|09|0b|0c|0d|0e> <ndim>)`);
  }
  if (nd === 0) throw new FormatError(`${name}: IDX header declares 0 dimensions`);
  const headerLen = 4 + 4 * nd;
  if (bytes.length < headerLen) {
    throw new FormatError(`${name}: truncated IDX header (${nd} dims need ${headerLen} bytes, file has ${bytes.length})`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < nd; i++) {
    const d = dv.getUint32(4 + 4 * i, false);
    shape.push(d);
    count *= d;
  }
  const need = count * t.bytes;
  const have = bytes.length - headerLen;
  if (have < need) {
    throw new FormatError(`${name}: short IDX data: shape [${shape.join(', ')}] of ${t.dtype} needs ${need} bytes, found ${have}`);
  }
  if (have > need) {
    throw new FormatError(`${name}: ${have - need} unexpected trailing bytes after IDX data of shape [${shape.join(', ')}]`);
  }
  const body = bytes.subarray(headerLen, headerLen + need);
  let data: IdxData;
  switch (t.dtype) {
    case 'uint8':
      data = new Uint8Array(body); // own copy, aligned, independent of the input buffer
      break;
    case 'int8':
      data = new Int8Array(body.buffer.slice(body.byteOffset, body.byteOffset + need));
      break;
    default: {
      const bdv = new DataView(body.buffer, body.byteOffset, need);
      if (t.dtype === 'int16') {
        const a = new Int16Array(count);
        for (let i = 0; i < count; i++) a[i] = bdv.getInt16(2 * i, false);
        data = a;
      } else if (t.dtype === 'int32') {
        const a = new Int32Array(count);
        for (let i = 0; i < count; i++) a[i] = bdv.getInt32(4 * i, false);
        data = a;
      } else if (t.dtype === 'float32') {
        const a = new Float32Array(count);
        for (let i = 0; i < count; i++) a[i] = bdv.getFloat32(4 * i, false);
        data = a;
      } else {
        const a = new Float64Array(count);
        for (let i = 0; i < count; i++) a[i] = bdv.getFloat64(8 * i, false);
        data = a;
      }
    }
  }
  return { dtype: t.dtype, shape, data };
}

/** Serialize an array as (uncompressed) IDX. */
export function encodeIdx(arr: IdxArray): Uint8Array {
  const t = TYPES[CODES[arr.dtype]];
  let count = 1;
  for (const d of arr.shape) count *= d;
  if (arr.data.length !== count) {
    throw new FormatError(`encodeIdx: data has ${arr.data.length} elements, shape [${arr.shape.join(', ')}] needs ${count}`);
  }
  const headerLen = 4 + 4 * arr.shape.length;
  const out = new Uint8Array(headerLen + count * t.bytes);
  const dv = new DataView(out.buffer);
  out[2] = CODES[arr.dtype];
  out[3] = arr.shape.length;
  arr.shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  const d = arr.data;
  for (let i = 0; i < count; i++) {
    const o = headerLen + i * t.bytes;
    switch (arr.dtype) {
      case 'uint8': out[o] = d[i]; break;
      case 'int8': dv.setInt8(o, d[i]); break;
      case 'int16': dv.setInt16(o, d[i], false); break;
      case 'int32': dv.setInt32(o, d[i], false); break;
      case 'float32': dv.setFloat32(o, d[i], false); break;
      case 'float64': dv.setFloat64(o, d[i], false); break;
    }
  }
  return out;
}
