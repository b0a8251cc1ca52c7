// Pretrained weights: every torchvision ImageNet-1k weight set for the ResNet family, with the
// facts torchvision documents for it (URL, the SHA-256 prefix in the file name, acc@1/acc@5 on
// ImageNet-1k val, parameter count, GFLOPS at 224x224, file size, training recipe, and the
// evaluation preprocessing), plus a loader that downloads a .pth once into a cache, checks the
// hash prefix as torch.hub does, and loads it through the restricted .pth reader.
//
// The registry is browser-safe data; loadPretrained/downloadPretrained use the file system and
// reach node: built-ins through requireNode (process.getBuiltinModule, which bundlers do not follow).
import { ConfigError, FormatError, ResnetError } from '../base/errors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../base/imagenet.js';
import { requireNode } from '../base/node.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/tensor.js';
import { readPth } from '../io/pth.js';
import type { ArrayMap } from '../io/types.js';
import { IMAGENET_CLASSES } from './imagenet-classes.js';
import { createModel } from './registry.js';

/** Evaluation transform of torchvision's ImageClassification preset. */
export interface Preprocessing {
  /** Resize the shorter side to this many pixels (256 for V1, 232 for V2). */
  resizeSize: number;
  /** Then center-crop to cropSize x cropSize. */
  cropSize: number;
  interpolation: 'bilinear';
  /** Per-channel RGB mean and std applied to values in [0, 1]. */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

export type WeightTag = 'IMAGENET1K_V1' | 'IMAGENET1K_V2';

export interface PretrainedWeights {
  /** `<model>.<tag>`, e.g. 'resnet50.IMAGENET1K_V2'. */
  id: string;
  /** Registry model name (createModel). */
  model: string;
  tag: WeightTag;
  url: string;
  fileName: string;
  /** The hex prefix of the file's SHA-256 that torchvision puts in the file name. */
  sha256Prefix: string;
  /** Top-1 / top-5 accuracy (%) on ImageNet-1k val, single 224 crop. */
  acc1: number;
  acc5: number;
  numParams: number;
  /** Giga floating-point operations (multiply-adds) per 224x224 image, as torchvision reports. */
  gflops: number;
  /** File size as torchvision reports it (`_file_size`, in MiB: 2^20 bytes). The Wide ResNet V1 files hold float16. */
  fileSizeMB: number;
  numClasses: number;
  preprocessing: Preprocessing;
  recipe: string;
  /** torchvision's DEFAULT for the model. */
  isDefault: boolean;
  categories: readonly string[];
}

export { IMAGENET_MEAN, IMAGENET_STD };

const pre = (resizeSize: number): Preprocessing => ({ resizeSize, cropSize: 224, interpolation: 'bilinear', mean: IMAGENET_MEAN, std: IMAGENET_STD });

const BASE = 'https://download.pytorch.org/models/';
const RECIPE_V1 = 'https://github.com/pytorch/vision/tree/main/references/classification#resnet';
const RECIPE_V1_RESNEXT = 'https://github.com/pytorch/vision/tree/main/references/classification#resnext';
const RECIPE_WRN = 'https://github.com/pytorch/vision/pull/912#issue-445437439';
const RECIPE_NEW = 'https://github.com/pytorch/vision/issues/3995#new-recipe';
const RECIPE_FIXRES = 'https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres';

//      model               tag   file name                      acc@1   acc@5   params       GFLOPS  MB       resize recipe                          default
type Row = [string, 1 | 2, string, number, number, number, number, number, number, string, boolean];
const ROWS: Row[] = [
  ['resnet18', 1, 'resnet18-f37072fd.pth', 69.758, 89.078, 11689512, 1.814, 44.661, 256, RECIPE_V1, true],
  ['resnet34', 1, 'resnet34-b627a593.pth', 73.314, 91.42, 21797672, 3.664, 83.275, 256, RECIPE_V1, true],
  ['resnet50', 1, 'resnet50-0676ba61.pth', 76.13, 92.862, 25557032, 4.089, 97.781, 256, RECIPE_V1, false],
  ['resnet50', 2, 'resnet50-11ad3fa6.pth', 80.858, 95.434, 25557032, 4.089, 97.79, 232, 'https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621', true],
  ['resnet101', 1, 'resnet101-63fe2227.pth', 77.374, 93.546, 44549160, 7.801, 170.511, 256, RECIPE_V1, false],
  ['resnet101', 2, 'resnet101-cd907fc2.pth', 81.886, 95.78, 44549160, 7.801, 170.53, 232, RECIPE_NEW, true],
  ['resnet152', 1, 'resnet152-394f9c45.pth', 78.312, 94.046, 60192808, 11.514, 230.434, 256, RECIPE_V1, false],
  ['resnet152', 2, 'resnet152-f82ba261.pth', 82.284, 96.002, 60192808, 11.514, 230.474, 232, RECIPE_NEW, true],
  ['resnext50_32x4d', 1, 'resnext50_32x4d-7cdf4587.pth', 77.618, 93.698, 25028904, 4.23, 95.789, 256, RECIPE_V1_RESNEXT, false],
  ['resnext50_32x4d', 2, 'resnext50_32x4d-1a0047aa.pth', 81.198, 95.34, 25028904, 4.23, 95.833, 232, RECIPE_NEW, true],
  ['resnext101_32x8d', 1, 'resnext101_32x8d-8ba56ff5.pth', 79.312, 94.526, 88791336, 16.414, 339.586, 256, RECIPE_V1_RESNEXT, false],
  ['resnext101_32x8d', 2, 'resnext101_32x8d-110c445d.pth', 82.834, 96.228, 88791336, 16.414, 339.673, 232, RECIPE_FIXRES, true],
  // The only resnext101_64x4d weights were trained with the new recipe, so V1 evaluates at resize 232.
  ['resnext101_64x4d', 1, 'resnext101_64x4d-173b62eb.pth', 83.246, 96.454, 83455272, 15.46, 319.318, 232, 'https://github.com/pytorch/vision/pull/5935', true],
  ['wide_resnet50_2', 1, 'wide_resnet50_2-95faca4d.pth', 78.468, 94.086, 68883240, 11.398, 131.82, 256, RECIPE_WRN, false],
  ['wide_resnet50_2', 2, 'wide_resnet50_2-9ba9bcbe.pth', 81.602, 95.758, 68883240, 11.398, 263.124, 232, RECIPE_FIXRES, true],
  ['wide_resnet101_2', 1, 'wide_resnet101_2-32ee1156.pth', 78.848, 94.284, 126886696, 22.753, 242.896, 256, RECIPE_WRN, false],
  ['wide_resnet101_2', 2, 'wide_resnet101_2-d733dc28.pth', 82.51, 96.02, 126886696, 22.753, 484.747, 232, RECIPE_NEW, true],
];

/** Every torchvision weight set of the ResNet family (torchvision 0.14+ `*_Weights` enums). */
export const PRETRAINED: readonly PretrainedWeights[] = Object.freeze(ROWS.map(([model, v, fileName, acc1, acc5, numParams, gflops, fileSizeMB, resize, recipe, isDefault]) => {
  const tag: WeightTag = v === 1 ? 'IMAGENET1K_V1' : 'IMAGENET1K_V2';
  const m = /-([0-9a-f]+)\.pth$/.exec(fileName);
  return Object.freeze({
    id: `${model}.${tag}`, model, tag, url: BASE + fileName, fileName, sha256Prefix: m ? m[1] : '',
    acc1, acc5, numParams, gflops, fileSizeMB, numClasses: 1000, preprocessing: pre(resize), recipe, isDefault, categories: IMAGENET_CLASSES,
  });
}));

/** The weight sets, optionally only those of one model. */
export function listPretrained(model?: string): PretrainedWeights[] {
  return PRETRAINED.filter((w) => !model || w.model === model);
}

/** True when `s` looks like a weight id (`model.TAG`) rather than a file path. */
export function isPretrainedId(s: string): boolean {
  return /^[a-z0-9_]+\.(IMAGENET1K_V[12]|DEFAULT)$/.test(s);
}

/** Look up 'resnet50.IMAGENET1K_V2' (or 'resnet50.DEFAULT'); ConfigError listing the choices otherwise. */
export function getPretrained(id: string): PretrainedWeights {
  const dot = id.lastIndexOf('.');
  const model = dot > 0 ? id.slice(0, dot) : id, tag = dot > 0 ? id.slice(dot + 1) : 'DEFAULT';
  const found = tag === 'DEFAULT' ? PRETRAINED.find((w) => w.model === model && w.isDefault) : PRETRAINED.find((w) => w.id === `${model}.${tag}`);
  if (!found) {
    const forModel = listPretrained(model);
    const choices = (forModel.length ? forModel : PRETRAINED).map((w) => w.id).join(', ');
    throw new ConfigError(`unknown pretrained weights '${id}' (known${forModel.length ? ` for ${model}` : ''}: ${choices})`);
  }
  return found;
}

/** A download that failed (offline, HTTP error); the message says where to put the file by hand. */
export class DownloadError extends ResnetError {}

export interface DownloadOptions {
  /** Where downloaded files live. Default: $RESNET_TS_CACHE, else ~/.cache/resnet-ts/weights. */
  cacheDir?: string;
  /** Called as bytes arrive; total is null when the server sends no Content-Length. */
  onProgress?: (received: number, total: number | null) => void;
  /** The fetch to use (tests pass a stub). Default: the global fetch. */
  fetch?: typeof fetch;
  /** Also look for the file in torch.hub's cache ($TORCH_HOME/hub/checkpoints). Default true. */
  useTorchCache?: boolean;
  /** Verify the SHA-256 prefix of a file found in a cache too (a download is always verified). Default true. */
  verifyCached?: boolean;
}

function env(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env?.[name] : undefined;
}

/** The default download folder. */
export async function defaultCacheDir(): Promise<string> {
  const { homedir } = requireNode('node:os', 'the weights file cache');
  const { join } = requireNode('node:path', 'the weights file cache');
  return env('RESNET_TS_CACHE') ?? join(env('XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'resnet-ts', 'weights');
}

async function torchHubDir(): Promise<string> {
  const { homedir } = requireNode('node:os', 'the weights file cache');
  const { join } = requireNode('node:path', 'the weights file cache');
  const torchHome = env('TORCH_HOME') ?? join(env('XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'torch');
  return join(torchHome, 'hub', 'checkpoints');
}

async function sha256File(path: string): Promise<string> {
  const { createHash } = requireNode('node:crypto', 'the weights file cache');
  const { createReadStream } = requireNode('node:fs', 'the weights file cache');
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Where a weight set is (or would be) cached, and whether it is there. */
export async function cachedPath(w: PretrainedWeights, opts: Pick<DownloadOptions, 'cacheDir' | 'useTorchCache'> = {}): Promise<{ path: string; exists: boolean }> {
  const { existsSync } = requireNode('node:fs', 'the weights file cache');
  const { join } = requireNode('node:path', 'the weights file cache');
  const dir = opts.cacheDir ?? (await defaultCacheDir());
  const path = join(dir, w.fileName);
  if (existsSync(path)) return { path, exists: true };
  if (opts.useTorchCache ?? true) {
    const t = join(await torchHubDir(), w.fileName);
    if (existsSync(t)) return { path: t, exists: true };
  }
  return { path, exists: false };
}

function byHand(w: PretrainedWeights, dest: string): string {
  return `fetch ${w.fileName} from that URL by other means and save it as ${dest}`;
}

/**
 * Make sure the weight file is on disk and return its path: a cache hit (hash checked unless
 * verifyCached is false) or a download into the cache (streamed to a temporary file, hash
 * checked, then renamed into place). Offline or on an HTTP error: DownloadError naming the URL
 * and the path to put the file at by hand.
 */
export async function downloadPretrained(idOrWeights: string | PretrainedWeights, opts: DownloadOptions = {}): Promise<string> {
  const w = typeof idOrWeights === 'string' ? getPretrained(idOrWeights) : idOrWeights;
  const fs = requireNode('node:fs', 'the weights file cache');
  const { join } = requireNode('node:path', 'the weights file cache');
  const { createHash } = requireNode('node:crypto', 'the weights file cache');
  const found = await cachedPath(w, opts);
  if (found.exists) {
    if (opts.verifyCached ?? true) {
      const digest = await sha256File(found.path);
      if (!digest.startsWith(w.sha256Prefix)) {
        throw new FormatError(`${found.path}: SHA-256 ${digest.slice(0, 16)}… does not start with ${w.sha256Prefix} (the hash in ${w.fileName}); the file is corrupt or not ${w.id} — delete it to download again`);
      }
    }
    return found.path;
  }
  const dir = opts.cacheDir ?? (await defaultCacheDir());
  const dest = join(dir, w.fileName);
  const doFetch = opts.fetch ?? globalThis.fetch;
  if (typeof doFetch !== 'function') throw new DownloadError(`no fetch() in this runtime to download ${w.url}; ${byHand(w, dest)}`);
  let res: Response;
  try {
    res = await doFetch(w.url);
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.cause?.code ?? err.cause?.message ?? err.message;
    throw new DownloadError(`cannot download ${w.id} from ${w.url} (${why}); if this machine is offline, ${byHand(w, dest)}`);
  }
  if (!res.ok || !res.body) {
    throw new DownloadError(`cannot download ${w.id} from ${w.url} (HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}); ${byHand(w, dest)}`);
  }
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new ConfigError(`cannot create the weights cache ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const lenHeader = res.headers.get('content-length');
  const total = lenHeader && /^\d+$/.test(lenHeader) ? Number(lenHeader) : null;
  const tmp = `${dest}.${typeof process !== 'undefined' ? process.pid : 0}.part`;
  const hash = createHash('sha256');
  let received = 0;
  const fd = fs.openSync(tmp, 'w');
  try {
    const reader = res.body.getReader();
    opts.onProgress?.(0, total);
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new DownloadError(`download of ${w.url} broke off after ${received} bytes (${(e as Error).message}); try again, or ${byHand(w, dest)}`);
      }
      if (chunk.done) break;
      const v = chunk.value;
      hash.update(v);
      let off = 0;
      while (off < v.length) off += fs.writeSync(fd, v, off, v.length - off);
      received += v.length;
      opts.onProgress?.(received, total);
    }
    fs.closeSync(fd);
    if (total !== null && received !== total) {
      throw new DownloadError(`download of ${w.url} stopped at ${received} of ${total} bytes; try again, or ${byHand(w, dest)}`);
    }
    const digest = hash.digest('hex');
    if (!digest.startsWith(w.sha256Prefix)) {
      throw new FormatError(`downloaded ${w.url}: SHA-256 ${digest.slice(0, 16)}… does not start with ${w.sha256Prefix}; the download is corrupt (nothing was saved)`);
    }
    fs.renameSync(tmp, dest);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never created
    }
    throw e;
  }
  return dest;
}

export interface LoadedPretrained {
  model: Module;
  weights: PretrainedWeights;
  stateDict: ArrayMap;
  /** The file the weights came from. */
  path: string;
}

/**
 * Build the model of a weight set and load its torchvision weights (downloaded once into the
 * cache). The model is returned in eval mode.
 */
export async function loadPretrained(id: string | PretrainedWeights, opts: DownloadOptions = {}): Promise<LoadedPretrained> {
  const w = typeof id === 'string' ? getPretrained(id) : id;
  const path = await downloadPretrained(w, opts);
  const { readFileSync } = requireNode('node:fs', 'the weights file cache');
  const bytes = readFileSync(path);
  let sd: ArrayMap;
  try {
    sd = readPth(bytes);
  } catch (e) {
    if (e instanceof FormatError) throw new (e.constructor as new (m: string) => FormatError)(`${path}: ${e.message}`);
    throw e;
  }
  const model = noGrad(() => createModel(w.model));
  try {
    model.loadStateDict(sd);
  } catch (e) {
    if (e instanceof ResnetError) e.message = `${path} (${w.id}): ${e.message}`;
    throw e;
  }
  model.eval();
  return { model, weights: w, stateDict: sd, path };
}
