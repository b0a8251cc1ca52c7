// A whole training or fine-tuning run from a TrainConfig: data, model (pretrained weights and a
// new head for fine-tuning), freezing, optimizer and schedule, resume, fit with checkpoints
// (last every epoch and on interrupt, best by validation accuracy), metrics.jsonl, curves.svg,
// class_indices.json, and a final summary. Node-only (files); the CLI is a thin layer on top.
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, StateDictError } from '../base/errors.js';
import { globalRng, manualSeed } from '../base/rng.js';
import { writeClassIndices } from '../data/image-folder.js';
import { DataLoader } from '../data/loader.js';
import '../data/loader-pool.js'; // worker threads for the DataLoader (Node)
import { writeBytesAtomic, writePthFile } from '../io/files.js';
import type { ArrayMap } from '../io/types.js';
import { checkInputSize, checkModelOptions, getModelEntry } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import { readStateArrays } from '../nn/state.js';
import { LRScheduler } from '../optim/schedule.js';
import {
  checkFiniteWeights,
  checkOutLock,
  cleanCheckpointDir,
  ensureWritableDir,
  type FiniteOptions,
  loadCheckpoint,
  lockOutDir,
  saveCheckpoint,
  type CheckpointMeta,
  type SavePhase,
} from './checkpoint.js';
import { buildData, buildModel, buildOptimizer, buildSchedule, validateConfig, type BuiltData, type TrainConfig } from './config.js';
import { applyResumeOverrides, type ResumeOverrides } from './options.js';
import type { EpochRecord, TrainHooks } from './progress.js';
import { trainingCurvesSvg } from './svg.js';
import { ModelEma } from './ema.js';
import { formatLoss } from './metrics.js';
import { NonFiniteLossError, NonFiniteOutputError, evaluate, fit, type FitState, type MetricsState } from './trainer.js';
import { findHead, freeze, loadPretrained } from './transfer.js';

export interface RunOptions {
  hooks?: TrainHooks;
  signal?: AbortSignal;
  /** Checkpoint to resume from (its config is used; see `resumeOverrides`). */
  resume?: string;
  /** The options a resumed run may change (marked `resume` in TRAIN_OPTIONS: epochs, workers, out, dataDir). */
  resumeOverrides?: ResumeOverrides;
  /** Stop after this many steps in total, saving as on Ctrl-C (tests). */
  maxSteps?: number;
  /** Called at each step of every save (`what`: 'last', 'best', or 'metrics' before the log and curves are written); tests stop the process there. */
  onSavePhase?: (what: string, phase: SavePhase | 'write') => void;
  /** The command line, recorded in the lock on --out (shown to a second run that is refused). */
  command?: string;
  /** Refuse loaded weights (pretrained, resumed) holding NaN or Inf; by default they get a warning. */
  strictFinite?: boolean;
}

export interface RunResult {
  config: TrainConfig;
  history: EpochRecord[];
  interrupted: boolean;
  epochsDone: number;
  globalStep: number;
  /** Final metrics on the evaluation set ('test' for Fashion-MNIST, 'val' for image folders). */
  final: {
    name: string;
    acc: number;
    /** top-1 without test-time augmentation (only with --tta). */ accNoTta?: number;
    loss: number;
    top5: number;
    perClassAcc: number[];
    confusion: number[][];
  } | null;
  best: CheckpointMeta['best'];
  classes: string[];
  paths: { last: string; best: string; metrics: string; curves: string };
  /** One line: test_acc=0.9123 test_loss=0.2500 ... */
  summary: string;
  model: Module;
}

function say(hooks: TrainHooks | undefined, m: string): void {
  hooks?.onMessage?.(m);
}

/**
 * Weights to start a fine-tune from, by the shared --weights rule (weights-source.ts): a pretrained
 * id (downloaded once into the cache), one of our checkpoints (sidecar), or a bare weights file.
 */
async function readPretrained(path: string, fin: FiniteOptions): Promise<{ weights: ArrayMap; meta: CheckpointMeta | null; file: string; model?: string }> {
  const { resolveWeights } = await import('./weights-source.js');
  const src = await resolveWeights(path, fin);
  return { weights: src.weights, meta: src.meta, file: src.file, ...(src.kind === 'pretrained' ? { model: src.model! } : {}) };
}

