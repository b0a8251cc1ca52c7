// The wasm backend on an unshared WebAssembly.Memory (what a page that is not cross-origin
// isolated gets), forced here in Node with sharedMemory: false. Such a memory detaches its
// ArrayBuffer, and every view into it, each time it grows; the backend's buffers are blocks
// (offset, length) viewed anew by each kernel, so tensors made before a growth keep their values
// and kernels that run across one (inherited ref kernels included) compute the right numbers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registerBackend, setBackend } from '../src/backend/registry.js';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/wasm.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad, scope } from '../src/tensor/tensor.js';
import { buildFromFixture, fixturesSkipReason, npy, st } from './fixtures.js';
import { relL2 } from './helpers.js';

const MIB = 2 ** 20;
// one fresh backend per test, so that each starts at 1 MiB
for (const n of ['wasm-unshared-a', 'wasm-unshared-b']) registerBackend(n, () => createWasmBackend({ sharedMemory: false, initialMemoryBytes: MIB }));

test('unshared memory: starts at 1 MiB and grows on demand; tensors made before each growth keep their values', async () => {
  const be = (await setBackend('wasm-unshared-a')) as WasmBackend;
  try {
    assert.equal(be.heap.shared, false);
    assert.equal(be.heap.byteLength, MIB);
    const early = ops.tensor(
      Array.from({ length: 1000 }, (_, i) => i * 0.5 - 7),
      [10, 100],
    );
    const buffers: ArrayBufferLike[] = [be.heap.buffer];
    const kept = [];
    for (let i = 0; i < 6; i++) {
      // 4 MiB each: every one of these grows the memory, which detaches the old buffer
      kept.push(ops.full([MIB], i + 1));
      buffers.push(be.heap.buffer);
    }
    assert.ok(be.heap.byteLength >= 24 * MIB, `memory is ${be.heap.byteLength / MIB} MiB`);
    assert.ok(new Set(buffers).size >= 4, 'the memory grew (a new buffer) several times');
    assert.equal(buffers[0].byteLength, 0, 'the first buffer was detached by growth');
    assert.deepEqual(
      Array.from(early.dataSync()),
      Array.from({ length: 1000 }, (_, i) => i * 0.5 - 7),
    );
    kept.forEach((t, i) => assert.equal(ops.sum(t).item(), (i + 1) * MIB));
    // an op whose output forces a growth while its inputs are live
    const s = ops.add(early, ops.full([10, 100], 7));
    assert.equal(s.dataSync()[3], 1.5);
    for (const t of [early, s, ...kept]) t.dispose();
  } finally {
    await setBackend('ref');
  }
});

const name = 'cifar_resnet20';
test(
  `unshared memory from 1 MiB: ${name} eval logits vs PyTorch float64 (rtol 1e-4, atol 1e-5) and training gradients (rel. L2 <= max(1e-3, 8x PyTorch float32's)) while the memory grows`,
  { skip: fixturesSkipReason(name) },
  async () => {
    const be = (await setBackend('wasm-unshared-b')) as WasmBackend;
    try {
      const grownBefore = be.heap.byteLength;
      const x = npy(name, 'input.npy');
      const m = buildFromFixture(name).eval();
      const logits = noGrad(() => m.forward(ops.tensor(x.data, x.shape))).dataSync();
      const want = npy(name, 'logits_eval_f64.npy').data;
      for (let i = 0; i < want.length; i++) {
        assert.ok(Math.abs(logits[i] - want[i]) <= 1e-5 + 1e-4 * Math.abs(want[i]), `logit ${i}: ${logits[i]}, float64 ${want[i]}`);
      }
      m.train();
      scope(() => ops.crossEntropy(m.forward(ops.tensor(x.data, x.shape)), npy(name, 'targets.npy').data).backward());
      const g64 = st(name, 'grads_f64.safetensors'),
        g32 = st(name, 'grads.safetensors');
      for (const [k, p] of m.namedParameters()) {
        const e = relL2(p.grad!.dataSync(), g64.get(k)!.data),
          t = relL2(g32.get(k)!.data, g64.get(k)!.data);
        assert.ok(e <= Math.max(1e-3, 8 * t), `grad ${k}: relative L2 error ${e.toExponential(2)}, PyTorch float32's ${t.toExponential(2)}`);
      }
      m.dispose();
      assert.ok(be.heap.byteLength > grownBefore, 'the memory grew during the run');
    } finally {
      await setBackend('ref');
    }
  },
);
