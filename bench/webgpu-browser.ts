// resnet-ts on WebGPU beside onnxruntime-web's webgpu execution provider and TensorFlow.js's
// webgpu backend, in headless Chromium on the same adapter (SwiftShader on a machine without a
// GPU; the GPU with --gpu): ResNet-18 and ResNet-50 inference (timed with the logits read back;
// the ONNX file is our exporter's copy of the same random weights) and a d2l ResNet-18 training
// step (ours and tfjs; timed with the loss read back), interleaved round by round.
//
//   node --import tsx bench/webgpu-browser.ts [--runs 5] [--warmup 1] [--size 224] [--batch 1]
//                                            [--train-size 96] [--train-batch 128] [--gpu]
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
    'train-size': { type: 'string', default: '96' },
    'train-batch': { type: 'string', default: '128' },
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
type W = Record<string, (...a: unknown[]) => Promise<unknown>>;
const adapter = (await page.evaluate(() => (window as unknown as W).adapter())) as string;
const software = SOFTWARE.test(adapter);
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
};
type Peer = { name: string; fn: string; args: unknown[] };
const trainSize = Number(o['train-size']),
  trainBatch = Number(o['train-batch']);
const cases: { id: string; title: string; peers: Peer[] }[] = [
  ...models.map((m) => ({
    id: `${m}-b${batch}`,
    title: `${m}, batch ${batch}, 3x${size}x${size}`,
    peers: [
      { name: 'ours', fn: 'oursMs', args: [m, batch, size] },
      { name: 'onnxruntime-web', fn: 'ortMs', args: [m, batch, size] },
      { name: 'tfjs-webgpu', fn: 'tfjsMs', args: [m, batch, size, false] },
    ],
  })),
  {
    id: `d2l-train-b${trainBatch}`,
    title: `d2l ResNet-18 training step, batch ${trainBatch}, 1x${trainSize}x${trainSize}`,
    peers: [
      { name: 'ours', fn: 'oursTrainMs', args: [trainBatch, trainSize] },
      { name: 'tfjs-webgpu', fn: 'tfjsMs', args: ['d2l_resnet18', trainBatch, trainSize, true] },
    ],
  },
];
const rows: string[] = [];
const cell = (v: number | undefined, e: string | undefined) => (v !== undefined ? v.toFixed(1) : e ? `error: ${e.slice(0, 80)}` : 'n/a');
for (const c of cases) {
  const t: Record<string, number[]> = {};
  const err: Record<string, string> = {};
  for (let r = 0; r < warmup + runs; r++) {
    // the order rotates by one each round, so drift hits everyone alike
    for (let k = 0; k < c.peers.length; k++) {
      const p = c.peers[(k + r) % c.peers.length];
      if (err[p.name]) continue;
      try {
        const ms = (await page.evaluate(([fn, args]) => (window as unknown as W)[fn as string](...(args as unknown[])), [p.fn, p.args] as const)) as number;
        if (r >= warmup) (t[p.name] ??= []).push(ms);
      } catch (e) {
        err[p.name] = (e as Error).message.split('\n')[0].slice(0, 300);
      }
    }
  }
  const med: Record<string, number> = {};
  for (const [k, v] of Object.entries(t)) med[k] = median(v);
  const ratios: Record<string, number> = {};
  for (const p of c.peers) if (p.name !== 'ours' && med.ours !== undefined && med[p.name] !== undefined) ratios[p.name] = +(med.ours / med[p.name]).toFixed(2);
  console.log(
    JSON.stringify({ case: c.id, title: c.title, adapter, software_adapter: software, median_ms: med, ratios_ours_over: ratios, runs_ms: t, errors: err }),
  );
  const sw = software ? ' (software adapter)' : '';
  rows.push(
    `| ${c.title} | ${cell(med.ours, err.ours)} | ${c.peers.some((p) => p.name === 'onnxruntime-web') ? cell(med['onnxruntime-web'], err['onnxruntime-web']) : 'n/a (no training)'} | ${cell(med['tfjs-webgpu'], err['tfjs-webgpu'])} | ${ratios['onnxruntime-web'] !== undefined ? ratios['onnxruntime-web'] + sw : ''} | ${ratios['tfjs-webgpu'] !== undefined ? ratios['tfjs-webgpu'] + sw : ''} |`,
  );
}
console.log(`\nChromium WebGPU adapter: ${adapter}${software ? ' — a software adapter: these ratios measure a CPU emulation, not a GPU' : ''}\n`);
console.log(
  `| case | ours (webgpu) ms | onnxruntime-web (webgpu EP) ms | tfjs-webgpu ms | ours/ort | ours/tfjs |\n|---|---|---|---|---|---|\n${rows.join('\n')}`,
);
if (errors.length) console.error(`page errors: ${errors.slice(0, 5).join('; ')}`);
await browser.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
