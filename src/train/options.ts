// The training options, declared once: name, type, default, allowed values, help and whether a
// resumed run may change them. The config type (TrainConfig, DataConfig), DEFAULT_CONFIG,
// validation, the resume rules and the command-line flags (cli/train.ts) all derive from this
// table; a new option is one entry here plus the code that uses it.
//
// Errors name the option (`batchSize must be a positive integer, got 0`, as an OptionError that
// carries the option); the CLI prints its flag instead (`--batch-size must be …`).
import { ConfigError } from '../base/errors.js';
import { describeRule, fitsRule, type NumberRule } from '../base/numbers.js';

type OptionType = 'int' | 'number' | 'string' | 'boolean' | 'choice' | 'ints' | 'object' | 'workers';

export interface OptionSpec {
  type: OptionType;
  help: string;
  /** Options of the data section (config.data.*). */
  group?: 'data';
  default?: unknown;
  /** Required, but with no default (the caller always sets it). */
  required?: true;
  /** int, number, ints (each element), workers (when a number). */
  range?: NumberRule;
  choices?: readonly string[];
  /** number: null is a value (off). */
  nullable?: true;
  /** Command-line flag name (default: --kebab-case of the key); false: set by the program, not a flag. */
  flag?: string | false;
  /** The flag's argument name (default by type). */
  arg?: string;
  /** Commands that have the flag (default: train and finetune). */
  commands?: readonly ('train' | 'finetune')[];
  /** A boolean flag that also has --no-<flag>, with this help. */
  negatable?: string;
  /** May be given again with --resume (everything else is the checkpoint's). */
  resume?: true;
}

const POS_INT: NumberRule = { int: true, min: 1 };
const UNIT_OPEN: NumberRule = { min: 0, below: 1 };

