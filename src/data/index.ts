// Data in Node: the browser-safe modules (./browser.ts) and the Node-only ones: idx-file,
// fashion-mnist, image-folder (files, sharp, network), and loader-pool, which gives the DataLoader
// its worker threads when imported.
import './loader-pool.js';
export * from './browser.js';
export { readIdxFile, gunzipFile } from './idx-file.js';
export * from './fashion-mnist.js';
export * from './image-folder.js';
