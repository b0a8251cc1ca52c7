// The training configuration (a plain JSON object, saved in every checkpoint so a run can be
// resumed or reproduced) and the builders that turn it into data, model, optimizer and schedule.
import { ConfigError } from '../base/errors.js';
import { RNG } from '../base/rng.js';
import { Subset, trainValSplit, type Dataset } from '../data/dataset.js';
import { FASHION_MNIST_MEAN, FASHION_MNIST_STD, loadFashionMNIST } from '../data/fashion-mnist.js';
import { ImageFolder } from '../data/image-folder.js';
import {
  CenterCrop, Normalize, RandomCrop, RandomErasing, RandomHorizontalFlip, RandomResizedCrop, Resize, ToFloat, ToRGB, Grayscale, compose,
  IMAGENET_MEAN, IMAGENET_STD, type Transform,
} from '../data/transforms.js';
import { createModel } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import { Adam, AdamW } from '../optim/adam.js';
import type { AnyOptimizer } from '../optim/optimizer.js';
import {
  constantLR, cosineLR, multiStepLR, oneCycleLR, stepLR, withWarmup, type Schedule,
} from '../optim/schedule.js';
import { SGD } from '../optim/sgd.js';
import type { CheckpointInput } from './checkpoint.js';
import { parameterGroups } from './transfer.js';

export interface DataConfig {
  kind: 'fashion-mnist' | 'image-folder';
  /** Fashion-MNIST: where to look first (then $FASHION_MNIST_DIR, Debian's package, the cache, download, embedded slice). */
  dataDir?: string;
  /** Image folder: root with one sub-folder per class. */
  root?: string;
  /** Image folder used for validation instead of a split of `root`. */
  valRoot?: string;
  /** Fraction of the training data held out for validation (0: Fashion-MNIST evaluates on its test set). */
  valSplit: number;
  /** Model input size (square). Fashion-MNIST is resized when this is not 28. */
  size: number;
  /** 'light': random crop with padding + horizontal flip; 'imagenet': RandomResizedCrop + flip. */
  augment: 'none' | 'light' | 'imagenet';
  /** Padding of the 'light' random crop (default size/14, 2 px at 28). */
  cropPadding?: number;
  /** Probability of torchvision's RandomErasing after normalization (0 or absent: off). */
  erase?: number;
  normalize: 'none' | 'dataset' | 'imagenet';
  limitTrain?: number;
  limitTest?: number;
  /** Allow the download of Fashion-MNIST when not found locally (default true). */
  download?: boolean;
}

export interface TrainConfig {
  task: 'train' | 'finetune';
  preset?: string;
  data: DataConfig;
  model: string;
  /** Model constructor options (numClasses and inChannels are set from the data). */
  arch: Record<string, unknown>;
  /** Finetune: pretrained weights (.safetensors/.pth/.npz, or one of our checkpoints). */
  weights?: string;
  /** Finetune: keep the pretrained head when it fits (default: a fresh head). */
  keepHead?: boolean;
  freeze: string;
  epochs: number;
  batchSize: number;
  optimizer: 'sgd' | 'adam' | 'adamw';
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  noWdBnBias: boolean;
  headLrMult: number;
  schedule: 'none' | 'step' | 'multistep' | 'cosine' | 'onecycle';
  /** StepLR: epochs per decay. */
  stepSize?: number;
  gamma?: number;
  /** MultiStepLR milestones, in epochs. */
  milestones?: number[];
  warmupEpochs: number;
  pctStart?: number;
  labelSmoothing: number;
  /** Decay of a moving average of the weights that is evaluated and saved (0: off). */
  ema: number;
  /** Test-time augmentation when evaluating: 'flip' averages the logits of each image and its mirror image. */
  tta?: 'none' | 'flip';
  clipGradNorm: number | null;
  seed: number;
  workers: number | 'auto';
  out: string;
}

