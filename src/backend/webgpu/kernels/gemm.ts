// WebGPU GEMM, and the tiled matrix-product kernel that the convolutions (conv.ts) reuse as
// implicit GEMM. The ref backend's gemm is the oracle (src/backend/ref/ref.ts).
//
// One workgroup computes a BM×BN tile of out[M, N] = A[M, KR] · B[KR, N] (BM, BN ∈ {16, 32, 64},
// picked from M and N so that thin problems do not waste a 64-wide tile), one thread a 4×4 block
// (BM·BN/16 threads); large products (enough 128×128 tiles to fill a GPU) use 128×128 tiles of
// 8×8 per thread, which halves the workgroup-memory reads per FMA. The reduction runs in steps of
// BK = 16: the workgroup stages A's BK×BM and B's BK×BN slices in workgroup memory (as vec4s
// along M and N, 16 KiB at most), then each thread does 16 rank-1 updates of its accumulator.
//
// A kernel is the loop above plus three WGSL functions supplied by the caller:
//   loadA(m, t, z) -> f32   (or loadA4 -> vec4: four consecutive elements, when `vec4`)
//   loadB(t, n, z) -> f32   (or loadB4)
//   store(m, n, z, sp, v)   called once per output element inside [M, N]
// The loaders bound-check themselves (0 outside [M or N, KR]), so odd sizes need no special path.
// `fast` says which index is contiguous in memory: the staging loop walks that one across
// neighbouring threads so their loads coalesce. z is the batch index (grid z) and sp the split of
// the reduction (split-K: split sp covers [sp·chunk, (sp+1)·chunk), its own partial sum).
import { Uniforms, type GpuRuntime, type GpuStorage } from '../runtime.js';

export const BK = 16;

/**
 * Tile choice, and the grid's x extent before tiles fold into y (the device's per-dimension limit,
 * 65535: a batch-512 ResNet-50 has 100k 64-wide column tiles); tests lower both to exercise the
 * big tiles and the fold at small sizes.
 */
export const tuning = { bigTileMinGroups: 256, maxGridX: Infinity };

export interface Operand {
  /** 'outer': consecutive m (A) or n (B) are adjacent in memory; 'red': consecutive t are. */
  fast: 'outer' | 'red';
  /** The loader returns vec4 of 4 elements along `fast` (all in range or all out: the caller checks alignment). */
  vec4: boolean;
  /** WGSL source of loadA/loadA4 (or loadB/loadB4). */
  fn: string;
  /**
   * B only, scalar 'outer' loads: the loader takes a per-column context instead of n, made once
   * per thread before the reduction loop (each thread stages the same column of every slice), so
   * index math that depends only on the column (an output pixel's n, oh, ow) leaves the loop.
   * WGSL: fn ctxB(n: u32, z: u32) -> <ctx> and fn loadBc(t: u32, c: <ctx>, z: u32) -> f32.
   */
  ctx?: boolean;
}

export interface TiledKernel {
  /** Names the WGSL apart from the tile size (which the builder adds). */
  key: string;
  M: number;
  N: number;
  KR: number;
  /** Grid z: independent products (images, groups). */
  batch: number;
  /** Split-K: the reduction in chunks of this length (a multiple of BK, from splitPlan), each stored separately (store gets sp, 0 without). */
  chunk?: number;
  /** Extra u32 uniforms, read in WGSL as u.<name>. */
  uniforms: [string, number][];
  /** Storage bindings in order; vec4 binds as array<vec4<f32>>, `type` as array<type>. */
  buffers: { name: string; buf: GpuStorage | GPUBuffer; write?: boolean; vec4?: boolean; type?: string }[];
  a: Operand;
  b: Operand;
  /** WGSL: fn store(m: u32, n: u32, z: u32, sp: u32, v: f32). */
  store: string;
}

function tileFor(n: number): number {
  return n <= 16 ? 16 : n <= 32 ? 32 : 64;
}

/** Enough workgroups to fill a large GPU (an H100 has 132 SMs) before splitting the reduction. */
const TARGET_GROUPS = 512;
/** Shortest reduction chunk worth a split (16 slices of BK). */
const MIN_CHUNK = 256;
/** The split-K partial sums stay under this many floats (64 MiB). */
const MAX_PARTIAL = 16 << 20;

/**
 * Split-K for a product with few output tiles and a long reduction (a batch-1 ResNet's last
 * stages: 512×49 outputs over 4608 terms is 8 tiles): about enough chunks of KR, each a multiple
 * of BK and non-empty, to fill the GPU. null when one pass already does (or KR is short).
 * `outFloats` is the size of one partial result, `batch` the grid z of the product.
 */
