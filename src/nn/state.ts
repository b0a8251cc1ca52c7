// State dict ↔ named arrays (the form file formats speak). num_batches_tracked is an int64
// buffer in PyTorch, so it is tagged I64 to be written back as PyTorch expects.
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from './module.js';

export interface TaggedArray {
  dtype: 'F32' | 'I64';
  shape: number[];
  data: Float32Array;
}

/** The state dict as named arrays, read synchronously (ref, wasm); readStateArrays works on every backend. */
export function stateDictToArrays(model: Module | Map<string, Tensor>): Map<string, TaggedArray> {
  const sd = model instanceof Map ? model : model.stateDict();
  const out = new Map<string, TaggedArray>();
  for (const [k, t] of sd) {
    out.set(k, tagArray(k, t.shape, t.dataSync()));
  }
  return out;
}

/** stateDictToArrays on any backend (webgpu too): every entry is read asynchronously, all at once. */
export async function readStateArrays(model: Module | Map<string, Tensor>): Promise<Map<string, TaggedArray>> {
  const sd = model instanceof Map ? model : model.stateDict();
  const entries = [...sd];
  const data = await Promise.all(entries.map(([, t]) => t.data()));
  return new Map(entries.map(([k, t], i) => [k, tagArray(k, t.shape, data[i])]));
}

/** One state-dict entry as a tagged array (num_batches_tracked is an int64 counter in torchvision's files). */
export function tagArray(key: string, shape: readonly number[], data: Float32Array): TaggedArray {
  return { dtype: key.endsWith('num_batches_tracked') ? 'I64' : 'F32', shape: [...shape], data };
}
