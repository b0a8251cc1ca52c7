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
