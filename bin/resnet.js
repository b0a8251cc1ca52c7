#!/usr/bin/env node
// Runs the compiled CLI (dist/, made by `npm run build`, which `npm install` runs via prepare).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(dist))) {
  process.stderr.write('error: resnet-ts is not built; run `npm run build` in the package folder\n');
  process.exit(1);
}
const { main } = await import(dist.href);
process.exit(await main(process.argv.slice(2)));
