// Node-only file helper for IDX: reads a file (gzipped or not) and parses it. node:zlib inflates the
// 26 MB Fashion-MNIST training images about twice as fast as the pure-JS path in idx.ts.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { ConfigError, FormatError } from '../base/errors.js';
import { isGzip, parseRawIdx, type IdxArray } from './idx.js';

/** Inflate a gzip buffer with node:zlib, reporting truncation and corruption as FormatError naming `name`. */
export function gunzipFile(bytes: Uint8Array, name: string): Uint8Array {
  if (bytes.length < 18) throw new FormatError(`${name}: truncated gzip file (${bytes.length} bytes)`);
  let out: Buffer;
  try {
    out = gunzipSync(bytes);
  } catch (e) {
    const msg = (e as Error).message;
    const what = /unexpected end/i.test(msg) ? 'truncated gzip data' : 'corrupt gzip data';
    throw new FormatError(`${name}: ${what} (${msg})`);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Read and parse an IDX file; `.gz` (or any gzip-magic) files are inflated first. */
export function readIdxFile(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new ConfigError(`${path}: cannot read IDX file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (isGzip(bytes)) bytes = gunzipFile(bytes, path);
  return parseRawIdx(bytes, path);
}
