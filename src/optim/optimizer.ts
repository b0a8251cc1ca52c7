// Optimizer base: parameter groups, per-parameter state, zeroGrad, and a state dict that can be
// saved in a checkpoint and loaded back to resume exactly (as torch.optim.Optimizer).
//
// Parameters are given as tensors, as [name, tensor] pairs (model.namedParameters(): the state
// dict is then keyed by parameter name, which survives a model rebuilt in another process), or as
// groups { params, ...hyper-parameter overrides }. A parameter without a gradient (frozen, or not
// reached by the loss) is skipped by step(), as PyTorch skips p.grad None.
import { ConfigError, StateDictError } from '../base/errors.js';
import { shapeEq, shapeStr } from '../base/shape.js';
import { Tensor } from '../tensor/tensor.js';

export type ParamInput = Tensor | readonly [string, Tensor];
export type Hyper = Record<string, number | boolean>;
/** Any optimizer, whatever its hyper-parameters (SGD, Adam, AdamW): what trainers and schedulers take. */
export type AnyOptimizer = Optimizer<{ lr: number }>;

/** A parameter group as given to an optimizer: parameters plus hyper-parameter overrides. */
export type ParamGroupSpec<H extends Hyper> = { params: Iterable<ParamInput>; name?: string } & Partial<H>;

/** A live parameter group. Schedulers write `lr` (and `momentum` / `beta1`); `initialLr` stays. */
export type ParamGroup<H extends Hyper> = H & {
  params: Tensor[];
  /** Key of each parameter in the state dict (its name, or its global index as a string). */
  keys: string[];
  name?: string;
  lr: number;
  /** The lr the group was created with: the base that schedules scale. */
  initialLr: number;
};

export interface SerializedBuffer {
  shape: number[];
  data: Float32Array;
}

/** Optimizer state in a JSON-friendly form plus raw buffers (momentum, Adam moments). */
export interface OptimizerStateDict {
  type: string;
  groups: { name?: string; hyper: Hyper; initialLr: number; params: string[] }[];
  state: Record<string, { scalars: Record<string, number>; buffers: Record<string, SerializedBuffer> }>;
}

interface ParamState {
  scalars: Record<string, number>;
  buffers: Record<string, Tensor>;
}

function isGroupSpec(x: unknown): x is ParamGroupSpec<Hyper> {
  return typeof x === 'object' && x !== null && !(x instanceof Tensor) && !Array.isArray(x) && 'params' in x;
}

export abstract class Optimizer<H extends Hyper & { lr: number }> {
  abstract readonly type: string;
  readonly paramGroups: ParamGroup<H>[] = [];
  readonly defaults: H;
  protected readonly state = new Map<Tensor, ParamState>();

  constructor(params: Iterable<ParamInput> | Iterable<ParamGroupSpec<H>>, defaults: H) {
    this.defaults = { ...defaults };
    const list = [...(params as Iterable<ParamInput | ParamGroupSpec<H>>)];
    const specs: ParamGroupSpec<H>[] =
      list.length > 0 && isGroupSpec(list[0]) ? (list as ParamGroupSpec<H>[]) : [{ params: list as ParamInput[] } as unknown as ParamGroupSpec<H>];
    const seen = new Set<Tensor>();
    let index = 0;
    for (const spec of specs) {
      if (!isGroupSpec(spec)) throw new ConfigError('parameter groups must all be objects with a `params` list');
      const { params: ps, name, ...over } = spec as ParamGroupSpec<H> & Record<string, unknown>;
      const group = { ...this.defaults } as Record<string, unknown>;
      for (const [k, v] of Object.entries(over)) {
        if (v === undefined) continue;
        if (!(k in this.defaults))
          throw new ConfigError(`unknown ${this.constructor.name} option '${k}' in a parameter group (known: ${Object.keys(this.defaults).join(', ')})`);
        group[k] = v;
      }
      const tensors: Tensor[] = [];
      const keys: string[] = [];
      for (const p of ps) {
        const [key, t] = p instanceof Tensor ? [String(index), p] : [p[0], p[1]];
        index++;
        if (seen.has(t)) throw new ConfigError(`parameter '${key}' appears in more than one parameter group`);
        seen.add(t);
        tensors.push(t);
        keys.push(key);
      }
      const g = group as ParamGroup<H>;
      g.params = tensors;
      g.keys = keys;
      if (name !== undefined) g.name = name;
      g.initialLr = g.lr;
      this.validate(g, name ?? `group ${this.paramGroups.length}`);
      this.paramGroups.push(g);
    }
    if (this.paramGroups.every((g) => g.params.length === 0)) throw new ConfigError(`${this.constructor.name} got no parameters to optimize`);
    const allKeys = this.paramGroups.flatMap((g) => g.keys);
    if (new Set(allKeys).size !== allKeys.length) throw new ConfigError('parameter names given to the optimizer are not unique');
  }

  /** Check a group's hyper-parameters; throw ConfigError naming the group. */
  protected abstract validate(g: ParamGroup<H>, where: string): void;

  /** Apply one update to every parameter that has a gradient. */
  abstract step(): void;

