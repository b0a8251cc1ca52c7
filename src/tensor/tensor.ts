// Tensor: a shape plus a contiguous float32 buffer owned by a backend (an opaque Storage
// handle: values are read with dataSync() / await data() and written with write()), and the
// autograd links.
//
// Autograd is define-by-run: an op that sees an input with requiresGrad records a Node holding
// its inputs and a backward closure. backward() walks the graph in reverse topological order.
// Memory: every tensor made inside scope(fn) or noGrad(fn) is freed when fn returns, except what fn
// returns and tensors marked keep() (parameters, .grad). dispose() frees at once; a
// FinalizationRegistry frees buffers of tensors that were dropped without either.
import type { Backend, Storage } from '../backend/backend.js';
import { getBackend } from '../backend/registry.js';
import { numel, shapeStr, type Shape } from '../base/shape.js';
import { ResnetError, ShapeError } from '../base/errors.js';

export interface Node {
  readonly name: string;
  readonly inputs: readonly Tensor[];
  /** Tensors the backward needs besides the inputs (batch statistics, softmax): freed with the output. */
  readonly saved?: readonly Tensor[];
  /** Given dL/dout, return dL/dinput for each input (null where the input needs none). */
  backward(gradOut: Tensor): (Tensor | null)[];
  /** Set once a backward pass went through this node without retainGraph (a second pass is refused, as in PyTorch). */
  released?: boolean;
}

export interface BackwardOptions {
  /** Keep the graph usable for another backward() (PyTorch's retain_graph); otherwise a second pass is an error. */
  retainGraph?: boolean;
}

const finalizer = new FinalizationRegistry<{ backend: Backend; data: Storage }>((h) => h.backend.free(h.data));

const scopes: Set<Tensor>[] = [];
let gradEnabled = true;

export class Tensor {
  readonly shape: readonly number[];
  readonly backend: Backend;
  private _data: Storage | null;
  requiresGrad = false;
  grad: Tensor | null = null;
  /** The op that made this tensor (null for leaves). */
  node: Node | null = null;
  /** Optional name, used in error messages and by Module for parameters. */
  name?: string;

  /** Wraps a buffer already allocated by `backend`; the tensor owns it from now on. */
  constructor(data: Storage, shape: Shape, backend: Backend = getBackend()) {
    if (data.length !== numel(shape)) {
      throw new ShapeError(`buffer of ${data.length} floats cannot have shape ${shapeStr(shape)}`);
    }
    this._data = data;
    this.shape = Object.freeze([...shape]);
    this.backend = backend;
    finalizer.register(this, { backend, data }, this);
    const top = scopes[scopes.length - 1];
    if (top) top.add(this);
  }

  /** The backend's handle to the values: pass it to the backend's kernels, never look inside. */
  get storage(): Storage {
    if (!this._data) throw new ResnetError(`tensor${this.name ? ` '${this.name}'` : ''} of shape ${shapeStr(this.shape)} was used after dispose()`);
    return this._data;
  }

  /** A copy of the values; works on every backend. */
  data(): Promise<Float32Array> {
    return this.backend.read(this.storage);
  }

  /** A copy of the values, now; throws on a backend that can only read asynchronously. */
  dataSync(): Float32Array {
    const st = this.storage,
      be = this.backend;
    if (!be.readSync) throw new ResnetError(`the ${be.name} backend cannot read values synchronously: use await tensor.data()`);
    return be.readSync(st);
  }

  /** Overwrite the values in place (values.length must equal size). */
  write(values: ArrayLike<number>): this {
    if (values.length !== this.size) throw new ShapeError(`cannot write ${values.length} values into a tensor of shape ${shapeStr(this.shape)}`);
    this.backend.write(this.storage, values);
    return this;
  }

  get size(): number {
    return this.storage.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this._data === null;
  }

  /** A copy of the values as a plain Float32Array (a synchronous read, as dataSync()). */
  toFloat32Array(): Float32Array {
    return this.dataSync();
  }

  toArray(): number[] {
    return Array.from(this.dataSync());
  }

  item(): number {
    if (this.size !== 1) throw new ShapeError(`item() needs a tensor with one element, got shape ${shapeStr(this.shape)}`);
    return this.dataSync()[0];
  }

