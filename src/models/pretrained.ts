// Pretrained weights: every torchvision ImageNet-1k weight set for the ResNet family, with the
// facts torchvision documents for it (URL, the SHA-256 prefix in the file name, acc@1/acc@5 on
// ImageNet-1k val, parameter count, GFLOPS at 224x224, file size, training recipe, and the
// evaluation preprocessing), which hosts a browser may fetch from (CORS), and the browser-safe
// loader: fetch with progress, SHA-256 prefix check as torch.hub does, a cache (Cache Storage by
// default), the restricted .pth reader. Node's loader with a file cache is pretrained-node.ts,
// reached only from the Node entry. Nothing here imports a node: module.
import { ConfigError, FormatError, ResnetError } from '../base/errors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../base/imagenet.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/tensor.js';
import { readPth } from '../io/pth.js';
import type { ArrayMap } from '../io/types.js';
import { IMAGENET_CLASSES } from './imagenet-classes.js';
import { createModel } from './registry.js';

/** Evaluation transform of torchvision's ImageClassification preset (data/transforms.ts weightsTransforms builds it). */
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

/** torchvision's tags; weight sets added with registerPretrained may use any upper-case tag. */
export type WeightTag = 'IMAGENET1K_V1' | 'IMAGENET1K_V2' | (string & {});

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
  /** Constructor options for createModel (none for torchvision's sets). */
  modelOptions?: Record<string, unknown>;
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
  [
    'resnet50',
    2,
    'resnet50-11ad3fa6.pth',
    80.858,
    95.434,
    25557032,
    4.089,
    97.79,
    232,
    'https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621',
    true,
  ],
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
export const PRETRAINED: readonly PretrainedWeights[] = Object.freeze(
  ROWS.map(([model, v, fileName, acc1, acc5, numParams, gflops, fileSizeMB, resize, recipe, isDefault]) => {
    const tag: WeightTag = v === 1 ? 'IMAGENET1K_V1' : 'IMAGENET1K_V2';
    const m = /-([0-9a-f]+)\.pth$/.exec(fileName);
    return Object.freeze({
      id: `${model}.${tag}`,
      model,
      tag,
      url: BASE + fileName,
      fileName,
      sha256Prefix: m ? m[1] : '',
      acc1,
      acc5,
      numParams,
      gflops,
      fileSizeMB,
      numClasses: 1000,
      preprocessing: pre(resize),
      recipe,
      isDefault,
      categories: IMAGENET_CLASSES,
    });
  }),
);

const registered: PretrainedWeights[] = [];

/** What registerPretrained needs; the rest defaults to an ImageNet-1k set evaluated like torchvision's V1. */
export interface PretrainedSpec {
  /** `<model>.<TAG>`: a registry model name, a dot, upper-case letters, digits and _. */
  id: string;
  url: string;
  /** Hex prefix (8+ digits) of the file's SHA-256, checked after every download. */
  sha256Prefix: string;
  fileName?: string;
  numClasses?: number;
  categories?: readonly string[];
  preprocessing?: Partial<Preprocessing>;
  modelOptions?: Record<string, unknown>;
  acc1?: number;
  acc5?: number;
  recipe?: string;
}

/**
 * Add a weight set (your own, or a mirror of one) so ids resolve to it everywhere (loadPretrained,
 * the CLI's --weights). Replaces an earlier registration of the same id; torchvision's ids are fixed.
 */
