// ONNX import of ResNet graphs: as torch.onnx.export writes torchvision / d2l / CIFAR ResNets
// (BatchNorm usually folded into Conv with a bias, deduplicated initializers behind Identity
// nodes, names like `onnx::Conv_193`), and as our own exportOnnx writes them (BatchNormalization
// nodes, initializers named by state-dict keys).
//
// The graph is followed from its input: stem (Conv [+BN] + Relu [+ MaxPool]), residual blocks
// (two branches from one value meeting at an Add, then Relu), head (GlobalAveragePool, Flatten,
// Gemm). From what it finds (block type, blocks per stage, groups, width, dilation, stem,
// shortcut kind) it names the registry model and its options, builds it, checks every conv's
// stride/padding/dilation/groups against the graph, and maps the initializers to state-dict
// keys. A Conv whose BatchNorm was folded into it becomes conv weight + a BatchNorm that only
// adds the bias (weight 1, running_mean 0, running_var 1 - eps), so the logits are the graph's.
// Every node must be accounted for: an op outside these patterns is a FormatError naming it.
// Browser-safe.
import { FormatError, ResnetError } from '../base/errors.js';
import { Linear, MaxPool2d } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import type { TaggedArray } from '../nn/state.js';
import { MODELS, type ModelEntry, createModel, familyOptions, getModelEntry } from '../models/registry.js';
import { type ConvUnit as MConvUnit, type ModelStructure, type Unit, foldBatchNorm, structureOf } from '../models/structure.js';
import { noGrad } from '../tensor/tensor.js';
import {
  type GNode,
  type OnnxLimits,
  type TensorInfo,
  DEFAULT_ONNX_LIMITS,
  attrFloat,
  attrInt,
  attrInts,
  attrString,
  parseOnnx,
  tensorToFloat32,
  tensorToInts,
} from '../io/onnx-graph.js';
import { OnnxIndex as Graph } from '../io/onnx-index.js';

export interface ImportedArch {
  /** Registry name, for createModel / `--model`. */
  model: string;
  /** Constructor options (only those that differ from the builder's defaults), for `--arch`. */
  options: Record<string, unknown>;
}

export interface OnnxImportResult {
  model: Module;
  arch: ImportedArch;
  /** The state dict (torchvision key names) that was loaded into `model`. */
  stateDict: Map<string, TaggedArray>;
  /** What was recognised, for display. */
  info: {
    producer: string;
    opset: number;
    irVersion: number;
    /** True when (some) BatchNorms were folded into the convs in the graph. */
    foldedBatchNorm: boolean;
    summary: string;
  };
}

interface ConvAttrs {
  kernel: number[];
  stride: number[];
  pad: number[];
  dilation: number[];
  group: number;
}
interface BnUnit {
  node: GNode;
  scale: TensorInfo;
  bias: TensorInfo;
  mean: TensorInfo;
  var: TensorInfo;
  eps: number;
}
interface ConvUnit {
  kind: 'conv';
  node: GNode;
  w: TensorInfo;
  b: TensorInfo | null;
  attrs: ConvAttrs;
  bn: BnUnit | null;
  relu: boolean;
  out: string;
}
interface PoolUnit {
  kind: 'pool';
  node: GNode;
  op: 'MaxPool' | 'AveragePool';
}
interface PadUnit {
  kind: 'subsamplePad';
  node: GNode;
  stride: [number, number];
  padBefore: number;
  padAfter: number;
}
/** What the graph holds, in the vocabulary of src/models/structure.ts. */
type GUnit = ConvUnit | PoolUnit | PadUnit;
interface Block {
  main: GUnit[];
  shortcut: GUnit[];
  at: string;
}
interface Head {
  weight: Float32Array;
  outF: number;
  inF: number;
  bias: Float32Array | null;
}

function fail(msg: string): never {
  throw new FormatError(`onnx: ${msg}`);
}

function convAttrs(n: GNode, w: TensorInfo): ConvAttrs {
  if (w.dims.length !== 4) fail(`Conv '${n.name}': weight '${w.name}' has shape [${w.dims.join(', ')}], only 2-D convolutions are supported`);
  const kernel = attrInts(n, 'kernel_shape', w.dims.slice(2))!;
  if (kernel.length !== 2 || kernel[0] !== w.dims[2] || kernel[1] !== w.dims[3])
    fail(`Conv '${n.name}': kernel_shape [${kernel}] does not match weight [${w.dims}]`);
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  const pads = attrInts(n, 'pads', [0, 0, 0, 0])!;
  if (autoPad !== 'NOTSET' && !(autoPad === 'VALID' && pads.every((p) => p === 0))) fail(`Conv '${n.name}': auto_pad=${autoPad} is not supported`);
  if (pads.length !== 4 || pads[0] !== pads[2] || pads[1] !== pads[3]) fail(`Conv '${n.name}': asymmetric pads [${pads}] are not supported`);
  const stride = attrInts(n, 'strides', [1, 1])!;
  const dilation = attrInts(n, 'dilations', [1, 1])!;
  const group = attrInt(n, 'group', 1);
  if (stride.length !== 2 || dilation.length !== 2 || ![...stride, ...dilation, group].every((v) => Number.isSafeInteger(v) && v >= 1 && v <= 1 << 16)) {
    fail(`Conv '${n.name}': invalid strides [${stride}], dilations [${dilation}] or group ${group}`);
  }
  return { kernel, stride, pad: [pads[0], pads[1]], dilation, group };
}

