// Transfer learning: find and replace a model's classification head, load pretrained weights
// into everything but the head (a non-strict load that reports what it did and refuses anything
// else that does not fit), freeze the backbone or its first stages, and build parameter groups
// (larger lr for the new head, no weight decay on BatchNorm and biases).
import { ConfigError, StateDictError } from '../base/errors.js';
import { shapeStr } from '../base/shape.js';
import { BatchNorm2d, Linear } from '../nn/layers.js';
import { matchStateDict, type ArrayLikeEntry, type Module } from '../nn/module.js';
import type { ParamGroupSpec, ParamInput } from '../optim/optimizer.js';
import { Tensor } from '../tensor/tensor.js';

/** The classification head: the last Linear module (torchvision/CIFAR `fc`, d2l `7`). */
export function findHead(model: Module): { name: string; module: Linear } {
  let head: { name: string; module: Linear } | null = null;
  for (const [name, m] of model.namedModules()) if (m instanceof Linear) head = { name, module: m };
  if (!head) throw new ConfigError(`${model.constructor.name} has no Linear classification head (built with includeTop: false?)`);
  return head;
}

/** Put a fresh Linear(inFeatures, numClasses) in place of the head. Returns the head's name. */
export function replaceHead(model: Module, numClasses: number): string {
  const { name, module } = findHead(model);
  if (module.outFeatures === numClasses) return name;
  model.setModule(name, new Linear(module.inFeatures, numClasses, module.bias !== null));
  return name;
}

export interface PretrainedReport {
  file: string;
  loaded: number;
  total: number;
  head: string;
  /** Head tensors in the file that were not loaded (another number of classes). */
  headSkipped: string[];
  /** Head tensors of the model left at their fresh initialisation. */
  headInitialised: string[];
  message: string;
}

/**
 * Load pretrained weights into `model`. Every backbone tensor must be present with the right
 * shape and the file may hold nothing else; only the head may differ (it is then left freshly
 * initialised, as when a model is fine-tuned for new classes). Anything else is a StateDictError
 * naming the file and the keys, e.g. weights of another architecture.
 */
export function loadPretrained(model: Module, weights: Map<string, ArrayLikeEntry | Tensor>, file: string): PretrainedReport {
  const head = findHead(model).name;
  const isHead = (k: string) => k === `${head}.weight` || k === `${head}.bias`;
  const own = model.stateDict();
  const match = matchStateDict(own, weights);
  // the head may be missing from the file or of another shape: it then starts fresh
  const missing = match.missing.filter((k) => !isHead(k)),
    unexpected = match.unexpected;
  const badShape = match.mismatched.filter((b) => !isHead(b.key)).map((b) => `${b.key} (file ${shapeStr(b.given)}, model ${shapeStr(b.model)})`);
  const headSkipped = match.mismatched.filter((b) => isHead(b.key)).map((b) => `${b.key} ${shapeStr(b.given)}`);
  const headInitialised = [...own.keys()].filter((k) => isHead(k) && !match.fit.has(k));
  const use = new Map([...match.fit].map((k) => [k, weights.get(k)!]));
  const modelName = model.constructor.name;
  if (use.size === 0) {
    const sample = [...weights.keys()].slice(0, 3).join(', ');
    throw new StateDictError(
      `${file}: none of its ${weights.size} tensors fit this ${modelName} (keys like ${sample}); is it a checkpoint of another architecture?`,
    );
  }
  const list = (a: string[]) => (a.length > 4 ? `${a.slice(0, 4).join(', ')} … (${a.length} in all)` : a.join(', '));
  if (badShape.length || missing.length || unexpected.length) {
    const parts = [];
    if (badShape.length) parts.push(`shape mismatch: ${list(badShape)}`);
    if (missing.length) parts.push(`missing: ${list(missing)}`);
    if (unexpected.length) parts.push(`not in the model: ${list(unexpected)}`);
    throw new StateDictError(`${file} does not fit this ${modelName} (another architecture or depth?): ${parts.join('; ')}`);
  }
  model.loadStateDict(use, { strict: false });
  const message =
    `loaded ${use.size} of ${own.size} tensors from ${file}` +
    (headInitialised.length ? `; new head '${head}' (${headInitialised.join(', ')}) initialised fresh` : '') +
    (headSkipped.length ? `; not loaded from the file: ${headSkipped.join(', ')}` : '');
  return { file, loaded: use.size, total: own.size, head, headSkipped, headInitialised, message };
}

