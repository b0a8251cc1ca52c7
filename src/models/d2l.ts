// d2l's ResNet-18 ("Dive into Deep Learning", §8.6 Residual Networks): a Sequential of five
// stages, a global average pool, Flatten and Linear(512, classes). Unlike torchvision, its convs
// have biases and the shortcut is a strided 1x1 conv without BN ("conv3"). Key names follow
// the PyTorch nn.Sequential it is written as: `0.0.weight`, `1.0.conv1.weight`, `2.0.conv3.bias`,
// `7.weight`. 11,178,378 parameters with 1 input channel and 10 classes.
import { checkImageInput, type Shape } from '../base/shape.js';
import { xavierUniform_ } from '../nn/init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import * as ops from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  type BlockStructure,
  type ModelStructure,
  UnknownStructureError,
  describeBlock,
  describeStructure,
  sequentialUnits,
  stageBlocks,
  unitsAt,
} from './structure.js';

export class Residual extends Module {
  conv1: Conv2d;
  conv2: Conv2d;
  conv3: Conv2d | null;
  bn1: BatchNorm2d;
  bn2: BatchNorm2d;

  constructor(inputChannels: number, numChannels: number, use1x1conv = false, strides = 1) {
    super();
    this.conv1 = this.registerModule('conv1', new Conv2d(inputChannels, numChannels, 3, { padding: 1, stride: strides }));
    this.conv2 = this.registerModule('conv2', new Conv2d(numChannels, numChannels, 3, { padding: 1 }));
    this.conv3 = this.registerModule('conv3', use1x1conv ? new Conv2d(inputChannels, numChannels, 1, { stride: strides }) : null);
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(numChannels));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(numChannels));
  }

  forward(x: Tensor): Tensor {
    let y = ops.relu(this.bn1.forward(this.conv1.forward(x)));
    y = this.bn2.forward(this.conv2.forward(y));
    const sc = this.conv3 ? this.conv3.forward(x) : x;
    return ops.relu(ops.add(y, sc));
  }

  blockStructure(path: string): BlockStructure {
    const u = unitsAt(path);
    return {
      path,
      main: [u.conv('conv1', this.conv1, ['bn1', this.bn1], 'relu'), u.conv('conv2', this.conv2, ['bn2', this.bn2])],
      shortcut: this.conv3 ? [u.conv('conv3', this.conv3, null)] : [],
    };
  }

  override describe(inShape: Shape, prefix: string) {
    return describeBlock(this.blockStructure(prefix), inShape);
  }
}

function resnetBlock(inputChannels: number, numChannels: number, numResiduals: number, firstBlock = false): Sequential {
  const blk: Module[] = [];
  for (let i = 0; i < numResiduals; i++) {
    blk.push(i === 0 && !firstBlock ? new Residual(inputChannels, numChannels, true, 2) : new Residual(numChannels, numChannels));
  }
  return new Sequential(...blk);
}

export interface D2lOptions {
  numClasses?: number;
  inChannels?: number;
  /** d2l's train_ch6 re-initialises Linear and Conv2d weights with Xavier uniform. Default true. */
  xavier?: boolean;
}

/** d2l's ResNet-18 as an nn.Sequential; `inChannels` is the only thing to know from outside. */
export class D2lResNet18 extends Sequential {
  readonly inChannels: number;
  constructor(opts: D2lOptions = {}) {
    const inC = opts.inChannels ?? 1;
    const b1 = new Sequential(new Conv2d(inC, 64, 7, { stride: 2, padding: 3 }), new BatchNorm2d(64), new ReLU(), new MaxPool2d(3, { stride: 2, padding: 1 }));
    super(
      b1,
      resnetBlock(64, 64, 2, true),
      resnetBlock(64, 128, 2),
      resnetBlock(128, 256, 2),
      resnetBlock(256, 512, 2),
      new AdaptiveAvgPool2d(1),
      new Flatten(),
      new Linear(512, opts.numClasses ?? 10),
    );
    this.inChannels = inC;
    if (opts.xavier ?? true) {
      for (const [, m] of this.namedModules()) if (m instanceof Conv2d || m instanceof Linear) xavierUniform_(m.weight);
    }
  }

  override forward(x: Tensor): Tensor {
    checkImageInput(x.shape, this.inChannels);
    return super.forward(x);
  }

  structure(): ModelStructure {
    const kid = (n: string) => this.getModule(n);
    const pool = kid('5');
    if (!(pool instanceof AdaptiveAvgPool2d))
      throw new UnknownStructureError(`d2l_resnet18: module 5 is ${pool.constructor.name}, not the global average pool`);
    return {
      inChannels: this.inChannels,
      stem: sequentialUnits(kid('0'), '0'),
      stages: ['1', '2', '3', '4'].map((n) => stageBlocks(kid(n), n)),
      head: { pool, poolPath: '5', fc: kid('7'), fcPath: '7' },
    };
  }

  override describe(inShape: Shape) {
    return describeStructure(this.structure(), inShape);
  }
}

export const d2l_resnet18 = (opts: D2lOptions = {}) => new D2lResNet18(opts);
