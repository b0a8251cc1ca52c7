// Feature extraction shared by the model classes: run a model's stages in order and keep the
// outputs the caller names (timm's features_only / torchvision's create_feature_extractor, by
// stage name). Stops after the deepest stage asked for; under noGrad the stage outputs nobody asked
// for are freed at once instead of waiting for the GC.
import { ConfigError } from '../base/errors.js';
import { isGradEnabled, type Tensor } from '../tensor/tensor.js';

export interface FeatureOptions<L extends string = string> {
  /** Stage names, e.g. ['layer2', 'layer4'] or ['pool'] (the pooled embedding [N, C]). */
  layers: readonly L[];
}

export type Stage = readonly [name: string, run: (x: Tensor) => Tensor];

export function collectFeatures<L extends string>(x: Tensor, stages: readonly Stage[], layers: readonly L[], model: string): Record<L, Tensor> {
  const names = stages.map(([n]) => n);
  if (layers.length === 0) throw new ConfigError(`forwardFeatures: name at least one layer (${model}: ${names.join(', ')})`);
  let last = -1;
  for (const l of layers) {
    const i = names.indexOf(l);
    if (i < 0) throw new ConfigError(`forwardFeatures: ${model} has no layer '${l}' (choices: ${names.join(', ')})`);
    last = Math.max(last, i);
  }
  const out = {} as Record<L, Tensor>;
  const free = !isGradEnabled();
  let y = x;
  for (let i = 0; i <= last; i++) {
    const next = stages[i][1](y);
    if (free && y !== x && !layers.includes(names[i - 1] as L)) y.dispose();
    y = next;
    if (layers.includes(names[i] as L)) out[names[i] as L] = y;
  }
  return out;
}
