// resnet-ts on WebGPU beside onnxruntime-web's webgpu execution provider, in headless Chromium on
// the same adapter (SwiftShader on a machine without a GPU; the GPU with --gpu), ResNet-18 and
// ResNet-50 inference, interleaved round by round. Both are timed per batch including the read
// of the logits; the ONNX file is our exporter's copy of the same random weights.
//
//   node --import tsx bench/webgpu-browser.ts [--runs 5] [--warmup 1] [--size 224] [--batch 1] [--gpu]
//
// --gpu: Chromium flags for a real GPU (Vulkan) instead of its software adapter. stdout: one JSON
// line per case, then a markdown table naming the adapter; on a software adapter it says so.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import { manualSeed } from '../src/base/rng.js';
import { exportOnnx } from '../src/convert/onnx-export.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { createModel } from '../src/models/registry.js';
import { stateDictToArrays } from '../src/nn/state.js';
import { noGrad } from '../src/tensor/tensor.js';
import { launch } from '../test/browser/harness.js';
import { startServer } from '../web/serve.mjs';

const { values: o } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    size: { type: 'string', default: '224' },
    batch: { type: 'string', default: '1' },
    gpu: { type: 'boolean', default: false },
  },
});
const runs = Number(o.runs),
  warmup = Number(o.warmup),
  size = Number(o.size),
  batch = Number(o.batch);
const SOFTWARE = /llvmpipe|swiftshader|softpipe|lavapipe|basic render/i;

const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-bench-webgpu-'));
await esbuild.build({
  entryPoints: [join(import.meta.dirname, 'browser/webgpu-page.ts')],
  outfile: join(dir, 'page.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  logLevel: 'error',
});
writeFileSync(
  join(dir, 'index.html'),
  '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>loading</title><script type="module" src="./page.js"></script>',
);
symlinkSync(join(import.meta.dirname, '../node_modules/onnxruntime-web/dist'), join(dir, 'ort'), 'dir');
const models = ['resnet18', 'resnet50'];
for (const m of models) {
  manualSeed(1);
  const net = noGrad(() => createModel(m)).eval();
  writeFileSync(join(dir, `${m}.safetensors`), writeSafetensors(stateDictToArrays(net)));
  writeFileSync(join(dir, `${m}.onnx`), exportOnnx(net, { inputShape: [3, size, size], dynamicBatch: true }));
  net.dispose();
}
const server = await startServer({ dir, isolation: true });
const browser = await launch(
  o.gpu ? ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=vulkan', '--ignore-gpu-blocklist'] : ['--enable-unsafe-webgpu'],
);
const { page, errors } = await browser.page();
await page.goto(server.url);
await page.waitForFunction(() => document.title === 'ready');
type W = { adapter(): Promise<string>; oursMs(m: string, b: number, s: number): Promise<number>; ortMs(m: string, b: number, s: number): Promise<number> };
const adapter = await page.evaluate(() => (window as unknown as W).adapter());
const software = SOFTWARE.test(adapter);
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
};
const rows: string[] = [];
for (const m of models) {
  const t: Record<'ours' | 'ort', number[]> = { ours: [], ort: [] };
  const err: Record<string, string> = {};
  for (let r = 0; r < warmup + runs; r++) {
    for (const peer of r % 2 ? (['ort', 'ours'] as const) : (['ours', 'ort'] as const)) {
      if (err[peer]) continue;
      try {
        const ms = await page.evaluate(([p, mm, b, s]) => (window as unknown as W)[p === 'ours' ? 'oursMs' : 'ortMs'](mm as string, b as number, s as number), [
          peer,
          m,
          batch,
          size,
        ] as const);
        if (r >= warmup) t[peer].push(ms);
      } catch (e) {
        err[peer] = (e as Error).message.split('\n')[0].slice(0, 300);
      }
    }
  }
  const ours = t.ours.length ? median(t.ours) : null,
    ort = t.ort.length ? median(t.ort) : null;
  const res = {
    case: `${m}-b${batch}`,
    size,
    adapter,
    software_adapter: software,
    ours_webgpu_ms: ours === null ? null : +ours.toFixed(1),
    ort_web_webgpu_ms: ort === null ? null : +ort.toFixed(1),
    ratio_ours_over_ort: ours !== null && ort !== null ? +(ours / ort).toFixed(2) : null,
    ours_runs: t.ours.map((v) => +v.toFixed(1)),
    ort_runs: t.ort.map((v) => +v.toFixed(1)),
    errors: err,
  };
  console.log(JSON.stringify(res));
  rows.push(
    `| ${m}, batch ${batch}, 3x${size}x${size} | ${ours?.toFixed(1) ?? err.ours} | ${ort?.toFixed(1) ?? err.ort} | ${res.ratio_ours_over_ort ?? ''}${software ? ' (software adapter)' : ''} |`,
  );
}
console.log(`\nChromium WebGPU adapter: ${adapter}${software ? ' — a software adapter: these ratios measure a CPU emulation, not a GPU' : ''}\n`);
console.log(`| case | ours (webgpu) ms | onnxruntime-web (webgpu EP) ms | ours/ort |\n|---|---|---|---|\n${rows.join('\n')}`);
if (errors.length) console.error(`page errors: ${errors.slice(0, 5).join('; ')}`);
await browser.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
