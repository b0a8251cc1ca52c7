// Checkpoints. A checkpoint such as out/last is a JSON sidecar that names its data files; the data
// files carry the checkpoint's id in their names, so a new checkpoint never overwrites a file the
// current one needs:
//
//   out/last.json                     sidecar: id, the data files with the SHA-256 and size of each,
//                                     model, classes, transform, config, epoch, optimizer scalars,
//                                     scheduler/loader/RNG state, history; its own SHA-256 last
//   out/last.<id>.safetensors         weights, torchvision key names (metadata: checkpoint_id)
//   out/last.<id>.optim.safetensors   optimizer buffers, for resuming; with an EMA also the raw
//                                     training weights as 'raw.<key>' (the weights file holds the
//                                     average: what was evaluated and what eval/predict use)
//   out/last.safetensors              the weights under a fixed name (a hard link), for other tools
//   out/last.prev.json                the previous checkpoint's sidecar; its files are kept
//
// Saving: the data files are written under temporary names, flushed and renamed to their id names;
// the current sidecar is copied to last.prev.json; then ONE rename puts the new sidecar in place.
// That rename is the commit: a kill at any instant leaves last.json naming complete files, old or
// new. Files that no sidecar names any more are removed afterwards (and at the next start, under
// the run's lock on the folder). Loading checks every file against its SHA-256 and names the
// previous good checkpoint when one is damaged. Node-only (files).
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ConfigError, FormatError, ResnetError, StateDictError } from '../base/errors.js';
import { readBytes } from '../io/files.js';
import { readSafetensors, readSafetensorsMetadata, writeSafetensors } from '../io/safetensors.js';
import type { ArrayMap } from '../io/types.js';
import type { Module } from '../nn/module.js';
import { stateDictToArrays, type TaggedArray } from '../nn/state.js';
import type { OptimizerStateDict } from '../optim/optimizer.js';

export const CHECKPOINT_FORMAT = 'resnet-ts-checkpoint';
export const CHECKPOINT_VERSION = 2;

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
  /** The weights file (beside the sidecar). */
  weights: string;
  optimizerFile: string | null;
  /** SHA-256 (hex) and size of each data file (version >= 2). */
  files?: Record<string, { sha256: string; bytes: number }>;
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
  optimizer: (Omit<OptimizerStateDict, 'state'> & { state: Record<string, { scalars: Record<string, number>; buffers: string[] }> }) | null;
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
  /** SHA-256 of the sidecar's own text with this value zeroed (version >= 2); always the last field. */
  sidecarSha256?: string;
}

/** The steps of a save, in order (for tests that stop a process inside each; see SaveOptions.onPhase). */
export const SAVE_PHASES = ['data-partial', 'data-written', 'previous-kept', 'switched', 'alias-updated', 'cleaned'] as const;
export type SavePhase = (typeof SAVE_PHASES)[number];

export interface SaveOptions {
  model: Module;
  meta: Omit<CheckpointMeta, 'format' | 'version' | 'id' | 'created' | 'weights' | 'optimizerFile' | 'optimizer'>;
  optimizer?: OptimizerStateDict | null;
  /** What goes into the weights file instead of the model's own state (the EMA's average). */
  weights?: Map<string, TaggedArray>;
  /** The model's raw training weights, stored beside the optimizer buffers for resuming (with `weights`). */
  rawWeights?: Map<string, TaggedArray>;
  /** Called as each step of the save is reached (tests widen the window here to kill a process inside it). */
  onPhase?: (phase: SavePhase) => void;
}