export const DEFAULT_CONFIG: Omit<TrainConfig, 'model' | 'out'> = {
  task: 'train',
  data: { kind: 'fashion-mnist', valSplit: 0, size: 28, augment: 'none', normalize: 'none' },
  arch: {},
  freeze: 'none',
  epochs: 10,
  batchSize: 128,
  optimizer: 'sgd',
  lr: 0.05,
  momentum: 0,
  nesterov: false,
  weightDecay: 0,
  noWdBnBias: true,
  headLrMult: 1,
  schedule: 'none',
  warmupEpochs: 0,
  labelSmoothing: 0,
  ema: 0,
  clipGradNorm: null,
  seed: 0,
  workers: 'auto',
};

/** The --tta value of `train` and `eval`: none or flip (ConfigError otherwise). */
export function checkTta(v: string): 'none' | 'flip' {
  if (v !== 'none' && v !== 'flip') throw new ConfigError(`--tta must be none or flip, got '${v}'`);
  return v;
}

/** Check a merged config; ConfigError names the offending option. */
export function validateConfig(c: TrainConfig): void {
  const posInt = (v: unknown, n: string) => {
    if (!Number.isInteger(v) || (v as number) < 1) throw new ConfigError(`${n} must be a positive integer, got ${v}`);
  };
  posInt(c.epochs, '--epochs');
  posInt(c.batchSize, '--batch-size');
  posInt(c.data.size, '--size');
  if (!(c.lr > 0) || !Number.isFinite(c.lr)) throw new ConfigError(`--lr must be a positive number, got ${c.lr}`);
  if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 1)) throw new ConfigError(`--label-smoothing must be in [0, 1), got ${c.labelSmoothing}`);
  if (!(c.ema >= 0 && c.ema < 1)) throw new ConfigError(`--ema must be in [0, 1) (0: off), got ${c.ema}`);
  if (!(c.data.valSplit >= 0 && c.data.valSplit < 1)) throw new ConfigError(`--val-split must be in [0, 1), got ${c.data.valSplit}`);
  if (!['sgd', 'adam', 'adamw'].includes(c.optimizer)) throw new ConfigError(`--optimizer must be sgd, adam or adamw, got '${c.optimizer}'`);
  if (!['none', 'step', 'multistep', 'cosine', 'onecycle'].includes(c.schedule)) {
    throw new ConfigError(`--schedule must be none, step, multistep, cosine or onecycle, got '${c.schedule}'`);
  }
  if (!['none', 'light', 'imagenet'].includes(c.data.augment)) throw new ConfigError(`--augment must be none, light or imagenet, got '${c.data.augment}'`);
  if (c.data.erase !== undefined && !(c.data.erase >= 0 && c.data.erase <= 1)) throw new ConfigError(`--erase must be a probability in [0, 1], got ${c.data.erase}`);
  if (c.tta !== undefined) checkTta(c.tta);
  if (c.data.limitTrain !== undefined) posInt(c.data.limitTrain, '--limit-train');
  if (c.data.limitTest !== undefined) posInt(c.data.limitTest, '--limit-test');
  if (c.data.kind === 'image-folder' && !c.data.root) throw new ConfigError('an image-folder run needs --images DIR');
  if (c.clipGradNorm !== null && !(c.clipGradNorm > 0)) throw new ConfigError(`--clip-grad-norm must be positive, got ${c.clipGradNorm}`);
  if (!Number.isInteger(c.seed) || c.seed < 0) throw new ConfigError(`--seed must be a non-negative integer, got ${c.seed}`);
  if (!(c.warmupEpochs >= 0)) throw new ConfigError(`--warmup-epochs must be >= 0, got ${c.warmupEpochs}`);
}

// ------------------------------------------------------------------------------------ models

/** createModel: the registry also names CIFAR ResNets of any depth 6n+2 (cifar_resnet8, cifar_resnet14, ...). */
export function buildModel(name: string, opts: Record<string, unknown>): Module {
  return createModel(name, opts);
}

// ------------------------------------------------------------------------------------ data

export interface BuiltData {
  train: Dataset;
  /** Evaluated after each epoch (Fashion-MNIST without --val-split: the test set). */
  val: Dataset | null;
  valName: 'val' | 'test';
  /** A separate test set evaluated at the end (Fashion-MNIST with --val-split). */
  test: Dataset | null;
  classes: string[];
  input: CheckpointInput;
  trainTransform: Transform;
  evalTransform: Transform;
  /** Where the data came from, for the log. */
  source: string;
  warnings: string[];
}

