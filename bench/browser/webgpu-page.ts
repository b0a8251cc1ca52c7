// The page of bench/webgpu-browser.ts: resnet-ts on WebGPU, onnxruntime-web's webgpu execution
// provider (served from node_modules/onnxruntime-web/dist as /ort/) and TensorFlow.js's webgpu
// backend, same adapter. Inference: same model (the ONNX file is our exporter's copy of the same
// random weights; tfjs builds the same architecture with random weights, NHWC), each call timed
// with the logits read back. Training: one d2l ResNet-18 SGD-momentum step, timed with the loss
// read back.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import {
  createModel,
  fuseForInference,
  noGrad,
  ops,
  optim,
  readSafetensors,
  scope,
  setBackend,
  tensor,
  type FusedModel,
  type Module,
} from '../../src/browser.js';
import { buildTfjsModel, trainableParams } from '../peers/tfjs_models.js';

const crossEntropyLoss = ops.crossEntropy;

type Ort = typeof import('onnxruntime-web');
let ort: Ort | null = null;
const held = new Map<string, { fused: FusedModel; x: Float32Array; shape: [number, number, number, number] }>();
const sessions = new Map<string, { s: import('onnxruntime-web').InferenceSession; x: Float32Array; shape: number[] }>();

async function bytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

const input = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);

const w = window as unknown as Record<string, unknown>;
w.adapter = async () => ((await setBackend('webgpu')) as unknown as { adapterDescription: string }).adapterDescription;

w.oursMs = async (model: string, batch: number, size: number) => {
  const key = `${model}-${batch}-${size}`;
  let h = held.get(key);
  if (!h) {
    await setBackend('webgpu');
    const m = noGrad(() => createModel(model));
    m.loadStateDict(readSafetensors(await bytes(`${model}.safetensors`)));
    h = { fused: fuseForInference(m.eval()), x: input(batch * 3 * size * size), shape: [batch, 3, size, size] };
    held.set(key, h);
  }
  const t0 = performance.now();
  const y = scope(() => h.fused.forward(tensor(h.x, h.shape)).keep());
  await y.data();
  const ms = performance.now() - t0;
  y.dispose();
  return ms;
};

w.ortMs = async (model: string, batch: number, size: number) => {
  const key = `${model}-${batch}-${size}`;
  let s = sessions.get(key);
  if (!s) {
    const url = '/ort/ort.webgpu.bundle.min.mjs'; // served at run time: not part of this bundle
    ort ??= (await import(url)) as Ort;
    const sess = await ort!.InferenceSession.create(await bytes(`${model}.onnx`), { executionProviders: ['webgpu'] });
    s = { s: sess, x: input(batch * 3 * size * size), shape: [batch, 3, size, size] };
    sessions.set(key, s);
  }
  const t0 = performance.now();
  const r = await s.s.run({ [s.s.inputNames[0]]: new ort!.Tensor('float32', s.x, s.shape) });
  const out = r[s.s.outputNames[0]];
  await out.getData();
  return performance.now() - t0;
};
const targets = (n: number, classes: number) => Int32Array.from({ length: n }, (_, i) => (i * 7) % classes);

const trainers = new Map<string, () => Promise<number>>();
/** One d2l ResNet-18 training step (batch x 1 x size x size, 10 classes, SGD lr 0.05 momentum 0.9): ms. */
w.oursTrainMs = async (batch: number, size: number) => {
  const key = `${batch}-${size}`;
  let step = trainers.get(key);
  if (!step) {
    await setBackend('webgpu');
    const m: Module = noGrad(() => createModel('d2l_resnet18')).train();
    const sgd = new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
    const x = input(batch * size * size),
      y = targets(batch, 10);
    step = async () => {
      const l = scope(() => {
        sgd.zeroGrad();
        const loss = crossEntropyLoss(m.forward(tensor(x, [batch, 1, size, size])), y);
        loss.backward();
        noGrad(() => sgd.step());
        return loss.keep();
      });
      const v = (await l.data())[0];
      l.dispose();
      return v;
    };
    trainers.set(key, step);
  }
  const t0 = performance.now();
  const loss = await step();
  if (!Number.isFinite(loss)) throw new Error(`ours: loss ${loss}`);
  return performance.now() - t0;
};

const tfHeld = new Map<string, () => Promise<number>>();
/** tfjs-backend-webgpu: inference of `model` (train false) or the d2l training step (train true): ms. */
w.tfjsMs = async (model: string, batch: number, size: number, train: boolean) => {
  const key = `${model}-${batch}-${size}-${train}`;
  let run = tfHeld.get(key);
  if (!run) {
    if (tf.getBackend() !== 'webgpu') {
      if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend did not initialise');
      await tf.ready();
    }
    const channels = train ? 1 : 3,
      classes = train ? 10 : 1000;
    const net = buildTfjsModel(tf, model, size, channels, classes);
    const x = tf.tensor4d(input(batch * size * size * channels), [batch, size, size, channels]);
    if (!train) {
      run = async () => {
        const y = net.predict(x) as tf.Tensor;
        await y.data();
        y.dispose();
        return 0;
      };
    } else {
      const labels = tf.oneHot(tf.tensor1d(targets(batch, classes), 'int32'), classes);
      const opt = tf.train.momentum(0.05, 0.9);
      run = async () => {
        const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(labels, net.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true)!;
        const v = (await cost.data())[0];
        cost.dispose();
        return v;
      };
    }
    (w.tfjsParams as Record<string, number>)[key] = trainableParams(net);
    tfHeld.set(key, run);
  }
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
};
w.tfjsParams = {};
document.title = 'ready';
