// Model registry: one entry per model (family, block type, stages, groups, width, default input)
// and one per family (option types, and the CIFAR depth rule). createModel, `resnet info`, the
// trainer's model builder and ONNX import (src/convert/) all read it.
import { ConfigError } from '../base/errors.js';
import { withoutRandomInit } from '../nn/init.js';
import type { Module } from '../nn/module.js';
import * as cifar from './cifar.js';
import { d2l_resnet18 } from './d2l.js';
import * as r from './resnet.js';

export type Family = 'torchvision' | 'd2l' | 'cifar';

/**
 * A registry model: the family it belongs to and the numbers that make it that model (block
 * type, blocks per stage, groups and width), which ONNX import matches a graph against.
 */
export interface ModelEntry {
  name: string;
  family: Family;
  build: (opts?: Record<string, unknown>) => Module;
  /** Default input [C, H, W]. */
  defaultInput: [number, number, number];
  description: string;
  block: 'basic' | 'bottleneck';
  /** Blocks per stage. */
  layers: number[];
  /** torchvision: groups and width per group of the 3x3 convs (1 and 64 for plain ResNets). */
  groups: number;
  widthPerGroup: number;
}

/** A model family: its option types, and a rule naming further models (CIFAR: any depth 6n+2). */
interface FamilyInfo {
  options: Record<string, OptType>;
  /** Total downsampling of the family: a smaller input leaves the last stage nothing but padding. */
  minInput: number;
  /** The entry for a name outside MODELS, or null. */
  byRule?: (name: string) => ModelEntry | null;
}

/** int: a positive integer; bool[3]: a list of 3 booleans; a string list: one of those values. */
type OptType = 'int' | 'boolean' | 'bool[3]' | readonly string[];

const tv = (name: string, block: ModelEntry['block'], layers: number[], description: string, groups = 1, widthPerGroup = 64): ModelEntry => ({
  name,
  family: 'torchvision',
  block,
  layers,
  groups,
  widthPerGroup,
  defaultInput: [3, 224, 224],
  description,
  build: (o = {}) => new r.ResNet(block === 'basic' ? r.BasicBlock : r.Bottleneck, layers, { groups, widthPerGroup, ...(o as r.ResNetOptions) }),
});
const cf = (depth: number): ModelEntry => {
  const n = (depth - 2) / 6;
  return {
    name: `cifar_resnet${depth}`,
    family: 'cifar',
    block: 'basic',
    layers: [n, n, n],
    groups: 1,
    widthPerGroup: 16,
    defaultInput: [3, 32, 32],
    description: `CIFAR ResNet-${depth} (He et al. 2015, option A shortcuts)`,
    build: (o = {}) => new cifar.CifarResNet(depth, o as cifar.CifarResNetOptions),
  };
};

export const MODELS: readonly ModelEntry[] = [
  tv('resnet18', 'basic', [2, 2, 2, 2], 'ResNet-18, BasicBlock [2,2,2,2]'),
  tv('resnet34', 'basic', [3, 4, 6, 3], 'ResNet-34, BasicBlock [3,4,6,3]'),
  tv('resnet50', 'bottleneck', [3, 4, 6, 3], 'ResNet-50, Bottleneck [3,4,6,3]'),
  tv('resnet101', 'bottleneck', [3, 4, 23, 3], 'ResNet-101, Bottleneck [3,4,23,3]'),
  tv('resnet152', 'bottleneck', [3, 8, 36, 3], 'ResNet-152, Bottleneck [3,8,36,3]'),
  tv('resnext50_32x4d', 'bottleneck', [3, 4, 6, 3], 'ResNeXt-50 32x4d', 32, 4),
  tv('resnext101_32x8d', 'bottleneck', [3, 4, 23, 3], 'ResNeXt-101 32x8d', 32, 8),
  tv('resnext101_64x4d', 'bottleneck', [3, 4, 23, 3], 'ResNeXt-101 64x4d', 64, 4),
  tv('wide_resnet50_2', 'bottleneck', [3, 4, 6, 3], 'Wide ResNet-50-2', 1, 128),
  tv('wide_resnet101_2', 'bottleneck', [3, 4, 23, 3], 'Wide ResNet-101-2', 1, 128),
  {
    name: 'd2l_resnet18',
    family: 'd2l',
    block: 'basic',
    layers: [2, 2, 2, 2],
    groups: 1,
    widthPerGroup: 64,
    build: (o = {}) => d2l_resnet18(o),
    defaultInput: [1, 96, 96],
    description: "d2l's ResNet-18 (Dive into Deep Learning §8.6): conv biases, 1x1-conv shortcuts, 1 channel, 10 classes",
  },
  ...[20, 32, 44, 56, 110].map(cf),
];

const FAMILIES: Record<Family, FamilyInfo> = {
  torchvision: {
    options: {
      numClasses: 'int',
      zeroInitResidual: 'boolean',
      groups: 'int',
      widthPerGroup: 'int',
      replaceStrideWithDilation: 'bool[3]',
      inChannels: 'int',
      includeTop: 'boolean',
      downsample: ['conv', 'avgpool'],
    },
    minInput: 32,
  },
  d2l: { options: { numClasses: 'int', inChannels: 'int', xavier: 'boolean' }, minInput: 32 },
  cifar: {
    options: { numClasses: 'int', inChannels: 'int', width: 'int' },
    minInput: 4,
    // Any depth 6n+2 (cifar_resnet8 is the demo's, and checkpoints name it).
    byRule: (name) => {
      const m = /^cifar_resnet([1-9]\d{0,3})$/.exec(name);
      const depth = m ? Number(m[1]) : 0;
      return m && (depth - 2) % 6 === 0 && depth >= 8 && depth <= MAX_CIFAR_DEPTH ? cf(depth) : null;
    },
  },
};

