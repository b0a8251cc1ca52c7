// fit / evaluate / predict: the training loop. Every step runs inside a memory scope (nothing
// made during a step outlives it but the parameters, their optimizer state, and the logits copied
// out), so memory does not grow with the number of steps. Browser-safe: no files, no console;
// progress goes to hooks, checkpoints to a callback.
import { ResnetError } from '../base/errors.js';
import type { Batch, DataLoader } from '../data/loader.js';
import type { Module } from '../nn/module.js';
import { tryFuseForInference, type FusedModel } from '../models/fused.js';
import { clipGradNorm } from '../optim/clip.js';
import type { AnyOptimizer } from '../optim/optimizer.js';
import type { LRScheduler } from '../optim/schedule.js';
import { getBackend } from '../backend/registry.js';
import { add, affineScalar, crossEntropy, mulScalar, sum, tensor } from '../tensor/ops.js';
import { noGrad, scope, type Tensor } from '../tensor/tensor.js';
import type { ModelEma } from './ema.js';
import { ClassificationMetrics, type ClassificationResult } from './metrics.js';
import type { EpochRecord, TrainHooks } from './hooks.js';

/** The loss became NaN or infinite: training stops; the last good checkpoint stays as it was. */
export class NonFiniteLossError extends ResnetError {}

/** The model computed NaN or Inf logits while evaluating or predicting: no number is reported from them. */
export class NonFiniteOutputError extends ResnetError {}

/** Index of the first NaN/Inf value, or -1. */
export function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}

export type MetricsState = ReturnType<ClassificationMetrics['getState']>;

/** What the checkpoint callback gets. */
export interface FitState {
  reason: 'epoch' | 'interrupt';
  /** Completed epochs. */
  epoch: number;
  globalStep: number;
  /** Metrics of the just-finished epoch (reason 'epoch'). */
  record: EpochRecord | null;
  /** Running train metrics of the unfinished epoch (reason 'interrupt'). */
  epochProgress: MetricsState | null;
  history: EpochRecord[];
}

export interface FitOptions {
  model: Module;
  optimizer: AnyOptimizer;
  /** Stepped once per iteration. */
  scheduler?: LRScheduler | null;
  train: DataLoader;
  /** Evaluated after every epoch. */
  val?: DataLoader | null;
  /** Name of the evaluation set in records ('val' or 'test'; default 'val'). */
  valName?: string;
  numClasses: number;
  /** Total epochs; training starts where `train`'s loader state points. */
  epochs: number;
  labelSmoothing?: number;
  /** Clip gradients to this global L2 norm. */
  clipGradNorm?: number | null;
  /** A moving average of the weights, updated after every step; evaluation uses it. */
  ema?: ModelEma | null;
  /** Test-time augmentation of the per-epoch evaluation. */
  tta?: 'none' | 'flip';
  /** BatchNorm layers of a frozen backbone: kept in eval mode while the rest trains. */
  frozenBN?: readonly Module[];
  hooks?: TrainHooks;
  /** Abort (Ctrl-C): the current step finishes, onCheckpoint('interrupt') runs, fit returns. */
  signal?: AbortSignal;
  /** Save here: called after each epoch and on interrupt. */
  onCheckpoint?: (s: FitState) => void | Promise<void>;
  /** Resume state: steps done so far, history, and the running metrics of an interrupted epoch. */
  globalStep?: number;
  history?: EpochRecord[];
  epochProgress?: MetricsState | null;
  /** Stop after this many steps in total (tests: simulate a kill at an exact step). */
  maxSteps?: number;
  /**
   * Read the losses and logits back (for metrics, onStep and the non-finite check) every this
   * many steps; default 1 on backends that read synchronously (ref, wasm), 16 on webgpu.
   */
  readEvery?: number;
}

