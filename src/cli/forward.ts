// `resnet forward`: load torchvision-named weights, run the model on an .npy batch, write logits.
import { writeFileSync } from 'node:fs';
import { ResnetError, ShapeError } from '../base/errors.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { readSafetensors } from '../io/safetensors.js';
import { createModel, modelInChannels } from '../models/registry.js';
import { tensor } from '../tensor/ops.js';
import { noGrad } from '../tensor/tensor.js';
import { parseArch, readBytes } from './util.js';

export interface ForwardOptions {
  model: string;
  weights?: string;
  input: string;
  output: string;
  arch?: string;
  trainMode?: boolean;
}

export function runForward(o: ForwardOptions, print: (s: string) => void): void {
  const model = noGrad(() => createModel(o.model, parseArch(o.arch)));
  if (o.weights) {
    const bytes = readBytes(o.weights, 'weights');
    const sd = withFile(o.weights, () => readSafetensors(bytes));
    withFile(o.weights, () => model.loadStateDict(sd));
  }
  const arr = withFile(o.input, () => readNpy(readBytes(o.input, 'input')));
  const inC = modelInChannels(model);
  if (arr.shape.length !== 4) throw new ShapeError(`input ${o.input} must be a batch [N, C, H, W], got shape [${arr.shape.join(', ')}]`);
  if (arr.shape[1] !== inC) {
    throw new ShapeError(`input ${o.input} has ${arr.shape[1]} channel(s), but ${o.model} expects ${inC} (shape [${arr.shape.join(', ')}])`);
  }
  if (o.trainMode) model.train();
  else model.eval();
  const t0 = performance.now();
  const logits = noGrad(() => model.forward(tensor(arr.data, arr.shape)));
  const ms = performance.now() - t0;
  try {
    writeFileSync(o.output, writeNpy({ dtype: 'F32', shape: [...logits.shape], data: logits.data }));
  } catch (e) {
    throw new ResnetError(`cannot write output '${o.output}': ${(e as Error).message}`);
  }
  print(`wrote ${o.output}: logits [${logits.shape.join(', ')}] in ${ms.toFixed(0)} ms (${o.trainMode ? 'train' : 'eval'} mode)`);
}

/** Prefix errors with the file they came from. */
function withFile<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ResnetError && !e.message.includes(path)) {
      e.message = `${path}: ${e.message}`;
    }
    throw e;
  }
}
