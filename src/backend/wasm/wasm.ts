// The wasm backend: RefBackend's interface with buffers in one WebAssembly.Memory (shared between
// threads where the runtime allows) and the heavy kernels in AssemblyScript/SIMD128 (assembly/),
// run on a pool of threads. A buffer is a HeapBlock (offset, length): kernels here pass offsets to
// wasm; any kernel not overridden is RefBackend's, on views that view() makes when it starts
// (an unshared memory detaches every view when it grows, so none is kept across an allocation).
import type { BinaryOp, Conv2dParams, Pool2dParams, Storage, UnaryOp } from '../backend.js';
import { RefBackend } from '../ref/ref.js';
import * as c from './kernels.generated.js';
import { compileKernels, instantiate, sharedMemorySupported, type KernelExports } from './loader.js';
import { HeapBlock, WasmHeap } from './memory.js';
import { CONTROL_BYTES, ThreadPool, WORKER_START_TIMEOUT_MS, webWorkerSource, type WorkerFactory } from './threads.js';
import { nodeCores, nodeWorkers } from './host.js';
import type { WasmModule } from './wasm-types.js';

export interface WasmBackendOptions {
  /** Threads, the main thread included (default: the machine's cores). */
  threads?: number;
  /** No worker threads at all (default false: node:worker_threads in Node, Web Workers in browsers). */
  singleThread?: boolean;
  /** The memory's size at start in bytes (default 16 MiB shared, 32 MiB unshared); it grows on demand up to 4 GiB. */
  initialMemoryBytes?: number;
  /**
   * Browsers: the URL of a script whose text is webWorkerSource(), started as the worker threads
   * instead of a blob: URL (for a Content-Security-Policy whose worker-src does not allow blob:).
   */
  workerUrl?: string | URL;
  /** false: use an unshared memory (1 thread) even where shared memory works, as on a page that is not cross-origin isolated. */
  sharedMemory?: boolean;
  /**
   * Benchmarks: another build of the same kernel sources (same layout; e.g. the relaxed-SIMD
   * build of bench/relaxed-simd.ts) for the memory kind chosen, instead of the embedded one.
   */
  kernelModule?: WasmModule;
}

const DESC_WORDS = 256;
/** Jobs below this many flops run on the calling thread only. */
const PARALLEL_MIN_FLOPS = 1 << 18;

const BINARY_OP: Record<BinaryOp, number> = { add: c.OP_ADD, sub: c.OP_SUB, mul: c.OP_MUL, div: c.OP_DIV, max: c.OP_MAX, min: c.OP_MIN };
const BINARY_SCALAR_OP: Record<BinaryOp, number> = {
  add: c.OP_ADD_S,
  sub: c.OP_SUB_S,
  mul: c.OP_MUL_S,
  div: c.OP_DIV_S,
  max: c.OP_MAX_S,
  min: c.OP_MIN_S,
};
const UNARY_OP: Partial<Record<UnaryOp, number>> = { relu: c.OP_RELU, neg: c.OP_NEG, abs: c.OP_ABS, sqrt: c.OP_SQRT };

/** Winograd output tile: F(2x2,3x3) or F(4x4,3x3). */
export type WinoTile = 2 | 4;

/**
 * Floats between two transformed Winograd planes holding n floats each: n rounded up to 16 so
 * that the stride in 64-byte lines is odd. The transforms write (read) all 16 or 36 planes at
 * once; at a stride that is a multiple of 4 KiB they all fall in the same L1 sets (measured: the
 * F(4x4) weight transform of 512x512 filters 8x slower).
 */
function planeStride(n: number): number {
  const s = Math.ceil(n / 16) * 16;
  return (s / 16) % 2 === 0 ? s + 16 : s;
}
/**
 * A job's arguments by slot (the constants of kernels.generated.ts: `{ [c.G_M]: M }`); a slot not
 * given is 0. A slot the kernels read as f32 is c.F32 + its index (jobs of different kinds reuse
 * the same words, as f32 in one and i32 in another).
 */
type JobArgs = Record<number, number>;
const E_FLOATS = [c.E_F0, c.E_F1, c.E_F2, c.E_F3, c.E_F4, c.E_F5, c.E_F6];
const E_INTS = [c.E_I0, c.E_I1];

interface GemmSpec {
  M: number;
  N: number;
  K: number;
  /** aMode 2: conv weights read flipped and transposed (aCg channels per group, aRS = R*S). */
  A: number;
  lda: number;
  aTrans: boolean;
  aMode?: number;
  aCg?: number;
  aRS?: number;
  B: number;
  ldb: number;
  bMode: number;
  C: number;
  ldc: number;
  cMode: number;
  accumulate: boolean;
  // The fields from bias to bSeg are optional: a job that leaves one out gets no bias and no
  // ReLU, one batch (nb1 = nb2 = 1), zero batch strides and one K segment (kSegs = 1).
  bias?: number;
  biasS2?: number;
  relu?: boolean;
  nb1?: number;
  nb2?: number;
  aS1?: number;
  aS2?: number;
  bS1?: number;
  bS2?: number;
  cS1?: number;
  cS2?: number;
  kSegs?: number;
  aSeg?: number;
  bSeg?: number;
  /** K of the last K segment when shorter than K (images that do not fill a segment). */
  kLast?: number;
  /** A mode 3: floats between images (A[i, n*L + l] = A[n*aImg + i*lda + l], L = conv.L). */
  aImg?: number;
  /** C is one contiguous block of batch*M*N floats: the K segments may be split over tasks. */
  cContiguous?: boolean;
  /** A is constant (inference weights): its packed panels are made once and kept under this key. */
  aKey?: Storage | null;
  /** ... and packed into A's own block (the key's), which nothing else reads: no second copy. */
  aInPlace?: boolean;
  conv?: {
    L: number;
    OW: number;
    XIMG: number;
    CIMG: number;
    WP: number;
    HWP: number;
    SH: number;
    SW: number;
    DH: number;
    DW: number;
    R: number;
    S: number;
    /** C mode 2: the output sub-rectangle's offset in its plane, and the plane's width */
    COFF?: number;
    COW?: number;
  };
}

export class WasmBackend extends RefBackend {
  override readonly name: string = 'wasm';
  readonly heap: WasmHeap;
  /** The kernel module's exports (bench/micro-kernel.ts calls bench_kernel). */
  readonly kernels: KernelExports;
  private readonly pool: ThreadPool;
  private readonly descPtr: number;
  private desc: { i: Int32Array; f: Float32Array };
  private scratchPtr = 0;
  private scratchThreads = 0;
  private readonly scratchPerThread: number;
  private temps: number[] = [];
  private copyBack: { ptr: number; dst: Storage }[] = [];
  private big = new Map<string, { ptr: number; bytes: number }>();

  constructor(
    heap: WasmHeap,
    kernels: KernelExports,
    module: WasmModule,
    factory: WorkerFactory | null,
    source: string,
    noThreadsReason: string | null = null,
    startTimeoutMs?: number,
  ) {
    super();
    this.heap = heap;
    this.kernels = kernels;
    this.descPtr = heap.allocBytes(DESC_WORDS * 4, true);
    this.desc = this.descViews();
    const ctrl = heap.allocBytes(CONTROL_BYTES, true);
    this.scratchPerThread = Math.ceil(c.SCRATCH_BYTES / 64) * 64;
    this.pool = new ThreadPool(module, heap.memory, ctrl, (d, t) => kernels.run_job(d, t), factory, source, noThreadsReason, startTimeoutMs);
  }

  private descViews(): { i: Int32Array; f: Float32Array } {
    return { i: this.heap.i32(this.descPtr, DESC_WORDS), f: this.heap.f32(this.descPtr, DESC_WORDS) };
  }

  /** The job descriptor as i32 words, viewed anew after the memory grew (an unshared memory detaches old views). */
  private get di(): Int32Array {
    if (this.desc.i.buffer !== this.heap.buffer) this.desc = this.descViews();
    return this.desc.i;
  }

  /** The same words as f32. */
  private get df(): Float32Array {
    if (this.desc.f.buffer !== this.heap.buffer) this.desc = this.descViews();
    return this.desc.f;
  }

  // ---------------------------------------------------------------- threads

  /** Threads used by kernels, the main thread included. */
  get threads(): number {
    return this.pool.size;
  }

  /** Use n threads (main included); resolves when they have all started. */
  setThreads(n: number): Promise<void> {
    return this.pool.setThreads(n);
  }

  /** Terminates the worker threads (the backend keeps working on one thread). */
  dispose(): void {
    this.pool.terminate();
  }

  // ---------------------------------------------------------------- storage

  override alloc(n: number): HeapBlock {
    this.live += n;
    return this.heap.alloc(n);
  }

  reserve(bytes: number): void {
    this.heap.reserve(bytes);
  }

  /** Backend.stagingBytes: a block of the heap, only where it is shared (an unshared one detaches its views when it grows). */
  stagingBytes(bytes: number): { bytes: Uint8Array; release(): void } | null {
    if (!this.heap.shared) return null;
    let off = this.heap.allocBytes(bytes, false);
    return {
      bytes: new Uint8Array(this.heap.buffer, off, bytes),
      release: () => {
        if (off >= 0) this.heap.freeBytesAt(off);
        off = -1;
      },
    };
  }

  override free(buf: Storage): void {
    const u = this.weightCache.get(buf);
    if (u !== undefined) {
      for (const p of Object.values(u)) this.heap.freeBytesAt(p);
      this.weightCache.delete(buf);
    }
    if (this.packedACache.has(buf)) this.dropPackedA(buf);
    if (this.ours(buf)) {
      this.heap.free(buf);
      this.live -= buf.length;
    }
  }

  /** A view of a block made now, or a foreign array itself (kernels also take plain Float32Arrays). */
  override view(s: Storage): Float32Array {
    return s instanceof HeapBlock ? s.heap.view(s) : (s as Float32Array);
  }