/** Deepest CIFAR ResNet built by name (He et al. went to 1202). */
const MAX_CIFAR_DEPTH = 1202;
/** Upper bounds of the integer options: far above any real network, far below what would exhaust memory. */
const INT_OPTION_MAX: Record<string, number> = {
  numClasses: 1_000_000,
  inChannels: 4096,
  groups: 1024,
  widthPerGroup: 4096,
  width: 4096,
};

/** The option types of a family (for `--arch` help and ONNX import's choice of structural options). */
export function familyOptions(family: Family): Readonly<Record<string, OptType>> {
  return FAMILIES[family].options;
}

export function listModels(): string[] {
  return MODELS.map((m) => m.name);
}

/**
 * The entry of a model name: a listed model, or one a family's rule names (a CIFAR ResNet of any
 * depth 6n+2: cifar_resnet8, cifar_resnet14, ...), so any name a checkpoint carries works
 * everywhere a model name is taken.
 */
export function getModelEntry(name: string): ModelEntry {
  const e =
    MODELS.find((m) => m.name === name) ??
    Object.values(FAMILIES)
      .map((f) => f.byRule?.(name))
      .find((x) => x);
  if (e) return e;
  const why = /^cifar_resnet[1-9]\d{0,3}$/.test(name) ? ` (a CIFAR ResNet's depth must be 6n+2 between 8 and ${MAX_CIFAR_DEPTH})` : '';
  throw new ConfigError(`unknown model '${name}'${why} (known: ${listModels().join(', ')}, or cifar_resnet<6n+2>)`);
}

/** How createModel builds: `init: false` skips the random initialisation (see withoutRandomInit). */
export interface CreateOptions {
  /**
   * Default true. false: weights stay zero (BatchNorm's scale and running variance 1) and the RNG
   * is not advanced; for a model whose every parameter is loaded next (loadStateDict, strict).
   */
  init?: boolean;
}

/** Build a model by name with constructor options (camelCase, as torchvision's keyword arguments). */
export function createModel(name: string, opts: Record<string, unknown> = {}, how: CreateOptions = {}): Module {
  const e = getModelEntry(name);
  checkModelOptions(name, e.family, opts);
  return how.init === false ? withoutRandomInit(() => e.build(opts)) : e.build(opts);
}

/** ConfigError unless `opts` holds only options of the family, each of the right type. */
export function checkModelOptions(name: string, family: Family, opts: Record<string, unknown>): void {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts))
    throw new ConfigError(`model options must be a JSON object, got ${JSON.stringify(opts)}`);
  const allowed = FAMILIES[family].options;
  for (const [k, v] of Object.entries(opts)) {
    const want = allowed[k];
    if (!want) throw new ConfigError(`unknown option '${k}' for ${name} (allowed: ${Object.keys(allowed).join(', ')})`);
    const ok =
      want === 'bool[3]'
        ? Array.isArray(v) && v.length === 3 && v.every((b) => typeof b === 'boolean')
        : want === 'int'
          ? Number.isInteger(v) && (v as number) > 0 && (v as number) <= INT_OPTION_MAX[k]
          : typeof want === 'string'
            ? typeof v === want
            : want.includes(v as string);
    if (!ok) {
      const what =
        want === 'int'
          ? `an integer from 1 to ${INT_OPTION_MAX[k].toLocaleString('en-US')}`
          : want === 'bool[3]'
            ? 'a list of 3 booleans'
            : typeof want === 'string'
              ? `a ${want}`
              : `one of ${want.join(', ')}`;
      throw new ConfigError(`option '${k}' for ${name} must be ${what}, got ${JSON.stringify(v)}`);
    }
  }
}

/** Largest training input side: beyond it one image is 200 MB of float32 before any activation. */
export const MAX_INPUT_SIZE = 4096;
/** Largest input batch in bytes (a typed array past this cannot be allocated in every engine). */
const MAX_BATCH_BYTES = 2 ** 31;

/** ConfigError unless `size` x `size` images in batches of `batchSize` suit the model. */
export function checkInputSize(name: string, size: number, channels: number, batchSize: number, flag = '--size'): void {
  const min = FAMILIES[getModelEntry(name).family].minInput;
  if (!Number.isInteger(size) || size < min) {
    throw new ConfigError(
      `${flag} ${size} is below ${name}'s minimum input of ${min} px (its total stride: a smaller image leaves the last stage nothing but padding)`,
    );
  }
  if (size > MAX_INPUT_SIZE) throw new ConfigError(`${flag} ${size} is above the largest supported input of ${MAX_INPUT_SIZE} px`);
  const bytes = batchSize * channels * size * size * 4;
  if (bytes > MAX_BATCH_BYTES) {
    throw new ConfigError(
      `${flag} ${size} with --batch-size ${batchSize}: one input batch alone would take ${(bytes / 2 ** 30).toFixed(1)} GiB (at most ${MAX_BATCH_BYTES / 2 ** 30} GiB); use a smaller size or batch`,
    );
  }
}

/** The input channels a model expects (from its stem). */
export function modelInChannels(m: Module): number {
  const c = (m as unknown as { inChannels?: number }).inChannels;
  return typeof c === 'number' ? c : 3;
}
