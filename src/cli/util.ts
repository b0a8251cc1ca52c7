// CLI helpers: argument parsing that fails with clear one-line messages.
import { ConfigError } from '../base/errors.js';
import { parseNumber } from '../base/numbers.js';
import { readBytes } from '../io/files.js';

/** "3x224x224" → [3, 224, 224]. */
export function parseCHW(s: string): [number, number, number] {
  const m = /^(\d+)x(\d+)x(\d+)$/i.exec(s.trim());
  if (!m) throw new ConfigError(`--input must look like CxHxW (e.g. 3x224x224), got '${s}'`);
  const v = [Number(m[1]), Number(m[2]), Number(m[3])] as [number, number, number];
  if (v.some((d) => d < 1)) throw new ConfigError(`--input dimensions must be positive, got '${s}'`);
  return v;
}

/** --arch: constructor options as JSON, inline or from a file (@path). */
export function parseArch(s: string | undefined): Record<string, unknown> {
  if (!s) return {};
  const text = s.startsWith('@') ? readText(s.slice(1)) : s;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`--arch is not valid JSON (${(e as Error).message}): ${text.slice(0, 80)}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`--arch must be a JSON object, got ${text.slice(0, 80)}`);
  return v as Record<string, unknown>;
}

export function readText(path: string): string {
  return new TextDecoder().decode(readBytes(path));
}

export function parsePositiveInt(name: string) {
  return (s: string): number => parseNumber(s, { int: true, min: 1 }, name);
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function formatMacs(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}
