// Smoke test of the tfjs-webgpu peer in the benchmark harness (bench/run.ts): on the adapter our
// webgpu backend gets (llvmpipe here), a tiny SGEMM runs on ours-webgpu and on tfjs-backend-webgpu
// (in its child process), both get a time, the ratio is ours (webgpu) / tfjs-webgpu, and on a
// software adapter the ratio is marked with the adapter's description. No timing assertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { webgpuSkipReason } from './webgpu-env.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const skip = await webgpuSkipReason();

test('bench: tfjs-webgpu beside ours-webgpu on the same adapter, ratio ours (webgpu)/tfjs-webgpu, software adapter marked', { skip }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-webgpu-smoke-'));
  try {
    const out = path.join(dir, 'r.json');
    const args = [
      '--import',
      'tsx',
      'bench/run.ts',
      '--tiny',
      '--runs',
      '1',
      '--warmup',
      '0',
      '--peers',
      'ours-webgpu,tfjs-webgpu',
      '--only',
      'sgemm-64',
      '--out',
      out,
    ];
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, args, { cwd: root, timeout: 240_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(code, 0, stderr.slice(-2000));
    const c = JSON.parse(readFileSync(out, 'utf8')).cases[0];
    const ours = c.results['ours-webgpu'],
      tfjs = c.results['tfjs-webgpu'];
    assert.ok(ours.ms_median > 0 && tfjs.ms_median > 0, JSON.stringify(c.results));
    assert.match(tfjs.info.version, /^4\./);
    const adapter: string = tfjs.info.adapter;
    assert.ok(adapter && ours.info.backend.includes(adapter), `same adapter: ${adapter} / ${ours.info.backend}`);
    const ratio = ours.ms_median / tfjs.ms_median;
    assert.ok(Math.abs(c.ratios['tfjs-webgpu'] - ratio) <= 0.01 * ratio + 1e-3, 'ratio is ours (webgpu) / tfjs-webgpu');
    assert.match(stdout, /\| ours \(webgpu\)\/tfjs-webgpu \|/);
    if (/llvmpipe|swiftshader|lavapipe|softpipe/i.test(adapter)) {
      assert.ok(stdout.includes(`software adapter (${adapter})`), 'the ratio carries the software-adapter footnote');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