export const TRAIN_OPTIONS = {
  task: {
    type: 'choice',
    choices: ['train', 'finetune'],
    default: 'train',
    flag: false,
    help: 'train from scratch or fine-tune pretrained weights (set by the command)',
  },
  preset: { type: 'string', flag: false, help: 'the preset the run started from' },
  model: { type: 'string', required: true, arg: 'name', help: 'model name (see `resnet models`)' },
  arch: { type: 'object', default: {}, arg: 'json', help: 'model constructor options as JSON (or @file.json)' },
  weights: {
    type: 'string',
    arg: 'file|id',
    commands: ['finetune'],
    help: 'pretrained weights: an id such as resnet18.IMAGENET1K_V1 (downloaded once), a .safetensors/.pth/.npz file, or a resnet-ts checkpoint',
  },
  keepHead: { type: 'boolean', commands: ['finetune'], help: 'keep the pretrained head when it fits the new classes' },
  freeze: {
    type: 'string',
    default: 'none',
    arg: 'what',
    commands: ['finetune'],
    help: 'none, backbone, stem or layerN (frozen BatchNorm stays in eval mode)',
  },
  epochs: { type: 'int', default: 10, range: POS_INT, resume: true, help: 'epochs' },
  batchSize: { type: 'int', default: 128, range: POS_INT, help: 'batch size' },
  optimizer: { type: 'choice', choices: ['sgd', 'adam', 'adamw'], default: 'sgd', help: 'sgd, adam or adamw' },
  lr: { type: 'number', default: 0.05, range: { above: 0 }, help: 'learning rate (the peak for one-cycle)' },
  momentum: { type: 'number', default: 0, range: { min: 0 }, help: 'SGD momentum' },
  nesterov: { type: 'boolean', default: false, negatable: 'plain momentum', help: 'Nesterov momentum' },
  weightDecay: { type: 'number', default: 0, range: { min: 0 }, help: 'weight decay (not applied to BatchNorm and biases)' },
  noWdBnBias: { type: 'boolean', default: true, flag: false, help: 'no weight decay on BatchNorm parameters and biases' },
  headLrMult: { type: 'number', default: 1, range: { above: 0 }, commands: ['finetune'], help: 'learning-rate multiplier of the new head (default 10)' },
  schedule: {
    type: 'choice',
    choices: ['none', 'step', 'multistep', 'cosine', 'onecycle'],
    default: 'none',
    arg: 'name',
    help: 'none, step, multistep, cosine or onecycle',
  },
  stepSize: { type: 'int', range: POS_INT, arg: 'epochs', help: 'StepLR: epochs between decays' },
  gamma: { type: 'number', range: { above: 0 }, help: 'StepLR/MultiStepLR decay factor' },
  milestones: { type: 'ints', range: { int: true, min: 0 }, arg: 'list', help: 'MultiStepLR epochs, e.g. 30,60' },
  warmupEpochs: { type: 'number', default: 0, range: { min: 0 }, help: 'linear warm-up epochs (not with onecycle)' },
  pctStart: { type: 'number', range: { above: 0, below: 1 }, help: 'one-cycle: fraction of steps spent rising' },
  labelSmoothing: { type: 'number', default: 0, range: UNIT_OPEN, help: 'label smoothing in [0, 1)' },
  ema: {
    type: 'number',
    default: 0,
    range: UNIT_OPEN,
    arg: 'decay',
    help: 'evaluate and save a moving average of the weights with this decay, e.g. 0.99 (0: off)',
  },
  tta: {
    type: 'choice',
    choices: ['none', 'flip'],
    arg: 'kind',
    help: 'test-time augmentation when evaluating: none, or flip (mean logits of the image and its mirror image)',
  },
  clipGradNorm: { type: 'number', default: null, nullable: true, range: { above: 0 }, help: 'clip gradients to this global L2 norm' },
  seed: { type: 'int', default: 0, range: { int: true, min: 0 }, help: 'random seed (weights, shuffling, augmentation)' },
  workers: { type: 'workers', default: 'auto', range: { int: true, min: 0 }, resume: true, help: 'data-loading worker threads (default auto)' },
  out: { type: 'string', required: true, arg: 'dir', resume: true, help: 'output directory for checkpoints, metrics.jsonl and curves.svg' },
  saveFormat: {
    type: 'choice',
    choices: ['safetensors', 'pth'],
    default: 'safetensors',
    arg: 'format',
    resume: true,
    help: "pth: also write each checkpoint's weights as best.pth / last.pth in torch.save's format (torch.load(f, weights_only=True), load_state_dict)",
  },
  // ---- data
  kind: {
    group: 'data',
    type: 'choice',
    choices: ['fashion-mnist', 'image-folder'],
    default: 'fashion-mnist',
    flag: false,
    help: 'the dataset (image-folder with --images)',
  },
  dataDir: {
    group: 'data',
    type: 'string',
    arg: 'dir',
    commands: ['train'],
    resume: true,
    help: 'where Fashion-MNIST is (else $FASHION_MNIST_DIR, /usr/share/datasets/fashion-mnist, cache, download, embedded slice)',
  },
  root: { group: 'data', type: 'string', flag: 'images', arg: 'dir', help: 'training images, one sub-folder per class (an image-folder run)' },
  valRoot: { group: 'data', type: 'string', flag: 'val-images', arg: 'dir', help: 'validation images (default: a --val-split of --images)' },
  valSplit: { group: 'data', type: 'number', default: 0, range: UNIT_OPEN, help: 'fraction of the training data held out for validation' },
  size: { group: 'data', type: 'int', default: 28, range: POS_INT, arg: 'px', help: 'input size in pixels' },
  augment: {
    group: 'data',
    type: 'choice',
    choices: ['none', 'light', 'imagenet'],
    default: 'none',
    arg: 'kind',
    help: 'none, light (random crop + flip) or imagenet (random resized crop + flip)',
  },
  cropPadding: { group: 'data', type: 'int', range: { int: true, min: 0 }, flag: false, help: "padding of the 'light' random crop (default size/14)" },
  erase: {
    group: 'data',
    type: 'number',
    range: { min: 0, max: 1, what: 'a probability in [0, 1]' },
    arg: 'p',
    help: 'random erasing (torchvision RandomErasing) with probability p after normalization (0: off)',
  },
  normalize: { group: 'data', type: 'choice', choices: ['none', 'dataset', 'imagenet'], default: 'none', flag: false, help: 'input normalization' },
  limitTrain: { group: 'data', type: 'int', range: POS_INT, help: 'use about n training images (class-stratified)' },
  limitTest: { group: 'data', type: 'int', range: POS_INT, help: 'use the first n test/validation images' },
  download: { group: 'data', type: 'boolean', flag: false, help: 'allow the download of Fashion-MNIST when not found locally (default true)' },
} as const satisfies Record<string, OptionSpec>;

type Options = typeof TRAIN_OPTIONS;
export type OptionName = keyof Options;

// ---- the config types, derived from the table