export interface FitResult {
  history: EpochRecord[];
  interrupted: boolean;
  globalStep: number;
  epochsDone: number;
  /** The last evaluation of `val` (null when none ran). */
  lastEval: (ClassificationResult & { seconds: number; accNoTta?: number }) | null;
}

function setTrainMode(model: Module, frozenBN: readonly Module[] | undefined): void {
  model.train();
  if (frozenBN) for (const m of frozenBN) m.train(false);
}

function currentLr(opt: AnyOptimizer): number {
  // the largest group lr is the backbone's or the head's, whichever leads
  return opt.paramGroups.reduce((m, g) => Math.max(m, g.lr), 0);
}

/** A training step's results still on the device, kept out of every scope: the caller disposes them. */
interface DeviceStep {
  /** The batch's mean loss, shape [1]. */
  loss: Tensor;
  logits: Tensor;
  /** The total gradient norm before clipping, [1] (null without clipping). */
  norm: Tensor | null;
}

type StepOptions = { model: Module; optimizer: AnyOptimizer; labelSmoothing?: number; clipGradNorm?: number | null };

/**
 * Forward, backward, clip, optimizer step, with nothing read back on a backend that cannot read
 * synchronously (webgpu): the loss, logits and gradient norm stay on the device for the caller
 * to read when it wants them (checkStep). A backend with readSync (ref, wasm: a read is a memory
 * copy) checks the loss before the backward and the norm before the update, so a non-finite
 * value stops training before it reaches the weights.
 */
function deviceStep(o: StepOptions, batch: Pick<Batch, 'x' | 'shape' | 'y'>, where: string): DeviceStep {
  return scope(() => {
    const x = tensor(batch.x, batch.shape);
    const logits = o.model.forward(x);
    const loss = crossEntropy(logits, batch.y, o.labelSmoothing ?? 0);
    const eager = logits.backend.readSync !== undefined;
    if (eager) checkLoss(loss.item(), where);
    o.optimizer.zeroGrad();
    loss.backward();
    let norm: Tensor | null = null;
    if (o.clipGradNorm) {
      norm = clipGradNorm(
        o.optimizer.paramGroups.flatMap((g) => g.params),
        o.clipGradNorm,
      );
      if (eager) checkNorm(norm.item(), where);
    }
    noGrad(() => o.optimizer.step());
    o.optimizer.zeroGrad();
    return { loss: loss.keep(), logits: logits.keep(), norm: norm?.keep() ?? null };
  });
}

function checkLoss(lv: number, where: string): void {
  if (!Number.isFinite(lv)) throw new NonFiniteLossError(`the loss became ${lv}${where}; training stopped (lower the learning rate or clip gradients)`);
}

function checkNorm(norm: number, where: string): void {
  if (!Number.isFinite(norm)) throw new NonFiniteLossError(`the gradient norm became ${norm}${where}; training stopped`);
}

function disposeStep(s: DeviceStep): void {
  s.loss.dispose();
  s.logits.dispose();
  s.norm?.dispose();
}

/** Read a step's values (asynchronously: works on every backend) and check them; frees the step's tensors. */
async function readStep(s: DeviceStep, where: string): Promise<{ loss: number; logits: Float32Array }> {
  try {
    const [l, logits, n] = await Promise.all([s.loss.data(), s.logits.data(), s.norm?.data()]);
    checkLoss(l[0], where);
    if (n) checkNorm(n[0], where);
    return { loss: l[0], logits };
  } finally {
    disposeStep(s);
  }
}

/**
 * One training step on a batch; returns the loss and a copy of the logits. Synchronous, so it
 * needs a backend that reads synchronously (ref, wasm); trainStepAsync works on every backend.
 */
export function trainStep(o: StepOptions, batch: Pick<Batch, 'x' | 'shape' | 'y'>, where = ''): { loss: number; logits: Float32Array } {
  const s = deviceStep(o, batch, where);
  try {
    return { loss: s.loss.item(), logits: s.logits.dataSync() };
  } finally {
    disposeStep(s);
  }
}

