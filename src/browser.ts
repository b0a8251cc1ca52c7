// The browser-safe public surface of resnet-ts: re-exports only. Nothing reachable from here
// imports a node: module or sharp at load time (test/browser-safe.test.ts walks the imports);
// the wasm backend loads node: modules lazily, only in Node; loadPretrained here fetches and caches in
// Cache Storage (Node's file-cache loader replaces it in src/index.ts).
// Node adds the file-based datasets (src/index.ts).
export * from './base/errors.js';
export { RNG, manualSeed } from './base/rng.js';
export { numel, convOutSize, type Shape } from './base/shape.js';

export type { Backend, Conv2dParams, Pool2dParams } from './backend/backend.js';
export { RefBackend } from './backend/ref/ref.js';
export { getBackend, setBackend, listBackends, registerBackend } from './backend/registry.js';
// not from wasm/index.js, which the registry imports lazily: a static import of it would pull the
// backend into the page's entry chunk (Vite: INEFFECTIVE_DYNAMIC_IMPORT)
export { setThreads, getThreads, setWorkerUrl } from './backend/wasm/settings.js';
export { webWorkerSource } from './backend/wasm/threads.js';
export { WasmBackend } from './backend/wasm/wasm.js';

export { Tensor, noGrad, scope, isGradEnabled } from './tensor/tensor.js';
export * as ops from './tensor/ops.js';
export { tensor, zeros, ones, full, randn, rand } from './tensor/ops.js';

export { Module, type LayerInfo, type LoadReport } from './nn/module.js';
export * from './nn/layers.js';
export * as init from './nn/init.js';
export * as functional from './nn/functional.js';
export { stateDictToArrays, readStateArrays } from './nn/state.js';

export * from './models/resnet.js';
export { D2lResNet18, Residual, d2l_resnet18 } from './models/d2l.js';
export * from './models/cifar.js';
export { MODELS, createModel, getModelEntry, listModels, type CreateOptions } from './models/registry.js';
export { FusedModel, FusionUnsupportedError, fuseForInference, tryFuseForInference } from './models/fused.js';

export * as io from './io/index.js';
export { readSafetensors, writeSafetensors } from './io/safetensors.js';
export { readNpy, writeNpy, readNpz, writeNpz } from './io/npy.js';
export { readPth, writePth } from './io/pth.js';
export type { NamedArray, ArrayMap, DType } from './io/types.js';

export * as data from './data/browser.js';
export { exportOnnx, exportOnnxAsync, type OnnxExportOptions } from './convert/onnx-export.js';
export { importOnnx, type OnnxImportResult } from './convert/onnx-import.js';
export {
  PRETRAINED,
  IMAGENET_MEAN,
  IMAGENET_STD,
  WEIGHT_HOSTS,
  DownloadError,
  getPretrained,
  listPretrained,
  isPretrainedId,
  registerPretrained,
  loadPretrained,
  fetchPretrained,
  cacheStorageCache,
  memoryCache,
  weightHost,
  type PretrainedWeights,
  type PretrainedSpec,
  type WeightCache,
  type FetchWeightsOptions,
  type LoadedPretrained,
} from './models/pretrained.js';
export { IMAGENET_CLASSES } from './models/imagenet-classes.js';

export * as optim from './optim/index.js';
export { fit, evaluate, trainStep, trainStepAsync, NonFiniteLossError } from './train/trainer.js';
export { replaceHead, freeze, parameterGroups } from './train/transfer.js';
export { ClassificationMetrics } from './train/metrics.js';
