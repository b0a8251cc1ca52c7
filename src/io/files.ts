// Node file helpers around the browser-safe parsers: read a file into bytes, parse, and name the
// file in any FormatError; write atomically (temp file in the same folder, then rename).
import { closeSync, fstatSync, mkdirSync, openSync, readSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError, FormatError } from '../base/errors.js';
import type { ArrayMap, NamedArray } from './types.js';
import { type ReadOptions, readSafetensors, readSafetensorsMetadata, writeSafetensors } from './safetensors.js';
import { readNpy, readNpz, writeNpy, writeNpz } from './npy.js';
import { type PthOptions, readPth, writePth } from './pth.js';
import { readArrays } from './detect.js';

/** Read a whole file, turning fs errors into a one-line ConfigError that names the path. */
export function readBytes(path: string, into?: (bytes: number) => Uint8Array): Uint8Array {
  try {
    if (!into) return readFileSync(path);
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = into(size);
      for (let at = 0; at < size;) {
        const n = readSync(fd, buf, at, size - at, at);
        if (n === 0) throw new ConfigError(`cannot read ${path}: it shrank while being read`);
        at += n;
      }
      return buf;
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : (err.code ?? err.message);
    throw new ConfigError(`cannot read ${path}: ${why}`);
  }
}

/** Write bytes atomically: a temp file beside the target, then rename over it. */
export function writeBytesAtomic(path: string, bytes: Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // the temp file was never created
    }
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError(`cannot write ${path}: ${err.code ?? err.message}`);
  }
}

/** Run a parser on a file's bytes; a FormatError (or subclass) gets the path prefixed. */
export function parseFile<T>(path: string, parse: (bytes: Uint8Array) => T, into?: (bytes: number) => Uint8Array): T {
  const bytes = readBytes(path, into);
  try {
    return parse(bytes);
  } catch (e) {
    if (e instanceof FormatError) {
      const Cls = e.constructor as new (m: string) => FormatError;
      throw new Cls(`${path}: ${e.message}`);
    }
    throw e;
  }
}

// The bytes of a file read here belong to the call, so float32 tensors may stay views of them.
/** `o.copy` false: float32 data may stay views of the file's bytes (no second copy; see ReadOptions). */
export function readSafetensorsFile(path: string, o: ReadOptions = {}): ArrayMap {
  return parseFile(path, (b) => readSafetensors(b, o));
}

export function readSafetensorsMetadataFile(path: string): Record<string, string> {
  return parseFile(path, readSafetensorsMetadata);
}

export function writeSafetensorsFile(path: string, map: ArrayMap, metadata?: Record<string, string>): void {
  writeBytesAtomic(path, writeSafetensors(map, metadata));
}

export function readNpyFile(path: string): NamedArray {
  return parseFile(path, readNpy);
}

export function writeNpyFile(path: string, arr: NamedArray): void {
  writeBytesAtomic(path, writeNpy(arr));
}

export function readNpzFile(path: string): ArrayMap {
  return parseFile(path, (b) => readNpz(b));
}

export function writeNpzFile(path: string, map: ArrayMap, opts?: { compress?: boolean }): void {
  writeBytesAtomic(path, writeNpz(map, opts));
}

export function readPthFile(path: string, opts?: PthOptions): ArrayMap {
  return parseFile(path, (b) => readPth(b, opts));
}

/** Write a state dict as torch.save does; the archive folder is named 'archive' (as torch.save to a buffer, and torch 2.x always). */
export function writePthFile(path: string, map: ArrayMap): void {
  writeBytesAtomic(path, writePth(map));
}

export interface FileReadOptions extends ReadOptions {
  /**
   * Where to read the file: an area of `bytes` bytes that the caller owns (the wasm backend's heap,
   * given back once the arrays are loaded: backend.stagingBytes); default a new Buffer.
   */
  into?: (bytes: number) => Uint8Array;
}

/** Read a .safetensors, .pth/.pt, .npz or .npy file, recognised by its content. */
export function readArraysFile(path: string, pth?: PthOptions, o: FileReadOptions = {}): ArrayMap {
  return parseFile(path, (b) => readArrays(b, basename(path), pth, o), o.into);
}

/** Read a folder of .npy files (an unzipped .npz): "name.npy" becomes key "name". */
export function readNpyFolder(dir: string): ArrayMap {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((f) => f.endsWith('.npy'))
      .sort();
  } catch (e) {
    throw new ConfigError(`cannot read folder ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (names.length === 0) throw new FormatError(`${dir}: no .npy files in the folder`);
  return new Map(names.map((f) => [f.slice(0, -4), readNpyFile(join(dir, f))]));
}

/** Write one "name.npy" per entry into dir (created if needed), each atomically. */
export function writeNpyFolder(dir: string, map: ArrayMap): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, arr] of map) {
    if (name.includes('/') || name.includes('\\') || name === '' || name === '.' || name === '..') {
      throw new ConfigError(`cannot write tensor "${name}" as a file name`);
    }
    writeNpyFile(join(dir, `${name}.npy`), arr);
  }
}
