// Data: datasets, transforms, loader. Browser-safe modules: idx, dataset, transforms, loader
// (its worker pool is loaded lazily, only in Node). Node-only: idx-file, fashion-mnist,
// image-folder (files, sharp, network), loader-pool.
export * from './idx.js';
export { readIdxFile, gunzipFile } from './idx-file.js';
export * from './dataset.js';
export * from './transforms.js';
export * from './fashion-mnist.js';
export * from './image-folder.js';
export { DataLoader, makeBatch, sampleRng, epochOrder, mixSeed, type Batch, type BatchPayload, type DataLoaderOptions, type LoaderState } from './loader.js';
