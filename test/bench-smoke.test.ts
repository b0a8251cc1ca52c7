// Smoke test of the benchmark harness (bench/run.ts) at tiny sizes: it runs, prints one JSON
// line per case and a table, computes ratios, and records a peer's failure instead of
// crashing. No timing assertions: speed lives in `npm run bench`, not in tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function runBench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: root, timeout: 240_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('bench harness runs tiny cases with ours and tfjs-wasm: JSON lines, table, results file, recorded errors', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'));
  try {
    const out = path.join(dir, 'r.json');
    const { code, stdout, stderr } = await runBench([
      '--tiny',
      '--runs',
      '2',
      '--warmup',
      '0',
      '--threads',
      '1',
      '--peers',
      'ours,tfjs-wasm',
      '--only',
      'resnet18-b1,d2l-train-b4,sgemm-64',
      '--out',
      out,
    ]);
    assert.equal(code, 0, stderr.slice(-2000));
    const lines = stdout.split('\n').filter((l) => l.startsWith('{'));
    assert.equal(lines.length, 3, stdout);
    const cases = lines.map((l) => JSON.parse(l));
    assert.deepEqual(
      cases.map((c) => c.case),
      ['resnet18-b1', 'd2l-train-b4', 'sgemm-64'],
    );

    const [infer, train, gemm] = cases;
    assert.equal(infer.results.ours.runs_ms.length, 2);
    assert.equal(infer.results.ours.info.params, 11_689_512);
    assert.equal(infer.results['tfjs-wasm'].info.params, 11_689_512, 'tfjs model has the same trainable parameter count');
    assert.ok(infer.results.ours.ms_median > 0 && infer.results['tfjs-wasm'].ms_median > 0);
    const ratio = infer.results.ours.ms_per_image / infer.results['tfjs-wasm'].ms_per_image;
    assert.ok(Math.abs(infer.ratios['tfjs-wasm'] - ratio) <= 0.01 * ratio + 1e-3, 'ratio is ours / peer');

    assert.ok(train.results.ours.ms_median > 0);
    assert.equal(train.results.ours.info.params, 11_178_378);
    assert.match(train.results['tfjs-wasm'].error, /Conv2DBackpropFilter/, "tfjs-wasm's training failure is recorded, not thrown");

    assert.ok(gemm.results.ours.gflops > 0);
    assert.ok(gemm.ceilings.ceiling_nominal_3_5ghz_gflops === 1 * 16 * 3.5);

    assert.match(stdout, /\| case \| ours \(ms\) \| tfjs-wasm \(ms\) \| ours\/tfjs-wasm \|/);
    assert.match(stdout, /Conv2DBackpropFilter/, 'the error is a footnote of the table');
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(doc.cases.length, 3);
    assert.ok(doc.meta.machine.cores >= 1 && doc.table.includes('| resnet18-b1 |'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench harness rejects an unknown case with a message naming it', async () => {
  const { code, stderr } = await runBench(['--tiny', '--only', 'resnet999-b1', '--no-write']);
  assert.notEqual(code, 0);
  assert.match(stderr, /unknown case\(s\) resnet999-b1/);
});
