// ImageFolder: one sub-folder per class (root/daisy/1.jpg, root/rose/2.png, ...), like torchvision.
// Node-only: images are decoded with sharp (JPEG, PNG, WebP, GIF) to uint8 RGB (or gray) CHW. Class
// names are the sub-folder names sorted by code point, so indices match torchvision's for the same
// tree. Sub-folders of a class folder are walked too; hidden files and folders (".x") are skipped.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ConfigError, FormatError } from '../base/errors.js';
import { writeBytesAtomic } from '../io/files.js';
import { trainValSplit, type Dataset, type Sample, type Subset, type WorkerSpec } from './dataset.js';
import './loader-pool.js'; // Node: gives the DataLoader its worker threads for this dataset

// torchvision's ImageFolder also takes .gif (the first frame); sharp decodes it the same way.
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif'] as const;

/** PIL's decompression-bomb threshold (Image.MAX_IMAGE_PIXELS). */
export const DEFAULT_MAX_PIXELS = 89_478_485;

export interface ImageFolderOptions {
  /** File name endings to accept, case-insensitive (default .jpg .jpeg .png .webp .gif). */
  extensions?: readonly string[];
  /** Decode to 3-channel RGB (default) or 1-channel gray. */
  mode?: 'rgb' | 'gray';
  /** Refuse images whose header declares more pixels than this (default 89,478,485). */
  maxPixels?: number;
  /** Minimum number of classes (default 2; 1 for prediction on a single-class folder). */
  minClasses?: number;
}

interface FolderState {
  root: string;
  classes: string[];
  paths: string[];
  targets: Int32Array;
  mode: 'rgb' | 'gray';
  maxPixels: number;
}

function sortCodePoint(a: string, b: string): number {
  // Python's sorted() on str compares code points; JS < compares UTF-16 units (differs above U+FFFF)
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function listDir(dir: string): import('node:fs').Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`cannot read folder ${dir}: ${code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'not a folder' : (code ?? (e as Error).message)}`);
  }
}