export function registerPretrained(spec: PretrainedSpec): PretrainedWeights {
  const m = /^([a-z0-9_]+)\.([A-Z0-9_]+)$/.exec(spec.id);
  if (!m) throw new ConfigError(`weight id '${spec.id}' must look like model.TAG (e.g. resnet18.MY_DATA_V1)`);
  if (PRETRAINED.some((w) => w.id === spec.id)) throw new ConfigError(`weight id '${spec.id}' is torchvision's; pick another tag`);
  if (m[2] === 'DEFAULT') throw new ConfigError(`weight id '${spec.id}': DEFAULT names a model's default set, not a set`);
  if (!/^[0-9a-f]{8,64}$/.test(spec.sha256Prefix))
    throw new ConfigError(`${spec.id}: sha256Prefix must be 8 to 64 lower-case hex digits, got '${spec.sha256Prefix}'`);
  const categories =
    spec.categories ??
    (spec.numClasses === undefined || spec.numClasses === 1000 ? IMAGENET_CLASSES : Array.from({ length: spec.numClasses }, (_, i) => String(i)));
  const numClasses = spec.numClasses ?? categories.length;
  if (categories.length !== numClasses) throw new ConfigError(`${spec.id}: ${categories.length} categories for ${numClasses} classes`);
  const fileName = spec.fileName ?? decodeURIComponent(spec.url.split(/[?#]/)[0].split('/').pop() ?? '');
  if (!fileName || /[\\/]/.test(fileName)) throw new ConfigError(`${spec.id}: cannot take a file name from ${spec.url}; give fileName`);
  const w: PretrainedWeights = Object.freeze({
    id: spec.id,
    model: m[1],
    tag: m[2],
    url: spec.url,
    fileName,
    sha256Prefix: spec.sha256Prefix,
    acc1: spec.acc1 ?? NaN,
    acc5: spec.acc5 ?? NaN,
    numParams: NaN,
    gflops: NaN,
    fileSizeMB: NaN,
    numClasses,
    preprocessing: { ...pre(256), ...spec.preprocessing },
    recipe: spec.recipe ?? '',
    isDefault: false,
    categories,
    ...(spec.modelOptions ? { modelOptions: spec.modelOptions } : {}),
  });
  const at = registered.findIndex((r) => r.id === w.id);
  if (at >= 0) registered[at] = w;
  else registered.push(w);
  return w;
}

/** Forget the weight sets added with registerPretrained. */
export function clearRegisteredPretrained(): void {
  registered.length = 0;
}

/** The weight sets (torchvision's, then registered ones), optionally only those of one model. */
export function listPretrained(model?: string): PretrainedWeights[] {
  return [...PRETRAINED, ...registered].filter((w) => !model || w.model === model);
}

/** True when `s` is a weight id (`model.TAG`, a registered id, or `model.DEFAULT`) rather than a file path. */
export function isPretrainedId(s: string): boolean {
  return /^[a-z0-9_]+\.(IMAGENET1K_V[12]|DEFAULT)$/.test(s) || registered.some((w) => w.id === s);
}

/** Look up 'resnet50.IMAGENET1K_V2' (or 'resnet50.DEFAULT'); ConfigError listing the choices otherwise. */
export function getPretrained(id: string): PretrainedWeights {
  const dot = id.lastIndexOf('.');
  const model = dot > 0 ? id.slice(0, dot) : id,
    tag = dot > 0 ? id.slice(dot + 1) : 'DEFAULT';
  const all = listPretrained();
  const found = tag === 'DEFAULT' ? all.find((w) => w.model === model && w.isDefault) : all.find((w) => w.id === `${model}.${tag}`);
  if (!found) {
    const forModel = listPretrained(model);
    const choices = (forModel.length ? forModel : all).map((w) => w.id).join(', ');
    throw new ConfigError(`unknown pretrained weights '${id}' (known${forModel.length ? ` for ${model}` : ''}: ${choices})`);
  }
  return found;
}

// ------------------------------------------------------------------------------- hosts, CORS

/**
 * Whether a browser page may fetch weights from a host: true when the host sends
 * Access-Control-Allow-Origin, false when it is known not to, null when not known.
 */
export const WEIGHT_HOSTS: Readonly<Record<string, { cors: boolean | null; note: string }>> = Object.freeze({
  'download.pytorch.org': {
    cors: null,
    note: "torchvision's weight host; whether it sends CORS headers could not be checked from the development machine (no network): a page that cannot fetch from it should self-host the file",
  },
});

/** The host of a URL and what WEIGHT_HOSTS says about it (cors null for hosts it does not list). */
export function weightHost(url: string): { host: string; cors: boolean | null } {
  let host: string;
  try {
    host = new URL(url).host;
  } catch {
    return { host: url, cors: null };
  }
  return { host, cors: WEIGHT_HOSTS[host]?.cors ?? null };
}

/** A download that failed (offline, HTTP error, CORS); the message says what to do instead. */
export class DownloadError extends ResnetError {}

function inBrowser(): boolean {
  return (
    typeof (globalThis as { document?: unknown }).document !== 'undefined' || typeof (globalThis as { importScripts?: unknown }).importScripts === 'function'
  );
}

/** What to do when a page cannot fetch a weight file: serve it yourself and point the loader at it. */
export function selfHostAdvice(w: PretrainedWeights): string {
  return (
    `self-host it: download ${w.fileName} once (\`npx resnet weights --download ${w.id}\`, or from ${w.url}), serve it from your own origin ` +
    `or a host that sends Access-Control-Allow-Origin, and pass { baseUrl: 'https://your.host/weights/' } (or { url }) to loadPretrained`
  );
}

// ------------------------------------------------------------------------------- browser loader

/** Where fetched weight files are kept between page loads (keyed by URL; bytes already hash-checked). */
export interface WeightCache {
  get(url: string): Promise<Uint8Array | undefined>;
  put(url: string, bytes: Uint8Array): Promise<void>;
  delete(url: string): Promise<void>;
}

/** A WeightCache over the Cache Storage API (`caches`), or null where there is none (Node, insecure pages). */
export function cacheStorageCache(name = 'resnet-ts-weights'): WeightCache | null {
  const cs = (globalThis as { caches?: CacheStorage }).caches;
  if (!cs) return null;
  return {
    async get(url) {
      const r = await (await cs.open(name)).match(url);
      return r ? new Uint8Array(await r.arrayBuffer()) : undefined;
    },
    async put(url, bytes) {
      await (
        await cs.open(name)
      ).put(
        url,
        new Response(bytes as unknown as BodyInit, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } }),
      );
    },
    async delete(url) {
      await (await cs.open(name)).delete(url);
    },
  };
}

/** A WeightCache in memory (tests; or a page that wants no persistent cache but one download per session). */
export function memoryCache(): WeightCache & { entries: Map<string, Uint8Array> } {
  const entries = new Map<string, Uint8Array>();
  return {
    entries,
    get: async (url) => entries.get(url),
    put: async (url, bytes) => void entries.set(url, bytes),
    delete: async (url) => void entries.delete(url),
  };
}

export interface FetchWeightsOptions {
  /** Called as bytes arrive; total is null when the server sends no Content-Length. */
  onProgress?: (received: number, total: number | null) => void;
  /** The fetch to use. Default: the global fetch. */
  fetch?: typeof fetch;
  /** Where to keep downloaded files. Default: Cache Storage where the page has it; null: no cache. */
  cache?: WeightCache | null;
  /** Fetch `${baseUrl}${fileName}` instead of the registry URL (self-hosted copies). */
  baseUrl?: string;
  /** Fetch exactly this URL instead of the registry's. */
  url?: string;
}

/** The URL a weight set is fetched from under these options. */
export function weightsUrl(w: PretrainedWeights, o: Pick<FetchWeightsOptions, 'baseUrl' | 'url'> = {}): string {
  if (o.url) return o.url;
  if (o.baseUrl) return o.baseUrl.replace(/\/*$/, '/') + encodeURIComponent(w.fileName);
  return w.url;
}

/** SHA-256 of bytes as hex, with Web Crypto (browsers on https/localhost, Node >= 20). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (!subtle)
    throw new DownloadError("checking a weight file's SHA-256 needs Web Crypto (crypto.subtle), which browsers give only to secure pages (https or localhost)");
  const d = new Uint8Array(await subtle.digest('SHA-256', bytes as unknown as BufferSource));
  let s = '';
  for (const b of d) s += b.toString(16).padStart(2, '0');
  return s;
}

/**
 * Read a response body in chunks with progress; a body that breaks off, or ends before its
 * Content-Length, is a DownloadError. Shared by the browser and the Node loader.
 */
export async function* readBody(res: Response, url: string, onProgress?: (received: number, total: number | null) => void): AsyncGenerator<Uint8Array> {
  if (!res.body) throw new DownloadError(`${url}: the response has no body`);
  const lenHeader = res.headers.get('content-length');
  const total = lenHeader && /^\d+$/.test(lenHeader) ? Number(lenHeader) : null;
  const reader = res.body.getReader();
  let received = 0;
  onProgress?.(0, total);
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (e) {
      throw new DownloadError(`download of ${url} broke off after ${received} bytes (${(e as Error).message}); try again`);
    }
    if (chunk.done) break;
    received += chunk.value.length;
    onProgress?.(received, total);
    yield chunk.value;
  }
  if (total !== null && received !== total) throw new DownloadError(`download of ${url} stopped at ${received} of ${total} bytes; try again`);
}

/** fetch(url) with errors that say why and what to do (CORS and self-hosting in a browser). */
export async function fetchWeightsResponse(w: PretrainedWeights, url: string, doFetch: typeof fetch | undefined, byHand: string): Promise<Response> {
  if (typeof doFetch !== 'function') throw new DownloadError(`no fetch() in this runtime to download ${url}; ${byHand}`);
  let res: Response;
  try {
    res = await doFetch(url);
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.cause?.code ?? err.cause?.message ?? err.message;
    if (inBrowser()) {
      const { host, cors } = weightHost(url);
      const corsWhy =
        cors === false ? `${host} sends no CORS headers, so a page cannot fetch from it` : `offline, or ${host} sends no CORS headers for this page`;
      throw new DownloadError(`cannot fetch ${w.id} from ${url} (${why}): ${corsWhy}; ${selfHostAdvice(w)}`);
    }
    throw new DownloadError(`cannot download ${w.id} from ${url} (${why}); if this machine is offline, ${byHand}`);
  }
  if (!res.ok) throw new DownloadError(`cannot download ${w.id} from ${url} (HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}); ${byHand}`);
  return res;
}

export function hashMismatchMessage(w: PretrainedWeights, what: string, digest: string): string {
  return `${what}: SHA-256 ${digest.slice(0, 16)}… does not start with ${w.sha256Prefix} (the hash of ${w.fileName}); the file is corrupt or not ${w.id}`;
}

/**
 * The bytes of a weight set's file, from the cache or fetched (progress, hash check, then cached).
 * Browser-safe; a cached copy that fails the hash check is deleted and fetched again.
 */
export async function fetchPretrained(
  idOrWeights: string | PretrainedWeights,
  o: FetchWeightsOptions = {},
): Promise<{ bytes: Uint8Array; url: string; cached: boolean }> {
  const w = typeof idOrWeights === 'string' ? getPretrained(idOrWeights) : idOrWeights;
  const url = weightsUrl(w, o);
  const cache = o.cache === undefined ? cacheStorageCache() : o.cache;
  const hit = await cache?.get(url);
  if (hit) {
    if ((await sha256Hex(hit)).startsWith(w.sha256Prefix)) return { bytes: hit, url, cached: true };
    await cache!.delete(url);
  }
  const res = await fetchWeightsResponse(w, url, o.fetch ?? globalThis.fetch, inBrowser() ? selfHostAdvice(w) : `fetch ${w.fileName} by other means`);
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const c of readBody(res, url, o.onProgress)) {
    chunks.push(c);
    n += c.length;
  }
  const bytes = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  const digest = await sha256Hex(bytes);
  if (!digest.startsWith(w.sha256Prefix)) throw new FormatError(`${hashMismatchMessage(w, `downloaded ${url}`, digest)} (nothing was cached)`);
  await cache?.put(url, bytes);
  return { bytes, url, cached: false };
}

export interface LoadedPretrained {
  model: Module;
  weights: PretrainedWeights;
  stateDict: ArrayMap;
  /** Where the weights came from (a file path in Node, the URL in a browser). */
  path: string;
}

/** Build a weight set's model (eval mode) and load the .pth bytes into it; errors name `where`. */
export function modelFromPth(w: PretrainedWeights, bytes: Uint8Array, where: string): LoadedPretrained {
  let sd: ArrayMap;
  try {
    sd = readPth(bytes);
  } catch (e) {
    if (e instanceof FormatError) throw new (e.constructor as new (m: string) => FormatError)(`${where}: ${e.message}`);
    throw e;
  }
  // Every parameter is loaded next (strict), so no random init.
  const model = noGrad(() => createModel(w.model, { ...(w.numClasses !== 1000 ? { numClasses: w.numClasses } : {}), ...w.modelOptions }, { init: false }));
  try {
    model.loadStateDict(sd);
  } catch (e) {
    if (e instanceof ResnetError) e.message = `${where} (${w.id}): ${e.message}`;
    throw e;
  }
  model.eval();
  return { model, weights: w, stateDict: sd, path: where };
}

/**
 * Build the model of a weight set and load its weights, fetched once into the cache (browser:
 * Cache Storage; the Node entry's loadPretrained uses a file cache instead). Eval mode.
 */
export async function loadPretrained(id: string | PretrainedWeights, o: FetchWeightsOptions = {}): Promise<LoadedPretrained> {
  const w = typeof id === 'string' ? getPretrained(id) : id;
  const { bytes, url } = await fetchPretrained(w, o);
  return modelFromPth(w, bytes, url);
}
