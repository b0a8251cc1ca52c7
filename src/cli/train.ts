// `resnet train` (and the shared machinery of `resnet finetune`): flags → TrainConfig, backend,
// Ctrl-C handling, progress on the terminal, and the final summary line.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CommanderError, type Command } from 'commander';
import { ConfigError } from '../base/errors.js';
import { getBackend } from '../backend/registry.js';
import type { DataConfig, TrainConfig } from '../train/config.js';
import { ProgressPrinter } from '../train/progress.js';
import type { RunResult } from '../train/run.js';
import { parseArch } from './util.js';
// run.js (data, sharp, models) and presets.js are imported when a command runs, so that building
// the command-line program stays light.

export type Printer = (s: string) => void;

const num = (name: string) => (s: string): number => {
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v)) throw new ConfigError(`${name} must be a number, got '${s}'`);
  return v;
};
const int = (name: string, min = 1) => (s: string): number => {
  const v = Number(s);
  if (!Number.isInteger(v) || v < min) throw new ConfigError(`${name} must be an integer >= ${min}, got '${s}'`);
  return v;
};

/** The flags shared by train and finetune. */
export function addTrainingOptions(c: Command, defaults: { preset: string }): Command {
  return c
    .option('--preset <name>', `recipe to start from (default ${defaults.preset}; see \`resnet presets\`)`)
    .option('--model <name>', 'model name (see `resnet models`)')
    .option('--arch <json>', 'model constructor options as JSON (or @file.json)')
    .option('--epochs <n>', 'epochs', int('--epochs'))
    .option('--batch-size <n>', 'batch size', int('--batch-size'))
    .option('--lr <x>', 'learning rate (the peak for one-cycle)', num('--lr'))
    .option('--optimizer <name>', 'sgd, adam or adamw')
    .option('--momentum <x>', 'SGD momentum', num('--momentum'))
    .option('--nesterov', 'Nesterov momentum')
    .option('--no-nesterov', 'plain momentum')
    .option('--weight-decay <x>', 'weight decay (not applied to BatchNorm and biases)', num('--weight-decay'))
    .option('--schedule <name>', 'none, step, multistep, cosine or onecycle')
    .option('--step-size <epochs>', 'StepLR: epochs between decays', int('--step-size'))
    .option('--gamma <x>', 'StepLR/MultiStepLR decay factor', num('--gamma'))
    .option('--milestones <list>', 'MultiStepLR epochs, e.g. 30,60', (s: string) => s.split(',').map((v) => int('--milestones', 0)(v.trim())))
    .option('--pct-start <x>', 'one-cycle: fraction of steps spent rising', num('--pct-start'))
    .option('--warmup-epochs <x>', 'linear warm-up epochs (not with onecycle)', num('--warmup-epochs'))
    .option('--label-smoothing <x>', 'label smoothing in [0, 1)', num('--label-smoothing'))
    .option('--ema <decay>', 'evaluate and save a moving average of the weights with this decay, e.g. 0.99 (0: off)', num('--ema'))
    .option('--clip-grad-norm <x>', 'clip gradients to this global L2 norm', num('--clip-grad-norm'))
    .option('--augment <kind>', 'none, light (random crop + flip) or imagenet (random resized crop + flip)')
    .option('--erase <p>', 'random erasing (torchvision RandomErasing) with probability p after normalization (0: off)', num('--erase'))
    .option('--tta <kind>', 'test-time augmentation when evaluating: none, or flip (mean logits of the image and its mirror image)')
    .option('--size <px>', 'input size in pixels', int('--size'))
    .option('--val-split <x>', 'fraction of the training data held out for validation', num('--val-split'))
    .option('--limit-train <n>', 'use about n training images (class-stratified)', int('--limit-train'))
    .option('--limit-test <n>', 'use the first n test/validation images', int('--limit-test'))
    .option('--seed <n>', 'random seed (weights, shuffling, augmentation)', int('--seed', 0))
    .option('--out <dir>', 'output directory for checkpoints, metrics.jsonl and curves.svg')
    .option('--resume [dir]', 'continue the run saved in DIR (default: --out) exactly where it stopped')
    .option('--overwrite', 'start afresh even if --out already holds a checkpoint')
    .option('--workers <n>', 'data-loading worker threads (default auto)', int('--workers', 0))
    .option('--json', 'print the final result as one JSON object')
    .option('--no-progress', 'no progress bar or progress lines');
}

