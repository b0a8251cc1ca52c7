// Backend registry: the current backend is process-wide, as in PyTorch's default device.
import type { Backend } from './backend.js';
import { RefBackend } from './ref/ref.js';
import { ConfigError } from '../base/errors.js';

const factories = new Map<string, () => Backend | Promise<Backend>>();
const instances = new Map<string, Backend>();
factories.set('ref', () => new RefBackend());
// loaded on first use: a page that never selects wasm never loads its kernels (bundlers split it off)
factories.set('wasm', () => import('./wasm/index.js').then((m) => m.wasmBackend()));
factories.set('webgpu', () => import('./webgpu/index.js').then((m) => m.webgpuBackend()));

let current: Backend = getOrCreateSync('ref');

function getOrCreateSync(name: string): Backend {
  let b = instances.get(name);
  if (!b) {
    const made = factories.get(name)!();
    if (made instanceof Promise) throw new ConfigError(`backend '${name}' must be initialised with await setBackend('${name}')`);
    b = made;
    instances.set(name, b);
  }
  return b;
}

export function registerBackend(name: string, factory: () => Backend | Promise<Backend>): void {
  factories.set(name, factory);
}

export function listBackends(): string[] {
  return [...factories.keys()];
}

/** Select the backend used by every op from now on. Async because wasm compiles its module. */
export async function setBackend(name: string): Promise<Backend> {
  const f = factories.get(name);
  if (!f) throw new ConfigError(`unknown backend '${name}' (known: ${listBackends().join(', ')})`);
  let b = instances.get(name);
  // a disposed backend (webgpu: device destroyed) is forgotten: selecting it again makes a new one
  if (!b || b.disposed) {
    b = await f();
    instances.set(name, b);
  }
  current = b;
  return b;
}

export function getBackend(): Backend {
  return current;
}
