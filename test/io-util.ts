// Helpers shared by the io tests: Debian's Python as an independent reference, and typed-error checks.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { FormatError } from '../src/base/errors.js';

export const PYTHON = '/usr/bin/python3';
const probed = new Map<string, string | null>();

/** null when /usr/bin/python3 can import every module, else why not (a skip message). */
export function pythonMissing(modules: string[]): string | null {
  const k = modules.join(',');
  if (!probed.has(k)) {
    if (!existsSync(PYTHON)) probed.set(k, `${PYTHON} not found`);
    else {
      const r = spawnSync(PYTHON, ['-c', `import ${k}`], { encoding: 'utf8', timeout: 60_000 });
      probed.set(k, r.status === 0 ? null : `${PYTHON} cannot import ${k}`);
    }
  }
  return probed.get(k)!;
}

/** Run a Python snippet (sys.argv[1:] = args) and return its stdout. */
export function runPython(code: string, args: string[] = [], timeoutMs = 120_000): string {
  return execFileSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
}

/** Assert fn throws a FormatError (or subclass) whose one-line message matches re. */
export function throwsFormat(fn: () => unknown, re: RegExp, cls: new (...a: never[]) => FormatError = FormatError): FormatError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, `expected a ${cls.name} matching ${re}, nothing was thrown`);
  assert.ok(err instanceof cls, `expected a ${cls.name}, got ${String(err)}`);
  const msg = (err as Error).message;
  assert.match(msg, re);
  assert.ok(!msg.includes('\n'), `error message is not one line: ${JSON.stringify(msg)}`);
  return err as FormatError;
}

/** Exact equality of float32 data with a list of reference numbers (NaN equals NaN). */
export function assertSameValues(actual: Float32Array, expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const b = expected[i];
    if (!(a === b || (Number.isNaN(a) && Number.isNaN(b)))) assert.fail(`${what}: element ${i} is ${a}, expected ${b}`);
  }
}
