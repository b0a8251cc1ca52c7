// A bounded zip reader (what torch.save and np.savez write), and a stored-entry zip writer with
// torch.save's 64-byte data alignment. Browser-safe. It trusts nothing:
// the central directory, every local header and every data range must lie inside the file and
// before the central directory, entries may not overlap, sizes and entry counts are capped, a
// deflated entry may not claim more than deflate can produce from its compressed size, inflation
// stops as soon as it passes the declared size, and the CRC-32 must match.
import { Inflate, type Zippable, zipSync } from 'fflate';
import { FormatError } from '../base/errors.js';

export interface ZipLimits {
  /** Most entries in the central directory. */
  maxEntries: number;
  /** Largest uncompressed entry, in bytes. */
  maxEntrySize: number;
  /** Largest sum of the declared uncompressed sizes. */
  maxTotalSize: number;
  /** Largest uncompressed/compressed ratio of a deflated entry (deflate itself tops out near 1032). */
  maxRatio: number;
}

export const DEFAULT_ZIP_LIMITS: Readonly<ZipLimits> = {
  maxEntries: 65536,
  maxEntrySize: 2 ** 31,
  maxTotalSize: 2 ** 33,
  maxRatio: 1040,
};

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localOffset: number;
  /** Where the entry's (possibly compressed) bytes start. */
  dataOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_Z64_LOCATOR = 0x07064b50;
const SIG_Z64_EOCD = 0x06064b50;
const INFLATE_CHUNK = 16384;

export class ZipReader {
  readonly entries: ZipEntry[] = [];
  private readonly byName = new Map<string, ZipEntry>();
  private readonly dv: DataView;
  private readonly limits: ZipLimits;

