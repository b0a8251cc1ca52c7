// Model registry: name → builder, with the input each model expects by default.
import { ConfigError } from '../base/errors.js';
import type { Module } from '../nn/module.js';
import * as cifar from './cifar.js';
import { d2l_resnet18 } from './d2l.js';
import * as r from './resnet.js';

export interface ModelEntry {
  name: string;
  build: (opts?: Record<string, unknown>) => Module;
  /** Default input [C, H, W]. */
  defaultInput: [number, number, number];
  family: 'torchvision' | 'd2l' | 'cifar';
  description: string;
}

const tv = (name: string, build: r.ResNetBuilder, description: string): ModelEntry => ({
  name, build: (o = {}) => build(o as r.ResNetOptions), defaultInput: [3, 224, 224], family: 'torchvision', description,
});
const cf = (name: string, build: (o?: cifar.CifarResNetOptions) => Module, depth: number): ModelEntry => ({
  name, build: (o = {}) => build(o as cifar.CifarResNetOptions), defaultInput: [3, 32, 32], family: 'cifar',
  description: `CIFAR ResNet-${depth} (He et al. 2015, option A shortcuts)`,
});

export const MODELS: readonly ModelEntry[] = [
  tv('resnet18', r.resnet18, 'ResNet-18, BasicBlock [2,2,2,2]'),
  tv('resnet34', r.resnet34, 'ResNet-34, BasicBlock [3,4,6,3]'),
  tv('resnet50', r.resnet50, 'ResNet-50, Bottleneck [3,4,6,3]'),
  tv('resnet101', r.resnet101, 'ResNet-101, Bottleneck [3,4,23,3]'),
  tv('resnet152', r.resnet152, 'ResNet-152, Bottleneck [3,8,36,3]'),
  tv('resnext50_32x4d', r.resnext50_32x4d, 'ResNeXt-50 32x4d'),
  tv('resnext101_32x8d', r.resnext101_32x8d, 'ResNeXt-101 32x8d'),
  tv('resnext101_64x4d', r.resnext101_64x4d, 'ResNeXt-101 64x4d'),
  tv('wide_resnet50_2', r.wide_resnet50_2, 'Wide ResNet-50-2'),
  tv('wide_resnet101_2', r.wide_resnet101_2, 'Wide ResNet-101-2'),
  { name: 'd2l_resnet18', build: (o = {}) => d2l_resnet18(o), defaultInput: [1, 96, 96], family: 'd2l',
    description: "d2l's ResNet-18 (Dive into Deep Learning §8.6): conv biases, 1x1-conv shortcuts, 1 channel, 10 classes" },
  cf('cifar_resnet20', cifar.cifar_resnet20, 20),
  cf('cifar_resnet32', cifar.cifar_resnet32, 32),
  cf('cifar_resnet44', cifar.cifar_resnet44, 44),
  cf('cifar_resnet56', cifar.cifar_resnet56, 56),
  cf('cifar_resnet110', cifar.cifar_resnet110, 110),
];

export function listModels(): string[] {
  return MODELS.map((m) => m.name);
}

/** Deepest CIFAR ResNet built by name (He et al. went to 1202). */
const MAX_CIFAR_DEPTH = 1202;

/**
 * The entry of a model name: a listed model, or a CIFAR ResNet of any depth 6n+2 named
 * cifar_resnet<depth> (cifar_resnet8 is the demo's, and checkpoints name it), so any name a
 * checkpoint carries works everywhere a model name is taken.
 */
export function getModelEntry(name: string): ModelEntry {
  const e = MODELS.find((m) => m.name === name);
  if (e) return e;
  const m = /^cifar_resnet([1-9]\d{0,3})$/.exec(name);
  const depth = m ? Number(m[1]) : 0;
  if (m && (depth - 2) % 6 === 0 && depth >= 8 && depth <= MAX_CIFAR_DEPTH) {
    return cf(name, (o) => new cifar.CifarResNet(depth, o), depth);
  }
  const why = m ? ` (a CIFAR ResNet's depth must be 6n+2 between 8 and ${MAX_CIFAR_DEPTH})` : '';
  throw new ConfigError(`unknown model '${name}'${why} (known: ${listModels().join(', ')}, or cifar_resnet<6n+2>)`);
}