/** Input channels of bare weights: the first 4-D tensor's second dimension. */
function inferInChannels(w: ArrayMap): number | undefined {
  for (const a of w.values()) if (a.shape.length === 4) return a.shape[1];
  return undefined;
}

export async function runTraining(cfgIn: TrainConfig, o: RunOptions = {}): Promise<RunResult> {
  const hooks = o.hooks;
  let cfg: TrainConfig = structuredClone(cfgIn);
  let resume: ReturnType<typeof loadCheckpoint> | null = null;
  if (o.resume) {
    const rpath = isDir(o.resume) ? join(o.resume, 'last.json') : o.resume;
    checkOutLock(dirname(rpath)); // the run that writes it must not be alive
    resume = loadCheckpoint(rpath, { withOptimizer: true });
    if (!resume.meta.optimizer || !resume.meta.loader) {
      throw new ConfigError(`${resume.paths.meta} cannot be resumed (it holds weights only; resume from last.json)`);
    }
    cfg = structuredClone(resume.meta.config) as unknown as TrainConfig;
    cfg.saveFormat ??= 'safetensors'; // checkpoints from before --save-format existed
    applyResumeOverrides(cfg, o.resumeOverrides ?? {});
  }
  validateConfig(cfg);
  ensureWritableDir(cfg.out);
  // one run per folder: a second run, or a --resume while this one lives, is refused
  const lock = lockOutDir(cfg.out, o.command);
  try {
    if (lock.stale) say(hooks, `note: took over ${lock.path} from pid ${lock.stale.pid}, which is no longer running`);
    if (resume) say(hooks, `resuming from ${resume.paths.meta} (epoch ${resume.meta.epoch}, step ${resume.meta.globalStep})`);
    const removed = cleanCheckpointDir(cfg.out);
    if (removed.length)
      say(
        hooks,
        `removed ${removed.length} stale file(s) of an interrupted save from ${cfg.out}: ${removed.slice(0, 4).join(', ')}${removed.length > 4 ? ', …' : ''}`,
      );
    return await trainLocked(cfg, resume, o);
  } finally {
    lock.release();
  }
}