  constructor(
    private readonly bytes: Uint8Array,
    limits: Partial<ZipLimits> = {},
  ) {
    this.limits = { ...DEFAULT_ZIP_LIMITS, ...limits };
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.parse();
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  get(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /** The uncompressed bytes of an entry (a view into the file for stored entries). */
  read(nameOrEntry: string | ZipEntry): Uint8Array {
    const e = typeof nameOrEntry === 'string' ? this.byName.get(nameOrEntry) : nameOrEntry;
    if (!e) throw new FormatError(`zip: no entry named "${String(nameOrEntry).slice(0, 200)}"`);
    const comp = this.bytes.subarray(e.dataOffset, e.dataOffset + e.compressedSize);
    const data = e.method === 0 ? comp : inflateBounded(comp, e.size, e.name);
    if (crc32(data) !== e.crc32) throw new FormatError(`zip entry "${e.name}": CRC-32 mismatch (corrupt data)`);
    return data;
  }

  private u16(o: number): number {
    return this.dv.getUint16(o, true);
  }

  private u32(o: number): number {
    return this.dv.getUint32(o, true);
  }

  private u64(o: number, what: string): number {
    const v = this.dv.getUint32(o + 4, true) * 4294967296 + this.dv.getUint32(o, true);
    if (!Number.isSafeInteger(v)) throw new FormatError(`zip: ${what} is out of range`);
    return v;
  }

  private need(o: number, n: number, what: string): void {
    if (o < 0 || o + n > this.bytes.length) throw new FormatError(`zip: ${what} at offset ${o} lies outside the ${this.bytes.length}-byte file`);
  }

  private parse(): void {
    const b = this.bytes;
    const { maxEntries, maxEntrySize, maxTotalSize, maxRatio } = this.limits;
    // End of central directory: 22 bytes plus a comment of up to 65535 bytes at the very end.
    let eocd = -1;
    for (let o = b.length - 22; o >= Math.max(0, b.length - 22 - 65535); o--) {
      if (this.u32(o) === SIG_EOCD && o + 22 + this.u16(o + 20) === b.length) {
        eocd = o;
        break;
      }
    }
    if (eocd < 0) throw new FormatError('zip: end of central directory not found (not a zip file, or truncated)');
    let disk = this.u16(eocd + 4);
    let cdDisk = this.u16(eocd + 6);
    let count = this.u16(eocd + 10);
    let cdSize = this.u32(eocd + 12);
    let cdOffset = this.u32(eocd + 16);
    let cdLimit = eocd; // the central directory must end before this
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || this.u32(loc) !== SIG_Z64_LOCATOR) throw new FormatError('zip: zip64 locator missing');
      const z = this.u64(loc + 8, 'zip64 end record offset');
      this.need(z, 56, 'zip64 end record');
      if (this.u32(z) !== SIG_Z64_EOCD || z + 56 > loc) throw new FormatError('zip: bad zip64 end record');
      disk = this.u32(z + 16);
      cdDisk = this.u32(z + 20);
      count = this.u64(z + 32, 'entry count');
      cdSize = this.u64(z + 40, 'central directory size');
      cdOffset = this.u64(z + 48, 'central directory offset');
      cdLimit = z;
    }
    if (disk !== 0 || cdDisk !== 0) throw new FormatError('zip: multi-disk archives are not supported');
    if (count > maxEntries) throw new FormatError(`zip: ${count} entries exceed the limit of ${maxEntries}`);
    if (cdOffset + cdSize > cdLimit) throw new FormatError(`zip: central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record`);
    if (count * 46 > cdSize) throw new FormatError(`zip: central directory of ${cdSize} bytes cannot hold ${count} entries`);

    let p = cdOffset;
    const cdEnd = cdOffset + cdSize;
    let total = 0;
    const utf8 = new TextDecoder('utf-8');
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdEnd || this.u32(p) !== SIG_CENTRAL) throw new FormatError(`zip: bad central directory entry #${i} at offset ${p}`);
      const flags = this.u16(p + 8);
      const method = this.u16(p + 10);
      const crc = this.u32(p + 16);
      let compressedSize = this.u32(p + 20);
      let size = this.u32(p + 24);
      const nameLen = this.u16(p + 28);
      const extraLen = this.u16(p + 30);
      const commentLen = this.u16(p + 32);
      let startDisk = this.u16(p + 34);
      let localOffset = this.u32(p + 42);
      const next = p + 46 + nameLen + extraLen + commentLen;
      if (next > cdEnd) throw new FormatError(`zip: central directory entry #${i} runs past the directory`);
      const name = utf8.decode(b.subarray(p + 46, p + 46 + nameLen));
      // zip64 extra field: the 64-bit values of the fields that were saturated, in this order.
      for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen;) {
        const id = this.u16(x);
        const len = this.u16(x + 2);
        if (x + 4 + len > p + 46 + nameLen + extraLen) throw new FormatError(`zip entry "${name}": bad extra field`);
        if (id === 0x0001) {
          let q = x + 4;
          const take = (what: string): number => {
            if (q + 8 > x + 4 + len) throw new FormatError(`zip entry "${name}": short zip64 extra field`);
            const v = this.u64(q, what);
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = take('size');
          if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
          if (localOffset === 0xffffffff) localOffset = take('local header offset');
          if (startDisk === 0xffff) startDisk = q + 4 <= x + 4 + len ? this.u32(q) : startDisk;
        }
        x += 4 + len;
      }
      const what = `zip entry "${name}"`;
      if (flags & 1) throw new FormatError(`${what}: encrypted entries are not supported`);
      if (method !== 0 && method !== 8) throw new FormatError(`${what}: unsupported compression method ${method}`);
      if (startDisk !== 0) throw new FormatError(`${what}: lies on another disk`);
      if (method === 0 && size !== compressedSize) throw new FormatError(`${what}: stored entry with size ${size} != compressed size ${compressedSize}`);
      if (size > maxEntrySize) throw new FormatError(`${what}: size ${size} exceeds the limit of ${maxEntrySize} bytes`);
      if (method === 8 && size > Math.max(compressedSize, 1) * maxRatio) {
        throw new FormatError(`${what}: claims ${size} bytes from ${compressedSize} compressed (ratio above ${maxRatio}, a zip bomb?)`);
      }
      total += size;
      if (total > maxTotalSize) throw new FormatError(`zip: total uncompressed size exceeds the limit of ${maxTotalSize} bytes`);
      // The local header gives the real start of the data.
      if (localOffset + 30 > cdOffset) throw new FormatError(`${what}: local header offset ${localOffset} is outside the entry area`);
      if (this.u32(localOffset) !== SIG_LOCAL) throw new FormatError(`${what}: no local header at offset ${localOffset}`);
      const dataOffset = localOffset + 30 + this.u16(localOffset + 26) + this.u16(localOffset + 28);
      if (dataOffset + compressedSize > cdOffset) {
        throw new FormatError(`${what}: data (offset ${dataOffset}, ${compressedSize} bytes) runs past the entry area`);
      }
      if (this.byName.has(name)) throw new FormatError(`${what}: duplicate entry name`);
      const e: ZipEntry = { name, method, compressedSize, size, crc32: crc, localOffset, dataOffset };
      this.entries.push(e);
      this.byName.set(name, e);
      p = next;
    }
    // Entries may not share bytes (the overlapping-entry zip bomb).
    const sorted = [...this.entries].sort((a, c) => a.localOffset - c.localOffset);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1];
      if (prev.dataOffset + prev.compressedSize > sorted[i].localOffset) {
        throw new FormatError(`zip: entries "${prev.name}" and "${sorted[i].name}" overlap`);
      }
    }
  }
}

