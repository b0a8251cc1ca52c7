// WebGPU kernels: softmax, softmaxBackward, argmax, softmaxCrossEntropy, softmaxCrossEntropyBackward. Each function records dispatches on the runtime; the ref
// backend's kernel of the same name is the oracle (src/backend/ref/ref.ts).
import type { GpuRuntime, GpuStorage } from '../runtime.js';
import { notYet } from './not-yet.js';

export function softmax(rt: GpuRuntime, x: GpuStorage, y: GpuStorage, rows: number, cols: number, log: boolean): void {
  notYet('softmax', rt, x, y, rows, cols, log);
}

export function softmaxBackward(rt: GpuRuntime, dy: GpuStorage, y: GpuStorage, dx: GpuStorage, rows: number, cols: number, log: boolean): void {
  notYet('softmaxBackward', rt, dy, y, dx, rows, cols, log);
}

export function argmax(rt: GpuRuntime, x: GpuStorage, out: GpuStorage, rows: number, cols: number): void {
  notYet('argmax', rt, x, out, rows, cols);
}

export function softmaxCrossEntropy(
  rt: GpuRuntime,
  logits: GpuStorage,
  targets: Int32Array,
  probs: GpuStorage,
  loss: GpuStorage,
  N: number,
  C: number,
  labelSmoothing: number,
): void {
  notYet('softmaxCrossEntropy', rt, logits, targets, probs, loss, N, C, labelSmoothing);
}

export function softmaxCrossEntropyBackward(
  rt: GpuRuntime,
  probs: GpuStorage,
  targets: Int32Array,
  dloss: GpuStorage,
  dlogits: GpuStorage,
  N: number,
  C: number,
  labelSmoothing: number,
): void {
  notYet('softmaxCrossEntropyBackward', rt, probs, targets, dloss, dlogits, N, C, labelSmoothing);
}
