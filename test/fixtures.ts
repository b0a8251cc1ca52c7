// Access to the PyTorch fixtures written by scripts/make_fixtures.py into test/fixtures/.
// CI makes them (.ci/run installs python3-torch and runs the script). A missing fixture is a
// failure, not a skip: set RESNET_NO_TORCH_FIXTURES=1 to skip knowingly on a machine without torch.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../src/io/npy.js';
import { readSafetensors } from '../src/io/safetensors.js';
import type { ArrayMap, NamedArray } from '../src/io/types.js';
import { createModel } from '../src/models/registry.js';
import type { Module } from '../src/nn/module.js';
import { noGrad } from '../src/tensor/tensor.js';

export const FIXTURES = join(import.meta.dirname, 'fixtures');

export function fixturesSkipReason(sub: string): string | false {
  if (existsSync(join(FIXTURES, sub))) return false;
  if (process.env.RESNET_NO_TORCH_FIXTURES === '1') return `no fixtures in test/fixtures/${sub} (RESNET_NO_TORCH_FIXTURES=1)`;
  throw new Error(`missing PyTorch fixtures test/fixtures/${sub}: run /usr/bin/python3 scripts/make_fixtures.py --out test/fixtures`);
}

export function npy(...parts: string[]): NamedArray {
  return readNpy(new Uint8Array(readFileSync(join(FIXTURES, ...parts))));
}

export function st(...parts: string[]): ArrayMap {
  return readSafetensors(new Uint8Array(readFileSync(join(FIXTURES, ...parts))));
}

export function json<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFileSync(join(FIXTURES, ...parts), 'utf8')) as T;
}

/** The fixture's model with its weights loaded. */
export function buildFromFixture(name: string): Module {
  const arch = json<{ model: string; arch: Record<string, unknown> }>(name, 'arch.json');
  const model = noGrad(() => createModel(arch.model, arch.arch));
  model.loadStateDict(st(name, 'weights.safetensors'));
  return model;
}
