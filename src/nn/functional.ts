// torch.nn.functional's names for the ops a classifier needs.
export {
  relu,
  softmax,
  logSoftmax,
  crossEntropy,
  dropout,
  linear,
  conv2d,
  batchNorm,
  maxPool2d,
  avgPool2d,
  adaptiveAvgPool2d,
  flatten,
} from '../tensor/ops.js';