function firstN(ds: Dataset, n: number | undefined): Dataset {
  if (n === undefined || n >= ds.length) return ds;
  return new Subset(ds, Int32Array.from({ length: n }, (_, i) => i));
}

/**
 * A seeded, class-stratified subset of exactly n samples (so a small --limit-train still sees
 * every class in proportion): per-class quotas by largest remainder, members drawn at random.
 * Falls back to the first n when the dataset cannot list labels without decoding.
 */
export function limitStratified(ds: Dataset, n: number | undefined, seed: number): Dataset {
  if (n === undefined || n >= ds.length) return ds;
  if (!ds.label) return firstN(ds, n);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < ds.length; i++) {
    const y = ds.label(i);
    if (!byClass.has(y)) byClass.set(y, []);
    byClass.get(y)!.push(i);
  }
  const ys = [...byClass.keys()].sort((a, b) => a - b);
  const exact = ys.map((y) => (byClass.get(y)!.length * n) / ds.length);
  const quota = exact.map(Math.floor);
  let left = n - quota.reduce((a, b) => a + b, 0);
  const order = ys.map((_, i) => i).sort((a, b) => (exact[b] - quota[b]) - (exact[a] - quota[a]) || a - b);
  for (const i of order) {
    if (left <= 0) break;
    quota[i]++;
    left--;
  }
  const rng = new RNG(seed ^ 0x51f15e);
  const picked: number[] = [];
  ys.forEach((y, i) => {
    const idx = byClass.get(y)!;
    const perm = rng.permutation(idx.length);
    for (let j = 0; j < quota[i]; j++) picked.push(idx[perm[j]]);
  });
  picked.sort((a, b) => a - b);
  return new Subset(ds, Int32Array.from(picked));
}

function normalizeFor(kind: DataConfig['normalize'], channels: number, datasetMean: readonly number[], datasetStd: readonly number[]): Transform | null {
  if (kind === 'none') return null;
  if (kind === 'dataset') return new Normalize(datasetMean, datasetStd);
  if (channels === 3) return new Normalize(IMAGENET_MEAN, IMAGENET_STD);
  return new Normalize([0.449], [0.226]);
}