/** A Conv consuming `v`, with the BatchNormalization and Relu that directly follow it. */
function readConv(g: Graph, n: GNode, v: string): ConvUnit {
  if (n.op !== 'Conv') fail(`expected a Conv after '${v}', found ${n.op} '${n.name}'`);
  if (g.canon(n.inputs[0]) !== g.canon(v)) fail(`Conv '${n.name}' takes '${n.inputs[0]}' as data, expected '${v}'`);
  g.visit(n);
  const w = g.constant(n.inputs[1], `Conv '${n.name}' weight`);
  const b = n.inputs[2] ? g.constant(n.inputs[2], `Conv '${n.name}' bias`) : null;
  const attrs = convAttrs(n, w);
  if (w.dims[1] * attrs.group <= 0) fail(`Conv '${n.name}': empty weight`);
  if (b && (b.dims.length !== 1 || b.dims[0] !== w.dims[0])) fail(`Conv '${n.name}': bias shape [${b.dims}] does not match ${w.dims[0]} output channels`);
  let out = n.outputs[0];
  let bn: BnUnit | null = null;
  const next = g.uses(out);
  if (next.length === 1 && next[0].op === 'BatchNormalization') {
    const m = next[0];
    g.visit(m);
    if (attrInt(m, 'training_mode', 0) !== 0) fail(`BatchNormalization '${m.name}' is in training mode`);
    for (const o of m.outputs.slice(1)) if (o && g.uses(o).length) fail(`BatchNormalization '${m.name}': running statistics outputs are used`);
    const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => g.constant(m.inputs[i], `BatchNormalization '${m.name}'`));
    for (const t of [scale, bias, mean, variance]) {
      if (t.dims.length !== 1 || t.dims[0] !== w.dims[0]) fail(`BatchNormalization '${m.name}': '${t.name}' has shape [${t.dims}], expected [${w.dims[0]}]`);
    }
    bn = { node: m, scale, bias, mean, var: variance, eps: attrFloat(m, 'epsilon', 1e-5) };
    out = m.outputs[0];
  }
  let relu = false;
  const after = g.uses(out);
  if (after.length === 1 && after[0].op === 'Relu') {
    g.visit(after[0]);
    relu = true;
    out = after[0].outputs[0];
  }
  return { kind: 'conv', node: n, w, b, attrs, bn, relu, out };
}

const CHAIN_OPS = new Set(['Conv', 'MaxPool', 'AveragePool', 'Slice', 'Pad']);

/** Units from node `first` (consuming `v`) while each value feeds exactly one Conv, pool, Slice or Pad. */
function readChain(g: Graph, v: string, first: GNode): { units: GUnit[]; end: string } {
  const units: GUnit[] = [];
  let n: GNode | null = first,
    cur = v;
  for (let guard = 0; n && CHAIN_OPS.has(n.op); guard++) {
    if (guard > 64) fail(`a chain of more than 64 layers starts at '${first.name}'`);
    if (n.op === 'Conv') {
      const u = readConv(g, n, cur);
      units.push(u);
      cur = u.out;
    } else {
      if (g.canon(n.inputs[0]) !== g.canon(cur)) fail(`${n.op} '${n.name}' does not take '${cur}' as data`);
      g.visit(n);
      for (const o of n.outputs.slice(1)) if (o && g.uses(o).length) fail(`${n.op} '${n.name}': its second output is used`);
      if (n.op === 'MaxPool' || n.op === 'AveragePool') units.push({ kind: 'pool', node: n, op: n.op });
      else {
        // Slice and Pad in a row are one option-A shortcut.
        const last = units[units.length - 1];
        const u: PadUnit = last?.kind === 'subsamplePad' ? last : { kind: 'subsamplePad', node: n, stride: [1, 1], padBefore: 0, padAfter: 0 };
        if (u !== last) units.push(u);
        if (n.op === 'Slice') {
          const [h, w] = readSubsample(g, n);
          u.stride = [u.stride[0] * h, u.stride[1] * w];
        } else {
          const [b, a] = readChannelPad(g, n);
          u.padBefore += b;
          u.padAfter += a;
        }
      }
      cur = n.outputs[0];
    }
    const next = g.uses(cur);
    n = next.length === 1 ? next[0] : null;
  }
  return { units, end: cur };
}

