// Module: the PyTorch nn.Module model in camelCase. Children, parameters and buffers are kept in
// registration order, so stateDict() yields torchvision's key order and names
// (`layer1.0.downsample.0.weight`, `bn1.running_mean`, `bn1.num_batches_tracked`, `fc.bias`).
import { StateDictError } from '../base/errors.js';
import { numel, shapeEq, shapeStr, type Shape } from '../base/shape.js';
import { Tensor } from '../tensor/tensor.js';

/** A named array as it comes from a weights file (values already converted to float32). */
export interface ArrayLikeEntry {
  shape: readonly number[];
  data: Float32Array;
  dtype?: string;
}
export type StateDictInput = Map<string, ArrayLikeEntry | Tensor> | Record<string, ArrayLikeEntry | Tensor>;

/** One row of a layer walk (`resnet info`). */
export interface LayerInfo {
  name: string;
  type: string;
  outShape: number[]; // without the batch dimension
  params: number;
  macs: number;
}

export interface LoadReport {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export abstract class Module {
  training = true;
  private readonly _params = new Map<string, Tensor | null>();
  private readonly _buffers = new Map<string, Tensor | null>();
  private readonly _children = new Map<string, Module | null>();
  /** Buffers that are not saved in the state dict (PyTorch's persistent=False). */
  private readonly _nonPersistent = new Set<string>();

  abstract forward(x: Tensor): Tensor;

  /** Output shape (without batch) and the layer rows this module contributes, for `resnet info`. */
  describe(_inShape: Shape, prefix: string): { outShape: number[]; rows: LayerInfo[] } {
    throw new Error(`${this.constructor.name} (${prefix || 'root'}) has no describe()`);
  }

  protected registerParameter(name: string, t: Tensor | null): Tensor | null {
    if (t) {
      t.requiresGrad = true;
      t.keep();
    }
    this._params.set(name, t);
    return t;
  }

  protected registerBuffer(name: string, t: Tensor | null, persistent = true): Tensor | null {
    if (t) t.keep();
    this._buffers.set(name, t);
    if (!persistent) this._nonPersistent.add(name);
    return t;
  }

  protected registerModule<M extends Module | null>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /**
   * Replace (or add) a child, e.g. `model.setModule('fc', new Linear(512, 5))` to put a new head
   * on a pretrained network. The attribute of the same name is updated too.
   */
  setModule(name: string, m: Module | null): void {
    const dot = name.indexOf('.');
    if (dot >= 0) {
      const child = this.getModule(name.slice(0, dot));
      child.setModule(name.slice(dot + 1), m);
      return;
    }
    this._children.set(name, m);
    if (name in this) (this as Record<string, unknown>)[name] = m;
  }

  getModule(name: string): Module {
    return name.split('.').reduce<Module>((m, part) => {
      const child = m._children.get(part);
      if (!child) throw new StateDictError(`no submodule '${name}'`);
      return child;
    }, this);
  }