  /** Drop every gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const g of this.paramGroups) for (const p of g.params) p.zeroGrad();
  }

  /** Set the learning rate of every group. */
  setLr(lr: number): void {
    for (const g of this.paramGroups) g.lr = lr;
  }

  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) {
      s = { scalars: {}, buffers: {} };
      this.state.set(p, s);
    }
    return s;
  }

  /** A zero buffer shaped like p on p's backend, kept out of any memory scope. */
  protected buffer(s: ParamState, name: string, p: Tensor): { t: Tensor; fresh: boolean } {
    let t = s.buffers[name];
    const fresh = !t;
    if (!t) t = s.buffers[name] = Tensor.empty(p.shape, p.backend).keep();
    return { t, fresh };
  }

  /** Hyper-parameters and state (momentum buffers...), read synchronously (ref, wasm); readStateDict() works on every backend. */
  stateDict(): OptimizerStateDict {
    return this.collectState((t) => t.dataSync());
  }

  /** stateDict() on any backend (webgpu too): the buffers are read asynchronously. */
  async readStateDict(): Promise<OptimizerStateDict> {
    const read = new Map<Tensor, Promise<Float32Array>>();
    this.collectState((t) => (read.set(t, t.data()), new Float32Array(0)));
    const values = new Map<Tensor, Float32Array>();
    await Promise.all([...read].map(async ([t, p]) => values.set(t, await p)));
    return this.collectState((t) => values.get(t)!);
  }

  private collectState(read: (t: Tensor) => Float32Array): OptimizerStateDict {
    const state: OptimizerStateDict['state'] = {};
    for (const g of this.paramGroups) {
      g.params.forEach((p, i) => {
        const s = this.state.get(p);
        if (!s) return;
        const buffers: Record<string, SerializedBuffer> = {};
        for (const [k, t] of Object.entries(s.buffers)) buffers[k] = { shape: [...t.shape], data: read(t) };
        state[g.keys[i]] = { scalars: { ...s.scalars }, buffers };
      });
    }
    return {
      type: this.type,
      groups: this.paramGroups.map((g) => {
        const hyper: Hyper = {};
        for (const k of Object.keys(this.defaults)) hyper[k] = g[k];
        return { ...(g.name !== undefined ? { name: g.name } : {}), hyper, initialLr: g.initialLr, params: [...g.keys] };
      }),
      state,
    };
  }

  /**
   * Restore hyper-parameters and state saved by stateDict(). The groups must hold the same
   * parameters (by key) with the same shapes; anything else is a StateDictError saying what differs.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    if (sd.type !== this.type) throw new StateDictError(`optimizer state is for ${sd.type}, but the optimizer is ${this.type}`);
    if (sd.groups.length !== this.paramGroups.length) {
      throw new StateDictError(`optimizer state has ${sd.groups.length} parameter group(s), the optimizer has ${this.paramGroups.length}`);
    }
    const byKey = new Map<string, Tensor>();
    sd.groups.forEach((sg, gi) => {
      const g = this.paramGroups[gi];
      if (sg.params.length !== g.keys.length || sg.params.some((k, i) => k !== g.keys[i])) {
        const missing = g.keys.filter((k) => !sg.params.includes(k));
        const extra = sg.params.filter((k) => !g.keys.includes(k));
        throw new StateDictError(
          `optimizer group ${gi} holds different parameters than saved` +
            `${missing.length ? ` (not in the saved state: ${missing.slice(0, 5).join(', ')})` : ''}${extra.length ? ` (saved but unknown: ${extra.slice(0, 5).join(', ')})` : ''}`,
        );
      }
      g.keys.forEach((k, i) => byKey.set(k, g.params[i]));
    });
    // validate everything before changing anything
    for (const [key, st] of Object.entries(sd.state)) {
      const p = byKey.get(key);
      if (!p) throw new StateDictError(`optimizer state for unknown parameter '${key}'`);
      for (const [bn, b] of Object.entries(st.buffers)) {
        if (!shapeEq(b.shape, p.shape) || b.data.length !== p.size) {
          throw new StateDictError(`optimizer state '${key}.${bn}' has shape ${shapeStr(b.shape)}, the parameter has ${shapeStr(p.shape)}`);
        }
      }
    }
    sd.groups.forEach((sg, gi) => {
      const g = this.paramGroups[gi] as unknown as Record<string, unknown>;
      for (const k of Object.keys(this.defaults)) if (k in sg.hyper) g[k] = sg.hyper[k];
      g.initialLr = sg.initialLr;
    });
    for (const s of this.state.values()) for (const t of Object.values(s.buffers)) t.dispose();
    this.state.clear();
    for (const [key, st] of Object.entries(sd.state)) {
      const p = byKey.get(key)!;
      const s = this.stateOf(p);
      s.scalars = { ...st.scalars };
      for (const [bn, b] of Object.entries(st.buffers)) {
        const t = Tensor.fromArray(b.data, p.shape, p.backend).keep();
        s.buffers[bn] = t;
      }
    }
  }

  /** Free the state buffers. */
  dispose(): void {
    for (const s of this.state.values()) for (const t of Object.values(s.buffers)) t.dispose();
    this.state.clear();
  }
}

export function checkNonNegative(v: unknown, what: string, where: string): void {
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new ConfigError(`${what} must be a non-negative number, got ${v} (${where})`);
}
