// What the wasm backend needs of Node: worker threads (node:worker_threads) and the core count
// (node:os), reached through nodeBuiltin (no node: import). Browser bundles never carry this
// module: package.json's "browser" field maps it to host.browser.js (esbuild --platform=browser,
// Vite and webpack all honour that field for files inside a package).
import { nodeBuiltin } from '../../base/node.js';
import { workerMain, type WorkerFactory } from './threads.js';

/** Worker script for node:worker_threads (eval mode, CommonJS). */
export function nodeWorkerSource(): string {
  return `const { parentPort } = require('node:worker_threads');
const start = ${workerMain.toString()};
parentPort.once('message', (m) => { parentPort.unref(); start(m); });`;
}

/** Node's worker threads for the pool, or null outside Node. */
export function nodeWorkers(): { factory: WorkerFactory; source: string; startTimeoutMs: number } | null {
  const wt = nodeBuiltin('node:worker_threads');
  if (!wt) return null;
  return {
    source: nodeWorkerSource(),
    // a loaded machine can take seconds to start a Node worker; nothing blocks one as a CSP does
    startTimeoutMs: 30000,
    factory: (src, onError) => {
      // execArgv: [] so that the parent's flags (--input-type=module, loaders) do not change how the
      // CommonJS worker script is read.
      const w = new wt.Worker(src, { eval: true, execArgv: [] });
      w.on('error', onError);
      w.unref();
      return { post: (m) => w.postMessage(m), terminate: () => void w.terminate() };
    },
  };
}

/** Node's core count, or undefined outside Node. */
export function nodeCores(): number | undefined {
  const os = nodeBuiltin('node:os');
  if (!os) return undefined;
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}