/** trainStep on any backend (webgpu too): the values are read once the step has been queued. */
export async function trainStepAsync(o: StepOptions, batch: Pick<Batch, 'x' | 'shape' | 'y'>, where = ''): Promise<{ loss: number; logits: Float32Array }> {
  return readStep(deviceStep(o, batch, where), where);
}

export async function fit(o: FitOptions): Promise<FitResult> {
  const history = [...(o.history ?? [])];
  let globalStep = o.globalStep ?? 0;
  const valName = o.valName ?? 'val';
  const steps = o.train.length;
  let resumeProgress = o.epochProgress ?? null;
  let lastEval: FitResult['lastEval'] = null;
  const readEvery = Math.max(1, o.readEvery ?? ((o.model.parameters()[0]?.backend ?? getBackend()).readSync ? 1 : 16));
  for (let epoch = o.train.getState().epoch; epoch < o.epochs; epoch++) {
    const startStep = o.train.getState().epoch === epoch ? o.train.getState().batch : 0;
    setTrainMode(o.model, o.frozenBN);
    const metrics = new ClassificationMetrics(o.numClasses);
    if (resumeProgress && startStep > 0) metrics.setState(resumeProgress);
    resumeProgress = null;
    o.hooks?.onEpochStart?.({ phase: 'train', epoch: epoch + 1, epochs: o.epochs, steps, startStep });
    const t0 = performance.now();
    let images = 0;
    let interrupted = false;
    let lastLr = currentLr(o.optimizer);
    // Steps queue on the device; their losses and logits are read every `readEvery` steps (and
    // before anything that needs them), so a GPU is never made to wait for the host each step.
    const pending: { s: DeviceStep; y: Int32Array; done: number; lr: number; where: string }[] = [];
    const flush = async () => {
      const batch = pending.splice(0);
      try {
        const vals = await Promise.all(batch.map((p) => readStep(p.s, p.where)));
        batch.forEach((p, i) => {
          metrics.update(vals[i].logits, p.y, vals[i].loss);
          const el = (performance.now() - t0) / 1000;
          const r = metrics.result();
          o.hooks?.onStep?.({
            phase: 'train',
            epoch: epoch + 1,
            epochs: o.epochs,
            step: p.done,
            steps,
            loss: r.loss,
            acc: r.acc,
            lr: p.lr,
            imagesPerSec: (r.count - countAtStart) / Math.max(el, 1e-9),
            etaSec: ((steps - p.done) * el) / Math.max(1, p.done - startStep),
          });
        });
      } finally {
        for (const p of batch) disposeStep(p.s); // after an error: the steps not read yet
      }
    };
    const countAtStart = metrics.count;
    try {
      for await (const batch of o.train.epochBatches(epoch, startStep)) {
        const where = ` at epoch ${epoch + 1}, step ${batch.index + 1} (lr ${currentLr(o.optimizer).toPrecision(3)})`;
        const s = deviceStep(o, batch, where);
        pending.push({ s, y: Int32Array.from(batch.y), done: batch.index + 1, lr: currentLr(o.optimizer), where });
        o.ema?.update(o.model);
        lastLr = currentLr(o.optimizer);
        o.scheduler?.step();
        globalStep++;
        images += batch.y.length;
        const done = batch.index + 1;
        if (pending.length >= readEvery || done === steps) await flush();
        // let timers and signal handlers run (Ctrl-C, progress redraws): without workers the loader
        // resolves in microtasks only, and the loop would never yield to the event loop
        await yieldToEventLoop();
        if (o.signal?.aborted || (o.maxSteps !== undefined && globalStep >= o.maxSteps)) {
          await flush();
          interrupted = done < steps || o.signal?.aborted === true;
          if (interrupted && done < steps) {
            o.hooks?.onPhaseEnd?.('train');
            if (!(await allFinite(o.model))) throw new NonFiniteLossError(`the weights became non-finite during epoch ${epoch + 1}; not saved`);
            await o.onCheckpoint?.({ reason: 'interrupt', epoch, globalStep, record: null, epochProgress: metrics.getState(), history });
            return { history, interrupted: true, globalStep, epochsDone: epoch, lastEval };
          }
          break;
        }
      }
      await flush();
    } finally {
      for (const p of pending.splice(0)) disposeStep(p.s);
    }
    o.hooks?.onPhaseEnd?.('train');
    if (!(await allFinite(o.model))) {
      throw new NonFiniteLossError(
        `the weights became non-finite during epoch ${epoch + 1} (lr ${lastLr.toPrecision(3)}); training stopped (lower the learning rate or clip gradients)`,
      );
    }
    const tr = metrics.result();
    const trainTime = (performance.now() - t0) / 1000;
    const rec: EpochRecord = {
      epoch: epoch + 1,
      train_loss: tr.loss,
      train_acc: tr.acc,
      lr: lastLr,
      epoch_time_s: trainTime,
      images_per_s: images / Math.max(trainTime, 1e-9),
    };
    if (o.val) {
      const ev = () => evaluate(o.model, o.val!, { numClasses: o.numClasses, hooks: o.hooks, label: `${valName} ${epoch + 1}/${o.epochs}`, tta: o.tta });
      const v = o.ema ? await o.ema.withAveraged(o.model, ev) : await ev();
      lastEval = v;
      Object.assign(rec, { val_name: valName, val_loss: v.loss, val_acc: v.acc, val_top5: v.topk, eval_time_s: v.seconds });
      if (v.accNoTta !== undefined) Object.assign(rec, { val_tta: o.tta, val_acc_no_tta: v.accNoTta });
    }
    history.push(rec);
    o.hooks?.onEpochEnd?.(rec);
    await o.onCheckpoint?.({ reason: 'epoch', epoch: epoch + 1, globalStep, record: rec, epochProgress: null, history });
    if (interrupted || o.signal?.aborted || (o.maxSteps !== undefined && globalStep >= o.maxSteps)) {
      return { history, interrupted: epoch + 1 < o.epochs, globalStep, epochsDone: epoch + 1, lastEval };
    }
  }
  return { history, interrupted: false, globalStep, epochsDone: Math.max(o.epochs, 0), lastEval };
}