type ValueOf<S> = S extends { choices: readonly (infer C)[] }
  ? C
  : S extends { type: 'int' | 'number' }
    ? S extends { nullable: true }
      ? number | null
      : number
    : S extends { type: 'string' }
      ? string
      : S extends { type: 'boolean' }
        ? boolean
        : S extends { type: 'ints' }
          ? number[]
          : S extends { type: 'object' }
            ? Record<string, unknown>
            : S extends { type: 'workers' }
              ? number | 'auto'
              : never;
type GroupOf<S> = S extends { group: 'data' } ? 'data' : 'top';
type Keys<G, Mandatory extends boolean> = {
  [K in OptionName]: GroupOf<Options[K]> extends G
    ? Options[K] extends { default: unknown } | { required: true }
      ? Mandatory extends true
        ? K
        : never
      : Mandatory extends true
        ? never
        : K
    : never;
}[OptionName];
type Section<G> = { -readonly [K in Keys<G, true>]: ValueOf<Options[K]> } & { -readonly [K in Keys<G, false>]?: ValueOf<Options[K]> };
type Flat<T> = { [K in keyof T]: T[K] };

export type DataConfig = Flat<Section<'data'>>;
export type TrainConfig = Flat<Section<'top'> & { data: DataConfig }>;
/** Config fields given as overrides (flags, presets): any subset, `data` deep-merged. */
export type ConfigOverrides = Omit<Partial<TrainConfig>, 'data'> & { data?: Partial<DataConfig> };
/** Options a resumed run may change (the rest is the checkpoint's). */
export type ResumeOverrides = { [K in OptionName as Options[K] extends { resume: true } ? K : never]?: ValueOf<Options[K]> };

const ENTRIES = Object.entries(TRAIN_OPTIONS) as [OptionName, OptionSpec][];

function section(group: 'top' | 'data', f: (key: OptionName, s: OptionSpec) => [string, unknown][]): Record<string, unknown> {
  return Object.fromEntries(ENTRIES.filter(([, s]) => (s.group ?? 'top') === group).flatMap(([k, s]) => f(k, s)));
}
const withDefaults = (k: OptionName, s: OptionSpec): [string, unknown][] => ('default' in s ? [[k, structuredClone(s.default)]] : []);

/** Every option's default (model and out have none: the caller sets them). */
export const DEFAULT_CONFIG = { ...section('top', withDefaults), data: section('data', withDefaults) } as Omit<TrainConfig, 'model' | 'out'>;

// ---- errors, reading and writing options by name

/** An invalid option value; `option` is the table's key, the message names it as the config does. */
export class OptionError extends ConfigError {
  constructor(
    readonly option: OptionName,
    readonly detail: string,
  ) {
    super(`${configPath(option)} ${detail}`);
  }
}

/** 'epochs', 'data.size'. */
export function configPath(option: OptionName): string {
  return (TRAIN_OPTIONS[option] as OptionSpec).group === 'data' ? `data.${option}` : option;
}

