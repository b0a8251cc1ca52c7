// Entry point of a DataLoader worker thread (see loader-pool.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { datasetFromSpec, type Dataset, type WorkerSpec } from './dataset.js';
import { transformFromSpec, type Transform, type TransformSpec } from './transforms.js';
import { makeBatch, type SerializedError } from './loader.js';
import { setSpecModuleImporter } from './spec-module.js';

setSpecModuleImporter((url) => import(url) as Promise<Record<string, unknown>>);

const port = parentPort!;
const { dataset: dsSpec, transform: tSpec } = workerData as { dataset: WorkerSpec; transform: TransformSpec | null };

function serialize(e: unknown): SerializedError {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}

let ds: Dataset;
let transform: Transform | null = null;
try {
  ds = await datasetFromSpec(dsSpec);
  if (tSpec) transform = await transformFromSpec(tSpec);
  port.postMessage({ type: 'ready' });
} catch (e) {
  port.postMessage({ type: 'init-error', error: serialize(e) });
}

port.on('message', async (m: { id: number; seed: number; epoch: number; indices: Int32Array }) => {
  try {
    const b = await makeBatch(ds, transform, m.seed, m.epoch, m.indices);
    port.postMessage({ type: 'done', id: m.id, x: b.x, shape: b.shape, y: b.y }, [b.x.buffer as ArrayBuffer, b.y.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ type: 'error', id: m.id, error: serialize(e) });
  }
});
