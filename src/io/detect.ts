// Recognise a weights file by its first bytes and read it: .safetensors, .pth/.pt (zip or
// legacy pickle), .npz or a single .npy. Browser-safe.
import { FormatError } from '../base/errors.js';
import type { ArrayMap } from './types.js';
import { type ReadOptions, readSafetensors } from './safetensors.js';
import { readNpy, readNpz } from './npy.js';
import { type PthOptions, readPth } from './pth.js';
import { ZipReader } from './zip.js';

export type ArrayFormat = 'safetensors' | 'pth' | 'npz' | 'npy';

export function detectFormat(bytes: Uint8Array): ArrayFormat {
  const b = bytes;
  if (b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04) {
    const zip = new ZipReader(b);
    return zip.entries.some((e) => /^([^/]*\/)?data\.pkl$/.test(e.name)) ? 'pth' : 'npz';
  }
  if (b.length >= 6 && b[0] === 0x93 && String.fromCharCode(...b.subarray(1, 6)) === 'NUMPY') return 'npy';
  if (b.length >= 2 && b[0] === 0x80 && b[1] <= 5) return 'pth';
  if (b.length >= 9 && b[8] === 0x7b) return 'safetensors'; // '{' after the 8-byte header length
  throw new FormatError('unrecognised file format (expected .safetensors, .pth, .npz or .npy)');
}

/**
 * Read any supported file into named arrays; a lone .npy becomes one entry named after the file.
 * `o.copy` false: safetensors float32 data may stay views of `bytes` (see ReadOptions).
 */
export function readArrays(bytes: Uint8Array, name = 'array', pth?: PthOptions, o: ReadOptions = {}): ArrayMap {
  switch (detectFormat(bytes)) {
    case 'safetensors':
      return readSafetensors(bytes, o);
    case 'pth':
      return readPth(bytes, pth);
    case 'npz':
      return readNpz(bytes);
    case 'npy':
      return new Map([[name.replace(/\.npy$/, ''), readNpy(bytes)]]);
  }
}
