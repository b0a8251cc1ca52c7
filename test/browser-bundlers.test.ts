// `import … from 'resnet-ts'` in a one-page app (test/browser/page.js) built with no configuration
// by esbuild, Vite and webpack, run in headless Chromium: the logits equal Node's for the same
// PyTorch weights and input (atol 1e-5), with no build warning and no console error.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import '../src/backend/wasm/index.js';
import { setBackend } from '../src/backend/registry.js';
import { tensor } from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { buildFromFixture, fixturesSkipReason, npy } from './fixtures.js';
import { browserSkipReason, bundleEsbuild, bundleVite, bundleWebpack, launch, serveWithFixtures, type Browser } from './browser/harness.js';

const skip = browserSkipReason() || fixturesSkipReason('resnet18');

function nodeLogits(name: string): Float32Array {
  const x = npy(name, 'input.npy');
  const model = buildFromFixture(name).eval();
  try {
    return noGrad(() => model.forward(tensor(x.data as Float32Array, x.shape)).dataSync());
  } finally {
    model.dispose();
  }
}

describe('resnet-ts bundled by esbuild, Vite and webpack, in Chromium', { skip }, () => {
  let browser: Browser;
  let want: Float32Array;
  before(async () => {
    await setBackend('wasm');
    want = nodeLogits('resnet18');
    browser = await launch();
  });
  after(() => browser?.close());

  for (const [name, bundle] of [
    ['esbuild', bundleEsbuild],
    ['Vite', bundleVite],
    ['webpack', bundleWebpack],
  ] as const) {
    test(`${name}, no configuration: builds without warnings and resnet18 logits equal Node's (atol 1e-5)`, async (t) => {
      const b = await bundle();
      assert.deepEqual(b.warnings, []);
      const srv = await serveWithFixtures(b.dir, true);
      const { page, errors } = await browser.page();
      try {
        await page.goto(srv.url);
        await page.waitForFunction(() => document.title === 'ready', null, { timeout: 30_000 });
        const r = await page.evaluate(
          (u) =>
            (window as unknown as { logits(o: object): Promise<{ logits: number[]; threads: number; isolated: boolean }> }).logits({
              model: 'resnet18',
              arch: { numClasses: 10 },
              weights: `${u}resnet18/weights.safetensors`,
              input: `${u}resnet18/input.npy`,
              threads: 2,
            }),
          srv.url,
        );
        assert.equal(r.isolated, true);
        assert.equal(r.logits.length, want.length);
        let maxDiff = 0;
        for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(r.logits[i] - want[i]));
        t.diagnostic(`${name}: built in ${(b.ms / 1000).toFixed(1)} s; ${r.threads} threads; max |browser - Node| = ${maxDiff.toExponential(2)}`);
        assert.ok(maxDiff <= 1e-5, `browser vs Node logits differ by ${maxDiff}`);
        assert.deepEqual(errors, []);
      } finally {
        await page.close();
        await srv.close();
      }
    });
  }
});
