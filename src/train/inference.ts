// Inference from a checkpoint: rebuild the model from its sidecar (or from a model name for bare
// weights), the evaluation transform, and predict images or folders in batches. Node-only.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ConfigError, ResnetError, StateDictError } from '../base/errors.js';
import { RNG } from '../base/rng.js';
import { IMAGE_EXTENSIONS, decodeImage } from '../data/image-folder.js';
import { CenterCrop, Resize, transformFromSpec, weightsTransforms, type Transform, type TransformSpec } from '../data/transforms.js';
import '../data/loader-pool.js'; // Node: loads the modules that {module, factory} transform specs name
import type { Image } from '../data/dataset.js';
import type { Module } from '../nn/module.js';
import { IMAGENET_CLASSES, IMAGENET_WNIDS } from '../models/imagenet-classes.js';
import { type PretrainedWeights, getPretrained, isPretrainedId } from '../models/pretrained.js';
import type { CheckpointInput, CheckpointMeta } from './checkpoint.js';
import { loadWeightsRegistryFromEnv, resolveWeights, type ResolveOptions, type WeightsSource } from './weights-source.js';
import { buildModel } from './config.js';
import { softmaxRow, topKIndices } from './metrics.js';
import { firstNonFinite, predictLogits } from './trainer.js';
import { tryFuseForInference } from '../models/fused.js';

/** `load` below fills every parameter (strict loadStateDict), so the random init would be thrown away. */
const NO_INIT = { init: false };

export interface InferenceModel {
  model: Module;
  meta: CheckpointMeta | null;
  classes: string[];
  input: CheckpointInput;
  evalTransform: Transform | null;
  weightsFile: string;
  /** The weight set, when --weights named one (its preprocessing is evalTransform). */
  pretrained: PretrainedWeights | null;
  /** Where the weights came from, for messages. */
  source: string;
}

export interface InferenceModelOptions extends ResolveOptions {
  /** Model name: needed for bare weights; checked against a checkpoint's or a weight set's. */
  model?: string;
  /** Constructor options for bare weights. */
  arch?: Record<string, unknown>;
  /** Class names for bare weights (else the indices). */
  classes?: string[];
}

/**
 * Load a model for evaluation/prediction by the shared --weights rule (weights-source.ts): a weight
 * id brings its model, the ImageNet class names and its own preprocessing; a resnet-ts checkpoint its
 * model, classes and transform; bare weights need `model` (and `classes`, else indices are names).
 */
export async function loadInferenceModel(spec: string, o: InferenceModelOptions = {}): Promise<InferenceModel> {
  loadWeightsRegistryFromEnv();
  if (o.model && isPretrainedId(spec)) {
    const w = getPretrained(spec); // before any download
    if (w.model !== o.model) throw new ConfigError(`weights ${w.id} are for ${w.model}, not ${o.model}`);
  }
  const src = await resolveWeights(spec, { ...o, stage: true });
  try {
    return await loadFrom(src, o);
  } finally {
    src.release?.(); // the file's bytes: their memory is the backend's again (weights-source.ts)
  }
}

