// `resnet export`: a model by the same flags as `resnet forward` (--weights ID|FILE|CHECKPOINT,
// --model, --arch), written an ONNX file with a dynamic batch dimension; `--verify` runs it in onnxruntime-node
// (when installed) and compares with our own forward.
import { ConfigError } from '../base/errors.js';
import { writeBytesAtomic } from '../io/files.js';
import { exportOnnxAsync, MIN_OPSET } from '../convert/onnx-export.js';
import type { Module } from '../nn/module.js';
import { modelInChannels } from '../models/registry.js';
import * as ops from '../tensor/ops.js';
import { noGrad } from '../tensor/tensor.js';
import { parseArch, parseCHW } from './util.js';
import { modelFromFlags } from './weights.js';

export interface ExportOptions {
  model?: string;
  arch?: string;
  weights?: string;
  onnx: string;
  input?: string;
  opset?: string;
  staticBatch?: boolean;
  dynamicSize?: boolean;
  verify?: boolean;
  cacheDir?: string;
  strictFinite?: boolean;
}

export async function runExport(o: ExportOptions, print: (s: string) => void): Promise<void> {
  const arch = parseArch(o.arch);
  const opset = o.opset === undefined ? MIN_OPSET : Number(o.opset);
  if (!Number.isInteger(opset)) throw new ConfigError(`--opset must be an integer, got '${o.opset}'`);
  const { model, name, source, input } = await modelFromFlags(o);
  const inC = modelInChannels(model);
  const chw = o.input ? parseCHW(o.input) : input;
  if (chw[0] !== inC) throw new ConfigError(`--input has ${chw[0]} channel(s), but ${name} expects ${inC}`);
  const bytes = await exportOnnxAsync(model, {
    inputShape: chw,
    opset,
    dynamicBatch: !o.staticBatch,
    dynamicSpatial: Boolean(o.dynamicSize),
    metadata: { 'resnet-ts.model': name, 'resnet-ts.arch': JSON.stringify(arch), 'resnet-ts.weights': o.weights ?? '' },
    docString: `${name} exported by resnet-ts`,
  });
  writeBytesAtomic(o.onnx, bytes);
  const out = model.describe(chw, '').outShape;
  const b = o.staticBatch ? '1' : 'batch';
  const hw = o.dynamicSize ? 'height, width' : `${chw[1]}, ${chw[2]}`;
  print(
    `wrote ${o.onnx}: ${name}${Object.keys(arch).length ? ` ${JSON.stringify(arch)}` : ''}, opset ${opset}, ` +
      `input [${b}, ${chw[0]}, ${hw}] → ${out.length === 1 ? 'logits' : 'features'} [${b}, ${out.join(', ')}], ${(bytes.length / 1e6).toFixed(1)} MB; weights: ${source}`,
  );
  if (o.verify) print(await verify(model, bytes, chw));
}

async function verify(model: Module, bytes: Uint8Array, chw: number[]): Promise<string> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch {
    return 'verify: onnxruntime-node is not installed (npm install onnxruntime-node), skipped';
  }
  const shape = [2, ...chw];
  const x = noGrad(() => ops.randn(shape));
  const ours = noGrad(() => model.forward(x));
  const sess = await ort.InferenceSession.create(bytes);
  // data() is a copy: onnxruntime does not accept a view of shared (wasm) memory.
  const res = await sess.run({ [sess.inputNames[0]]: new ort.Tensor('float32', await x.data(), shape) });
  const theirs = res[sess.outputNames[0]].data as Float32Array;
  const od = await ours.data();
  let maxAbs = 0,
    maxRef = 0;
  for (let i = 0; i < theirs.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(theirs[i] - od[i]));
    maxRef = Math.max(maxRef, Math.abs(od[i]));
  }
  if (theirs.length !== ours.size) throw new ConfigError(`verify: onnxruntime returned ${theirs.length} values, our forward ${ours.size}`);
  const ok = maxAbs <= 1e-4 * Math.max(1, maxRef);
  if (!ok) throw new ConfigError(`verify: onnxruntime and our forward differ by ${maxAbs.toExponential(2)} (max |logit| ${maxRef.toFixed(3)})`);
  return `verify: onnxruntime-node ${ort.env.versions?.common ?? ''} matches our forward on a random batch of 2 (max abs diff ${maxAbs.toExponential(2)}, max |value| ${maxRef.toFixed(3)})`;
}
