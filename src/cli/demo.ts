// `resnet demo` (npm run demo): train a small ResNet on Fashion-MNIST for a short budget, print
// the test accuracy, save a checkpoint and training curves, then predict a few test images written
// out as PNG files. Works offline: the full data where found, else the embedded slice.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../base/errors.js';
import { parseNumber } from '../base/numbers.js';
import { parseOption } from '../train/options.js';
import { runTrainCommand, type Printer } from './train.js';

export function addDemoOptions(c: Command): Command {
  return c
    .option('--out <dir>', 'output directory', 'runs/demo')
    .option('--epochs <n>', 'epochs (default 2; 15 on the embedded slice)', (s: string) => parseOption('epochs', s))
    .option('--limit-train <n>', 'training images (default 15000)', (s: string) => parseOption('limitTrain', s))
    .option('--limit-test <n>', 'test images (default all)', (s: string) => parseOption('limitTest', s))
    .option('--data-dir <dir>', 'where Fashion-MNIST is')
    .option('--samples <n>', 'test images to predict at the end', (s: string) => parseNumber(s, { int: true, min: 0 }, '--samples'), 8);
}

/** Demo epochs on the embedded 2,000-image slice: 2 × 15,000 / 2,000 (the preset's steps). */
const SLICE_EPOCHS = 15;

export interface DemoFlags {
  out: string;
  epochs?: number;
  limitTrain?: number;
  limitTest?: number;
  dataDir?: string;
  samples: number;
}

export async function runDemo(f: DemoFlags, print: Printer, err: Printer): Promise<number> {
  const t0 = performance.now();
  err('resnet-ts demo: training a ResNet on Fashion-MNIST (a couple of minutes), then predicting a few test images');
  // Look for the full data (downloading it if possible) before training: on the embedded slice
  // (2,000 training images) the preset's 2 epochs would be only 64 steps, so train as many steps
  // as 2 epochs of 15,000 images take instead, and don't try the download a second time.
  const { findFashionMNIST } = await import('../data/fashion-mnist.js');
  const full = await findFashionMNIST({ dataDir: f.dataDir, allowSlice: false, onWarning: (w) => err(`warning: ${w}`) }).then(
    () => true,
    () => false,
  );
  const epochs = f.epochs ?? (full ? undefined : SLICE_EPOCHS);
  if (!full && f.epochs === undefined) err(`embedded slice: ${SLICE_EPOCHS} epochs of 2,000 images, as many steps as 2 epochs of 15,000 on the full data`);
  const code = await runTrainCommand(
    {
      preset: 'demo',
      out: f.out,
      overwrite: true,
      epochs,
      limitTrain: f.limitTrain,
      limitTest: f.limitTest,
      dataDir: f.dataDir,
      download: full ? undefined : false,
    },
    print,
    err,
    { task: 'train', defaultPreset: 'demo' },
  );
  if (code !== 0) return code;
  if (f.samples > 0) {
    // write a few test images as PNG files and run them through the same path as `resnet predict`
    const sharp = (
      await import('sharp').catch(() => {
        throw new ConfigError("the demo's sample images need the npm package 'sharp': npm install sharp (or --samples 0)");
      })
    ).default;
    const { loadFashionMNIST } = await import('../data/fashion-mnist.js');
    const { loadInferenceModel, predictFiles, filesFor } = await import('../train/inference.js');
    const fm = await loadFashionMNIST({ dataDir: f.dataDir, download: false });
    const dir = join(f.out, 'samples');
    mkdirSync(dir, { recursive: true });
    const classes = fm.test.classes!;
    const truth = new Map<string, string>();
    for (let i = 0; i < Math.min(f.samples, fm.test.length); i++) {
      const s = fm.test.get(i);
      const name = `test${String(i).padStart(4, '0')}.png`;
      await sharp(Buffer.from(s.image.data as Uint8Array), { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toFile(join(dir, name));
      truth.set(name, classes[s.label]);
    }
    const m = await loadInferenceModel(join(f.out, 'best'));
    const { files, root } = filesFor(dir);
    const preds = await predictFiles(m, files, { topk: 3, root });
    let right = 0;
    print(`predictions for ${files.length} test images written to ${dir}:`);
    for (const p of preds) {
      const t = truth.get(p.file) ?? '?';
      if (p.error) {
        print(`  ${p.file}: ${p.error}`);
        continue;
      }
      const ok = p.top[0].label === t;
      if (ok) right++;
      print(`  ${p.file} (true: ${t}): ${p.top.map((x) => `${x.label} ${(100 * x.prob).toFixed(1)}%`).join(', ')} ${ok ? '✓' : '✗'}`);
    }
    print(`${right}/${preds.length} correct; predict more with: resnet predict ${dir} --checkpoint ${join(f.out, 'best.safetensors')}`);
  }
  err(`demo finished in ${((performance.now() - t0) / 1000).toFixed(0)} s; curves: ${join(f.out, 'curves.svg')}`);
  return 0;
}
