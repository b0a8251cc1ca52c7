// Inference-only copies of the zoo's models with every BatchNorm folded into the convolution
// before it, and the ReLU and the residual add done in that convolution's epilogue (one
// ops.conv2dFused call per conv), as onnxruntime and PyTorch's fuse_modules do. Folding, per
// output channel k of a conv (bias c, zero when it has none) followed by BN(γ, β, μ, σ², ε):
//   s_k = γ_k / √(σ²_k + ε),   w'_k = w_k · s_k,   b'_k = (c_k − μ_k) · s_k + β_k   (computed in float64)
// The copy snapshots the weights: the model itself is untouched, and a copy made before further
// training keeps the old weights. Heads (avgpool, flatten, fc, or whatever replaced fc) run as the
// model's own modules, in eval mode.
import { ConfigError } from '../base/errors.js';
import { checkImageInput } from '../base/shape.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import * as ops from '../tensor/ops.js';
import { Tensor, noGrad } from '../tensor/tensor.js';
import { CifarBasicBlock, CifarResNet } from './cifar.js';
import { D2lResNet18, Residual } from './d2l.js';
import { BasicBlock, Bottleneck, ResNet } from './resnet.js';

type Step = (x: Tensor) => Tensor;

/** The model holds a module fuseForInference does not know (a custom block); use its own forward. */
export class FusionUnsupportedError extends ConfigError {}

/** A conv with its BN folded in: call with the input, optionally a residual to add before the ReLU. */
interface FusedConv {
  (x: Tensor, residual?: Tensor | null): Tensor;
}

export class FusedModel {
  private disposed = false;

  constructor(private readonly body: Step, private readonly owned: Tensor[], readonly sourceName: string) {}

