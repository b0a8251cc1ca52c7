// The training configuration (a plain JSON object, saved in every checkpoint so a run can be
// resumed or reproduced) and the builders that turn it into data, model, optimizer and schedule.
import { ConfigError } from '../base/errors.js';
import { RNG } from '../base/rng.js';
import { Subset, trainValSplit, type Dataset } from '../data/dataset.js';
import { FASHION_MNIST_MEAN, FASHION_MNIST_STD, loadFashionMNIST } from '../data/fashion-mnist.js';
import { ImageFolder } from '../data/image-folder.js';
import {
  CenterCrop,
  Normalize,
  RandomCrop,
  RandomErasing,
  RandomHorizontalFlip,
  RandomResizedCrop,
  Resize,
  ToFloat,
  ToRGB,
  Grayscale,
  compose,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type Transform,
} from '../data/transforms.js';
import { createModel, type CreateOptions } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import { Adam, AdamW } from '../optim/adam.js';
import type { AnyOptimizer } from '../optim/optimizer.js';
import { constantLR, cosineLR, multiStepLR, oneCycleLR, stepLR, withWarmup, type Schedule } from '../optim/schedule.js';
import { SGD } from '../optim/sgd.js';
import type { CheckpointInput } from './checkpoint.js';
import { checkOption, OptionError, type DataConfig, type TrainConfig } from './options.js';
import { parameterGroups } from './transfer.js';

export { DEFAULT_CONFIG, validateConfig, type ConfigOverrides, type DataConfig, type TrainConfig } from './options.js';

/** The --tta value of `train` and `eval`: none or flip (OptionError otherwise). */
export function checkTta(v: string): 'none' | 'flip' {
  checkOption('tta', v);
  return v as 'none' | 'flip';
}

// ------------------------------------------------------------------------------------ models

/** createModel: the registry also names CIFAR ResNets of any depth 6n+2 (cifar_resnet8, cifar_resnet14, ...). */
export function buildModel(name: string, opts: Record<string, unknown>, how?: CreateOptions): Module {
  return createModel(name, opts, how);
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
  return new Subset(
    ds,
    Int32Array.from({ length: n }, (_, i) => i),
  );
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
  const order = ys.map((_, i) => i).sort((a, b) => exact[b] - quota[b] - (exact[a] - quota[a]) || a - b);
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
    const aug =
      d.augment === 'light'
        ? [new RandomCrop(d.size, { padding: pad }), new RandomHorizontalFlip()]
        : d.augment === 'imagenet'
          ? [new RandomResizedCrop(d.size, { scale: [0.5, 1] }), new RandomHorizontalFlip()]
          : [];
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
      train,
      val,
      valName: d.valSplit > 0 ? 'val' : 'test',
      test,
      classes: [...fm.train.classes!],
      source,
      warnings: fm.warnings,
      input: { channels: 1, size: [28, 28], mode: 'gray' },
      trainTransform,
      evalTransform,
    };
  }
  const ch = channels ?? 3;
  const mode = ch === 1 ? 'gray' : 'rgb';
  const folder = ImageFolder.open(d.root!, { mode });
  const norm = normalizeFor(d.normalize, ch, IMAGENET_MEAN, IMAGENET_STD);
  const toCh = ch === 1 ? new Grayscale(1) : new ToRGB();
  const resizeTo = Math.round(d.size / 0.875);
  const aug =
    d.augment === 'imagenet'
      ? [new RandomResizedCrop(d.size), new RandomHorizontalFlip()]
      : d.augment === 'light'
        ? [new Resize(d.size), new CenterCrop(d.size), new RandomCrop(d.size, { padding: pad, paddingMode: 'reflect' }), new RandomHorizontalFlip()]
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
    train,
    val,
    valName: 'val',
    test: null,
    classes: [...folder.classes],
    source: folder.describe(),
    warnings: [],
    input: { channels: ch, size: null, mode },
    trainTransform,
    evalTransform,
  };
}

// ------------------------------------------------------------------------------------ optimizer

export function buildOptimizer(c: TrainConfig, model: Module): AnyOptimizer {
  const groups = parameterGroups(model, { lr: c.lr, weightDecay: c.weightDecay, headLrMult: c.headLrMult, noWeightDecayOnBnAndBias: c.noWdBnBias });
  if (c.optimizer === 'sgd') return new SGD(groups, { lr: c.lr, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay });
  const Cls = c.optimizer === 'adam' ? Adam : AdamW;
  return new Cls(groups, { lr: c.lr, weightDecay: c.weightDecay });
}

/** The per-iteration schedule for `stepsPerEpoch` iterations per epoch. */
export function buildSchedule(c: TrainConfig, stepsPerEpoch: number): Schedule {
  const total = c.epochs * stepsPerEpoch;
  const warm = Math.round(c.warmupEpochs * stepsPerEpoch);
  let s: Schedule;
  switch (c.schedule) {
    case 'none':
      s = constantLR();
      break;
    case 'step':
      s = stepLR(Math.max(1, Math.round((c.stepSize ?? Math.max(1, Math.floor(c.epochs / 3))) * stepsPerEpoch)), c.gamma ?? 0.1);
      break;
    case 'multistep':
      s = multiStepLR(
        (c.milestones ?? [Math.floor(c.epochs / 2), Math.floor((3 * c.epochs) / 4)]).map((e) => Math.max(0, e * stepsPerEpoch - warm)),
        c.gamma ?? 0.1,
      );
      break;
    case 'cosine':
      s = cosineLR(Math.max(1, total - warm));
      break;
    case 'onecycle':
      if (warm > 0) throw new OptionError('warmupEpochs', 'must be 0 with the onecycle schedule (it has its own warm-up)');
      return oneCycleLR({ totalSteps: total, pctStart: c.pctStart ?? 0.25, cycleMomentum: c.optimizer === 'sgd' && c.momentum > 0 });
  }
  return withWarmup(s, warm, 0.1);
}
