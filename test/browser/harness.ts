// Test harness for the browser tests: Debian's chromium driven headless by playwright-core (which
// downloads no browser), static servers with or without COOP/COEP, console-error capture, and the
// one-page builds by esbuild, Vite and webpack of test/browser/page.js importing 'resnet-ts'.
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startServer } from '../../web/serve.mjs';

export const ROOT = join(import.meta.dirname, '../..');
export const ARTIFACTS = join(ROOT, 'test/artifacts');
export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or false. Missing chromium fails unless RESNET_NO_BROWSER=1. */
export function browserSkipReason(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.RESNET_NO_BROWSER === '1') return `no ${CHROMIUM} (RESNET_NO_BROWSER=1)`;
  throw new Error(`${CHROMIUM} is missing: run bash scripts/install-test-deps.sh (Debian's chromium), or set RESNET_NO_BROWSER=1 to skip knowingly`);
}

export interface Browser {
  ctx: BrowserContext;
  /** A new page that records console errors and uncaught exceptions into `errors`. */
  page(viewport?: { width: number; height: number }): Promise<{ page: Page; errors: string[] }>;
  close(): Promise<void>;
}

/** `extraArgs`: more Chromium flags (e.g. --enable-unsafe-webgpu: WebGPU on SwiftShader here). */
export async function launch(extraArgs: string[] = []): Promise<Browser> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'resnet-ts-chromium-'));
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
    viewport: { width: 1100, height: 860 },
  });
  return {
    ctx,
    async page(viewport) {
      const page = await ctx.newPage();
      if (viewport) await page.setViewportSize(viewport);
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
      return { page, errors };
    },
    async close() {
      await ctx.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export function artifact(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

// ------------------------------------------------------------------------------------ bundlers

export interface BundleResult {
  bundler: string;
  dir: string;
  warnings: string[];
  ms: number;
}

/** A throwaway project: page.js + index.html, with node_modules/resnet-ts linked to this repository. */
function project(name: string): string {
  // the bundlers resolve 'resnet-ts' to this repository's dist/ (npm install builds it)
  if (!existsSync(join(ROOT, 'dist/browser.js')) || statSync(join(ROOT, 'dist/browser.js')).mtimeMs < statSync(join(ROOT, 'src/browser.ts')).mtimeMs) {
    throw new Error('dist/ is missing or older than src/: run npm run build');
  }
  const dir = mkdtempSync(join(tmpdir(), `resnet-ts-${name}-`));
  cpSync(join(import.meta.dirname, 'page.js'), join(dir, 'page.js'));
  cpSync(join(import.meta.dirname, 'index.html'), join(dir, 'index.html'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules/resnet-ts'), 'dir');
  return dir;
}

export async function bundleEsbuild(extra: Record<string, unknown> = {}): Promise<BundleResult> {
  const t0 = performance.now();
  const dir = project('esbuild');
  const out = join(dir, 'out');
  const esbuild = await import('esbuild');
  const r = await esbuild.build({
    entryPoints: [join(dir, 'page.js')],
    outdir: out,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    splitting: true,
    logLevel: 'silent',
    ...extra,
  });
  cpSync(join(dir, 'index.html'), join(out, 'index.html'));
  return { bundler: 'esbuild', dir: out, warnings: r.warnings.map((w) => w.text), ms: performance.now() - t0 };
}

export async function bundleVite(): Promise<BundleResult> {
  const t0 = performance.now();
  const dir = project('vite');
  const out = join(dir, 'out');
  const warnings: string[] = [];
  const vite = await import('vite');
  const logger = vite.createLogger('warn');
  logger.warn = (m) => void warnings.push(m);
  logger.warnOnce = (m) => void warnings.push(m);
  await vite.build({ root: dir, configFile: false, logLevel: 'warn', customLogger: logger, build: { outDir: out, emptyOutDir: true } });
  return { bundler: 'vite', dir: out, warnings, ms: performance.now() - t0 };
}

export async function bundleWebpack(): Promise<BundleResult> {
  const t0 = performance.now();
  const dir = project('webpack');
  const out = join(dir, 'out');
  const { default: webpack } = await import('webpack');
  const stats = await new Promise<import('webpack').Stats>((resolve, reject) => {
    webpack({ mode: 'production', context: dir, entry: './page.js', output: { path: out, filename: 'page.js' } }, (err, s) =>
      err ? reject(err) : resolve(s!),
    );
  });
  const j = stats.toJson({ all: false, errors: true, warnings: true });
  if (stats.hasErrors()) throw new Error(`webpack: ${j.errors!.map((e) => e.message).join('\n')}`);
  writeFileSync(
    join(out, 'index.html'),
    '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>loading</title></head><body><script src="./page.js"></script></body></html>',
  );
  return { bundler: 'webpack', dir: out, warnings: (j.warnings ?? []).map((w) => w.message), ms: performance.now() - t0 };
}

/** Serve a built page with the PyTorch fixtures beside it (same origin: COEP blocks other origins). */
export async function serveWithFixtures(dir: string, isolation: boolean): Promise<{ url: string; close(): Promise<void> }> {
  for (const f of ['resnet18', 'cifar_resnet20']) {
    if (!existsSync(join(dir, f))) symlinkSync(join(ROOT, 'test/fixtures', f), join(dir, f), 'dir');
  }
  return startServer({ dir, isolation });
}
