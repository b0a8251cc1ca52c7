// The one rule that turns a --weights (or --checkpoint) argument into weights, shared by predict,
// eval, forward, export, embed and finetune. Node-only. In order:
//   1. a weight id ('resnet50.IMAGENET1K_V2', 'resnet50.DEFAULT', or one added by registerPretrained
//      or $RESNET_TS_WEIGHTS_REGISTRY): downloaded once into the cache, hash-checked, read as .pth;
//   2. a path: one of our checkpoints (a .json sidecar, its .safetensors, a base path, or a run
//      directory) brings its model, classes and preprocessing; any other file (.safetensors, .pth,
//      .npz, .npy folder) is bare torchvision-named weights and needs a model name;
//   3. anything else: an error naming both readings (no such file, and the ids that exist).
import { existsSync, readFileSync } from 'node:fs';
import { getBackend } from '../backend/registry.js';
import { ConfigError } from '../base/errors.js';
import { readArraysFile } from '../io/files.js';
import { readPth } from '../io/pth.js';
import type { ArrayMap } from '../io/types.js';
import { type PretrainedSpec, type PretrainedWeights, getPretrained, isPretrainedId, listPretrained, registerPretrained } from '../models/pretrained.js';
import { downloadPretrained } from '../models/pretrained-node.js';
import { type CheckpointMeta, type FiniteOptions, checkFiniteWeights, loadCheckpoint, resolveCheckpoint } from './checkpoint.js';

export interface WeightsSource {
  kind: 'pretrained' | 'checkpoint' | 'file';
  /** torchvision-named tensors. */
  weights: ArrayMap;
  /** The file they were read from. */
  file: string;
  /** The checkpoint's sidecar (kind 'checkpoint'). */
  meta: CheckpointMeta | null;
  /** The weight set (kind 'pretrained'). */
  pretrained: PretrainedWeights | null;
  /** The model the weights are for, when the source says (pretrained, checkpoint). */
  model: string | null;
  /** For messages: 'resnet18.IMAGENET1K_V1 (/path/resnet18-f37072fd.pth)', or the path. */
  describe: string;
  /**
   * Kind 'file': gives back the backend memory the file was read into (Backend.stagingBytes), once
   * the weights are loaded into a model; `weights` must not be read after it.
   */
  release?(): void;
}

export interface ResolveOptions extends FiniteOptions {
  cacheDir?: string;
  onProgress?: (received: number, total: number | null) => void;
  /**
   * Read a bare weights file into the current backend's memory where it offers some
   * (Backend.stagingBytes); the caller then calls the source's release() once it has loaded them.
   */
  stage?: boolean;
}

let registryLoaded: string | undefined;

/** Register the weight sets listed in $RESNET_TS_WEIGHTS_REGISTRY (a JSON list of PretrainedSpec), once. */
export function loadWeightsRegistryFromEnv(): void {
  const path = process.env.RESNET_TS_WEIGHTS_REGISTRY;
  if (!path || registryLoaded === path) return;
  let specs: unknown;
  try {
    specs = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`RESNET_TS_WEIGHTS_REGISTRY=${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!Array.isArray(specs)) throw new ConfigError(`RESNET_TS_WEIGHTS_REGISTRY=${path}: expected a JSON list of weight sets ({id, url, sha256Prefix, ...})`);
  for (const s of specs) {
    try {
      registerPretrained(s as PretrainedSpec);
    } catch (e) {
      throw new ConfigError(`RESNET_TS_WEIGHTS_REGISTRY=${path}: ${(e as Error).message}`);
    }
  }
  registryLoaded = path;
}

const WEIGHT_FILE = /\.(safetensors|pth|pt|bin|npz|npy|json|onnx)$/i;

/** Resolve `spec` by the rule above; NaN/Inf in the weights warn (or fail with strictFinite). */
export async function resolveWeights(spec: string, o: ResolveOptions = {}): Promise<WeightsSource> {
  const src = await resolve(spec, o);
  try {
    checkFiniteWeights(src.weights, src.file, o);
  } catch (e) {
    src.release?.();
    throw e;
  }
  return src;
}

async function resolve(spec: string, o: ResolveOptions): Promise<WeightsSource> {
  loadWeightsRegistryFromEnv();
  if (isPretrainedId(spec)) {
    const w = getPretrained(spec);
    const file = await downloadPretrained(w, { cacheDir: o.cacheDir, onProgress: o.onProgress });
    return { kind: 'pretrained', weights: readPth(readFileSync(file)), file, meta: null, pretrained: w, model: w.model, describe: `${w.id} (${file})` };
  }
  let r: { meta: string | null; weights: string };
  try {
    r = resolveCheckpoint(spec);
  } catch (e) {
    if (/^[a-z0-9_]+\.[A-Za-z0-9_]+$/.test(spec) && !WEIGHT_FILE.test(spec)) {
      const ids = listPretrained()
        .map((w) => w.id)
        .join(', ');
      throw new ConfigError(`'${spec}' is neither a file nor a known weight id (ids: ${ids})`);
    }
    if (e instanceof ConfigError && !existsSync(spec)) throw new ConfigError(`${spec}: no such file, checkpoint or weight id (${e.message})`);
    throw e;
  }
  if (r.meta) {
    const ck = loadCheckpoint(r.meta);
    return {
      kind: 'checkpoint',
      weights: ck.weights,
      file: ck.paths.weights,
      meta: ck.meta,
      pretrained: null,
      model: ck.meta.model.name,
      describe: ck.paths.weights,
    };
  }
  // copy: false: these arrays are only loaded into a model, so they may stay views of the file's
  // bytes, which are read into the current backend's memory where it offers some (wasm): given
  // back after loading, those pages then hold the model's first activations and weight transforms.
  const be = getBackend();
  let staged: { bytes: Uint8Array; release(): void } | null = null;
  const into = o.stage && be.stagingBytes ? (n: number) => (staged = be.stagingBytes!(n))?.bytes ?? new Uint8Array(n) : undefined;
  let weights: ArrayMap;
  try {
    weights = readArraysFile(r.weights, undefined, { copy: false, into });
  } catch (e) {
    (staged as { release(): void } | null)?.release();
    throw e;
  }
  return {
    kind: 'file',
    weights,
    release: () => (staged as { release(): void } | null)?.release(),
    file: r.weights,
    meta: null,
    pretrained: null,
    model: null,
    describe: r.weights,
  };
}
