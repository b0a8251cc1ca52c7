// The wasm heap: one WebAssembly.Memory and a JS-side allocator handing out blocks.
//
// A block is a HeapBlock handle (byte offset, length in floats), never a Float32Array: growing a
// memory that is not shared (a browser page that is not cross-origin isolated) detaches its
// ArrayBuffer and every view into it, so a view is made from the current buffer when a kernel
// runs (view()) and is not kept across an allocation. Blocks are 64-byte aligned, rounded to 64
// bytes, and recycled by exact size (a training loop asks for the same sizes every step, so
// steady state is all bin hits). When the bump region is exhausted the free blocks are coalesced
// and searched best-fit before the memory grows, shared or not, up to 4 GiB.

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
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  private buf: ArrayBufferLike;
  private top: number; // bump pointer
  private highWater: number; // bytes above this were never handed out (still zero)
  private readonly base: number;
  private bins = new Map<number, number[]>(); // size -> free offsets
  private sizes = new Map<number, number>(); // live offset -> size
  private freeBytes = 0;
  private liveBytes = 0;

  /** memset(0) on the heap; replaced by the wasm module's bulk-memory fill when it is loaded. */
  zeroFill: (off: number, bytes: number) => void = (off, bytes) => new Uint8Array(this.buf, off, bytes).fill(0);

  constructor(memory: WebAssembly.Memory, shared: boolean, base: number) {
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

  /** A byte offset of a fresh block of at least `bytes` bytes; zero-filled when `zero`. */
  allocBytes(bytes: number, zero: boolean): number {
    const size = Math.max(ALIGN, roundUp(bytes, ALIGN));
    let off: number;
    const bin = this.bins.get(size);
    if (bin && bin.length > 0) {
      off = bin.pop()!;
      this.freeBytes -= size;
    } else if (this.top + size <= this.buf.byteLength) {
      off = this.top;
      this.top += size;
    } else {
      off = this.fromFreeBlocks(size);
      if (off < 0) {
        this.grow(this.top + size);
        off = this.top;
        this.top += size;
      }
    }
    this.sizes.set(off, size);
    this.liveBytes += size;
    if (zero && off < this.highWater) this.zeroFill(off, Math.min(size, this.highWater - off));
    if (off + size > this.highWater) this.highWater = off + size;
    return off;
  }

  freeBytesAt(off: number): void {
    const size = this.sizes.get(off);
    if (size === undefined) throw new Error(`wasm heap: free of unknown block at ${off}`);
    this.sizes.delete(off);
    this.liveBytes -= size;
    this.freeBytes += size;
    let bin = this.bins.get(size);
    if (!bin) this.bins.set(size, (bin = []));
    bin.push(off);
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
   * fused model before its first forward): the first pass then takes every block from the bump
   * region and the exact-size bins it leaves serve the next passes, where running out half way
   * merges the bins and the next pass grows again (measured: ResNet-50 batch 8 grew 346 -> 438 MiB
   * on its second forward). Growing reserves address space only: pages cost memory when first
   * written. Nothing happens where the memory cannot grow.
   */
  reserve(bytes: number): void {
    if (bytes <= this.buf.byteLength) return;
    try {
      this.grow(Math.min(bytes, MAX_PAGES * PAGE));
    } catch (e) {
      if (!(e instanceof OutOfWasmMemory || e instanceof RangeError)) throw e;
    }
  }

  /** Merge adjacent free blocks, give a trailing one back to the bump region, then best-fit. */
  private fromFreeBlocks(size: number): number {
    if (this.freeBytes === 0) return -1;
    const blocks: [number, number][] = [];
    for (const [s, offs] of this.bins) for (const o of offs) blocks.push([o, s]);
    blocks.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const b of blocks) {
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === b[0]) last[1] += b[1];
      else merged.push([b[0], b[1]]);
    }
    this.bins.clear();
    const lastBlock = merged[merged.length - 1];
    if (lastBlock && lastBlock[0] + lastBlock[1] === this.top) {
      this.top = lastBlock[0];
      this.freeBytes -= lastBlock[1];
      merged.pop();
    }
    let best = -1;
    for (let i = 0; i < merged.length; i++) {
      if (merged[i][1] >= size && (best < 0 || merged[i][1] < merged[best][1])) best = i;
    }
    let off = -1;
    if (best >= 0) {
      const [o, s] = merged[best];
      off = o;
      this.freeBytes -= size;
      merged[best] = [o + size, s - size];
    }
    for (const [o, s] of merged) {
      if (s === 0) continue;
      let bin = this.bins.get(s);
      if (!bin) this.bins.set(s, (bin = []));
      bin.push(o);
    }
    if (off < 0 && this.top + size <= this.buf.byteLength) {
      off = this.top;
      this.top += size;
    }
    return off;
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