/** Build a model by name with constructor options (camelCase, as torchvision's keyword arguments). */
export function createModel(name: string, opts: Record<string, unknown> = {}): Module {
  const e = getModelEntry(name);
  checkModelOptions(name, e.family, opts);
  return e.build(opts);
}

/** ConfigError unless `opts` holds only options of the family, each of the right type. */
export function checkModelOptions(name: string, family: ModelEntry['family'], opts: Record<string, unknown>): void {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new ConfigError(`model options must be a JSON object, got ${JSON.stringify(opts)}`);
  const allowed = OPTION_TYPES[family];
  for (const [k, v] of Object.entries(opts)) {
    const want = allowed[k];
    if (!want) throw new ConfigError(`unknown option '${k}' for ${name} (allowed: ${Object.keys(allowed).join(', ')})`);
    const ok = want === 'bool[3]' ? Array.isArray(v) && v.length === 3 && v.every((b) => typeof b === 'boolean')
      : want === 'int' ? Number.isInteger(v) && (v as number) > 0 && (v as number) <= INT_OPTION_MAX[k] : typeof v === want;
    if (!ok) {
      const what = want === 'int' ? `an integer from 1 to ${INT_OPTION_MAX[k].toLocaleString('en-US')}` : want === 'bool[3]' ? 'a list of 3 booleans' : `a ${want}`;
      throw new ConfigError(`option '${k}' for ${name} must be ${what}, got ${JSON.stringify(v)}`);
    }
  }
}

type OptType = 'int' | 'boolean' | 'bool[3]';
/** Upper bounds of the integer options: far above any real network, far below what would exhaust memory. */
const INT_OPTION_MAX: Record<string, number> = {
  numClasses: 1_000_000, inChannels: 4096, groups: 1024, widthPerGroup: 4096, width: 4096,
};
const OPTION_TYPES: Record<ModelEntry['family'], Record<string, OptType>> = {
  torchvision: { numClasses: 'int', zeroInitResidual: 'boolean', groups: 'int', widthPerGroup: 'int',
    replaceStrideWithDilation: 'bool[3]', inChannels: 'int', includeTop: 'boolean' },
  d2l: { numClasses: 'int', inChannels: 'int', xavier: 'boolean' },
  cifar: { numClasses: 'int', inChannels: 'int', width: 'int' },
};

/** Total downsampling of each family: a smaller input leaves the last stage nothing but padding. */
const MIN_INPUT: Record<ModelEntry['family'], number> = { torchvision: 32, d2l: 32, cifar: 4 };
/** Largest training input side: beyond it one image is 200 MB of float32 before any activation. */
export const MAX_INPUT_SIZE = 4096;
/** Largest input batch in bytes (a typed array past this cannot be allocated in every engine). */
const MAX_BATCH_BYTES = 2 ** 31;

/** ConfigError unless `size` x `size` images in batches of `batchSize` suit the model. */
export function checkInputSize(name: string, size: number, channels: number, batchSize: number, flag = '--size'): void {
  const min = MIN_INPUT[getModelEntry(name).family];
  if (!Number.isInteger(size) || size < min) {
    throw new ConfigError(`${flag} ${size} is below ${name}'s minimum input of ${min} px (its total stride: a smaller image leaves the last stage nothing but padding)`);
  }
  if (size > MAX_INPUT_SIZE) throw new ConfigError(`${flag} ${size} is above the largest supported input of ${MAX_INPUT_SIZE} px`);
  const bytes = batchSize * channels * size * size * 4;
  if (bytes > MAX_BATCH_BYTES) {
    throw new ConfigError(`${flag} ${size} with --batch-size ${batchSize}: one input batch alone would take ${(bytes / 2 ** 30).toFixed(1)} GiB (at most ${MAX_BATCH_BYTES / 2 ** 30} GiB); use a smaller size or batch`);
  }
}

/** The input channels a model expects (from its stem). */
export function modelInChannels(m: Module): number {
  const c = (m as unknown as { inChannels?: number }).inChannels;
  return typeof c === 'number' ? c : 3;
}
