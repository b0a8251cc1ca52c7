// Browser vs Node: ResNet-18 and ResNet-50 at batch 1 (224x224, BN folded as in `npm run bench`) on
// the wasm backend in headless Chromium (Debian's chromium, cross-origin isolated, so threads
// work) and in this Node process, same machine, same run, interleaved round by round.
//
//   node --import tsx bench/browser.ts [--runs 7] [--warmup 2] [--threads 2]
//
// stdout: one JSON line per case and a markdown table with the browser/Node ratio.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import '../src/backend/wasm/index.js';
import { getThreads, setThreads } from '../src/backend/wasm/settings.js';
import { setBackend } from '../src/backend/registry.js';
import { fuseForInference } from '../src/models/fused.js';
import { createModel } from '../src/models/registry.js';
import { tensor } from '../src/tensor/ops.js';
import { noGrad, scope } from '../src/tensor/tensor.js';
import { launch } from '../test/browser/harness.js';
import { startServer } from '../web/serve.mjs';

const { values: o } = parseArgs({
  options: { runs: { type: 'string', default: '7' }, warmup: { type: 'string', default: '2' }, threads: { type: 'string', default: '2' } },
});
const runs = Number(o.runs),
  warmup = Number(o.warmup),
  threads = Number(o.threads);

const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-bench-browser-'));
await esbuild.build({
  entryPoints: [join(import.meta.dirname, 'browser/page.ts')],
  outdir: dir,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  splitting: true,
  logLevel: 'silent',
});
writeFileSync(
  join(dir, 'index.html'),
  '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>loading</title><script type="module" src="./page.js"></script>',
);
const server = await startServer({ dir, isolation: true });
const browser = await launch();
const { page } = await browser.page();
await page.goto(server.url);
await page.waitForFunction(() => document.title === 'ready');

await setBackend('wasm');
await setThreads(threads);
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const rows: string[] = [];
for (const model of ['resnet18', 'resnet50']) {
  const m = noGrad(() => createModel(model)).eval();
  const fused = fuseForInference(m); // shares the head with m: keep m until the end
  const x = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i) * 0.5;
  const node: number[] = [],
    web: number[] = [];
  let webThreads = 0;
  for (let r = 0; r < warmup + runs; r++) {
    const b = await page.evaluate(
      ([mm, t]) =>
        (globalThis as unknown as { forwardMs(m: string, t: number, s: number): Promise<{ ms: number; threads: number }> }).forwardMs(
          mm as string,
          t as number,
          224,
        ),
      [model, threads] as const,
    );
    const t0 = performance.now();
    scope(() => noGrad(() => fused.forward(tensor(x, [1, 3, 224, 224])).dataSync()[0]));
    const n = performance.now() - t0;
    webThreads = b.threads;
    if (r >= warmup) {
      web.push(b.ms);
      node.push(n);
    }
  }
  fused.dispose();
  m.dispose();
  const res = {
    case: `${model}-b1`,
    node_ms: +median(node).toFixed(1),
    chromium_ms: +median(web).toFixed(1),
    ratio: +(median(web) / median(node)).toFixed(2),
    node_threads: getThreads(),
    chromium_threads: webThreads,
    node_runs: node.map((v) => +v.toFixed(1)),
    chromium_runs: web.map((v) => +v.toFixed(1)),
  };
  console.log(JSON.stringify(res));
  rows.push(`| ${model}, batch 1 | ${res.node_ms} ms | ${res.chromium_ms} ms | ${res.ratio} |`);
}
console.log(`\n| case | Node (wasm, ${threads} threads) | Chromium (wasm, ${threads} threads) | Chromium/Node |\n|---|---|---|---|\n${rows.join('\n')}`);
await browser.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
