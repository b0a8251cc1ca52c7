// safetensors: an 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data,
// offsets relative to its start. Read strictly: tensors must tile the data exactly, in some order,
// with no gap, overlap or trailing byte. Browser-safe.
import { FormatError } from '../base/errors.js';
import { type ArrayMap, type DType, DTYPE_SIZE, LITTLE_ENDIAN_HOST, checkArray, checkedNumel, decodeLE, encodeLE, isDType, writtenDType } from './types.js';

/** Largest header we accept (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte range inside the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** Offset of the data section in the file. */
  dataStart: number;
}

const UNSUPPORTED = new Set(['U16', 'U32', 'U64', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);

/** Parse and validate the header only (cheap: no tensor data is decoded). */
export function readSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  if (bytes.length < 8) throw new FormatError(`safetensors: file is ${bytes.length} bytes, too short for a header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const n = hi * 4294967296 + lo;
  if (n > MAX_HEADER_BYTES) {
    throw new FormatError(`safetensors: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (8 + n > bytes.length) {
    throw new FormatError(`safetensors: header length ${n} runs past the end of the ${bytes.length}-byte file`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new FormatError('safetensors: header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`safetensors: header is not valid JSON (${oneLine((e as Error).message)})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new FormatError('safetensors: header is not a JSON object');
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw new FormatError('safetensors: __metadata__ is not an object');
      }
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') throw new FormatError(`safetensors: __metadata__ value for "${k}" is not a string`);
        metadata[k] = s;
      }
      continue;
    }
    entries.push(parseEntry(name, v, dataLen));
  }
  // The tensors must tile [0, dataLen) exactly.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: SafetensorsEntry | null = null;
  for (const e of sorted) {
    if (e.begin < cursor) {
      throw new FormatError(`safetensors: tensor "${e.name}" overlaps tensor "${prev!.name}" (bytes ${e.begin}..${e.end})`);
    }
    if (e.begin > cursor) {
      throw new FormatError(`safetensors: ${e.begin - cursor} unused bytes before tensor "${e.name}" (offsets are not contiguous)`);
    }
    cursor = e.end;
    prev = e;
  }
  if (cursor !== dataLen) {
    throw new FormatError(`safetensors: ${dataLen - cursor} bytes after the last tensor are not covered by the header`);
  }
  return { entries, metadata, dataStart };
}

