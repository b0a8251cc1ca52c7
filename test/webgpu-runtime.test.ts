// The webgpu runtime's hygiene: the buffer pool (reuse, zeroing, flat over many steps, release),
// errors that WebGPU reports asynchronously turned into clear thrown ones (a bad shader, a lost
// device, an oversized tensor, use after dispose), and the one-line errors where the package
// `webgpu` or an adapter is missing (simulated), from the library and from the CLI.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { webgpuSkipReason, webgpuForTests } from './webgpu-env.js';
import { WebGpuBackend, acquireDevice, getGpuProvider, setGpuProvider } from '../src/backend/webgpu/index.js';
import { GpuRuntime } from '../src/backend/webgpu/runtime.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RNG } from '../src/base/rng.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { assertClose } from './helpers.js';
import { runCli } from './cli-run.js';
import { getBackend, setBackend } from '../src/backend/registry.js';
import * as ops from '../src/tensor/ops.js';

const skip = await webgpuSkipReason();
let gpu: WebGpuBackend;
before(async () => {
  if (!skip) gpu = await webgpuForTests();
});

test('webgpu pool: a freed buffer is reused and comes back zero-filled; releasePool empties the pool', { skip }, async () => {
  const before = gpu.poolStats();
  const a = gpu.alloc(1001);
  gpu.fill(a, 7);
  gpu.free(a);
  const b = gpu.alloc(1001); // same byte size: the same GPUBuffer, cleared
  assert.equal(b.buffer, a.buffer, 'reused');
  assert.deepEqual(
    Array.from(await gpu.read(b)).filter((v) => v !== 0),
    [],
    'zero-filled',
  );
  gpu.free(b);
  assert.equal(gpu.poolStats().liveBuffers, before.liveBuffers);
  const c = gpu.alloc(1001); // the same buffer again: a stale handle freed twice must not free it
  gpu.free(a);
  assert.equal(gpu.poolStats().liveBuffers, before.liveBuffers + 1);
  gpu.free(c);
  assert.ok(gpu.poolStats().pooledBuffers >= 1);
  gpu.releasePool();
  assert.deepEqual([gpu.poolStats().pooledBuffers, gpu.poolStats().pooledBytes], [0, 0]);
  // over the pool's limit a freed buffer is destroyed, after the work recorded with it
  const limit = gpu.rt.poolLimitBytes;
  try {
    gpu.rt.poolLimitBytes = 4096;
    const [c, d] = [gpu.alloc(1000), gpu.alloc(1000)]; // 4000 bytes each
    gpu.fill(c, 2);
    gpu.copy(c, d);
    gpu.free(c); // pooled
    gpu.free(d); // destroyed
    assert.deepEqual([gpu.poolStats().pooledBuffers, gpu.poolStats().pooledBytes], [1, 4000]);
    const e = gpu.alloc(1000);
    gpu.fill(e, 3);
    assert.equal((await gpu.read(e))[999], 3);
    gpu.free(e);
  } finally {
    gpu.rt.poolLimitBytes = limit;
  }
});

test('webgpu write: from a view of a SharedArrayBuffer (wasm memory), a subarray, a plain array at an offset (exact)', { skip }, async () => {
  const shared = new Float32Array(new SharedArrayBuffer(64), 4, 5);
  shared.set([1, 2, 3, 4, 5]);
  const a = gpu.alloc(5);
  gpu.write(a, shared);
  assert.deepEqual(Array.from(await gpu.read(a)), [1, 2, 3, 4, 5]);
  gpu.write(a, new Float32Array([0, 6, 7, 0]).subarray(1, 3), 1);
  gpu.write(a, [9], 4);
  assert.deepEqual(Array.from(await gpu.read(a)), [1, 6, 7, 4, 9]);
  assert.throws(() => gpu.write(a, [1, 2], 4), /write of 2 floats at 4 into a buffer of 5/);
  gpu.free(a);
});

test(
  'webgpu pool: 300 steps of alloc / broadcast / split reduction / optimizer / free hold live and pooled buffers flat (exact counts)',
  { skip },
  async () => {
    const w = gpu.alloc(64 * 3 * 3);
    gpu.fill(w, 0.5);
    const step = () => {
      const x = gpu.alloc(2 * 64 * 20 * 20),
        bias = gpu.alloc(64),
        g = gpu.alloc(64),
        total = gpu.alloc(1);
      gpu.fill(x, 1);
      gpu.binary('add', x, [2, 64, 20, 20], bias, [1, 64, 1, 1], x, [2, 64, 20, 20]);
      gpu.sumTo(x, [2, 64, 20, 20], g, [1, 64, 1, 1]); // 800 per channel
      gpu.sumTo(x, [2, 64 * 20 * 20], total, [1, 1]); // 51200 values: split, with a temporary buffer
      gpu.sgdStep(w, x, null, 0.1, 0, 0, 0, false, true);
      for (const s of [x, bias, g, total]) gpu.free(s);
    };
    for (let i = 0; i < 10; i++) step();
    await gpu.sync();
    const s0 = gpu.poolStats();
    for (let i = 0; i < 300; i++) step();
    await gpu.sync();
    const s1 = gpu.poolStats();
    assert.deepEqual(s1, s0, `pool after 10 steps ${JSON.stringify(s0)}, after 310 ${JSON.stringify(s1)}`);
    gpu.free(w);
  },
);

