// The web app's other ways in, in headless Chromium: the camera (Chromium's fake device), a pasted
// image (a paste event carrying a PNG file), a picked folder of images for training (one subfolder
// per class), and a pretrained id fetched from a server on 127.0.0.1 whose bytes fail the SHA-256
// check (progress shown, the error shown, nothing kept in Cache Storage). The success path of the
// browser loader runs in a page of its own: loadPretrained of a registered id (a .pth written here,
// with its SHA-256 prefix) from 127.0.0.1 with progress, then again from Cache Storage with no
// request, and the logits Node gives. Screenshots go to test/artifacts/. Not tested: dropping a
// folder (Chromium gives synthetic drops no FileSystemEntry, so webkitGetAsEntry() is null) and a
// successful load of the app's own pretrained ids (torchvision's, whose SHA-256 only the real
// 45-100 MB files match).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { build as esbuild } from 'esbuild';
import { getPretrained } from '../src/models/pretrained.js';
import { writePth } from '../src/io/pth.js';
import { stateDictToArrays } from '../src/nn/state.js';
import { createModel } from '../src/models/registry.js';
import { manualSeed } from '../src/base/rng.js';
import { setBackend } from '../src/backend/registry.js';
import { tensor } from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { buildWeb } from '../web/build.mjs';
import { startServer } from '../web/serve.mjs';
import { artifact, browserSkipReason, launch, ROOT, type Browser } from './browser/harness.js';

const skip = browserSkipReason();

/** A w×h PNG of one colour with a diagonal stripe. */
async function png(w: number, h: number, rgb: readonly [number, number, number]): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const on = Math.abs(x - y) < 3;
      for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = on ? 255 - rgb[c] : rgb[c];
    }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