export async function buildData(c: TrainConfig, channels?: number, onWarning?: (m: string) => void): Promise<BuiltData> {
  const d = c.data;
  const pad = d.cropPadding ?? Math.max(1, Math.round(d.size / 14));
  const erase = d.erase ? [new RandomErasing(d.erase)] : [];
  if (d.kind === 'fashion-mnist') {
    const fm = await loadFashionMNIST({ dataDir: d.dataDir, download: d.download, onWarning });
    if (channels !== undefined && channels !== 1) throw new ConfigError(`Fashion-MNIST images have 1 channel, but the model expects ${channels}`);
    const resize = d.size !== 28 ? [new Resize(d.size)] : [];
    const norm = normalizeFor(d.normalize, 1, FASHION_MNIST_MEAN, FASHION_MNIST_STD);
    const aug = d.augment === 'light' ? [new RandomCrop(d.size, { padding: pad }), new RandomHorizontalFlip()]
      : d.augment === 'imagenet' ? [new RandomResizedCrop(d.size, { scale: [0.5, 1] }), new RandomHorizontalFlip()] : [];
    const trainTransform = compose(...resize, ...aug, new ToFloat(), ...(norm ? [norm] : []), ...erase);
    const evalTransform = compose(...resize, new ToFloat(), ...(norm ? [norm] : []));
    let train: Dataset = fm.train;
    let val: Dataset | null = null;
    let test: Dataset | null = firstN(fm.test, d.limitTest);
    if (d.valSplit > 0) {
      const s = trainValSplit(fm.train, d.valSplit, { seed: c.seed });
      train = s.train;
      val = s.val;
    }
    train = limitStratified(train, d.limitTrain, c.seed);
    if (!val) {
      val = test;
      test = null;
    }
    const source = `Fashion-MNIST (${fm.source}: ${fm.dir}${fm.full ? '' : ', embedded 2,000/1,000-image slice'})`;
    return {
      train, val, valName: d.valSplit > 0 ? 'val' : 'test', test, classes: [...fm.train.classes!], source, warnings: fm.warnings,
      input: { channels: 1, size: [28, 28], mode: 'gray' }, trainTransform, evalTransform,
    };
  }
  const ch = channels ?? 3;
  const mode = ch === 1 ? 'gray' : 'rgb';
  const folder = ImageFolder.open(d.root!, { mode });
  const norm = normalizeFor(d.normalize, ch, IMAGENET_MEAN, IMAGENET_STD);
  const toCh = ch === 1 ? new Grayscale(1) : new ToRGB();
  const resizeTo = Math.round(d.size / 0.875);
  const aug = d.augment === 'imagenet' ? [new RandomResizedCrop(d.size), new RandomHorizontalFlip()]
    : d.augment === 'light' ? [new Resize(d.size), new CenterCrop(d.size), new RandomCrop(d.size, { padding: pad, paddingMode: 'reflect' }), new RandomHorizontalFlip()]
    : [new Resize(d.size), new CenterCrop(d.size)];
  const trainTransform = compose(toCh, ...aug, new ToFloat(), ...(norm ? [norm] : []), ...erase);
  const evalTransform = compose(toCh, new Resize(resizeTo), new CenterCrop(d.size), new ToFloat(), ...(norm ? [norm] : []));
  let train: Dataset = folder;
  let val: Dataset | null = null;
  if (d.valRoot) {
    const v = ImageFolder.open(d.valRoot, { mode });
    if (v.classes.join('\n') !== folder.classes.join('\n')) {
      throw new ConfigError(`${d.valRoot}: its classes (${v.classes.join(', ')}) differ from ${d.root}'s (${folder.classes.join(', ')})`);
    }
    val = v;
  } else if (d.valSplit > 0) {
    const s = folder.split(d.valSplit, c.seed);
    train = s.train;
    val = s.val;
  }
  train = limitStratified(train, d.limitTrain, c.seed);
  if (val) val = firstN(val, d.limitTest);
  return {
    train, val, valName: 'val', test: null, classes: [...folder.classes], source: folder.describe(), warnings: [],
    input: { channels: ch, size: null, mode }, trainTransform, evalTransform,
  };
}

// ------------------------------------------------------------------------------------ optimizer

export function buildOptimizer(c: TrainConfig, model: Module): AnyOptimizer {
  const groups = parameterGroups(model, { lr: c.lr, weightDecay: c.weightDecay, headLrMult: c.headLrMult, noWeightDecayOnBnAndBias: c.noWdBnBias });
  if (c.optimizer === 'sgd') return new SGD(groups, { lr: c.lr, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay });
  const Cls = c.optimizer === 'adam' ? Adam : AdamW;
  return new Cls(groups as never, { lr: c.lr, weightDecay: c.weightDecay });
}

/** The per-iteration schedule for `stepsPerEpoch` iterations per epoch. */
export function buildSchedule(c: TrainConfig, stepsPerEpoch: number): Schedule {
  const total = c.epochs * stepsPerEpoch;
  const warm = Math.round(c.warmupEpochs * stepsPerEpoch);
  let s: Schedule;
  switch (c.schedule) {
    case 'none': s = constantLR(); break;
    case 'step': s = stepLR(Math.max(1, Math.round((c.stepSize ?? Math.max(1, Math.floor(c.epochs / 3))) * stepsPerEpoch)), c.gamma ?? 0.1); break;
    case 'multistep': s = multiStepLR((c.milestones ?? [Math.floor(c.epochs / 2), Math.floor((3 * c.epochs) / 4)]).map((e) => Math.max(0, e * stepsPerEpoch - warm)), c.gamma ?? 0.1); break;
    case 'cosine': s = cosineLR(Math.max(1, total - warm)); break;
    case 'onecycle':
      if (warm > 0) throw new ConfigError('--schedule onecycle has its own warm-up; leave --warmup-epochs at 0');
      return oneCycleLR({ totalSteps: total, pctStart: c.pctStart ?? 0.25, cycleMomentum: c.optimizer === 'sgd' && c.momentum > 0 });
  }
  return withWarmup(s, warm, 0.1);
}
