// ResNets exactly as torchvision 0.14 defines them (torchvision/models/resnet.py): the same
// module tree, attribute names, defaults and initialisation, so a torchvision state_dict loads
// by name and the same weights give the same numbers. Paper: He et al. 2015, arXiv:1512.03385;
// ResNeXt: Xie et al. 2016; Wide ResNet: Zagoruyko & Komodakis 2016.
import { ConfigError } from '../base/errors.js';
import { checkImageInput, type Shape } from '../base/shape.js';
import { constant_, kaimingNormal_ } from '../nn/init.js';
import { AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Identity, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import * as ops from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { type BlockStructure, type ModelStructure, describeBlock, describeStructure, sequentialUnits, stageBlocks, unitsAt } from './structure.js';
import { collectFeatures, type FeatureOptions, type Stage } from './features.js';

const conv3x3 = (inP: number, outP: number, stride = 1, groups = 1, dilation = 1) =>
  new Conv2d(inP, outP, 3, { stride, padding: dilation, groups, bias: false, dilation });
const conv1x1 = (inP: number, outP: number, stride = 1) => new Conv2d(inP, outP, 1, { stride, bias: false });

/** Two 3x3 convs (expansion 1): ResNet-18/34. */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu: ReLU;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  downsample: Module | null;

  constructor(inplanes: number, planes: number, stride = 1, downsample: Module | null = null, groups = 1, baseWidth = 64, dilation = 1) {
    super();
    if (groups !== 1 || baseWidth !== 64) throw new ConfigError('BasicBlock only supports groups=1 and widthPerGroup=64');
    if (dilation > 1) throw new ConfigError('dilation > 1 is not supported in BasicBlock (use a Bottleneck model for replaceStrideWithDilation)');
    this.conv1 = this.registerModule('conv1', conv3x3(inplanes, planes, stride));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.relu = this.registerModule('relu', new ReLU());
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample = this.registerModule('downsample', downsample);
  }

  forward(x: Tensor): Tensor {
    let out = this.relu.forward(this.bn1.forward(this.conv1.forward(x)));
    out = this.bn2.forward(this.conv2.forward(out));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return ops.relu(ops.add(out, identity));
  }

  blockStructure(path: string): BlockStructure {
    const u = unitsAt(path);
    return {
      path,
      main: [u.conv('conv1', this.conv1, ['bn1', this.bn1], 'relu'), u.conv('conv2', this.conv2, ['bn2', this.bn2])],
      shortcut: this.downsample ? sequentialUnits(this.downsample, `${path}.downsample`) : [],
    };
  }

  override describe(inShape: Shape, prefix: string) {
    return describeBlock(this.blockStructure(prefix), inShape);
  }
}

/** 1x1 → 3x3 (grouped, strided, dilated) → 1x1 with expansion 4: ResNet-50+, ResNeXt, Wide ResNet. */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  conv3: Conv2d;
  bn3: BatchNorm2d;
  relu: ReLU;
  downsample: Module | null;

  constructor(inplanes: number, planes: number, stride = 1, downsample: Module | null = null, groups = 1, baseWidth = 64, dilation = 1) {
    super();
    const width = Math.floor(planes * (baseWidth / 64)) * groups;
    this.conv1 = this.registerModule('conv1', conv1x1(inplanes, width));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(width));
    this.conv2 = this.registerModule('conv2', conv3x3(width, width, stride, groups, dilation));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(width));
    this.conv3 = this.registerModule('conv3', conv1x1(width, planes * Bottleneck.expansion));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(planes * Bottleneck.expansion));
    this.relu = this.registerModule('relu', new ReLU());
    this.downsample = this.registerModule('downsample', downsample);
  }

  forward(x: Tensor): Tensor {
    let out = this.relu.forward(this.bn1.forward(this.conv1.forward(x)));
    out = this.relu.forward(this.bn2.forward(this.conv2.forward(out)));
    out = this.bn3.forward(this.conv3.forward(out));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return ops.relu(ops.add(out, identity));
  }

  blockStructure(path: string): BlockStructure {
    const u = unitsAt(path);
    return {
      path,
      main: [
        u.conv('conv1', this.conv1, ['bn1', this.bn1], 'relu'),
        u.conv('conv2', this.conv2, ['bn2', this.bn2], 'relu'),
        u.conv('conv3', this.conv3, ['bn3', this.bn3]),
      ],
      shortcut: this.downsample ? sequentialUnits(this.downsample, `${path}.downsample`) : [],
    };
  }

  override describe(inShape: Shape, prefix: string) {
    return describeBlock(this.blockStructure(prefix), inShape);
  }
}

export type BlockType = typeof BasicBlock | typeof Bottleneck;

