// Checkpoints: the model's weights as a safetensors file with torchvision key names (loadable by
// any safetensors reader, and by `resnet forward --weights`), a JSON sidecar with everything else
// (model name and options, classes, input and eval transform, training config, epoch, optimizer
// hyper-parameters and step counts, scheduler and loader state, RNG state, metric history), and,
// for resumable checkpoints, the optimizer's buffers in a second safetensors file.
//
//   out/last.safetensors        weights            (metadata: checkpoint_id)
//   out/last.optim.safetensors  optimizer buffers  (metadata: checkpoint_id); with an EMA, also
//                               the raw training weights as 'raw.<key>' (the weights file holds
//                               the average: what was evaluated and what eval/predict use)
//   out/last.json               sidecar            (id, file names, state)
//
// Every file is written to a temporary name and renamed over the old one; the sidecar goes last,
// and all three carry the same random id, so a checkpoint torn by a crash between renames is
// detected on load instead of being silently mixed. Node-only (files).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError, FormatError, ResnetError, StateDictError } from '../base/errors.js';
import { readSafetensorsFile, readSafetensorsMetadataFile, writeBytesAtomic } from '../io/files.js';
import { writeSafetensors } from '../io/safetensors.js';
import type { ArrayMap } from '../io/types.js';
import type { Module } from '../nn/module.js';
import { stateDictToArrays, type TaggedArray } from '../nn/state.js';
import type { OptimizerStateDict } from '../optim/optimizer.js';

export const CHECKPOINT_FORMAT = 'resnet-ts-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface CheckpointInput {
  channels: number;
  /** Native input size of the training data ([h, w]); null when images vary (image folders). */
  size: [number, number] | null;
  mode: 'gray' | 'rgb';
}

/** The JSON sidecar. Everything but the tensors. */
export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  id: string;
  created: string;
  weights: string;
  optimizerFile: string | null;
  model: { name: string; options: Record<string, unknown> };
  classes: string[];
  input: CheckpointInput;
  /** TransformSpec of the evaluation pipeline (rebuilt by predict/eval). */
  evalTransform: unknown;
  /** The training configuration (see train/config.ts). */
  config: Record<string, unknown>;
  /** Completed epochs. */
  epoch: number;
  globalStep: number;
  /** DataLoader state of the next batch. */
  loader: { seed: number; epoch: number; batch: number } | null;
  /** Running train metrics of an epoch interrupted mid-way (null at epoch boundaries). */
  epochProgress: Record<string, unknown> | null;
  optimizer: Omit<OptimizerStateDict, 'state'> & { state: Record<string, { scalars: Record<string, number>; buffers: string[] }> } | null;
  scheduler: { step: number } | null;
  rng: { global: number[] } | null;
  history: Record<string, unknown>[];
  best: { metric: string; value: number; epoch: number } | null;
  /** The moving average of the weights, when one is kept (the weights file then holds it). */
  ema?: { decay: number; updates: number } | null;
  /** Metrics of the epoch this checkpoint was taken at. */
  metrics: Record<string, unknown>;
  /** Free-form notes (e.g. "interrupted", "best"). */
  note?: string;
}

export interface SaveOptions {
  model: Module;
  meta: Omit<CheckpointMeta, 'format' | 'version' | 'id' | 'created' | 'weights' | 'optimizerFile' | 'optimizer'>;
  optimizer?: OptimizerStateDict | null;
  /** What goes into the weights file instead of the model's own state (the EMA's average). */
  weights?: Map<string, TaggedArray>;
  /** The model's raw training weights, stored beside the optimizer buffers for resuming (with `weights`). */
  rawWeights?: Map<string, TaggedArray>;
}

/** "out/last" → its three file paths. */
export function checkpointPaths(base: string): { weights: string; optim: string; meta: string } {
  return { weights: `${base}.safetensors`, optim: `${base}.optim.safetensors`, meta: `${base}.json` };
}