describe('web app inputs in Chromium', { skip }, () => {
  let browser: Browser;
  let app: { url: string; close(): Promise<void> };
  let weights: Server;
  let weightsUrl = '';
  const requested: string[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'resnet-app-inputs-'));
  before(async () => {
    await buildWeb();
    app = await startServer({ isolation: false });
    browser = await launch(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
    // 3 MB that are not the weights: the download runs (with progress) and the hash check refuses it
    const body = Buffer.alloc(3 << 20, 7);
    weights = createServer((req, res) => {
      requested.push(req.url ?? '');
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(body.length),
        'access-control-allow-origin': '*',
        connection: 'close',
      });
      res.end(body);
    });
    await new Promise<void>((r) => weights.listen(0, '127.0.0.1', r));
    weightsUrl = `http://127.0.0.1:${(weights.address() as { port: number }).port}/`;
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    await new Promise((r) => weights?.close(r));
    rmSync(tmp, { recursive: true, force: true });
  });

  test('Classify: a picture from the camera (fake device) and a pasted PNG are each classified (top-5 shown)', async () => {
    const { page, errors } = await browser.page();
    await page.goto(`${app.url}#classify`);
    await page.selectOption('#classify-model', 'cifar_resnet20');
    await page.getByRole('button', { name: 'Camera' }).click();
    await page.getByRole('button', { name: 'Take picture' }).click();
    await page.locator('#classify-result li').nth(4).waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('#classify-result .prob').count(), 5);
    await page.screenshot({ path: artifact('classify-camera.png'), fullPage: true });
    await page.getByRole('button', { name: 'Close camera' }).click();

    await page.evaluate(() => document.querySelector('#classify-result')!.replaceChildren());
    const bytes = await png(40, 30, [30, 120, 200]);
    await page.evaluate((data) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(data)], 'pasted.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt }));
    }, Array.from(bytes));
    await page.locator('#classify-result li').nth(4).waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('#classify-result .prob').count(), 5);
    await page.screenshot({ path: artifact('classify-paste.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('Train: a picked folder of images (two class subfolders) becomes the training data', async () => {
    const dir = join(tmp, 'shapes');
    for (const [cls, rgb] of [
      ['circle', [200, 40, 40]],
      ['square', [40, 200, 40]],
    ] as const) {
      mkdirSync(join(dir, cls), { recursive: true });
      for (let i = 0; i < 5; i++) await sharp(await png(36 + i, 36, rgb)).toFile(join(dir, cls, `${i}.png`));
    }
    const { page, errors } = await browser.page();
    await page.goto(`${app.url}#train`);
    await page.setInputFiles('#view-train input[webkitdirectory]', dir);
    await page.waitForFunction(() => /^Data: 10 images in 2 class folders/.test(document.getElementById('train-data')!.textContent ?? ''), null, {
      timeout: 30_000,
    });
    await page.screenshot({ path: artifact('train-folder.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('Classify with a pretrained id from a server on 127.0.0.1 (the registry file name under the given base URL): progress shown, bytes that fail the SHA-256 check refused with a message, nothing cached', async () => {
    const id = 'resnet18.IMAGENET1K_V1';
    const { page } = await browser.page();
    await page.goto(`${app.url}#classify`);
    await page.selectOption('#classify-model', `pretrained:${id}`);
    await page.fill('#classify-base', weightsUrl);
    await page.press('#classify-base', 'Enter');
    await page.locator('#classify-base').blur();
    await page.waitForFunction(() => /SHA-256/.test(document.querySelector('.error:not([hidden])')?.textContent ?? ''), null, { timeout: 60_000 });
    assert.ok(requested.includes(`/${encodeURIComponent(getPretrained(id).fileName)}`), `requests: ${requested}`);
    // the loader's progress callback reached the page: the last event covered the whole file
    assert.equal(await page.getByText('downloading the weights: 3.0 of 3.0 MB').count(), 1);
    const cached = await page.evaluate(async () => (await (await caches.open('resnet-ts-weights')).keys()).length);
    assert.equal(cached, 0, 'a refused download is not cached');
    await page.screenshot({ path: artifact('classify-pretrained-refused.png'), fullPage: true });
    await page.close();
  });

  test("loadPretrained in the page: a registered id fetched from a server on 127.0.0.1 (progress to the full size, SHA-256 checked), then again from Cache Storage without a request; logits equal Node's (atol 1e-5)", async () => {
    // a cifar_resnet20 .pth written here, registered in the page under a test id with its SHA-256 prefix
    await setBackend('wasm');
    manualSeed(3);
    const model = noGrad(() => createModel('cifar_resnet20', { numClasses: 10 }).eval());
    const pth = writePth(stateDictToArrays(model));
    const sha = createHash('sha256').update(pth).digest('hex').slice(0, 12);
    const x = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i));
    const want = Array.from(noGrad(() => model.forward(tensor(x, [1, 3, 32, 32]))).dataSync());
    model.dispose();
    let hits = 0;
    const srv = createServer((_req, res) => {
      hits++;
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(pth.length),
        'access-control-allow-origin': '*',
        connection: 'close',
      });
      res.end(pth);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/cifar_resnet20-${sha}.pth`;
    const dir = join(tmp, 'loader-page');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'page.js'),
      `import { registerPretrained, loadPretrained, noGrad, tensor, setBackend } from ${JSON.stringify(join(ROOT, 'src/browser.ts'))};
window.loadTwice = async (url, sha, x) => {
  await setBackend('wasm');
  const id = 'cifar_resnet20.BROWSER_TEST';
  registerPretrained({ id, url, sha256Prefix: sha, numClasses: 10 });
  const run = async () => {
    const progress = [];
    const { model } = await loadPretrained(id, { onProgress: (received, total) => progress.push([received, total]) });
    const logits = Array.from(noGrad(() => model.forward(tensor(new Float32Array(x), [1, 3, 32, 32]))).dataSync());
    model.dispose();
    return { progress, logits };
  };
  const first = await run(), second = await run();
  const cached = (await (await caches.open('resnet-ts-weights')).keys()).map((r) => r.url);
  return { first, second, cached };
};
document.title = 'ready';
`,
    );
    writeFileSync(
      join(dir, 'index.html'),
      '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="./out/page.js"></script>\n',
    );
    await esbuild({ entryPoints: [join(dir, 'page.js')], outdir: join(dir, 'out'), bundle: true, format: 'esm', platform: 'browser', logLevel: 'silent' });
    const pageSrv = await startServer({ dir, isolation: false });
    const { page, errors } = await browser.page();
    try {
      await page.goto(pageSrv.url);
      await page.waitForFunction(() => document.title === 'ready', null, { timeout: 30_000 });
      type Run = { progress: [number, number | null][]; logits: number[] };
      const r = await page.evaluate(
        ([u, h, xs]) =>
          (window as unknown as { loadTwice(u: string, h: string, x: number[]): Promise<{ first: Run; second: Run; cached: string[] }> }).loadTwice(u, h, xs),
        [url, sha, Array.from(x)] as const,
      );
      assert.equal(hits, 1, 'the second load came from Cache Storage');
      assert.deepEqual(r.cached, [url]);
      assert.ok(r.first.progress.length >= 1, 'progress was reported');
      assert.deepEqual(r.first.progress[r.first.progress.length - 1], [pth.length, pth.length]);
      for (const run of [r.first, r.second]) {
        let maxDiff = 0;
        for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(run.logits[i] - want[i]));
        assert.ok(maxDiff <= 1e-5, `browser vs Node logits differ by ${maxDiff}`);
      }
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
      await pageSrv.close();
      await new Promise((res) => srv.close(res));
    }
  });
});