test('webgpu: a tensor over the adapter binding limit gets a clear error naming the sizes', { skip }, () => {
  const max = gpu.rt.device.limits.maxStorageBufferBindingSize;
  assert.throws(
    () => gpu.alloc(max / 4 + 4),
    /webgpu backend: a tensor of \d+ floats \([\d.]+ MiB\) is over this adapter's largest buffer binding \([\d.]+ MiB\)/,
  );
});

test('webgpu: a shader error, a lost device and use after dispose() become clear thrown errors', { skip }, async () => {
  const { device, description } = await acquireDevice();
  const rt = new GpuRuntime(device);
  const y = rt.alloc(4);
  rt.dispatch({ key: 'broken', code: () => 'this is not WGSL', buffers: [y], groups: [1] });
  await assert.rejects(rt.sync(), /^Error: WebGPU error: \S[^\n]*"broken"/ /* one line, naming the kernel */);
  rt.alloc(4); // the error was reported once
  const aliasing = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@compute @workgroup_size(1) fn main() { a[0] = b[0]; }`;
  rt.dispatch({ key: 'aliasing', code: () => aliasing, buffers: [y, y], groups: [1] });
  await assert.rejects(rt.sync(), /^Error: WebGPU error: [^\n]*\(kernels that bound one buffer twice: aliasing\)$/);
  device.destroy();
  await device.lost;
  assert.throws(() => rt.alloc(4), /^Error: WebGPU device lost \(destroyed\)/);

  const other = await acquireDevice();
  const b = new WebGpuBackend(other.device, description);
  const x = b.alloc(10);
  b.dispose();
  assert.deepEqual([b.poolStats().liveBuffers, b.poolStats().pooledBuffers], [0, 0]);
  assert.throws(() => b.alloc(1), /webgpu backend: used after dispose\(\)/);
  b.free(x); // freeing after dispose is harmless
});

test('webgpu: no package / no adapter / no WebGPU at all: one-line errors naming what is missing (simulated providers)', async () => {
  const saved = getGpuProvider();
  try {
    setGpuProvider(async () => ({ requestAdapter: async () => null }) as unknown as GPU);
    await assert.rejects(acquireDevice(), { name: 'ConfigError', message: 'webgpu backend: no GPU adapter found (requestAdapter returned null)' });
    setGpuProvider(null);
    await assert.rejects(
      acquireDevice(),
      (e: Error) =>
        /^webgpu backend: this runtime has no WebGPU \(no navigator\.gpu; in Node install the optional package `webgpu`/.test(e.message) &&
        !e.message.includes('\n'),
    );
  } finally {
    setGpuProvider(saved);
  }
});

const run = promisify(execFile);
const cli = (args: string[], hide: boolean) =>
  run(process.execPath, ['--import', 'tsx', ...(hide ? ['--import', './test/webgpu-hide-package.mjs'] : []), 'src/cli/main.ts', ...args], {
    cwd: process.cwd(),
  }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

test('CLI --backend webgpu without the package `webgpu` (hidden from the resolver): exit 1 and one error line naming the package', async () => {
  const r = await cli(['--backend', 'webgpu', 'models'], true);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /^error: webgpu backend: Node has no WebGPU without the optional package 'webgpu' \(npm install webgpu\): Cannot find package 'webgpu'[^\n]*\n$/,
  );
  assert.equal(r.stdout, '');
});

test(
  'CLI --backend webgpu forward: prints the adapter once; cifar_resnet20 logits equal the ref backend run of the same command (rtol 1e-4, atol 1e-5)',
  { skip },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'resnet-webgpu-cli-'));
    try {
      const rng = new RNG(5);
      const x = Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => rng.uniform(-1, 1));
      writeFileSync(join(dir, 'x.npy'), writeNpy({ dtype: 'F32', shape: [2, 3, 32, 32], data: x }));
      const args = (backend: string, out: string) => [
        '--backend',
        backend,
        'forward',
        '--model',
        'cifar_resnet20',
        '--input',
        join(dir, 'x.npy'),
        '--output',
        join(dir, out),
      ];
      const r = await cli(args('webgpu', 'gpu.npy'), false);
      assert.equal(r.code, 0, r.stderr);
      // the adapter, once, on stderr (vendor/architecture/device/description of GPUAdapterInfo)
      assert.equal(r.stderr.match(/^webgpu adapter: \S.*$/gm)?.length, 1, r.stderr);
      const refRun = await runCli(args('ref', 'ref.npy')); // in process; the later --backend wins
      assert.equal(refRun.code, 0, refRun.err);
      const got = readNpy(readFileSync(join(dir, 'gpu.npy'))),
        want = readNpy(readFileSync(join(dir, 'ref.npy')));
      assert.deepEqual(got.shape, [2, 10]);
      assertClose(got.data, want.data, 1e-4, 1e-5, 'logits');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

// Last in this file: it disposes the process-wide webgpu backend that the tests above share.
test("setBackend('webgpu') after dispose() makes a new backend and device; the disposed one says what to do", { skip }, async () => {
  const first = await setBackend('webgpu');
  (first as WebGpuBackend).dispose();
  assert.equal(first.disposed, true);
  assert.throws(() => first.alloc(1), /^Error: webgpu backend: used after dispose\(\) \(await setBackend\('webgpu'\) makes a new one\)$/);
  const second = await setBackend('webgpu');
  assert.notEqual(second, first);
  assert.equal(getBackend(), second);
  const x = ops.tensor([1, -2, 3], [3]);
  assert.deepEqual(Array.from(await ops.relu(x).data()), [1, 0, 3]);
  await setBackend('ref');
});
