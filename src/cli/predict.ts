// `resnet predict <image|folder>`: top-k classes with probabilities, class names from the
// checkpoint or weight set (ImageNet's for a pretrained id, with its own preprocessing); a folder
// is predicted in batches (the last one partial).
import type { Command } from 'commander';
import { ConfigError } from '../base/errors.js';
import type { Printer } from './train.js';
import { parsePositiveInt } from './util.js';

export function addPredictOptions(c: Command): Command {
  return c
    .argument('<path>', 'an image file (JPEG, PNG, WebP, GIF) or a folder of images')
    .option(
      '--weights <id|file>',
      'a weight id (resnet50.IMAGENET1K_V2, downloaded once), a checkpoint, or bare weights (.safetensors/.pth/.npz, with --model)',
    )
    .option('--checkpoint <path>', 'same as --weights (default runs/fashion-mnist-28)')
    .option('--model <name>', 'model name, for bare weights without a sidecar')
    .option('--cache-dir <dir>', 'download folder for pretrained weights')
    .option('--classes <file>', 'class names for bare weights (class_indices.json or a JSON list)')
    .option('--topk <k>', 'classes to show per image', parsePositiveInt('--topk'), 5)
    .option('--batch-size <n>', 'images per batch for folders', parsePositiveInt('--batch-size'), 32)
    .option('--json', 'one JSON object per line (JSON Lines)')
    .option('--strict-finite', 'refuse weights holding NaN or Inf (default: a warning)');
}

export interface PredictFlags {
  weights?: string;
  checkpoint?: string;
  model?: string;
  cacheDir?: string;
  classes?: string;
  topk: number;
  batchSize: number;
  json?: boolean;
  strictFinite?: boolean;
}

export async function runPredict(path: string, f: PredictFlags, print: Printer, err: Printer): Promise<number> {
  const { loadInferenceModel, predictFiles, filesFor } = await import('../train/inference.js');
  let classes: string[] | undefined;
  if (f.classes) classes = (await import('../data/image-folder.js')).readClassIndices(f.classes);
  const { progressBar } = await import('./weights.js');
  const m = await loadInferenceModel(weightsFlag(f), {
    model: f.model,
    classes,
    cacheDir: f.cacheDir,
    onProgress: progressBar('downloading'),
    strictFinite: f.strictFinite,
    onWarning: (w) => err(`warning: ${w}`),
  });
  const { files, root } = filesFor(path);
  const preds = await predictFiles(m, files, { topk: f.topk, batchSize: f.batchSize, root });
  // Every file gets its line; unreadable ones are reported (stderr, or an "error" field in JSON)
  // and the exit status says so at the end.
  let failed = 0;
  for (const p of preds) {
    if (p.error) {
      failed++;
      if (f.json) print(JSON.stringify({ file: p.file, error: p.error }));
      else err(`error: ${p.error}`);
    } else if (f.json)
      print(JSON.stringify({ file: p.file, predictions: p.top.map((t) => ({ label: t.label, index: t.index, prob: Number(t.prob.toFixed(6)) })) }));
    else print(`${p.file}: ${p.top.map((t) => `${t.label} ${(100 * t.prob).toFixed(1)}%`).join(', ')}`);
  }
  if (failed) {
    err(`error: ${failed} of ${preds.length} image${preds.length === 1 ? '' : 's'} could not be predicted`);
    return 1;
  }
  return 0;
}

/** --weights or its older name --checkpoint (one of them), else the default run. */
export function weightsFlag(f: { weights?: string; checkpoint?: string }): string {
  if (f.weights && f.checkpoint) throw new ConfigError('give --weights or --checkpoint, not both (they mean the same)');
  return f.weights ?? f.checkpoint ?? 'runs/fashion-mnist-28';
}