  /** Logits (or features, for a model without a head) in eval mode; no graph is recorded. */
  forward(x: Tensor): Tensor {
    if (this.disposed) throw new ConfigError(`this fused ${this.sourceName} was disposed`);
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
export function fuseForInference(model: Module): FusedModel {
  const owned: Tensor[] = [];
  const body = noGrad(() => fuseModule(model, owned, model.constructor.name));
  return new FusedModel(body, owned, model.constructor.name);
}

/** fuseForInference, or null when the model holds a module it does not know (custom blocks). */
export function tryFuseForInference(model: Module): FusedModel | null {
  try {
    return fuseForInference(model);
  } catch (e) {
    if (e instanceof FusionUnsupportedError) return null;
    throw e;
  }
}

function fold(conv: Conv2d, bn: BatchNorm2d | null, owned: Tensor[], where: string): { w: Tensor; b: Tensor | null } {
  const K = conv.outChannels;
  const w = Tensor.empty(conv.weight.shape);
  owned.push(w.keep()); // kept: made under noGrad, freed by FusedModel.dispose()
  if (!bn) {
    w.write(conv.weight.dataSync());
    if (!conv.bias) return { w, b: null };
    const b = Tensor.empty([K]);
    owned.push(b.keep());
    b.write(conv.bias.dataSync());
    return { w, b };
  }
  if (!bn.runningMean || !bn.runningVar) throw new ConfigError(`${where}: a BatchNorm without running statistics cannot be folded`);
  const b = Tensor.empty([K]);
  owned.push(b.keep());
  const per = conv.weight.size / K;
  // Folding runs once, on the host: read the parameters, write the folded copies.
  const src = conv.weight.dataSync(), dst = new Float32Array(src.length), bv = new Float32Array(K);
  const bnW = bn.weight?.dataSync(), bnB = bn.bias?.dataSync(), convB = conv.bias?.dataSync();
  const mean = bn.runningMean.dataSync(), vari = bn.runningVar.dataSync();
  for (let k = 0; k < K; k++) {
    const gamma = bnW ? bnW[k] : 1, beta = bnB ? bnB[k] : 0;
    const s = gamma / Math.sqrt(vari[k] + bn.eps);
    for (let i = k * per; i < (k + 1) * per; i++) dst[i] = src[i] * s;
    bv[k] = ((convB ? convB[k] : 0) - mean[k]) * s + beta;
  }
  w.write(dst);
  b.write(bv);
  return { w, b };
}

function fusedConv(conv: Conv2d, bn: BatchNorm2d | null, relu: boolean, owned: Tensor[], where: string): FusedConv {
  const { w, b } = fold(conv, bn, owned, where);
  const o = { stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups };
  return (x, residual = null) => ops.conv2dFused(x, w, b, o, { relu, residual, constWeights: true });
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

function fuseModule(m: Module, owned: Tensor[], where: string): Step {
  if (m instanceof ResNet) {
    const stem = fusedConv(m.conv1, m.bn1, true, owned, `${where}.conv1`);
    const steps: Step[] = [(x) => { checkImageInput(x.shape, m.inChannels); return stem(x); }, asEval(m.maxpool),
      fuseModule(m.layer1, owned, 'layer1'), fuseModule(m.layer2, owned, 'layer2'),
      fuseModule(m.layer3, owned, 'layer3'), fuseModule(m.layer4, owned, 'layer4')];
    if (m.avgpool && m.fc) steps.push(asEval(m.avgpool), (x) => ops.flatten(x, 1), asEval(m.fc));
    return chain(steps);
  }
  if (m instanceof CifarResNet) {
    const stem = fusedConv(m.conv1, m.bn1, true, owned, `${where}.conv1`);
    return chain([(x) => { checkImageInput(x.shape, m.inChannels); return stem(x); },
      fuseModule(m.layer1, owned, 'layer1'), fuseModule(m.layer2, owned, 'layer2'), fuseModule(m.layer3, owned, 'layer3'),
      asEval(m.avgpool), (x) => ops.flatten(x, 1), asEval(m.fc)]);
  }
  if (m instanceof BasicBlock) {
    const c1 = fusedConv(m.conv1, m.bn1, true, owned, `${where}.conv1`);
    const c2 = fusedConv(m.conv2, m.bn2, true, owned, `${where}.conv2`);
    const ds = m.downsample ? fuseDownsample(m.downsample, owned, `${where}.downsample`) : null;
    return (x) => residualTail(x, c1(x), c2, ds);
  }
  if (m instanceof Bottleneck) {
    const c1 = fusedConv(m.conv1, m.bn1, true, owned, `${where}.conv1`);
    const c2 = fusedConv(m.conv2, m.bn2, true, owned, `${where}.conv2`);
    const c3 = fusedConv(m.conv3, m.bn3, true, owned, `${where}.conv3`);
    const ds = m.downsample ? fuseDownsample(m.downsample, owned, `${where}.downsample`) : null;
    return (x) => {
      const a = c1(x);
      const b = c2(a);
      a.dispose();
      return residualTail(x, b, c3, ds);
    };
  }
  if (m instanceof CifarBasicBlock) {
    const c1 = fusedConv(m.conv1, m.bn1, true, owned, `${where}.conv1`);
    const c2 = fusedConv(m.conv2, m.bn2, true, owned, `${where}.conv2`);
    return (x) => residualTail(x, c1(x), c2, (t) => m.shortcut(t));
  }
  if (m instanceof Residual) {
    const c1 = fusedConv(m.conv1, m.bn1, true, owned, `${where}.conv1`);
    const c2 = fusedConv(m.conv2, m.bn2, true, owned, `${where}.conv2`);
    const c3 = m.conv3 ? fusedConv(m.conv3, null, false, owned, `${where}.conv3`) : null;
    return (x) => residualTail(x, c1(x), c2, c3);
  }
  if (m instanceof Sequential) {
    const kids = [...m.children()];
    const steps: Step[] = [];
    for (let i = 0; i < kids.length; i++) {
      const [name, c] = kids[i];
      const next = kids[i + 1]?.[1], after = kids[i + 2]?.[1];
      if (c instanceof Conv2d && next instanceof BatchNorm2d) {
        const relu = after instanceof ReLU;
        steps.push(fusedConv(c, next, relu, owned, `${where}.${name}`));
        i += relu ? 2 : 1;
      } else {
        steps.push(fuseModule(c, owned, `${where}.${name}`));
      }
    }
    const body = chain(steps);
    return m instanceof D2lResNet18 ? (x) => { checkImageInput(x.shape, m.inChannels); return body(x); } : body;
  }
  if (m instanceof Conv2d) return fusedConv(m, null, false, owned, where);
  if (m instanceof MaxPool2d || m instanceof AdaptiveAvgPool2d || m instanceof Flatten || m instanceof Linear || m instanceof ReLU) return asEval(m);
  throw new FusionUnsupportedError(`cannot fuse ${where} (${m.constructor.name}) for inference: only the zoo's ResNets are supported`);
}

/** torchvision's downsample: Sequential(conv1x1, BatchNorm2d). */
function fuseDownsample(ds: Module, owned: Tensor[], where: string): Step {
  const kids = ds instanceof Sequential ? [...ds.children()].map(([, c]) => c) : [];
  if (kids.length === 2 && kids[0] instanceof Conv2d && kids[1] instanceof BatchNorm2d) {
    return fusedConv(kids[0], kids[1], false, owned, where);
  }
  return fuseModule(ds, owned, where);
}

/** relu(conv2(y) + shortcut(x)) with the add and ReLU in conv2's epilogue; frees y and the shortcut. */
function residualTail(x: Tensor, y: Tensor, conv2: FusedConv, shortcut: Step | null): Tensor {
  const id = shortcut ? shortcut(x) : x;
  const out = conv2(y, id);
  y.dispose();
  if (id !== x) id.dispose();
  return out;
}