export interface FreezeResult {
  spec: string;
  frozenParams: number;
  trainableParams: number;
  /** BatchNorm layers inside the frozen part: keep them in eval mode while training. */
  frozenBN: BatchNorm2d[];
  frozenModules: string[];
}

/**
 * Freeze part of the model: 'none'; 'backbone' (everything but the head); 'stem' or 'layerN'
 * (the stem and stages up to and including layerN; for d2l's Sequential the stage index N).
 * Frozen parameters get requiresGrad = false.
 */
export function freeze(model: Module, spec: string): FreezeResult {
  const head = findHead(model).name;
  for (const p of model.parameters()) p.requiresGrad = true;
  const top = model.children();
  let frozenNames: string[];
  if (spec === 'none') frozenNames = [];
  else if (spec === 'backbone') frozenNames = top.map(([n]) => n).filter((n) => n !== head && !head.startsWith(`${n}.`));
  else {
    const m = /^(?:layer(\d+)|stem)$/.exec(spec);
    if (!m) throw new ConfigError(`--freeze must be none, backbone, stem or layerN, got '${spec}'`);
    const n = m[1] === undefined ? 0 : Number(m[1]);
    let idx = top.findIndex(([name]) => name === `layer${n}`);
    if (idx < 0 && n === 0) idx = top.findIndex(([name]) => /^layer\d+$/.test(name)) - 1;
    if (idx < 0 && top.every(([name]) => /^\d+$/.test(name))) idx = n < top.length ? n : -1; // d2l: '0' stem, '1'..'4' stages
    const known = top.filter(([name]) => /^layer\d+$/.test(name)).map(([name]) => name);
    if (idx < 0 || top[idx][0] === head) {
      throw new ConfigError(
        `--freeze ${spec}: this model has no such stage (stages: stem, ${
          known.length
            ? known.join(', ')
            : top
                .slice(1)
                .filter(([name]) => name !== head)
                .map(([name]) => `layer${name}`)
                .join(', ')
        })`,
      );
    }
    frozenNames = top
      .slice(0, idx + 1)
      .map(([name]) => name)
      .filter((name) => name !== head);
  }
  const frozenBN: BatchNorm2d[] = [];
  let frozenParams = 0;
  for (const name of frozenNames) {
    const sub = model.getModule(name);
    for (const p of sub.parameters()) {
      p.requiresGrad = false;
      frozenParams += p.size;
    }
    for (const [, m] of sub.namedModules()) if (m instanceof BatchNorm2d) frozenBN.push(m);
  }
  const trainableParams = model.numParameters(true);
  return { spec, frozenParams, trainableParams, frozenBN, frozenModules: frozenNames };
}

export interface GroupOptions {
  /** Multiply the lr of the head's parameters (default 1). */
  headLrMult?: number;
  /** No weight decay on BatchNorm parameters and biases (default true). */
  noWeightDecayOnBnAndBias?: boolean;
  weightDecay: number;
  lr: number;
}

/**
 * Parameter groups over the trainable parameters, named for the state dict: backbone/head ×
 * decay/no_decay, empty groups left out. Keys are parameter names, so optimizer state survives a
 * rebuilt model.
 */
export function parameterGroups(model: Module, o: GroupOptions): ParamGroupSpec<{ lr: number; weightDecay: number }>[] {
  const head = findHead(model).name;
  const bnParams = new Set<Tensor>();
  for (const [, m] of model.namedModules()) if (m instanceof BatchNorm2d) for (const p of m.parameters()) bnParams.add(p);
  const buckets = new Map<string, ParamInput[]>();
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const inHead = name.startsWith(`${head}.`);
    const noDecay = (o.noWeightDecayOnBnAndBias ?? true) && (bnParams.has(p) || p.rank <= 1);
    const key = `${inHead ? 'head' : 'backbone'}${noDecay ? '_no_decay' : ''}`;
    if (!buckets.has(key)) buckets.set(key, []);
    buckets.get(key)!.push([name, p]);
  }
  const mult = o.headLrMult ?? 1;
  const out: ParamGroupSpec<{ lr: number; weightDecay: number }>[] = [];
  for (const key of ['backbone', 'backbone_no_decay', 'head', 'head_no_decay']) {
    const ps = buckets.get(key);
    if (!ps?.length) continue;
    out.push({ name: key, params: ps, lr: key.startsWith('head') ? o.lr * mult : o.lr, weightDecay: key.endsWith('no_decay') ? 0 : o.weightDecay });
  }
  if (out.length === 0) throw new ConfigError('no trainable parameters (everything is frozen)');
  return out;
}