/**
 * Inflate raw deflate data into exactly `size` bytes. Output is collected as it comes, so a
 * false size claim costs nothing, and inflation stops as soon as it passes `size`.
 */
function inflateBounded(comp: Uint8Array, size: number, name: string): Uint8Array {
  const chunks: Uint8Array[] = [];
  let n = 0;
  const inf = new Inflate((chunk: Uint8Array) => {
    if (n + chunk.length > size) throw new FormatError(`zip entry "${name}": inflates past its declared ${size} bytes (a zip bomb?)`);
    chunks.push(chunk);
    n += chunk.length;
  });
  try {
    if (comp.length === 0) inf.push(comp, true);
    for (let p = 0; p < comp.length; p += INFLATE_CHUNK) inf.push(comp.subarray(p, p + INFLATE_CHUNK), p + INFLATE_CHUNK >= comp.length);
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(`zip entry "${name}": corrupt deflate data (${(e as Error).message})`);
  }
  if (n !== size) throw new FormatError(`zip entry "${name}": inflated to ${n} bytes, expected ${size}`);
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

let crcTable: Int32Array | null = null;

export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c;
    }
  }
  let c = -1;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** torch.save pads each local header's extra field ("FB" id, 'Z' bytes) so every entry's data starts on 64 bytes. */
const ALIGN_EXTRA_ID = 0x4246;

/**
 * A zip of stored (uncompressed) entries, in the given order, each entry's data starting at a
 * multiple of `align` bytes, as PyTorch's zip writer lays them out (so the storages can be mapped
 * in place). Deterministic: fixed DOS time 1980-01-01. No zip64: entries and the archive must
 * stay under 4 GiB.
 */
export function writeZipStored(entries: ReadonlyArray<readonly [string, Uint8Array]>, align = 64): Uint8Array {
  const files: Zippable = {};
  const mtime = new Date(1980, 0, 1, 0, 0, 0);
  let offset = 0;
  for (const [name, data] of entries) {
    const nameLen = new TextEncoder().encode(name).length;
    if (Object.prototype.hasOwnProperty.call(files, name)) throw new FormatError(`zip: duplicate entry name "${name}"`);
    // The data starts after the 30-byte header, the name and the extra field (4-byte head + padding).
    const start = offset + 30 + nameLen + 4;
    const pad = (align - (start % align)) % align;
    files[name] = [data, { level: 0, mtime, extra: { [ALIGN_EXTRA_ID]: new Uint8Array(pad).fill(0x5a) } }];
    offset = start + pad + data.length;
    if (data.length > 0xfffffffe || offset > 0xfffffffe) {
      throw new FormatError(`zip: "${name}" ends past 4 GiB (${offset} bytes); zip64 output is not supported`);
    }
  }
  return zipSync(files);
}