/** The option's command-line flag ('--batch-size', '--images'); null when it has none. */
export function optionFlag(option: OptionName): string | null {
  const s = TRAIN_OPTIONS[option] as OptionSpec;
  if (s.flag === false) return null;
  return `--${s.flag ?? option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The option's entry in the table. */
export function optionSpec(option: OptionName): OptionSpec {
  return TRAIN_OPTIONS[option];
}

/** All options, in table order. */
export function optionNames(): OptionName[] {
  return ENTRIES.map(([k]) => k);
}

function holder(c: ConfigOverrides | TrainConfig, option: OptionName, create: boolean): Record<string, unknown> | undefined {
  if ((TRAIN_OPTIONS[option] as OptionSpec).group !== 'data') return c as Record<string, unknown>;
  if (!c.data && create) c.data = {};
  return c.data as Record<string, unknown> | undefined;
}

/** The option's value in a config or overrides (undefined when absent). */
export function getOption(c: ConfigOverrides | TrainConfig, option: OptionName): unknown {
  return holder(c, option, false)?.[option];
}

/** Set the option in a config or overrides, after checking the value. */
export function setOption(c: ConfigOverrides | TrainConfig, option: OptionName, value: unknown): void {
  checkOption(option, value);
  holder(c, option, true)![option] = value;
}

function got(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : v !== null && typeof v === 'object' ? JSON.stringify(v).slice(0, 80) : String(v);
}

function orList(xs: readonly string[]): string {
  return xs.length === 1 ? xs[0] : `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}`;
}

/** Check one option's value against the table (undefined: absent, allowed unless required). */
export function checkOption(option: OptionName, v: unknown): void {
  const s = TRAIN_OPTIONS[option] as OptionSpec;
  if (v === undefined) {
    if ('default' in s || s.required) throw new OptionError(option, 'is required');
    return;
  }
  const fail = (what: string): never => {
    throw new OptionError(option, `must be ${what}, got ${got(v)}`);
  };
  const range = s.range ?? {};
  switch (s.type) {
    case 'int':
    case 'number':
      if (v === null && s.nullable) return;
      if (!fitsRule(v, { int: s.type === 'int', ...range })) fail(describeRule({ int: s.type === 'int', ...range }));
      return;
    case 'workers':
      if (v !== 'auto' && !fitsRule(v, range)) fail(`${describeRule(range)} or 'auto'`);
      return;
    case 'ints':
      if (!Array.isArray(v) || !v.every((x) => fitsRule(x, range))) fail(`a comma-separated list of ${describeRule(range).replace(/^an? /, '')}s`);
      return;
    case 'choice':
      if (!s.choices!.includes(v as string)) fail(orList(s.choices!));
      return;
    case 'string':
      if (typeof v !== 'string') fail('a string');
      return;
    case 'boolean':
      if (typeof v !== 'boolean') fail('true or false');
      return;
    case 'object':
      if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('an object');
      return;
  }
}

/** Parse an option's text (a flag's argument) by its type; OptionError when it does not fit. */
export function parseOption(option: OptionName, text: string): unknown {
  const s = TRAIN_OPTIONS[option] as OptionSpec;
  const num = (t: string): number => (t.trim() === '' ? NaN : Number(t));
  let v: unknown;
  switch (s.type) {
    case 'int':
    case 'number':
      v = num(text);
      break;
    case 'workers':
      v = text === 'auto' ? text : num(text);
      break;
    case 'ints':
      v = text.split(',').map(num);
      break;
    case 'boolean':
      v = text === 'true' ? true : text === 'false' ? false : text;
      break;
    case 'object': {
      try {
        v = JSON.parse(text);
      } catch (e) {
        throw new OptionError(option, `is not valid JSON (${(e as Error).message}): ${text.slice(0, 80)}`);
      }
      break;
    }
    default:
      v = text;
  }
  if (typeof v === 'number' && Number.isNaN(v)) v = text; // reported as the text the user gave
  if (Array.isArray(v) && v.some(Number.isNaN)) v = text;
  checkOption(option, v);
  return v;
}

/** Check a merged config: every option against the table, then the rules that tie options together. */
export function validateConfig(c: TrainConfig): void {
  for (const [k] of ENTRIES) checkOption(k, getOption(c, k));
  if (c.data.kind === 'image-folder' && !c.data.root) throw new OptionError('root', 'is needed for an image-folder run (one sub-folder per class)');
  if (c.schedule === 'onecycle' && c.warmupEpochs > 0) throw new OptionError('warmupEpochs', 'must be 0 with the onecycle schedule (it has its own warm-up)');
}

/**
 * The resume rules: a resumed run keeps its checkpoint's config except the options marked
 * `resume` (where the data is, workers, out, and epochs unless the schedule is laid out over
 * them). Giving any other option with --resume is an error rather than silently ignored.
 */
export function resumeOverrides(given: ConfigOverrides): ResumeOverrides {
  const out: Record<string, unknown> = {};
  for (const [k, s] of ENTRIES) {
    const v = getOption(given, k);
    if (v === undefined) continue;
    if (!s.resume) {
      const may = ENTRIES.filter(([, e]) => e.resume).map(([n]) => optionFlag(n) ?? n);
      throw new OptionError(k, `cannot change on resume: the run continues with the config saved in its checkpoint (only ${orList(may)} may be given)`);
    }
    out[k] = v;
  }
  return out as ResumeOverrides;
}

/** Apply resume overrides to a checkpoint's config. */
export function applyResumeOverrides(cfg: TrainConfig, ov: ResumeOverrides): void {
  for (const k of Object.keys(ov) as (keyof ResumeOverrides)[]) {
    const v = ov[k];
    if (v === undefined) continue;
    if (k === 'epochs' && v !== cfg.epochs && (cfg.schedule === 'cosine' || cfg.schedule === 'onecycle')) {
      throw new OptionError('epochs', `cannot change on resume with the ${cfg.schedule} schedule (it is laid out over ${cfg.epochs} epochs)`);
    }
    setOption(cfg, k, v);
  }
}