async function loadFrom(src: WeightsSource, o: InferenceModelOptions): Promise<InferenceModel> {
  const load = (model: Module) => {
    try {
      model.loadStateDict(src.weights);
    } catch (e) {
      if (e instanceof StateDictError) throw new StateDictError(`${src.describe}: ${e.message}`);
      throw e;
    }
    model.eval();
    return model;
  };
  if (src.pretrained) {
    const w = src.pretrained;
    if (o.model && o.model !== w.model) throw new ConfigError(`weights ${w.id} are for ${w.model}, not ${o.model}`);
    const model = load(buildModel(w.model, { ...(w.numClasses !== 1000 ? { numClasses: w.numClasses } : {}), ...w.modelOptions }, NO_INIT));
    return {
      model,
      meta: null,
      classes: [...w.categories],
      input: { channels: 3, size: null, mode: 'rgb' },
      evalTransform: weightsTransforms(w),
      weightsFile: src.file,
      pretrained: w,
      source: src.describe,
    };
  }
  if (src.meta) {
    const meta = src.meta;
    if (o.model && o.model !== meta.model.name) throw new ConfigError(`${src.file} is a ${meta.model.name} checkpoint, not ${o.model}`);
    const model = load(buildModel(meta.model.name, meta.model.options, NO_INIT));
    const evalTransform = meta.evalTransform ? await transformFromSpec(meta.evalTransform as TransformSpec) : null;
    return { model, meta, classes: meta.classes, input: meta.input, evalTransform, weightsFile: src.file, pretrained: null, source: src.describe };
  }
  if (!o.model) throw new ConfigError(`${src.file} has no sidecar (.json) naming its model: pass --model`);
  const w = src.weights;
  let inChannels = 3;
  for (const a of w.values())
    if (a.shape.length === 4) {
      inChannels = a.shape[1];
      break;
    }
  const head = [...w.entries()].filter(([, a]) => a.shape.length === 2).pop();
  const numClasses = head ? head[1].shape[0] : 1000;
  const opts: Record<string, unknown> = { numClasses, ...o.arch };
  if (inChannels !== 3 || /^(cifar|d2l)/.test(o.model)) opts.inChannels = inChannels;
  const model = load(buildModel(o.model, opts, NO_INIT));
  const classes = o.classes ?? (numClasses === 1000 ? [...IMAGENET_CLASSES] : Array.from({ length: numClasses }, (_, i) => String(i)));
  if (classes.length !== numClasses) throw new ConfigError(`${classes.length} class names for a model with ${numClasses} outputs`);
  return {
    model,
    meta: null,
    classes,
    input: { channels: inChannels, size: null, mode: inChannels === 1 ? 'gray' : 'rgb' },
    evalTransform: null,
    weightsFile: src.file,
    pretrained: null,
    source: src.describe,
  };
}

/**
 * The class index a folder of an image-folder tree stands for: the class name itself; for
 * ImageNet's 1000 classes also the synset id (n01440764, as ImageNet's own folders) or the name
 * with '_' for ' ' in any case (golden_retriever). -1 when it is none of them.
 */
export function classFolderIndex(folder: string, classes: readonly string[]): number {
  const exact = classes.indexOf(folder);
  if (exact >= 0) return exact;
  if (classes.length === IMAGENET_CLASSES.length && classes.every((c, i) => c === IMAGENET_CLASSES[i])) {
    if (/^n\d{8}$/.test(folder)) return IMAGENET_WNIDS.indexOf(folder);
    const key = folder.replace(/_/g, ' ').toLowerCase();
    return classes.findIndex((c) => c.toLowerCase() === key);
  }
  return -1;
}