  private ours(s: Storage): s is HeapBlock {
    return s instanceof HeapBlock && s.heap === this.heap;
  }

  /** Winograd weight transforms by weight buffer, one per tile size (F(2x2): 2, F(4x4): 4). */
  private weightCache = new Map<Storage, Partial<Record<WinoTile, number>>>();
  /** Constant GEMM A operands (inference weights) packed once: key -> layout tag -> pointer. */
  private packedACache = new Map<Storage, Map<string, number>>();

  /**
   * The packed-A area of this key and layout; fresh: just allocated, still to be packed. inPlace:
   * the key's own block, where nothing else reads it and the layout is the only one it ever needs.
   */
  private packedA(key: Storage, tag: string, bytes: number, inPlace: boolean): { ptr: number; fresh: boolean } {
    let m = this.packedACache.get(key);
    if (!m) this.packedACache.set(key, (m = new Map()));
    const ptr = m.get(tag);
    if (ptr !== undefined) return { ptr, fresh: false };
    if (this.packedInPlace.has(key)) throw new Error(`wasm backend: weights packed in place for ${[...m.keys()][0]} asked for as ${tag}`);
    const own = inPlace && m.size === 0 && this.ours(key) && key.length * 4 === bytes;
    const p = own ? (key as HeapBlock).offset : this.heap.allocBytes(bytes, false, true);
    if (own) this.packedInPlace.add(key);
    m.set(tag, p);
    this.counters.packA++;
    return { ptr: p, fresh: true };
  }

  /** Keys whose own block holds their packed panels: their entry lives as long as they do. */
  private packedInPlace = new Set<Storage>();

  private dropPackedA(key: Storage | null): void {
    for (const [k, m] of this.packedACache) {
      if (key !== null && k !== key) continue;
      if (this.packedInPlace.has(k)) {
        if (key === null) continue;
        this.packedInPlace.delete(k);
      } else for (const p of m.values()) this.heap.freeBytesAt(p);
      this.packedACache.delete(k);
    }
  }
  private cacheOn = false;

  /**
   * Inference: keep transformed convolution weights (Winograd) between calls, keyed by the
   * weight buffer. While on, weights must not change in place; turning it off (or freeing a
   * weight buffer) drops the cached transforms. Off by default.
   */
  get cacheWeights(): boolean {
    return this.cacheOn;
  }

  set cacheWeights(on: boolean) {
    this.cacheOn = on;
    if (!on) {
      for (const u of this.weightCache.values()) for (const p of Object.values(u)) this.heap.freeBytesAt(p);
      this.weightCache.clear();
      this.dropPackedA(null);
    }
  }

  // ---------------------------------------------------------------- helpers

  /** Pointer to an input buffer; copies it into the heap if it lives elsewhere (a plain array). */
  private inp(a: Storage): number {
    if (this.ours(a)) return a.offset;
    const p = this.heap.allocBytes(a.length * 4, false);
    this.heap.f32(p, a.length).set(this.view(a)); // viewed after the allocation, which may grow the memory
    this.temps.push(p);
    return p;
  }

  /** Pointer to an output buffer; a foreign one gets a heap copy that is copied back by done(). */
  private out(a: Storage, readFirst: boolean): number {
    if (this.ours(a)) return a.offset;
    const p = this.heap.allocBytes(a.length * 4, false);
    if (readFirst) this.heap.f32(p, a.length).set(this.view(a));
    this.temps.push(p);
    this.copyBack.push({ ptr: p, dst: a });
    return p;
  }

  private done(): void {
    for (const { ptr, dst } of this.copyBack) this.view(dst).set(this.heap.f32(ptr, dst.length));
    for (const p of this.temps) this.heap.freeBytesAt(p);
    this.temps = [];
    this.copyBack = [];
  }

  /** A grow-only scratch area that is reused between calls. */
  private scratch(name: string, bytes: number): number {
    let s = this.big.get(name);
    if (!s || s.bytes < bytes) {
      if (s) this.heap.freeBytesAt(s.ptr);
      s = { ptr: this.heap.allocBytes(bytes, false), bytes };
      this.big.set(name, s);
    }
    return s.ptr;
  }

  private ensureThreadScratch(): number {
    const t = Math.max(1, this.pool.size);
    if (this.scratchThreads < t) {
      if (this.scratchPtr) this.heap.freeBytesAt(this.scratchPtr);
      this.scratchPtr = this.heap.allocBytes(this.scratchPerThread * t, false);
      this.scratchThreads = t;
    }
    return this.scratchPtr;
  }

  /** Tasks each thread took in the last job (index 0 = calling thread); for tests and benchmarks. */
  lastJobTasksPerThread(): number[] {
    const out: number[] = [];
    for (let t = 0; t < this.lastJobThreads; t++) out.push(this.di[c.D_STATS + t]);
    return out;
  }

  private lastJobThreads = 1;
  /** Size cap of the im2col scratch of strided backward-data (images are processed in chunks). */
  colsBytes = 32 << 20;
  /** Tests: the calling thread leaves every task of a parallel job to the workers. */
  workersOnly = false;

  /**
   * The one writer of job arguments: clears the whole argument region (no slot survives from
   * the previous job), then stores each given slot as the type its kernel reads (f32 or i32).
   */
  private args(a: JobArgs): void {
    const d = this.di;
    d.fill(0, c.D_ARGS, c.D_STATS);
    for (const k in a) {
      const slot = Number(k),
        v = a[slot];
      if (slot >= c.F32) this.df[slot - c.F32] = v;
      else if (Number.isInteger(v)) d[slot] = v;
      else throw new Error(`wasm job: slot ${slot} is an integer slot, got ${v}`);
    }
  }

  /** Runs the job whose arguments args() wrote (several runs may share them). */
  private run(kind: number, ntasks: number, flops: number): void {
    const d = this.di;
    for (let t = 0; t < 64; t++) d[c.D_STATS + t] = 0;
    d[c.D_KIND] = kind;
    d[c.D_COUNTER] = 0;
    d[c.D_NTASKS] = ntasks;
    d[c.D_SCRATCH] = this.ensureThreadScratch();
    d[c.D_SCRATCH_STRIDE] = this.scratchPerThread;
    const maxThreads = flops < PARALLEL_MIN_FLOPS ? 1 : Math.min(ntasks, this.pool.size);
    this.lastJobThreads = maxThreads;
    if (maxThreads <= 1) this.kernels.run_job(this.descPtr, 0);
    else this.pool.run(this.descPtr, maxThreads, this.workersOnly);
  }