export function splitPlan(rt: GpuRuntime, M: number, N: number, KR: number, batch: number, outFloats: number): { chunk: number; splits: number } | null {
  const tiles = Math.ceil(M / tileFor(M)) * Math.ceil(N / tileFor(N)) * batch;
  const want = Math.min(Math.ceil(TARGET_GROUPS / tiles), Math.floor(KR / MIN_CHUNK), Math.floor(MAX_PARTIAL / outFloats), Math.floor(rt.maxGroups / batch));
  if (want < 2) return null;
  const chunk = Math.ceil(Math.ceil(KR / want) / BK) * BK;
  const splits = Math.ceil(KR / chunk);
  return splits > 1 ? { chunk, splits } : null;
}

/** What the split-K finishing pass applies to each sum (index i of an [n/(K·L), K, L] result for bias). */
export interface SplitEpilogue {
  bias?: GpuStorage | null;
  K?: number;
  L?: number;
  residual?: GpuStorage | null;
  relu?: boolean;
  /** out[i] += sum instead of out[i] = sum. */
  accumulate?: boolean;
}

/** out[i] = epilogue(Σ_sp part[sp·n + i]) for i < n: the second pass of split-K. */
export function finishSplits(rt: GpuRuntime, part: GpuStorage, out: GpuStorage, splits: number, n: number, e: SplitEpilogue = {}): void {
  const groups = Math.ceil(n / 256);
  const gx = Math.min(groups, rt.maxGroups);
  const bufs = [part, out, ...(e.bias ? [e.bias] : []), ...(e.residual ? [e.residual] : [])];
  const binds = [...(e.bias ? ['bias'] : []), ...(e.residual ? ['res'] : [])]
    .map((name, i) => `@group(0) @binding(${i + 3}) var<storage, read> ${name}: array<f32>;`)
    .join('\n');
  const epi = [
    e.accumulate ? 's = out[i] + s;' : '',
    e.bias ? 's += bias[(i / u.L) % u.K];' : '',
    e.residual ? 's += res[i];' : '',
    e.relu ? 's = max(s, 0.0);' : '',
  ].join(' ');
  rt.dispatch({
    key: `splitK/sum/${e.accumulate ? '+' : ''}${e.bias ? 'b' : ''}${e.residual ? 'r' : ''}${e.relu ? 'relu' : ''}`,
    code: () => `
struct U { n: u32, splits: u32, gx: u32, K: u32, L: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${binds}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * u.gx + wg.x) * 256u + li;
  if (i >= u.n) { return; }
  var s = 0.0;
  for (var sp = 0u; sp < u.splits; sp++) { s += part[sp * u.n + i]; }
  ${epi}
  out[i] = s;
}`,
    uniforms: new Uniforms().u32(n, splits, gx, e.K ?? 1, e.L ?? 1),
    buffers: bufs,
    groups: [gx, Math.ceil(groups / gx)],
  });
}

/** Records one tiled product. */
export function runTiled(rt: GpuRuntime, k: TiledKernel): void {
  const { M, N, KR } = k;
  if (M === 0 || N === 0 || k.batch === 0) return;
  const chunk = k.chunk ?? Math.max(KR, 1);
  const splits = Math.max(1, Math.ceil(KR / chunk));
  // 128×128 tiles of 8×8 per thread (twice the FMAs per workgroup-memory read) when there are
  // enough of them to fill a GPU; else 16/32/64 tiles of 4×4
  const big = M >= 128 && N >= 128 && Math.ceil(M / 128) * Math.ceil(N / 128) * k.batch * splits >= tuning.bigTileMinGroups;
  const BM = big ? 128 : tileFor(M),
    BN = big ? 128 : tileFor(N),
    TT = big ? 8 : 4;
  const tilesM = Math.ceil(M / BM);
  const tiles = tilesM * Math.ceil(N / BN);
  const gx = Math.min(tiles, rt.maxGroups, tuning.maxGridX);
  const gy = Math.ceil(tiles / gx);
  const gz = k.batch * splits;
  if (gy > rt.maxGroups) throw new RangeError(`webgpu ${k.key}: ${tiles} tiles exceed ${rt.maxGroups}² workgroups`);
  if (gz > rt.maxGroups) throw new RangeError(`webgpu ${k.key}: ${k.batch} batches × ${splits} splits exceed ${rt.maxGroups} workgroups`);
  if (k.b.ctx && ((BM * BN) / (TT * TT)) % BN !== 0) throw new Error(`webgpu ${k.key}: a per-column context needs the thread count to be a multiple of BN`);
  if (k.b.ctx && (k.b.vec4 || k.b.fast !== 'outer')) throw new Error(`webgpu ${k.key}: a per-column context is for scalar outer-fast loads`);
  const fields: [string, number][] = [
    ['M', M],
    ['N', N],
    ['KR', KR],
    ['tilesM', tilesM],
    ['tiles', tiles],
    ['gx', gx],
    ['splits', splits],
    ['chunk', chunk],
    ...k.uniforms,
  ];
  const uniforms = new Uniforms();
  for (const [, v] of fields) uniforms.u32(v);
  rt.dispatch({
    key: `${k.key}/${BM}x${BN}/${TT}`,
    code: () => tiledSource(k, BM, BN, TT, fields),
    uniforms,
    buffers: k.buffers.map((b) => b.buf),
    groups: [gx, gy, gz],
  });
}