/** The run proper, holding the lock on cfg.out. */
async function trainLocked(cfg: TrainConfig, resume: ReturnType<typeof loadCheckpoint> | null, o: RunOptions): Promise<RunResult> {
  const hooks = o.hooks;
  const fin: FiniteOptions = { strictFinite: o.strictFinite, onWarning: (m) => say(hooks, `warning: ${m}`) };
  if (resume) checkFiniteWeights(resume.rawWeights ?? resume.weights, resume.paths.weights, fin);
  manualSeed(cfg.seed);

  // ---- model (before data for fine-tuning: the pretrained model decides the input channels)
  let pretrained: Awaited<ReturnType<typeof readPretrained>> | null = null;
  let modelName = cfg.model;
  const arch: Record<string, unknown> = { ...cfg.arch };
  if (cfg.task === 'finetune' && !resume) {
    if (!cfg.weights) throw new ConfigError('finetune needs --weights FILE (or --checkpoint of an earlier run)');
    pretrained = await readPretrained(cfg.weights, fin);
    if (pretrained.meta) {
      if (cfg.model && cfg.model !== pretrained.meta.model.name) {
        throw new ConfigError(`${pretrained.file} is a ${pretrained.meta.model.name} checkpoint, not ${cfg.model}`);
      }
      modelName = pretrained.meta.model.name;
      const { numClasses: _n, ...rest } = pretrained.meta.model.options;
      Object.assign(arch, rest, cfg.arch);
    } else {
      if (pretrained.model) {
        if (modelName && modelName !== pretrained.model) throw new ConfigError(`${cfg.weights} are weights for ${pretrained.model}, not ${modelName}`);
        modelName = pretrained.model;
      }
      if (!modelName) throw new ConfigError(`${pretrained.file} has no sidecar naming its model; pass --model`);
      if (arch.inChannels === undefined) {
        const ic = inferInChannels(pretrained.weights);
        if (ic !== undefined && ic !== 3) arch.inChannels = ic;
      }
    }
    cfg.model = modelName;
    cfg.arch = arch;
  }
  if (!cfg.model) throw new ConfigError('no model given (--model NAME)');
  checkModelOptions(cfg.model, getModelEntry(cfg.model).family, cfg.arch);
  const inChannels = (cfg.arch.inChannels as number | undefined) ?? (cfg.data.kind === 'fashion-mnist' ? 1 : 3);
  checkInputSize(cfg.model, cfg.data.size, inChannels, cfg.batchSize);

  // ---- data
  const data: BuiltData = await buildData(cfg, inChannels, (m) => say(hooks, `warning: ${m}`));
  say(
    hooks,
    `data: ${data.source}; ${data.train.length} training images${data.val ? `, ${data.val.length} ${data.valName}` : ''}${data.test ? `, ${data.test.length} test` : ''}; ${data.classes.length} classes`,
  );
  if (resume && resume.meta.classes.join('\n') !== data.classes.join('\n')) {
    throw new ConfigError(`the data's classes (${data.classes.join(', ')}) differ from the checkpoint's (${resume.meta.classes.join(', ')})`);
  }
  const numClasses = data.classes.length;
  if (cfg.arch.numClasses !== undefined && cfg.arch.numClasses !== numClasses) {
    throw new ConfigError(
      `--arch numClasses ${JSON.stringify(cfg.arch.numClasses)} does not match the data's ${numClasses} classes (leave it out: it is taken from the data)`,
    );
  }
  const options: Record<string, unknown> = { ...cfg.arch, numClasses };
  if (inChannels !== 3 || getFamily(cfg.model) !== 'torchvision') options.inChannels = inChannels;
  const model = buildModel(cfg.model, options);

  if (pretrained) {
    const w = new Map(pretrained.weights);
    const head = findHead(model).name;
    if (!cfg.keepHead) for (const k of [...w.keys()]) if (k === `${head}.weight` || k === `${head}.bias`) w.delete(k);
    const rep = loadPretrained(model, w, pretrained.file);
    say(hooks, rep.message + (cfg.keepHead ? '' : ` (${numClasses} classes: ${data.classes.slice(0, 8).join(', ')}${numClasses > 8 ? ', …' : ''})`));
  }
  if (resume) {
    try {
      // with an EMA, the weights file holds the average and the training weights are kept as raw.*
      model.loadStateDict(resume.rawWeights ?? resume.weights);
    } catch (e) {
      if (e instanceof StateDictError) throw new StateDictError(`${resume.paths.weights}: ${e.message}`);
      throw e;
    }
  }
  const fr = freeze(model, cfg.freeze);
  if (cfg.freeze !== 'none') {
    say(
      hooks,
      `froze ${fr.frozenModules.join(', ')} (${fr.frozenParams.toLocaleString('en-US')} parameters; ${fr.frozenBN.length} BatchNorm layers kept in eval mode); ${fr.trainableParams.toLocaleString('en-US')} trainable`,
    );
  }

  // ---- loaders, optimizer, schedule
  const n = data.train.length;
  const dropLast = n > cfg.batchSize && n % cfg.batchSize === 1; // a batch of one breaks BatchNorm
  const trainLoader = new DataLoader(data.train, {
    batchSize: cfg.batchSize,
    shuffle: true,
    dropLast,
    seed: cfg.seed,
    transform: data.trainTransform,
    numWorkers: cfg.workers,
  });
  const evalBatch = Math.max(cfg.batchSize, 256);
  const valLoader = data.val ? new DataLoader(data.val, { batchSize: evalBatch, transform: data.evalTransform, numWorkers: cfg.workers }) : null;
  const optimizer = buildOptimizer(cfg, model);
  const scheduler = new LRScheduler(optimizer, buildSchedule(cfg, trainLoader.length));
  const ema = cfg.ema > 0 ? new ModelEma(model, cfg.ema) : null;
  if (ema && resume) {
    if (resume.meta.ema) ema.load(resume.weights, resume.meta.ema.updates, resume.paths.weights);
    else say(hooks, `warning: ${resume.paths.meta} kept no EMA; the average starts afresh from the current weights`);
  }

  let history: EpochRecord[] = [];
  let best: CheckpointMeta['best'] = null;
  let epochProgress: MetricsState | null = null;
  let globalStep = 0;
  if (resume) {
    try {
      optimizer.loadStateDict(resume.optimizer!);
    } catch (e) {
      if (e instanceof StateDictError) throw new StateDictError(`${resume.paths.optim}: ${e.message}`);
      throw e;
    }
    scheduler.loadStateDict(resume.meta.scheduler!);
    trainLoader.setState(resume.meta.loader!);
    if (resume.meta.rng) globalRng.setState(resume.meta.rng.global);
    history = resume.meta.history as EpochRecord[];
    best = resume.meta.best;
    epochProgress = resume.meta.epochProgress as MetricsState | null;
    globalStep = resume.meta.globalStep;
  }

  const out = cfg.out;
  const paths = { last: join(out, 'last'), best: join(out, 'best'), metrics: join(out, 'metrics.jsonl'), curves: join(out, 'curves.svg') };
  const metaBase = {
    model: { name: cfg.model, options },
    classes: data.classes,
    input: data.input,
    evalTransform: data.evalTransform.spec(),
    config: cfg as unknown as Record<string, unknown>,
  };
  writeClassIndices(join(out, 'class_indices.json'), data.classes);
  let lastSaved: { epoch: number; step: number } | null = resume ? { epoch: resume.meta.epoch, step: resume.meta.globalStep } : null;

  const onCheckpoint = async (s: FitState) => {
    const meta = {
      ...metaBase,
      epoch: s.epoch,
      globalStep: s.globalStep,
      loader: trainLoader.getState(),
      epochProgress: s.epochProgress as unknown as Record<string, unknown> | null,
      scheduler: scheduler.stateDict(),
      rng: { global: globalRng.getState() },
      history: s.history as unknown as Record<string, unknown>[],
      best,
      metrics: (s.record ?? {}) as Record<string, unknown>,
      ema: ema ? { decay: ema.decay, updates: ema.updates } : null,
      note: s.reason === 'interrupt' ? `interrupted during epoch ${s.epoch + 1}` : undefined,
    };
    // with an EMA, the average is what was evaluated, so it is what the weights files hold
    // read asynchronously (every backend, webgpu too); fit waits for this callback, so nothing moves meanwhile
    const [own, weights, optimState] = await Promise.all([readStateArrays(model), ema ? ema.readArrays(model) : undefined, optimizer.readStateDict()]);
    if (s.record && typeof s.record.val_acc === 'number' && (!best || s.record.val_acc > best.value)) {
      best = { metric: `${data.valName}_acc`, value: s.record.val_acc, epoch: s.record.epoch };
      meta.best = best;
      saveCheckpoint(paths.best, {
        model,
        weights: weights ?? own,
        meta: { ...meta, loader: null, epochProgress: null, scheduler: null, rng: null, note: 'best' },
        onPhase: (ph) => o.onSavePhase?.('best', ph),
      });
      if (cfg.saveFormat === 'pth') writePthFile(`${paths.best}.pth`, weights ?? own);
      say(hooks, `new best ${best.metric}=${best.value.toFixed(4)} (epoch ${best.epoch}): ${paths.best}.safetensors`);
    }
    saveCheckpoint(paths.last, {
      model,
      weights: weights ?? own,
      rawWeights: ema ? own : undefined,
      meta,
      optimizer: optimState,
      onPhase: (ph) => o.onSavePhase?.('last', ph),
    });
    // The safetensors checkpoint stays the one to resume from; the .pth is a copy of its weights for PyTorch.
    if (cfg.saveFormat === 'pth') writePthFile(`${paths.last}.pth`, weights ?? own);
    lastSaved = { epoch: s.epoch, step: s.globalStep };
    o.onSavePhase?.('metrics', 'write');
    writeBytesAtomic(paths.metrics, new TextEncoder().encode(s.history.map((r) => JSON.stringify(r)).join('\n') + (s.history.length ? '\n' : '')));
    if (s.history.length) {
      writeBytesAtomic(
        paths.curves,
        new TextEncoder().encode(trainingCurvesSvg(s.history, `${cfg.model} on ${cfg.data.kind === 'fashion-mnist' ? 'Fashion-MNIST' : cfg.data.root}`)),
      );
    }
    if (s.reason === 'interrupt') say(hooks, `saved ${paths.last}.json at epoch ${s.epoch + 1}, step ${s.globalStep}`);
  };

  const totalParams = model.numParameters();
  say(
    hooks,
    `model: ${cfg.model} (${totalParams.toLocaleString('en-US')} parameters, ${numClasses} classes, ${inChannels} input channel${inChannels > 1 ? 's' : ''}); ` +
      `${cfg.optimizer} lr ${cfg.lr}${cfg.headLrMult !== 1 ? ` (head x${cfg.headLrMult})` : ''}, batch ${cfg.batchSize}, ${cfg.epochs} epochs, schedule ${cfg.schedule}; out ${out}`,
  );

  let result;
  try {
    result = await fit({
      model,
      optimizer,
      scheduler,
      train: trainLoader,
      val: valLoader,
      valName: data.valName,
      numClasses,
      epochs: cfg.epochs,
      labelSmoothing: cfg.labelSmoothing,
      clipGradNorm: cfg.clipGradNorm,
      ema,
      tta: cfg.tta,
      frozenBN: fr.frozenBN,
      hooks,
      signal: o.signal,
      onCheckpoint,
      globalStep,
      history,
      epochProgress,
      maxSteps: o.maxSteps,
    });
  } catch (e) {
    await closeAll(trainLoader, valLoader);
    if (e instanceof NonFiniteLossError || e instanceof NonFiniteOutputError) {
      const keep = lastSaved
        ? `the last good checkpoint is ${paths.last}.json (epoch ${lastSaved.epoch}, step ${lastSaved.step})`
        : 'no checkpoint had been written yet';
      throw new NonFiniteLossError(
        `${e.message}${e instanceof NonFiniteOutputError ? '; training stopped (lower the learning rate or clip gradients)' : ''}; ${keep}`,
      );
    }
    throw e;
  }

  // from here on the model is the average: the final test, the returned model and predictions use it
  if (ema) ema.copyTo(model);
  let final: RunResult['final'] = null;
  const lastRec = result.history[result.history.length - 1];
  if (!result.interrupted) {
    if (data.test) {
      const tl = new DataLoader(data.test, { batchSize: evalBatch, transform: data.evalTransform, numWorkers: cfg.workers });
      const r = await evaluate(model, tl, { numClasses, hooks, label: 'test', tta: cfg.tta });
      await tl.close();
      final = { name: 'test', acc: r.acc, accNoTta: r.accNoTta, loss: r.loss, top5: r.topk, perClassAcc: r.perClassAcc, confusion: r.confusion };
    } else if (valLoader) {
      const r = result.lastEval ?? (await evaluate(model, valLoader, { numClasses, hooks, label: data.valName, tta: cfg.tta }));
      final = { name: data.valName, acc: r.acc, accNoTta: r.accNoTta, loss: r.loss, top5: r.topk, perClassAcc: r.perClassAcc, confusion: r.confusion };
    }
  }
  await closeAll(trainLoader, valLoader);
  const parts: string[] = [];
  if (final)
    parts.push(`${final.name}_acc=${final.acc.toFixed(4)}`, `${final.name}_loss=${formatLoss(final.loss)}`, `${final.name}_top5=${final.top5.toFixed(4)}`);
  else if (lastRec) parts.push(`train_acc=${lastRec.train_acc.toFixed(4)}`, `train_loss=${formatLoss(lastRec.train_loss)}`);
  if (final?.accNoTta !== undefined) parts.push(`tta=${cfg.tta}`, `${final.name}_acc_no_tta=${final.accNoTta.toFixed(4)}`);
  if (best) parts.push(`best_${best.metric}=${best.value.toFixed(4)}@${best.epoch}`);
  parts.push(`epochs=${result.epochsDone}/${cfg.epochs}`);
  if (lastRec) parts.push(`epoch_time_s=${lastRec.epoch_time_s.toFixed(1)}`);
  return {
    config: cfg,
    history: result.history,
    interrupted: result.interrupted,
    epochsDone: result.epochsDone,
    globalStep: result.globalStep,
    final,
    best,
    classes: data.classes,
    paths,
    summary: parts.join(' '),
    model,
  };
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

async function closeAll(...ls: (DataLoader | null)[]): Promise<void> {
  for (const l of ls) if (l) await l.close().catch(() => {});
}

function getFamily(name: string): string {
  return getModelEntry(name).family;
}