  private gemmJob(s: GemmSpec): void {
    const { M, N, K } = s;
    const nb1 = s.nb1 ?? 1,
      nb2 = s.nb2 ?? 1,
      kSegs = s.kSegs ?? 1;
    const batch = nb1 * nb2;
    if (M <= 0 || N <= 0 || batch <= 0) return;
    const threads = this.pool.size;
    const MCMAX = c.MCMAX,
      NCMAX = c.NCMAX,
      KCMAX = c.KCMAX;
    let MCT = M <= MCMAX ? M : Math.ceil(M / Math.ceil(M / MCMAX));
    MCT = MCT + (MCT & 1);
    let NCT = Math.min(NCMAX, Math.ceil(N / 16) * 16);
    const tiles = () => batch * Math.ceil(M / MCT) * Math.ceil(N / NCT);
    // Few output tiles but many K segments (a filter gradient summed over images): split the
    // segments over tasks with private partial outputs rather than shrink the tiles, which would
    // repack the long A panels once per tile.
    let kSplit = 1;
    if (threads > 1 && s.cContiguous && kSegs >= 2 && tiles() < 3 * threads && !s.relu && 2 * M * N * K * batch * kSegs >= PARALLEL_MIN_FLOPS) {
      kSplit = Math.min(kSegs, Math.ceil((3 * threads) / tiles()));
    }
    const tasks = () => tiles() * kSplit;
    const nK = Math.max(1, Math.ceil(K / KCMAX));
    const kc = Math.max(1, Math.ceil(K / nK));
    const aPacked =
      s.aKey && kSegs === 1 && kSplit === 1
        ? this.packedA(s.aKey, `${M},${K},${kc},${batch},${s.aMode ?? 0}`, batch * (M + (M & 1)) * K * 4, s.aInPlace === true && (M & 1) === 0)
        : null;
    if (threads > 1 && kSplit === 1) {
      // About 8 tasks per thread: threads take tasks from a shared counter, so a thread that
      // started late or runs on a busy core takes fewer, and the last task is a small part of
      // the job. Smaller N tiles repack A once more each (free when A is packed once), smaller M
      // tiles repack B (free when B is prepacked: bMode != 0, below).
      const halveM = () => {
        MCT = Math.ceil(MCT / 2);
        MCT += MCT & 1;
      };
      // at least 4 (2) tasks per thread whatever the repacking costs, then about 8 while it is cheap
      while (tasks() < 4 * threads && NCT > 64) NCT = Math.max(64, Math.ceil(NCT / 32) * 16);
      while (tasks() < 2 * threads && MCT > 32) halveM();
      const nctMin = aPacked ? 64 : 128,
        mctMin = s.bMode !== 0 ? 32 : 64;
      while (tasks() < 8 * threads && NCT > nctMin) NCT = Math.max(nctMin, Math.ceil(NCT / 32) * 16);
      while (tasks() < 8 * threads && MCT > mctMin) halveM();
    }
    const outFloats = batch * M * N;
    const part = kSplit > 1 ? this.scratch('gemmPart', (kSplit - 1) * outFloats * 4) : 0;
    // Several M tiles would each repack the same B panels; for the costly packers (gathers and
    // transposes) pack them once, in parallel, into a shared area.
    const mT = Math.ceil(M / MCT),
      nT = Math.ceil(N / NCT);
    const slots = batch * nT * kSegs * nK;
    const prepackBytes = slots * (Math.ceil(NCT / 16) * 16) * kc * 4;
    const prepack = s.bMode !== 0 && mT >= 2 && kSplit === 1 && prepackBytes <= this.prepackMaxBytes;
    const v = s.conv ?? { L: 1, OW: 1, XIMG: 0, CIMG: 0, WP: 0, HWP: 0, SH: 0, SW: 0, DH: 0, DW: 0, R: 0, S: 0 };
    this.args({
      [c.G_M]: M,
      [c.G_N]: N,
      [c.G_K]: K,
      [c.G_A]: s.A,
      [c.G_LDA]: s.lda,
      [c.G_ATRANS]: s.aMode ?? (s.aTrans ? 1 : 0),
      [c.G_ACG]: s.aCg ?? 0,
      [c.G_ARS]: s.aRS ?? 0,
      [c.G_B]: s.B,
      [c.G_LDB]: s.ldb,
      [c.G_BMODE]: s.bMode,
      [c.G_C]: s.C,
      [c.G_LDC]: s.ldc,
      [c.G_CMODE]: s.cMode,
      [c.G_ACC]: s.accumulate ? 1 : 0,
      [c.G_BIAS]: s.bias ?? 0,
      [c.G_BIASS2]: s.biasS2 ?? 0,
      [c.G_RELU]: s.relu ? 1 : 0,
      [c.G_MCT]: MCT,
      [c.G_NCT]: NCT,
      [c.G_MTILES]: mT,
      [c.G_NTILES]: nT,
      [c.G_NB1]: nb1,
      [c.G_NB2]: nb2,
      [c.G_AS1]: s.aS1 ?? 0,
      [c.G_AS2]: s.aS2 ?? 0,
      [c.G_BS1]: s.bS1 ?? 0,
      [c.G_BS2]: s.bS2 ?? 0,
      [c.G_CS1]: s.cS1 ?? 0,
      [c.G_CS2]: s.cS2 ?? 0,
      [c.G_KSEGS]: kSegs,
      [c.G_ASEG]: s.aSeg ?? 0,
      [c.G_BSEG]: s.bSeg ?? 0,
      [c.G_KC]: kc,
      [c.G_KSPLIT]: kSplit,
      [c.G_PART]: part,
      [c.G_PARTS]: kSplit > 1 ? outFloats : 0,
      [c.G_NK]: nK,
      [c.G_PREPACK]: prepack ? this.scratch('prepackB', prepackBytes) : 0,
      [c.G_APACK]: aPacked ? aPacked.ptr : 0,
      [c.G_KLAST]: s.kLast ?? 0,
      [c.G_COFF]: v.COFF ?? 0,
      [c.G_COW]: v.COW ?? 0,
      [c.G_AIMG]: s.aImg ?? 0,
      [c.G_L]: v.L,
      [c.G_OW]: v.OW,
      [c.G_XIMG]: v.XIMG,
      [c.G_CIMG]: v.CIMG,
      [c.G_WP]: v.WP,
      [c.G_HWP]: v.HWP,
      [c.G_SH]: v.SH,
      [c.G_SW]: v.SW,
      [c.G_DH]: v.DH,
      [c.G_DW]: v.DW,
      [c.G_R]: v.R,
      [c.G_S]: v.S,
    });
    if (aPacked?.fresh) {
      if (aPacked.ptr === s.A) {
        // in place: pack into a scratch area, copy the panels over A (same size: M is even), and
        // point the GEMM at them
        const bytes = batch * M * K * 4;
        const tmp = this.scratch('packA', bytes);
        this.di[c.G_APACK] = tmp;
        this.run(c.K_PACKA, batch * nK, 2 * batch * M * K);
        this.kernels.copy_bytes(s.A, tmp, bytes);
        this.di[c.G_APACK] = s.A;
      } else this.run(c.K_PACKA, batch * nK, 2 * batch * M * K);
    }
    if (prepack) {
      this.counters.prepack++;
      this.run(c.K_PACKB, slots, 16 * slots * kc * Math.ceil(NCT / 16));
    }
    this.run(c.K_GEMM, tasks(), 2 * M * N * K * batch * kSegs);
    for (let k = 1; k < kSplit; k++) this.elt(c.OP_ADD_INPLACE, outFloats, part + (k - 1) * outFloats * 4, s.C);
  }

  // ---------------------------------------------------------------- kernels

