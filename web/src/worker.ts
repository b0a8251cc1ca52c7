// The engine worker: every tensor operation of the app runs here, never on the page's thread, so
// the UI stays responsive. The page starts one per view (classify, inspect, train) and talks to it
// with the requests of protocol.ts. Images arrive as RGBA pixels decoded by the page.
import {
  CifarResNet,
  RNG,
  IMAGENET_CLASSES,
  IMAGENET_MEAN,
  IMAGENET_STD,
  Module,
  createModel,
  data,
  evaluate,
  getBackend,
  getModelEntry,
  getPretrained,
  listModels,
  listPretrained,
  loadPretrained,
  getThreads,
  importOnnx,
  io,
  noGrad,
  optim,
  readSafetensors,
  scope,
  setBackend,
  setThreads,
  tensor,
  trainStep,
  tryFuseForInference,
  writeSafetensors,
  type FetchWeightsOptions,
  type FusedModel,
  type Tensor,
} from '../../src/browser.js';
import type { ClassifyResult, LoadRequest, ModelSummary, Reply, Request, Rgba, TrainEvent, TrainSettings } from './protocol.js';

const ctx = self as unknown as { postMessage(m: Reply, transfer?: Transferable[]): void; onmessage: ((e: MessageEvent<Request>) => void) | null };

export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const FASHION_MEAN = [0.286],
  FASHION_STD = [0.353];

/** How a model wants its input: size, channels, and the normalisation after scaling to [0, 1]. */
interface Pre {
  c: number;
  h: number;
  w: number;
  /** Shorter side is resized to this before the center crop (ImageNet: 256 for a 224 crop). */
  resize: number;
  mean: number[];
  std: number[];
}

interface Loaded {
  model: Module;
  fused: FusedModel | null;
  classes: string[];
  pre: Pre;
  summary: ModelSummary;
}

let current: Loaded | null = null;

// ------------------------------------------------------------------------------------ images

/** RGBA → CHW uint8 with `c` channels (gray as PIL's 'L': 299/587/114 per mille). */
function toImage(px: Rgba, c: number): data.Image & { data: Uint8Array } {
  const n = px.w * px.h;
  const out = new Uint8Array(c * n);
  for (let i = 0; i < n; i++) {
    const r = px.data[4 * i],
      g = px.data[4 * i + 1],
      b = px.data[4 * i + 2];
    if (c === 1) out[i] = Math.round((r * 299 + g * 587 + b * 114) / 1000);
    else {
      out[i] = r;
      out[n + i] = g;
      out[2 * n + i] = b;
    }
  }
  return { data: out, c, h: px.h, w: px.w };
}

/** Resize the shorter side, center-crop, scale to [0, 1], normalise: the model's input [1, C, H, W]. */
function preprocess(px: Rgba, p: Pre): Float32Array {
  const t = data.compose(new data.Resize(p.resize), new data.CenterCrop([p.h, p.w]), new data.ToFloat(), new data.Normalize(p.mean, p.std));
  return t.apply(toImage(px, p.c), new RNG(0)).data as Float32Array;
}

function topk(logits: Float32Array, classes: string[], k: number) {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const s = e.reduce((a, b) => a + b, 0);
  return [...e.keys()]
    .sort((a, b) => logits[b] - logits[a])
    .slice(0, k)
    .map((i) => ({ index: i, label: classes[i] ?? String(i), prob: e[i] / s }));
}

function logitsOf(m: Module | FusedModel, x: Float32Array, shape: number[]): Float32Array {
  return scope(() => noGrad(() => (m.forward(tensor(x, shape)) as Tensor).dataSync()));
}

function classify(l: Loaded, px: Rgba, k = 5): ClassifyResult {
  const x = preprocess(px, l.pre);
  const t0 = performance.now();
  const logits = logitsOf(l.fused ?? l.model, x, [1, l.pre.c, l.pre.h, l.pre.w]);
  const ms = performance.now() - t0;
  return { top: topk(logits, l.classes, k), ms, backend: getBackend().name, threads: getThreads() };
}

// ------------------------------------------------------------------------------------ models

const CHECKPOINT_FORMAT = 'resnet-ts-checkpoint';

