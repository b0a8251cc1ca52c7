// `resnet weights`: the pretrained registry (torchvision's ImageNet weight sets) with accuracy,
// size and preprocessing, whether each file is cached, and `--download ID` to fetch one.
// Also the shared `--weights` resolver: a file (.safetensors, .pth, .npz) or a weight id.
import { ConfigError, ResnetError } from '../base/errors.js';
import { readArraysFile } from '../io/files.js';
import type { Module } from '../nn/module.js';
import {
  type PretrainedWeights, cachedPath, defaultCacheDir, downloadPretrained, getPretrained, isPretrainedId, listPretrained,
} from '../models/pretrained.js';
import { readPth } from '../io/pth.js';
import { readBytes } from '../io/files.js';
import { formatCount } from './util.js';

export interface WeightsOptions {
  model?: string;
  json?: boolean;
  download?: string;
  cacheDir?: string;
}

/** A one-line progress bar on stderr (redrawn in place on a terminal, every 10% otherwise). */
export function progressBar(label: string): (received: number, total: number | null) => void {
  const tty = Boolean(process.stderr.isTTY);
  let lastPct = -1;
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return (received, total) => {
    if (total) {
      const pct = Math.floor((received / total) * 100);
      if (!tty && pct < lastPct + 10 && received !== total) return;
      if (tty && pct === lastPct && received !== total) return;
      lastPct = pct;
      const width = 30, fill = Math.round((received / total) * width);
      const line = `${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}% ${mb(received)}/${mb(total)} MB`;
      process.stderr.write(tty ? `\r${line}` : `${line}\n`);
      if (tty && received === total) process.stderr.write('\n');
    } else if (tty) process.stderr.write(`\r${label} ${mb(received)} MB`);
  };
}

export async function runWeights(o: WeightsOptions, print: (s: string) => void): Promise<void> {
  if (o.download) {
    const w = getPretrained(o.download);
    const path = await downloadPretrained(w, { cacheDir: o.cacheDir, onProgress: progressBar(w.fileName) });
    print(`${w.id}: ${path} (SHA-256 prefix ${w.sha256Prefix} verified)`);
    return;
  }
  const list = listPretrained(o.model);
  if (o.model && !list.length) throw new ConfigError(`no pretrained weights for '${o.model}' (models with weights: ${[...new Set(listPretrained().map((w) => w.model))].join(', ')})`);
  const cached = await Promise.all(list.map((w) => cachedPath(w, { cacheDir: o.cacheDir })));
  if (o.json) {
    print(JSON.stringify(list.map((w, i) => ({ ...w, categories: undefined, numCategories: w.categories.length, cached: cached[i].exists ? cached[i].path : null })), null, 2));
    return;
  }
  const rows = list.map((w, i) => [
    w.id + (w.isDefault ? ' *' : ''), w.acc1.toFixed(3), w.acc5.toFixed(3), formatCount(w.numParams), w.gflops.toFixed(2), w.fileSizeMB.toFixed(1),
    `${w.preprocessing.resizeSize}/${w.preprocessing.cropSize}`, cached[i].exists ? 'yes' : '',
  ]);
  const head = ['weights (* = default)', 'acc@1', 'acc@5', 'params', 'GFLOPS', 'MiB', 'resize/crop', 'cached'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const fmt = (r: string[]) => r.map((s, c) => (c === 0 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join('  ').trimEnd();
  print(fmt(head));
  for (const r of rows) print(fmt(r));
  print('');
  print(`ImageNet-1k val, single crop; bilinear resize, center crop, mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225].`);
  print(`cache: ${o.cacheDir ?? (await defaultCacheDir())} (also reads torch.hub's checkpoints folder); fetch one with: resnet weights --download ID`);
}

/**
 * Load `--weights` into `model`: a weight id ('resnet50.IMAGENET1K_V2', downloaded once into the
 * cache) or a file (.safetensors, .pth/.pt, .npz). Returns a short description of the source.
 */
export async function loadWeightsInto(model: Module, spec: string, modelName: string, opts: { cacheDir?: string; strictFinite?: boolean } = {}): Promise<string> {
  let sd;
  let what: string;
  if (isPretrainedId(spec)) {
    const w: PretrainedWeights = getPretrained(spec);
    if (w.model !== modelName) throw new ConfigError(`weights ${w.id} are for ${w.model}, not ${modelName}`);
    const path = await downloadPretrained(w, { cacheDir: opts.cacheDir, onProgress: progressBar(w.fileName) });
    sd = readPth(readBytes(path));
    what = `${w.id} (${path})`;
  } else {
    sd = readArraysFile(spec);
    what = spec;
  }
  // NaN/Inf weights: a warning (the outputs will not be numbers), refused with --strict-finite
  const { checkFiniteWeights } = await import('../train/checkpoint.js');
  checkFiniteWeights(sd, spec, { strictFinite: opts.strictFinite, onWarning: (m) => process.stderr.write(`warning: ${m}\n`) });
  try {
    model.loadStateDict(sd);
  } catch (e) {
    if (e instanceof ResnetError && !e.message.includes(spec)) e.message = `${spec}: ${e.message}`;
    throw e;
  }
  return what;
}