/** Make sure `dir` exists and is writable, before any training starts. One-line ConfigError otherwise. */
export function ensureWritableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new ConfigError(`cannot create output directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const probe = join(dir, `.write-test-${process.pid}`);
  try {
    writeFileSync(probe, 'ok');
    unlinkSync(probe);
  } catch (e) {
    throw new ConfigError(`output directory ${dir} is not writable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Write a checkpoint at `base` (e.g. out/last) atomically; returns the sidecar. */
export function saveCheckpoint(base: string, o: SaveOptions): CheckpointMeta {
  const id = randomBytes(8).toString('hex');
  const p = checkpointPaths(base);
  const tensors = o.weights ?? stateDictToArrays(o.model);
  for (const [k, a] of tensors) {
    for (let i = 0; i < a.data.length; i++) {
      if (!Number.isFinite(a.data[i])) throw new ResnetError(`refusing to save ${p.weights}: '${k}' holds a non-finite value (the previous checkpoint is kept)`);
    }
  }
  let optimMeta: CheckpointMeta['optimizer'] = null;
  let optimBytes: Uint8Array | null = null;
  if (o.optimizer) {
    const bufs: ArrayMap = new Map();
    const state: NonNullable<CheckpointMeta['optimizer']>['state'] = {};
    for (const [key, st] of Object.entries(o.optimizer.state)) {
      state[key] = { scalars: st.scalars, buffers: Object.keys(st.buffers) };
      for (const [bn, b] of Object.entries(st.buffers)) bufs.set(`${key}.${bn}`, { dtype: 'F32', shape: b.shape, data: b.data });
    }
    for (const [k, a] of o.rawWeights ?? []) bufs.set(`raw.${k}`, a);
    optimMeta = { type: o.optimizer.type, groups: o.optimizer.groups, state };
    optimBytes = writeSafetensors(bufs, { format: CHECKPOINT_FORMAT, checkpoint_id: id, kind: 'optimizer' });
  }
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    id,
    created: new Date().toISOString(),
    weights: basename(p.weights),
    optimizerFile: optimBytes ? basename(p.optim) : null,
    ...o.meta,
    optimizer: optimMeta,
  };
  const weightBytes = writeSafetensors(tensors, { format: CHECKPOINT_FORMAT, checkpoint_id: id, model: o.meta.model.name });
  const metaBytes = new TextEncoder().encode(JSON.stringify(meta, jsonReplacer, 1) + '\n');
  if (optimBytes) writeBytesAtomic(p.optim, optimBytes);
  writeBytesAtomic(p.weights, weightBytes);
  writeBytesAtomic(p.meta, metaBytes);
  return meta;
}

function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  return v;
}

function jsonReviver(_k: string, v: unknown): unknown {
  return v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v;
}

/**
 * Find a checkpoint's sidecar from what a user typed: a .json sidecar, a .safetensors weights
 * file (its sidecar beside it), a base path (out/best), or a directory (its best, else last).
 * Returns null when `path` is a weights file with no sidecar.
 */
export function resolveCheckpoint(path: string): { meta: string | null; weights: string } {
  let st;
  try {
    st = statSync(path);
  } catch {
    st = null;
  }
  if (st?.isDirectory()) {
    for (const name of ['best', 'last']) {
      const p = checkpointPaths(join(path, name));
      if (existsSync(p.meta)) return { meta: p.meta, weights: p.weights };
    }
    throw new ConfigError(`no checkpoint in ${path} (expected best.json or last.json)`);
  }
  if (path.endsWith('.json')) {
    if (!st) throw new ConfigError(`checkpoint not found: ${path}`);
    return { meta: path, weights: path.replace(/\.json$/, '.safetensors') };
  }
  if (path.endsWith('.safetensors')) {
    if (!st) throw new ConfigError(`checkpoint not found: ${path}`);
    const base = path.replace(/(\.optim)?\.safetensors$/, '');
    const meta = `${base}.json`;
    return { meta: existsSync(meta) ? meta : null, weights: `${base}.safetensors` };
  }
  const p = checkpointPaths(path);
  if (existsSync(p.meta)) return { meta: p.meta, weights: p.weights };
  if (st) return { meta: null, weights: path };
  throw new ConfigError(`checkpoint not found: ${path} (tried ${p.meta})`);
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  weights: ArrayMap;
  /** Optimizer state with buffers, when the checkpoint has one. */
  optimizer: OptimizerStateDict | null;
  /** The raw training weights of a run with an EMA (read with the optimizer state), else null. */
  rawWeights: ArrayMap | null;
  paths: { meta: string; weights: string; optim: string | null };
}