  override gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, A: Storage, B: Storage, C: Storage, accumulate: boolean): void {
    if (M === 0 || N === 0) return;
    const a = this.inp(A),
      b = this.inp(B),
      cp = this.out(C, accumulate);
    this.gemmJob({
      M,
      N,
      K,
      A: a,
      lda: transA ? M : K,
      aTrans: transA,
      B: b,
      ldb: transB ? K : N,
      bMode: transB ? 1 : 0,
      C: cp,
      ldc: N,
      cMode: 0,
      accumulate,
    });
    this.done();
  }

  // ---------------------------------------------------------------- convolution

  /** Zero-pads planes [P, H, W] into scratch [P, H+pt+pb, W+pl+pr]; returns its pointer. */
  private pad(src: number, planes: number, H: number, W: number, pt: number, pb: number, pl: number, pr: number, name: string): number {
    const Hp = H + pt + pb,
      Wp = W + pl + pr;
    const dst = this.scratch(name, planes * Hp * Wp * 4);
    const chunk = Math.max(1, Math.ceil(16384 / (Hp * Wp)));
    this.args({
      [c.P_SRC]: src,
      [c.P_DST]: dst,
      [c.P_PLANES]: planes,
      [c.P_CHUNK]: chunk,
      [c.P_H]: H,
      [c.P_W]: W,
      [c.P_HP]: Hp,
      [c.P_WP]: Wp,
      [c.P_PT]: pt,
      [c.P_PL]: pl,
    });
    this.run(c.K_PAD, Math.ceil(planes / chunk), planes * Hp * Wp * 2);
    return dst;
  }

  /**
   * Forward convolution of a (possibly padded) input as one GEMM per group:
   * y_g[Kg, N*L] = w_g[Kg, CRS] @ im2col(x_g)[CRS, N*L], the im2col done inside the B packer.
   */
  private convForward(
    xPtr: number,
    C: number,
    Hp: number,
    Wp: number,
    wPtr: number,
    bias: number,
    yPtr: number,
    N: number,
    K: number,
    R: number,
    S: number,
    groups: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    OH: number,
    OW: number,
    relu: boolean,
    flipped = false,
    accumulate = false,
    aKey: Storage | null = null,
    aInPlace = false,
  ): void {
    const Cg = C / groups,
      Kg = K / groups,
      L = OH * OW,
      CRS = Cg * R * S;
    this.gemmJob({
      M: Kg,
      N: N * L,
      K: CRS,
      A: wPtr,
      lda: CRS,
      aTrans: false,
      aMode: flipped ? 2 : 0,
      aCg: Kg,
      aRS: R * S,
      B: xPtr,
      ldb: 0,
      bMode: 2,
      C: yPtr,
      ldc: L,
      cMode: 1,
      accumulate,
      bias,
      biasS2: Kg,
      relu,
      nb2: groups,
      aS2: Kg * CRS,
      bS2: Cg * Hp * Wp,
      cS2: Kg * L,
      conv: { L, OW, XIMG: C * Hp * Wp, CIMG: K * L, WP: Wp, HWP: Hp * Wp, SH: sh, SW: sw, DH: dh, DW: dw, R, S },
      aKey,
      aInPlace,
    });
  }

  /**
   * Winograd F(2x2,3x3) for 3x3 stride-1 dilation-1 convolutions: 'off', 'forward' (conv2d),
   * or 'all' (conv2d, backward-data and backward-filter). Default 'all'.
   */
  winograd: 'off' | 'forward' | 'all' = 'all';
  /** Cap on Winograd's V + M scratch (bytes); the batch is processed in image chunks under it. */
  winogradBytes = 8 << 20;

  /** Calls that took a given path (tests). */
  readonly counters = { winograd: 0, winograd4: 0, prepack: 0, packA: 0, grouped: 0, smallMap: 0 };
  /** Largest shared prepacked-B area (bytes); larger B operands are packed per task. */
  prepackMaxBytes = 32 << 20;
  /** Fewest 2x2 output tiles (over the batch) for Winograd: below it the 16x larger transformed weights dominate. */
  winogradMinTiles = 100;
  /** The same for the weight gradient (no weight transform to pay: it wins from fewer tiles). */
  winogradMinTilesWgrad = 40;
  /** The same with the weight transform cached (paid once): 16 takes the 7x7 maps of ResNet layer4 at batch 1 (measured 6-10% faster on ResNet-18 b1 than 40). */
  winogradMinTilesCached = 16;
  /** Least fraction of the 2x2 tiles' outputs that are real (odd sizes pad the last tile row/column). */
  winogradMinFill = 0.7;

  /**
   * Winograd tile for 3x3 stride-1 convolutions (forward and backward-data): 'auto' picks per
   * call among the im2col GEMM, F(2x2) and F(4x4) by the cost model below; 2 or 4 forces that
   * tile wherever the fixed thresholds (winogradMinTiles, winogradMinFill) allow Winograd.
   */
  winogradTile: 'auto' | WinoTile = 'auto';

  /**
   * The per-core cost model behind winogradTile 'auto' (milliseconds = sum of coefficient x
   * count). Coefficients measured by bench/wino-calib.ts (one thread, each job kind timed on its
   * own over ResNet-18/34/50 and d2l layer shapes, batch 1 and 8) and fitted there; see
   * src/backend/wasm/README.md. gemm: ns per padded multiply-add (rows to 2, columns to 16);
   * pack/im2col: ns per packed element; in/out: ns per padded input / output element of the
   * transforms; w: ns per transformed (k, c) filter.
   */
  costModel = {
    // fitted 2026-12-02 23:00 by bench/wino-calib.ts --reps 3 (load average 18 on 2 cores; CPU
    // time): the picks were the measured best in 16/16 shapes (F(2x2) everywhere: 12.2% slower)
    gemm: 0.0393,
    pack: 0.194,
    im2col: 0.61,
    in2: 1.7,
    out2: 1.42,
    w2: 7.1,
    in4: 2.18,
    out4: 1.89,
    w4: 38.5,
  };

  /** Model cost (ns, one core) of a 3x3 stride-1 conv by im2col GEMM (tile 0), F(2x2) or F(4x4). */
  convCost(tile: 0 | WinoTile, N: number, Cg: number, Kg: number, groups: number, OH: number, OW: number, cached: boolean): number {
    const k = this.costModel;
    const C = Cg * groups,
      K = Kg * groups;
    const gemm = (M: number, Ncols: number, Kd: number, batch: number) => {
      const MT = Math.ceil(M / c.MCMAX),
        NT = Math.ceil(Ncols / c.NCMAX);
      const flops = batch * Math.ceil(M / 2) * 2 * Math.ceil(Ncols / 16) * 16 * Kd;
      // A is packed once per N tile, B once per M tile
      const packed = batch * (M * Kd * NT + Kd * Ncols * MT);
      return { flops, packed };
    };
    if (tile === 0) {
      const L = N * OH * OW;
      const g = gemm(Kg, L, Cg * 9, groups);
      // constant weights are packed once (packedA): no A packing then
      const packA = cached ? 0 : groups * Kg * Cg * 9 * Math.ceil(L / c.NCMAX);
      return g.flops * k.gemm + packA * k.pack + groups * Cg * 9 * L * Math.ceil(Kg / c.MCMAX) * k.im2col;
    }
    const X = (tile + 2) * (tile + 2);
    const TH = Math.ceil(OH / tile),
      TW = Math.ceil(OW / tile),
      T = N * TH * TW;
    const g = gemm(Kg, T, Cg, X * groups);
    const inEl = N * C * (tile * TH + 2) * (tile * TW + 2),
      outEl = N * K * tile * tile * TH * TW;
    const [cin, cout, cw] = tile === 2 ? [k.in2, k.out2, k.w2] : [k.in4, k.out4, k.w4];
    return g.flops * k.gemm + g.packed * k.pack + inEl * cin + outEl * cout + (cached ? 0 : K * Cg * cw);
  }

  /** The algorithm of a forward or backward-data convolution: 0 = im2col GEMM, else the Winograd tile. */
  private convTile(
    Cg: number,
    Kg: number,
    groups: number,
    R: number,
    S: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    N: number,
    OH: number,
    OW: number,
    cached: boolean,
  ): 0 | WinoTile {
    if (!winogradShaped(Cg, Kg, R, S, sh, sw, dh, dw)) return 0;
    const t = this.winogradTile;
    if (t !== 'auto') return this.useWinograd(Cg, Kg, R, S, sh, sw, dh, dw, N, OH, OW, false, cached, t) ? t : 0;
    let best: 0 | WinoTile = 0,
      bestCost = this.convCost(0, N, Cg, Kg, groups, OH, OW, cached);
    // F(4x4) only with a cached weight transform (inference: conv2dFused with constant weights,
    // or cacheWeights on). Its rounding error per conv is ~5x F(2x2)'s (1.5e-6 vs 3e-7 relative
    // L2 against ref, measured on the d2l fixture's convs); in the ill-conditioned train-mode
    // gradients of the d2l and CIFAR fixtures that flips ReLU/BN decisions and breaks the parity
    // rule (bench/wino-error.ts: relative L2 3e-3 to 1.3e-2 where the rule allows 1e-3).
    for (const m of cached ? ([2, 4] as const) : ([2] as const)) {
      const cost = this.convCost(m, N, Cg, Kg, groups, OH, OW, cached);
      if (cost < bestCost) [best, bestCost] = [m, cost];
    }
    return best;
  }

  private useWinograd(
    Cg: number,
    Kg: number,
    R: number,
    S: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    N: number,
    OH: number,
    OW: number,
    wgrad = false,
    cached = this.cacheOn,
    m: WinoTile = 2,
  ): boolean {
    const tiles = N * Math.ceil(OH / m) * Math.ceil(OW / m);
    // the thresholds count 2x2 tiles (a 4x4 tile is 4 of them)
    const minTiles =
      ((wgrad ? Math.min(this.winogradMinTilesWgrad, this.winogradMinTiles) : cached ? this.winogradMinTilesCached : this.winogradMinTiles) * 4) / (m * m);
    // odd outputs waste part of the last tile row/column: 3x3 outputs fill 9 of 16 values
    return (
      R === 3 &&
      S === 3 &&
      sh === 1 &&
      sw === 1 &&
      dh === 1 &&
      dw === 1 &&
      Cg >= 8 &&
      Kg >= 8 &&
      tiles >= minTiles &&
      (N * OH * OW) / (m * m * tiles) >= this.winogradMinFill
    );
  }

  /**
   * y = conv3x3(x) by Winograd F(2x2,3x3): input transform, 16 x groups batched GEMMs, output
   * transform. x is unpadded [N, C, H, W]; flipped = backward data (w read as its flipped transpose).
   * wKey: keep the transformed weights under this key (weights that never change), else null.
   */
  private winogradConv(
    xp: number,
    N: number,
    C: number,
    H: number,
    W: number,
    padH: number,
    padW: number,
    wp: number,
    bias: number,
    yp: number,
    K: number,
    groups: number,
    OH: number,
    OW: number,
    relu: boolean,
    flipped: boolean,
    origCg: number,
    wKey: Storage | null = null,
    m: WinoTile = 2,
  ): void {
    this.counters.winograd++;
    if (m === 4) this.counters.winograd4++;
    const Cg = C / groups,
      Kg = K / groups;
    // m x m output tiles from (m+2) x (m+2) input tiles: X = (m+2)^2 transformed planes
    const X = (m + 2) * (m + 2);
    const TH = Math.ceil(OH / m),
      TW = Math.ceil(OW / m),
      Hp = m * TH + 2,
      Wp = m * TW + 2;
    const [kIn, kW, kOut] = m === 4 ? [c.K_WINO4_IN, c.K_WINO4_W, c.K_WINO4_OUT] : [c.K_WINO_IN, c.K_WINO_W, c.K_WINO_OUT];
    // weight transform U[X][K][Cg], or the cached one of these weights (inference)
    let U: number;
    const entry = wKey ? (this.weightCache.get(wKey) ?? {}) : undefined;
    const cached = entry?.[m];
    const us = planeStride(K * Cg);
    if (cached !== undefined) {
      U = cached;
    } else {
      U = entry ? this.heap.allocBytes(X * us * 4, false, true) : this.scratch('winoU', X * us * 4);
      this.args({ [c.W_W]: wp, [c.W_U]: U, [c.W_US]: us, [c.W_K]: K, [c.W_CG]: Cg, [c.W_FLIP]: flipped ? 1 : 0, [c.W_CO]: origCg });
      this.run(kW, K, K * Cg * X * 4);
      if (entry) this.weightCache.set(wKey!, { ...entry, [m]: U });
    }
    const perImage = X * (C + K) * TH * TW * 4;
    const chunk = Math.max(1, Math.min(N, Math.floor(this.winogradBytes / perImage)));
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const nc = Math.min(chunk, N - n0),
        T = nc * TH * TW;
      const src = this.pad(xp + n0 * C * H * W * 4, nc * C, H, W, padH, Hp - H - padH, padW, Wp - W - padW, 'xpad');
      // F(4x4)'s transforms read (never write) up to 3 lanes past a plane's last tile: 64 bytes of slack
      const vs = planeStride(C * T),
        ms = planeStride(K * T);
      const V = this.scratch('winoV', X * vs * 4 + 64),
        M = this.scratch('winoM', X * ms * 4 + 64);
      this.args({
        [c.W_X]: src,
        [c.W_V]: V,
        [c.W_XS]: vs,
        [c.W_PLANES]: nc * C,
        [c.W_C]: C,
        [c.W_HP]: Hp,
        [c.W_WP]: Wp,
        [c.W_TH]: TH,
        [c.W_TW]: TW,
        [c.W_T]: T,
      });
      this.run(kIn, nc * C, nc * C * Hp * Wp * 8);
      this.gemmJob({
        M: Kg,
        N: T,
        K: Cg,
        A: U,
        lda: Cg,
        aTrans: false,
        B: V,
        ldb: T,
        bMode: 0,
        C: M,
        ldc: T,
        cMode: 0,
        accumulate: false,
        nb1: X,
        nb2: groups,
        aS1: us,
        aS2: Kg * Cg,
        bS1: vs,
        bS2: Cg * T,
        cS1: ms,
        cS2: Kg * T,
      });
      this.args({
        [c.W_X]: yp + n0 * K * OH * OW * 4,
        [c.W_V]: M,
        [c.W_XS]: ms,
        [c.W_PLANES]: nc * K,
        [c.W_C]: K,
        [c.W_HP]: OH,
        [c.W_WP]: OW,
        [c.W_TH]: TH,
        [c.W_TW]: TW,
        [c.W_T]: T,
        [c.W_BIAS]: bias,
        [c.W_RELU]: relu ? 1 : 0,
      });
      this.run(kOut, nc * K, nc * K * OH * OW * 8);
    }
  }

  /**
   * dW of a 3x3 stride-1 convolution by Winograd F(2x2,3x3): dU[xi] = sum over tiles of
   * (A dy A^T)[xi] (x) V[xi] as 16 x groups batched GEMMs, then dW = G^T dU G.
   */
  private winogradWgrad(
    xp: number,
    dyp: number,
    dwp: number,
    N: number,
    C: number,
    H: number,
    W: number,
    padH: number,
    padW: number,
    K: number,
    groups: number,
    OH: number,
    OW: number,
  ): void {
    this.counters.winograd++;
    const Cg = C / groups,
      Kg = K / groups;
    const TH = Math.ceil(OH / 2),
      TW = Math.ceil(OW / 2),
      Hp = 2 * TH + 2,
      Wp = 2 * TW + 2;
    const U = this.scratch('winoU', 16 * K * Cg * 4);
    const perImage = 16 * (C + K) * TH * TW * 4;
    const chunk = Math.max(1, Math.min(N, Math.floor(this.winogradBytes / perImage)));
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const nc = Math.min(chunk, N - n0),
        T = nc * TH * TW;
      const src = this.pad(xp + n0 * C * H * W * 4, nc * C, H, W, padH, Hp - H - padH, padW, Wp - W - padW, 'xpad');
      const vs = planeStride(C * T),
        ms = planeStride(K * T);
      const V = this.scratch('winoV', 16 * vs * 4),
        M = this.scratch('winoM', 16 * ms * 4);
      this.args({
        [c.W_X]: src,
        [c.W_V]: V,
        [c.W_XS]: vs,
        [c.W_PLANES]: nc * C,
        [c.W_C]: C,
        [c.W_HP]: Hp,
        [c.W_WP]: Wp,
        [c.W_TH]: TH,
        [c.W_TW]: TW,
        [c.W_T]: T,
      });
      this.run(c.K_WINO_IN, nc * C, nc * C * Hp * Wp * 8);
      this.args({
        [c.W_X]: dyp + n0 * K * OH * OW * 4,
        [c.W_V]: M,
        [c.W_XS]: ms,
        [c.W_PLANES]: nc * K,
        [c.W_C]: K,
        [c.W_HP]: OH,
        [c.W_WP]: OW,
        [c.W_TH]: TH,
        [c.W_TW]: TW,
        [c.W_T]: T,
      });
      this.run(c.K_WINO_DY, nc * K, nc * K * OH * OW * 8);
      // dU[xi]_g (Kg x Cg) (+)= Mdy[xi]_g (Kg x T) @ V[xi]_g^T (T x Cg)
      this.gemmJob({
        M: Kg,
        N: Cg,
        K: T,
        A: M,
        lda: T,
        aTrans: false,
        B: V,
        ldb: T,
        bMode: 1,
        C: U,
        ldc: Cg,
        cMode: 0,
        accumulate: n0 > 0,
        nb1: 16,
        nb2: groups,
        aS1: ms,
        aS2: Kg * T,
        bS1: vs,
        bS2: Cg * T,
        cS1: K * Cg,
        cS2: Kg * Cg,
      });
    }
    this.args({ [c.W_U]: U, [c.W_W]: dwp, [c.W_K]: K, [c.W_CG]: Cg });
    this.run(c.K_WINO_WGRAD, K, K * Cg * 64);
  }

  /**
   * Largest fraction of real (tap, output) pairs for the per-tap path of 3x3 stride-1 pad-1
   * convolutions (smallMapConv): 3x3 maps have 49 of 81 (0.60), 6x6 maps 0.79.
   */
  smallMapMaxFill = 0.7;

  /** Whether a convolution (forward, or backward-data: the same shape) takes smallMapConv. */
  private useSmallMap(p: Conv2dParams): boolean {
    const { R, S, H, W, OH, OW } = p;
    // a forced Winograd tile (tests, experiments) keeps the maps on Winograd
    if (this.winogradTile !== 'auto' && this.winograd !== 'off') return false;
    if (!(R === 3 && S === 3 && p.strideH === 1 && p.strideW === 1 && p.dilH === 1 && p.dilW === 1 && p.padH === 1 && p.padW === 1 && p.groups === 1))
      return false;
    // rows (columns) where tap r reads inside the input: 3*H - 2 of 3*H for H >= 2
    const real = (n: number) => [0, 1, 2].reduce((a, r) => a + Math.max(0, Math.min(n, n + 1 - r) - Math.max(0, 1 - r)), 0);
    return (real(H) * real(W)) / (9 * OH * OW) < this.smallMapMaxFill;
  }

  /**
   * A 3x3 stride-1 pad-1 convolution on maps so small that most im2col taps read padding: one
   * GEMM per tap over the output positions where the tap lies inside the input,
   * y[:, n, rect_t] (+)= W_t @ x[:, n, rect_t + (r-1, s-1)], W_t the tap-major weights; 0.60x the
   * multiply-adds of im2col on 3x3 maps (Winograd F(2x2) pads 3x3 to 4x4: 0.79x). flip:
   * backward-data (dy in, dx out; W_t = w[:, :, 8-t]^T). The centre tap covers every output and
   * goes first (bias; overwrites y unless accumulate); the others accumulate.
   */
  private smallMapConv(
    xp: number,
    Cin: number,
    H: number,
    W: number,
    wp: number,
    flip: boolean,
    bias: number,
    yp: number,
    N: number,
    Cout: number,
    accumulate: boolean,
  ): void {
    // w is [Cout, Cin, 3, 3] forward, [Cin, Cout, 3, 3] (the forward conv's [K, C]) when flipped
    const [wK, wC] = flip ? [Cin, Cout] : [Cout, Cin];
    this.counters.smallMap++;
    const wt = this.scratch('tapW', 9 * wK * wC * 4);
    this.args({ [c.T_W]: wp, [c.T_DST]: wt, [c.T_K]: wK, [c.T_C]: wC, [c.T_RS]: 9 });
    this.run(c.K_TAPW, wK, 0);
    for (const t of [4, 0, 1, 2, 3, 5, 6, 7, 8]) {
      const r = Math.floor(t / 3),
        s = t % 3;
      const oh0 = Math.max(0, 1 - r),
        oh1 = Math.min(H, H + 1 - r),
        ow0 = Math.max(0, 1 - s),
        ow1 = Math.min(W, W + 1 - s);
      const OHt = oh1 - oh0,
        OWt = ow1 - ow0;
      if (OHt <= 0 || OWt <= 0) continue;
      const tw = wt + (flip ? 8 - t : t) * wK * wC * 4;
      this.gemmJob({
        M: Cout,
        N: N * OHt * OWt,
        K: Cin,
        A: tw,
        lda: wC,
        aTrans: flip,
        B: xp + ((oh0 + r - 1) * W + (ow0 + s - 1)) * 4,
        ldb: 0,
        bMode: 2,
        C: yp,
        ldc: H * W,
        cMode: 2,
        accumulate: t !== 4 || accumulate,
        bias: t === 4 ? bias : 0,
        conv: {
          L: OHt * OWt,
          OW: OWt,
          XIMG: Cin * H * W,
          CIMG: Cout * H * W,
          WP: W,
          HWP: H * W,
          SH: 1,
          SW: 1,
          DH: 1,
          DW: 1,
          R: 1,
          S: 1,
          COFF: oh0 * W + ow0,
          COW: W,
        },
      });
    }
  }

  /**
   * The filter gradient of a smallMapConv-shaped convolution, per tap: dW_t[K, C] = sum over the
   * images and the output positions where tap t lies inside the input of dy[:, n, o] x[:, n, o +
   * (r-1, s-1)] (A mode 4: dy over the tap's sub-rectangle, B mode 3: x shifted), into tap-major
   * scratch, then back to dw[K, C, 3, 3].
   */
  private smallMapWgrad(xp: number, dyp: number, dwp: number, N: number, C: number, H: number, W: number, K: number): void {
    this.counters.smallMap++;
    const wt = this.scratch('tapW', 9 * K * C * 4);
    const threads = this.pool.size;
    const tilesEst = Math.ceil(K / c.MCMAX) * Math.ceil(C / c.NCMAX);
    const want = threads > 1 && tilesEst < 3 * threads ? Math.ceil((3 * threads) / tilesEst) : 1;
    const ipS = Math.ceil(N / Math.min(N, want)),
      kSegs = Math.ceil(N / ipS),
      lastImages = N - (kSegs - 1) * ipS;
    for (let t = 0; t < 9; t++) {
      const r = Math.floor(t / 3),
        s = t % 3;
      const oh0 = Math.max(0, 1 - r),
        oh1 = Math.min(H, H + 1 - r),
        ow0 = Math.max(0, 1 - s),
        ow1 = Math.min(W, W + 1 - s);
      const OHt = oh1 - oh0,
        OWt = ow1 - ow0,
        Lt = OHt * OWt;
      if (OHt <= 0 || OWt <= 0) {
        this.kernels.zero_bytes(wt + t * K * C * 4, K * C * 4);
        continue;
      }
      this.gemmJob({
        M: K,
        N: C,
        K: ipS * Lt,
        A: dyp,
        lda: H * W,
        aTrans: false,
        aMode: 4,
        aImg: K * H * W,
        B: xp + ((oh0 + r - 1) * W + (ow0 + s - 1)) * 4,
        ldb: 0,
        bMode: 3,
        C: wt + t * K * C * 4,
        ldc: C,
        cMode: 0,
        accumulate: false,
        kSegs,
        aSeg: ipS * K * H * W,
        bSeg: ipS * C * H * W,
        kLast: lastImages < ipS ? lastImages * Lt : 0,
        cContiguous: true,
        conv: { L: Lt, OW: OWt, XIMG: C * H * W, CIMG: 0, WP: W, HWP: H * W, SH: 1, SW: 1, DH: 1, DW: 1, R: 1, S: 1, COFF: oh0 * W + ow0, COW: W },
      });
    }
    this.args({ [c.T_W]: dwp, [c.T_DST]: wt, [c.T_K]: K, [c.T_C]: C, [c.T_RS]: 9, [c.T_INV]: 1 });
    this.run(c.K_TAPW, K, 0);
  }

  override conv2d(x: Storage, w: Storage, bias: Storage | null, y: Storage, p: Conv2dParams): void {
    this.conv2dEx(x, w, bias, y, p, false);
  }

  /** conv2d with an optional fused ReLU epilogue (inference). */
  conv2dEx(x: Storage, w: Storage, bias: Storage | null, y: Storage, p: Conv2dParams, relu: boolean): void {
    this.conv2dFused(x, w, bias, y, p, relu, null, false);
  }

  /**
   * Inference: y = act(conv(x) + bias + residual). The direct path adds the residual in the GEMM
   * epilogue (y starts as a copy of it and the GEMM accumulates); Winograd adds it after its
   * output transform. constWeights: the Winograd weight transform is kept (freed with w).
   */
  override conv2dFused(
    x: Storage,
    w: Storage,
    bias: Storage | null,
    y: Storage,
    p: Conv2dParams,
    relu: boolean,
    residual: Storage | null,
    constWeights: boolean | 'owned',
  ): void {
    const { N, C, H, W, K, R, S, OH, OW, groups, padH, padW } = p;
    if (N * K * OH * OW === 0) return;
    if (this.useGroupedDirect(p)) {
      this.groupedConv(x, w, bias, y, p, relu, residual);
      return;
    }
    // constant weights (inference) keep the im2col/Winograd paths, whose weights are packed or transformed once
    if (!(constWeights || this.cacheOn) && this.useSmallMap(p)) {
      if (residual) this.copy(residual, y);
      const xp = this.inp(x),
        wp = this.inp(w),
        bp = bias ? this.inp(bias) : 0,
        yp = this.out(y, residual !== null);
      this.smallMapConv(xp, C, H, W, wp, false, bp, yp, N, K, residual !== null);
      if (relu) this.elt(c.OP_RELU, y.length, yp, yp);
      this.done();
      return;
    }
    const key = (constWeights || this.cacheOn) && this.ours(w) ? w : null;
    const tile =
      this.winograd === 'off' ? 0 : this.convTile(C / groups, K / groups, groups, R, S, p.strideH, p.strideW, p.dilH, p.dilW, N, OH, OW, key !== null);
    if (tile !== 0) {
      const xp = this.inp(x),
        wp = this.inp(w),
        bp = bias ? this.inp(bias) : 0,
        yp = this.out(y, false);
      this.winogradConv(xp, N, C, H, W, padH, padW, wp, bp, yp, K, groups, OH, OW, relu && !residual, false, 0, key, tile);
      if (residual) {
        this.elt(c.OP_ADD_INPLACE, y.length, this.inp(residual), yp);
        if (relu) this.elt(c.OP_RELU, y.length, yp, yp);
      }
      this.done();
      return;
    }
    if (residual) this.copy(residual, y);
    const xp = this.inp(x),
      wp = this.inp(w),
      bp = bias ? this.inp(bias) : 0,
      yp = this.out(y, residual !== null);
    let src = xp;
    if (padH > 0 || padW > 0) src = this.pad(xp, N * C, H, W, padH, padH, padW, padW, 'xpad');
    this.convForward(
      src,
      C,
      H + 2 * padH,
      W + 2 * padW,
      wp,
      bp,
      yp,
      N,
      K,
      R,
      S,
      groups,
      p.strideH,
      p.strideW,
      p.dilH,
      p.dilW,
      OH,
      OW,
      relu,
      false,
      residual !== null,
      key,
      // owned weights of a conv that always takes this path (never Winograd, never the grouped
      // kernel, whatever the input): packed once into their own block, no second copy
      constWeights === 'owned' && groups === 1 && !winogradShaped(C, K, R, S, p.strideH, p.strideW, p.dilH, p.dilW),
    );
    this.done();
  }

  /**
   * Largest channels per group (in and out) that take the direct grouped kernel; 0 turns it off.
   * Measured at 1 thread (CPU time, ResNeXt-50 32x4d's grouped 3x3 convs at batch 1) against the
   * GEMM-per-group and Winograd paths: 4 per group 0.60-0.68x, 8 per group 0.68-0.95x, 16 per
   * group 1.03-1.56x, 32 per group 1.05-1.54x (the 16-column extra padding copy costs more than
   * the short GEMMs lose).
   */
  groupedDirectMax = 8;

  private useGroupedDirect(p: Conv2dParams): boolean {
    const Cg = p.C / p.groups,
      Kg = p.K / p.groups;
    return p.groups > 1 && Kg % 4 === 0 && Kg <= this.groupedDirectMax && Cg <= this.groupedDirectMax && p.dilW === 1 && (p.strideW === 1 || p.strideW === 2);
  }

  /**
   * Grouped convolution with few channels per group (ResNeXt) by the direct kernel
   * (assembly/grouped.ts): no packing; bias, residual and ReLU in its epilogue.
   */
  private groupedConv(x: Storage, w: Storage, bias: Storage | null, y: Storage, p: Conv2dParams, relu: boolean, residual: Storage | null): void {
    const { N, C, H, W, K, R, S, OH, OW, groups, padH, padW } = p;
    if (residual) this.copy(residual, y);
    const xp = this.inp(x),
      wp = this.inp(w),
      bp = bias ? this.inp(bias) : 0,
      yp = this.out(y, residual !== null);
    // 16 extra zero columns on the right: the last 8-pixel block of a row reads past it (stride 2: 16 floats)
    const Hp = H + 2 * padH,
      Wp = W + 2 * padW + 16;
    const src = this.pad(xp, N * C, H, W, padH, padH, padW, padW + 16, 'gpad');
    const Cg = C / groups,
      Kg = K / groups;
    const rowFlops = 8 * OW * Cg * R * S;
    const RB = Math.max(1, Math.min(OH, Math.ceil(65536 / rowFlops)));
    const tasks = N * groups * (Kg / 4) * Math.ceil(OH / RB);
    this.args({
      [c.GC_X]: src,
      [c.GC_W]: wp,
      [c.GC_BIAS]: bp,
      [c.GC_Y]: yp,
      [c.GC_C]: C,
      [c.GC_K]: K,
      [c.GC_CG]: Cg,
      [c.GC_KG]: Kg,
      [c.GC_HP]: Hp,
      [c.GC_WP]: Wp,
      [c.GC_OH]: OH,
      [c.GC_OW]: OW,
      [c.GC_R]: R,
      [c.GC_S]: S,
      [c.GC_SH]: p.strideH,
      [c.GC_SW]: p.strideW,
      [c.GC_DH]: p.dilH,
      [c.GC_ACC]: residual ? 1 : 0,
      [c.GC_RELU]: relu ? 1 : 0,
      [c.GC_RB]: RB,
    });
    this.counters.grouped++;
    this.run(c.K_GCONV, tasks, 2 * N * K * Cg * R * S * OH * OW);
    this.done();
  }

  override conv2dBackwardData(dy: Storage, w: Storage, dx: Storage, p: Conv2dParams): void {
    const { N, C, H, W, K, R, S, OH, OW, groups, strideH, strideW, padH, padW, dilH, dilW } = p;
    if (N * C * H * W === 0) return;
    const dyp = this.inp(dy),
      wp = this.inp(w),
      dxp = this.out(dx, false);
    const Cg = C / groups,
      Kg = K / groups,
      L = OH * OW,
      CRS = Cg * R * S;
    if (this.useSmallMap(p)) {
      // dx = conv(dy, flipped w^T) with padding 2 - 1 = 1: the same shape
      this.smallMapConv(dyp, K, OH, OW, wp, true, 0, dxp, N, C, false);
      this.done();
      return;
    }
    const ptH = dilH * (R - 1) - padH,
      ptW = dilW * (S - 1) - padW;
    const tile = this.winograd === 'all' && ptH >= 0 && ptW >= 0 ? this.convTile(Kg, Cg, groups, R, S, strideH, strideW, dilH, dilW, N, H, W, false) : 0;
    if (tile !== 0) {
      // dx = conv3x3(dy, flipped w^T) with padding 2 - pad
      this.winogradConv(dyp, N, K, OH, OW, ptH, ptW, wp, 0, dxp, C, groups, H, W, false, true, Cg, null, tile);
      this.done();
      return;
    }
    if (strideH === 1 && strideW === 1 && ptH >= 0 && ptW >= 0) {
      // Stride 1: dx = conv(pad(dy), flipped w^T) with padding dil*(R-1) - pad, same dilation;
      // the A packer reads w flipped and transposed (A mode 2), so there is no flip pass.
      const src = ptH > 0 || ptW > 0 ? this.pad(dyp, N * K, OH, OW, ptH, ptH, ptW, ptW, 'dypad') : dyp;
      this.convForward(src, K, OH + 2 * ptH, OW + 2 * ptW, wp, 0, dxp, N, C, R, S, groups, 1, 1, dilH, dilW, H, W, false, true);
      this.done();
      return;
    }
    // General: cols_g[CRS, nc*L] = w_g^T @ dy_g[Kg, nc*L] for a chunk of nc images (one GEMM per
    // group, dy read by the im2col packer as a 1x1 "convolution" input with K channels), then
    // col2im. One GEMM over the chunk rather than one per image: at the late layers' L = 9..144
    // a per-image GEMM had 9..144 columns and ran at 15-33 GFLOP/s.
    const perImage = C * R * S * L;
    const chunk = Math.max(1, Math.min(N, Math.floor(this.colsBytes / 4 / perImage)));
    const cols = this.scratch('cols', chunk * perImage * 4);
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const nc = Math.min(chunk, N - n0);
      this.gemmJob({
        M: CRS,
        N: nc * L,
        K: Kg,
        A: wp,
        lda: CRS,
        aTrans: true,
        B: dyp + n0 * K * L * 4,
        ldb: 0,
        bMode: 2,
        C: cols,
        ldc: nc * L,
        cMode: 0,
        accumulate: false,
        nb2: groups,
        aS2: Kg * CRS,
        bS2: Kg * L,
        cS2: CRS * nc * L,
        conv: { L, OW, XIMG: K * L, CIMG: 0, WP: OW, HWP: L, SH: 1, SW: 1, DH: 1, DW: 1, R: 1, S: 1 },
      });
      this.args({
        [c.I_COLS]: cols,
        [c.I_DX]: dxp + n0 * C * H * W * 4,
        [c.I_PLANES]: nc * C,
        [c.I_C]: C,
        [c.I_CG]: Cg,
        [c.I_H]: H,
        [c.I_W]: W,
        [c.I_R]: R,
        [c.I_S]: S,
        [c.I_OH]: OH,
        [c.I_OW]: OW,
        [c.I_SH]: strideH,
        [c.I_SW]: strideW,
        [c.I_PH]: padH,
        [c.I_PW]: padW,
        [c.I_DH]: dilH,
        [c.I_DW]: dilW,
        [c.I_NL]: nc * L,
      });
      this.run(c.K_COL2IM, nc * C, nc * perImage * 2);
    }
    this.done();
  }

  override conv2dBackwardFilter(x: Storage, dy: Storage, dw: Storage, p: Conv2dParams): void {
    const { N, C, H, W, K, R, S, OH, OW, groups, padH, padW } = p;
    const Cg = C / groups,
      Kg = K / groups,
      L = OH * OW,
      CRS = Cg * R * S;
    if (K * CRS === 0) return;
    const xp = this.inp(x),
      dyp = this.inp(dy),
      dwp = this.out(dw, false);
    if (this.useSmallMap(p)) {
      this.smallMapWgrad(xp, dyp, dwp, N, C, H, W, K);
      this.done();
      return;
    }
    if (this.winograd === 'all' && this.useWinograd(Cg, Kg, R, S, p.strideH, p.strideW, p.dilH, p.dilW, N, OH, OW, true)) {
      this.winogradWgrad(xp, dyp, dwp, N, C, H, W, padH, padW, K, groups, OH, OW);
      this.done();
      return;
    }
    const Hp = H + 2 * padH,
      Wp = W + 2 * padW;
    const src = padH > 0 || padW > 0 ? this.pad(xp, N * C, H, W, padH, padH, padW, padW, 'xpad') : xp;
    // dw_g[Kg, CRS] = dy_g[Kg, N*L] @ im2col(x_g)^T[N*L, CRS]: the K index runs over the images'
    // positions (A mode 3, B mode 3), cut into segments of ipS images only as far as threads need
    // K splits (few output tiles). One image per K segment, as before, ran the late layers at
    // L = 9..36 with the whole C tile loaded and stored every 9..36 multiply-adds (32 GFLOP/s).
    const threads = this.pool.size;
    const tilesEst = groups * Math.ceil(Kg / c.MCMAX) * Math.ceil(CRS / c.NCMAX);
    const want = threads > 1 && tilesEst < 3 * threads ? Math.ceil((3 * threads) / tilesEst) : 1;
    const ipS = Math.ceil(N / Math.min(N, want)),
      kSegs = Math.ceil(N / ipS),
      lastImages = N - (kSegs - 1) * ipS;
    this.gemmJob({
      M: Kg,
      N: CRS,
      K: ipS * L,
      A: dyp,
      lda: L,
      aTrans: false,
      aMode: 3,
      aImg: K * L,
      B: src,
      ldb: 0,
      bMode: 3,
      C: dwp,
      ldc: CRS,
      cMode: 0,
      accumulate: false,
      nb2: groups,
      aS2: Kg * L,
      bS2: Cg * Hp * Wp,
      cS2: Kg * CRS,
      kSegs,
      aSeg: ipS * K * L,
      bSeg: ipS * C * Hp * Wp,
      kLast: lastImages < ipS ? lastImages * L : 0,
      cContiguous: true,
      conv: { L, OW, XIMG: C * Hp * Wp, CIMG: 0, WP: Wp, HWP: Hp * Wp, SH: p.strideH, SW: p.strideW, DH: p.dilH, DW: p.dilW, R, S },
    });
    this.done();
  }

  // ---------------------------------------------------------------- elementwise

  /** Runs an elementwise job over n elements in chunks; pointers are byte offsets (0 = none). */
  private elt(op: number, n: number, x: number, y: number, z = 0, w = 0, f: number[] = [], ints: number[] = []): void {
    const chunk = 16384;
    const a: JobArgs = { [c.E_OP]: op, [c.E_N]: n, [c.E_CHUNK]: chunk, [c.E_X]: x, [c.E_Y]: y, [c.E_Z]: z, [c.E_W]: w };
    f.forEach((v, i) => (a[E_FLOATS[i]] = v));
    ints.forEach((v, i) => (a[E_INTS[i]] = v));
    this.args(a);
    // Memory-bound: one core already saturates the memory bandwidth here (measured: a second
    // thread made addInPlace/relu/SGD no faster at 1-64 MiB, and slower below 4 MiB).
    this.run(c.K_ELT, Math.ceil(n / chunk), 0);
  }

  override unary(op: UnaryOp, x: Storage, y: Storage): void {
    const code = UNARY_OP[op];
    if (code === undefined || x.length === 0) return super.unary(op, x, y);
    const xp = this.inp(x),
      yp = this.out(y, false);
    this.elt(code, x.length, xp, yp);
    this.done();
  }

  override binary(op: BinaryOp, a: Storage, aShape: readonly number[], b: Storage, bShape: readonly number[], out: Storage, outShape: readonly number[]): void {
    const n = out.length;
    if (n > 0 && a.length === n && (b.length === n || b.length === 1)) {
      const ap = this.inp(a),
        op_ = this.out(out, false);
      if (b.length === n) this.elt(BINARY_OP[op], n, ap, this.inp(b), op_);
      else this.elt(BINARY_SCALAR_OP[op], n, ap, 0, op_, 0, [this.view(b)[0]]);
      this.done();
      return;
    }
    super.binary(op, a, aShape, b, bShape, out, outShape);
  }

  override affine(x: Storage, y: Storage, alpha: number, beta: number): void {
    if (x.length === 0) return;
    const xp = this.inp(x),
      yp = this.out(y, false);
    this.elt(c.OP_AFFINE, x.length, xp, yp, 0, 0, [alpha, beta]);
    this.done();
  }

  override reluBackward(dy: Storage, y: Storage, dx: Storage): void {
    if (dy.length === 0) return;
    const a = this.inp(dy),
      b = this.inp(y),
      o = this.out(dx, false);
    this.elt(c.OP_RELU_BWD, dy.length, a, b, o);
    this.done();
  }

  override addInPlace(y: Storage, x: Storage): void {
    if (y.length === 0) return;
    const xp = this.inp(x),
      yp = this.out(y, true);
    this.elt(c.OP_ADD_INPLACE, y.length, xp, yp);
    this.done();
  }

  override sumTo(x: Storage, shape: readonly number[], out: Storage, outShape: readonly number[]): void {
    // Collapse to [A, B, Cc] -> [B] (reduce the outer and inner blocks, keep the middle one).
    let i = 0;
    let A = 1,
      B = 1,
      Cc = 1;
    const kept = (j: number) => outShape[j] === shape[j] && shape[j] !== 1;
    const unit = (j: number) => shape[j] === 1;
    for (; i < shape.length && !kept(i); i++) A *= shape[i];
    for (; i < shape.length && (kept(i) || unit(i)); i++) B *= shape[i];
    for (; i < shape.length && !kept(i); i++) Cc *= shape[i];
    if (i < shape.length || B !== out.length || x.length === 0 || out.length === 0) return super.sumTo(x, shape, out, outShape);
    const xp = this.inp(x),
      op = this.out(out, false);
    this.args({ [c.R_X]: xp, [c.R_Y]: op, [c.R_A]: A, [c.R_B]: B, [c.R_CC]: Cc });
    this.run(c.K_SUMMID, B, 0); // memory-bound: one thread (see elt)
    this.done();
  }

  // ---------------------------------------------------------------- batch norm

  private bn(
    mode: number,
    x: number,
    y: number,
    gamma: number,
    beta: number,
    mean: number,
    invStd: number,
    variance: number,
    dy: number,
    dx: number,
    dgamma: number,
    dbeta: number,
    N: number,
    C: number,
    HW: number,
    eps: number,
    relu: boolean,
  ): void {
    this.args({
      [c.B_X]: x,
      [c.B_Y]: y,
      [c.B_GAMMA]: gamma,
      [c.B_BETA]: beta,
      [c.B_MEAN]: mean,
      [c.B_INVSTD]: invStd,
      [c.B_VAR]: variance,
      [c.B_N]: N,
      [c.B_C]: C,
      [c.B_HW]: HW,
      [c.B_EPS]: eps,
      [c.B_DY]: dy,
      [c.B_DX]: dx,
      [c.B_DGAMMA]: dgamma,
      [c.B_DBETA]: dbeta,
      [c.B_MODE]: mode,
      [c.B_RELU]: relu ? 1 : 0,
    });
    this.run(c.K_BN, C, 3 * N * C * HW);
  }

  override batchNormTrain(
    x: Storage,
    gamma: Storage | null,
    beta: Storage | null,
    y: Storage,
    saveMean: Storage,
    saveInvStd: Storage,
    batchVar: Storage,
    N: number,
    C: number,
    HW: number,
    eps: number,
  ): void {
    this.batchNormTrainEx(x, gamma, beta, y, saveMean, saveInvStd, batchVar, N, C, HW, eps, false);
  }

  /** batchNormTrain with an optional fused ReLU on y. */
  batchNormTrainEx(
    x: Storage,
    gamma: Storage | null,
    beta: Storage | null,
    y: Storage,
    saveMean: Storage,
    saveInvStd: Storage,
    batchVar: Storage,
    N: number,
    C: number,
    HW: number,
    eps: number,
    relu: boolean,
  ): void {
    if (C === 0) return;
    if (N * HW === 0) return super.batchNormTrain(x, gamma, beta, y, saveMean, saveInvStd, batchVar, N, C, HW, eps);
    const xp = this.inp(x),
      g = gamma ? this.inp(gamma) : 0,
      b = beta ? this.inp(beta) : 0;
    const yp = this.out(y, false),
      m = this.out(saveMean, false),
      is = this.out(saveInvStd, false),
      v = this.out(batchVar, false);
    this.bn(0, xp, yp, g, b, m, is, v, 0, 0, 0, 0, N, C, HW, eps, relu);
    this.done();
  }

  override batchNormEval(
    x: Storage,
    gamma: Storage | null,
    beta: Storage | null,
    mean: Storage,
    variance: Storage,
    y: Storage,
    N: number,
    C: number,
    HW: number,
    eps: number,
  ): void {
    if (N * C * HW === 0) return;
    const xp = this.inp(x),
      g = gamma ? this.inp(gamma) : 0,
      b = beta ? this.inp(beta) : 0;
    const m = this.inp(mean),
      v = this.inp(variance),
      yp = this.out(y, false);
    this.bn(1, xp, yp, g, b, m, 0, v, 0, 0, 0, 0, N, C, HW, eps, false);
    this.done();
  }

  override batchNormTrainBackward(
    dy: Storage,
    x: Storage,
    gamma: Storage | null,
    saveMean: Storage,
    saveInvStd: Storage,
    dx: Storage,
    dgamma: Storage | null,
    dbeta: Storage | null,
    N: number,
    C: number,
    HW: number,
  ): void {
    if (C === 0) return;
    if (N * HW === 0) return super.batchNormTrainBackward(dy, x, gamma, saveMean, saveInvStd, dx, dgamma, dbeta, N, C, HW);
    const dyp = this.inp(dy),
      xp = this.inp(x),
      g = gamma ? this.inp(gamma) : 0;
    const m = this.inp(saveMean),
      is = this.inp(saveInvStd);
    const dxp = this.out(dx, false),
      dg = dgamma ? this.out(dgamma, false) : 0,
      db = dbeta ? this.out(dbeta, false) : 0;
    this.bn(2, xp, 0, g, 0, m, is, 0, dyp, dxp, dg, db, N, C, HW, 0, false);
    this.done();
  }

  // ---------------------------------------------------------------- pooling

  private poolJob(mode: number, x: number, y: number, dx: number, planes: number, H: number, W: number, OH: number, OW: number, p: Pool2dParams | null): void {
    const chunk = Math.max(1, Math.ceil(8192 / Math.max(1, H * W)));
    const a: JobArgs = {
      [c.Q_X]: x,
      [c.Q_Y]: y,
      [c.Q_DX]: dx,
      [c.Q_PLANES]: planes,
      [c.Q_CHUNK]: chunk,
      [c.Q_MODE]: mode,
      [c.Q_H]: H,
      [c.Q_W]: W,
      [c.Q_OH]: OH,
      [c.Q_OW]: OW,
    };
    if (p) {
      Object.assign(a, {
        [c.Q_KH]: p.kH,
        [c.Q_KW]: p.kW,
        [c.Q_SH]: p.sH,
        [c.Q_SW]: p.sW,
        [c.Q_PH]: p.pH,
        [c.Q_PW]: p.pW,
        [c.Q_DH]: p.dH,
        [c.Q_DW]: p.dW,
        [c.Q_INCLPAD]: p.countIncludePad ? 1 : 0,
      });
    }
    this.args(a);
    const work = planes * (H * W + OH * OW * (p ? p.kH * p.kW : 1));
    this.run(c.K_POOL, Math.ceil(planes / chunk), work);
  }

  override maxPool2d(x: Storage, y: Storage, p: Pool2dParams): void {
    if (p.N * p.C * p.OH * p.OW === 0) return;
    const xp = this.inp(x),
      yp = this.out(y, false);
    this.poolJob(c.PM_MAX, xp, yp, 0, p.N * p.C, p.H, p.W, p.OH, p.OW, p);
    this.done();
  }

  override maxPool2dBackward(x: Storage, dy: Storage, dx: Storage, p: Pool2dParams): void {
    if (p.N * p.C * p.H * p.W === 0) return;
    const xp = this.inp(x),
      dyp = this.inp(dy),
      dxp = this.out(dx, false);
    this.poolJob(c.PM_MAX_BWD, xp, dyp, dxp, p.N * p.C, p.H, p.W, p.OH, p.OW, p);
    this.done();
  }

  override avgPool2d(x: Storage, y: Storage, p: Pool2dParams): void {
    if (p.N * p.C * p.OH * p.OW === 0) return;
    const xp = this.inp(x),
      yp = this.out(y, false);
    this.poolJob(c.PM_AVG, xp, yp, 0, p.N * p.C, p.H, p.W, p.OH, p.OW, p);
    this.done();
  }

  override avgPool2dBackward(dy: Storage, dx: Storage, p: Pool2dParams): void {
    if (p.N * p.C * p.H * p.W === 0) return;
    const dyp = this.inp(dy),
      dxp = this.out(dx, false);
    this.poolJob(c.PM_AVG_BWD, 0, dyp, dxp, p.N * p.C, p.H, p.W, p.OH, p.OW, p);
    this.done();
  }

  override adaptiveAvgPool2d(x: Storage, y: Storage, N: number, C: number, H: number, W: number, OH: number, OW: number): void {
    if (N * C * OH * OW === 0) return;
    const xp = this.inp(x),
      yp = this.out(y, false);
    this.poolJob(c.PM_ADAPT, xp, yp, 0, N * C, H, W, OH, OW, null);
    this.done();
  }

  override adaptiveAvgPool2dBackward(dy: Storage, dx: Storage, N: number, C: number, H: number, W: number, OH: number, OW: number): void {
    if (N * C * H * W === 0) return;
    const dyp = this.inp(dy),
      dxp = this.out(dx, false);
    this.poolJob(c.PM_ADAPT_BWD, 0, dyp, dxp, N * C, H, W, OH, OW, null);
    this.done();
  }

  // ---------------------------------------------------------------- optimizers

  sgdStep(
    param: Storage,
    grad: Storage,
    buf: Storage | null,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
    first: boolean,
  ): void {
    if (param.length === 0) return;
    const p = this.out(param, true),
      g = this.inp(grad),
      b = buf ? this.out(buf, true) : 0;
    this.elt(c.OP_SGD, param.length, p, g, b, 0, [lr, momentum, dampening, weightDecay], [nesterov ? 1 : 0, first ? 1 : 0]);
    this.done();
  }

  adamStep(
    param: Storage,
    grad: Storage,
    m: Storage,
    v: Storage,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
    decoupled: boolean,
  ): void {
    if (param.length === 0) return;
    const p = this.out(param, true),
      g = this.inp(grad),
      mp = this.out(m, true),
      vp = this.out(v, true);
    const bc1 = 1 - Math.pow(beta1, step),
      bc2 = 1 - Math.pow(beta2, step);
    this.elt(c.OP_ADAM, param.length, p, g, mp, vp, [lr, beta1, beta2, eps, weightDecay, 1 / bc1, 1 / bc2], [decoupled ? 1 : 0]);
    this.done();
  }
}

