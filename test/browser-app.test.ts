// The web app (web/) in a real headless Chromium: Classify with dropped PyTorch weights gives the
// logits Node gives, the Train view's Worker lowers the loss over 50 steps of a tiny ResNet and then
// names a test image's class, Inspect shows the layer table and feature maps; no console errors;
// a screenshot of each view goes to test/artifacts/.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import '../src/backend/wasm/index.js';
import { setBackend } from '../src/backend/registry.js';
import { fuseForInference } from '../src/models/fused.js';
import { tensor } from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { buildWeb } from '../web/build.mjs';
import { startServer } from '../web/serve.mjs';
import { buildFromFixture, FIXTURES, fixturesSkipReason, npy } from './fixtures.js';
import { artifact, browserSkipReason, launch, ROOT, type Browser } from './browser/harness.js';

const skip = browserSkipReason() || fixturesSkipReason('resnet18');

describe('web app in Chromium', { skip }, () => {
  let browser: Browser;
  let server: { url: string; close(): Promise<void> };
  before(async () => {
    await buildWeb();
    server = await startServer({ isolation: true });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('Classify: resnet18 with dropped PyTorch .safetensors gives the logits Node gives (atol 1e-5); top-5, time, backend and threads shown', async () => {
    const { page, errors } = await browser.page();
    await page.goto(`${server.url}#classify`);
    await page.setInputFiles('#classify-weights', join(FIXTURES, 'resnet18/weights.safetensors'));
    await page.waitForFunction(() => /weights: weights\.safetensors/.test(document.getElementById('classify-summary')!.textContent ?? ''), null, {
      timeout: 60_000,
    });
    // the same input and weights through the app's worker and through Node
    const x = npy('resnet18', 'input.npy');
    const got = await page.evaluate(
      async ({ data, shape }) => {
        const app = (globalThis as unknown as { resnetApp: { engines: Record<string, { call(op: string, a: unknown): Promise<Float32Array> }> } }).resnetApp;
        return Array.from(await app.engines.classify.call('logits', { x: new Float32Array(data), shape }));
      },
      { data: Array.from(x.data as Float32Array), shape: x.shape },
    );
    await setBackend('wasm');
    const model = buildFromFixture('resnet18').eval();
    const fused = fuseForInference(model);
    const want = noGrad(() => fused.forward(tensor(x.data as Float32Array, x.shape)).dataSync());
    fused.dispose();
    model.dispose();
    assert.equal(got.length, want.length);
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
    assert.ok(maxDiff <= 1e-5, `browser vs Node logits differ by ${maxDiff}`);
    // an image through the view: five classes with probabilities, and the timing line
    await page.setInputFiles('#classify-image', await testImagePng(0));
    await page.locator('#classify-result li').nth(4).waitFor({ timeout: 60_000 });
    const timing = await page.locator('#classify-result .timing').textContent();
    assert.match(timing!, /^\d+\.\d ms per image · backend wasm · [12] threads?/);
    const probs = await page.locator('#classify-result .prob').allTextContents();
    assert.equal(probs.length, 5);
    await page.screenshot({ path: artifact('classify.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: artifact('classify-phone.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('Train: 50 steps of CIFAR ResNet-8 (width 8) on the embedded slice in the Worker lower the loss; the view then names the class of >= 4 of the first 10 test images dropped on it', async (t) => {
    const { page, errors } = await browser.page();
    await page.goto(`${server.url}#train`);
    await page.selectOption('#train-depth', '8');
    await page.selectOption('#train-width', '8');
    await page.fill('#train-steps', '50');
    await page.fill('#train-batch', '64');
    await page.click('#train-start');
    // the page stays responsive while the worker trains: a click is handled within a second
    await page.waitForFunction(() => (globalThis as unknown as { resnetApp: { trainHistory: unknown[] } }).resnetApp.trainHistory.length >= 5, null, {
      timeout: 60_000,
    });
    const t0 = Date.now();
    await page.click('#train-pause');
    assert.equal(await page.locator('#train-pause').textContent(), 'Resume');
    assert.ok(Date.now() - t0 < 1000, `the page took ${Date.now() - t0} ms to handle a click during training`);
    const pausedAt = await page.evaluate(() => (globalThis as unknown as { resnetApp: { trainHistory: unknown[] } }).resnetApp.trainHistory.length);
    await page.waitForTimeout(300);
    const stillAt = await page.evaluate(() => (globalThis as unknown as { resnetApp: { trainHistory: unknown[] } }).resnetApp.trainHistory.length);
    assert.ok(stillAt <= pausedAt + 1, `training went on while paused (${pausedAt} → ${stillAt} steps)`);
    await page.click('#train-pause');
    await page.waitForSelector('#train-status[data-done="true"]', { timeout: 120_000 });
    const h = await page.evaluate(() =>
      (globalThis as unknown as { resnetApp: { trainHistory: { loss: number }[] } }).resnetApp.trainHistory.map((p) => p.loss),
    );
    assert.equal(h.length, 50);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const first = mean(h.slice(0, 10)),
      last = mean(h.slice(-10));
    assert.ok(last < 0.8 * first, `mean loss of the last 10 steps ${last.toFixed(3)} is not below 0.8 x the first 10 (${first.toFixed(3)})`);
    const acc = Number(/test accuracy (\d+\.\d)% on 1000 images/.exec((await page.locator('#train-status').textContent())!)?.[1]);
    assert.ok(acc >= 40, `test accuracy ${acc}% after 50 steps (chance: 10%)`);
    t.diagnostic((await page.locator('#train-status').textContent())!);
    // the first 10 test images, dropped one by one on the view
    const names: string[] = [];
    for (let i = 0; i < 10; i++) {
      await page.evaluate(() => document.getElementById('train-result')!.replaceChildren());
      await page.setInputFiles('#train-image', await testImagePng(i));
      await page.locator('#train-result li').first().waitFor({ timeout: 30_000 });
      names.push((await page.locator('#train-result li .label').first().textContent())!);
    }
    t.diagnostic(`top-1 of test images 0-9: ${names.join(', ')}`);
    const right = names.filter((n, i) => n === FASHION[TEST_LABELS[i]]).length;
    assert.ok(right >= 4, `${right}/10 test images named right (measured 5/10 when written)`);
    await page.screenshot({ path: artifact('train.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('Inspect, served without COOP/COEP (1 thread, as from any static host): the resnet info table for resnet50 at 3x160x160 and 64 feature maps of layer1', async (t) => {
    const { page, errors } = await browser.page();
    const plain = await startServer({ isolation: false });
    t.after(() => plain.close());
    await page.goto(`${plain.url}#inspect`);
    assert.match((await page.locator('footer').textContent())!, /not cross-origin isolated: 1 thread/);
    await page.selectOption('#inspect-model', 'resnet50');
    await page.fill('#inspect-input', '3x160x160');
    await page.press('#inspect-input', 'Enter');
    await page.locator('#inspect-input').blur();
    await page.waitForFunction(
      () => /resnet50: 25\.56 M parameters, .* 3×160×160 image, output 1000/.test(document.getElementById('inspect-totals')!.textContent ?? ''),
      null,
      { timeout: 30_000 },
    );
    const rows = await page.locator('#inspect-table tbody tr').count();
    assert.ok(rows > 100, `only ${rows} rows`);
    assert.equal(await page.locator('#inspect-table tbody tr', { hasText: 'layer4.2.conv3' }).locator('td').nth(2).textContent(), '2048×5×5');
    await page.selectOption('#inspect-layer', 'layer1');
    await page.setInputFiles('#inspect-image', await testImagePng(1));
    await page.locator('#inspect-maps canvas').nth(63).waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('#inspect-maps canvas').count(), 64);
    await page.screenshot({ path: artifact('inspect.png'), fullPage: false });
    assert.deepEqual(errors, []);
    await page.close();
  });
});

const FASHION = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const TEST_LABELS = gunzipSync(readFileSync(join(ROOT, 'data/fashion-mnist-slice/t10k-labels-idx1-ubyte.gz'))).subarray(8);

/** Test image i of the embedded Fashion-MNIST slice as a PNG file (28x28 gray). */
async function testImagePng(i: number): Promise<{ name: string; mimeType: string; buffer: Buffer }> {
  const raw = gunzipSync(readFileSync(join(ROOT, 'data/fashion-mnist-slice/t10k-images-idx3-ubyte.gz')));
  const px = raw.subarray(16 + i * 784, 16 + (i + 1) * 784);
  const buffer = await sharp(Buffer.from(px), { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toBuffer();
  return { name: `fashion-test-${i}.png`, mimeType: 'image/png', buffer };
}