/** "out/last" → its sidecar, the previous checkpoint's sidecar, and the fixed-name weights file. */
export function checkpointPaths(base: string): { meta: string; prev: string; weights: string } {
  return { meta: `${base}.json`, prev: `${base}.prev.json`, weights: `${base}.safetensors` };
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

/** Write a checkpoint at `base` (e.g. out/last); returns the sidecar. See the top of this file for the steps. */
export function saveCheckpoint(base: string, o: SaveOptions): CheckpointMeta {
  const id = randomBytes(8).toString('hex');
  const dir = dirname(base),
    name = basename(base);
  const p = checkpointPaths(base);
  const phase = o.onPhase ?? (() => {});
  const tensors = o.weights ?? stateDictToArrays(o.model);
  for (const [k, a] of tensors) {
    for (let i = 0; i < a.data.length; i++) {
      if (!Number.isFinite(a.data[i]))
        throw new ResnetError(`refusing to save ${p.weights}: '${k}' holds a non-finite value (the previous checkpoint is kept)`);
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
  const weightBytes = writeSafetensors(tensors, { format: CHECKPOINT_FORMAT, checkpoint_id: id, model: o.meta.model.name });
  const wName = `${name}.${id}.safetensors`,
    oName = optimBytes ? `${name}.${id}.optim.safetensors` : null;
  const files: NonNullable<CheckpointMeta['files']> = { [wName]: fileDigest(weightBytes) };
  if (oName) files[oName] = fileDigest(optimBytes!);
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    id,
    created: new Date().toISOString(),
    weights: wName,
    optimizerFile: oName,
    files,
    ...o.meta,
    optimizer: optimMeta,
  };
  try {
    // 1. the data files under new names: nothing the current checkpoint needs is touched
    writeDurable(join(dir, wName), weightBytes, () => phase('data-partial'));
    if (oName) writeDurable(join(dir, oName), optimBytes!);
    syncDir(dir);
    phase('data-written');
    // 2. the current sidecar becomes the previous one (a sidecar of the version-1 layout names files
    //    that step 4 replaces, so it is not kept)
    const cur = readSidecarQuietly(p.meta);
    if (cur && cur.meta.weights !== basename(p.weights)) writeDurable(p.prev, cur.bytes);
    else removeIfThere(p.prev);
    phase('previous-kept');
    // 3. the commit: one rename
    writeDurable(p.meta, sidecarBytes(meta));
  } catch (e) {
    // a full disk, say: the current checkpoint is untouched; the new files go (a kill here leaves them to the next start)
    for (const f of [wName, oName]) if (f) removeIfThere(join(dir, f));
    throw e;
  }
  syncDir(dir);
  phase('switched');
  // 4. the fixed-name weights file, replaced in one rename too
  linkAtomic(join(dir, wName), p.weights);
  phase('alias-updated');
  // 5. the files no sidecar names any more
  removeOrphans(dir, name);
  phase('cleaned');
  return meta;
}

function fileDigest(bytes: Uint8Array): { sha256: string; bytes: number } {
  return { sha256: sha256Hex(bytes), bytes: bytes.length };
}

function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const ZERO_HASH = '0'.repeat(64);
const SELF_HASH_RE = /"sidecarSha256": "([0-9a-f]{64})"/;

/** The sidecar's text, its last field the SHA-256 of the text with that field zeroed. */
function sidecarBytes(meta: CheckpointMeta): Uint8Array {
  const text = JSON.stringify({ ...meta, sidecarSha256: ZERO_HASH }, jsonReplacer, 1) + '\n';
  return new TextEncoder().encode(text.replace(SELF_HASH_RE, `"sidecarSha256": "${sha256Hex(text)}"`));
}

/** A temp file beside `path`, flushed to disk, renamed over `path`. `mid` runs with half the bytes written (tests). */
function writeDurable(path: string, bytes: Uint8Array, mid?: () => void): void {
  const tmp = tempName(path);
  try {
    const fd = openSync(tmp, 'w');
    try {
      const half = mid ? bytes.length >> 1 : bytes.length;
      writeAll(fd, bytes.subarray(0, half));
      mid?.();
      writeAll(fd, bytes.subarray(half));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    removeIfThere(tmp);
    if (e instanceof ResnetError) throw e;
    throw new ConfigError(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (the previous checkpoint is kept)`);
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  for (let off = 0; off < b.length;) off += writeSync(fd, b, off, b.length - off);
}

/** The temporary name writes go to (the pattern io/files.ts's writeBytesAtomic uses too; removed at start). */
function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}
const TEMP_RE = /^\..+\.\d+\.[0-9a-z]+\.tmp$/;

/** `target` becomes the same file as `src` in one rename (a hard link; a copy where links are not supported). */
function linkAtomic(src: string, target: string): void {
  const tmp = tempName(target);
  try {
    try {
      linkSync(src, tmp);
    } catch {
      writeFileSync(tmp, readFileSync(src));
    }
    renameSync(tmp, target);
  } catch (e) {
    removeIfThere(tmp);
    throw new ConfigError(`cannot write ${target}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Flush a folder's entries (the renames) to disk; not every platform can open a folder. */
function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Windows cannot fsync a directory; the renames are still atomic
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

function removeIfThere(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

function readSidecarQuietly(path: string): { bytes: Uint8Array; meta: CheckpointMeta } | null {
  try {
    const bytes = readFileSync(path);
    const meta = JSON.parse(bytes.toString('utf8')) as CheckpointMeta;
    return meta?.format === CHECKPOINT_FORMAT && typeof meta.weights === 'string' ? { bytes, meta } : null;
  } catch {
    return null;
  }
}

/** Data files of checkpoint `name` in `dir` that neither `name`.json nor `name`.prev.json names; removed. */
function removeOrphans(dir: string, name: string): string[] {
  const keep = new Set<string>();
  for (const s of [`${name}.json`, `${name}.prev.json`]) {
    const m = readSidecarQuietly(join(dir, s))?.meta;
    if (m) for (const f of [m.weights, m.optimizerFile, ...Object.keys(m.files ?? {})]) if (f) keep.add(f);
  }
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const mine = new RegExp(`^${esc}(\\.[0-9a-f]{16})?\\.optim\\.safetensors$|^${esc}\\.[0-9a-f]{16}\\.safetensors$`);
  const removed: string[] = [];
  for (const f of safeReaddir(dir)) if (mine.test(f) && !keep.has(f) && removeIfThere(join(dir, f))) removed.push(f);
  return removed;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Tidy a run folder at the start of a run (call it holding the lock): temporary files of saves that
 * were killed, and data files no sidecar names. Returns the names removed.
 */
export function cleanCheckpointDir(dir: string): string[] {
  const removed: string[] = [];
  for (const f of safeReaddir(dir)) if (TEMP_RE.test(f) && removeIfThere(join(dir, f))) removed.push(f);
  for (const name of ['last', 'best']) removed.push(...removeOrphans(dir, name));
  return removed;
}

// ---------------------------------------------------------------------------- the run's lock

const LOCK_NAME = '.resnet-ts.lock';
const held = new Set<string>();

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  /** Linux: the process's start time in clock ticks since boot (tells a reused pid apart). */
  procStart?: string | null;
  command?: string;
}

/** Linux's start time of a process (field 22 of /proc/PID/stat), or null where there is no /proc. */
function procStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function readLock(path: string): LockInfo | null {
  try {
    const l = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    return typeof l?.pid === 'number' && typeof l.host === 'string' ? l : null;
  } catch {
    return null;
  }
}

/** Whether the process that wrote `l` still runs (unknown for another host: assumed alive). */
function lockAlive(l: LockInfo): boolean {
  if (l.host !== hostname()) return true;
  if (l.pid === process.pid) return false; // our pid, reused: the holder was killed
  try {
    process.kill(l.pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (l.procStart) {
    const now = procStartTime(l.pid);
    if (now !== null && now !== l.procStart) return false; // the pid belongs to another process now
  }
  return true;
}

function lockMessage(dir: string, path: string, l: LockInfo): string {
  return (
    `${dir} is in use by another resnet-ts run (pid ${l.pid} on ${l.host}, started ${l.started}${l.command ? `: ${l.command.length > 120 ? `${l.command.slice(0, 120)}…` : l.command}` : ''}); ` +
    `wait for it to finish or stop it, or choose another --out (if no such run is alive, delete ${path})`
  );
}

/** Throw the lock's message when a live run holds `dir` (a check before anything else is done). */
export function checkOutLock(dir: string): void {
  const path = join(dir, LOCK_NAME);
  const l = readLock(path);
  if (l && !held.has(path) && lockAlive(l)) throw new ConfigError(lockMessage(dir, path, l));
}

export interface OutLock {
  path: string;
  /** The lock that was found and removed because its process had died, if any. */
  stale: LockInfo | null;
  release(): void;
}

/**
 * Take the run folder `dir` for this process: a lock file with pid, host and start time, created in
 * one step (link), so two runs can never both hold it. A lock whose process has died on this host is
 * taken over; a live one (or one from another host) is refused with a ConfigError.
 */
export function lockOutDir(dir: string, command?: string): OutLock {
  const path = join(dir, LOCK_NAME);
  const info: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString(), procStart: procStartTime(process.pid), command };
  const tmp = tempName(path);
  writeFileSync(tmp, JSON.stringify(info) + '\n');
  let stale: LockInfo | null = null;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path); // fails when the lock exists: taking it is one step
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') throw new ConfigError(`cannot lock ${dir}: ${code ?? (e as Error).message}`);
        const l = readLock(path);
        if (l && (held.has(path) || lockAlive(l))) throw new ConfigError(lockMessage(dir, path, l));
        // a lock is linked in whole, so an unreadable one is not a live run's; a second failure means another run won the race
        if (attempt > 0) throw new ConfigError(l ? lockMessage(dir, path, l) : `cannot lock ${dir}: ${path} keeps coming back`);
        stale = l;
        removeIfThere(path);
      }
    }
  } finally {
    removeIfThere(tmp);
  }
  held.add(path);
  return {
    path,
    stale,
    release: () => {
      if (!held.delete(path)) return;
      if (readLock(path)?.pid === process.pid) removeIfThere(path);
    },
  };
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
    const base = path.replace(/(\.[0-9a-f]{16})?(\.optim)?\.safetensors$/, '');
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
  /** weights: the fixed name (out/last.safetensors) when it is the same file, else the file the sidecar names. */
  paths: { meta: string; weights: string; optim: string | null };
}

/** A checkpoint file whose bytes are not the ones its sidecar recorded (bit rot, a bad copy, an edit). */
export class CheckpointDamagedError extends FormatError {}

/** Read a sidecar and check it is ours and, from version 2 on, intact (its own SHA-256). */
export function readCheckpointMeta(metaPath: string, o: { alternatives?: boolean } = {}): CheckpointMeta {
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
    if (/"format": "resnet-ts-checkpoint"/.test(text)) throw damaged(metaPath, `not valid JSON (${(e as Error).message})`, metaPath, o);
    throw new FormatError(`${metaPath}: not valid JSON (${(e as Error).message})`);
  }
  if (meta?.format !== CHECKPOINT_FORMAT) throw new FormatError(`${metaPath}: not a resnet-ts checkpoint sidecar (format '${String(meta?.format)}')`);
  if (meta.version > CHECKPOINT_VERSION)
    throw new FormatError(`${metaPath}: checkpoint version ${meta.version} is newer than this program understands (${CHECKPOINT_VERSION})`);
  if (meta.version >= 2) {
    const m = SELF_HASH_RE.exec(text);
    if (!m || sha256Hex(text.replace(SELF_HASH_RE, `"sidecarSha256": "${ZERO_HASH}"`)) !== m[1]) {
      throw damaged(metaPath, 'its content does not match its own SHA-256', metaPath, o);
    }
  }
  return meta;
}

function damaged(file: string, why: string, metaPath: string, o: { alternatives?: boolean; withOptimizer?: boolean }): CheckpointDamagedError {
  let tail = '';
  if (o.alternatives !== false) {
    const alt = goodAlternative(metaPath, o.withOptimizer ?? false);
    tail = alt ? `; the previous good checkpoint is ${alt}` : `; there is no other good checkpoint in ${dirname(metaPath)}`;
  }
  return new CheckpointDamagedError(`${file} is damaged: ${why}${tail}`);
}

/**
 * The checkpoint to fall back on when `metaPath` is damaged: its .prev.json, then the other
 * checkpoint of the folder (best for last, last for best) and that one's previous; each is read
 * and verified in full. Null when none is intact (or, for resuming, none has an optimizer state).
 */
function goodAlternative(metaPath: string, withOptimizer: boolean): string | null {
  const dir = dirname(metaPath),
    file = basename(metaPath);
  const base = file.replace(/(\.prev)?\.json$/, '');
  const other = base === 'last' ? 'best' : base === 'best' ? 'last' : null;
  const names = [`${base}.prev.json`, `${base}.json`, ...(other ? [`${other}.json`, `${other}.prev.json`] : [])];
  for (const n of names) {
    const p = join(dir, n);
    if (n === file || !existsSync(p)) continue;
    try {
      const ck = loadCheckpoint(p, { withOptimizer, alternatives: false });
      if (withOptimizer && !ck.optimizer) continue;
      return `${p} (epoch ${ck.meta.epoch}, step ${ck.meta.globalStep})`;
    } catch {
      // damaged too, or unreadable: not an alternative
    }
  }
  return null;
}

/** A data file's bytes, checked against the size and SHA-256 in its sidecar (when recorded). */
function readVerified(path: string, meta: CheckpointMeta, metaPath: string, o: { alternatives?: boolean; withOptimizer?: boolean }): Uint8Array {
  const bytes = readBytes(path);
  const rec = meta.files?.[basename(path)];
  if (meta.version >= 2 && !rec) throw damaged(metaPath, `it records no SHA-256 for ${basename(path)}`, metaPath, o);
  if (rec) {
    if (bytes.length !== rec.bytes) throw damaged(path, `${bytes.length} bytes where ${metaPath} recorded ${rec.bytes}`, metaPath, o);
    const h = sha256Hex(bytes);
    if (h !== rec.sha256) throw damaged(path, `SHA-256 ${h.slice(0, 16)}… where ${metaPath} recorded ${rec.sha256.slice(0, 16)}…`, metaPath, o);
  }
  return bytes;
}

function parseSafetensorsAt(path: string, bytes: Uint8Array): { arrays: ArrayMap; metadata: Record<string, string> } {
  try {
    return { arrays: readSafetensors(bytes), metadata: readSafetensorsMetadata(bytes) };
  } catch (e) {
    if (e instanceof FormatError) throw new FormatError(`${path}: ${e.message}`);
    throw e;
  }
}

/**
 * Load a checkpoint written by saveCheckpoint (`path` as resolveCheckpoint takes it). Every file is
 * checked against its SHA-256; a damaged one is a CheckpointDamagedError naming it and the previous
 * good checkpoint (`alternatives: false` leaves that search out).
 */
export function loadCheckpoint(path: string, opts: { withOptimizer?: boolean; alternatives?: boolean } = {}): LoadedCheckpoint {
  const r = resolveCheckpoint(path);
  if (!r.meta) throw new ConfigError(`${r.weights} has no sidecar (${r.weights.replace(/\.safetensors$/, '.json')}); pass --model to use bare weights`);
  const meta = readCheckpointMeta(r.meta, opts);
  const dir = dirname(r.meta);
  const wPath = join(dir, meta.weights);
  const w = parseSafetensorsAt(wPath, readVerified(wPath, meta, r.meta, opts));
  const weights = w.arrays;
  const wid = w.metadata.checkpoint_id;
  if (wid !== meta.id) {
    throw new FormatError(
      `${wPath} does not belong to ${r.meta} (checkpoint id ${wid ?? 'missing'} vs ${meta.id}): the checkpoint was torn by an interrupted save; use the other checkpoint in ${dir}`,
    );
  }
  let optimizer: OptimizerStateDict | null = null;
  let rawWeights: ArrayMap | null = null;
  let oPath: string | null = null;
  if (opts.withOptimizer && meta.optimizer && meta.optimizerFile) {
    oPath = join(dir, meta.optimizerFile);
    const ob = parseSafetensorsAt(oPath, readVerified(oPath, meta, r.meta, opts));
    const bufs = ob.arrays;
    const oid = ob.metadata.checkpoint_id;
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
  return { meta, weights, optimizer, rawWeights, paths: { meta: r.meta, weights: fixedName(r.meta, wPath), optim: oPath } };
}

/** The fixed name (out/best.safetensors) when it is the same file as `wPath`, for messages; else `wPath`. */
function fixedName(metaPath: string, wPath: string): string {
  const alias = checkpointPaths(metaPath.replace(/\.json$/, '')).weights;
  try {
    const a = statSync(alias),
      w = statSync(wPath);
    return a.ino === w.ino && a.dev === w.dev ? alias : wPath;
  } catch {
    return wPath;
  }
}

/** How a loader treats weights holding NaN or Inf: say so (default) or refuse them. */
export interface FiniteOptions {
  /** Refuse non-finite weights (the CLI's --strict-finite). */
  strictFinite?: boolean;
  /** Where the warning goes (default: nowhere). */
  onWarning?: (message: string) => void;
}

/**
 * Check loaded weights for NaN/Inf: a ConfigError with strictFinite, else a warning naming the
 * tensors (the model would compute NaN from them). Returns the number of tensors affected.
 */
export function checkFiniteWeights(weights: Iterable<[string, { data: Float32Array }]>, file: string, o: FiniteOptions = {}): number {
  const bad: string[] = [];
  for (const [k, a] of weights) {
    let nan = 0,
      inf = 0;
    for (let i = 0; i < a.data.length; i++) {
      const v = a.data[i];
      if (v !== v) nan++;
      else if (v === Infinity || v === -Infinity) inf++;
    }
    if (nan || inf) bad.push(`${k} (${[nan ? `${nan} NaN` : '', inf ? `${inf} Inf` : ''].filter(Boolean).join(', ')})`);
  }
  if (bad.length) {
    const what = `${file}: ${bad.length} tensor(s) hold non-finite values: ${bad.slice(0, 4).join(', ')}${bad.length > 4 ? ', …' : ''}`;
    if (o.strictFinite) throw new ConfigError(`${what}; refused (--strict-finite)`);
    o.onWarning?.(`${what}; the model's outputs will not be numbers (pass --strict-finite to refuse such weights)`);
  }
  return bad.length;
}
