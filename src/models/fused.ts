// Inference-only copies of the zoo's models with every BatchNorm folded into the convolution
// before it, and the ReLU and the residual add done in that convolution's epilogue (one
// ops.conv2dFused call per conv), as onnxruntime and PyTorch's fuse_modules do (foldBatchNorm in
// structure.ts, here with tensor ops on the model's backend). It reads the model's structure (structure.ts), so any block written in that
// vocabulary fuses.
// The copy snapshots the weights: the model itself is untouched, and a copy made before further
// training keeps the old weights. Heads (avgpool, flatten, fc, or whatever replaced fc) run as the
// model's own modules, in eval mode.
import { ConfigError } from '../base/errors.js';
import { checkImageInput } from '../base/shape.js';
import type { BatchNorm2d, Conv2d } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import * as ops from '../tensor/ops.js';
import { Tensor, noGrad } from '../tensor/tensor.js';
import { type BlockStructure, type Unit, UnknownStructureError, structureOf } from './structure.js';

type Step = (x: Tensor) => Tensor;

/**
 * Activations and scratch of a fused forward, in input sizes: a ResNet's stem output is 5.3
 * inputs (64 channels at half the side), a block keeps about four such maps live, and the
 * Winograd scratch holds 4x a map twice. Measured: ResNet-50 batch 8 at 224 took 219 MiB above
 * its weights in its first forward, 45 input sizes, Winograd transforms included.
 */
const WORKING_SET_INPUTS = 64;

/** The model holds a module fuseForInference does not know (a custom block); use its own forward. */
export class FusionUnsupportedError extends ConfigError {}

/** A conv with its BN folded in: call with the input, optionally a residual to add before the ReLU. */
interface FusedConv {
  (x: Tensor, residual?: Tensor | null): Tensor;
}

export class FusedModel {
  private disposed = false;

  constructor(
    private readonly body: Step,
    private readonly owned: Tensor[],
    readonly sourceName: string,
  ) {}

  private reservedFor = 0;

  /** Logits (or features, for a model without a head) in eval mode; no graph is recorded. */
  forward(x: Tensor): Tensor {
    if (this.disposed) throw new ConfigError(`this fused ${this.sourceName} was disposed`);
    if (x.size > this.reservedFor) {
      // Before the first forward at this size, ask for the working set in one go (a hint; see
      // Backend.reserve): what is live (weights), 4x it again for the backend's weight transforms
      // (Winograd F(4x4,3x3) keeps 36 values per 9, F(2x2) 16, pre-packed GEMM weights 1), and
      // activations plus scratch of WORKING_SET_INPUTS input sizes; at most 2 GiB. Address space
      // only: what is never written costs no memory.
      this.reservedFor = x.size;
      const floats = 5 * x.backend.allocatedFloats() + WORKING_SET_INPUTS * x.size;
      x.backend.reserve?.(Math.min(2 ** 31, 4 * floats + 2 ** 24));
    }
    return noGrad(() => this.body(x));
  }

