// The layers a ResNet needs, with PyTorch's constructor arguments and semantics.
import { ConfigError, ShapeError } from '../base/errors.js';
import { convOutSize, shapeStr, toPair, type Shape } from '../base/shape.js';
import * as ops from '../tensor/ops.js';
import { Tensor } from '../tensor/tensor.js';
import { constant_, defaultBias_, defaultWeight_ } from './init.js';
import { Module, type LayerInfo } from './module.js';

type Pair = number | [number, number];

function leaf(m: Module, prefix: string, type: string, outShape: number[], macs: number): { outShape: number[]; rows: LayerInfo[] } {
  return { outShape, rows: [{ name: prefix, type, outShape, params: m.numParameters(), macs }] };
}

export interface Conv2dConfig {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

export class Conv2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;
  readonly kernelSize: [number, number];

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    cfg: Conv2dConfig = {},
  ) {
    super();
    this.kernelSize = toPair(kernelSize);
    this.stride = toPair(cfg.stride ?? 1);
    this.padding = toPair(cfg.padding ?? 0);
    this.dilation = toPair(cfg.dilation ?? 1);
    this.groups = cfg.groups ?? 1;
    if (inChannels % this.groups || outChannels % this.groups) {
      throw new ConfigError(`Conv2d(${inChannels}, ${outChannels}): channels must be divisible by groups=${this.groups}`);
    }
    const [R, S] = this.kernelSize;
    this.weight = this.registerParameter('weight', Tensor.empty([outChannels, inChannels / this.groups, R, S]))!;
    defaultWeight_(this.weight);
    this.bias = this.registerParameter('bias', cfg.bias === false ? null : Tensor.empty([outChannels]));
    if (this.bias) defaultBias_(this.bias, this.weight);
  }

  forward(x: Tensor): Tensor {
    return ops.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }

  override describe(inShape: Shape, prefix: string) {
    if (inShape[0] !== this.inChannels) {
      throw new ShapeError(`${prefix || 'conv'} expects ${this.inChannels} input channels, got ${inShape[0]} (input ${shapeStr(inShape)})`);
    }
    const [R, S] = this.kernelSize;
    const OH = convOutSize(inShape[1], R, this.stride[0], this.padding[0], this.dilation[0]);
    const OW = convOutSize(inShape[2], S, this.stride[1], this.padding[1], this.dilation[1]);
    if (OH <= 0 || OW <= 0) throw new ShapeError(`${prefix}: input ${shapeStr(inShape)} is too small for a ${R}x${S} kernel`);
    const macs = this.outChannels * (this.inChannels / this.groups) * R * S * OH * OW;
    return leaf(this, prefix, `Conv2d ${R}x${S}/${this.stride[0]}`, [this.outChannels, OH, OW], macs);
  }
}

export interface BatchNormConfig {
  eps?: number;
  /** null: cumulative moving average, as PyTorch's momentum=None. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

export class BatchNorm2d extends Module {
  weight: Tensor | null;
  bias: Tensor | null;
  runningMean: Tensor | null;
  runningVar: Tensor | null;
  numBatchesTracked: Tensor | null;
  readonly eps: number;
  readonly momentum: number | null;

  constructor(
    readonly numFeatures: number,
    cfg: BatchNormConfig = {},
  ) {
    super();
    this.eps = cfg.eps ?? 1e-5;
    this.momentum = cfg.momentum === undefined ? 0.1 : cfg.momentum;
    const affine = cfg.affine ?? true,
      track = cfg.trackRunningStats ?? true;
    this.weight = this.registerParameter('weight', affine ? constant_(Tensor.empty([numFeatures]), 1) : null);
    this.bias = this.registerParameter('bias', affine ? Tensor.empty([numFeatures]) : null);
    this.runningMean = this.registerBuffer('running_mean', track ? Tensor.empty([numFeatures]) : null);
    this.runningVar = this.registerBuffer('running_var', track ? constant_(Tensor.empty([numFeatures]), 1) : null);
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', track ? Tensor.empty([]) : null);
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.numFeatures) {
      throw new ShapeError(`BatchNorm2d(${this.numFeatures}) expects [N, ${this.numFeatures}, H, W], got ${shapeStr(x.shape)}`);
    }
    let momentum = this.momentum ?? 0;
    const useBatchStats = this.training || !this.runningMean;
    if (this.training && this.numBatchesTracked) {
      const n = this.numBatchesTracked,
        be = n.backend;
      be.affine(n.storage, n.storage, 1, 1); // += 1 where the counter lives
      if (this.momentum === null) momentum = 1 / n.item(); // the cumulative average needs the count on the host
    }
    // in eval mode without running stats those are null already
    return ops.batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, useBatchStats, momentum, this.eps);
  }

  override describe(inShape: Shape, prefix: string) {
    if (inShape[0] !== this.numFeatures) throw new ShapeError(`${prefix} expects ${this.numFeatures} channels, got ${inShape[0]}`);
    return leaf(this, prefix, 'BatchNorm2d', [...inShape], 0);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return ops.relu(x);
  }
  override describe(inShape: Shape, prefix: string) {
    return leaf(this, prefix, 'ReLU', [...inShape], 0);
  }
}

export interface PoolConfig {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
  countIncludePad?: boolean;
}

/** A pool's settings with PyTorch's defaults filled in (stride = kernel, padding 0, dilation 1, floor, pads counted). */
export interface PoolGeometry {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  ceilMode: boolean;
  countIncludePad: boolean;
}

export function poolGeometry(kernelSize: Pair, cfg: PoolConfig): PoolGeometry {
  const kernel = toPair(kernelSize);
  return {
    kernel,
    stride: toPair(cfg.stride ?? kernel),
    padding: toPair(cfg.padding ?? 0),
    dilation: toPair(cfg.dilation ?? 1),
    ceilMode: cfg.ceilMode ?? false,
    countIncludePad: cfg.countIncludePad ?? true,
  };
}

function poolOutShape(g: PoolGeometry, inShape: Shape): number[] {
  const o = (i: 0 | 1) => convOutSize(inShape[i + 1], g.kernel[i], g.stride[i], g.padding[i], g.dilation[i], g.ceilMode);
  return [inShape[0], o(0), o(1)];
}

export class MaxPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly cfg: PoolConfig = {},
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.maxPool2d(x, { kernelSize: this.kernelSize, ...this.cfg });
  }
  geometry(): PoolGeometry {
    return poolGeometry(this.kernelSize, this.cfg);
  }
  override describe(inShape: Shape, prefix: string) {
    const g = this.geometry();
    return leaf(this, prefix, `MaxPool2d ${g.kernel.join('x')}/${g.stride[0]}`, poolOutShape(g, inShape), 0);
  }
}