function firstConvIn(w: Map<string, { shape: number[] }>): number {
  for (const a of w.values()) if (a.shape.length === 4) return a.shape[1];
  return 3;
}

function headClasses(w: Map<string, { shape: number[] }>): number | null {
  const head = [...w.entries()].filter(([, a]) => a.shape.length === 2).pop();
  return head ? head[1].shape[0] : null;
}

function defaultPre(name: string, c: number): Pre {
  const [, h, w] = getModelEntry(name).defaultInput;
  const imagenet = c === 3 && h === 224;
  return {
    c,
    h,
    w,
    resize: imagenet ? 256 : Math.min(h, w),
    mean: c === 3 ? [...IMAGENET_MEAN] : FASHION_MEAN,
    std: c === 3 ? [...IMAGENET_STD] : FASHION_STD,
  };
}

function buildModel(name: string, opts: Record<string, unknown>): Module {
  const m = /^cifar_resnet(\d+)$/.exec(name);
  return noGrad(() => (m && ![20, 32, 44, 56, 110].includes(Number(m[1])) ? new CifarResNet(Number(m[1]), opts) : createModel(name, opts)));
}

async function load(r: LoadRequest): Promise<ModelSummary> {
  if (current) {
    current.fused?.dispose();
    current.model.dispose();
    current = null;
  }
  let model: Module;
  let classes: string[] | null = null;
  let pre: Pre;
  let weights = 'random initialisation (no weights chosen)';
  let note = '';
  let name = r.model;
  const w = r.weights;
  if (w.kind === 'pretrained') {
    const entry = getPretrained(w.id);
    // the browser loader fetches, checks the SHA-256 prefix and keeps the file in Cache Storage
    const options: FetchWeightsOptions = { onProgress: (received, total) => emit({ type: 'progress', received, total }) };
    if (w.baseUrl) options.baseUrl = w.baseUrl;
    const res = await loadPretrained(w.id, options);
    model = res.model;
    name = entry.model;
    classes = [...entry.categories];
    const p = entry.preprocessing;
    pre = { c: 3, h: p.cropSize, w: p.cropSize, resize: p.resizeSize, mean: [...p.mean], std: [...p.std] };
    weights = `${w.id} (torchvision, ImageNet top-1 ${entry.acc1}%)`;
  } else if (w.kind === 'files') {
    const sidecar = w.files.find((f) => f.name.endsWith('.json'));
    const onnx = w.files.find((f) => f.name.endsWith('.onnx'));
    const arrays = w.files.find((f) => !f.name.endsWith('.json') && !f.name.endsWith('.onnx'));
    if (onnx) {
      const res = importOnnx(onnx.bytes);
      model = res.model;
      name = res.arch.model;
      const c = firstConvIn(res.stateDict);
      pre = defaultPre(name, c);
      weights = `${onnx.name} (ONNX: ${res.info.summary})`;
    } else if (sidecar) {
      // a resnet-ts checkpoint: the sidecar names the model, its options, classes and input
      if (!arrays) throw new Error(`${sidecar.name}: drop its weights file (.safetensors) together with it`);
      let meta: {
        format?: string;
        model: { name: string; options: Record<string, unknown> };
        classes: string[];
        input: { channels: number; size: [number, number] | null };
        evalTransform?: { name: string; args: { transforms?: { name: string; args: { mean?: number[]; std?: number[] } }[] } };
      };
      try {
        meta = JSON.parse(new TextDecoder().decode(sidecar.bytes));
      } catch (e) {
        throw new Error(`${sidecar.name}: not valid JSON (${(e as Error).message})`, { cause: e });
      }
      if (meta?.format !== CHECKPOINT_FORMAT) throw new Error(`${sidecar.name}: not a resnet-ts checkpoint sidecar (format '${String(meta?.format)}')`);
      name = meta.model.name;
      model = buildModel(name, meta.model.options);
      model.loadStateDict(readSafetensors(arrays.bytes));
      classes = meta.classes;
      const norm = meta.evalTransform?.args.transforms?.find((t) => t.name === 'Normalize')?.args;
      const c = meta.input.channels;
      const [h, wd] = meta.input.size ?? [getModelEntry('resnet18').defaultInput[1], getModelEntry('resnet18').defaultInput[2]];
      pre = {
        c,
        h,
        w: wd,
        resize: Math.min(h, wd),
        mean: norm?.mean ?? (c === 3 ? [...IMAGENET_MEAN] : FASHION_MEAN),
        std: norm?.std ?? (c === 3 ? [...IMAGENET_STD] : FASHION_STD),
      };
      weights = `${arrays.name} (resnet-ts checkpoint)`;
    } else if (arrays) {
      const sd = io.readArrays(arrays.bytes, arrays.name);
      const meta = arrays.name.endsWith('.safetensors') ? io.readSafetensorsMetadata(arrays.bytes) : {};
      if (meta.format === CHECKPOINT_FORMAT && meta.model) name = meta.model;
      const c = firstConvIn(sd);
      const n = headClasses(sd) ?? 1000;
      const opts: Record<string, unknown> = { numClasses: n, ...r.arch };
      if (c !== 3 || /^(cifar|d2l)/.test(name)) opts.inChannels = c;
      model = buildModel(name, opts);
      model.loadStateDict(sd);
      pre = defaultPre(name, c);
      weights = arrays.name;
      if (meta.format === CHECKPOINT_FORMAT) note = "drop the checkpoint's .json together with it for its class names and input size";
    } else throw new Error('no weights file among the dropped files');
  } else {
    model = buildModel(name, r.arch);
    pre = defaultPre(name, (r.arch.inChannels as number | undefined) ?? 3);
  }
  model.eval();
  const n = headClasses(new Map([...model.stateDict()].map(([k, t]) => [k, { shape: t.shape as number[] }]))) ?? 0;
  classes ??= n === 1000 ? [...IMAGENET_CLASSES] : n === 10 && pre.c === 1 ? FASHION_CLASSES : Array.from({ length: n }, (_, i) => `class ${i}`);
  const fused = tryFuseForInference(model);
  const summary: ModelSummary = {
    name,
    params: model.numParameters(),
    classes: n,
    input: { c: pre.c, h: pre.h, w: pre.w, mode: pre.c === 1 ? 'gray' : 'rgb' },
    weights,
    note,
  };
  current = { model, fused, classes, pre, summary };
  return summary;
}

