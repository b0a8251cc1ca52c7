// `resnet weights`: the pretrained registry (torchvision's ImageNet weight sets) with accuracy,
// size and preprocessing, whether each file is cached, and `--download ID` to fetch one.
// (The shared --weights rule is train/weights-source.ts.)
import { ConfigError } from '../base/errors.js';
import { getPretrained, listPretrained } from '../models/pretrained.js';
import { cachedPath, defaultCacheDir, downloadPretrained } from '../models/pretrained-node.js';
import { loadWeightsRegistryFromEnv } from '../train/weights-source.js';
import { getModelEntry, modelInChannels } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/tensor.js';
import type { InferenceModel } from '../train/inference.js';
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
      const width = 30,
        fill = Math.round((received / total) * width);
      const line = `${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}% ${mb(received)}/${mb(total)} MB`;
      process.stderr.write(tty ? `\r${line}` : `${line}\n`);
      if (tty && received === total) process.stderr.write('\n');
    } else if (tty) process.stderr.write(`\r${label} ${mb(received)} MB`);
  };
}

export async function runWeights(o: WeightsOptions, print: (s: string) => void): Promise<void> {
  loadWeightsRegistryFromEnv();
  if (o.download) {
    const w = getPretrained(o.download);
    const path = await downloadPretrained(w, { cacheDir: o.cacheDir, onProgress: progressBar(w.fileName) });
    print(`${w.id}: ${path} (SHA-256 prefix ${w.sha256Prefix} verified)`);
    return;
  }
  const list = listPretrained(o.model);
  if (o.model && !list.length)
    throw new ConfigError(`no pretrained weights for '${o.model}' (models with weights: ${[...new Set(listPretrained().map((w) => w.model))].join(', ')})`);
  const cached = list.map((w) => cachedPath(w, { cacheDir: o.cacheDir }));
  if (o.json) {
    print(
      JSON.stringify(
        list.map((w, i) => ({ ...w, categories: undefined, numCategories: w.categories.length, cached: cached[i].exists ? cached[i].path : null })),
        null,
        2,
      ),
    );
    return;
  }
  const rows = list.map((w, i) => [
    w.id + (w.isDefault ? ' *' : ''),
    ...[w.acc1.toFixed(3), w.acc5.toFixed(3), formatCount(w.numParams), w.gflops.toFixed(2), w.fileSizeMB.toFixed(1)].map((v) => (v === 'NaN' ? '' : v)),
    `${w.preprocessing.resizeSize}/${w.preprocessing.cropSize}`,
    cached[i].exists ? 'yes' : '',
  ]);
  const head = ['weights (* = default)', 'acc@1', 'acc@5', 'params', 'GFLOPS', 'MiB', 'resize/crop', 'cached'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const fmt = (r: string[]) =>
    r
      .map((s, c) => (c === 0 ? s.padEnd(widths[c]) : s.padStart(widths[c])))
      .join('  ')
      .trimEnd();
  print(fmt(head));
  for (const r of rows) print(fmt(r));
  print('');
  print(`ImageNet-1k val, single crop; bilinear resize, center crop, mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225].`);
  print(`cache: ${o.cacheDir ?? defaultCacheDir()} (also reads torch.hub's checkpoints folder); fetch one with: resnet weights --download ID`);
}

export interface ModelFlags {
  model?: string;
  weights?: string;
  arch?: string;
  cacheDir?: string;
  /** Refuse weights holding NaN or Inf (else a warning on stderr). */
  strictFinite?: boolean;
}

/**
 * The model that --model/--weights/--arch name, for forward, export and embed: --weights by the
 * shared rule (a weight id or a checkpoint brings its model; bare weights need --model), or
 * --model alone for random initialisation. `input` is the model's natural [C, H, W].
 */
export async function modelFromFlags(
  o: ModelFlags,
): Promise<{ model: Module; name: string; source: string; input: [number, number, number]; inference: InferenceModel | null }> {
  const { parseArch } = await import('./util.js');
  const arch = parseArch(o.arch);
  if (o.weights) {
    const { loadInferenceModel } = await import('../train/inference.js');
    const m = await loadInferenceModel(o.weights, {
      model: o.model,
      arch,
      cacheDir: o.cacheDir,
      onProgress: progressBar('downloading'),
      strictFinite: o.strictFinite,
      onWarning: (w) => process.stderr.write(`warning: ${w}\n`),
    });
    if (o.arch && (m.pretrained || m.meta)) throw new ConfigError(`--arch is for bare weights; ${m.source} brings its own model`);
    const name = m.pretrained?.model ?? m.meta?.model.name ?? o.model!;
    const c = modelInChannels(m.model);
    const input: [number, number, number] = m.pretrained
      ? [3, m.pretrained.preprocessing.cropSize, m.pretrained.preprocessing.cropSize]
      : m.meta?.input.size
        ? [c, ...m.meta.input.size]
        : defaultInputOf(name, c);
    return { model: m.model, name, source: m.source, input, inference: m };
  }
  if (!o.model) throw new ConfigError('name a model: --model NAME (random weights) or --weights ID|FILE');
  const { buildModel } = await import('../train/config.js');
  const model = noGrad(() => buildModel(o.model!, arch));
  model.eval();
  return { model, name: o.model, source: 'random initialisation (no --weights)', input: defaultInputOf(o.model, modelInChannels(model)), inference: null };
}

function defaultInputOf(name: string, channels: number): [number, number, number] {
  let hw: [number, number] = /^cifar/.test(name) ? [32, 32] : [224, 224];
  try {
    const e = getModelEntry(name).defaultInput;
    hw = [e[1], e[2]];
  } catch {
    // a model built from a checkpoint's options (e.g. any-depth CIFAR) that the registry does not list
  }
  return [channels, ...hw];
}
