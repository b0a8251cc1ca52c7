// Fashion-MNIST (Zalando Research, MIT licence): 60,000 training and 10,000 test images, 28×28
// grayscale, 10 classes. Node-only (files, environment, download). findFashionMNIST() looks, in
// order, in the given data directory, $FASHION_MNIST_DIR, /usr/share/datasets/fashion-mnist (Debian
// package dataset-fashion-mnist), the cache directory (~/.cache/resnet-ts/fashion-mnist), then
// downloads the official files with size, MD5 and SHA-256 verification, and finally falls back to
// the 2,000/1,000-image slice shipped in data/fashion-mnist-slice, with a warning.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, writeSync, renameSync, rmSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, FormatError } from '../base/errors.js';
import { ArrayImageDataset, sharedBytes, type WorkerSpec } from './dataset.js';
import { parseRawIdx, isGzip } from './idx.js';
import { gunzipFile } from './idx-file.js';
import './loader-pool.js'; // Node: gives the DataLoader its worker threads for this dataset

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
] as const;

/** Mean and std of the training pixels scaled to [0, 1] (as published; checked by test/data-fashion-mnist). */
export const FASHION_MNIST_MEAN = [0.2860] as const;
export const FASHION_MNIST_STD = [0.3530] as const;

export type FashionMNISTSplit = 'train' | 'test';
export type FileKey = 'trainImages' | 'trainLabels' | 'testImages' | 'testLabels';

export const FASHION_MNIST_FILES: Record<FileKey, string> = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
};

/**
 * Checksums of the official files. `md5` is the one published in the Fashion-MNIST README (the
 * upstream README shipped by Debian's dataset-fashion-mnist). Debian's copies are the same deflate
 * streams with the gzip header's file name and mtime stripped; restoring those reproduces the
 * published MD5 exactly, which is how `size` and `sha256` of the official .gz were obtained.
 * `rawSha256` is the SHA-256 of the decompressed IDX bytes, which any faithful copy (recompressed
 * or not) must match.
 */
export const FASHION_MNIST_CHECKSUMS: Record<FileKey, { size: number; md5: string; sha256: string; rawSha256: string; rawSize: number }> = {
  trainImages: {
    size: 26421880,
    md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
    sha256: '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84',
    rawSha256: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
    rawSize: 47040016,
  },
  trainLabels: {
    size: 29515,
    md5: '25c81989df183df01b3e8a0aad5dffbe',
    sha256: 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845',
    rawSha256: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
    rawSize: 60008,
  },
  testImages: {
    size: 4422102,
    md5: 'bef4ecab320f06d8554ea6380940ec79',
    sha256: '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073',
    rawSha256: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
    rawSize: 7840016,
  },
  testLabels: {
    size: 5148,
    md5: 'bb300cfdad3c16e7a12a480ee83cd310',
    sha256: '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5',
    rawSha256: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
    rawSize: 10008,
  },
};

/** Official download locations, tried in order (the S3 site named in the Fashion-MNIST README, then GitHub). */
export const FASHION_MNIST_MIRRORS = [
  'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
  'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/',
];

export const SYSTEM_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** The slice shipped with the package (resolves from src/data and dist/data alike). */
export const EMBEDDED_SLICE_DIR = fileURLToPath(new URL('../../data/fashion-mnist-slice/', import.meta.url));

export type FashionMNISTSource = 'data-dir' | 'env' | 'system' | 'cache' | 'download' | 'embedded-slice';

export interface FindOptions {
  /** Looked at first (e.g. the CLI's --data-dir); also where a download goes when given. */
  dataDir?: string;
  /** Defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** Defaults to $XDG_CACHE_HOME/resnet-ts/fashion-mnist or ~/.cache/resnet-ts/fashion-mnist. */
  cacheDir?: string;
  /** Overrides /usr/share/datasets/fashion-mnist (tests). */
  systemDir?: string;
  /** Try to download when nothing is found (default true; $RESNET_TS_OFFLINE=1 turns it off). */
  download?: boolean;
  mirrors?: string[];
  fetch?: typeof globalThis.fetch;
  /** Per-file download timeout in ms (default 120000). */
  timeoutMs?: number;
  /** Fall back to the embedded slice when everything else fails (default true). */
  allowSlice?: boolean;
  /** Check the SHA-256 of the decompressed files found locally (default false: shape checks only). */
  verify?: boolean;
  onWarning?: (msg: string) => void;
  onProgress?: (file: string, received: number, total: number | undefined) => void;
}

export interface FoundFashionMNIST {
  source: FashionMNISTSource;
  dir: string;
  /** Absolute path per file (.gz or raw IDX). */
  files: Record<FileKey, string>;
  /** True for the full 60k/10k data, false for the embedded slice. */
  full: boolean;
  warnings: string[];
}

export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'resnet-ts', 'fashion-mnist');
}

