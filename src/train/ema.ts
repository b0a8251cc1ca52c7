// An exponential moving average of a model's weights (timm's --model-ema, Keras's use_ema):
// after every optimizer step, for each parameter and floating buffer (BatchNorm running stats)
//   ema = d * ema + (1 - d) * w,   d = min(decay, (1 + t) / (10 + t)),  t = updates so far,
// the second term keeping the first few hundred steps from being dominated by the random init.
// num_batches_tracked is copied, not averaged. Evaluating the average instead of the last
// weights removes most of the noise of a high learning rate: on Fashion-MNIST after one epoch of
// the fashion-mnist-28 recipe, PyTorch's test accuracy is 0.847 with the weights, 0.875 with
// their average (scripts/torch_fashion_recipe.py). Browser-safe: plain arrays, no files.
import { ConfigError, StateDictError } from '../base/errors.js';
import type { Module } from '../nn/module.js';
import { tagArray, type TaggedArray } from '../nn/state.js';

export class ModelEma {
  /** Steps averaged so far (drives the warm-up of the decay). */
  updates = 0;
  private readonly shadow = new Map<string, Float32Array>();

  constructor(model: Module, readonly decay: number) {
    if (!(decay > 0 && decay < 1)) throw new ConfigError(`EMA decay must be in (0, 1), got ${decay}`);
    for (const [k, t] of model.stateDict()) this.shadow.set(k, t.data.slice());
  }

  /** The decay used for the next update. */
  currentDecay(): number {
    return Math.min(this.decay, (1 + this.updates) / (10 + this.updates));
  }

  /** Fold the model's current weights into the average (call after each optimizer step). */
  update(model: Module): void {
    const d = this.currentDecay(), e = 1 - d;
    for (const [k, t] of model.stateDict()) {
      const s = this.shadow.get(k);
      if (!s || s.length !== t.data.length) throw new StateDictError(`EMA has no entry '${k}' of ${t.data.length} values (the model changed after the EMA was made)`);
      const w = t.data;
      if (k.endsWith('num_batches_tracked')) s.set(w);
      else for (let i = 0; i < s.length; i++) s[i] = d * s[i] + e * w[i];
    }
    this.updates++;
  }

  /** The averaged weights as named arrays, in the model's state-dict order and shapes. */
  arrays(model: Module): Map<string, TaggedArray> {
    const out = new Map<string, TaggedArray>();
    for (const [k, t] of model.stateDict()) out.set(k, tagArray(k, t.shape, this.shadow.get(k)!.slice()));
    return out;
  }

  /** Replace the average (resume): `weights` must hold every entry of the model's state dict. */
  load(weights: ReadonlyMap<string, { data: Float32Array }>, updates: number, what = 'EMA weights'): void {
    for (const [k, s] of this.shadow) {
      const a = weights.get(k);
      if (!a) throw new StateDictError(`${what}: missing '${k}'`);
      if (a.data.length !== s.length) throw new StateDictError(`${what}: '${k}' has ${a.data.length} values, the model ${s.length}`);
      s.set(a.data);
    }
    this.updates = updates;
  }

  /** Copy the average into the model (e.g. at the end of training, so it is what gets used). */
  copyTo(model: Module): void {
    for (const [k, t] of model.stateDict()) t.data.set(this.shadow.get(k)!);
  }

  /** Run fn with the model holding the averaged weights; its own weights are put back after. */
  async withAveraged<T>(model: Module, fn: () => Promise<T>): Promise<T> {
    const saved = new Map<string, Float32Array>();
    for (const [k, t] of model.stateDict()) saved.set(k, t.data.slice());
    this.copyTo(model);
    try {
      return await fn();
    } finally {
      for (const [k, t] of model.stateDict()) t.data.set(saved.get(k)!);
    }
  }
}