  /** Frees the folded weights (and any transforms the backend cached for them). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.owned) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * An inference-only copy of a zoo model (torchvision ResNets/ResNeXts/Wide ResNets, d2l's
 * ResNet-18, the CIFAR ResNets) with BatchNorm folded into the convolutions and ReLU and the
 * residual add fused into them. It gives the model's eval-mode outputs (to float32 rounding).
 */
export function fuseForInference(model: Module, o: FuseOptions = {}): FusedModel {
  const owned: Tensor[] = [];
  const body = noGrad(() => fuseModule(model, owned, o.inPlace ?? false));
  return new FusedModel(body, owned, model.constructor.name);
}

export interface FuseOptions {
  /**
   * Fold into the model's own conv weights and free its BatchNorm tensors instead of copying:
   * no second copy of the weights (98 MiB for ResNet-50), for one-shot inference (the CLI). The
   * model is spent: its forward then fails on the freed BatchNorm statistics ("used after
   * dispose()"), its conv weights hold the folded values (on wasm, some of them in the backend's
   * packed layout once the fused model ran), and disposing the fused model frees the weights it
   * took over. Default false.
   */
  inPlace?: boolean;
}

/** fuseForInference, or null when the model holds a module it does not know (custom blocks). */
export function tryFuseForInference(model: Module, o: FuseOptions = {}): FusedModel | null {
  try {
    return fuseForInference(model, o);
  } catch (e) {
    if (e instanceof FusionUnsupportedError) return null;
    throw e;
  }
}

function fold(conv: Conv2d, bn: BatchNorm2d | null, owned: Tensor[], where: string, inPlace: boolean): { w: Tensor; b: Tensor | null } {
  const own = (t: Tensor) => {
    owned.push(t.keep()); // kept: made under noGrad, freed by FusedModel.dispose()
    return t;
  };
  // In place, the folded values go into the conv's own tensors: no second copy of the weights.
  const into = (t: Tensor, dst: Tensor | null) => {
    if (!inPlace || !dst) return own(t);
    dst.backend.copy(t.storage, dst.storage);
    t.dispose();
    owned.push(dst);
    return dst;
  };
  if (!bn && inPlace) {
    owned.push(conv.weight, ...(conv.bias ? [conv.bias] : []));
    return { w: conv.weight, b: conv.bias };
  }
  // Folding runs on the weights' backend (foldBatchNorm's formula in float32), nothing is read back:
  // s = gamma / sqrt(var + eps); w' = w * s[k]; b' = (b - mean) * s + beta.
  if (!bn) return { w: own(conv.weight.detach()), b: conv.bias ? own(conv.bias.detach()) : null };
  if (!bn.runningMean || !bn.runningVar) throw new ConfigError(`${where}: a BatchNorm without running statistics cannot be folded`);
  const K = conv.outChannels,
    be = conv.weight.backend;
  const inv = ops.sqrt(ops.addScalar(bn.runningVar, bn.eps));
  const s = ops.div(bn.weight ?? Tensor.fromArray(new Float32Array(K).fill(1), [K], be), inv);
  const w = ops.mul(conv.weight, ops.reshape(s, [K, 1, 1, 1]));
  const shifted = ops.mul(conv.bias ? ops.sub(conv.bias, bn.runningMean) : ops.neg(bn.runningMean), s);
  const b = bn.bias ? ops.add(shifted, bn.bias) : shifted;
  const folded = { w: into(w, conv.weight), b: into(b, conv.bias) };
  if (inPlace) for (const [, t] of [...bn.namedParameters(), ...bn.namedBuffers()]) t.dispose();
  return folded;
}

function fusedConv(conv: Conv2d, bn: BatchNorm2d | null, relu: boolean, owned: Tensor[], where: string, inPlace: boolean): FusedConv {
  const { w, b } = fold(conv, bn, owned, where, inPlace);
  const o = { stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups };
  // With a BatchNorm folded in, w is this fused model's own (a new tensor, or the spent model's
  // conv weight, folded in place) and only this conv reads it: the backend may keep it in its own
  // layout (wasm: packed GEMM panels) instead of a second copy. Without one, w may be the model's.
  const constWeights = bn ? 'owned' : true;
  return (x, residual = null) => ops.conv2dFused(x, w, b, o, { relu, residual, constWeights });
}

/** A module's own forward in eval mode (heads, pools): modes are put back after. */
function asEval(m: Module): Step {
  return (x) => {
    const modes = [...m.namedModules()].map(([, c]) => [c, c.training] as const);
    m.eval();
    try {
      return m.forward(x);
    } finally {
      for (const [c, t] of modes) c.training = t;
    }
  };
}

/** Runs steps in order, freeing each intermediate once the next step has used it. */
function chain(steps: Step[]): Step {
  return (x) => {
    let y = x;
    for (const s of steps) {
      const next = s(y);
      if (y !== x && next !== y) y.dispose();
      y = next;
    }
    return y;
  };
}

function fuseUnit(u: Unit, owned: Tensor[], inPlace: boolean): Step {
  if (u.kind === 'conv') return fusedConv(u.conv, u.bn, u.relu !== null, owned, u.path, inPlace);
  if (u.kind === 'pool') return asEval(u.pool);
  return (x) => ops.subsamplePadChannels(x, u.stride, u.padBefore, u.padAfter);
}

/** relu(main(x) + shortcut(x)) with the add and ReLU in the last main conv's epilogue. */
function fuseBlock(b: BlockStructure, owned: Tensor[], inPlace: boolean): Step {
  const last = b.main[b.main.length - 1] as Unit & { kind: 'conv' }; // checked by fuseModule
  const body = chain(b.main.slice(0, -1).map((u) => fuseUnit(u, owned, inPlace)));
  const tail = fusedConv(last.conv, last.bn, true, owned, last.path, inPlace);
  const shortcut = b.shortcut.length ? chain(b.shortcut.map((u) => fuseUnit(u, owned, inPlace))) : null;
  return (x) => {
    const id = shortcut ? shortcut(x) : x;
    const y = body(x);
    const out = tail(y, id);
    if (y !== x) y.dispose();
    if (id !== x) id.dispose();
    return out;
  };
}

function fuseModule(m: Module, owned: Tensor[], inPlace: boolean): Step {
  let s;
  try {
    s = structureOf(m);
  } catch (e) {
    if (e instanceof UnknownStructureError) throw new FusionUnsupportedError(`cannot fuse ${m.constructor.name} for inference: ${e.message}`);
    throw e;
  }
  if (!s) throw new FusionUnsupportedError(`cannot fuse ${m.constructor.name} (${m.constructor.name}) for inference: only the zoo's ResNets are supported`);
  // Checked before anything is folded (in place, a failure half way would spend the model).
  for (const b of s.stages.flat()) {
    if (b.main[b.main.length - 1]?.kind !== 'conv') throw new FusionUnsupportedError(`${b.path}: a block must end its residual branch with a conv to be fused`);
  }
  const inC = s.inChannels;
  const steps: Step[] = [
    (x) => {
      checkImageInput(x.shape, inC);
      return x;
    },
    ...s.stem.map((u) => fuseUnit(u, owned, inPlace)),
    ...s.stages.flat().map((b) => fuseBlock(b, owned, inPlace)),
  ];
  if (s.head) steps.push(asEval(s.head.pool), (x) => ops.flatten(x, 1), asEval(s.head.fc));
  return chain(steps);
}