export interface ResNetOptions {
  numClasses?: number;
  zeroInitResidual?: boolean;
  groups?: number;
  widthPerGroup?: number;
  replaceStrideWithDilation?: [boolean, boolean, boolean] | boolean[];
  /** Input channels of the stem (3 for RGB, 1 for grayscale). */
  inChannels?: number;
  /** false: no avgpool/fc; forward returns layer4's feature map [N, C, h, w] (as Keras include_top=False). */
  includeTop?: boolean;
  /**
   * The projection shortcut: 'conv' (torchvision: 1x1 conv with the stride, BN) or 'avgpool'
   * (ResNet-D, He et al. 2018 "Bag of Tricks", timm's avg_down: AvgPool2d(2, stride, ceil_mode,
   * count_include_pad=False), or Identity at stride 1, then a 1x1 conv and BN; keys downsample.1/.2).
   */
  downsample?: 'conv' | 'avgpool';
}

export type ResNetFeature = (typeof ResNet.FEATURE_LAYERS)[number];

export class ResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu: ReLU;
  maxpool: MaxPool2d;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  layer4: Sequential;
  avgpool: AdaptiveAvgPool2d | null;
  fc: Module | null;
  readonly inChannels: number;
  readonly numFeatures: number;
  private inplanes = 64;
  private dilation = 1;
  private readonly groups: number;
  private readonly baseWidth: number;
  private readonly avgDown: boolean;

  constructor(block: BlockType, layers: [number, number, number, number] | number[], opts: ResNetOptions = {}) {
    super();
    const numClasses = opts.numClasses ?? 1000;
    this.groups = opts.groups ?? 1;
    this.baseWidth = opts.widthPerGroup ?? 64;
    this.inChannels = opts.inChannels ?? 3;
    const rswd = opts.replaceStrideWithDilation ?? [false, false, false];
    this.avgDown = opts.downsample === 'avgpool';
    if (this.avgDown && rswd.some(Boolean))
      throw new ConfigError("downsample 'avgpool' cannot be combined with replaceStrideWithDilation (timm pads a stride-1 pool 'same' there)");
    if (rswd.length !== 3) throw new ConfigError(`replaceStrideWithDilation should be null or a 3-element list, got ${JSON.stringify(rswd)}`);
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new ConfigError(`numClasses must be a positive integer, got ${numClasses}`);
    if (layers.length !== 4) throw new ConfigError(`layers must have 4 entries, got ${layers.length}`);
    this.conv1 = this.registerModule('conv1', new Conv2d(this.inChannels, 64, 7, { stride: 2, padding: 3, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(64));
    this.relu = this.registerModule('relu', new ReLU());
    this.maxpool = this.registerModule('maxpool', new MaxPool2d(3, { stride: 2, padding: 1 }));
    this.layer1 = this.registerModule('layer1', this.makeLayer(block, 64, layers[0]));
    this.layer2 = this.registerModule('layer2', this.makeLayer(block, 128, layers[1], 2, rswd[0]));
    this.layer3 = this.registerModule('layer3', this.makeLayer(block, 256, layers[2], 2, rswd[1]));
    this.layer4 = this.registerModule('layer4', this.makeLayer(block, 512, layers[3], 2, rswd[2]));
    this.numFeatures = 512 * block.expansion;
    const top = opts.includeTop ?? true;
    this.avgpool = this.registerModule('avgpool', top ? new AdaptiveAvgPool2d(1) : null);
    this.fc = this.registerModule('fc', top ? new Linear(this.numFeatures, numClasses) : null);

    // torchvision's init: convs kaiming normal (fan_out, relu), BN weight 1 bias 0, fc keeps Linear's default.
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, 'fanOut');
      else if (m instanceof BatchNorm2d) {
        if (m.weight) constant_(m.weight, 1);
        if (m.bias) constant_(m.bias, 0);
      }
    }
    if (opts.zeroInitResidual) {
      for (const [, m] of this.namedModules()) {
        if (m instanceof Bottleneck && m.bn3.weight) constant_(m.bn3.weight, 0);
        else if (m instanceof BasicBlock && m.bn2.weight) constant_(m.bn2.weight, 0);
      }
    }
  }

  private makeLayer(block: BlockType, planes: number, blocks: number, stride = 1, dilate = false): Sequential {
    let downsample: Module | null = null;
    const previousDilation = this.dilation;
    if (dilate) {
      this.dilation *= stride;
      stride = 1;
    }
    if (stride !== 1 || this.inplanes !== planes * block.expansion) {
      const out = planes * block.expansion;
      downsample = this.avgDown
        ? new Sequential(
            stride === 1 ? new Identity() : new AvgPool2d(2, { stride, ceilMode: true, countIncludePad: false }),
            conv1x1(this.inplanes, out),
            new BatchNorm2d(out),
          )
        : new Sequential(conv1x1(this.inplanes, out, stride), new BatchNorm2d(out));
    }
    const mods: Module[] = [new block(this.inplanes, planes, stride, downsample, this.groups, this.baseWidth, previousDilation)];
    this.inplanes = planes * block.expansion;
    for (let i = 1; i < blocks; i++) mods.push(new block(this.inplanes, planes, 1, null, this.groups, this.baseWidth, this.dilation));
    return new Sequential(...mods);
  }

  /** The stage names forwardFeatures knows, in order. */
  static readonly FEATURE_LAYERS = ['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'pool', 'logits'] as const;

  /**
   * Without options: stem and the four stages, the feature map [N, numFeatures, h, w]. With
   * `{ layers }`: the outputs of the named stages — 'stem' (after maxpool), 'layer1'…'layer4'
   * ([N, C, h, w]), 'pool' (the pooled embedding [N, numFeatures], what fc sees) and 'logits'.
   */
  forwardFeatures(x: Tensor): Tensor;
  forwardFeatures<L extends ResNetFeature>(x: Tensor, o: FeatureOptions<L>): Record<L, Tensor>;
  forwardFeatures<L extends ResNetFeature>(x: Tensor, o?: FeatureOptions<L>): Tensor | Record<L, Tensor> {
    checkImageInput(x.shape, this.inChannels);
    if (!o) {
      let y = this.maxpool.forward(this.relu.forward(this.bn1.forward(this.conv1.forward(x))));
      y = this.layer1.forward(y);
      y = this.layer2.forward(y);
      y = this.layer3.forward(y);
      return this.layer4.forward(y);
    }
    const stages: Stage[] = [
      ['stem', (t) => this.maxpool.forward(this.relu.forward(this.bn1.forward(this.conv1.forward(t))))],
      ['layer1', (t) => this.layer1.forward(t)],
      ['layer2', (t) => this.layer2.forward(t)],
      ['layer3', (t) => this.layer3.forward(t)],
      ['layer4', (t) => this.layer4.forward(t)],
      ['pool', (t) => ops.flatten(ops.adaptiveAvgPool2d(t, 1), 1)],
    ];
    if (this.fc) stages.push(['logits', (t) => this.fc!.forward(t)]);
    return collectFeatures(x, stages, o.layers, 'ResNet');
  }

  forward(x: Tensor): Tensor {
    const f = this.forwardFeatures(x);
    if (!this.avgpool || !this.fc) return f;
    return this.fc.forward(ops.flatten(this.avgpool.forward(f), 1));
  }

  structure(): ModelStructure {
    const u = unitsAt('');
    return {
      inChannels: this.inChannels,
      stem: [u.conv('conv1', this.conv1, ['bn1', this.bn1], 'relu'), u.pool('maxpool', this.maxpool)],
      stages: (['layer1', 'layer2', 'layer3', 'layer4'] as const).map((l) => stageBlocks(this[l], l)),
      head: this.avgpool && this.fc ? { pool: this.avgpool, poolPath: 'avgpool', fc: this.fc, fcPath: 'fc' } : null,
    };
  }

  override describe(inShape: Shape) {
    return describeStructure(this.structure(), inShape);
  }
}

