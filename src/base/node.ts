// Node built-ins for code that is also bundled for browsers. `process.getBuiltinModule` (Node >=
// 20.16) is an ordinary function call, not an import: bundlers do not follow it, so a browser
// build never sees a `node:` specifier, while the same code still reaches the built-in in Node.
// Whole Node-only modules (the data loader's worker pool) are instead registered by the Node entry.
import { ConfigError } from './errors.js';
import type * as NodeCrypto from 'node:crypto';
import type * as NodeFs from 'node:fs';
import type * as NodeOs from 'node:os';
import type * as NodePath from 'node:path';
import type * as NodeWorkerThreads from 'node:worker_threads';

interface Builtins {
  'node:crypto': typeof NodeCrypto;
  'node:fs': typeof NodeFs;
  'node:os': typeof NodeOs;
  'node:path': typeof NodePath;
  'node:worker_threads': typeof NodeWorkerThreads;
}

/** The Node built-in `id`, or undefined outside Node. */
export function nodeBuiltin<K extends keyof Builtins>(id: K): Builtins[K] | undefined {
  const p = (globalThis as { process?: { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown } }).process;
  if (!p?.versions?.node) return undefined;
  if (typeof p.getBuiltinModule !== 'function') throw new Error(`resnet-ts needs Node.js >= 20.16 (process.getBuiltinModule); this is ${p.versions.node}`);
  return p.getBuiltinModule(id) as Builtins[K];
}

/** The Node built-in `id`; outside Node a ConfigError saying that `what` needs Node.js. */
export function requireNode<K extends keyof Builtins>(id: K, what: string): Builtins[K] {
  const m = nodeBuiltin(id);
  if (!m) throw new ConfigError(`${what} needs Node.js (${id}); this runtime has no ${id}`);
  return m;
}