/** The four files in `dir` (or torchvision's `dir/FashionMNIST/raw`), gzipped or not; null if incomplete. */
export function filesIn(dir: string): Record<FileKey, string> | null {
  for (const d of [dir, join(dir, 'FashionMNIST', 'raw')]) {
    const out: Partial<Record<FileKey, string>> = {};
    for (const k of Object.keys(FASHION_MNIST_FILES) as FileKey[]) {
      const base = join(d, FASHION_MNIST_FILES[k]);
      if (isFile(base + '.gz')) out[k] = base + '.gz';
      else if (isFile(base)) out[k] = base;
    }
    if (Object.keys(out).length === 4) return out as Record<FileKey, string>;
  }
  return null;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Find Fashion-MNIST, downloading it if needed and allowed; see the module comment for the order. */
export async function findFashionMNIST(opts: FindOptions = {}): Promise<FoundFashionMNIST> {
  const env = opts.env ?? process.env;
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    opts.onWarning?.(m);
  };
  const candidates: [FashionMNISTSource, string | undefined][] = [
    ['data-dir', opts.dataDir],
    ['env', env.FASHION_MNIST_DIR],
    ['system', opts.systemDir ?? SYSTEM_FASHION_MNIST_DIR],
    ['cache', opts.cacheDir ?? defaultCacheDir(env)],
  ];
  for (const [source, dir] of candidates) {
    if (!dir) continue;
    const files = filesIn(dir);
    if (!files) {
      if (source === 'data-dir' || source === 'env') {
        warn(`Fashion-MNIST not found in ${dir} (${source === 'env' ? '$FASHION_MNIST_DIR' : '--data-dir'}); looking elsewhere`);
      }
      continue;
    }
    if (opts.verify) {
      const bad = verifyRaw(files);
      if (bad.length) {
        warn(`${dir}: files differ from the official Fashion-MNIST (${bad.join('; ')}); skipping`);
        continue;
      }
    }
    return { source, dir, files, full: true, warnings };
  }

  const offline = env.RESNET_TS_OFFLINE === '1' || env.RESNET_TS_OFFLINE === 'true';
  const target = opts.dataDir ?? opts.cacheDir ?? defaultCacheDir(env);
  if ((opts.download ?? true) && !offline) {
    try {
      const files = await downloadFashionMNIST(target, opts);
      return { source: 'download', dir: target, files, full: true, warnings };
    } catch (e) {
      warn(`download of Fashion-MNIST failed: ${(e as Error).message}`);
    }
  }
  if (opts.allowSlice ?? true) {
    const files = filesIn(EMBEDDED_SLICE_DIR);
    if (files) {
      warn(
        'full Fashion-MNIST not found (tried --data-dir, $FASHION_MNIST_DIR, ' +
          `${opts.systemDir ?? SYSTEM_FASHION_MNIST_DIR}, ${opts.cacheDir ?? defaultCacheDir(env)}` +
          `${(opts.download ?? true) && !offline ? ', download' : ''}); using the embedded 2,000/1,000-image slice`,
      );
      return { source: 'embedded-slice', dir: EMBEDDED_SLICE_DIR, files, full: false, warnings };
    }
  }
  throw new ConfigError(
    'Fashion-MNIST not found: pass --data-dir, set $FASHION_MNIST_DIR, install dataset-fashion-mnist, or allow the download',
  );
}

function readMaybeGz(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new ConfigError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return isGzip(bytes) ? gunzipFile(bytes, path) : bytes;
}

/** Which of the files fail the decompressed-content SHA-256 check (empty = all official). */
export function verifyRaw(files: Record<FileKey, string>): string[] {
  const bad: string[] = [];
  for (const k of Object.keys(files) as FileKey[]) {
    const raw = readMaybeGz(files[k]);
    const h = createHash('sha256').update(raw).digest('hex');
    if (h !== FASHION_MNIST_CHECKSUMS[k].rawSha256) bad.push(`${files[k]}: sha256 of contents ${h.slice(0, 12)}…`);
  }
  return bad;
}

/**
 * Download the four official .gz files into `dir` (skipping files already there with the official
 * checksums). Each file is streamed to a temporary name, checked (size, MD5, SHA-256) and renamed.
 */