  children(): [string, Module][] {
    return [...this._children].filter((e): e is [string, Module] => e[1] !== null);
  }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, m] of this.children()) yield* m.namedModules(prefix ? `${prefix}.${n}` : n);
  }

  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    for (const [n, p] of this._params) if (p) yield [prefix ? `${prefix}.${n}` : n, p];
    for (const [n, m] of this.children()) yield* m.namedParameters(prefix ? `${prefix}.${n}` : n);
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  *namedBuffers(prefix = ''): Generator<[string, Tensor]> {
    for (const [n, b] of this._buffers) if (b) yield [prefix ? `${prefix}.${n}` : n, b];
    for (const [n, m] of this.children()) yield* m.namedBuffers(prefix ? `${prefix}.${n}` : n);
  }

  numParameters(trainableOnly = false): number {
    let n = 0;
    for (const p of this.parameters()) if (!trainableOnly || p.requiresGrad) n += p.size;
    return n;
  }

  /** Parameters and persistent buffers, in PyTorch's order (per module: params, buffers, then children). */
  stateDict(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const walk = (m: Module, pre: string) => {
      for (const [n, p] of m._params) if (p) out.set(pre + n, p);
      for (const [n, b] of m._buffers) if (b && !m._nonPersistent.has(n)) out.set(pre + n, b);
      for (const [n, c] of m.children()) walk(c, `${pre}${n}.`);
    };
    walk(this, prefix);
    return out;
  }

  /**
   * Copy values from `sd` into this module's parameters and buffers, by name. All or nothing:
   * every entry is checked before any value is written. Shape mismatches, data whose length does
   * not fit its shape, and integer data for a floating-point tensor (int8 of a quantized model
   * is not cast silently) always throw, naming every offending key. With strict (the default)
   * missing or unexpected keys throw too; otherwise they are returned in the report. A missing
   * `num_batches_tracked` is tolerated, as PyTorch does for old checkpoints.
   */
  loadStateDict(sd: StateDictInput, opts: { strict?: boolean } = {}): LoadReport {
    const strict = opts.strict ?? true;
    const src = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const { missing: missingKeys, unexpected: unexpectedKeys, mismatched, fit } = matchStateDict(own, src);
    const bad = mismatched.map((b) => `${b.key}: expected ${shapeStr(b.model)}, got ${shapeStr(b.given)}`);
    const ints: string[] = [];
    for (const k of fit) {
      const e = src.get(k)!;
      const n = e instanceof Tensor ? e.size : e.data?.length; // a tensor's storage always fits its shape
      if (n !== numel(e.shape)) bad.push(`${k}: shape ${shapeStr(e.shape)} needs ${numel(e.shape)} values, the data has ${n ?? 'none'}`);
      const dtype = e instanceof Tensor ? undefined : e.dtype;
      if (dtype && INTEGER_DTYPES.has(dtype) && !k.endsWith('num_batches_tracked')) ints.push(`${k} (${dtype})`);
    }
    if (bad.length) throw new StateDictError(`shape mismatch for ${bad.length} key(s): ${bad.join('; ')}`);
    if (ints.length) {
      throw new StateDictError(
        `integer data for ${ints.length} floating-point tensor(s): ${listKeys(ints)}; ` +
          'not cast silently (a quantized model? dequantize it in PyTorch and save the float state_dict)',
      );
    }
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      const parts = [];
      if (missingKeys.length) parts.push(`missing keys: ${listKeys(missingKeys)}`);
      if (unexpectedKeys.length) parts.push(`unexpected keys: ${listKeys(unexpectedKeys)}`);
      throw new StateDictError(`state dict does not match the model: ${parts.join('; ')}`);
    }
    for (const [k, t] of own) {
      const e = src.get(k);
      if (!e) continue;
      if (e instanceof Tensor && e.backend === t.backend) t.backend.copy(e.storage, t.storage);
      else t.write(e instanceof Tensor ? e.dataSync() : e.data);
    }
    return { missingKeys, unexpectedKeys };
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** Free every parameter and buffer. The module is unusable afterwards. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
  }

  /** Apply fn to every submodule (this one included), children first, as torch's apply. */
  apply(fn: (m: Module, name: string) => void): this {
    const all = [...this.namedModules()].reverse();
    for (const [n, m] of all) fn(m, n);
    return this;
  }
}

/** How a state dict meets a model's own entries (by name; see matchStateDict). */
export interface StateDictMatch {
  /** Keys present on both sides with shapes that fit. */
  fit: Set<string>;
  /** The model's keys the state dict lacks (but a missing num_batches_tracked, tolerated as PyTorch does for old checkpoints). */
  missing: string[];
  /** The state dict's keys the model lacks. */
  unexpected: string[];
  mismatched: { key: string; model: Shape; given: readonly number[] }[];
}

/** Match a state dict against a model's: a shape fits when equal, or when both hold one element. */
export function matchStateDict(own: Map<string, Tensor>, sd: Map<string, { shape: readonly number[] }>): StateDictMatch {
  const m: StateDictMatch = { fit: new Set(), missing: [], unexpected: [], mismatched: [] };
  for (const [k, t] of own) {
    const e = sd.get(k);
    if (!e) {
      if (!k.endsWith('num_batches_tracked')) m.missing.push(k);
    } else if (shapeEq(e.shape, t.shape) || (t.size === 1 && numel(e.shape) === 1)) {
      m.fit.add(k);
    } else {
      m.mismatched.push({ key: k, model: t.shape, given: e.shape });
    }
  }
  for (const k of sd.keys()) if (!own.has(k)) m.unexpected.push(k);
  return m;
}

/** Stored types that are integers (num_batches_tracked is the one integer entry of a ResNet's state). */
const INTEGER_DTYPES = new Set(['I64', 'I32', 'I16', 'I8', 'U8', 'BOOL']);

function listKeys(keys: string[]): string {
  return keys.length > 8 ? `${keys.slice(0, 8).join(', ')} … (${keys.length} in all)` : keys.join(', ');
}