export interface EvaluateOptions {
  numClasses: number;
  hooks?: TrainHooks;
  label?: string;
  topK?: number;
  signal?: AbortSignal;
  /** 'flip': the logits are the mean over the image and its mirror image (the loss is of that mean). */
  tta?: 'none' | 'flip';
}

/** Mirror a batch [N, C, H, W] left to right (the last axis). */
export function hflipBatch(x: Float32Array, shape: readonly number[]): Float32Array {
  const w = shape[shape.length - 1];
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length; r += w) for (let i = 0; i < w; i++) out[r + i] = x[r + w - 1 - i];
  return out;
}

/**
 * Loss (plain cross-entropy), top-1/top-k, per-class accuracy and confusion matrix over a loader.
 * With tta 'flip' these are of the averaged logits, and `accNoTta` is the top-1 of the plain pass.
 */
export async function evaluate(model: Module, loader: DataLoader, o: EvaluateOptions): Promise<ClassificationResult & { seconds: number; accNoTta?: number }> {
  const wasTraining = model.training;
  const modes = [...model.namedModules()].map(([, m]) => m.training);
  model.eval();
  const metrics = new ClassificationMetrics(o.numClasses, o.topK ?? 5);
  const tta = o.tta === 'flip';
  const plain = tta ? new ClassificationMetrics(o.numClasses, o.topK ?? 5) : null;
  const steps = loader.length;
  const t0 = performance.now();
  // BN folded into the convs for this pass (models/fused.ts); the model's own forward for custom models
  const fused = tryFuseForInference(model);
  o.hooks?.onEpochStart?.({ phase: 'eval', epoch: 1, epochs: 1, steps, startStep: 0, label: o.label ?? 'eval' });
  try {
    let images = 0;
    for await (const batch of loader.epochBatches(0, 0)) {
      // the outputs leave the scope kept, are read (asynchronously: any backend), then freed
      const out = scope(() =>
        noGrad(() => {
          const m = fused ?? model;
          let y = m.forward(tensor(batch.x, batch.shape));
          const first = tta ? y.keep() : null;
          if (tta) y = mulScalar(add(y, m.forward(tensor(hflipBatch(batch.x, batch.shape), batch.shape))), 0.5);
          return { loss: crossEntropy(y, batch.y).keep(), logits: y.keep(), first };
        }),
      );
      let loss: number, logits: Float32Array;
      try {
        const [l, lg, f] = await Promise.all([out.loss.data(), out.logits.data(), out.first?.data()]);
        if (f) plain!.update(f, batch.y, 0);
        loss = l[0];
        logits = lg;
      } finally {
        for (const t of [out.loss, out.logits, out.first]) t?.dispose();
      }
      const bad = firstNonFinite(logits);
      if (bad >= 0) {
        const C = logits.length / batch.y.length;
        throw new NonFiniteOutputError(
          `the model's output is non-finite (${logits[bad]}) for image ${batch.index * loader.batchSize + Math.floor(bad / C) + 1} of the ${o.label ?? 'evaluation'} set; no accuracy is computed from it`,
        );
      }
      metrics.update(logits, batch.y, loss);
      images += batch.y.length;
      const el = (performance.now() - t0) / 1000;
      const r = metrics.result();
      o.hooks?.onStep?.({
        phase: 'eval',
        epoch: 1,
        epochs: 1,
        step: batch.index + 1,
        steps,
        loss: r.loss,
        acc: r.acc,
        lr: 0,
        imagesPerSec: images / Math.max(el, 1e-9),
        etaSec: ((steps - batch.index - 1) * el) / (batch.index + 1),
      });
      await yieldToEventLoop();
      if (o.signal?.aborted) break;
    }
  } finally {
    fused?.dispose();
    o.hooks?.onPhaseEnd?.('eval');
    [...model.namedModules()].forEach(([, m], i) => (m.training = modes[i]));
    if (wasTraining !== model.training) model.training = wasTraining;
  }
  const r = metrics.result();
  return { ...r, seconds: (performance.now() - t0) / 1000, ...(plain ? { accNoTta: plain.result().acc } : {}) };
}