export class AvgPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly cfg: PoolConfig = {},
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.avgPool2d(x, { kernelSize: this.kernelSize, ...this.cfg });
  }
  geometry(): PoolGeometry {
    return poolGeometry(this.kernelSize, { ...this.cfg, dilation: 1 });
  }
  override describe(inShape: Shape, prefix: string) {
    const g = this.geometry();
    return leaf(this, prefix, `AvgPool2d ${g.kernel.join('x')}/${g.stride[0]}`, poolOutShape(g, inShape), 0);
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.adaptiveAvgPool2d(x, this.outputSize);
  }
  override describe(inShape: Shape, prefix: string) {
    const [oh, ow] = toPair(this.outputSize);
    return leaf(this, prefix, 'AdaptiveAvgPool2d', [inShape[0], oh, ow], 0);
  }
}

export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    bias = true,
  ) {
    super();
    this.weight = this.registerParameter('weight', Tensor.empty([outFeatures, inFeatures]))!;
    defaultWeight_(this.weight);
    this.bias = this.registerParameter('bias', bias ? Tensor.empty([outFeatures]) : null);
    if (this.bias) defaultBias_(this.bias, this.weight);
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
  override describe(inShape: Shape, prefix: string) {
    if (inShape.length !== 1 || inShape[0] !== this.inFeatures) {
      throw new ShapeError(`${prefix} expects ${this.inFeatures} features, got ${shapeStr(inShape)}`);
    }
    return leaf(this, prefix, 'Linear', [this.outFeatures], this.inFeatures * this.outFeatures);
  }
}

export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.flatten(x, this.startDim, this.endDim);
  }
  override describe(inShape: Shape, prefix: string) {
    return leaf(this, prefix, 'Flatten', [inShape.reduce((a, b) => a * b, 1)], 0);
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new ConfigError(`dropout probability must be in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return ops.dropout(x, this.p, this.training);
  }
  override describe(inShape: Shape, prefix: string) {
    return leaf(this, prefix, 'Dropout', [...inShape], 0);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return ops.affineScalar(x, 1, 0);
  }
  override describe(inShape: Shape, prefix: string) {
    return leaf(this, prefix, 'Identity', [...inShape], 0);
  }
}

/** Children named "0", "1", … run in order. */
export class Sequential extends Module {
  constructor(...mods: Module[]) {
    super();
    mods.forEach((m, i) => this.registerModule(String(i), m));
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const [, m] of this.children()) y = m.forward(y);
    return y;
  }
  get length(): number {
    return this.children().length;
  }
  at(i: number): Module {
    return this.getModule(String(i));
  }
  override describe(inShape: Shape, prefix: string) {
    return describeSeq(this.children(), inShape, prefix);
  }
}

/** Walk children in order, chaining shapes. */
export function describeSeq(children: [string, Module][], inShape: Shape, prefix: string): { outShape: number[]; rows: LayerInfo[] } {
  let shape = [...inShape];
  const rows: LayerInfo[] = [];
  for (const [n, m] of children) {
    const r = m.describe(shape, prefix ? `${prefix}.${n}` : n);
    rows.push(...r.rows);
    shape = r.outShape;
  }
  return { outShape: shape, rows };
}
