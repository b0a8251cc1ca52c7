// The benchmark's ResNets rebuilt with TensorFlow.js layers (random weights): torchvision's
// ResNet-18/50 and d2l's ResNet-18, same layers and trainable parameter counts as ours.
//
// Layout is NHWC, tfjs's native one (its conv kernels only take channels-last). Convolutions use
// 'same' padding: for stride 1 that is PyTorch's symmetric padding; for stride 2 on even sizes
// tfjs pads one row/column less on the top/left, which gives the same output shapes and the
// same FLOPs. Max pooling follows ReLU, so zero padding equals PyTorch's -inf padding in effect.
import type * as tfTypes from '@tensorflow/tfjs';

type TF = typeof tfTypes;
type SymT = tfTypes.SymbolicTensor;

export function buildTfjsModel(tf: TF, model: string, size: number, channels: number, classes: number): tfTypes.LayersModel {
  const input = tf.input({ shape: [size, size, channels] });
  let x: SymT;
  const L = tf.layers;
  const conv = (t: SymT, filters: number, k: number, stride: number, bias: boolean) =>
    L.conv2d({ filters, kernelSize: k, strides: stride, padding: k === 1 ? 'valid' : 'same', useBias: bias }).apply(t) as SymT;
  const bn = (t: SymT) => L.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-5 }).apply(t) as SymT;
  const relu = (t: SymT) => L.reLU().apply(t) as SymT;
  const add = (a: SymT, b: SymT) => L.add().apply([a, b]) as SymT;

  if (model === 'd2l_resnet18') {
    // d2l §8.6: convs with biases, shortcut = strided 1x1 conv (with bias, no BN).
    x = L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(relu(bn(conv(input, 64, 7, 2, true)))) as SymT;
    for (const [cout, first] of [
      [64, true],
      [128, false],
      [256, false],
      [512, false],
    ] as const) {
      for (let i = 0; i < 2; i++) {
        const down = i === 0 && !first;
        const stride = down ? 2 : 1;
        let y = relu(bn(conv(x, cout, 3, stride, true)));
        y = bn(conv(y, cout, 3, 1, true));
        const sc = down ? conv(x, cout, 1, stride, true) : x;
        x = relu(add(y, sc));
      }
    }
  } else {
    const bottleneck = model === 'resnet50';
    const layers = bottleneck ? [3, 4, 6, 3] : [2, 2, 2, 2];
    const expansion = bottleneck ? 4 : 1;
    x = L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(relu(bn(conv(input, 64, 7, 2, false)))) as SymT;
    let cin = 64;
    layers.forEach((blocks, li) => {
      const planes = 64 * 2 ** li;
      for (let b = 0; b < blocks; b++) {
        const stride = b === 0 && li > 0 ? 2 : 1;
        let y: SymT;
        if (bottleneck) {
          y = relu(bn(conv(x, planes, 1, 1, false)));
          y = relu(bn(conv(y, planes, 3, stride, false)));
          y = bn(conv(y, planes * expansion, 1, 1, false));
        } else {
          y = relu(bn(conv(x, planes, 3, stride, false)));
          y = bn(conv(y, planes, 3, 1, false));
        }
        const sc = stride !== 1 || cin !== planes * expansion ? bn(conv(x, planes * expansion, 1, stride, false)) : x;
        x = relu(add(y, sc));
        cin = planes * expansion;
      }
    });
  }
  x = L.globalAveragePooling2d({}).apply(x) as SymT;
  const out = L.dense({ units: classes }).apply(x) as SymT;
  return tf.model({ inputs: input, outputs: out });
}

export function trainableParams(m: tfTypes.LayersModel): number {
  let n = 0;
  for (const w of m.trainableWeights) n += w.shape.reduce((a: number, b) => a * (b ?? 1), 1);
  return n;
}
