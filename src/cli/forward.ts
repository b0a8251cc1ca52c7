// `resnet forward`: a model by --weights (a weight id, a checkpoint, or bare weights with --model)
// or --model alone, run on an .npy batch; writes the logits (or the features of --arch
// '{"includeTop":false}') as .npy.
import { ShapeError } from '../base/errors.js';
import { readNpyFile, writeNpyFile } from '../io/files.js';
import { tryFuseForInference } from '../models/fused.js';
import { modelInChannels } from '../models/registry.js';
import { tensor } from '../tensor/ops.js';
import { noGrad } from '../tensor/tensor.js';
import { modelFromFlags } from './weights.js';

export interface ForwardOptions {
  model?: string;
  /** A weight id such as resnet50.IMAGENET1K_V2, a checkpoint, or a file (.safetensors, .pth, .npz). */
  weights?: string;
  input: string;
  output: string;
  arch?: string;
  trainMode?: boolean;
  cacheDir?: string;
  strictFinite?: boolean;
}

export async function runForward(o: ForwardOptions, print: (s: string) => void): Promise<void> {
  const { model, name } = await modelFromFlags(o);
  const arr = readNpyFile(o.input);
  const inC = modelInChannels(model);
  if (arr.shape.length !== 4) throw new ShapeError(`input ${o.input} must be a batch [N, C, H, W], got shape [${arr.shape.join(', ')}]`);
  if (arr.shape[1] !== inC) {
    throw new ShapeError(`input ${o.input} has ${arr.shape[1]} channel(s), but ${name} expects ${inC} (shape [${arr.shape.join(', ')}])`);
  }
  if (o.trainMode) model.train();
  else model.eval();
  // Eval mode runs the fused copy (BN folded, ReLU and add in the conv epilogue; the same logits
  // within the parity tests' rtol 1e-4 / atol 1e-5, test/fused.test.ts), folded in place: this
  // process needs no second copy of the weights.
  using fused = o.trainMode ? undefined : (tryFuseForInference(model, { inPlace: true }) ?? undefined);
  const t0 = performance.now();
  const logits = noGrad(() => (fused ?? model).forward(tensor(arr.data, arr.shape)));
  const data = await logits.data(); // the time includes the read: a GPU runs the queued work until then
  const ms = performance.now() - t0;
  writeNpyFile(o.output, { dtype: 'F32', shape: [...logits.shape], data });
  print(`wrote ${o.output}: logits [${logits.shape.join(', ')}] in ${ms.toFixed(0)} ms (${o.trainMode ? 'train' : 'eval'} mode)`);
}