// ------------------------------------------------------------------------------------ inspect

function info(a: { model: string; arch: Record<string, unknown>; input: [number, number, number] }) {
  const m = buildModel(a.model, a.arch);
  try {
    const { outShape, rows } = m.describe(a.input, '');
    return {
      outShape,
      rows,
      params: m.numParameters(),
      macs: rows.reduce((s, r) => s + r.macs, 0),
      layers: [...m.namedModules()].map(([n]) => n).filter((n) => n),
    };
  } finally {
    m.dispose();
  }
}

/** Output of the module `layer` of the loaded model for one image (at most `maxMaps` channels). */
function features(a: { rgba: Rgba; layer: string; maxMaps: number; input?: [number, number, number] }) {
  if (!current) throw new Error('load a model first');
  const sub = current.model.getModule(a.layer);
  // at the Inspect view's input size (the model's own preprocessing otherwise)
  const pre = a.input ? { ...current.pre, c: a.input[0], h: a.input[1], w: a.input[2], resize: Math.min(a.input[1], a.input[2]) } : current.pre;
  const x = preprocess(a.rgba, pre);
  const orig = sub.forward;
  let got: { data: Float32Array; shape: number[] } | null = null;
  // a one-off forward hook: keep a copy of the layer's output
  sub.forward = function (this: Module, t: Tensor) {
    const y = orig.call(this, t);
    got = { data: y.dataSync(), shape: [...y.shape] };
    return y;
  };
  try {
    logitsOf(current.model, x, [1, pre.c, pre.h, pre.w]);
  } finally {
    sub.forward = orig;
  }
  if (!got) throw new Error(`layer '${a.layer}' is not used by the forward pass`);
  const g = got as { data: Float32Array; shape: number[] };
  const [, c, h, w] = g.shape.length === 4 ? g.shape : [1, g.shape[1], 1, 1];
  const k = Math.min(c, a.maxMaps);
  return { c, h, w, shown: k, data: g.data.slice(0, k * h * w) };
}