/** Read a sidecar and check it is ours. */
export function readCheckpointMeta(metaPath: string): CheckpointMeta {
  let text: string;
  try {
    text = readFileSync(metaPath, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read checkpoint ${metaPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(text, jsonReviver);
  } catch (e) {
    throw new FormatError(`${metaPath}: not valid JSON (${(e as Error).message})`);
  }
  if (meta?.format !== CHECKPOINT_FORMAT) throw new FormatError(`${metaPath}: not a resnet-ts checkpoint sidecar (format '${String(meta?.format)}')`);
  if (meta.version > CHECKPOINT_VERSION) throw new FormatError(`${metaPath}: checkpoint version ${meta.version} is newer than this program understands (${CHECKPOINT_VERSION})`);
  return meta;
}

/** Load a checkpoint written by saveCheckpoint (`path` as resolveCheckpoint takes it). */
export function loadCheckpoint(path: string, opts: { withOptimizer?: boolean } = {}): LoadedCheckpoint {
  const r = resolveCheckpoint(path);
  if (!r.meta) throw new ConfigError(`${r.weights} has no sidecar (${r.weights.replace(/\.safetensors$/, '.json')}); pass --model to use bare weights`);
  const meta = readCheckpointMeta(r.meta);
  const dir = dirname(r.meta);
  const wPath = join(dir, meta.weights);
  const weights = readSafetensorsFile(wPath);
  const wid = readSafetensorsMetadataFile(wPath).checkpoint_id;
  if (wid !== meta.id) {
    throw new FormatError(`${wPath} does not belong to ${r.meta} (checkpoint id ${wid ?? 'missing'} vs ${meta.id}): the checkpoint was torn by an interrupted save; use the other checkpoint in ${dir}`);
  }
  let optimizer: OptimizerStateDict | null = null;
  let rawWeights: ArrayMap | null = null;
  let oPath: string | null = null;
  if (opts.withOptimizer && meta.optimizer && meta.optimizerFile) {
    oPath = join(dir, meta.optimizerFile);
    const bufs = readSafetensorsFile(oPath);
    const oid = readSafetensorsMetadataFile(oPath).checkpoint_id;
    if (oid !== meta.id) throw new FormatError(`${oPath} does not belong to ${r.meta} (checkpoint id ${oid ?? 'missing'} vs ${meta.id})`);
    const state: OptimizerStateDict['state'] = {};
    for (const [key, st] of Object.entries(meta.optimizer.state)) {
      const buffers: OptimizerStateDict['state'][string]['buffers'] = {};
      for (const bn of st.buffers) {
        const a = bufs.get(`${key}.${bn}`);
        if (!a) throw new StateDictError(`${oPath}: missing optimizer buffer '${key}.${bn}'`);
        buffers[bn] = { shape: a.shape, data: a.data };
      }
      state[key] = { scalars: st.scalars, buffers };
    }
    optimizer = { type: meta.optimizer.type, groups: meta.optimizer.groups, state };
    if (meta.ema) {
      rawWeights = new Map();
      for (const [k, a] of bufs) if (k.startsWith('raw.')) rawWeights.set(k.slice(4), a);
      for (const k of weights.keys()) if (!rawWeights.has(k)) throw new StateDictError(`${oPath}: missing raw training weight 'raw.${k}'`);
    }
  }
  return { meta, weights, optimizer, rawWeights, paths: { meta: r.meta, weights: wPath, optim: oPath } };
}