/** Image files under `dir`, recursively, sorted; hidden entries skipped. */
export function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      throw new ConfigError(`cannot read folder ${d}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (IMAGE_EXTENSIONS.some((x) => e.name.toLowerCase().endsWith(x))) out.push(p);
    }
  };
  walk(dir);
  return out;
}

export interface Prediction {
  file: string;
  /** Empty when the file could not be read or decoded (then `error` says why). */
  top: { index: number; label: string; prob: number }[];
  error?: string;
}

/** Decode and preprocess one file the way predict does (the model's own transform). */
export async function preprocessFile(file: string, m: InferenceModel, defaultSize = 224): Promise<Image> {
  return preprocess(await decodeImage(file, { mode: m.input.mode }), m, defaultSize);
}

/** The pipeline for one decoded file: fit to the training size when it has one, then the eval transform. */
function preprocess(img: Image, m: InferenceModel, defaultSize: number): Image {
  const rng = new RNG(0);
  if (m.input.size && (img.h !== m.input.size[0] || img.w !== m.input.size[1])) {
    const [h, w] = m.input.size;
    img = new CenterCrop([h, w]).apply(new Resize(Math.min(h, w)).apply(img));
  }
  if (m.evalTransform) return m.evalTransform.apply(img, rng);
  // bare weights: ImageNet-style resize + center crop, no normalisation known → [0, 1]
  const t = new CenterCrop(defaultSize).apply(new Resize(Math.round(defaultSize / 0.875)).apply(img));
  const data = new Float32Array(t.data.length);
  for (let i = 0; i < data.length; i++) data[i] = t.data instanceof Uint8Array ? t.data[i] / 255 : t.data[i];
  return { data, c: t.c, h: t.h, w: t.w };
}

/**
 * Predict files in batches of `batchSize` (the last batch may be partial), in order. A file that
 * cannot be read or decoded gets a Prediction with `error` (the one-line message naming it) and
 * the others are still predicted.
 */
export async function predictFiles(
  m: InferenceModel,
  files: string[],
  o: { topk?: number; batchSize?: number; size?: number; root?: string } = {},
): Promise<Prediction[]> {
  const k = Math.max(1, Math.min(o.topk ?? 5, m.classes.length));
  const bs = o.batchSize ?? 32;
  const out: Prediction[] = [];
  using fused = tryFuseForInference(m.model) ?? undefined;
  const name = (f: string) => (o.root ? relative(o.root, f) || f : f);
  for (let i = 0; i < files.length; i += bs) {
    const batch = files.slice(i, i + bs);
    const settled = await Promise.allSettled(batch.map(async (f) => preprocess(await decodeImage(f, { mode: m.input.mode }), m, o.size ?? 224)));
    const res: Prediction[] = batch.map((f) => ({ file: name(f), top: [] }));
    const ok: number[] = [];
    settled.forEach((r, j) => {
      if (r.status === 'fulfilled') ok.push(j);
      else if (r.reason instanceof ResnetError) res[j].error = r.reason.message;
      else throw r.reason;
    });
    if (ok.length > 0) {
      const imgs = ok.map((j) => (settled[j] as PromiseFulfilledResult<Image>).value);
      const { c, h, w } = imgs[0];
      imgs.forEach((im, j) => {
        if (im.c !== c || im.h !== h || im.w !== w) {
          res[ok[j]].error = `${batch[ok[j]]}: preprocessed to ${im.c}x${im.h}x${im.w}, but ${batch[ok[0]]} to ${c}x${h}x${w}`;
        }
      });
      const good = ok.filter((j) => !res[j].error);
      const x = new Float32Array(good.length * c * h * w);
      good.forEach((j, n) => x.set((settled[j] as PromiseFulfilledResult<Image>).value.data as Float32Array, n * c * h * w));
      const logits = await predictLogits(fused ?? m.model, x, [good.length, c, h, w]);
      const C = m.classes.length;
      good.forEach((j, n) => {
        const row = logits.subarray(n * C, (n + 1) * C);
        const bad = firstNonFinite(row);
        if (bad >= 0) {
          res[j].error =
            `${batch[j]}: the model's output is non-finite (${row[bad]}; the weights in ${m.weightsFile} hold non-finite values or overflow); no prediction`;
          return;
        }
        const p = softmaxRow(row);
        res[j].top = topKIndices(row, k).map((idx) => ({ index: idx, label: m.classes[idx], prob: p[idx] }));
      });
    }
    out.push(...res);
  }
  return out;
}

/** An image file, or every image in a folder. */
export function filesFor(path: string): { files: string[]; root?: string } {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new ConfigError(`no such file or folder: ${path}`);
  }
  if (st.isDirectory()) {
    const files = listImages(path);
    if (files.length === 0) throw new ConfigError(`${path}: no images (${IMAGE_EXTENSIONS.join(', ')})`);
    return { files, root: path };
  }
  return { files: [path] };
}
