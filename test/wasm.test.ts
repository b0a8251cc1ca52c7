// The wasm backend against the ref backend (the oracle), kernel by kernel, on awkward shapes.
// Runs with 2 threads so the worker pool and the tile split are exercised too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RefBackend } from '../src/backend/ref/ref.js';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/wasm.js';
import { RNG } from '../src/base/rng.js';
import { WasmHeap } from '../src/backend/wasm/memory.js';

const ref = new RefBackend();
let be: WasmBackend;
const rng = new RNG(1234);

before(async () => {
  be = await createWasmBackend({ threads: 2 });
});
after(() => be.dispose());

function rand(n: number, inHeap = true): Float32Array {
  const a = inHeap ? be.alloc(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(-1, 1);
  return a;
}

/** |got - want| <= atol + rtol * |want| elementwise; reports the worst element. */
function close(got: Float32Array, want: Float32Array, rtol: number, atol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = -1, worstX = 0;
  for (let i = 0; i < got.length; i++) {
    const x = Math.abs(got[i] - want[i]) - (atol + rtol * Math.abs(want[i]));
    if (!(x <= 0) && (worst < 0 || !(x <= worstX))) { worst = i; worstX = x; }
  }
  if (worst >= 0) assert.fail(`${what}: element ${worst} is ${got[worst]}, want ${want[worst]}`);
}

/** The scale of each C element, sum_k |a||b|, so GEMM errors are judged against it. */
function gemmScale(ta: boolean, tb: boolean, M: number, N: number, K: number, A: Float32Array, B: Float32Array): Float32Array {
  const s = new Float32Array(M * N);
  ref.gemm(ta, tb, M, N, K, A.map(Math.abs), B.map(Math.abs), s, false);
  return s;
}

test('gemm equals ref for all transposes, accumulate, awkward sizes (error <= 1e-5 * sum|a||b|)', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1], [1, 17, 3], [3, 5, 17], [17, 1, 5], [5, 3, 1], [2, 16, 1], [33, 47, 65], [100, 37, 513], [257, 19, 7], [6, 530, 40],
  ];
  for (const [M, N, K] of shapes) {
    for (const ta of [false, true]) for (const tb of [false, true]) for (const acc of [false, true]) {
      const A = rand(M * K), B = rand(K * N), C = rand(M * N), want = Float32Array.from(C);
      be.gemm(ta, tb, M, N, K, A, B, C, acc);
      ref.gemm(ta, tb, M, N, K, A, B, want, acc);
      const scale = gemmScale(ta, tb, M, N, K, A, B);
      for (let i = 0; i < M * N; i++) {
        const tol = 1e-5 * (scale[i] + (acc ? Math.abs(want[i]) : 0)) + 1e-7;
        if (!(Math.abs(C[i] - want[i]) <= tol)) {
          assert.fail(`gemm ${M}x${N}x${K} tA=${ta} tB=${tb} acc=${acc}: C[${i}] = ${C[i]}, want ${want[i]}`);
        }
      }
      for (const x of [A, B, C]) be.free(x);
    }
  }
});

test('gemm on arrays outside wasm memory and on subarray views (error <= 1e-5 * sum|a||b|)', () => {
  const M = 19, N = 23, K = 29;
  const A = rand(M * K, false), Bbig = rand(K * N + 8), B = Bbig.subarray(8), C = new Float32Array(M * N).fill(3);
  const want = Float32Array.from(C);
  be.gemm(false, false, M, N, K, A, B, C, true);
  ref.gemm(false, false, M, N, K, A, B, want, true);
  const scale = gemmScale(false, false, M, N, K, A, B);
  for (let i = 0; i < M * N; i++) assert.ok(Math.abs(C[i] - want[i]) <= 1e-5 * (scale[i] + 3) + 1e-7, `C[${i}]`);
});

test('gemm tiles computed by the worker thread equal ref (error <= 1e-5 * sum|a||b|)', () => {
  const M = 192, N = 256, K = 96;
  const A = rand(M * K), B = rand(K * N), C = be.alloc(M * N), want = new Float32Array(M * N);
  be.workersOnly = true;
  try {
    be.gemm(false, false, M, N, K, A, B, C, false);
  } finally {
    be.workersOnly = false;
  }
  const tasks = be.lastJobTasksPerThread();
  assert.equal(tasks.length, 2);
  assert.ok(tasks[0] === 0 && tasks[1] >= 4, `tasks per thread ${tasks}`);
  ref.gemm(false, false, M, N, K, A, B, want, false);
  const scale = gemmScale(false, false, M, N, K, A, B);
  for (let i = 0; i < M * N; i++) assert.ok(Math.abs(C[i] - want[i]) <= 1e-5 * scale[i] + 1e-7, `C[${i}]`);
});

test('heap: zero-filled blocks, 64-byte aligned, reused after free, views survive growth', () => {
  const a = be.alloc(5);
  assert.equal(a.byteOffset % 64, 0);
  a.fill(7);
  const before = be.allocatedFloats();
  be.free(a);
  assert.equal(be.allocatedFloats(), before - 5);
  const b = be.alloc(5);
  assert.equal(b.byteOffset, a.byteOffset, 'same-size block is reused');
  assert.deepEqual(Array.from(b), [0, 0, 0, 0, 0]);
  b[4] = 42;
  const len0 = be.heap.byteLength;
  const huge = be.alloc((len0 / 4) | 0); // forces the memory to grow
  assert.ok(be.heap.byteLength > len0);
  assert.equal(b[4], 42, 'old view still reads the same memory after grow');
  assert.equal(huge[huge.length - 1], 0);
  be.free(huge);
  be.free(b);
  assert.equal(be.alloc(0).length, 0);
});

test('heap: coalesces freed neighbours to serve a bigger block before growing', () => {
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true });
  const h = new WasmHeap(mem, true, 0);
  const offs = [0, 1, 2, 3].map(() => h.allocBytes(16384, true));
  assert.equal(h.byteLength, 65536);
  h.freeBytesAt(offs[1]);
  h.freeBytesAt(offs[2]);
  assert.equal(h.allocBytes(32768, true), offs[1], 'two freed neighbours merged');
  assert.equal(h.byteLength, 65536, 'no growth');
  h.freeBytesAt(offs[3]);
  const big = h.allocBytes(65536, true); // the trailing free block returns to the bump region, then grows
  assert.equal(big, offs[3]);
  assert.ok(h.byteLength > 65536);
  assert.throws(() => h.freeBytesAt(12345), /unknown block/);
});

test('heap: without shared memory the size is fixed and exhaustion is a clear error', () => {
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  const h = new WasmHeap(mem, false, 0);
  h.allocBytes(60000, true);
  assert.throws(() => h.allocBytes(10000, true), /out of memory/);
});