/** The default way to start workers in this runtime, or null where there is none. */
export async function defaultWorkerFactory(workerUrl?: string | URL): Promise<{ factory: WorkerFactory; source: string; startTimeoutMs: number } | null> {
  const g = globalThis as { Worker?: unknown; Blob?: unknown };
  const node = nodeWorkers();
  if (node) return node;
  if (typeof g.Worker === 'function' && (workerUrl !== undefined || typeof g.Blob !== 'undefined')) {
    return {
      source: webWorkerSource(),
      startTimeoutMs: WORKER_START_TIMEOUT_MS,
      factory: (src, onError) => {
        const url = workerUrl ?? URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
        const w = new Worker(url);
        w.addEventListener('error', (e) => {
          e.preventDefault();
          onError(new Error(e.message || `cannot start a worker from ${String(url).slice(0, 60)}`));
        });
        return { post: (m) => w.postMessage(m), terminate: () => w.terminate() };
      },
    };
  }
  return null;
}

/** A conv that Winograd may take (which one does depends on the input size and the settings). */
function winogradShaped(Cg: number, Kg: number, R: number, S: number, sh: number, sw: number, dh: number, dw: number): boolean {
  return R === 3 && S === 3 && sh === 1 && sw === 1 && dh === 1 && dw === 1 && Cg >= 8 && Kg >= 8;
}

