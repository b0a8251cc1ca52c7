// The wasm heap: one WebAssembly.Memory and a JS-side allocator handing out blocks.
//
// A block is a HeapBlock handle (byte offset, length in floats), never a Float32Array: growing a
// memory that is not shared (a browser page that is not cross-origin isolated) detaches its
// ArrayBuffer and every view into it, so a view is made from the current buffer when a kernel
// runs (view()) and is not kept across an allocation. Blocks are 64-byte aligned and rounded to
// 64 bytes. A freed block merges at once with free neighbours (a free block that reaches the bump
// pointer goes back to the bump region); a request takes a free block of its exact size, else the
// smallest larger one (split), else the bump region, else the memory grows, shared or not, up to
// 4 GiB. Reusing freed blocks first matters beyond the peak: the first write of a fresh page is a
// page fault (11 us per 4 KiB on the development VM, any memory kind, C included: 0.3 s per
// 100 MB), so a network's first pass that takes its activations from blocks that earlier layers
// freed costs less. A loop that asks for the same sizes every step reaches a steady state (test:
// test/memory.test.ts).

import type { WasmMemory } from './wasm-types.js';

const PAGE = 65536;
const ALIGN = 64;
const MAX_PAGES = 65536; // 4 GiB

export class OutOfWasmMemory extends Error {}

/** A block of a WasmHeap: `length` floats from byte `offset`. The wasm backend's Storage. */
export class HeapBlock {
  constructor(
    readonly heap: WasmHeap,
    readonly offset: number,
    readonly length: number,
  ) {}
}

export class WasmHeap {
  readonly memory: WasmMemory;
  readonly shared: boolean;
  private buf: ArrayBufferLike;
  private top: number; // bump pointer
  private highWater: number; // bytes above this were never handed out (still zero)
  private readonly base: number;
  private bins = new Map<number, Set<number>>(); // size -> offsets of free blocks of that size
  private freeAt = new Map<number, number>(); // free block offset -> size
  private freeEnd = new Map<number, number>(); // free block end -> offset
  private sizes = new Map<number, number>(); // live offset -> size
  private freeBytes = 0;
  private liveBytes = 0;

  /** memset(0) on the heap; replaced by the wasm module's bulk-memory fill when it is loaded. */
  zeroFill: (off: number, bytes: number) => void = (off, bytes) => new Uint8Array(this.buf, off, bytes).fill(0);

  constructor(memory: WasmMemory, shared: boolean, base: number) {
    this.memory = memory;
    this.shared = shared;
    this.buf = memory.buffer;
    this.base = roundUp(base, ALIGN);
    this.top = this.base;
    this.highWater = this.base;
  }

  /** The memory's current buffer (a new one after each growth; an unshared memory detaches the old one). */
  get buffer(): ArrayBufferLike {
    return this.buf;
  }

  /** Bytes of linear memory (grows, never shrinks). */
  get byteLength(): number {
    return this.buf.byteLength;
  }

  /** Bytes in live blocks. */
  get liveByteCount(): number {
    return this.liveBytes;
  }

  /**
   * A byte offset of a fresh block of at least `bytes` bytes; zero-filled when `zero`. `lasting`:
   * a block kept for long (a cache of transformed weights) takes the lowest free block that fits,
   * so that such blocks gather at the bottom instead of splitting the blocks that a pass's
   * activations come back for (measured: ResNet-50 batch 8 fused, best fit for all, put 50 MB of
   * its second pass's activations on fresh pages).
   */
  allocBytes(bytes: number, zero: boolean, lasting = false): number {
    const size = Math.max(ALIGN, roundUp(bytes, ALIGN));
    let off = lasting ? this.takeLowest(size) : this.takeFree(size);
    if (off < 0) {
      if (this.top + size > this.buf.byteLength) this.grow(this.top + size);
      off = this.top;
      this.top += size;
    }
    this.sizes.set(off, size);
    this.liveBytes += size;
    if (zero && off < this.highWater) this.zeroFill(off, Math.min(size, this.highWater - off));
    if (off + size > this.highWater) this.highWater = off + size;
    return off;
  }

  freeBytesAt(off: number): void {
    let size = this.sizes.get(off);
    if (size === undefined) throw new Error(`wasm heap: free of unknown block at ${off}`);
    this.sizes.delete(off);
    this.liveBytes -= size;
    this.freeBytes += size;
    const left = this.freeEnd.get(off);
    if (left !== undefined) {
      size += this.unlinkFree(left);
      off = left;
    }
    if (this.freeAt.has(off + size)) size += this.unlinkFree(off + size);
    if (off + size === this.top) {
      this.top = off;
      this.freeBytes -= size;
    } else this.linkFree(off, size);
  }