export type ResNetBuilder = (opts?: ResNetOptions) => ResNet;

export const resnet18: ResNetBuilder = (o = {}) => new ResNet(BasicBlock, [2, 2, 2, 2], o);
export const resnet34: ResNetBuilder = (o = {}) => new ResNet(BasicBlock, [3, 4, 6, 3], o);
export const resnet50: ResNetBuilder = (o = {}) => new ResNet(Bottleneck, [3, 4, 6, 3], o);
export const resnet101: ResNetBuilder = (o = {}) => new ResNet(Bottleneck, [3, 4, 23, 3], o);
export const resnet152: ResNetBuilder = (o = {}) => new ResNet(Bottleneck, [3, 8, 36, 3], o);
export const resnext50_32x4d: ResNetBuilder = (o = {}) => new ResNet(Bottleneck, [3, 4, 6, 3], { groups: 32, widthPerGroup: 4, ...o });
export const resnext101_32x8d: ResNetBuilder = (o = {}) => new ResNet(Bottleneck, [3, 4, 23, 3], { groups: 32, widthPerGroup: 8, ...o });
export const resnext101_64x4d: ResNetBuilder = (o = {}) => new ResNet(Bottleneck, [3, 4, 23, 3], { groups: 64, widthPerGroup: 4, ...o });
export const wide_resnet50_2: ResNetBuilder = (o = {}) => new ResNet(Bottleneck, [3, 4, 6, 3], { widthPerGroup: 128, ...o });
export const wide_resnet101_2: ResNetBuilder = (o = {}) => new ResNet(Bottleneck, [3, 4, 23, 3], { widthPerGroup: 128, ...o });