/** Follow one branch of a block from node `first` (consuming `v`) to the Add that closes it. */
function readBranch(g: Graph, v: string, first: GNode): { units: GUnit[]; add: GNode; end: string } {
  if (first.op === 'Add') return { units: [], add: first, end: v };
  if (!CHAIN_OPS.has(first.op)) fail(`unexpected ${first.op} '${first.name}' at the start of a residual branch`);
  const { units, end } = readChain(g, v, first);
  const add = g.single(end, `after ${units[units.length - 1].node.op} '${units[units.length - 1].node.name}'`);
  if (add.op !== 'Add')
    fail(`unexpected ${add.op} '${add.name}' in a residual branch (expected Conv, BatchNormalization, Relu, a pool, Slice, Pad or the Add)`);
  return { units, add, end };
}

/** Slice(x, starts, ends, axes, steps) that keeps batch and channels and subsamples H and W: [stepH, stepW]. */
function readSubsample(g: Graph, n: GNode): [number, number] {
  const ints = (i: number, what: string) => tensorToInts(g.constant(n.inputs[i], `Slice '${n.name}' ${what}`), 8);
  const starts = ints(1, 'starts'),
    ends = ints(2, 'ends');
  const axes = n.inputs[3] ? ints(3, 'axes') : starts.map((_, i) => i);
  const steps = n.inputs[4] ? ints(4, 'steps') : starts.map(() => 1);
  if (starts.length !== ends.length || axes.length !== starts.length || steps.length !== starts.length) fail(`Slice '${n.name}': inconsistent lengths`);
  const step = new Map<number, number>();
  for (let i = 0; i < axes.length; i++) {
    const ax = axes[i] < 0 ? axes[i] + 4 : axes[i];
    if (starts[i] !== 0 || ends[i] < 2 ** 30 || steps[i] < 1)
      fail(`Slice '${n.name}': only [0::step] slices are supported (axis ${axes[i]}: start ${starts[i]}, end ${ends[i]}, step ${steps[i]})`);
    if ((ax === 0 || ax === 1) && steps[i] !== 1) fail(`Slice '${n.name}': subsampling batch or channels is not a ResNet shortcut`);
    step.set(ax, steps[i]);
  }
  return [step.get(2) ?? 1, step.get(3) ?? 1];
}

/** Pad(x, pads[, value]) with zeros on the channel axis only. */
function readChannelPad(g: Graph, n: GNode): [number, number] {
  const mode = attrString(n, 'mode', 'constant');
  if (mode !== 'constant') fail(`Pad '${n.name}': mode ${mode} is not supported`);
  const pads = n.inputs[1] ? tensorToInts(g.constant(n.inputs[1], `Pad '${n.name}' pads`), 8) : attrInts(n, 'pads', null);
  if (!pads || pads.length !== 8) fail(`Pad '${n.name}': expected 8 pads for a 4-D tensor`);
  if (n.inputs[2]) {
    const v = tensorToFloat32(g.constant(n.inputs[2], `Pad '${n.name}' value`));
    if (v.some((x) => x !== 0)) fail(`Pad '${n.name}': only zero padding is supported`);
  }
  if (n.inputs[3]) fail(`Pad '${n.name}': the axes input is not supported`);
  const [n0, c0, h0, w0, n1, c1, h1, w1] = pads!;
  if (n0 || h0 || w0 || n1 || h1 || w1 || c0 < 0 || c1 < 0) fail(`Pad '${n.name}': only channel padding is supported (pads [${pads}])`);
  return [c0, c1];
}

