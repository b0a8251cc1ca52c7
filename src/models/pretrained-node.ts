// Node's pretrained-weights loader: the same registry, fetch and hash check as the browser loader
// (pretrained.ts), with a file cache ($RESNET_TS_CACHE, else ~/.cache/resnet-ts/weights, and
// torch.hub's checkpoints folder read too). A download streams to a temporary file next to its
// destination and is renamed into place only after its SHA-256 prefix matched, so a broken or
// corrupt download never leaves a file in the cache. Node-only: reached from src/index.ts.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, FormatError } from '../base/errors.js';
import {
  type FetchWeightsOptions,
  type LoadedPretrained,
  type PretrainedWeights,
  fetchWeightsResponse,
  getPretrained,
  hashMismatchMessage,
  modelFromPth,
  readBody,
  weightsUrl,
} from './pretrained.js';

export interface DownloadOptions extends Omit<FetchWeightsOptions, 'cache'> {
  /** Where downloaded files live. Default: $RESNET_TS_CACHE, else ~/.cache/resnet-ts/weights. */
  cacheDir?: string;
  /** Also look for the file in torch.hub's cache ($TORCH_HOME/hub/checkpoints). Default true. */
  useTorchCache?: boolean;
  /** Verify the SHA-256 prefix of a file found in a cache too (a download is always verified). Default true. */
  verifyCached?: boolean;
}

/** The default download folder. */
export function defaultCacheDir(): string {
  return process.env.RESNET_TS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'resnet-ts', 'weights');
}

function torchHubDir(): string {
  const torchHome = process.env.TORCH_HOME ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'torch');
  return join(torchHome, 'hub', 'checkpoints');
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Where a weight set is (or would be) cached, and whether it is there. */
export function cachedPath(w: PretrainedWeights, opts: Pick<DownloadOptions, 'cacheDir' | 'useTorchCache'> = {}): { path: string; exists: boolean } {
  const path = join(opts.cacheDir ?? defaultCacheDir(), w.fileName);
  if (existsSync(path)) return { path, exists: true };
  if (opts.useTorchCache ?? true) {
    const t = join(torchHubDir(), w.fileName);
    if (existsSync(t)) return { path: t, exists: true };
  }
  return { path, exists: false };
}

/**
 * Make sure the weight file is on disk and return its path: a cache hit (hash checked unless
 * verifyCached is false) or a download into the cache. Offline or on an HTTP error: DownloadError
 * naming the URL and the path to put the file at by hand.
 */
export async function downloadPretrained(idOrWeights: string | PretrainedWeights, opts: DownloadOptions = {}): Promise<string> {
  const w = typeof idOrWeights === 'string' ? getPretrained(idOrWeights) : idOrWeights;
  const found = cachedPath(w, opts);
  if (found.exists) {
    if (opts.verifyCached ?? true) {
      const digest = await sha256File(found.path);
      if (!digest.startsWith(w.sha256Prefix)) throw new FormatError(`${hashMismatchMessage(w, found.path, digest)} — delete it to download again`);
    }
    return found.path;
  }
  const dir = opts.cacheDir ?? defaultCacheDir();
  const dest = join(dir, w.fileName);
  const url = weightsUrl(w, opts);
  const byHand = `fetch ${w.fileName} from that URL by other means and save it as ${dest}`;
  const res = await fetchWeightsResponse(w, url, opts.fetch ?? globalThis.fetch, byHand);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new ConfigError(`cannot create the weights cache ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  removeStaleParts(dir, w.fileName);
  const tmp = `${dest}.${process.pid}.part`;
  const hash = createHash('sha256');
  const fd = openSync(tmp, 'w');
  let closed = false;
  try {
    for await (const v of readBody(res, url, opts.onProgress)) {
      hash.update(v);
      let off = 0;
      while (off < v.length) off += writeSync(fd, v, off, v.length - off);
    }
    closeSync(fd);
    closed = true;
    const digest = hash.digest('hex');
    if (!digest.startsWith(w.sha256Prefix)) throw new FormatError(`${hashMismatchMessage(w, `downloaded ${url}`, digest)} (nothing was saved)`);
    renameSync(tmp, dest);
  } catch (e) {
    if (!closed) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
    if (e instanceof Error && !(e instanceof FormatError) && e.message.startsWith('download of')) e.message += `, or ${byHand}`;
    throw e;
  }
  return dest;
}

/** Delete `<file>.<pid>.part` left by a download whose process was killed (its pid no longer runs). */
function removeStaleParts(dir: string, fileName: string): void {
  for (const f of readdirSync(dir)) {
    const m = f.startsWith(fileName + '.') ? /\.(\d+)\.part$/.exec(f) : null;
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(dir, f), { force: true });
    }
  }
}

/**
 * Build the model of a weight set and load its torchvision weights (downloaded once into the
 * file cache). The model is returned in eval mode.
 */
export async function loadPretrained(id: string | PretrainedWeights, opts: DownloadOptions = {}): Promise<LoadedPretrained> {
  const w = typeof id === 'string' ? getPretrained(id) : id;
  const path = await downloadPretrained(w, opts);
  return modelFromPth(w, readFileSync(path), path);
}
