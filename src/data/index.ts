// Data in Node: the browser-safe modules (./browser.ts) and the Node-only ones: idx-file,
// fashion-mnist, image-folder (files, sharp, network); loader-pool is loaded lazily by the loader.
export * from './browser.js';
export { readIdxFile, gunzipFile } from './idx-file.js';
export * from './fashion-mnist.js';
export * from './image-folder.js';
