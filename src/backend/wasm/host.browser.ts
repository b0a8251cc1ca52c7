// host.ts for browser bundles (package.json "browser" field): no Node, so nothing to start or count.
import type { WorkerFactory } from './threads.js';

export function nodeWorkers(): { factory: WorkerFactory; source: string; startTimeoutMs: number } | null {
  return null;
}

export function nodeCores(): number | undefined {
  return undefined;
}
