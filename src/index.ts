// The public surface of resnet-ts in Node: everything browser-safe (./browser.ts), and the `data`
// namespace with the file-based datasets too (Fashion-MNIST finder and download, IDX files,
// ImageFolder with sharp), and loadPretrained/downloadPretrained with a file cache. A local export
// wins over the same name from `export *`.
import './backend/webgpu/node.js'; // Node: setBackend('webgpu') through the optional package `webgpu`
export * from './browser.js';
export * as data from './data/index.js';
export { loadPretrained, downloadPretrained, cachedPath, defaultCacheDir, type DownloadOptions } from './models/pretrained-node.js';
