// The 'webgpu' backend: storage in GPUBuffers, WGSL kernels (kernels/*.ts), one runtime (runtime.ts)
// that pools buffers, caches pipelines and batches dispatches. There is no readSync: values come back
// only through the async read(), so nothing in a step or a forward waits for the GPU.
import type { Backend, Conv2dParams, Pool2dParams, UnaryOp, BinaryOp } from '../backend.js';
import { GpuRuntime, GpuStorage } from './runtime.js';
import * as eltwise from './kernels/eltwise.js';
import * as optim from './kernels/optim.js';
import * as layout from './kernels/layout.js';
import * as gemm from './kernels/gemm.js';
import * as conv from './kernels/conv.js';
import * as norm from './kernels/norm.js';
import * as pool from './kernels/pool.js';
import * as softmax from './kernels/softmax.js';

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly rt: GpuRuntime;
  /** The adapter, in words (vendor, architecture, device, description). */
  readonly adapterDescription: string;

  constructor(device: GPUDevice, adapterDescription: string) {
    this.rt = new GpuRuntime(device);
    this.adapterDescription = adapterDescription;
  }

  alloc(n: number): GpuStorage {
    return this.rt.alloc(n);
  }
  free(buf: GpuStorage): void {
    this.rt.free(buf);
  }
  allocatedFloats(): number {
    return this.rt.allocatedFloats();
  }
  /** Live and pooled GPU buffers (counts and bytes), for leak tests. */
  poolStats(): ReturnType<GpuRuntime['poolStats']> {
    return this.rt.poolStats();
  }
  /** Gives the pool's free buffers back to the system (live tensors stay). */
  releasePool(): void {
    this.rt.releasePool();
  }
  /** Resolves when the GPU has finished everything recorded so far. */
  sync(): Promise<void> {
    return this.rt.sync();
  }
  /** Destroys every buffer and the device; this backend and its tensors are unusable after. */
  dispose(): void {
    this.rt.dispose();
    this.disposed = true;
    this.onDispose?.();
  }
  /** Set by dispose(): the registry's setBackend('webgpu') then makes a new backend and device. */
  disposed = false;
  /** Set by index.ts: forget the process-wide instance once disposed. */
  onDispose?: () => void;
  write(dst: GpuStorage, values: ArrayLike<number>, offset?: number): void {
    this.rt.write(dst, values, offset);
  }
  read(src: GpuStorage): Promise<Float32Array> {
    return this.rt.read(src);
  }
  copy(src: GpuStorage, dst: GpuStorage): void {
    this.rt.copy(src, dst);
  }

  fill(dst: GpuStorage, value: number): void {
    eltwise.fill(this.rt, dst, value);
  }
  unary(op: UnaryOp, x: GpuStorage, y: GpuStorage): void {
    eltwise.unary(this.rt, op, x, y);
  }
  binary(op: BinaryOp, a: GpuStorage, aShape: readonly number[], b: GpuStorage, bShape: readonly number[], out: GpuStorage, outShape: readonly number[]): void {
    eltwise.binary(this.rt, op, a, aShape, b, bShape, out, outShape);
  }
  affine(x: GpuStorage, y: GpuStorage, alpha: number, beta: number): void {
    eltwise.affine(this.rt, x, y, alpha, beta);
  }
  reluBackward(dy: GpuStorage, y: GpuStorage, dx: GpuStorage): void {
    eltwise.reluBackward(this.rt, dy, y, dx);
  }
  unaryBackward(op: 'abs' | 'sigmoid' | 'tanh', dy: GpuStorage, x: GpuStorage, y: GpuStorage, dx: GpuStorage): void {
    eltwise.unaryBackward(this.rt, op, dy, x, y, dx);
  }
  maxMinBackward(dy: GpuStorage, a: GpuStorage, aShape: readonly number[], y: GpuStorage, yShape: readonly number[], da: GpuStorage, db: GpuStorage): void {
    eltwise.maxMinBackward(this.rt, dy, a, aShape, y, yShape, da, db);
  }
  transpose2d(x: GpuStorage, y: GpuStorage, rows: number, cols: number): void {
    eltwise.transpose2d(this.rt, x, y, rows, cols);
  }
  addInPlace(y: GpuStorage, x: GpuStorage): void {
    eltwise.addInPlace(this.rt, y, x);
  }
  sumTo(x: GpuStorage, shape: readonly number[], out: GpuStorage, outShape: readonly number[]): void {
    eltwise.sumTo(this.rt, x, shape, out, outShape);
  }
  sgdStep(
    param: GpuStorage,
    grad: GpuStorage,
    buf: GpuStorage | null,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
    first: boolean,
  ): void {
    optim.sgdStep(this.rt, param, grad, buf, lr, momentum, dampening, weightDecay, nesterov, first);
  }
  movingAverage(avg: GpuStorage, x: GpuStorage, decay: number): void {
    optim.movingAverage(this.rt, avg, x, decay);
  }
  adamStep(
    param: GpuStorage,
    grad: GpuStorage,
    m: GpuStorage,
    v: GpuStorage,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
    decoupled: boolean,
  ): void {
    optim.adamStep(this.rt, param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step, decoupled);
  }
  subsamplePadChannels(
    x: GpuStorage,
    y: GpuStorage,
    N: number,
    C: number,
    H: number,
    W: number,
    stride: number,
    padBefore: number,
    padAfter: number,
    backward: boolean,
  ): void {
    layout.subsamplePadChannels(this.rt, x, y, N, C, H, W, stride, padBefore, padAfter, backward);
  }
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, A: GpuStorage, B: GpuStorage, C: GpuStorage, accumulate: boolean): void {
    gemm.gemm(this.rt, transA, transB, M, N, K, A, B, C, accumulate);
  }
  conv2d(x: GpuStorage, w: GpuStorage, bias: GpuStorage | null, y: GpuStorage, p: Conv2dParams): void {
    conv.conv2d(this.rt, x, w, bias, y, p);
  }
  conv2dFused(
    x: GpuStorage,
    w: GpuStorage,
    bias: GpuStorage | null,
    y: GpuStorage,
    p: Conv2dParams,
    relu: boolean,
    residual: GpuStorage | null,
    constWeights: boolean,
  ): void {
    conv.conv2dFused(this.rt, x, w, bias, y, p, relu, residual, constWeights);
  }
  conv2dBackwardData(dy: GpuStorage, w: GpuStorage, dx: GpuStorage, p: Conv2dParams): void {
    conv.conv2dBackwardData(this.rt, dy, w, dx, p);
  }
  conv2dBackwardFilter(x: GpuStorage, dy: GpuStorage, dw: GpuStorage, p: Conv2dParams): void {
    conv.conv2dBackwardFilter(this.rt, x, dy, dw, p);
  }
  batchNormTrain(
    x: GpuStorage,
    gamma: GpuStorage | null,
    beta: GpuStorage | null,
    y: GpuStorage,
    saveMean: GpuStorage,
    saveInvStd: GpuStorage,
    batchVar: GpuStorage,
    N: number,
    C: number,
    HW: number,
    eps: number,
  ): void {
    norm.batchNormTrain(this.rt, x, gamma, beta, y, saveMean, saveInvStd, batchVar, N, C, HW, eps);
  }
  batchNormEval(
    x: GpuStorage,
    gamma: GpuStorage | null,
    beta: GpuStorage | null,
    mean: GpuStorage,
    variance: GpuStorage,
    y: GpuStorage,
    N: number,
    C: number,
    HW: number,
    eps: number,
  ): void {
    norm.batchNormEval(this.rt, x, gamma, beta, mean, variance, y, N, C, HW, eps);
  }
  batchNormEvalBackward(
    dy: GpuStorage,
    x: GpuStorage,
    gamma: GpuStorage | null,
    mean: GpuStorage,
    variance: GpuStorage,
    dx: GpuStorage | null,
    dgamma: GpuStorage | null,
    N: number,
    C: number,
    HW: number,
    eps: number,
  ): void {
    norm.batchNormEvalBackward(this.rt, dy, x, gamma, mean, variance, dx, dgamma, N, C, HW, eps);
  }
  batchNormUpdateStats(runningMean: GpuStorage, runningVar: GpuStorage, batchMean: GpuStorage, batchVar: GpuStorage, momentum: number, count: number): void {
    norm.batchNormUpdateStats(this.rt, runningMean, runningVar, batchMean, batchVar, momentum, count);
  }
  batchNormTrainBackward(
    dy: GpuStorage,
    x: GpuStorage,
    gamma: GpuStorage | null,
    saveMean: GpuStorage,
    saveInvStd: GpuStorage,
    dx: GpuStorage,
    dgamma: GpuStorage | null,
    dbeta: GpuStorage | null,
    N: number,
    C: number,
    HW: number,
  ): void {
    norm.batchNormTrainBackward(this.rt, dy, x, gamma, saveMean, saveInvStd, dx, dgamma, dbeta, N, C, HW);
  }
  maxPool2d(x: GpuStorage, y: GpuStorage, p: Pool2dParams): void {
    pool.maxPool2d(this.rt, x, y, p);
  }
  maxPool2dBackward(x: GpuStorage, dy: GpuStorage, dx: GpuStorage, p: Pool2dParams): void {
    pool.maxPool2dBackward(this.rt, x, dy, dx, p);
  }
  avgPool2d(x: GpuStorage, y: GpuStorage, p: Pool2dParams): void {
    pool.avgPool2d(this.rt, x, y, p);
  }
  avgPool2dBackward(dy: GpuStorage, dx: GpuStorage, p: Pool2dParams): void {
    pool.avgPool2dBackward(this.rt, dy, dx, p);
  }
  adaptiveAvgPool2d(x: GpuStorage, y: GpuStorage, N: number, C: number, H: number, W: number, OH: number, OW: number): void {
    pool.adaptiveAvgPool2d(this.rt, x, y, N, C, H, W, OH, OW);
  }
  adaptiveAvgPool2dBackward(dy: GpuStorage, dx: GpuStorage, N: number, C: number, H: number, W: number, OH: number, OW: number): void {
    pool.adaptiveAvgPool2dBackward(this.rt, dy, dx, N, C, H, W, OH, OW);
  }
  softmax(x: GpuStorage, y: GpuStorage, rows: number, cols: number, log: boolean): void {
    softmax.softmax(this.rt, x, y, rows, cols, log);
  }
  softmaxBackward(dy: GpuStorage, y: GpuStorage, dx: GpuStorage, rows: number, cols: number, log: boolean): void {
    softmax.softmaxBackward(this.rt, dy, y, dx, rows, cols, log);
  }
  argmax(x: GpuStorage, out: GpuStorage, rows: number, cols: number): void {
    softmax.argmax(this.rt, x, out, rows, cols);
  }
  softmaxCrossEntropy(logits: GpuStorage, targets: Int32Array, probs: GpuStorage, loss: GpuStorage, N: number, C: number, labelSmoothing: number): void {
    softmax.softmaxCrossEntropy(this.rt, logits, targets, probs, loss, N, C, labelSmoothing);
  }
  softmaxCrossEntropyBackward(
    probs: GpuStorage,
    targets: Int32Array,
    dloss: GpuStorage,
    dlogits: GpuStorage,
    N: number,
    C: number,
    labelSmoothing: number,
  ): void {
    softmax.softmaxCrossEntropyBackward(this.rt, probs, targets, dloss, dlogits, N, C, labelSmoothing);
  }
}