function readHead(g: Graph, first: GNode, v: string): { head: Head; out: string } {
  let n = first;
  let cur = v;
  const take = (node: GNode) => {
    if (g.canon(node.inputs[0]) !== g.canon(cur)) fail(`${node.op} '${node.name}' does not take '${cur}' as data`);
    g.visit(node);
    cur = node.outputs[0];
  };
  // Global average pool.
  let keep = true;
  if (n.op === 'GlobalAveragePool') take(n);
  else if (n.op === 'ReduceMean') {
    const axes = n.inputs[1] ? tensorToInts(g.constant(n.inputs[1], `ReduceMean '${n.name}' axes`), 8) : attrInts(n, 'axes', null);
    const norm = (axes ?? []).map((a) => (a < 0 ? a + 4 : a)).sort();
    if (norm.length !== 2 || norm[0] !== 2 || norm[1] !== 3) fail(`ReduceMean '${n.name}': only a mean over height and width is supported`);
    keep = attrInt(n, 'keepdims', 1) !== 0;
    take(n);
  } else fail(`expected GlobalAveragePool after the last block, found ${n.op} '${n.name}'`);
  n = g.single(cur, 'after the global average pool');
  // Flatten to [N, C].
  if (n.op === 'Flatten') {
    if (attrInt(n, 'axis', 1) !== 1) fail(`Flatten '${n.name}': only axis 1 is supported`);
    take(n);
    n = g.single(cur, 'after Flatten');
  } else if (n.op === 'Reshape') {
    const shape = tensorToInts(g.constant(n.inputs[1], `Reshape '${n.name}' shape`), 8);
    if (shape.length !== 2 || !(shape[1] === -1 || shape[0] === 0 || shape[0] === -1)) fail(`Reshape '${n.name}': shape [${shape}] is not a flatten`);
    take(n);
    n = g.single(cur, 'after Reshape');
  } else if (n.op === 'Squeeze') {
    take(n);
    n = g.single(cur, 'after Squeeze');
  } else if (keep) fail(`expected Flatten after the global average pool, found ${n.op} '${n.name}'`);
  // Linear classifier.
  let weight: Float32Array,
    outF: number,
    inF: number,
    bias: Float32Array | null = null;
  if (n.op === 'Gemm') {
    take(n);
    if (attrInt(n, 'transA', 0) !== 0) fail(`Gemm '${n.name}': transA is not supported`);
    const transB = attrInt(n, 'transB', 0) !== 0;
    const alpha = attrFloat(n, 'alpha', 1),
      beta = attrFloat(n, 'beta', 1);
    const B = g.constant(n.inputs[1], `Gemm '${n.name}' B`);
    if (B.dims.length !== 2) fail(`Gemm '${n.name}': B has shape [${B.dims}]`);
    [outF, inF] = transB ? B.dims : [B.dims[1], B.dims[0]];
    const raw = tensorToFloat32(B);
    weight = transB ? raw : transpose(raw, B.dims[0], B.dims[1]);
    if (alpha !== 1) for (let i = 0; i < weight.length; i++) weight[i] *= alpha;
    if (n.inputs[2]) bias = readBias(g.constant(n.inputs[2], `Gemm '${n.name}' C`), outF, `Gemm '${n.name}'`, beta);
  } else if (n.op === 'MatMul') {
    take(n);
    const B = g.constant(n.inputs[1], `MatMul '${n.name}' B`);
    if (B.dims.length !== 2) fail(`MatMul '${n.name}': B has shape [${B.dims}]`);
    [inF, outF] = B.dims;
    weight = transpose(tensorToFloat32(B), inF, outF);
    const next = g.uses(cur);
    if (next.length === 1 && next[0].op === 'Add') {
      const add = next[0];
      const other = add.inputs.find((i) => g.canon(i) !== g.canon(cur));
      if (add.inputs.length !== 2 || !other) fail(`Add '${add.name}' after MatMul is not a bias add`);
      g.visit(add);
      bias = readBias(g.constant(other, `Add '${add.name}' bias`), outF, `Add '${add.name}'`, 1);
      cur = add.outputs[0];
    }
  } else return fail(`expected Gemm (the fc layer), found ${n.op} '${n.name}'`);
  if (g.uses(cur).length)
    fail(
      `the fc output '${cur}' feeds further nodes (${g
        .uses(cur)
        .map((x) => x.op)
        .join(', ')}), which are not supported`,
    );
  return { head: { weight: weight!, outF: outF!, inF: inF!, bias }, out: cur };
}