// ------------------------------------------------------------------------------------ train

interface TrainState {
  model: Module;
  classes: string[];
  test: data.Dataset | null;
  c: number;
  size: number;
  paused: boolean;
  resume: (() => void) | null;
  stopped: boolean;
  step: number;
}

let training: TrainState | null = null;

function emit(e: TrainEvent): void {
  ctx.postMessage({ event: e });
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function idxDataset(images: Uint8Array, imgName: string, labels: Uint8Array, lblName: string, classes: string[]): data.ArrayImageDataset {
  const im = data.parseIdx(images, imgName),
    lb = data.parseIdx(labels, lblName);
  if (im.dtype !== 'uint8' || im.shape.length !== 3) throw new Error(`${imgName}: expected uint8 images [N, H, W], got ${im.dtype} [${im.shape.join(', ')}]`);
  if (lb.shape.length !== 1 || lb.shape[0] !== im.shape[0]) throw new Error(`${lblName}: expected ${im.shape[0]} labels, got shape [${lb.shape.join(', ')}]`);
  return new data.ArrayImageDataset(im.data as Uint8Array, Int32Array.from(lb.data as ArrayLike<number>), 1, im.shape[1], im.shape[2], classes);
}

async function trainData(s: TrainSettings): Promise<{ train: data.Dataset; test: data.Dataset | null; classes: string[]; c: number }> {
  if (s.data.kind === 'slice') {
    const u = (f: string) => new URL(f, s.data.kind === 'slice' ? s.data.baseUrl : '').href;
    const [a, b, c, d] = await Promise.all(
      ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map((f) => fetchBytes(u(f))),
    );
    return {
      train: idxDataset(a, 'train-images', b, 'train-labels', FASHION_CLASSES),
      test: idxDataset(c, 't10k-images', d, 't10k-labels', FASHION_CLASSES),
      classes: FASHION_CLASSES,
      c: 1,
    };
  }
  if (s.data.kind === 'idx') {
    // pair images with labels: the training pair, and a test pair when the names say t10k/test
    const parsed = s.data.files.map((f) => ({ f, a: data.parseIdx(f.bytes, f.name), test: /t10k|test/i.test(f.name) }));
    const pick = (test: boolean, dims: number) => parsed.find((p) => p.test === test && p.a.shape.length === dims)?.f;
    const ti = pick(false, 3),
      tl = pick(false, 1);
    if (!ti || !tl) throw new Error('drop an IDX images file ([N, H, W] uint8) and its labels file (names with t10k/test are the test set)');
    const labels = data.parseIdx(tl.bytes, tl.name).data;
    const n = Math.max(...Array.from(labels as ArrayLike<number>)) + 1;
    const classes = n === 10 ? FASHION_CLASSES : Array.from({ length: n }, (_, i) => String(i));
    const vi = pick(true, 3),
      vl = pick(true, 1);
    return {
      train: idxDataset(ti.bytes, ti.name, tl.bytes, tl.name, classes),
      test: vi && vl ? idxDataset(vi.bytes, vi.name, vl.bytes, vl.name, classes) : null,
      classes,
      c: 1,
    };
  }
  // a folder of images, one subfolder per class; every 5th image of a class is held out for testing
  const imgs = s.data.images;
  const classes = [...new Set(imgs.map((i) => i.label))].sort();
  if (classes.length < 2) throw new Error(`a folder of images needs at least 2 class subfolders, found ${classes.length}`);
  const sz = 3 * s.size * s.size;
  const seen = new Map<string, number>();
  const parts = { train: [] as number[], test: [] as number[] };
  imgs.forEach((im, i) => {
    const k = seen.get(im.label) ?? 0;
    seen.set(im.label, k + 1);
    (k % 5 === 4 ? parts.test : parts.train).push(i);
  });
  const make = (idx: number[]) => {
    const px = new Uint8Array(idx.length * sz);
    idx.forEach((i, j) => px.set(toImage(imgs[i].rgba, 3).data, j * sz));
    return new data.ArrayImageDataset(
      px,
      Int32Array.from(idx, (i) => classes.indexOf(imgs[i].label)),
      3,
      s.size,
      s.size,
      classes,
    );
  };
  return { train: make(parts.train), test: parts.test.length ? make(parts.test) : null, classes, c: 3 };
}

function normFor(c: number): data.Transform {
  return data.compose(new data.ToFloat(), c === 1 ? new data.Normalize(FASHION_MEAN, FASHION_STD) : new data.Normalize([...IMAGENET_MEAN], [...IMAGENET_STD]));
}

async function train(s: TrainSettings): Promise<void> {
  const t0 = performance.now();
  const d = await trainData(s);
  const size = d.train.get(0) instanceof Promise ? s.size : (d.train.get(0) as data.Sample).image.h;
  training?.model.dispose();
  const model = noGrad(() => new CifarResNet(s.depth, { numClasses: d.classes.length, inChannels: d.c, width: s.width }));
  const st: TrainState = { model, classes: d.classes, test: d.test, c: d.c, size, paused: false, resume: null, stopped: false, step: 0 };
  training = st;
  emit({
    type: 'info',
    text: `${d.train.length} training images of ${d.c}x${size}x${size}, ${d.classes.length} classes; CIFAR ResNet-${s.depth} width ${s.width}, ${model.numParameters().toLocaleString('en')} parameters; ${getBackend().name}, ${getThreads()} thread(s)`,
  });
  // the cast is the one train/config.ts makes (SGD's param groups do not type as the generic ones)
  const opt = new optim.SGD(model.parameters(), { lr: s.lr, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }) as unknown as optim.Optimizer<
    optim.Hyper & { lr: number }
  >;
  const sched = new optim.LRScheduler(opt, optim.oneCycleLR({ totalSteps: s.steps, pctStart: 0.2 }));
  const loader = new data.DataLoader(d.train, {
    batchSize: s.batchSize,
    shuffle: true,
    seed: s.seed,
    transform: normFor(d.c),
    numWorkers: 0,
    dropLast: d.train.length >= s.batchSize,
  });
  const tStart = performance.now();
  model.train();
  for (let epoch = 0; st.step < s.steps && !st.stopped; epoch++) {
    for await (const batch of loader.epochBatches(epoch, 0)) {
      if (st.paused) await new Promise<void>((r) => (st.resume = r));
      if (st.stopped || st.step >= s.steps) break;
      const { loss, logits } = trainStep({ model, optimizer: opt }, batch);
      sched.step();
      const C = d.classes.length;
      let right = 0;
      for (let i = 0; i < batch.y.length; i++) {
        let best = 0;
        for (let j = 1; j < C; j++) if (logits[i * C + j] > logits[i * C + best]) best = j;
        if (best === batch.y[i]) right++;
      }
      st.step++;
      const el = (performance.now() - tStart) / 1000;
      emit({
        type: 'step',
        step: st.step,
        steps: s.steps,
        loss,
        acc: right / batch.y.length,
        etaSec: (el / st.step) * (s.steps - st.step),
        imagesPerSec: (st.step * s.batchSize) / el,
      });
      // let pause/stop messages in between steps
      await new Promise((r) => setTimeout(r, 0));
    }
  }
  let testAcc: number | null = null;
  if (d.test) {
    const tl = new data.DataLoader(d.test, { batchSize: 100, transform: normFor(d.c), numWorkers: 0 });
    testAcc = (await evaluate(model, tl, { numClasses: d.classes.length })).acc;
  }
  model.eval();
  emit({ type: 'done', steps: st.step, testAcc, testCount: d.test?.length ?? 0, classes: d.classes, seconds: (performance.now() - t0) / 1000 });
}

function checkpoint(): { weights: Uint8Array; sidecar: string } {
  if (!training) throw new Error('train a model first');
  const st = training;
  const id = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('');
  const m = st.model as CifarResNet;
  const model = { name: `cifar_resnet${m.depth}`, options: { numClasses: st.classes.length, inChannels: st.c, width: m.width } };
  const arrays = new Map([...m.stateDict()].map(([k, t]) => [k, { dtype: 'F32' as const, shape: [...t.shape], data: t.dataSync() }]));
  const weights = writeSafetensors(arrays, { format: CHECKPOINT_FORMAT, checkpoint_id: id, model: model.name });
  // the sidecar of src/train/checkpoint.ts, so `resnet predict --checkpoint web-model.json` reads it too
  const sidecar = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    id,
    created: new Date().toISOString(),
    weights: 'web-model.safetensors',
    optimizerFile: null,
    model,
    classes: st.classes,
    input: { channels: st.c, size: [st.size, st.size], mode: st.c === 1 ? 'gray' : 'rgb' },
    evalTransform: normFor(st.c).spec?.(),
    config: { source: 'resnet-ts web app' },
    epoch: 0,
    globalStep: st.step,
    loader: null,
    epochProgress: null,
    optimizer: null,
    scheduler: null,
    rng: null,
    history: [],
    best: null,
    metrics: {},
  };
  return { weights, sidecar: JSON.stringify(sidecar, null, 1) + '\n' };
}

