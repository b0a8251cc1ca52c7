// `resnet embed IMAGES… --weights ID|FILE --out emb.npy`: one row of features per image (by
// default the pooled penultimate features, what fc sees: 512 for resnet18/34, 2048 for the
// bottleneck models), preprocessed as predict does; the file names go beside the .npy, one per
// line in row order (emb.files.txt). Folders are walked recursively and embedded in batches with progress.
import { ConfigError } from '../base/errors.js';
import { writeBytesAtomic, writeNpyFile } from '../io/files.js';
import { CifarResNet } from '../models/cifar.js';
import { ResNet } from '../models/resnet.js';
import { tensor } from '../tensor/ops.js';
import { noGrad, scope, type Tensor } from '../tensor/tensor.js';
import type { Printer } from './train.js';

export interface EmbedFlags {
  weights?: string;
  model?: string;
  out: string;
  layer: string;
  batchSize: number;
  cacheDir?: string;
  progress?: boolean;
}

export async function runEmbed(paths: string[], f: EmbedFlags, print: Printer, err: Printer): Promise<number> {
  const { loadInferenceModel, preprocessFile, filesFor } = await import('../train/inference.js');
  const { progressBar } = await import('./weights.js');
  if (!f.weights)
    throw new ConfigError('embed needs --weights ID|FILE (a weight id such as resnet50.IMAGENET1K_V2, a checkpoint, or bare weights with --model)');
  if (!f.out.endsWith('.npy')) throw new ConfigError(`--out must name a .npy file, got '${f.out}'`);
  const m = await loadInferenceModel(f.weights, { model: f.model, cacheDir: f.cacheDir, onProgress: progressBar('downloading') });
  const model = m.model;
  if (!(model instanceof ResNet) && !(model instanceof CifarResNet))
    throw new ConfigError(`embed needs a ResNet or CIFAR ResNet; ${m.source} is a ${model.constructor.name}`);
  const files = paths.flatMap((p) => filesFor(p).files.map((file) => ({ path: file, name: file })));
  const layer = f.layer;
  const rows: Float32Array[] = [];
  let rowShape: number[] = [];
  const tty = Boolean(process.stderr.isTTY);
  const show = f.progress !== false && files.length > f.batchSize;
  const t0 = performance.now();
  for (let i = 0; i < files.length; i += f.batchSize) {
    const chunk = files.slice(i, i + f.batchSize);
    const imgs = await Promise.all(chunk.map((x) => preprocessFile(x.path, m)));
    const { c, h, w } = imgs[0];
    imgs.forEach((im, j) => {
      if (im.c !== c || im.h !== h || im.w !== w)
        throw new ConfigError(`${chunk[j].path}: preprocessed to ${im.c}x${im.h}x${im.w}, but ${chunk[0].path} to ${c}x${h}x${w}`);
    });
    const x = new Float32Array(chunk.length * c * h * w);
    imgs.forEach((im, j) => x.set(im.data as Float32Array, j * c * h * w));
    const t = scope(() =>
      noGrad(() => {
        const feats = (model as ResNet).forwardFeatures(tensor(x, [chunk.length, c, h, w]), { layers: [layer as 'pool'] }) as Record<string, Tensor>;
        return feats[layer].keep();
      }),
    );
    const shape = [...t.shape];
    const data = await t.data().finally(() => t.dispose());
    rowShape = shape.slice(1);
    rows.push(data);
    if (show) {
      const done = Math.min(i + f.batchSize, files.length);
      const line = `embedded ${done}/${files.length} images (${((done * 1000) / (performance.now() - t0)).toFixed(1)} img/s)`;
      if (tty) process.stderr.write(`\r${line}${done === files.length ? '\n' : ''}`);
      else err(line);
    }
  }
  const all = new Float32Array(rows.reduce((a, r) => a + r.length, 0));
  let off = 0;
  for (const r of rows) {
    all.set(r, off);
    off += r.length;
  }
  writeNpyFile(f.out, { dtype: 'F32', shape: [files.length, ...rowShape], data: all });
  const names = f.out.replace(/\.npy$/, '.files.txt');
  writeBytesAtomic(names, new TextEncoder().encode(files.map((x) => x.name).join('\n') + '\n'));
  print(`wrote ${f.out}: ${layer} features [${[files.length, ...rowShape].join(', ')}] of ${m.source}; file names in ${names}`);
  return 0;
}
