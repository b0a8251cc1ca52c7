// ONNX export of the registry's ResNets (torchvision, d2l, CIFAR) as a plain inference graph:
// Conv, BatchNormalization (kept as its own node, not folded into Conv, so every weight stays
// exactly the model's value), Relu, MaxPool, AveragePool, Add, GlobalAveragePool, Flatten, Gemm,
// and for the CIFAR option-A shortcut Slice (stride-2 subsampling) + Pad (zero channels), read
// off the model's structure (src/models/structure.ts). Weights are
// initializers named by their state-dict keys (`layer1.0.conv1.weight`, `bn1.running_mean`,
// `fc.bias`); num_batches_tracked is not part of an inference graph and is left out.
// The graph is exported with eval-mode semantics (BatchNorm uses the running statistics).
// Browser-safe.
import { ConfigError, ShapeError } from '../base/errors.js';
import { AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { type ModelStructure, type Unit, UnknownStructureError, structureOf } from '../models/structure.js';
import { GraphBuilder, MAX_OPSET, MIN_OPSET, encodeOnnxModel, float, int, ints, str } from '../io/onnx-build.js';

export { MAX_OPSET, MIN_OPSET };

export interface OnnxExportOptions {
  /** Input [C, H, W] (without batch) or [N, C, H, W]; the batch entry is ignored when dynamicBatch. */
  inputShape: number[];
  /** ONNX opset (13 to 21). Default 13. */
  opset?: number;
  /** Batch dimension as the symbolic 'batch' (default true). */
  dynamicBatch?: boolean;
  /** Height and width as the symbols 'height'/'width' (default false: fixed from inputShape). */
  dynamicSpatial?: boolean;
  inputName?: string;
  outputName?: string;
  /** Extra key/value pairs written to the model's metadata_props (e.g. the model name and arch). */
  metadata?: Record<string, string>;
  docString?: string;
}

/** Where initializer values come from: a synchronous read, or values read before the walk. */
type Read = (t: Tensor) => Float32Array;

const INT64_MAX = (1n << 63n) - 1n;
const join = (prefix: string, n: string) => (prefix ? `${prefix}.${n}` : n);

/** Emit the nodes of structural units applied to value `x`; returns the output value. */
function emitUnits(g: GraphBuilder, units: Unit[], x: string, where: string, read: Read): string {
  for (const u of units) {
    if (u.kind === 'conv') {
      x = emit(g, u.conv, u.path, x, read);
      if (u.bn) x = emit(g, u.bn, u.bnPath!, x, read);
      if (u.relu) x = g.node('Relu', u.relu, [x]);
    } else if (u.kind === 'pool') x = emit(g, u.pool, u.path, x, read);
    else {
      // Option A: x[:, :, ::s, ::s], then zero channels on both sides.
      if (u.stride !== 1) {
        x = g.node('Slice', `${where}.shortcut`, [
          x,
          g.int64Init('shortcut.starts', [0, 0]),
          g.int64Init('shortcut.ends', [INT64_MAX, INT64_MAX]),
          g.int64Init('shortcut.axes', [2, 3]),
          g.int64Init(`shortcut.steps${u.stride}`, [u.stride, u.stride]),
        ]);
      }
      if (u.padBefore || u.padAfter) {
        x = g.node(
          'Pad',
          `${where}.shortcut`,
          [x, g.int64Init(`shortcut.pads${u.padBefore}_${u.padAfter}`, [0, u.padBefore, 0, 0, 0, u.padAfter, 0, 0])],
          [str('mode', 'constant')],
        );
      }
    }
  }
  return x;
}

/** A structured model: stem, blocks (relu(main + shortcut)), head. */
function emitStructure(g: GraphBuilder, s: ModelStructure, x: string, read: Read): string {
  let y = emitUnits(g, s.stem, x, 'stem', read);
  for (const b of s.stages.flat()) {
    const main = emitUnits(g, b.main, y, b.path, read);
    const sc = emitUnits(g, b.shortcut, y, b.path, read);
    y = g.node('Relu', `${b.path}.relu_out`, [g.node('Add', b.path, [main, sc])]);
  }
  if (!s.head) return y;
  y = emit(g, s.head.pool, s.head.poolPath, y, read);
  y = g.node('Flatten', 'flatten', [y], [int('axis', 1)]);
  return emit(g, s.head.fc, s.head.fcPath, y, read);
}

/** Emit the nodes of module `m` (state-dict prefix `prefix`) applied to value `x`; returns the output value. */
function emit(g: GraphBuilder, m: Module, prefix: string, x: string, read: Read): string {
  const name = prefix || 'model';
  if (m instanceof Conv2d) {
    const w = g.floatInit(join(prefix, 'weight'), m.weight.shape, read(m.weight));
    const inputs = [x, w];
    if (m.bias) inputs.push(g.floatInit(join(prefix, 'bias'), m.bias.shape, read(m.bias)));
    return g.node('Conv', name, inputs, [
      ints('kernel_shape', m.kernelSize),
      ints('strides', m.stride),
      ints('pads', [m.padding[0], m.padding[1], m.padding[0], m.padding[1]]),
      ints('dilations', m.dilation),
      int('group', m.groups),
    ]);
  }
  if (m instanceof BatchNorm2d) {
    if (!m.weight || !m.bias || !m.runningMean || !m.runningVar) {
      throw new ConfigError(`${name}: only BatchNorm2d with affine weights and running statistics can be exported`);
    }
    const inputs = [
      g.floatInit(join(prefix, 'weight'), m.weight.shape, read(m.weight)),
      g.floatInit(join(prefix, 'bias'), m.bias.shape, read(m.bias)),
      g.floatInit(join(prefix, 'running_mean'), m.runningMean.shape, read(m.runningMean)),
      g.floatInit(join(prefix, 'running_var'), m.runningVar.shape, read(m.runningVar)),
    ];
    return g.node('BatchNormalization', name, [x, ...inputs], [float('epsilon', m.eps), float('momentum', 1 - (m.momentum ?? 0.1))]);
  }
  if (m instanceof ReLU) return g.node('Relu', name, [x]);
  if (m instanceof MaxPool2d || m instanceof AvgPool2d) {
    const p = m.geometry();
    const attrs = [ints('kernel_shape', p.kernel), ints('strides', p.stride), ints('pads', [...p.padding, ...p.padding]), int('ceil_mode', p.ceilMode ? 1 : 0)];
    if (m instanceof MaxPool2d) return g.node('MaxPool', name, [x], [...attrs, ints('dilations', p.dilation)]);
    return g.node('AveragePool', name, [x], [...attrs, int('count_include_pad', p.countIncludePad ? 1 : 0)]);
  }
  if (m instanceof AdaptiveAvgPool2d) {
    const o = typeof m.outputSize === 'number' ? [m.outputSize, m.outputSize] : m.outputSize;
    if (o[0] !== 1 || o[1] !== 1)
      throw new ConfigError(`${name}: only AdaptiveAvgPool2d(1) can be exported (as GlobalAveragePool), got output size ${o.join('x')}`);
    return g.node('GlobalAveragePool', name, [x]);
  }
  if (m instanceof Flatten) {
    if (m.startDim !== 1 || m.endDim !== -1) throw new ConfigError(`${name}: only Flatten(1, -1) can be exported`);
    return g.node('Flatten', name, [x], [int('axis', 1)]);
  }
  if (m instanceof Linear) {
    const inputs = [x, g.floatInit(join(prefix, 'weight'), m.weight.shape, read(m.weight))];
    if (m.bias) inputs.push(g.floatInit(join(prefix, 'bias'), m.bias.shape, read(m.bias)));
    return g.node('Gemm', name, inputs, [float('alpha', 1), float('beta', 1), int('transB', 1)]);
  }
  if (m instanceof Dropout) return x; // eval mode: identity
  if (m instanceof Identity) return g.node('Identity', name, [x]);
  if (m instanceof Sequential) {
    let y = x;
    for (const [n, c] of m.children()) y = emit(g, c, join(prefix, n), y, read);
    return y;
  }
  throw new ConfigError(`cannot export module ${name} of type ${m.constructor.name} to ONNX`);
}

/**
 * Export `model` as an ONNX model (serialized ModelProto bytes) computing its eval-mode forward.
 * The input is named 'input' [batch, C, H, W]; the output 'logits' [batch, classes] (or
 * 'features' [batch, C, h, w] for a ResNet built with includeTop: false). Reads the weights
 * synchronously (ref, wasm backends); exportOnnxAsync works on every backend.
 */
export function exportOnnx(model: Module, opts: OnnxExportOptions): Uint8Array {
  return buildOnnx(model, opts, (t) => t.dataSync());
}

/** exportOnnx on any backend (webgpu too): the weights are read asynchronously first. */
export async function exportOnnxAsync(model: Module, opts: OnnxExportOptions): Promise<Uint8Array> {
  const tensors = [...model.stateDict().values()];
  const data = await Promise.all(tensors.map((t) => t.data()));
  const values = new Map(tensors.map((t, i) => [t, data[i]]));
  return buildOnnx(model, opts, (t) => {
    const v = values.get(t);
    if (!v) throw new ConfigError(`a weight of shape [${t.shape.join(', ')}] is not in the model's state dict`);
    return v;
  });
}

function buildOnnx(model: Module, opts: OnnxExportOptions, read: Read): Uint8Array {
  const opset = opts.opset ?? MIN_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new ConfigError(`ONNX opset must be an integer from ${MIN_OPSET} to ${MAX_OPSET}, got ${opset}`);
  }
  const shape = opts.inputShape;
  if (!Array.isArray(shape) || (shape.length !== 3 && shape.length !== 4) || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ShapeError(`inputShape must be [C, H, W] or [N, C, H, W] with positive integers, got ${JSON.stringify(shape)}`);
  }
  const chw = shape.slice(-3);
  const batch = shape.length === 4 ? shape[0] : 1;
  const dynamicBatch = opts.dynamicBatch ?? true;
  const dynamicSpatial = opts.dynamicSpatial ?? false;
  // Output shape (and a check that the input fits the model) from the layer walk.
  const outShape = model.describe(chw, '').outShape;
  const hasTop = outShape.length === 1;
  const inputName = opts.inputName ?? 'input';
  const outputName = opts.outputName ?? (hasTop ? 'logits' : 'features');

  const g = new GraphBuilder(opset);
  let st: ModelStructure | null;
  try {
    st = structureOf(model);
  } catch (e) {
    if (e instanceof UnknownStructureError) throw new ConfigError(`cannot export ${model.constructor.name} to ONNX: ${e.message}`);
    throw e;
  }
  const y = st ? emitStructure(g, st, inputName, read) : emit(g, model, '', inputName, read);
  // Rename the last node's output to the graph output name.
  const last = g.nodes[g.nodes.length - 1];
  if (!last || last.output[0] !== y) throw new ConfigError('the model has no ONNX node producing its output');
  last.output[0] = outputName;

  const b: number | string = dynamicBatch ? 'batch' : batch;
  const inDims: (number | string)[] = [b, chw[0], dynamicSpatial ? 'height' : chw[1], dynamicSpatial ? 'width' : chw[2]];
  const outDims: (number | string)[] = hasTop
    ? [b, outShape[0]]
    : [b, outShape[0], dynamicSpatial ? 'out_height' : outShape[1], dynamicSpatial ? 'out_width' : outShape[2]];
  return encodeOnnxModel(g, {
    input: { name: inputName, dims: inDims },
    output: { name: outputName, dims: outDims },
    metadata: opts.metadata,
    docString: opts.docString,
  });
}