function classifyTrained(px: Rgba): ClassifyResult {
  if (!training) throw new Error('train a model first');
  const st = training;
  const pre: Pre = {
    c: st.c,
    h: st.size,
    w: st.size,
    resize: st.size,
    mean: st.c === 1 ? FASHION_MEAN : [...IMAGENET_MEAN],
    std: st.c === 1 ? FASHION_STD : [...IMAGENET_STD],
  };
  const wasTraining = st.model.training;
  st.model.eval();
  try {
    const x = preprocess(px, pre);
    const t0 = performance.now();
    const logits = logitsOf(st.model, x, [1, st.c, st.size, st.size]);
    return { top: topk(logits, st.classes, 5), ms: performance.now() - t0, backend: getBackend().name, threads: getThreads() };
  } finally {
    if (wasTraining) st.model.train();
  }
}

// ------------------------------------------------------------------------------------ dispatch

async function init(a: { backend: string; threads: number }) {
  await setBackend(a.backend);
  if (a.backend === 'wasm') await setThreads(a.threads);
  return { backend: getBackend().name, threads: getThreads(), isolated: (self as unknown as { crossOriginIsolated?: boolean }).crossOriginIsolated === true };
}

const OPS: Record<string, (a: never) => unknown> = {
  init,
  catalog: () => ({
    models: listModels().map((n) => ({ name: n, description: getModelEntry(n).description, input: getModelEntry(n).defaultInput })),
    pretrained: listPretrained().map((w) => ({ id: w.id, model: w.model, acc1: w.acc1, sizeMB: w.fileSizeMB })),
  }),
  load,
  classify: (a: { rgba: Rgba }) => {
    if (!current) throw new Error('load a model first');
    return classify(current, a.rgba);
  },
  logits: (a: { x: Float32Array; shape: number[] }) => {
    if (!current) throw new Error('load a model first');
    return logitsOf(current.fused ?? current.model, a.x, a.shape);
  },
  info,
  features,
  train: (a: TrainSettings) => {
    if (training && !training.stopped && training.step > 0 && !training.paused) throw new Error('training is already running');
    train(a).catch((e: unknown) => emit({ type: 'error', error: (e as Error).message }));
    return null;
  },
  pause: () => {
    if (training) training.paused = true;
    return null;
  },
  resume: () => {
    if (training) {
      training.paused = false;
      training.resume?.();
      training.resume = null;
    }
    return null;
  },
  stop: () => {
    if (training) {
      training.stopped = true;
      training.paused = false;
      training.resume?.();
    }
    return null;
  },
  checkpoint,
  classifyTrained: (a: { rgba: Rgba }) => classifyTrained(a.rgba),
};

ctx.onmessage = async (e: MessageEvent<Request>) => {
  const { id, op, args } = e.data;
  try {
    const f = OPS[op];
    if (!f) throw new Error(`unknown request '${op}'`);
    const result = await f(args as never);
    const transfer =
      result instanceof Float32Array
        ? [result.buffer]
        : (result as { data?: Float32Array })?.data instanceof Float32Array
          ? [(result as { data: Float32Array }).data.buffer]
          : [];
    ctx.postMessage({ id, ok: true, result }, transfer as Transferable[]);
  } catch (err) {
    ctx.postMessage({ id, ok: false, error: (err as Error).message ?? String(err) });
  }
};