  /** Free the buffer now. Safe to call twice. */
  dispose(): void {
    if (!this._data) return;
    finalizer.unregister(this);
    this.backend.free(this._data);
    this._data = null;
    const saved = this.node?.saved;
    this.node = null;
    for (const s of scopes) s.delete(this);
    if (saved) for (const t of saved) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Exclude from the enclosing scope(s): the caller manages this tensor's life. */
  keep(): this {
    for (const s of scopes) s.delete(this);
    return this;
  }

  /** A new leaf sharing no graph with this one (the values are copied). */
  detach(): Tensor {
    const out = Tensor.empty(this.shape, this.backend);
    this.backend.copy(this.storage, out.storage);
    return out;
  }

  setRequiresGrad(v = true): this {
    this.requiresGrad = v;
    return this;
  }

  /**
   * Reverse-mode autodiff from this tensor. Without `grad`, this must be a scalar (grad = 1).
   * Gradients accumulate into the leaves' `.grad`. A graph can be walked once; pass
   * `{ retainGraph: true }` to walk it again (`backward(grad, opts)` or `backward(opts)`).
   */
  backward(grad?: Tensor | BackwardOptions | null, opts: BackwardOptions = {}): void {
    if (grad && !(grad instanceof Tensor)) backwardFrom(this, undefined, grad);
    else backwardFrom(this, grad ?? undefined, opts);
  }

  zeroGrad(): void {
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  toString(): string {
    if (this.isDisposed) return `Tensor(${shapeStr(this.shape)}, disposed)`;
    if (!this.backend.readSync) return `Tensor(${shapeStr(this.shape)}, ${this.backend.name})`;
    const d = this.dataSync();
    const head = Array.from(d.subarray(0, 6))
      .map((v) => v.toPrecision(4))
      .join(', ');
    return `Tensor(${shapeStr(this.shape)}, [${head}${d.length > 6 ? ', …' : ''}])`;
  }

  static empty(shape: Shape, backend: Backend = getBackend()): Tensor {
    return new Tensor(backend.alloc(numel(shape)), shape, backend);
  }

  /** A new tensor holding a copy of `values` (default shape: [values.length]). */
  static fromArray(values: ArrayLike<number>, shape: Shape = [values.length], backend: Backend = getBackend()): Tensor {
    if (numel(shape) !== values.length) throw new ShapeError(`${values.length} values cannot have shape ${shapeStr(shape)}`);
    const t = Tensor.empty(shape, backend);
    backend.write(t.storage, values);
    return t;
  }
}

// ---------------------------------------------------------------------------- grad mode

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Run fn (synchronous) without recording the graph, as a scope(): every tensor made inside is freed
 * when fn returns, except what fn returns and kept tensors (parameters, buffers, optimizer state,
 * .grad), like tfjs's tidy. So `noGrad(() => model.forward(tensor(x, shape)))` in a loop frees the
 * input and every intermediate at once instead of waiting for GC, which cannot see wasm memory.
 */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return scope(fn);
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Attach a node to `out` when grad mode is on and any input requires grad. `saved`: tensors the
 * backward reads besides the inputs; they leave every scope and are freed with `out` (at once
 * when no node is recorded).
 */
export function record(out: Tensor, name: string, inputs: readonly Tensor[], backward: (g: Tensor) => (Tensor | null)[], saved: Tensor[] = []): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { name, inputs, backward, saved: saved.map((t) => t.keep()) };
  } else {
    for (const t of saved) t.dispose();
  }
  return out;
}

// ---------------------------------------------------------------------------- scopes

/**
 * Run fn; free every tensor created inside it except those it returns (found in a returned
 * Tensor, array or plain object) and kept ones. Returned tensors move to the enclosing scope.
 */
export function scope<T>(fn: () => T): T {
  const mine = new Set<Tensor>();
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors, 0);
  for (const t of mine) if (!survivors.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  if (parent) for (const t of survivors) if (mine.has(t)) parent.add(t);
  return result;
}

function collectTensors(v: unknown, out: Set<Tensor>, depth: number): void {
  if (depth > 4 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) {
    for (const x of v) collectTensors(x, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(v) === Object.prototype || v instanceof Map) {
    const vals = v instanceof Map ? [...v.values()] : Object.values(v);
    for (const x of vals) collectTensors(x, out, depth + 1);
  }
}

// ---------------------------------------------------------------------------- backward

function backwardFrom(root: Tensor, grad: Tensor | undefined, opts: BackwardOptions): void {
  if (!root.requiresGrad) throw new ResnetError('backward() on a tensor that does not require grad');
  if (!grad && root.size !== 1) {
    throw new ShapeError(`backward() without a gradient needs a scalar, got shape ${shapeStr(root.shape)}`);
  }
  // Topological order by iterative DFS (ResNet-152 graphs are too deep for recursion).
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const ins = t.node ? t.node.inputs : [];
    if (i < ins.length) {
      top[1]++;
      const c = ins[i];
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  // before anything accumulates: a graph already walked (without retainGraph) is refused whole
  for (const t of order) {
    if (t.node?.released) {
      throw new ResnetError(
        `backward() through a graph that was already walked (at '${t.node.name}'): its leaves' .grad already hold these gradients; ` +
          'pass { retainGraph: true } to the first backward() to walk it again, or run the forward pass again',
      );
    }
  }
  if (!opts.retainGraph) for (const t of order) if (t.node) t.node.released = true;
  const grads = new Map<Tensor, Tensor>();
  noGrad(() => {
    const g0 = grad ? grad.detach() : fullLike(root, 1);
    grads.set(root, g0);
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (!t.node) {
        // Leaf: accumulate into .grad, which outlives any scope.
        if (t.grad) {
          t.backend.addInPlace(t.grad.storage, g.storage);
          g.dispose();
        } else {
          t.grad = g.keep();
        }
        continue;
      }
      const gin = t.node.backward(g);
      if (!gin.includes(g)) g.dispose();
      const ins = t.node.inputs;
      const used = new Set<Tensor>();
      for (let j = 0; j < ins.length; j++) {
        let gi = gin[j];
        // A rule may return the same tensor twice (add(x, x)) or pass g through: copy repeats.
        if (gi && used.has(gi)) gi = gi.detach();
        if (gi) used.add(gi);
        const inp = ins[j];
        if (!gi) continue;
        if (!inp.requiresGrad) {
          gi.dispose();
          continue;
        }
        const prev = grads.get(inp);
        if (prev) {
          inp.backend.addInPlace(prev.storage, gi.storage);
          gi.dispose();
        } else {
          grads.set(inp, gi);
        }
      }
    }
  });
}

function fullLike(t: Tensor, v: number): Tensor {
  const out = Tensor.empty(t.shape, t.backend);
  t.backend.fill(out.storage, v);
  return out;
}
