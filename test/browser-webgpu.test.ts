// The webgpu backend in a real browser: headless Chromium (--enable-unsafe-webgpu; SwiftShader's
// adapter on a machine without a GPU) runs CIFAR ResNet-20 with the PyTorch fixture's weights from
// a page built by esbuild from the browser entry; its logits (module forward and fused copy) match
// PyTorch float64 and the logits Node computes on wasm.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import '../src/backend/wasm/index.js';
import { setBackend } from '../src/backend/registry.js';
import { tensor } from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { buildFromFixture, fixturesSkipReason, json, npy } from './fixtures.js';
import { browserSkipReason, launch, serveWithFixtures, type Browser } from './browser/harness.js';

const skip = browserSkipReason() || fixturesSkipReason('cifar_resnet20');
const RTOL = 1e-4,
  ATOL = 1e-5;

describe('webgpu in Chromium', { skip }, () => {
  let browser: Browser;
  let dir: string;
  let server: { url: string; close(): Promise<void> };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'resnet-ts-webgpu-page-'));
    const esbuild = await import('esbuild');
    await esbuild.build({
      entryPoints: [join(import.meta.dirname, 'browser/webgpu-page.ts')],
      outfile: join(dir, 'page.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      logLevel: 'silent',
    });
    cpSync(join(import.meta.dirname, 'browser/index.html'), join(dir, 'index.html'));
    server = await serveWithFixtures(dir, false);
    browser = await launch(['--enable-unsafe-webgpu']);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test(`CIFAR ResNet-20 on Chromium's WebGPU: eval logits (module and fused) match PyTorch float64 (rtol ${RTOL}, atol ${ATOL}) and Node's wasm logits (atol 1e-5)`, async (t) => {
    const { page, errors } = await browser.page();
    await page.goto(server.url);
    await page.waitForFunction(() => document.title === 'ready', null, { timeout: 30_000 });
    const o = {
      model: 'cifar_resnet20',
      arch: json<{ arch: object }>('cifar_resnet20', 'arch.json').arch,
      weights: `${server.url}cifar_resnet20/weights.safetensors`,
      input: `${server.url}cifar_resnet20/input.npy`,
    };
    type Out = { logits: number[]; fused: number[]; adapter: string };
    const got = await page.evaluate((o) => (window as unknown as { webgpuRun(o: object): Promise<Out> }).webgpuRun(o), o);
    t.diagnostic(`Chromium adapter: ${got.adapter}`);
    const f64 = npy('cifar_resnet20', 'logits_eval_f64.npy').data;
    const x = npy('cifar_resnet20', 'input.npy');
    await setBackend('wasm');
    const node = noGrad(() => buildFromFixture('cifar_resnet20').eval().forward(tensor(x.data, x.shape)).dataSync());
    await setBackend('ref');
    for (const [what, v] of [
      ['module', got.logits],
      ['fused', got.fused],
    ] as const) {
      assert.equal(v.length, f64.length);
      let vsNode = 0;
      v.forEach((y, i) => {
        assert.ok(Math.abs(y - f64[i]) <= ATOL + RTOL * Math.abs(f64[i]), `${what} logit ${i}: ${y}, PyTorch float64 ${f64[i]}`);
        vsNode = Math.max(vsNode, Math.abs(y - node[i]));
      });
      t.diagnostic(`${what}: max |Chromium webgpu - Node wasm| = ${vsNode.toExponential(2)}`);
      assert.ok(vsNode <= 1e-5, `${what}: Chromium's webgpu logits differ from Node's wasm logits by ${vsNode}`);
    }
    assert.deepEqual(errors, []);
    await page.close();
  });
});