/** The staging loop of one operand into its workgroup array S[t][outer] (vec4 along outer). */
function stage(op: Operand, S: string, load: string, BO: string, outer0: string): string {
  const out = `(${BO} / 4u)`;
  const call = (o: string, t: string) => (S === 'As' ? `${load}(${outer0} + ${o}, k0 + ${t}, z)` : `${load}(k0 + ${t}, ${outer0} + ${o}, z)`);
  if (op.ctx) {
    // o = i % BO = li % BO for every i: T is a multiple of BO (BM >= 16, or 8×8 with 128 tiles)
    return `for (var i = li; i < BK * ${BO}; i += T) {
      let t = i / ${BO};
      ${S}[t * ${out} + colB / 4u][colB % 4u] = loadBc(k0 + t, ctxb, z);
    }`;
  }
  if (op.vec4 && op.fast === 'outer') {
    return `for (var i = li; i < BK * ${BO} / 4u; i += T) {
      let o = (i % ${out}) * 4u; let t = i / ${out};
      ${S}[t * ${out} + o / 4u] = ${call('o', 't')};
    }`;
  }
  if (op.vec4) {
    return `for (var i = li; i < BK * ${BO} / 4u; i += T) {
      let t = (i % (BK / 4u)) * 4u; let o = i / (BK / 4u);
      let v = ${call('o', 't')};
      for (var q = 0u; q < 4u; q++) { ${S}[(t + q) * ${out} + o / 4u][o % 4u] = v[q]; }
    }`;
  }
  const idx = op.fast === 'outer' ? `let o = i % ${BO}; let t = i / ${BO};` : `let t = i % BK; let o = i / BK;`;
  return `for (var i = li; i < BK * ${BO}; i += T) {
      ${idx}
      ${S}[t * ${out} + o / 4u][o % 4u] = ${call('o', 't')};
    }`;
}

// One BK step of a thread's 4×4 block: rows ty·4.., columns tx·4.., a vec4 of A and of B.
const product4 = `let a = As[kk * (BM / 4u) + ty];
      let b = Bs[kk * (BN / 4u) + tx];
      acc[0] = fma(vec4(a.x), b, acc[0]);
      acc[1] = fma(vec4(a.y), b, acc[1]);
      acc[2] = fma(vec4(a.z), b, acc[2]);
      acc[3] = fma(vec4(a.w), b, acc[3]);`;

// The 8×8 block: rows ty·4.. and BM/2 + ty·4.., columns tx·4.. and BN/2 + tx·4.. (two vec4s
// each, so neighbouring threads read neighbouring vec4s of workgroup memory); acc[r·2 + c].
const product8 = (() => {
  const lines = [
    'let a0 = As[kk * (BM / 4u) + ty];',
    'let a1 = As[kk * (BM / 4u) + BM / 8u + ty];',
    'let b0 = Bs[kk * (BN / 4u) + tx];',
    'let b1 = Bs[kk * (BN / 4u) + BN / 8u + tx];',
  ];
  for (let r = 0; r < 8; r++) {
    const a = `vec4(a${r >> 2}.${'xyzw'[r & 3]})`;
    for (let c = 0; c < 2; c++) lines.push(`acc[${r * 2 + c}] = fma(${a}, b${c}, acc[${r * 2 + c}]);`);
  }
  return lines.join('\n      ');
})();

