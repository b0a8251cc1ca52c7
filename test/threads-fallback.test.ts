// Threads that fail soft: a page that is not cross-origin isolated gets 1 thread and one console
// warning; workers that cannot start (an error event, as a CSP that blocks blob: workers gives; a
// constructor that throws; workers that never report ready) make the pool fall back to 1 thread
// within 2 s with one warning, and the backend keeps computing.
import assert from 'node:assert/strict';
import { test, mock } from 'node:test';
import { ThreadPool, type WorkerFactory } from '../src/backend/wasm/threads.js';
import { createWasmBackend } from '../src/backend/wasm/wasm.js';

function pool(factory: WorkerFactory): ThreadPool {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  return new ThreadPool(null as unknown as WebAssembly.Module, memory, 0, () => {}, factory, 'worker source');
}

const fakeWorker = (onPost: () => void = () => {}) => ({ post: onPost, terminate: () => {} });

for (const [what, factory] of [
  [
    'an error event (CSP blocks the blob: worker)',
    ((_src, onError) => fakeWorker(() => setTimeout(() => onError(new Error('Refused to create a worker')), 20))) as WorkerFactory,
  ],
  [
    'a Worker constructor that throws',
    (() => {
      throw new Error('SecurityError');
    }) as WorkerFactory,
  ],
  ['workers that never start', (() => fakeWorker()) as WorkerFactory],
] as const) {
  test(`setThreads(4) with ${what}: 1 thread within 2 s and one console warning`, async () => {
    const warn = mock.method(console, 'warn', () => {});
    try {
      const p = pool(factory);
      const t0 = Date.now();
      await p.setThreads(4);
      const ms = Date.now() - t0;
      assert.ok(ms <= 2100, `fell back after ${ms} ms`);
      assert.equal(p.size, 1);
      await p.setThreads(3); // asking again neither throws nor warns again
      assert.equal(p.size, 1);
      assert.equal(warn.mock.callCount(), 1);
      assert.match(String(warn.mock.calls[0].arguments[0]), /runs on 1 thread.*setWorkerUrl/);
      p.run(0, 4); // a job now runs on the calling thread alone: it returns without waiting for a worker
    } finally {
      warn.mock.restore();
    }
  });
}

test('without shared memory (a page that is not cross-origin isolated): 1 thread, one warning naming COOP/COEP, and the backend computes', async () => {
  const warn = mock.method(console, 'warn', () => {});
  try {
    const be = await createWasmBackend({ sharedMemory: false, threads: 4 });
    assert.equal(be.threads, 1);
    await be.setThreads(2);
    assert.equal(be.threads, 1);
    assert.equal(warn.mock.callCount(), 1);
    assert.match(String(warn.mock.calls[0].arguments[0]), /Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp/);
    const a = be.alloc(4),
      c = be.alloc(4);
    be.write(a, [1, 2, 3, 4]);
    be.gemm(false, false, 2, 2, 2, a, a, c, false);
    assert.deepEqual(Array.from(be.readSync(c)), [7, 10, 15, 22]);
  } finally {
    warn.mock.restore();
  }
});

test('a backend that asks for 1 thread (singleThread) says nothing', async () => {
  const warn = mock.method(console, 'warn', () => {});
  try {
    const be = await createWasmBackend({ singleThread: true });
    assert.equal(be.threads, 1);
    assert.equal(warn.mock.callCount(), 0);
  } finally {
    warn.mock.restore();
  }
});