export interface TrainFlags {
  preset?: string; model?: string; arch?: string; epochs?: number; batchSize?: number; lr?: number; optimizer?: string;
  momentum?: number; nesterov?: boolean; weightDecay?: number; schedule?: string; warmupEpochs?: number;
  stepSize?: number; gamma?: number; milestones?: number[]; pctStart?: number; labelSmoothing?: number; ema?: number;
  clipGradNorm?: number; augment?: string; erase?: number; tta?: string; size?: number; valSplit?: number; limitTrain?: number; limitTest?: number; seed?: number;
  out?: string; resume?: string | boolean; overwrite?: boolean; workers?: number; json?: boolean;
  progress?: boolean; dataDir?: string;
  /** Refuse loaded weights (--weights, --resume) holding NaN or Inf instead of warning. */
  strictFinite?: boolean;
  /** Fashion-MNIST: allow the download when not found locally (no flag; the demo turns it off after its own try). */
  download?: boolean;
  // finetune
  images?: string; valImages?: string; weights?: string; checkpoint?: string; freeze?: string; headLrMult?: number; keepHead?: boolean;
}

/** Flags → config overrides (only what was given). */
export function flagsToOverrides(f: TrainFlags): Omit<Partial<TrainConfig>, 'data'> & { data: Partial<DataConfig> } {
  const data: Partial<DataConfig> = {
    dataDir: f.dataDir, root: f.images, valRoot: f.valImages, valSplit: f.valSplit, size: f.size,
    augment: f.augment as DataConfig['augment'] | undefined, erase: f.erase, limitTrain: f.limitTrain, limitTest: f.limitTest,
    download: f.download,
  };
  if (f.images) data.kind = 'image-folder';
  return {
    model: f.model, arch: f.arch ? parseArch(f.arch) : undefined, epochs: f.epochs, batchSize: f.batchSize, lr: f.lr,
    optimizer: f.optimizer as TrainConfig['optimizer'] | undefined, momentum: f.momentum, nesterov: f.nesterov,
    weightDecay: f.weightDecay, schedule: f.schedule as TrainConfig['schedule'] | undefined, warmupEpochs: f.warmupEpochs,
    stepSize: f.stepSize, gamma: f.gamma, milestones: f.milestones, pctStart: f.pctStart,
    labelSmoothing: f.labelSmoothing, ema: f.ema, tta: f.tta as TrainConfig['tta'], clipGradNorm: f.clipGradNorm, seed: f.seed, out: f.out,
    workers: f.workers, weights: f.weights ?? f.checkpoint, freeze: f.freeze, headLrMult: f.headLrMult, keepHead: f.keepHead,
    data,
  };
}

export interface RunCliOptions {
  task: 'train' | 'finetune';
  defaultPreset: string;
  /** Injected for tests; default: process signals. */
  signal?: AbortSignal;
}

/**
 * Test hook: with RESNET_TS_SAVE_HOOK set, each step of every save prints `save-phase WHAT PHASE`
 * on stderr; RESNET_TS_SAVE_HOOK=WHAT:PHASE:MS (e.g. last:switched:300) also stops there for MS
 * milliseconds, so a test can kill the process inside that step (test/checkpoint-kill.test.ts).
 */
function saveHook(err: Printer, phases: readonly string[]): ((what: string, phase: string) => void) | undefined {
  const spec = process.env.RESNET_TS_SAVE_HOOK;
  if (spec === undefined) return undefined;
  const [pw, pp, pms] = spec.split(':');
  if (pw && !(['last', 'best', 'metrics'].includes(pw) && [...phases, 'write'].includes(pp) && Number(pms) > 0)) {
    throw new ConfigError(`RESNET_TS_SAVE_HOOK must be empty or WHAT:PHASE:MS with WHAT last, best or metrics and PHASE one of ${phases.join(', ')}, write; got '${spec}'`);
  }
  return (what, phase) => {
    err(`save-phase ${what} ${phase}`);
    if (what === pw && phase === pp) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(pms));
  };
}

