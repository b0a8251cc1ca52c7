// Builds the web app into web/dist/: app.js (the page) and worker.js (the engine worker), bundled by
// esbuild from TypeScript, plus index.html, style.css and the embedded Fashion-MNIST slice. Every URL
// in it is relative, so dist/ works from any static host (threads need COOP/COEP headers, see serve.mjs).
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
export const DIST = join(here, 'dist');

export async function buildWeb({ outdir = DIST, minify = true } = {}) {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: join(here, 'src/main.ts'), worker: join(here, 'src/worker.ts') },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify,
    sourcemap: true,
    logLevel: 'silent',
    metafile: true,
    splitting: true,
  });
  for (const f of ['index.html', 'style.css']) cpSync(join(here, f), join(outdir, f));
  cpSync(join(here, '../data/fashion-mnist-slice'), join(outdir, 'data/fashion-mnist-slice'), { recursive: true });
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await buildWeb();
  for (const w of r.warnings) console.warn(`warning: ${w.text}`);
  const sizes = Object.entries(r.metafile.outputs)
    .filter(([f]) => f.endsWith('.js'))
    .map(([f, o]) => `${f.split('/').pop()} ${(o.bytes / 1024).toFixed(0)} kB`);
  console.log(`built ${DIST}: ${sizes.join(', ')}`);
}
