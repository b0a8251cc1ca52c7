// The README's inference pattern, `noGrad(() => model.forward(tensor(…)))` in a loop, in headless
// Chromium on a page built by esbuild from `import … from 'resnet-ts'`: 200 forwards hold memory
// flat (<= 10 % growth after the first 10) with and without COOP/COEP (shared and non-shared wasm
// memory). One thread: what is measured is memory, and threads on this 2-core machine only slow it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fixturesSkipReason, json } from './fixtures.js';
import { browserSkipReason, bundleEsbuild, launch, serveWithFixtures, type Browser, type BundleResult } from './browser/harness.js';

const skip = browserSkipReason() || fixturesSkipReason('cifar_resnet20');

describe('memory in Chromium', { skip }, () => {
  let browser: Browser;
  let page1: BundleResult;
  before(async () => {
    page1 = await bundleEsbuild();
    browser = await launch();
  });
  after(() => browser?.close());

  for (const isolation of [true, false]) {
    test(`200 forwards (noGrad pattern, CIFAR ResNet-20, batch 1, 1 thread) hold memory flat: wasm live bytes and memory <= 10 % growth after the first 10, JS heap <= 10 % or 1 MB, ${isolation ? 'with' : 'without'} COOP/COEP`, async (t) => {
      const srv = await serveWithFixtures(page1.dir, isolation);
      const { page, errors } = await browser.page();
      try {
        await page.goto(srv.url);
        await page.waitForFunction(() => document.title === 'ready', null, { timeout: 30_000 });
        const cdp = await page.context().newCDPSession(page);
        const o = {
          model: 'cifar_resnet20',
          arch: json<{ arch: object }>('cifar_resnet20', 'arch.json').arch,
          weights: `${srv.url}cifar_resnet20/weights.safetensors`,
          input: `${srv.url}cifar_resnet20/input.npy`,
          threads: 1,
          batch: 1,
        };
        type Run = { live: number[]; wasm: number[]; threads: number; isolated: boolean };
        const run = (n: number) =>
          page.evaluate(([o, n]) => (window as unknown as { forwards(o: object, n: number): Promise<Run> }).forwards(o as object, n as number), [
            o,
            n,
          ] as const);
        const jsHeap = async () => {
          await cdp.send('HeapProfiler.collectGarbage');
          return (await cdp.send('Runtime.getHeapUsage')).usedSize;
        };
        const a = await run(10);
        const heap10 = await jsHeap();
        const z = await run(190);
        const heap200 = await jsHeap();
        assert.equal(a.isolated, isolation);
        const live10 = a.live[9],
          live200 = z.live[189],
          wasm10 = a.wasm[9],
          wasm200 = z.wasm[189];
        const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;
        t.diagnostic(
          `${isolation ? 'with' : 'without'} COOP/COEP, ${a.threads} thread(s): live tensors ${mb(live10)} → ${mb(live200)}, wasm memory ${mb(wasm10)} → ${mb(wasm200)}, JS heap after GC ${mb(heap10)} → ${mb(heap200)}`,
        );
        assert.ok(live200 <= 1.1 * live10, `live tensor bytes grew from ${mb(live10)} after 10 forwards to ${mb(live200)} after 200`);
        assert.ok(wasm200 <= 1.1 * wasm10, `wasm memory grew from ${mb(wasm10)} to ${mb(wasm200)}`);
        assert.ok(heap200 <= Math.max(1.1 * heap10, heap10 + 2 ** 20), `JS heap grew from ${mb(heap10)} to ${mb(heap200)}`);
        assert.deepEqual(errors, []);
      } finally {
        await page.close();
        await srv.close();
      }
    });
  }
});