function isDir(path: string, d: import('node:fs').Dirent): boolean {
  if (d.isDirectory()) return true;
  if (!d.isSymbolicLink()) return false;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** False for a listed name whose bytes were not UTF-8 (it decodes with U+FFFD and no such path exists). */
export function isOpenableName(dir: string, name: string): boolean {
  return !name.includes('\uFFFD') || existsSync(join(dir, name));
}

export function notUtf8Message(path: string): string {
  return `${path}: the file name is not valid UTF-8, so it cannot be opened by name; rename it (e.g. convmv -f latin1 -t utf-8 --notest)`;
}

/** Image files under dir, walked recursively in sorted order (like torchvision's sorted(os.walk)). */
function walkImages(dir: string, exts: readonly string[], out: string[]): void {
  const entries = listDir(dir).filter((d) => !d.name.startsWith('.'));
  const files = entries.filter((d) => !isDir(join(dir, d.name), d)).map((d) => d.name).sort(sortCodePoint);
  for (const f of files) {
    const lower = f.toLowerCase();
    if (!exts.some((e) => lower.endsWith(e))) continue;
    // A name that is not valid UTF-8 comes back with U+FFFD in it and cannot be opened by that
    // string: say so now rather than fail mid-run with ENOENT.
    if (!isOpenableName(dir, f)) throw new ConfigError(notUtf8Message(join(dir, f)));
    out.push(join(dir, f));
  }
  const dirs = entries.filter((d) => isDir(join(dir, d.name), d)).map((d) => d.name).sort(sortCodePoint);
  for (const d of dirs) walkImages(join(dir, d), exts, out);
}

export class ImageFolder implements Dataset {
  readonly root: string;
  readonly classes: readonly string[];
  readonly classToIdx: Readonly<Record<string, number>>;
  /** Image paths, grouped by class in class order. */
  readonly paths: readonly string[];
  readonly targets: Int32Array;
  readonly mode: 'rgb' | 'gray';
  readonly maxPixels: number;

  private constructor(s: FolderState) {
    this.root = s.root;
    this.classes = s.classes;
    this.classToIdx = Object.fromEntries(s.classes.map((c, i) => [c, i]));
    this.paths = s.paths;
    this.targets = s.targets;
    this.mode = s.mode;
    this.maxPixels = s.maxPixels;
  }

  /** Scan root (synchronous file listing; no image is decoded). */
  static open(root: string, opts: ImageFolderOptions = {}): ImageFolder {
    const exts = (opts.extensions ?? IMAGE_EXTENSIONS).map((e) => (e.startsWith('.') ? e : '.' + e).toLowerCase());
    let st;
    try {
      st = statSync(root);
    } catch {
      throw new ConfigError(`image folder not found: ${root}`);
    }
    if (!st.isDirectory()) throw new ConfigError(`not a folder: ${root}`);
    const classes = listDir(root)
      .filter((d) => !d.name.startsWith('.') && isDir(join(root, d.name), d))
      .map((d) => d.name)
      .sort(sortCodePoint);
    if (classes.length === 0) {
      throw new ConfigError(`${root}: no class sub-folders (expected one folder per class, e.g. ${join(root, 'cat', '001.jpg')})`);
    }
    const minClasses = opts.minClasses ?? 2;
    if (classes.length < minClasses) {
      throw new ConfigError(`${root}: found only ${classes.length} class folder${classes.length === 1 ? ` ('${classes[0]}')` : 's'}; a classifier needs at least ${minClasses}`);
    }
    const paths: string[] = [];
    const targets: number[] = [];
    classes.forEach((c, i) => {
      const found: string[] = [];
      walkImages(join(root, c), exts, found);
      if (found.length === 0) {
        throw new ConfigError(`${join(root, c)}: class folder '${c}' has no images (${exts.join(', ')})`);
      }
      for (const p of found) {
        paths.push(p);
        targets.push(i);
      }
    });
    return new ImageFolder({
      root, classes, paths, targets: Int32Array.from(targets), mode: opts.mode ?? 'rgb', maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS,
    });
  }

  get length(): number {
    return this.paths.length;
  }

  label(i: number): number {
    return this.targets[i];
  }

  async get(i: number): Promise<Sample> {
    if (!Number.isInteger(i) || i < 0 || i >= this.paths.length) throw new RangeError(`ImageFolder: index ${i} out of range [0, ${this.paths.length})`);
    return { image: await decodeImage(this.paths[i], { mode: this.mode, maxPixels: this.maxPixels }), label: this.targets[i] };
  }

  /** Seeded, stratified train/validation split. */
  split(valFraction: number, seed = 0): { train: Subset; val: Subset } {
    return trainValSplit(this, valFraction, { seed, stratified: true });
  }

  /** Decode every image once: the files that fail, with why (empty when all are readable). */
  async check(): Promise<{ path: string; error: string }[]> {
    const bad: { path: string; error: string }[] = [];
    for (const p of this.paths) {
      try {
        await decodeImage(p, { mode: this.mode, maxPixels: this.maxPixels });
      } catch (e) {
        bad.push({ path: p, error: (e as Error).message });
      }
    }
    return bad;
  }

  /** Samples per class. */
  counts(): number[] {
    const c = new Array<number>(this.classes.length).fill(0);
    for (const t of this.targets) c[t]++;
    return c;
  }

  describe(): string {
    return `${this.paths.length} images in ${this.classes.length} classes under ${this.root}`;
  }

  relativePath(i: number): string {
    return relative(this.root, this.paths[i]);
  }

  workerSpec(): WorkerSpec {
    const s: FolderState = { root: this.root, classes: [...this.classes], paths: [...this.paths], targets: this.targets, mode: this.mode, maxPixels: this.maxPixels };
    return { module: import.meta.url, factory: 'imageFolderFromSpec', args: s };
  }

  /** @internal */
  static fromState(s: FolderState): ImageFolder {
    return new ImageFolder(s);
  }
}

export function imageFolderFromSpec(s: FolderState): ImageFolder {
  return ImageFolder.fromState(s);
}

type Sharp = typeof import('sharp').default;
let sharpModule: Promise<Sharp> | null = null;

/** sharp is an optional peer dependency (native binaries): only decoding image files in Node needs it. */
function loadSharp(): Promise<Sharp> {
  return (sharpModule ??= import('sharp').then(
    (m) => m.default,
    (e: NodeJS.ErrnoException) => {
      sharpModule = null;
      if (e.code === 'ERR_MODULE_NOT_FOUND') throw new ConfigError("decoding image files needs the npm package 'sharp', which is not installed: npm install sharp");
      throw new ConfigError(`the npm package 'sharp' (needed to decode image files) failed to load: ${e.message.split('\n')[0]}`);
    },
  ));
}

/**
 * Decode one image file to uint8 CHW (RGB, or gray). No EXIF rotation (as PIL/torchvision). A
 * corrupt or truncated file, an unsupported format, or a header declaring more than maxPixels
 * pixels is a FormatError naming the file.
 */
export async function decodeImage(path: string, opts: { mode?: 'rgb' | 'gray'; maxPixels?: number } = {}): Promise<{ data: Uint8Array; c: number; h: number; w: number }> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  let input: Buffer;
  try {
    input = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && path.includes('\uFFFD')) throw new ConfigError(notUtf8Message(path));
    throw new ConfigError(`cannot read image ${path}: ${code ?? (e as Error).message}`);
  }
  const sharp = await loadSharp();
  let out: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    const img = sharp(input, { limitInputPixels: maxPixels, failOn: 'truncated', sequentialRead: true });
    // keepIccProfile: the stored values, as Pillow (torchvision's loader) reads them; without it sharp
    // converts through an embedded ICC profile (skimage's rocket.jpg: up to 55 levels off Pillow's)
    out = await img.keepIccProfile().toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    if (/pixel limit/i.test(msg)) {
      let dims = '';
      try {
        const m = await sharp(input, { limitInputPixels: false }).metadata();
        dims = ` (${m.width}x${m.height})`;
      } catch {
        // header unreadable: keep the short message
      }
      throw new FormatError(`${path}: image dimensions${dims} exceed the limit of ${maxPixels} pixels`);
    }
    throw new FormatError(`${path}: cannot decode image (${msg})`);
  }
  const { width: w, height: h, channels } = out.info;
  const want = opts.mode === 'gray' ? 1 : 3;
  const src = out.data;
  if (channels !== 3 && channels !== 1) throw new FormatError(`${path}: decoded to ${channels} channels, expected RGB`);
  const hw = w * h;
  const data = new Uint8Array(want * hw);
  if (channels === 1) {
    for (let c = 0; c < want; c++) data.set(src.subarray(0, hw), c * hw);
  } else if (want === 3) {
    for (let c = 0; c < 3; c++) {
      const o = c * hw;
      for (let i = 0, s = c; i < hw; i++, s += 3) data[o + i] = src[s];
    }
  } else {
    // PIL's convert('L'): ITU-R 601-2 luma with integer weights, rounded
    for (let i = 0; i < hw; i++) data[i] = Math.floor((src[3 * i] * 299 + src[3 * i + 1] * 587 + src[3 * i + 2] * 114 + 500) / 1000);
  }
  return { data, c: want, h, w };
}

