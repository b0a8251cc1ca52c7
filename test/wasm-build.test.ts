// The committed kernel module (kernels.generated.ts) must be what the AssemblyScript sources build to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

test('kernels.generated.ts matches a fresh build of src/backend/wasm/assembly', () => {
  let out = '';
  try {
    out = execFileSync(process.execPath, ['src/backend/wasm/assembly/build.mjs', '--check'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    assert.fail(`stale build: ${err.stderr ?? ''}${err.stdout ?? ''}`);
  }
  assert.match(out, /up to date/);
});

test('the stored module exports no globals (the layout globals are dropped at build), has the kernel entry points and instantiates on a shared and an unshared memory; the layout is consistent', async () => {
  const { instantiate, wasmBytes } = await import('../src/backend/wasm/loader.js');
  for (const shared of [false, true]) {
    const module = new WebAssembly.Module(await wasmBytes(shared));
    const exports = WebAssembly.Module.exports(module);
    assert.deepEqual(
      exports.filter((e) => e.kind === 'global'),
      [],
      'no exported globals',
    );
    for (const f of ['run_job', 'heap_base', 'zero_bytes', 'copy_bytes', 'bench_kernel'])
      assert.ok(
        exports.some((e) => e.name === f && e.kind === 'function'),
        f,
      );
    assert.deepEqual(WebAssembly.Module.imports(module), [{ module: 'env', name: 'memory', kind: 'memory' }]);
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared });
    const k = instantiate(module, memory);
    assert.ok(k.heap_base() > 0);
  }
  // argument slots lie between the header and the statistics (f32 ones at F32 + index), and the f32 ones are the ones read with df()
  const c = await import('../src/backend/wasm/kernels.generated.js');
  const slots = Object.entries(c).filter(([k]) => /^[A-Z]+_/.test(k) && !/^(D|K|OP|PM)_/.test(k) && k !== 'SCRATCH_BYTES' && !k.startsWith('KERNELS_'));
  assert.ok(slots.length > 50, `${slots.length} argument slots`);
  for (const [k, v] of slots) {
    const i = (v as number) % c.F32;
    assert.ok(i >= c.D_ARGS && i < c.D_STATS, `${k} = ${v}`);
  }
  assert.deepEqual(
    slots
      .filter(([, v]) => (v as number) >= c.F32)
      .map(([k]) => k)
      .sort(),
    ['B_EPS', 'E_F0', 'E_F1', 'E_F2', 'E_F3', 'E_F4', 'E_F5', 'E_F6'],
  );
});
