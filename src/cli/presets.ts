// Training presets: complete recipes that every command-line flag can override.
import { ConfigError } from '../base/errors.js';
import { DEFAULT_CONFIG, type ConfigOverrides, type TrainConfig } from '../train/options.js';

export interface Preset {
  description: string;
  config: ConfigOverrides;
}

export const PRESETS: Record<string, Preset> = {
  'fashion-mnist-28': {
    description:
      'fast default: CIFAR ResNet-20 at 2.5 times the width (40-80-160 filters, 1 channel) at 28 px, SGD nesterov + one-cycle, random crop/flip, label smoothing 0.1, EMA of the weights (0.99), 10 epochs',
    config: {
      model: 'cifar_resnet20',
      arch: { width: 40 },
      optimizer: 'sgd',
      lr: 0.2,
      momentum: 0.9,
      nesterov: true,
      weightDecay: 5e-4,
      noWdBnBias: true,
      batchSize: 128,
      epochs: 10,
      schedule: 'onecycle',
      pctStart: 0.15,
      labelSmoothing: 0.1,
      ema: 0.99,
      data: { kind: 'fashion-mnist', size: 28, augment: 'light', cropPadding: 2, normalize: 'dataset', valSplit: 0 },
    },
  },
  'd2l-fashion-mnist': {
    description: "d2l's recipe (§8.6): d2l ResNet-18 with Xavier init, SGD lr 0.05, batch 256, 10 epochs, resize 96, no augmentation",
    config: {
      model: 'd2l_resnet18',
      arch: { xavier: true },
      optimizer: 'sgd',
      lr: 0.05,
      momentum: 0,
      nesterov: false,
      weightDecay: 0,
      batchSize: 256,
      epochs: 10,
      schedule: 'none',
      labelSmoothing: 0,
      data: { kind: 'fashion-mnist', size: 96, augment: 'none', normalize: 'none', valSplit: 0 },
    },
  },
  demo: {
    description: 'the demo: CIFAR ResNet-8 at 28 px on 15,000 training images for 2 epochs, tested on all 10,000 (about two minutes on 2 cores)',
    config: {
      model: 'cifar_resnet8',
      optimizer: 'sgd',
      lr: 0.1,
      momentum: 0.9,
      nesterov: true,
      weightDecay: 5e-4,
      batchSize: 64,
      epochs: 2,
      schedule: 'onecycle',
      pctStart: 0.2,
      labelSmoothing: 0.1,
      data: { kind: 'fashion-mnist', size: 28, augment: 'none', normalize: 'dataset', valSplit: 0, limitTrain: 15000 },
    },
  },
  imagefolder: {
    description: 'fine-tuning on a folder of photos: 224 px, RandomResizedCrop + flip, SGD momentum, cosine, head lr x10, 20% validation split',
    config: {
      task: 'finetune',
      optimizer: 'sgd',
      lr: 0.01,
      momentum: 0.9,
      nesterov: false,
      weightDecay: 1e-4,
      headLrMult: 10,
      batchSize: 32,
      epochs: 5,
      schedule: 'cosine',
      labelSmoothing: 0.1,
      freeze: 'none',
      data: { kind: 'image-folder', size: 224, augment: 'imagenet', normalize: 'imagenet', valSplit: 0.2 },
    },
  },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** DEFAULT_CONFIG ← preset ← overrides (flags), deep-merging `data`. */
export function resolveConfig(preset: string, overrides: ConfigOverrides): TrainConfig {
  const p = PRESETS[preset];
  if (!p) throw new ConfigError(`unknown preset '${preset}' (known: ${presetNames().join(', ')})`);
  const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  const { data: pd, ...pc } = p.config;
  const { data: od, ...oc } = overrides;
  // the preset's model options belong to its model: another --model without --arch starts from none
  if (oc.model !== undefined && oc.model !== pc.model && oc.arch === undefined) oc.arch = {};
  return {
    ...DEFAULT_CONFIG,
    ...defined(pc),
    ...defined(oc),
    preset,
    data: { ...DEFAULT_CONFIG.data, ...defined(pd ?? {}), ...defined(od ?? {}) },
  } as TrainConfig;
}
