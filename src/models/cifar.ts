// The CIFAR-10 ResNets of He et al. 2015 (arXiv:1512.03385, §4.2): a 3x3 stem with 16 filters,
// three stages of n BasicBlocks with 16, 32 and 64 filters (depth 6n+2), global average pool
// and a linear classifier; option `width` scales all three stages, as Wide ResNets do. Shortcuts
// use option A: subsample by 2 and zero-pad the new channels, so they add no parameters.
// ResNet-20 has 269,722 parameters (0.27M in the paper).
// Key names mirror torchvision's where they exist: conv1, bn1, layer1.0.conv1, fc.
import { ConfigError } from '../base/errors.js';
import { checkImageInput, type Shape } from '../base/shape.js';
import { constant_, kaimingNormal_ } from '../nn/init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, ReLU, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import * as ops from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { type BlockStructure, type ModelStructure, describeBlock, describeStructure, stageBlocks, unitsAt } from './structure.js';
import { collectFeatures, type FeatureOptions } from './features.js';

export class CifarBasicBlock extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  private readonly shortcutPad: number;

  constructor(
    inPlanes: number,
    readonly planes: number,
    readonly stride = 1,
  ) {
    super();
    this.conv1 = this.registerModule('conv1', new Conv2d(inPlanes, planes, 3, { stride, padding: 1, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', new Conv2d(planes, planes, 3, { padding: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.shortcutPad = stride !== 1 || inPlanes !== planes ? (planes - inPlanes) / 2 : -1;
    if (this.shortcutPad !== -1 && !Number.isInteger(this.shortcutPad)) throw new ConfigError('option-A shortcut needs an even channel increase');
  }

  forward(x: Tensor): Tensor {
    let out = ops.relu(this.bn1.forward(this.conv1.forward(x)));
    out = this.bn2.forward(this.conv2.forward(out));
    return ops.relu(ops.add(out, this.shortcut(x)));
  }

  /** The option-A shortcut: x itself, or x subsampled with zero channels padded on both sides. */
  shortcut(x: Tensor): Tensor {
    return this.shortcutPad >= 0 ? ops.subsamplePadChannels(x, this.stride, this.shortcutPad, this.shortcutPad) : x;
  }

  blockStructure(path: string): BlockStructure {
    const u = unitsAt(path);
    const p = this.shortcutPad;
    return {
      path,
      main: [u.conv('conv1', this.conv1, ['bn1', this.bn1], 'relu'), u.conv('conv2', this.conv2, ['bn2', this.bn2])],
      shortcut: p >= 0 ? [{ kind: 'subsamplePad', stride: this.stride, padBefore: p, padAfter: p }] : [],
    };
  }

  override describe(inShape: Shape, prefix: string) {
    return describeBlock(this.blockStructure(prefix), inShape);
  }
}

export interface CifarResNetOptions {
  numClasses?: number;
  inChannels?: number;
  /** Filters of the stem and first stage (default 16, He et al.'s); the stages have width, 2x and 4x it. Even, for option A. */
  width?: number;
}

export class CifarResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu: ReLU;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  avgpool: AdaptiveAvgPool2d;
  fc: Linear;
  readonly inChannels: number;
  readonly width: number;

  constructor(
    readonly depth: number,
    opts: CifarResNetOptions = {},
  ) {
    super();
    if ((depth - 2) % 6 !== 0 || depth < 8) throw new ConfigError(`CIFAR ResNet depth must be 6n+2, got ${depth}`);
    const n = (depth - 2) / 6;
    this.inChannels = opts.inChannels ?? 3;
    const w = opts.width ?? 16;
    if (!Number.isInteger(w) || w < 2 || w % 2 !== 0)
      throw new ConfigError(`CIFAR ResNet width must be an even integer >= 2 (option-A shortcuts pad width/2 channels on each side), got ${w}`);
    this.width = w;
    this.conv1 = this.registerModule('conv1', new Conv2d(this.inChannels, w, 3, { padding: 1, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(w));
    this.relu = this.registerModule('relu', new ReLU());
    const stage = (inP: number, planes: number, stride: number) => {
      const blocks: Module[] = [new CifarBasicBlock(inP, planes, stride)];
      for (let i = 1; i < n; i++) blocks.push(new CifarBasicBlock(planes, planes, 1));
      return new Sequential(...blocks);
    };
    this.layer1 = this.registerModule('layer1', stage(w, w, 1));
    this.layer2 = this.registerModule('layer2', stage(w, 2 * w, 2));
    this.layer3 = this.registerModule('layer3', stage(2 * w, 4 * w, 2));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.fc = this.registerModule('fc', new Linear(4 * w, opts.numClasses ?? 10));
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, 'fanIn');
      else if (m instanceof BatchNorm2d) {
        constant_(m.weight!, 1);
        constant_(m.bias!, 0);
      }
    }
  }

  /**
   * The outputs of the named stages: 'stem' (conv1/bn1/relu), 'layer1'…'layer3' ([N, C, h, w]),
   * 'pool' (the pooled embedding [N, 4 * width], what fc sees) and 'logits'.
   */
  forwardFeatures<L extends 'stem' | 'layer1' | 'layer2' | 'layer3' | 'pool' | 'logits'>(x: Tensor, o: FeatureOptions<L>): Record<L, Tensor> {
    checkImageInput(x.shape, this.inChannels);
    return collectFeatures(
      x,
      [
        ['stem', (t) => this.relu.forward(this.bn1.forward(this.conv1.forward(t)))],
        ['layer1', (t) => this.layer1.forward(t)],
        ['layer2', (t) => this.layer2.forward(t)],
        ['layer3', (t) => this.layer3.forward(t)],
        ['pool', (t) => ops.flatten(this.avgpool.forward(t), 1)],
        ['logits', (t) => this.fc.forward(t)],
      ],
      o.layers,
      'CifarResNet',
    );
  }

  forward(x: Tensor): Tensor {
    checkImageInput(x.shape, this.inChannels);
    let y = this.relu.forward(this.bn1.forward(this.conv1.forward(x)));
    y = this.layer3.forward(this.layer2.forward(this.layer1.forward(y)));
    return this.fc.forward(ops.flatten(this.avgpool.forward(y), 1));
  }

  structure(): ModelStructure {
    return {
      inChannels: this.inChannels,
      stem: [unitsAt('').conv('conv1', this.conv1, ['bn1', this.bn1], 'relu')],
      stages: (['layer1', 'layer2', 'layer3'] as const).map((l) => stageBlocks(this[l], l)),
      head: { pool: this.avgpool, poolPath: 'avgpool', fc: this.fc, fcPath: 'fc' },
    };
  }

  override describe(inShape: Shape) {
    return describeStructure(this.structure(), inShape);
  }
}

export const cifar_resnet20 = (o: CifarResNetOptions = {}) => new CifarResNet(20, o);
export const cifar_resnet32 = (o: CifarResNetOptions = {}) => new CifarResNet(32, o);
export const cifar_resnet44 = (o: CifarResNetOptions = {}) => new CifarResNet(44, o);
export const cifar_resnet56 = (o: CifarResNetOptions = {}) => new CifarResNet(56, o);
export const cifar_resnet110 = (o: CifarResNetOptions = {}) => new CifarResNet(110, o);
