// ONNX export and import generate no code at run time (a page whose CSP lacks 'unsafe-eval' can
// use them): run both in a Node process where eval and new Function throw
// (--disallow-code-generation-from-strings) and check the round trip gives the same logits (atol 0).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

test('ONNX export -> import round trip with code generation from strings disallowed (logits equal, atol 0)', async () => {
  const src = (f: string) => JSON.stringify(new URL(`../src/${f}`, import.meta.url).href);
  const script = `
    let evalBlocked = false;
    try { new Function('return 1'); } catch { evalBlocked = true; }
    const { createModel, noGrad, randn, manualSeed } = await import(${src('browser.ts')});
    const { exportOnnx, importOnnx } = await import(${src('browser.ts')});
    manualSeed(1);
    const model = noGrad(() => createModel('cifar_resnet20', { numClasses: 10 })).eval();
    const bytes = exportOnnx(model, { inputShape: [3, 32, 32] });
    const back = importOnnx(bytes).model.eval();
    const x = randn([2, 3, 32, 32]);
    const a = noGrad(() => model.forward(x)).toArray(), b = noGrad(() => back.forward(x)).toArray();
    console.log(JSON.stringify({ evalBlocked, bytes: bytes.length, same: a.every((v, i) => v === b[i]) }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, [
    '--disallow-code-generation-from-strings',
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    script,
  ]);
  const r = JSON.parse(stdout.trim().split('\n').pop()!);
  assert.equal(r.evalBlocked, true, 'new Function must throw in this process');
  assert.ok(r.bytes > 1_000_000, `exported ${r.bytes} bytes`);
  assert.equal(r.same, true, 'imported model gives the same logits');
});
