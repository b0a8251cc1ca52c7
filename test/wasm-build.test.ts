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

test('the kernel module exports exactly the generated job layout, and a mismatched layout is refused', async () => {
  const { checkLayout, moduleGlobals, wasmBytes } = await import('../src/backend/wasm/loader.js');
  const { ARG_SLOTS, CONSTS, FLOAT_SLOTS } = await import('../src/backend/wasm/kernels.generated.js');
  for (const shared of [false, true]) {
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared });
    const globals = moduleGlobals(new WebAssembly.Instance(new WebAssembly.Module(wasmBytes(shared)), { env: { memory } }));
    checkLayout(globals);
    assert.equal(Object.keys(globals).length, Object.keys(ARG_SLOTS).length + Object.keys(CONSTS).length);
    const layout: Record<string, number> = { ...ARG_SLOTS, ...CONSTS };
    assert.throws(() => checkLayout(globals, { ...layout, E_F6: layout.E_F6 + 1 }), /layout mismatch.*E_F6: module \d+, layout \d+/);
    const { OP_MIN_S: _, ...missing } = layout;
    assert.throws(() => checkLayout(globals, missing), /layout mismatch.*OP_MIN_S: not in the layout/);
  }
  // argument slots lie between the header and the statistics, and the f32 ones are the ones read with df()
  for (const v of Object.values(ARG_SLOTS)) assert.ok(v >= CONSTS.D_ARGS && v < CONSTS.D_STATS);
  assert.deepEqual([...FLOAT_SLOTS].sort(), ['B_EPS', 'E_F0', 'E_F1', 'E_F2', 'E_F3', 'E_F4', 'E_F5', 'E_F6']);
});