export function defaultThreadCount(): number {
  const g = globalThis as { navigator?: { hardwareConcurrency?: number } };
  const n = g.navigator?.hardwareConcurrency;
  return typeof n === 'number' && n > 0 ? n : 1;
}

export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  const shared = opts.sharedMemory !== false && sharedMemorySupported();
  const module = opts.kernelModule ?? (await compileKernels(shared));
  // Both kinds start small and grow on demand to 4 GiB (65536 pages, the kernels' declared maximum).
  const initial = Math.max(1, Math.ceil((opts.initialMemoryBytes ?? (shared ? 16 : 32) * 2 ** 20) / 65536));
  const memory = new WebAssembly.Memory({ initial, maximum: 65536, shared });
  const kernels = instantiate(module, memory);
  const heap = new WasmHeap(memory, shared, Math.max(kernels.heap_base(), 65536));
  heap.zeroFill = (off, bytes) => kernels.zero_bytes(off, bytes);
  const wf = shared && !opts.singleThread ? await defaultWorkerFactory(opts.workerUrl) : null;
  const noThreads = opts.singleThread
    ? null
    : !shared
      ? 'shared memory is unavailable (a page must be cross-origin isolated: serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)'
      : 'this runtime has no Worker';
  const be = new WasmBackend(heap, kernels, module, wf?.factory ?? null, wf?.source ?? '', noThreads, wf?.startTimeoutMs);
  await be.setThreads(opts.threads ?? (opts.singleThread ? 1 : await machineThreads()));
  return be;
}

async function machineThreads(): Promise<number> {
  return nodeCores() ?? defaultThreadCount();
}
