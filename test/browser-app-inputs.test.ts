// The web app's other ways in, in headless Chromium: the camera (Chromium's fake device), a pasted
// image (a paste event carrying a PNG file), a picked folder of images for training (one subfolder
// per class), and a pretrained id fetched from a server on 127.0.0.1 whose bytes fail the SHA-256
// check (progress shown, the error shown, nothing kept in Cache Storage). Screenshots go to
// test/artifacts/. Not tested here: dropping a folder (Chromium gives synthetic drops no
// FileSystemEntry, so webkitGetAsEntry() is null) and a successful pretrained load in the app (the
// app offers torchvision's ids, whose SHA-256 only the real 45-100 MB files match; the browser
// loader's success, progress and cache paths are tested on Node's fetch in pretrained-http.test.ts).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { getPretrained } from '../src/models/pretrained.js';
import { buildWeb } from '../web/build.mjs';
import { startServer } from '../web/serve.mjs';
import { artifact, browserSkipReason, launch, type Browser } from './browser/harness.js';

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
});
