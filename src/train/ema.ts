// An exponential moving average of a model's weights (timm's --model-ema, Keras's use_ema):
// after every optimizer step, for each parameter and floating buffer (BatchNorm running stats)
//   ema = d * ema + (1 - d) * w,   d = min(decay, (1 + t) / (10 + t)),  t = updates so far,
// the second term keeping the first few hundred steps from being dominated by the random init.
// num_batches_tracked is copied, not averaged. Evaluating the average instead of the last
// weights removes most of the noise of a high learning rate: on Fashion-MNIST after one epoch of
// the fashion-mnist-28 recipe, PyTorch's test accuracy is 0.847 with the weights, 0.875 with
// their average (scripts/torch_fashion_recipe.py). Browser-safe: no files. The average lives on
// the model's backend and is updated by a backend kernel (movingAverage).
import { movingAverage } from '../backend/ref/optim.js';
import { ConfigError, StateDictError } from '../base/errors.js';
import type { Module } from '../nn/module.js';
import { tagArray, type TaggedArray } from '../nn/state.js';
import type { Tensor } from '../tensor/tensor.js';

export class ModelEma {
  /** Steps averaged so far (drives the warm-up of the decay). */
  updates = 0;
  /** The average, one tensor per state-dict entry, on the model's backend. */
  private readonly shadow = new Map<string, Tensor>();

  constructor(
    model: Module,
    readonly decay: number,
  ) {
    if (!(decay > 0 && decay < 1)) throw new ConfigError(`EMA decay must be in (0, 1), got ${decay}`);
    for (const [k, t] of model.stateDict()) this.shadow.set(k, t.detach().keep());
  }

  /** The decay used for the next update. */
  currentDecay(): number {
    return Math.min(this.decay, (1 + this.updates) / (10 + this.updates));
  }

  /** Fold the model's current weights into the average (call after each optimizer step). */
  update(model: Module): void {
    const d = this.currentDecay();
    for (const [k, t] of model.stateDict()) {
      const s = this.shadow.get(k);
      if (!s || s.size !== t.size) throw new StateDictError(`EMA has no entry '${k}' of ${t.size} values (the model changed after the EMA was made)`);
      if (k.endsWith('num_batches_tracked')) assign(s, t);
      else movingAverage(t.backend, s.storage, t.storage, d);
    }
    this.updates++;
  }

  /** The averaged weights as named arrays, in the model's state-dict order and shapes (a synchronous read: ref, wasm). */
  arrays(model: Module): Map<string, TaggedArray> {
    const out = new Map<string, TaggedArray>();
    for (const [k, t] of model.stateDict()) out.set(k, tagArray(k, t.shape, this.shadow.get(k)!.dataSync()));
    return out;
  }

  /** arrays() on any backend (webgpu too): the average is read asynchronously. */
  async readArrays(model: Module): Promise<Map<string, TaggedArray>> {
    const keys = [...model.stateDict()].map(([k, t]) => [k, t.shape] as const);
    const data = await Promise.all(keys.map(([k]) => this.shadow.get(k)!.data()));
    return new Map(keys.map(([k, shape], i) => [k, tagArray(k, shape, data[i])]));
  }

  /** Replace the average (resume): `weights` must hold every entry of the model's state dict. */
  load(weights: ReadonlyMap<string, { data: Float32Array }>, updates: number, what = 'EMA weights'): void {
    for (const [k, s] of this.shadow) {
      const a = weights.get(k);
      if (!a) throw new StateDictError(`${what}: missing '${k}'`);
      if (a.data.length !== s.size) throw new StateDictError(`${what}: '${k}' has ${a.data.length} values, the model ${s.size}`);
    }
    for (const [k, s] of this.shadow) s.write(weights.get(k)!.data);
    this.updates = updates;
  }

  /** Copy the average into the model (e.g. at the end of training, so it is what gets used). */
  copyTo(model: Module): void {
    for (const [k, t] of model.stateDict()) assign(t, this.shadow.get(k)!);
  }

  /** Run fn with the model holding the averaged weights; its own weights are put back after. */
  async withAveraged<T>(model: Module, fn: () => Promise<T>): Promise<T> {
    const saved = new Map<string, Tensor>();
    for (const [k, t] of model.stateDict()) saved.set(k, t.detach().keep());
    this.copyTo(model);
    try {
      return await fn();
    } finally {
      for (const [k, t] of model.stateDict()) assign(t, saved.get(k)!);
      for (const t of saved.values()) t.dispose();
    }
  }

  /** Free the average. */
  dispose(): void {
    for (const t of this.shadow.values()) t.dispose();
    this.shadow.clear();
  }
}

/** dst's values = src's (same size), across backends too. */
function assign(dst: Tensor, src: Tensor): void {
  if (dst.backend === src.backend) dst.backend.copy(src.storage, dst.storage);
  else dst.write(src.dataSync());
}