/** A macrotask boundary (setImmediate in Node, setTimeout elsewhere). */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  return new Promise((resolve) => (g.setImmediate ? g.setImmediate(resolve) : setTimeout(resolve, 0)));
}

/** Logits [N, C] for a batch of images (eval mode, no graph): a model in eval mode, or a fused copy. */
export async function predictLogits(model: Module | FusedModel, x: Float32Array, shape: [number, number, number, number]): Promise<Float32Array> {
  const y = scope(() => noGrad(() => (model.forward(tensor(x, shape)) as Tensor).keep()));
  try {
    return await y.data();
  } finally {
    y.dispose();
  }
}

/** True when every parameter and buffer is finite: one reduction on the device, one value read. */
export async function allFinite(model: Module): Promise<boolean> {
  const probe = scope(() =>
    noGrad(() => {
      // x*0 is 0 for finite x and NaN for NaN and ±Infinity; the sum of those is NaN once any is
      let acc: Tensor | null = null;
      for (const t of model.stateDict().values()) {
        const s = sum(affineScalar(t, 0, 0));
        acc = acc ? add(acc, s) : s;
      }
      return acc?.keep() ?? null;
    }),
  );
  if (!probe) return true;
  try {
    return Number.isFinite((await probe.data())[0]);
  } finally {
    probe.dispose();
  }
}
