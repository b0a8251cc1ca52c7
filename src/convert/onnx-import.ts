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
import { BatchNorm2d, Conv2d, Linear, MaxPool2d } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import type { TaggedArray } from '../nn/state.js';
import { createModel } from '../models/registry.js';
import { noGrad } from '../tensor/tensor.js';
import {
  type GNode, type OnnxLimits, type TensorInfo, DEFAULT_ONNX_LIMITS, attrFloat, attrInt, attrInts, attrString,
  parseOnnx, tensorToFloat32, tensorToInts,
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

interface ConvAttrs { kernel: number[]; stride: number[]; pad: number[]; dilation: number[]; group: number }
interface BnUnit { node: GNode; scale: TensorInfo; bias: TensorInfo; mean: TensorInfo; var: TensorInfo; eps: number }
interface ConvUnit { node: GNode; w: TensorInfo; b: TensorInfo | null; attrs: ConvAttrs; bn: BnUnit | null; relu: boolean; out: string }
type Shortcut =
  | { kind: 'identity' }
  | { kind: 'conv'; unit: ConvUnit }
  | { kind: 'optionA'; stride: number; padBefore: number; padAfter: number };
interface Block { main: ConvUnit[]; shortcut: Shortcut; add: GNode; out: string }
interface Head { weight: Float32Array; outF: number; inF: number; bias: Float32Array | null }

function fail(msg: string): never {
  throw new FormatError(`onnx: ${msg}`);
}

function convAttrs(n: GNode, w: TensorInfo): ConvAttrs {
  if (w.dims.length !== 4) fail(`Conv '${n.name}': weight '${w.name}' has shape [${w.dims.join(', ')}], only 2-D convolutions are supported`);
  const kernel = attrInts(n, 'kernel_shape', w.dims.slice(2))!;
  if (kernel.length !== 2 || kernel[0] !== w.dims[2] || kernel[1] !== w.dims[3]) fail(`Conv '${n.name}': kernel_shape [${kernel}] does not match weight [${w.dims}]`);
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
  return { node: n, w, b, attrs, bn, relu, out };
}

/** Follow one branch of a block from node `first` (consuming `v`) to the Add that closes it. */
function readBranch(g: Graph, v: string, first: GNode): { units: ConvUnit[]; shortcut: Shortcut | null; add: GNode; end: string } {
  if (first.op === 'Add') return { units: [], shortcut: { kind: 'identity' }, add: first, end: v };
  if (first.op === 'Conv') {
    const units: ConvUnit[] = [];
    let n = first, cur = v;
    for (let guard = 0; guard < 16; guard++) {
      const u = readConv(g, n, cur);
      units.push(u);
      cur = u.out;
      const next = g.single(cur, `after Conv '${u.node.name}'`);
      if (next.op === 'Add') return { units, shortcut: null, add: next, end: cur };
      n = next;
    }
    fail(`a residual branch starting at '${first.name}' has more than 16 convolutions`);
  }
  if (first.op === 'Slice' || first.op === 'Pad') {
    let n = first, cur = v, sh = 1, sw = 1, padBefore = 0, padAfter = 0;
    for (let guard = 0; guard < 8; guard++) {
      if (g.canon(n.inputs[0]) !== g.canon(cur)) fail(`${n.op} '${n.name}' does not take '${cur}' as data`);
      g.visit(n);
      if (n.op === 'Slice') {
        const [h, w] = readSubsample(g, n);
        sh *= h;
        sw *= w;
      }
      else if (n.op === 'Pad') {
        const [b, a] = readChannelPad(g, n);
        padBefore += b;
        padAfter += a;
      } else fail(`unexpected ${n.op} '${n.name}' in a shortcut`);
      cur = n.outputs[0];
      const next = g.single(cur, `after ${n.op} '${n.name}'`);
      if (next.op === 'Add') {
        if (sh !== sw) fail(`shortcut from '${v}' subsamples height by ${sh} and width by ${sw}`);
        return { units: [], shortcut: { kind: 'optionA', stride: sh, padBefore, padAfter }, add: next, end: cur };
      }
      n = next;
    }
    fail(`shortcut starting at '${first.name}' is too long`);
  }
  return fail(`unexpected ${first.op} '${first.name}' at the start of a residual branch`);
}

/** Slice(x, starts, ends, axes, steps) that keeps batch and channels and subsamples H and W: [stepH, stepW]. */
function readSubsample(g: Graph, n: GNode): [number, number] {
  const ints = (i: number, what: string) => tensorToInts(g.constant(n.inputs[i], `Slice '${n.name}' ${what}`), 8);
  const starts = ints(1, 'starts'), ends = ints(2, 'ends');
  const axes = n.inputs[3] ? ints(3, 'axes') : starts.map((_, i) => i);
  const steps = n.inputs[4] ? ints(4, 'steps') : starts.map(() => 1);
  if (starts.length !== ends.length || axes.length !== starts.length || steps.length !== starts.length) fail(`Slice '${n.name}': inconsistent lengths`);
  const step = new Map<number, number>();
  for (let i = 0; i < axes.length; i++) {
    const ax = axes[i] < 0 ? axes[i] + 4 : axes[i];
    if (starts[i] !== 0 || ends[i] < 2 ** 30 || steps[i] < 1) fail(`Slice '${n.name}': only [0::step] slices are supported (axis ${axes[i]}: start ${starts[i]}, end ${ends[i]}, step ${steps[i]})`);
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
  let weight: Float32Array, outF: number, inF: number, bias: Float32Array | null = null;
  if (n.op === 'Gemm') {
    take(n);
    if (attrInt(n, 'transA', 0) !== 0) fail(`Gemm '${n.name}': transA is not supported`);
    const transB = attrInt(n, 'transB', 0) !== 0;
    const alpha = attrFloat(n, 'alpha', 1), beta = attrFloat(n, 'beta', 1);
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
  if (g.uses(cur).length) fail(`the fc output '${cur}' feeds further nodes (${g.uses(cur).map((x) => x.op).join(', ')}), which are not supported`);
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
  stem: ConvUnit;
  maxpool: GNode | null;
  blocks: Block[];
  head: Head | null;
}

function walkGraph(g: Graph): Walk {
  const input = g.p.input.name;
  const stem = readConv(g, g.single(input, 'graph input'), input);
  if (!stem.relu) fail(`the stem Conv '${stem.node.name}' is followed by ${g.describeUses(stem.out)}, expected Relu`);
  let cur = stem.out;
  let maxpool: GNode | null = null;
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
      if (n.op === 'MaxPool' && !maxpool && blocks.length === 0) {
        if (g.canon(n.inputs[0]) !== g.canon(cur)) fail(`MaxPool '${n.name}' does not take '${cur}'`);
        g.visit(n);
        for (const o of n.outputs.slice(1)) if (o && g.uses(o).length) fail(`MaxPool '${n.name}': indices output is used`);
        maxpool = n;
        cur = n.outputs[0];
        continue;
      }
      if (n.op === 'GlobalAveragePool' || n.op === 'ReduceMean') {
        const h = readHead(g, n, cur);
        head = h.head;
        cur = h.out;
        if (!g.isGraphOutput(cur)) fail(`the fc output '${cur}' is not the graph output`);
        break;
      }
      fail(`unexpected ${n.op} '${n.name}' after '${cur}' (expected a residual block, MaxPool or GlobalAveragePool)`);
    }
    if (uses.length !== 2) fail(`value '${cur}' feeds ${uses.length} nodes; a ResNet block has two branches`);
    const [a, b] = uses.map((n) => readBranch(g, cur, n));
    if (a.add !== b.add) fail(`the branches from '${cur}' end at different Add nodes ('${a.add.name}', '${b.add.name}')`);
    const add = a.add;
    if (add.inputs.length !== 2 || ![a.end, b.end].every((e) => add.inputs.some((i) => g.canon(i) === g.canon(e)))) {
      fail(`Add '${add.name}' does not join the two branches from '${cur}'`);
    }
    g.visit(add);
    let main: ConvUnit[], shortcut: Shortcut;
    const sc = (x: typeof a): Shortcut | null => x.shortcut ?? (x.units.length === 1 ? { kind: 'conv', unit: x.units[0] } : null);
    if (a.units.length >= 2 && b.units.length <= 1) {
      main = a.units;
      shortcut = sc(b)!;
    } else if (b.units.length >= 2 && a.units.length <= 1) {
      main = b.units;
      shortcut = sc(a)!;
    } else return fail(`block at '${cur}': cannot tell the residual branch from the shortcut (${a.units.length} and ${b.units.length} convs)`);
    main.forEach((u, i) => {
      if (u.relu !== (i < main.length - 1)) fail(`block at '${cur}': Conv '${u.node.name}' is followed by ${u.relu ? 'Relu' : g.describeUses(u.out)}, which does not fit a residual block`);
    });
    if (shortcut.kind === 'conv' && shortcut.unit.relu) fail(`block at '${cur}': the shortcut Conv '${shortcut.unit.node.name}' is followed by Relu`);
    const relu = g.single(add.outputs[0], `after Add '${add.name}'`);
    if (relu.op !== 'Relu') fail(`expected Relu after Add '${add.name}', found ${relu.op} '${relu.name}'`);
    g.visit(relu);
    cur = relu.outputs[0];
    blocks.push({ main, shortcut, add, out: cur });
  }
  const left = g.dataNodes.filter((n) => !g.visited.has(n.index));
  if (left.length) fail(`${left.length} node(s) are outside the recognised ResNet pattern, e.g. ${left[0].op} '${left[0].name}'`);
  return { stem, maxpool, blocks, head };
}

/** Model slots in the order walkGraph produces conv units: [convPath, bnPath | null]. */
interface Plan {
  arch: ImportedArch;
  family: 'torchvision' | 'd2l' | 'cifar';
  summary: string;
  /** Per block: the state-dict prefix of the block. */
  blockPrefix: string[];
  fc: string | null;
}

const TV_BUILDERS: { name: string; block: 'basic' | 'bottleneck'; layers: number[]; groups: number; width: number }[] = [
  { name: 'resnet18', block: 'basic', layers: [2, 2, 2, 2], groups: 1, width: 64 },
  { name: 'resnet34', block: 'basic', layers: [3, 4, 6, 3], groups: 1, width: 64 },
  { name: 'resnet50', block: 'bottleneck', layers: [3, 4, 6, 3], groups: 1, width: 64 },
  { name: 'resnext50_32x4d', block: 'bottleneck', layers: [3, 4, 6, 3], groups: 32, width: 4 },
  { name: 'wide_resnet50_2', block: 'bottleneck', layers: [3, 4, 6, 3], groups: 1, width: 128 },
  { name: 'resnet101', block: 'bottleneck', layers: [3, 4, 23, 3], groups: 1, width: 64 },
  { name: 'resnext101_32x8d', block: 'bottleneck', layers: [3, 4, 23, 3], groups: 32, width: 8 },
  { name: 'resnext101_64x4d', block: 'bottleneck', layers: [3, 4, 23, 3], groups: 64, width: 4 },
  { name: 'wide_resnet101_2', block: 'bottleneck', layers: [3, 4, 23, 3], groups: 1, width: 128 },
  { name: 'resnet152', block: 'bottleneck', layers: [3, 8, 36, 3], groups: 1, width: 64 },
];
const CIFAR_DEPTHS = [20, 32, 44, 56, 110];

function splitStages(blocks: Block[]): Block[][] {
  const stages: Block[][] = [];
  blocks.forEach((b, i) => {
    if (i === 0 || b.shortcut.kind !== 'identity') stages.push([b]);
    else stages[stages.length - 1].push(b);
  });
  return stages;
}

function plan(g: Graph, w: Walk): Plan {
  const { stem, blocks, head } = w;
  const inC = stem.w.dims[1] * stem.attrs.group;
  const stages = splitStages(blocks);
  const layers = stages.map((s) => s.length);
  const nMain = new Set(blocks.map((b) => b.main.length));
  if (nMain.size > 1) fail(`blocks mix ${[...nMain].join(' and ')} convolutions`);
  const convsPerBlock = blocks[0]?.main.length ?? 0;
  const options: Record<string, unknown> = {};
  if (head && head.outF) options.numClasses = head.outF;
  if (inC !== 3) options.inChannels = inC;
  const stemDesc = `stem ${stem.attrs.kernel.join('x')}/${stem.attrs.stride[0]} → ${stem.w.dims[0]}`;

  // CIFAR ResNet (He et al. 2015, option A): 3x3 stem with 16 filters (other even widths: option `width`), no max-pool, 3 stages.
  if (stem.attrs.kernel[0] === 3 && !w.maxpool) {
    if (stages.length !== 3 || convsPerBlock !== 2 || new Set(layers).size !== 1) fail(`a 3x3 stem without max-pool suggests a CIFAR ResNet, but the stages have [${layers}] blocks of ${convsPerBlock} convs`);
    const width = stem.w.dims[0];
    if (width % 2 !== 0) fail(`a CIFAR ResNet needs an even stem width for its option-A shortcuts, found ${width} filters`);
    if (width !== 16) options.width = width;
    const depth = 6 * layers[0] + 2;
    if (!CIFAR_DEPTHS.includes(depth)) fail(`CIFAR ResNet of depth ${depth} is not in the registry (${CIFAR_DEPTHS.join(', ')})`);
    if (!head) fail('a CIFAR ResNet without its classifier cannot be imported');
    for (const b of blocks) if (b.shortcut.kind === 'conv') fail(`CIFAR ResNets use option-A shortcuts; Conv '${b.shortcut.unit.node.name}' found instead`);
    if (options.numClasses === 10) delete options.numClasses;
    return {
      arch: { model: `cifar_resnet${depth}`, options }, family: 'cifar', fc: 'fc',
      summary: `CIFAR ResNet-${depth} (${stemDesc}, stages [${layers}], option-A shortcuts)`,
      blockPrefix: stages.flatMap((s, si) => s.map((_, j) => `layer${si + 1}.${j}`)),
    };
  }
  if (!(stem.w.dims[0] === 64 && stem.attrs.kernel[0] === 7 && w.maxpool)) {
    fail(`unrecognised stem: Conv ${stem.attrs.kernel.join('x')} stride ${stem.attrs.stride[0]} with ${stem.w.dims[0]} filters${w.maxpool ? ' and' : ' without'} MaxPool (expected torchvision's 7x7/2 → 64 + MaxPool, or CIFAR's 3x3 without MaxPool)`);
  }
  if (stages.length !== 4) fail(`found ${stages.length} stages with [${layers}] blocks; a torchvision ResNet has 4`);
  if (convsPerBlock !== 2 && convsPerBlock !== 3) fail(`blocks with ${convsPerBlock} convolutions are neither BasicBlock nor Bottleneck`);
  const block = convsPerBlock === 2 ? 'basic' : 'bottleneck';

  // d2l's ResNet-18: same structure as resnet18; told apart by its key names or (unfolded)
  // by conv biases in front of BatchNorm and shortcut convs without BatchNorm.
  const names = [...g.p.initializers.keys()];
  const d2lNames = names.some((n) => /^[1-4]\.\d+\.conv[13]\.weight$/.test(n)) || names.includes('0.0.weight');
  const d2lUnfolded = blocks.some((b) => b.main.some((u) => u.b && u.bn) || (b.shortcut.kind === 'conv' && !b.shortcut.unit.bn && b.main.every((u) => u.bn)));
  if (block === 'basic' && layers.join() === '2,2,2,2' && (d2lNames || d2lUnfolded)) {
    if (!head) fail("d2l's ResNet-18 without its classifier cannot be imported");
    const o: Record<string, unknown> = {};
    if (head.outF !== 10) o.numClasses = head.outF;
    if (inC !== 1) o.inChannels = inC;
    return {
      arch: { model: 'd2l_resnet18', options: o }, family: 'd2l', fc: '7',
      summary: `d2l ResNet-18 (${stemDesc}, stages [${layers}])`,
      blockPrefix: stages.flatMap((s, si) => s.map((_, j) => `${si + 1}.${j}`)),
    };
  }

  // torchvision: groups and width from the first stage's middle conv; dilation from stage strides.
  let groups = 1, widthPerGroup = 64;
  if (block === 'bottleneck') {
    const width = blocks[0].main[0].w.dims[0];
    groups = blocks[0].main[1].attrs.group;
    widthPerGroup = width / groups; // planes = 64 in layer1, so width = widthPerGroup * groups
    if (!Number.isInteger(widthPerGroup)) fail(`layer1 width ${width} is not a multiple of groups ${groups}`);
  } else if (blocks.some((b) => b.main.some((u) => u.attrs.group !== 1))) fail('grouped convolutions in BasicBlocks are not supported');
  const strideConv = block === 'basic' ? 0 : 1;
  const rswd = stages.slice(1).map((s) => s[0].main[strideConv].attrs.stride[0] === 1);
  const cand = TV_BUILDERS.filter((b) => b.block === block && b.layers.join() === layers.join());
  if (!cand.length) fail(`a ResNet with ${block === 'basic' ? 'BasicBlock' : 'Bottleneck'} stages [${layers}] matches no registry model`);
  const exact = cand.find((b) => b.groups === groups && b.width === widthPerGroup);
  const chosen = exact ?? cand[0];
  if (!exact) {
    if (groups !== chosen.groups) options.groups = groups;
    if (widthPerGroup !== chosen.width) options.widthPerGroup = widthPerGroup;
  }
  if (rswd.some(Boolean)) options.replaceStrideWithDilation = rswd;
  if (!head) options.includeTop = false;
  if (options.numClasses === 1000) delete options.numClasses;
  const desc = [`${block === 'basic' ? 'BasicBlock' : 'Bottleneck'} stages [${layers}]`];
  if (block === 'bottleneck') desc.push(`groups ${groups}, width/group ${widthPerGroup}`);
  if (rswd.some(Boolean)) desc.push(`dilation in [${rswd}]`);
  return {
    arch: { model: chosen.name, options }, family: 'torchvision', fc: head ? 'fc' : null,
    summary: `${chosen.name} (${desc.join(', ')})`,
    blockPrefix: stages.flatMap((s, si) => s.map((_, j) => `layer${si + 1}.${j}`)),
  };
}

/** Build the state dict: conv (+BN) units into model slots, folding/unfolding BN as needed. */
function mapWeights(model: Module, w: Walk, p: Plan): { sd: Map<string, TaggedArray>; folded: boolean } {
  const sd = new Map<string, TaggedArray>();
  let folded = false;
  const f32 = (shape: number[], data: Float32Array): TaggedArray => ({ dtype: 'F32', shape, data });
  const conv = (path: string): Conv2d => {
    const m = model.getModule(path);
    if (!(m instanceof Conv2d)) fail(`internal: ${path} is not a Conv2d`);
    return m as Conv2d;
  };
  const bnAt = (path: string | null): BatchNorm2d | null => {
    if (!path) return null;
    const m = model.getModule(path);
    if (!(m instanceof BatchNorm2d)) fail(`internal: ${path} is not a BatchNorm2d`);
    return m as BatchNorm2d;
  };
  const put = (u: ConvUnit, convPath: string, bnPath: string | null) => {
    const c = conv(convPath);
    const bn = bnAt(bnPath);
    const a = u.attrs;
    const same = (x: readonly number[], y: readonly number[]) => x[0] === y[0] && x[1] === y[1];
    if (!same(c.stride, a.stride) || !same(c.padding, a.pad) || !same(c.dilation, a.dilation) || c.groups !== a.group || !same(c.kernelSize, a.kernel)) {
      fail(`Conv '${u.node.name}' (→ ${convPath}): graph has kernel ${a.kernel.join('x')}, stride ${a.stride}, padding ${a.pad}, dilation ${a.dilation}, groups ${a.group}; ` +
        `${p.arch.model} has kernel ${c.kernelSize.join('x')}, stride ${c.stride}, padding ${c.padding}, dilation ${c.dilation}, groups ${c.groups}`);
    }
    const C = u.w.dims[0];
    let W = tensorToFloat32(u.w);
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
      const bias = b ? b.slice() : new Float32Array(C);
      if (g) {
        const scale = tensorToFloat32(g.scale), beta = tensorToFloat32(g.bias), mean = tensorToFloat32(g.mean), vr = tensorToFloat32(g.var);
        const per = W.length / C;
        W = W.slice();
        for (let o = 0; o < C; o++) {
          const s = scale[o] / Math.sqrt(vr[o] + g.eps);
          for (let k = 0; k < per; k++) W[o * per + k] *= s;
          bias[o] = (bias[o] - mean[o]) * s + beta[o];
        }
      }
      sd.set(`${convPath}.bias`, f32([C], bias));
    }
    sd.set(`${convPath}.weight`, f32([...u.w.dims], W));
  };
  const stemConv = p.family === 'd2l' ? '0.0' : 'conv1';
  put(w.stem, stemConv, p.family === 'd2l' ? '0.1' : 'bn1');
  const mp = p.family === 'd2l' ? model.getModule('0.3') : p.family === 'torchvision' ? model.getModule('maxpool') : null;
  if (w.maxpool) {
    const n = w.maxpool;
    if (!(mp instanceof MaxPool2d)) return fail(`MaxPool '${n.name}' has no place in ${p.arch.model}`);
    const k = attrInts(n, 'kernel_shape', null), s = attrInts(n, 'strides', [1, 1]), pads = attrInts(n, 'pads', [0, 0, 0, 0]);
    const ok = k?.join() === '3,3' && s?.join() === '2,2' && pads?.join() === '1,1,1,1' && attrInt(n, 'ceil_mode', 0) === 0 &&
      (attrInts(n, 'dilations', [1, 1]) ?? []).join() === '1,1' && attrString(n, 'auto_pad', 'NOTSET') === 'NOTSET';
    if (!ok) fail(`MaxPool '${n.name}': kernel [${k}] strides [${s}] pads [${pads}]; ${p.arch.model} uses kernel 3, stride 2, padding 1`);
  }
  w.blocks.forEach((blk, i) => {
    const pre = p.blockPrefix[i];
    const m = model.getModule(pre) as Module & Record<string, unknown>;
    const names = blk.main.length === 3 ? ['1', '2', '3'] : ['1', '2'];
    blk.main.forEach((u, j) => put(u, `${pre}.conv${names[j]}`, `${pre}.bn${names[j]}`));
    const sc = blk.shortcut;
    if (p.family === 'torchvision') {
      const has = m.downsample !== null && m.downsample !== undefined;
      if (sc.kind === 'conv' && has) put(sc.unit, `${pre}.downsample.0`, `${pre}.downsample.1`);
      else if (sc.kind !== 'identity' || has) fail(`${pre}: the graph has ${sc.kind === 'identity' ? 'an identity' : sc.kind === 'conv' ? 'a projection' : 'an option-A'} shortcut where ${p.arch.model} has ${has ? 'a downsample projection' : 'an identity'}`);
    } else if (p.family === 'd2l') {
      const has = m.conv3 !== null && m.conv3 !== undefined;
      if (sc.kind === 'conv' && has) put(sc.unit, `${pre}.conv3`, null);
      else if (sc.kind !== 'identity' || has) fail(`${pre}: the graph's shortcut (${sc.kind}) does not match d2l_resnet18's`);
    } else {
      const c1 = m.conv1 as Conv2d;
      const planes = (m as unknown as { planes: number }).planes;
      const stride = (m as unknown as { stride: number }).stride;
      const wantA = stride !== 1 || c1.inChannels !== planes;
      if (!wantA) {
        if (sc.kind !== 'identity') fail(`${pre}: the graph has a ${sc.kind} shortcut where ${p.arch.model} has an identity`);
      } else {
        const pad = (planes - c1.inChannels) / 2;
        if (sc.kind !== 'optionA' || sc.stride !== stride || sc.padBefore !== pad || sc.padAfter !== pad) {
          fail(`${pre}: the graph's shortcut does not subsample by ${stride} and pad ${pad} channels each side as ${p.arch.model}'s option A does`);
        }
      }
    }
  });
  if (w.head && p.fc) {
    const fc = model.getModule(p.fc);
    if (!(fc instanceof Linear)) fail(`internal: ${p.fc} is not Linear`);
    const h = w.head;
    sd.set(`${p.fc}.weight`, f32([h.outF, h.inF], h.weight));
    sd.set(`${p.fc}.bias`, f32([h.outF], h.bias ?? new Float32Array(h.outF)));
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
  if (typeof inC === 'number' && inC !== walk.stem.w.dims[1] * walk.stem.attrs.group) fail(`input declares ${inC} channels, the stem conv takes ${walk.stem.w.dims[1]}`);
  let model: Module;
  try {
    model = noGrad(() => createModel(p.arch.model, p.arch.options));
  } catch (e) {
    if (e instanceof ResnetError) fail(`recognised ${p.summary}, but the model cannot be built: ${e.message}`);
    throw e;
  }
  const { sd, folded } = mapWeights(model!, walk, p);
  try {
    model!.loadStateDict(sd);
  } catch (e) {
    if (e instanceof ResnetError) fail(`recognised ${p.summary}, but its weights do not fit: ${e.message}`);
    throw e;
  }
  model!.eval();
  const argText = Object.keys(p.arch.options).length ? ` ${JSON.stringify(p.arch.options)}` : '';
  return {
    model: model!, arch: p.arch, stateDict: sd,
    info: {
      producer: parsed.producer, opset: parsed.opset, irVersion: parsed.irVersion, foldedBatchNorm: folded,
      summary: `${p.arch.model}${argText}: ${p.summary}${folded ? '; BatchNorm folded into Conv in the graph' : ''}`,
    },
  };
}