function tiledSource(k: TiledKernel, BM: number, BN: number, TT: number, fields: [string, number][]): string {
  const binds = k.buffers
    .map(
      (b, i) => `@group(0) @binding(${i + 1}) var<storage, ${b.write ? 'read_write' : 'read'}> ${b.name}: array<${b.type ?? (b.vec4 ? 'vec4<f32>' : 'f32')}>;`,
    )
    .join('\n');
  return `
struct U { ${fields.map(([n]) => `${n}: u32`).join(', ')} }
@group(0) @binding(0) var<uniform> u: U;
${binds}
const BM = ${BM}u;
const BN = ${BN}u;
const BK = ${BK}u;
const TT = ${TT}u; // thread tile TT×TT
const T = BM * BN / (TT * TT);
var<workgroup> As: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;
${k.a.fn}
${k.b.fn}
${k.store}
@compute @workgroup_size(T)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let id = wg.y * u.gx + wg.x;
  if (id >= u.tiles) { return; }
  let m0 = (id % u.tilesM) * BM;
  let n0 = (id / u.tilesM) * BN;
  let z = wg.z / u.splits;
  let sp = wg.z % u.splits;
  let kb = sp * u.chunk;
  let ke = min(u.KR, kb + u.chunk);
  let tx = li % (BN / TT);
  let ty = li / (BN / TT);
  var acc = array<vec4<f32>, ${(TT * TT) / 4}>();${
    k.b.ctx
      ? `
  let colB = li % BN;
  let ctxb = ctxB(n0 + colB, z);`
      : ''
  }
  for (var k0 = kb; k0 < ke; k0 += BK) {
    ${stage(k.a, 'As', k.a.vec4 ? 'loadA4' : 'loadA', 'BM', 'm0')}
    ${stage(k.b, 'Bs', k.b.vec4 ? 'loadB4' : 'loadB', 'BN', 'n0')}
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      ${TT === 4 ? product4 : product8}
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < TT; r++) {
    let m = m0 + (r / 4u) * (BM / 2u) + ty * 4u + r % 4u;
    if (m >= u.M) { continue; }
    for (var j = 0u; j < TT; j++) {
      let n = n0 + (j / 4u) * (BN / 2u) + tx * 4u + j % 4u;
      if (n < u.N) { store(m, n, z, sp, acc[r * (TT / 4u) + j / 4u][j % 4u]); }
    }
  }
}`;
}

/**
 * A plain row-major operand at element offset `off` (a WGSL expression in z). For A (rows m,
 * reduction t): stored [M, KR], or [KR, M] when trans. For B (reduction t, columns n): stored
 * [KR, N], or [N, KR] when trans. Vector loads when the contiguous length is a multiple of 4.
 */
export function plainOperand(which: 'A' | 'B', name: string, trans: boolean, rows: number, cols: number, off: string): Operand {
  // element (outer o, reduction t) -> index; outer-contiguous when A is transposed or B is not
  const outerFast = which === 'A' ? trans : !trans;
  const bound = which === 'A' ? 'u.M' : 'u.N';
  const outerLen = which === 'A' ? rows : cols;
  const vec4 = (outerFast ? outerLen : which === 'A' ? cols : rows) % 4 === 0;
  const index = outerFast ? `t * ${bound} + o` : `o * u.KR + t`;
  const sig = which === 'A' ? '(o: u32, t: u32, z: u32)' : '(t: u32, o: u32, z: u32)';
  const fn = vec4
    ? `fn load${which}4${sig} -> vec4<f32> { if (o >= ${bound} || t >= u.KR) { return vec4(0.0); } return ${name}[(${off} + ${index}) / 4u]; }`
    : `fn load${which}${sig} -> f32 { if (o >= ${bound} || t >= u.KR) { return 0.0; } return ${name}[${off} + ${index}]; }`;
  return { fast: outerFast ? 'outer' : 'red', vec4, fn };
}

export function gemm(
  rt: GpuRuntime,
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  A: GpuStorage,
  B: GpuStorage,
  C: GpuStorage,
  accumulate: boolean,
): void {
  if (A.length < M * K || B.length < K * N || C.length < M * N) {
    throw new RangeError(`webgpu gemm: buffers of ${A.length}, ${B.length}, ${C.length} floats are too small for M=${M} N=${N} K=${K}`);
  }
  const a = plainOperand('A', 'A', transA, M, K, '0u');
  const b = plainOperand('B', 'B', transB, K, N, '0u');
  const split = splitPlan(rt, M, N, K, 1, M * N);
  const part = split ? rt.alloc(split.splits * M * N) : null;
  const acc = accumulate && !part;
  runTiled(rt, {
    key: `gemm/${transA ? 't' : 'n'}${transB ? 't' : 'n'}${a.vec4 ? 4 : 1}${b.vec4 ? 4 : 1}${acc ? '+' : ''}`,
    M,
    N,
    KR: K,
    batch: 1,
    chunk: split?.chunk,
    uniforms: [],
    buffers: [
      { name: 'A', buf: A, vec4: a.vec4 },
      { name: 'B', buf: B, vec4: b.vec4 },
      { name: 'C', buf: part ?? C, write: true },
    ],
    a,
    b,
    // with split-K, C here is the partial buffer: split sp at sp·M·N
    store: `fn store(m: u32, n: u32, z: u32, sp: u32, v: f32) { let i = (sp * u.M + m) * u.N + n; C[i] = ${acc ? 'C[i] + ' : ''}v; }`,
  });
  if (part && split) {
    finishSplits(rt, part, C, split.splits, M * N, { accumulate });
    rt.free(part); // safe at once: the queue runs the sum before any later use (runtime.ts)
  }
}