/**
 * Write class_indices.json: {"0": "daisy", "1": "dandelion", ...} (index → name, the layout the
 * flower-classifier scripts read), atomically.
 */
export function writeClassIndices(path: string, classes: readonly string[]): void {
  const obj: Record<string, string> = {};
  classes.forEach((c, i) => (obj[String(i)] = c));
  writeBytesAtomic(path, new TextEncoder().encode(JSON.stringify(obj, null, 2) + '\n'));
}

/**
 * Read class names from class_indices.json. Accepts {"0": "daisy"} (index → name), Keras'
 * {"daisy": 0} (name → index) and a plain ["daisy", ...] list; indices must be 0..n-1.
 */
export function readClassIndices(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (Array.isArray(v)) {
    if (!v.every((x) => typeof x === 'string')) throw new FormatError(`${path}: a class list must hold strings`);
    return checkNames(v as string[], path);
  }
  if (v === null || typeof v !== 'object') throw new FormatError(`${path}: expected an object or a list of class names`);
  const entries = Object.entries(v as Record<string, unknown>);
  const names: (string | undefined)[] = new Array(entries.length);
  const indexToName = entries.every(([k, x]) => /^\d+$/.test(k) && typeof x === 'string');
  const nameToIndex = entries.every(([, x]) => typeof x === 'number' && Number.isInteger(x));
  if (!indexToName && !nameToIndex) throw new FormatError(`${path}: expected {"0": "name", ...} or {"name": 0, ...}`);
  for (const [k, x] of entries) {
    const idx = indexToName ? Number(k) : (x as number);
    const name = indexToName ? (x as string) : k;
    if (idx < 0 || idx >= entries.length || names[idx] !== undefined) {
      throw new FormatError(`${path}: class indices must be 0..${entries.length - 1} without repeats (found ${idx} for '${name}')`);
    }
    names[idx] = name;
  }
  return checkNames(names as string[], path);
}

function checkNames(names: string[], path: string): string[] {
  if (names.length === 0) throw new FormatError(`${path}: no classes`);
  if (new Set(names).size !== names.length) throw new FormatError(`${path}: repeated class names`);
  return names;
}