  private linkFree(off: number, size: number): void {
    this.freeAt.set(off, size);
    this.freeEnd.set(off + size, off);
    let bin = this.bins.get(size);
    if (!bin) this.bins.set(size, (bin = new Set()));
    bin.add(off);
  }

  /** Removes a free block from the lists (its bytes stay counted in freeBytes); its size. */
  private unlinkFree(off: number): number {
    const size = this.freeAt.get(off)!;
    this.freeAt.delete(off);
    this.freeEnd.delete(off + size);
    const bin = this.bins.get(size)!;
    bin.delete(off);
    if (bin.size === 0) this.bins.delete(size);
    return size;
  }

  /** The front of the lowest free block of at least `size` bytes, else -1. */
  private takeLowest(size: number): number {
    if (this.freeBytes < size) return -1;
    let off = -1;
    for (const [o, s] of this.freeAt) if (s >= size && (off < 0 || o < off)) off = o;
    if (off < 0) return -1;
    const s = this.unlinkFree(off);
    this.freeBytes -= size;
    if (s > size) this.linkFree(off + size, s - size);
    return off;
  }

  /** A free block of exactly `size` bytes, else the front of the smallest larger one, else -1. */
  private takeFree(size: number): number {
    if (this.freeBytes < size) return -1;
    let best = this.bins.has(size) ? size : -1;
    if (best < 0) for (const s of this.bins.keys()) if (s > size && (best < 0 || s < best)) best = s;
    if (best < 0) return -1;
    const off = this.bins.get(best)!.values().next().value as number;
    this.unlinkFree(off);
    this.freeBytes -= size;
    if (best > size) this.linkFree(off + size, best - size);
    return off;
  }

  /** A zero-filled block of n floats. */
  alloc(n: number): HeapBlock {
    return new HeapBlock(this, n === 0 ? this.base : this.allocBytes(n * 4, true), n);
  }

  free(b: HeapBlock): void {
    if (b.length > 0) this.freeBytesAt(b.offset);
  }

  /** A view of a block in the current buffer: valid until the next allocation (which may grow and detach it). */
  view(b: HeapBlock): Float32Array {
    return new Float32Array(this.buf, b.offset, b.length);
  }

  f32(off: number, n: number): Float32Array {
    return new Float32Array(this.buf, off, n);
  }

  i32(off: number, n: number): Int32Array {
    return new Int32Array(this.buf, off, n);
  }

  /**
   * Grow now to at least `bytes` bytes, as a hint from a caller that knows its working set (the
   * fused model before its first forward), rather than in steps during its first pass (an
   * unshared memory may be copied on each growth). Growing reserves address space only: pages
   * cost memory when first written. Nothing happens where the memory cannot grow.
   */
  reserve(bytes: number): void {
    if (bytes <= this.buf.byteLength) return;
    try {
      this.grow(Math.min(bytes, MAX_PAGES * PAGE));
    } catch (e) {
      if (!(e instanceof OutOfWasmMemory || e instanceof RangeError)) throw e;
    }
  }

  private grow(needBytes: number): void {
    const have = this.buf.byteLength / PAGE;
    const need = Math.ceil(needBytes / PAGE);
    // Grow by at least 1/8 of the current size to amortise (an unshared memory may be copied on
    // growth), within the 4 GiB limit; when that much is refused, try exactly what is needed.
    const want = Math.min(MAX_PAGES, Math.max(need, Math.ceil(have * 1.125)));
    let refused = need > MAX_PAGES;
    if (!refused) {
      try {
        this.memory.grow(want - have);
      } catch {
        try {
          this.memory.grow(need - have);
        } catch {
          refused = true;
        }
      }
    }
    if (refused) {
      const mib = (b: number) => (b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 1 : 0);
      throw new OutOfWasmMemory(
        `wasm backend: out of memory (need ${mib(needBytes)} MiB, have ${mib(this.buf.byteLength)} MiB, ` +
          (need > MAX_PAGES ? `limit ${mib(MAX_PAGES * PAGE)} MiB` : 'the runtime refused to grow it') +
          `; ${mib(this.liveBytes)} MiB in live tensors). Free what you no longer need: scope(() => …) and noGrad(() => …) ` +
          `free what they create except what they return, tensor.dispose() frees one; or use a smaller batch.` +
          (this.shared ? '' : ' (Cross-origin isolation would give threads, not more memory.)'),
      );
    }
    this.buf = this.memory.buffer;
  }
}

function roundUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