function readBias(t: TensorInfo, outF: number, what: string, beta: number): Float32Array {
  if (t.numel !== outF || t.dims.filter((d) => d !== 1).length > 1) fail(`${what}: bias shape [${t.dims}] does not match ${outF} outputs`);
  const b = tensorToFloat32(t);
  if (beta !== 1) for (let i = 0; i < b.length; i++) b[i] *= beta;
  return b;
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

interface Walk {
  stem: GUnit[];
  blocks: Block[];
  head: Head | null;
}

const convs = (units: GUnit[]) => units.filter((u): u is ConvUnit => u.kind === 'conv');

function walkGraph(g: Graph): Walk {
  const input = g.p.input.name;
  const first = g.single(input, 'graph input');
  if (first.op !== 'Conv') fail(`expected a Conv after the graph input, found ${first.op} '${first.name}'`);
  const { units: stem, end } = readChain(g, input, first);
  let cur = end;
  const blocks: Block[] = [];
  let head: Head | null = null;
  for (let guard = 0; guard <= g.p.nodes.length; guard++) {
    const uses = g.uses(cur);
    if (uses.length === 0) {
      if (!g.isGraphOutput(cur)) fail(`value '${cur}' is used by nothing and is not the graph output`);
      break;
    }
    if (uses.length === 1) {
      const n = uses[0];
      if (n.op === 'GlobalAveragePool' || n.op === 'ReduceMean') {
        const h = readHead(g, n, cur);
        head = h.head;
        cur = h.out;
        if (!g.isGraphOutput(cur)) fail(`the fc output '${cur}' is not the graph output`);
        break;
      }
      fail(`unexpected ${n.op} '${n.name}' after '${cur}' (expected a residual block or GlobalAveragePool)`);
    }
    if (uses.length !== 2) fail(`value '${cur}' feeds ${uses.length} nodes; a ResNet block has two branches`);
    const [a, b] = uses.map((n) => readBranch(g, cur, n));
    if (a.add !== b.add) fail(`the branches from '${cur}' end at different Add nodes ('${a.add.name}', '${b.add.name}')`);
    const add = a.add;
    if (add.inputs.length !== 2 || ![a.end, b.end].every((e) => add.inputs.some((i) => g.canon(i) === g.canon(e)))) {
      fail(`Add '${add.name}' does not join the two branches from '${cur}'`);
    }
    g.visit(add);
    const [na, nb] = [convs(a.units).length, convs(b.units).length];
    if (!((na >= 2 && nb <= 1) || (nb >= 2 && na <= 1))) fail(`block at '${cur}': cannot tell the residual branch from the shortcut (${na} and ${nb} convs)`);
    const [main, shortcut] = na >= 2 ? [a.units, b.units] : [b.units, a.units];
    const relu = g.single(add.outputs[0], `after Add '${add.name}'`);
    if (relu.op !== 'Relu') fail(`expected Relu after Add '${add.name}', found ${relu.op} '${relu.name}'`);
    g.visit(relu);
    blocks.push({ main, shortcut, at: cur });
    cur = relu.outputs[0];
  }
  const left = g.dataNodes.filter((n) => !g.visited.has(n.index));
  if (left.length) fail(`${left.length} node(s) are outside the recognised ResNet pattern, e.g. ${left[0].op} '${left[0].name}'`);
  return { stem, blocks, head };
}

/** The registry model the graph is, with its options. */
interface Plan {
  entry: ModelEntry;
  arch: ImportedArch;
  summary: string;
}

/** Stages: a block with a non-identity shortcut starts a new one. */
function splitStages(blocks: Block[]): Block[][] {
  const stages: Block[][] = [];
  blocks.forEach((b, i) => {
    if (i === 0 || b.shortcut.length) stages.push([b]);
    else stages[stages.length - 1].push(b);
  });
  return stages;
}

function plan(g: Graph, w: Walk): Plan {
  const { blocks, head } = w;
  const stem = w.stem[0] as ConvUnit;
  const maxpool = w.stem.some((u) => u.kind === 'pool' && u.op === 'MaxPool');
  const inC = stem.w.dims[1] * stem.attrs.group;
  const stages = splitStages(blocks);
  const layers = stages.map((s) => s.length);
  const nMain = new Set(blocks.map((b) => convs(b.main).length));
  if (nMain.size > 1) fail(`blocks mix ${[...nMain].join(' and ')} convolutions`);
  const convsPerBlock = blocks.length ? convs(blocks[0].main).length : 0;
  const options: Record<string, unknown> = {};
  if (head && head.outF) options.numClasses = head.outF;
  if (inC !== 3) options.inChannels = inC;
  const stemDesc = `stem ${stem.attrs.kernel.join('x')}/${stem.attrs.stride[0]} → ${stem.w.dims[0]}`;
  const entry = (name: string) => {
    try {
      return getModelEntry(name);
    } catch (e) {
      if (e instanceof ResnetError) fail(`the graph looks like ${name}, which the registry cannot build: ${e.message}`);
      throw e;
    }
  };

  // CIFAR ResNet (He et al. 2015, option A): 3x3 stem with 16 filters (other even widths: option `width`), no max-pool, 3 stages.
  if (stem.attrs.kernel[0] === 3 && !maxpool) {
    if (stages.length !== 3 || convsPerBlock !== 2 || new Set(layers).size !== 1)
      fail(`a 3x3 stem without max-pool suggests a CIFAR ResNet, but the stages have [${layers}] blocks of ${convsPerBlock} convs`);
    const e = entry(`cifar_resnet${6 * layers[0] + 2}`);
    const width = stem.w.dims[0];
    if (width !== e.widthPerGroup) options.width = width;
    if (!head) fail('a CIFAR ResNet without its classifier cannot be imported');
    if (options.numClasses === 10) delete options.numClasses;
    return { entry: e, arch: { model: e.name, options }, summary: `CIFAR ResNet-${6 * layers[0] + 2} (${stemDesc}, stages [${layers}], option-A shortcuts)` };
  }
  if (!(stem.w.dims[0] === 64 && stem.attrs.kernel[0] === 7 && maxpool)) {
    fail(
      `unrecognised stem: Conv ${stem.attrs.kernel.join('x')} stride ${stem.attrs.stride[0]} with ${stem.w.dims[0]} filters${maxpool ? ' and' : ' without'} MaxPool (expected torchvision's 7x7/2 → 64 + MaxPool, or CIFAR's 3x3 without MaxPool)`,
    );
  }
  if (stages.length !== 4) fail(`found ${stages.length} stages with [${layers}] blocks; a torchvision ResNet has 4`);
  if (convsPerBlock !== 2 && convsPerBlock !== 3) fail(`blocks with ${convsPerBlock} convolutions are neither BasicBlock nor Bottleneck`);
  const block = convsPerBlock === 2 ? 'basic' : 'bottleneck';

  // d2l's ResNet-18: same structure as resnet18; told apart by its key names or (unfolded)
  // by conv biases in front of BatchNorm and shortcut convs without BatchNorm.
  const names = [...g.p.initializers.keys()];
  const d2lNames = names.some((n) => /^[1-4]\.\d+\.conv[13]\.weight$/.test(n)) || names.includes('0.0.weight');
  const d2lUnfolded = blocks.some((b) => convs(b.main).some((u) => u.b && u.bn) || (convs(b.shortcut).some((u) => !u.bn) && convs(b.main).every((u) => u.bn)));
  const d2l = MODELS.find((m) => m.family === 'd2l')!;
  if (block === d2l.block && layers.join() === d2l.layers.join() && (d2lNames || d2lUnfolded)) {
    if (!head) fail(`${d2l.name} without its classifier cannot be imported`);
    const o: Record<string, unknown> = {};
    if (head.outF !== 10) o.numClasses = head.outF;
    if (inC !== 1) o.inChannels = inC;
    return { entry: d2l, arch: { model: d2l.name, options: o }, summary: `d2l ResNet-18 (${stemDesc}, stages [${layers}])` };
  }

  // torchvision: groups and width from the first stage's middle conv; dilation from stage strides.
  let groups = 1,
    widthPerGroup = 64;
  const mainConvs = (b: Block) => convs(b.main);
  if (block === 'bottleneck') {
    const width = mainConvs(blocks[0])[0].w.dims[0];
    groups = mainConvs(blocks[0])[1].attrs.group;
    widthPerGroup = width / groups; // planes = 64 in layer1, so width = widthPerGroup * groups
    if (!Number.isInteger(widthPerGroup)) fail(`layer1 width ${width} is not a multiple of groups ${groups}`);
  } else if (blocks.some((b) => mainConvs(b).some((u) => u.attrs.group !== 1))) fail('grouped convolutions in BasicBlocks are not supported');
  const strideConv = block === 'basic' ? 0 : 1;
  const rswd = stages.slice(1).map((s) => mainConvs(s[0])[strideConv].attrs.stride[0] === 1);
  const cand = MODELS.filter((m) => m.family === 'torchvision' && m.block === block && m.layers.join() === layers.join());
  if (!cand.length) fail(`a ResNet with ${block === 'basic' ? 'BasicBlock' : 'Bottleneck'} stages [${layers}] matches no registry model`);
  const exact = cand.find((m) => m.groups === groups && m.widthPerGroup === widthPerGroup);
  const chosen = exact ?? cand[0];
  if (!exact) {
    if (groups !== chosen.groups) options.groups = groups;
    if (widthPerGroup !== chosen.widthPerGroup) options.widthPerGroup = widthPerGroup;
  }
  if (rswd.some(Boolean)) options.replaceStrideWithDilation = rswd;
  if (!head) options.includeTop = false;
  if (options.numClasses === 1000) delete options.numClasses;
  const desc = [`${block === 'basic' ? 'BasicBlock' : 'Bottleneck'} stages [${layers}]`];
  if (block === 'bottleneck') desc.push(`groups ${groups}, width/group ${widthPerGroup}`);
  if (rswd.some(Boolean)) desc.push(`dilation in [${rswd}]`);
  return { entry: chosen, arch: { model: chosen.name, options }, summary: `${chosen.name} (${desc.join(', ')})` };
}

const same = (x: readonly number[], y: readonly number[]) => x.length === y.length && x.every((v, i) => v === y[i]);
const unitName = (u: Unit) =>
  u.kind === 'subsamplePad' ? 'an option-A shortcut' : u.kind === 'pool' ? `${u.pool.constructor.name} ${u.path}` : `Conv2d ${u.path}`;
const gunitName = (u: GUnit) => (u.kind === 'subsamplePad' ? 'an option-A shortcut' : `${u.node.op} '${u.node.name}'`);

/** Why the graph's units are not the model's (null: they match, unit for unit). */
function unitsMismatch(gu: GUnit[], mu: Unit[], where: string): string | null {
  if (gu.length !== mu.length) {
    return `${where}: the graph has ${gu.map(gunitName).join(', ') || 'an identity'} where the model has ${mu.map(unitName).join(', ') || 'an identity'}`;
  }
  for (let i = 0; i < gu.length; i++) {
    const a = gu[i],
      b = mu[i];
    if (a.kind === 'conv' && b.kind === 'conv') {
      const c = b.conv,
        t = a.attrs;
      if (!same(c.stride, t.stride) || !same(c.padding, t.pad) || !same(c.dilation, t.dilation) || c.groups !== t.group || !same(c.kernelSize, t.kernel)) {
        return (
          `Conv '${a.node.name}' (→ ${b.path}): graph has kernel ${t.kernel.join('x')}, stride ${t.stride}, padding ${t.pad}, dilation ${t.dilation}, groups ${t.group}; ` +
          `the model has kernel ${c.kernelSize.join('x')}, stride ${c.stride}, padding ${c.padding}, dilation ${c.dilation}, groups ${c.groups}`
        );
      }
      if (a.relu !== (b.relu !== null))
        return `Conv '${a.node.name}' (→ ${b.path}) is ${a.relu ? '' : 'not '}followed by Relu in the graph, ${b.relu ? '' : 'not '}in the model`;
    } else if (a.kind === 'pool' && b.kind === 'pool' && (a.op === 'MaxPool') === b.pool instanceof MaxPool2d) {
      const n = a.node,
        p = b.pool.geometry();
      const pads = attrInts(n, 'pads', [0, 0, 0, 0])!;
      const ok =
        same(attrInts(n, 'kernel_shape', []) ?? [], p.kernel) &&
        same(attrInts(n, 'strides', [1, 1])!, p.stride) &&
        same(pads, [...p.padding, ...p.padding]) &&
        attrInt(n, 'ceil_mode', 0) === (p.ceilMode ? 1 : 0) &&
        attrString(n, 'auto_pad', 'NOTSET') === 'NOTSET' &&
        (a.op === 'MaxPool' ? same(attrInts(n, 'dilations', [1, 1])!, p.dilation) : attrInt(n, 'count_include_pad', 0) === (p.countIncludePad ? 1 : 0));
      if (!ok)
        return `${a.op} '${n.name}' (→ ${b.path}): kernel [${attrInts(n, 'kernel_shape', [])}] strides [${attrInts(n, 'strides', [1, 1])}] pads [${pads}] differ from the model's ${b.pool.constructor.name}`;
    } else if (a.kind === 'subsamplePad' && b.kind === 'subsamplePad') {
      if (a.stride[0] !== a.stride[1] || a.stride[0] !== b.stride || a.padBefore !== b.padBefore || a.padAfter !== b.padAfter) {
        return `${where}: the graph's shortcut subsamples by ${a.stride.join('x')} and pads ${a.padBefore}+${a.padAfter} channels; the model's option A subsamples by ${b.stride} and pads ${b.padBefore}+${b.padAfter}`;
      }
    } else return `${where}: the graph has ${gunitName(a)} where the model has ${unitName(b)}`;
  }
  return null;
}

/** Why the walked graph is not the model's structure (null: it is). */
function structureMismatch(w: Walk, s: ModelStructure): string | null {
  const blocks = s.stages.flat();
  if (blocks.length !== w.blocks.length) return `the graph has ${w.blocks.length} blocks, the model ${blocks.length}`;
  if (!w.head !== !s.head) return w.head ? 'the graph has a classifier the model lacks' : 'the graph has no classifier';
  const stem = unitsMismatch(w.stem, s.stem, 'stem');
  if (stem) return stem;
  for (let i = 0; i < blocks.length; i++) {
    const why =
      unitsMismatch(w.blocks[i].main, blocks[i].main, blocks[i].path) ?? unitsMismatch(w.blocks[i].shortcut, blocks[i].shortcut, `${blocks[i].path} shortcut`);
    if (why) return why;
  }
  return null;
}

/** The state dict of a model whose structure matches the walk: conv (+BN) units into their slots, folding/unfolding BN as needed. */
function mapWeights(w: Walk, s: ModelStructure): { sd: Map<string, TaggedArray>; folded: boolean } {
  const sd = new Map<string, TaggedArray>();
  let folded = false;
  const f32 = (shape: number[], data: Float32Array): TaggedArray => ({ dtype: 'F32', shape, data });
  const put = (u: ConvUnit, m: MConvUnit) => {
    const c = m.conv,
      bn = m.bn,
      bnPath = m.bnPath,
      convPath = m.path;
    const C = u.w.dims[0];
    let W: Float32Array = tensorToFloat32(u.w);
    const b = u.b ? tensorToFloat32(u.b) : null;
    const g = u.bn;
    if (bn) {
      // Model: conv (bias?) → BN.
      const eps = bn.eps;
      let scale: Float32Array, beta: Float32Array, mean: Float32Array, vr: Float32Array;
      if (g) {
        scale = tensorToFloat32(g.scale);
        beta = tensorToFloat32(g.bias);
        mean = tensorToFloat32(g.mean);
        vr = tensorToFloat32(g.var);
        if (Math.abs(g.eps - eps) > 1e-9) for (let i = 0; i < C; i++) vr[i] = vr[i] + g.eps - eps;
        if (b && !c.bias) for (let i = 0; i < C; i++) mean[i] -= b[i]; // (x + b - m) = (x - (m - b))
      } else {
        folded = true;
        scale = new Float32Array(C).fill(1);
        beta = b && !c.bias ? b.slice() : new Float32Array(C);
        mean = new Float32Array(C);
        vr = new Float32Array(C).fill(1 - eps);
      }
      sd.set(`${bnPath}.weight`, f32([C], scale));
      sd.set(`${bnPath}.bias`, f32([C], beta));
      sd.set(`${bnPath}.running_mean`, f32([C], mean));
      sd.set(`${bnPath}.running_var`, f32([C], vr));
      sd.set(`${bnPath}.num_batches_tracked`, { dtype: 'I64', shape: [], data: new Float32Array(1) });
      if (c.bias) sd.set(`${convPath}.bias`, f32([C], b ? b : new Float32Array(C)));
    } else {
      // Model: conv with bias, no BN (d2l's 1x1 shortcut). Fold a graph BN into it.
      if (!c.bias) fail(`internal: ${convPath} has neither bias nor BatchNorm`);
      let bias: Float32Array = b ? b.slice() : new Float32Array(C);
      if (g) {
        ({ w: W, b: bias } = foldBatchNorm(W, bias, {
          gamma: tensorToFloat32(g.scale),
          beta: tensorToFloat32(g.bias),
          mean: tensorToFloat32(g.mean),
          var: tensorToFloat32(g.var),
          eps: g.eps,
        }));
      }
      sd.set(`${convPath}.bias`, f32([C], bias));
    }
    sd.set(`${convPath}.weight`, f32([...u.w.dims], W));
  };
  const putAll = (gu: GUnit[], mu: Unit[]) =>
    gu.forEach((u, i) => {
      const m = mu[i];
      if (u.kind === 'conv' && m.kind === 'conv') put(u, m);
    });
  putAll(w.stem, s.stem);
  s.stages.flat().forEach((b, i) => {
    putAll(w.blocks[i].main, b.main);
    putAll(w.blocks[i].shortcut, b.shortcut);
  });
  if (w.head && s.head) {
    if (!(s.head.fc instanceof Linear)) fail(`internal: ${s.head.fcPath} is not Linear`);
    const h = w.head;
    sd.set(`${s.head.fcPath}.weight`, f32([h.outF, h.inF], h.weight));
    sd.set(`${s.head.fcPath}.bias`, f32([h.outF], h.bias ?? new Float32Array(h.outF)));
  }
  return { sd, folded };
}

export interface OnnxImportOptions {
  limits?: Partial<OnnxLimits>;
}

/**
 * Read an ONNX ResNet graph: recognise the architecture, build the registry model and load the
 * graph's weights into it (eval mode). FormatError for a file that does not parse or a graph
 * that is not a ResNet this library can express.
 */
export function importOnnx(bytes: Uint8Array, opts: OnnxImportOptions = {}): OnnxImportResult {
  const limits = { ...DEFAULT_ONNX_LIMITS, ...opts.limits };
  const parsed = parseOnnx(bytes, limits);
  if (parsed.input.elemType && parsed.input.elemType !== 1) fail(`input '${parsed.input.name}' has element type ${parsed.input.elemType}, expected float`);
  if (parsed.input.dims && parsed.input.dims.length !== 4) fail(`input '${parsed.input.name}' has rank ${parsed.input.dims.length}, expected [N, C, H, W]`);
  if (parsed.outputs.length !== 1) fail(`expected one graph output, found ${parsed.outputs.length}`);
  const g = new Graph(parsed, limits);
  const walk = walkGraph(g);
  const p = plan(g, walk);
  const inC = parsed.input.dims?.[1];
  const stem = walk.stem[0] as ConvUnit;
  if (typeof inC === 'number' && inC !== stem.w.dims[1] * stem.attrs.group) fail(`input declares ${inC} channels, the stem conv takes ${stem.w.dims[1]}`);
  const build = (options: Record<string, unknown>) => {
    try {
      const model = noGrad(() => createModel(p.arch.model, options, { init: false })); // loaded in full below (strict)
      return { model, s: structureOf(model)! };
    } catch (e) {
      if (e instanceof ResnetError) fail(`recognised ${p.summary}, but the model cannot be built: ${e.message}`);
      throw e;
    }
  };
  let { model, s } = build(p.arch.options);
  const why = structureMismatch(walk, s);
  if (why) {
    // Options with a list of values (e.g. the downsample kind) change the structure without
    // changing the weights' shapes: try each before giving up.
    const choices = Object.entries(familyOptions(p.entry.family)).filter((e): e is [string, readonly string[]] => Array.isArray(e[1]));
    const alt = choices
      .flatMap(([k, vals]) => vals.map((v) => ({ ...p.arch.options, [k]: v })))
      .map((o) => ({ o, ...build(o) }))
      .find((c) => !structureMismatch(walk, c.s));
    if (!alt) fail(`recognised ${p.summary}, but ${why}`);
    ({ model, s } = alt!);
    p.arch.options = alt!.o;
  }
  const { sd, folded } = mapWeights(walk, s);
  try {
    model.loadStateDict(sd);
  } catch (e) {
    if (e instanceof ResnetError) fail(`recognised ${p.summary}, but its weights do not fit: ${e.message}`);
    throw e;
  }
  model.eval();
  const argText = Object.keys(p.arch.options).length ? ` ${JSON.stringify(p.arch.options)}` : '';
  return {
    model,
    arch: p.arch,
    stateDict: sd,
    info: {
      producer: parsed.producer,
      opset: parsed.opset,
      irVersion: parsed.irVersion,
      foldedBatchNorm: folded,
      summary: `${p.arch.model}${argText}: ${p.summary}${folded ? '; BatchNorm folded into Conv in the graph' : ''}`,
    },
  };
}