export async function downloadFashionMNIST(dir: string, opts: Pick<FindOptions, 'mirrors' | 'fetch' | 'timeoutMs' | 'onProgress'> = {}): Promise<Record<FileKey, string>> {
  const fetchFn = opts.fetch ?? globalThis.fetch;
  const mirrors = opts.mirrors ?? FASHION_MNIST_MIRRORS;
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new ConfigError(`cannot create ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const out: Partial<Record<FileKey, string>> = {};
  for (const k of Object.keys(FASHION_MNIST_FILES) as FileKey[]) {
    const name = FASHION_MNIST_FILES[k] + '.gz';
    const dest = join(dir, name);
    const sums = FASHION_MNIST_CHECKSUMS[k];
    if (existsSync(dest) && gzOk(readFileSync(dest), sums) === null) {
      out[k] = dest;
      continue;
    }
    const errors: string[] = [];
    for (const m of mirrors) {
      const url = m.endsWith('/') ? m + name : `${m}/${name}`;
      try {
        await fetchTo(fetchFn, url, dest, sums, opts.timeoutMs ?? 120_000, (r, t) => opts.onProgress?.(name, r, t));
        out[k] = dest;
        break;
      } catch (e) {
        errors.push(`${url}: ${(e as Error).message}`);
      }
    }
    if (!out[k]) throw new ConfigError(`could not download ${name} (${errors.join('; ')})`);
  }
  return out as Record<FileKey, string>;
}

function gzOk(bytes: Uint8Array, sums: { size: number; md5: string; sha256: string }): string | null {
  if (bytes.length !== sums.size) return `size ${bytes.length}, expected ${sums.size}`;
  const md5 = createHash('md5').update(bytes).digest('hex');
  if (md5 !== sums.md5) return `MD5 ${md5}, expected ${sums.md5}`;
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== sums.sha256) return `SHA-256 ${sha}, expected ${sums.sha256}`;
  return null;
}

async function fetchTo(
  fetchFn: typeof globalThis.fetch,
  url: string,
  dest: string,
  sums: { size: number; md5: string; sha256: string },
  timeoutMs: number,
  progress: (received: number, total: number | undefined) => void,
): Promise<void> {
  const res = await fetchFn(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const lenHeader = res.headers.get('content-length');
  const total = lenHeader ? Number(lenHeader) : undefined;
  if (total !== undefined && total > sums.size * 2) throw new Error(`unexpected size ${total}`);
  const md5 = createHash('md5');
  const sha = createHash('sha256');
  const tmp = `${dest}.part-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let received = 0;
  try {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      if (received > sums.size) throw new Error(`more data than the expected ${sums.size} bytes`);
      md5.update(value);
      sha.update(value);
      writeSync(fd, value);
      progress(received, total);
    }
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  const m = md5.digest('hex');
  const s = sha.digest('hex');
  const problem =
    received !== sums.size ? `got ${received} bytes, expected ${sums.size}`
    : m !== sums.md5 ? `MD5 ${m}, expected ${sums.md5}`
    : s !== sums.sha256 ? `SHA-256 ${s}, expected ${sums.sha256}`
    : null;
  if (problem) {
    rmSync(tmp, { force: true });
    throw new Error(`checksum verification failed: ${problem}`);
  }
  renameSync(tmp, dest);
}

/** One split of Fashion-MNIST in memory: uint8 images [N, 1, 28, 28] (shared with loader workers) and labels. */
export class FashionMNIST extends ArrayImageDataset {
  static readonly classes = FASHION_MNIST_CLASSES;

  constructor(images: Uint8Array, labels: Uint8Array, readonly split: FashionMNISTSplit, readonly source?: FashionMNISTSource) {
    super(images, labels, 1, 28, 28, FASHION_MNIST_CLASSES);
  }

  /** Read one split from an images file and a labels file (gzipped or raw IDX). */
  static fromFiles(imagesPath: string, labelsPath: string, split: FashionMNISTSplit, source?: FashionMNISTSource): FashionMNIST {
    const imgRaw = readMaybeGz(imagesPath);
    const img = parseRawIdx(imgRaw, imagesPath);
    if (img.dtype !== 'uint8' || img.shape.length !== 3 || img.shape[1] !== 28 || img.shape[2] !== 28) {
      throw new FormatError(`${imagesPath}: expected uint8 images of shape [N, 28, 28], found ${img.dtype} [${img.shape.join(', ')}]`);
    }
    const lab = parseRawIdx(readMaybeGz(labelsPath), labelsPath);
    if (lab.dtype !== 'uint8' || lab.shape.length !== 1) {
      throw new FormatError(`${labelsPath}: expected uint8 labels of shape [N], found ${lab.dtype} [${lab.shape.join(', ')}]`);
    }
    if (lab.shape[0] !== img.shape[0]) {
      throw new FormatError(`${labelsPath}: ${lab.shape[0]} labels for ${img.shape[0]} images in ${imagesPath}`);
    }
    const labels = lab.data as Uint8Array;
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] > 9) throw new FormatError(`${labelsPath}: label ${labels[i]} at index ${i} is outside 0..9`);
    }
    const images = sharedBytes(img.data.length);
    images.set(img.data as Uint8Array);
    return new FashionMNIST(images, labels, split, source);
  }

  override workerSpec(): WorkerSpec {
    return { module: import.meta.url, factory: 'fashionMNISTFromSpec', args: { images: this.images, labels: this.labels, split: this.split, source: this.source } };
  }
}

export function fashionMNISTFromSpec(a: { images: Uint8Array; labels: Uint8Array; split: FashionMNISTSplit; source?: FashionMNISTSource }): FashionMNIST {
  return new FashionMNIST(a.images, a.labels, a.split, a.source);
}

export interface LoadedFashionMNIST extends FoundFashionMNIST {
  train: FashionMNIST;
  test: FashionMNIST;
}

/** Find (see findFashionMNIST) and load both splits. */
export async function loadFashionMNIST(opts: FindOptions = {}): Promise<LoadedFashionMNIST> {
  const found = await findFashionMNIST(opts);
  const f = found.files;
  return {
    ...found,
    train: FashionMNIST.fromFiles(f.trainImages, f.trainLabels, 'train', found.source),
    test: FashionMNIST.fromFiles(f.testImages, f.testLabels, 'test', found.source),
  };
}
