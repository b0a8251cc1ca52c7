// Runs the CLI in this process on the ref backend and captures its text: one copy for the CLI tests.
import { main } from '../src/cli/main.js';

export async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '',
    err = '';
  const ow = process.stdout.write.bind(process.stdout),
    ew = process.stderr.write.bind(process.stderr);
  // only the CLI's text is captured: the test runner talks to its parent through binary writes on stdout
  process.stdout.write = ((s: string | Uint8Array, ...rest: unknown[]) =>
    typeof s === 'string' ? ((out += s), true) : (ow as (...a: unknown[]) => boolean)(s, ...rest)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array, ...rest: unknown[]) =>
    typeof s === 'string' ? ((err += s), true) : (ew as (...a: unknown[]) => boolean)(s, ...rest)) as typeof process.stderr.write;
  try {
    const code = await main(['--backend', 'ref', ...args]);
    return { code, out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}