/** Run a training command; returns the process exit code. */
export async function runTrainCommand(f: TrainFlags, print: Printer, err: Printer, o: RunCliOptions): Promise<number> {
  const { resolveConfig } = await import('./presets.js');
  const { runTraining } = await import('../train/run.js');
  const presetName = f.preset ?? o.defaultPreset;
  const overrides = flagsToOverrides(f);
  const cfg = resolveConfig(presetName, overrides);
  cfg.task = o.task;
  cfg.out = f.out ?? join('runs', o.task === 'finetune' ? 'finetune' : presetName);
  const resumeDir = f.resume === undefined || f.resume === false ? null : f.resume === true ? cfg.out : f.resume;
  if (o.task === 'finetune' && !resumeDir) {
    if (cfg.data.kind !== 'image-folder') throw new ConfigError('finetune needs --images DIR (one sub-folder per class)');
    if (!cfg.weights) throw new ConfigError('finetune needs --weights FILE (pretrained weights or a checkpoint of an earlier run)');
    if (f.model === undefined) cfg.model = '';
  }
  const { checkOutLock, SAVE_PHASES } = await import('../train/checkpoint.js');
  if (!resumeDir) checkOutLock(cfg.out); // before the next check: "in use" says more than "already holds a checkpoint" (runTraining checks a resumed folder)
  if (!resumeDir && !f.overwrite && existsSync(join(cfg.out, 'last.json'))) {
    throw new ConfigError(`${cfg.out} already holds a checkpoint (last.json): continue it with --resume, choose another --out, or pass --overwrite`);
  }
  const backend = getBackend().name;
  const hooks = new ProgressPrinter({ stream: process.stderr, print: f.progress === false ? () => {} : err, bar: f.progress === false ? false : undefined });
  // notes (data found, checkpoints written, warnings) print even with --no-progress
  hooks.onMessage = (m: string) => {
    hooks.stopBar();
    err(m);
  };
  if (f.progress !== false) err(`backend: ${backend}${backend === 'wasm' ? ` (${(await import('../backend/wasm/index.js')).getThreads()} threads)` : ''}`);

  const ac = new AbortController();
  let sigints = 0;
  const onSigint = () => {
    sigints++;
    if (sigints === 1) {
      hooks.stopBar();
      err('interrupt: finishing this step and saving a checkpoint (Ctrl-C again to quit at once)');
      ac.abort();
    } else {
      err('interrupted again: quitting without saving');
      process.exit(130);
    }
  };
  const signal = o.signal ?? ac.signal;
  if (!o.signal) process.on('SIGINT', onSigint);
  let r: RunResult;
  try {
    r = await runTraining(cfg, {
      hooks, signal, strictFinite: f.strictFinite, command: `resnet ${process.argv.slice(2).join(' ')}`, onSavePhase: saveHook(err, SAVE_PHASES),
      resume: resumeDir ?? undefined,
      resumeOverrides: resumeDir ? { epochs: f.epochs, workers: f.workers, dataDir: f.dataDir, out: f.out } : undefined,
    });
  } finally {
    if (!o.signal) process.off('SIGINT', onSigint);
    hooks.stopBar();
  }
  if (r.interrupted) {
    err(`stopped after ${r.globalStep} steps; resume with: resnet ${o.task} --resume ${r.config.out}`);
    if (f.json) print(JSON.stringify({ interrupted: true, globalStep: r.globalStep, checkpoint: `${r.paths.last}.json` }));
    throw new CommanderError(130, 'resnet.interrupted', 'interrupted');
  }
  if (f.json) {
    print(JSON.stringify({
      summary: r.summary, final: r.final, best: r.best, history: r.history, classes: r.classes,
      checkpoint: `${r.paths.last}.safetensors`, bestCheckpoint: r.best ? `${r.paths.best}.safetensors` : null, curves: r.paths.curves,
    }));
  } else {
    err(`checkpoints: ${r.paths.last}.safetensors${r.best ? `, ${r.paths.best}.safetensors` : ''}; curves: ${r.paths.curves}; log: ${r.paths.metrics}`);
    print(r.summary);
  }
  return 0;
}
