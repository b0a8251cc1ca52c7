// `resnet train` (and the shared machinery of `resnet finetune`): flags → TrainConfig, backend,
// Ctrl-C handling, progress on the terminal, and the final summary line.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CommanderError, type Command } from 'commander';
import { ConfigError } from '../base/errors.js';
import { getBackend } from '../backend/registry.js';
import {
  optionFlag,
  optionNames,
  optionSpec,
  parseOption,
  resumeOverrides,
  setOption,
  type ConfigOverrides,
  type DataConfig,
  type OptionName,
} from '../train/options.js';
import { ProgressPrinter } from '../train/progress.js';
import type { RunResult } from '../train/run.js';
import { parseArch } from './util.js';
// run.js (data, sharp, models) and presets.js are imported when a command runs, so that building
// the command-line program stays light.

export type Printer = (s: string) => void;

const TYPE_ARG: Record<string, string> = { int: 'n', number: 'x', workers: 'n', ints: 'list', choice: 'name', string: 'value', object: 'json' };

/** The commander attribute of an option's flag (--images → images); the key itself when it has no flag. */
function flagAttribute(option: OptionName): string {
  const flag = optionFlag(option);
  return flag ? flag.slice(2).replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase()) : option;
}

/** The flags of train or finetune: the options of TRAIN_OPTIONS that the command has, then the run's own. */
export function addTrainingOptions(c: Command, o: { preset: string; command: 'train' | 'finetune' }): Command {
  c.option('--preset <name>', `recipe to start from (default ${o.preset}; see \`resnet presets\`)`);
  for (const k of optionNames()) {
    const s = optionSpec(k);
    const flag = optionFlag(k);
    if (!flag || !(s.commands ?? [o.command]).includes(o.command)) continue;
    if (s.type === 'boolean') {
      c.option(flag, s.help);
      if (s.negatable) c.option(`--no-${flag.slice(2)}`, s.negatable);
    } else {
      c.option(`${flag} <${s.arg ?? TYPE_ARG[s.type]}>`, s.help, (text: string) => (k === 'arch' ? parseArch(text) : parseOption(k, text)));
    }
  }
  return c
    .option('--resume [dir]', 'continue the run saved in DIR (default: --out) exactly where it stopped')
    .option('--overwrite', 'start afresh even if --out already holds a checkpoint')
    .option('--strict-finite', 'refuse loaded weights (--weights, --resume) holding NaN or Inf (default: a warning)')
    .option('--json', 'print the final result as one JSON object')
    .option('--no-progress', 'no progress bar or progress lines');
}

/** Parsed flags: the table's options under their flags' attribute names (images, valImages, …), and the run's own. */
export interface TrainFlags {
  [attribute: string]: unknown;
  preset?: string;
  model?: string;
  out?: string;
  epochs?: number;
  workers?: number | 'auto';
  images?: string;
  resume?: string | boolean;
  overwrite?: boolean;
  json?: boolean;
  progress?: boolean;
  /** Refuse loaded weights (--weights, --resume) holding NaN or Inf instead of warning. */
  strictFinite?: boolean;
  /** finetune: same as --weights. */
  checkpoint?: string;
  /** Fashion-MNIST: allow the download when not found locally (no flag; the demo turns it off after its own try). */
  download?: boolean;
}

/** Flags → config overrides (only what was given). */
export function flagsToOverrides(f: TrainFlags): ConfigOverrides & { data: Partial<DataConfig> } {
  const o: ConfigOverrides & { data: Partial<DataConfig> } = { data: {} };
  for (const k of optionNames()) {
    const v = f[flagAttribute(k)];
    if (v !== undefined) setOption(o, k, v);
  }
  if (o.weights === undefined && f.checkpoint !== undefined) o.weights = f.checkpoint;
  if (o.data.root) o.data.kind = 'image-folder';
  return o;
}

export interface RunCliOptions {
  task: 'train' | 'finetune';
  defaultPreset: string;
  /** Injected for tests; default: process signals. */
  signal?: AbortSignal;
}

/**
 * Test hook: with RESNET_TS_SAVE_HOOK set, each step of every save prints `save-phase WHAT PHASE`
 * on stderr (and each training step `train-step EPOCH:STEP`); RESNET_TS_SAVE_HOOK=WHAT:PHASE:MS (e.g. last:switched:300) also stops there for MS
 * milliseconds, so a test can kill the process inside that step (test/checkpoint-kill.test.ts).
 */
function saveHook(err: Printer, phases: readonly string[]): ((what: string, phase: string) => void) | undefined {
  const spec = process.env.RESNET_TS_SAVE_HOOK;
  if (spec === undefined) return undefined;
  const [pw, pp, pms] = spec.split(':');
  if (pw && !(['last', 'best', 'metrics'].includes(pw) && [...phases, 'write'].includes(pp) && Number(pms) > 0)) {
    throw new ConfigError(
      `RESNET_TS_SAVE_HOOK must be empty or WHAT:PHASE:MS with WHAT last, best or metrics and PHASE one of ${phases.join(', ')}, write; got '${spec}'`,
    );
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
  const resumeOv = resumeDir ? resumeOverrides(overrides) : undefined;
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
  if (process.env.RESNET_TS_SAVE_HOOK !== undefined) {
    // the test hook (see saveHook) also marks every training step, for kills at random steps
    const onStep = hooks.onStep.bind(hooks);
    hooks.onStep = (s) => {
      onStep(s);
      if (s.phase === 'train') err(`train-step ${s.epoch}:${s.step}`);
    };
  }
  if (f.progress !== false) err(`backend: ${backend}${backend === 'wasm' ? ` (${(await import('../backend/wasm/settings.js')).getThreads()} threads)` : ''}`);

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
      hooks,
      signal,
      strictFinite: f.strictFinite,
      command: `resnet ${process.argv.slice(2).join(' ')}`,
      onSavePhase: saveHook(err, SAVE_PHASES),
      resume: resumeDir ?? undefined,
      resumeOverrides: resumeOv,
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
    print(
      JSON.stringify({
        summary: r.summary,
        final: r.final,
        best: r.best,
        history: r.history,
        classes: r.classes,
        checkpoint: `${r.paths.last}.safetensors`,
        bestCheckpoint: r.best ? `${r.paths.best}.safetensors` : null,
        curves: r.paths.curves,
      }),
    );
  } else {
    err(`checkpoints: ${r.paths.last}.safetensors${r.best ? `, ${r.paths.best}.safetensors` : ''}; curves: ${r.paths.curves}; log: ${r.paths.metrics}`);
    print(r.summary);
  }
  return 0;
}
