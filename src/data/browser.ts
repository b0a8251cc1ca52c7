// Browser-safe data: IDX parsing from bytes, datasets, transforms, and the DataLoader (its worker
// pool is loaded lazily, only in Node).
export * from './idx.js';
export * from './dataset.js';
export * from './transforms.js';
export { DataLoader, makeBatch, sampleRng, epochOrder, mixSeed, type Batch, type BatchPayload, type DataLoaderOptions, type LoaderState } from './loader.js';