function parseEntry(name: string, v: unknown, dataLen: number): SafetensorsEntry {
  const what = `safetensors: tensor "${name}"`;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new FormatError(`${what}: entry is not an object`);
  const { dtype, shape, data_offsets: offs } = v as Record<string, unknown>;
  if (typeof dtype !== 'string') throw new FormatError(`${what}: missing dtype`);
  if (!isDType(dtype)) {
    throw new FormatError(`${what}: ${UNSUPPORTED.has(dtype) ? 'unsupported' : 'unknown'} dtype ${JSON.stringify(dtype).slice(0, 40)}`);
  }
  if (!Array.isArray(shape)) throw new FormatError(`${what}: shape is not an array`);
  if (shape.length > 64) throw new FormatError(`${what}: shape has ${shape.length} dimensions`);
  const numel = checkedNumel(shape, what, DTYPE_SIZE[dtype]);
  if (!Array.isArray(offs) || offs.length !== 2) throw new FormatError(`${what}: data_offsets is not a [begin, end] pair`);
  const [begin, end] = offs as unknown[];
  if (!isOffset(begin) || !isOffset(end) || end < begin) {
    throw new FormatError(`${what}: invalid data_offsets ${JSON.stringify(offs).slice(0, 60)}`);
  }
  if (end > dataLen) {
    throw new FormatError(`${what}: data_offsets [${begin}, ${end}] run past the ${dataLen}-byte data section`);
  }
  const need = numel * DTYPE_SIZE[dtype];
  if (end - begin !== need) {
    throw new FormatError(`${what}: shape [${shape.join(', ')}] of ${dtype} needs ${need} bytes but data_offsets span ${end - begin}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

function isOffset(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').slice(0, 120);
}

/** Read every tensor, converted to float32 (dtype records the stored type). */
export function readSafetensors(bytes: Uint8Array, o: ReadOptions = {}): ArrayMap {
  const h = readSafetensorsHeader(bytes);
  const out: ArrayMap = new Map();
  for (const e of h.entries) {
    const numel = e.end - e.begin === 0 ? 0 : (e.end - e.begin) / DTYPE_SIZE[e.dtype];
    const at = bytes.byteOffset + h.dataStart + e.begin;
    const data =
      o.copy === false && e.dtype === 'F32' && at % 4 === 0 && LITTLE_ENDIAN_HOST
        ? new Float32Array(bytes.buffer, at, numel)
        : decodeLE(e.dtype, bytes.subarray(h.dataStart + e.begin, h.dataStart + e.end), numel);
    out.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return out;
}

export interface ReadOptions {
  /**
   * false: float32 tensors are views of `bytes` where aligned (no copy: a 100 MB file then needs
   * 100 MB less), for callers that own the bytes and never change them (a file read for this).
   * Default true: every tensor gets its own copy.
   */
  copy?: boolean;
}

/** The `__metadata__` string map ({} when absent). */
export function readSafetensorsMetadata(bytes: Uint8Array): Record<string, string> {
  return readSafetensorsHeader(bytes).metadata;
}

/**
 * Serialize as safetensors. Every tensor is written as F32, except entries whose dtype is I64
 * (e.g. BatchNorm's num_batches_tracked), which stay I64 so PyTorch reads them back unchanged.
 * The header keeps the map's order; I64 data is laid out first so every tensor is aligned to
 * its element size. The header is padded with spaces to a multiple of 8 bytes.
 */
export function writeSafetensors(map: ArrayMap, metadata?: Record<string, string>): Uint8Array {
  const names = [...map.keys()];
  for (const name of names) {
    if (name === '__metadata__') throw new FormatError('safetensors: a tensor cannot be named "__metadata__"');
    checkArray(name, map.get(name)!);
  }
  const layout = [...names.filter((n) => writtenDType(map.get(n)!) === 'I64'), ...names.filter((n) => writtenDType(map.get(n)!) === 'F32')];
  const offsets = new Map<string, [number, number]>();
  let cursor = 0;
  for (const n of layout) {
    const a = map.get(n)!;
    const len = a.data.length * DTYPE_SIZE[writtenDType(a)];
    offsets.set(n, [cursor, cursor + len]);
    cursor += len;
  }
  // Built by hand so the key order is the map's (JSON.stringify would hoist integer-like keys).
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new FormatError(`safetensors: metadata value for "${k}" is not a string`);
    }
    parts.push(`"__metadata__":${objectJson(metadata)}`);
  }
  for (const n of names) {
    const a = map.get(n)!;
    const entry = `{"dtype":"${writtenDType(a)}","shape":[${a.shape.join(',')}],"data_offsets":[${offsets.get(n)!.join(',')}]}`;
    parts.push(`${JSON.stringify(n)}:${entry}`);
  }
  let header = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil((8 + header.length) / 8) * 8 - 8;
  if (padded !== header.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(header);
    header = p;
  }
  const out = new Uint8Array(8 + header.length + cursor);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, header.length % 4294967296, true);
  dv.setUint32(4, Math.floor(header.length / 4294967296), true);
  out.set(header, 8);
  const dataStart = 8 + header.length;
  for (const n of layout) {
    const a = map.get(n)!;
    out.set(encodeLE(writtenDType(a), a.data, n), dataStart + offsets.get(n)![0]);
  }
  return out;
}

function objectJson(o: Record<string, string>): string {
  return `{${Object.entries(o)
    .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
    .join(',')}}`;
}
