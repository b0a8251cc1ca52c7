// `import … from 'resnet-ts'` as a web developer writes it, built by esbuild, Vite and webpack 5
// with no configuration for resnet-ts: the package is built (tsc, as `npm run build` does) into a
// temporary folder beside a one-line app, with only its runtime dependencies next to it (no
// @types/node, no sharp). Each bundler must exit 0 with no warning; the minimal inference page must
// load at most 40 kB of gzipped JS (the issue's goal; the wasm kernels are inlined in it, deflated, as base64, in a chunk of their own), and
// esbuild's one-file bundle must run and give the logits the library gives. The app
// also type-checks against the published .d.ts under the browser condition, with no @types/node,
// and a Node app that selects webgpu does under the Node condition, with neither @types/node nor @webgpu/types;
// a Node app typed with @types/node and no DOM lib (TypeScript's lib has WebAssembly only in DOM) does too.
//
// What a page loads: every JS file the build emits except the webgpu backend's chunk, which the
// registry imports only on `setBackend('webgpu')` (Vite and webpack split dynamic imports by
// default; esbuild does with --splitting, so that build is measured; its one-file build, which
// inlines the webgpu backend too, is run and its size printed).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const run = promisify(execFile);
const ROOT = resolve('.');
const BIN = join(ROOT, 'node_modules', '.bin');
const tmp = mkdtempSync(join(tmpdir(), 'resnet-bundlers-'));
const PKG = join(tmp, 'pkg'),
  APP = join(tmp, 'app');

// A cifar_resnet20 forward on the wasm backend: the inference page the issue measures.
const APP_JS = `import { createModel, noGrad, tensor, setBackend, manualSeed } from 'resnet-ts';
setBackend('wasm').then(() => {
  manualSeed(0);
  const model = createModel('cifar_resnet20', { numClasses: 10 }).eval();
  const x = new Float32Array(3 * 32 * 32).map((_, i) => Math.sin(i));
  const y = noGrad(() => model.forward(tensor(x, [1, 3, 32, 32])));
  console.log(JSON.stringify(Array.from(y.dataSync())));
});
`;

// Type-checked only: what a browser user writes, including the calls that used to fail.
const APP_TS = `import { createModel, trainStep, optim, data, randn } from 'resnet-ts';
const model = createModel('cifar_resnet20', { numClasses: 10 });
const x = randn([2, 3, 32, 32]);
const r: { loss: number } = trainStep({ model, optimizer: new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }) },
  { x: x.dataSync(), shape: [2, 3, 32, 32], y: new Int32Array([1, 2]) });
trainStep({ model, optimizer: new optim.AdamW(model.parameters(), { lr: 1e-3 }) }, { x: x.dataSync(), shape: [2, 3, 32, 32], y: new Int32Array([1, 2]) });
console.log(r.loss, data.DataLoader);
// @ts-expect-error the browser condition's types have no file-based datasets
data.loadFashionMNIST;
`;

async function sh(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run(cmd, args, { cwd, maxBuffer: 1 << 26, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string; message: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: `${x.stdout ?? ''}${x.stderr ?? ''}${x.message}` };
  }
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith('.js'))
    .map((d) => join(d.parentPath, d.name));
}

const gzipSize = (f: string) => gzipSync(readFileSync(f), { level: 9 }).length;
const gzipJs = (dir: string) => jsFiles(dir).reduce((s, f) => s + gzipSize(f), 0);

/** A chunk of the webgpu backend: it asks navigator.gpu for an adapter (a name minifiers keep). */
const isWebGpuChunk = (f: string) => readFileSync(f, 'utf8').includes('requestAdapter');

/**
 * gzip -9 of each JS file the page loads (the webgpu chunk left out, after checking that it is a
 * chunk of its own that holds no wasm kernels), and how many files that is.
 */
function pageJs(dir: string): { bytes: number; files: number; webgpu: number } {
  const files = jsFiles(dir),
    gpu = files.filter(isWebGpuChunk),
    page = files.filter((f) => !gpu.includes(f));
  assert.equal(gpu.length, 1, `one webgpu chunk, apart from the page's: ${files.map((f) => `${f}: ${gzipSize(f)}`)}`);
  assert.ok(!readFileSync(gpu[0], 'utf8').includes(KERNELS_PREFIX), 'the webgpu chunk holds no wasm kernels');
  assert.ok(
    page.some((f) => readFileSync(f, 'utf8').includes(KERNELS_PREFIX)),
    'the page holds the wasm kernels (inlined)',
  );
  return { bytes: page.reduce((s, f) => s + gzipSize(f), 0), files: page.length, webgpu: gzipSize(gpu[0]) };
}

/** The first characters of the embedded kernels' base64 (zlib header + the start of the module). */
const KERNELS_PREFIX = readFileSync('src/backend/wasm/kernels-wasm.generated.ts', 'utf8').split('KERNELS_WASM_DEFLATE_BASE64 =')[1].split("'")[1].slice(0, 24);

/**
 * The issue's goal is at most 40 kB of gzipped JS for a minimal inference page. Met at 37.1-37.3 kB
 * when this test was written; 42.0-42.6 kB after the model structure, the browser weight loader
 * and the load checks landed (CI at 6358a7e); met again at 37.8-37.9 kB (esbuild --splitting, Vite,
 * webpack) at e0532a6 once the kernels were stored deflated, once, without the layout globals; not
 * met after the wasm module grew from 20.6 to 29.6 kB (Winograd F(4x4,3x3), the grouped-conv and
 * narrow-tail kernels: +3 kB gzipped) and wasm.ts with it: 42.8 (esbuild --splitting), 41.5 (Vite),
 * 42.2 kB (webpack) at 516f78a; 45.4, 44.1 and 44.3 kB at e5a47e3 (module 30.9 kB). Then the
 * stored module lost every export the loader does not call (binaryen drops the layout globals and
 * inlines the tasks into run_job: 30.9 -> 28.4 kB), its stream became zopfli's (12.3 -> 10.5 kB
 * deflated), the job layout one constant per number that the bundlers inline (no name tables:
 * -1 kB), and Node's worker code is mapped out of browser bundles (package.json "browser" field):
 * 40.3 (esbuild --splitting), 39.3 (Vite), 40.0 kB (webpack) on top of e5a47e3; 41.4, 40.3 and
 * 41.0 kB once main's per-tap convolutions (13ccb57) were merged (module 29.0 kB, 10.8 deflated).
 * Then the module's base64 moved to a module of its own that the loader imports with import(), so
 * every bundler gzips it apart from the code (-1.3 kB esbuild, -0.4 kB Vite, -0.9 kB webpack), and
 * the backend's lazy entry stopped re-exporting (esbuild: -0.2 kB): 39.9 (esbuild --splitting,
 * 5 files), 39.9 (Vite, 3), 40.1 kB (webpack, 3). Then the optimizer updates' host loops left the
 * RefBackend class for backend/ref/optim.ts, which only optimizers and EMA import (a bundler cannot
 * drop a class's unused methods): 39,665 (esbuild --splitting), 39,707 (Vite), 39,925 bytes (webpack).
 * The goal is met; this guard fails above it.
 */
const JS_GZIP_LIMIT = 40_000;

before(async () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
  mkdirSync(join(PKG, 'node_modules'), { recursive: true });
  writeFileSync(join(PKG, 'package.json'), JSON.stringify(pkg));
  for (const d of Object.keys(pkg.dependencies)) symlinkSync(join(ROOT, 'node_modules', d), join(PKG, 'node_modules', d));
  const tsc = await sh(join(BIN, 'tsc'), ['-p', join(ROOT, 'tsconfig.json'), '--outDir', join(PKG, 'dist'), '--sourceMap', 'false'], ROOT);
  assert.equal(tsc.code, 0, tsc.out);
  mkdirSync(join(APP, 'src'), { recursive: true });
  mkdirSync(join(APP, 'node_modules'), { recursive: true });
  symlinkSync(PKG, join(APP, 'node_modules', 'resnet-ts'));
  writeFileSync(join(APP, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  writeFileSync(join(APP, 'src', 'index.js'), APP_JS);
  writeFileSync(join(APP, 'index.html'), '<!doctype html><script type="module" src="/src/index.js"></script>\n');
});

after(() => rmSync(tmp, { recursive: true, force: true }));

/** The logits the library itself gives for APP_JS's input. */
async function expectedLogits(): Promise<number[]> {
  const r = await sh(process.execPath, ['--input-type=module', '-e', APP_JS.replace("'resnet-ts'", JSON.stringify(join(PKG, 'dist', 'index.js')))], ROOT);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.out);
}

test("esbuild --bundle --platform=browser: exit 0, no warnings, the one-file bundle runs (logits equal the library's, atol 0); with --splitting the page loads <= 40 kB gzipped JS", async () => {
  const r = await sh(join(BIN, 'esbuild'), ['src/index.js', '--bundle', '--platform=browser', '--format=esm', '--minify', '--outdir=out-esbuild'], APP);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /warn/i, r.out);
  const ran = await sh(process.execPath, [join(APP, 'out-esbuild', 'index.js')], APP);
  assert.equal(ran.code, 0, ran.out);
  assert.deepEqual(JSON.parse(ran.out), await expectedLogits());
  const split = await sh(
    join(BIN, 'esbuild'),
    ['src/index.js', '--bundle', '--platform=browser', '--format=esm', '--minify', '--splitting', '--outdir=out-esbuild-split'],
    APP,
  );
  assert.equal(split.code, 0, split.out);
  assert.doesNotMatch(split.out, /warn/i, split.out);
  const page = pageJs(join(APP, 'out-esbuild-split'));
  console.log(
    `esbuild: one file ${gzipJs(join(APP, 'out-esbuild'))} bytes gzipped (webgpu backend included); --splitting: the page loads ${page.bytes} bytes in ${page.files} files, webgpu chunk ${page.webgpu}`,
  );
  assert.ok(page.bytes <= JS_GZIP_LIMIT, `esbuild --splitting page loads ${page.bytes} bytes gzipped`);
});

test('vite build: exit 0, no warnings, the page loads <= 40 kB gzipped JS, the wasm backend in its own chunk', async () => {
  const r = await sh(join(BIN, 'vite'), ['build', '--outDir', 'out-vite'], APP);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /warn|\(!\)/i, r.out);
  const page = pageJs(join(APP, 'out-vite'));
  assert.ok(page.files >= 2, `one chunk for the page and one for the wasm backend: ${jsFiles(join(APP, 'out-vite'))}`);
  console.log(`vite: the page loads ${page.bytes} bytes of gzipped JS in ${page.files} files; webgpu chunk ${page.webgpu}`);
  assert.ok(page.bytes <= JS_GZIP_LIMIT, `vite page loads ${page.bytes} bytes gzipped`);
});

// The wasm backend's settings imported by the page: they must not pull the backend out of its lazy
// chunk (Vite printed INEFFECTIVE_DYNAMIC_IMPORT and inlined the backend when they lived in the
// module the registry imports dynamically).
const APP_SETTINGS_JS = `import { setBackend, setThreads, getThreads, setWorkerUrl, tensor } from 'resnet-ts';
setWorkerUrl('/resnet-ts-worker.js');
setThreads(2).then(() => setBackend('wasm')).then(() => console.log(getThreads(), tensor([1, 2], [2]).dataSync()));
`;

test('vite build of a page importing setThreads, getThreads and setWorkerUrl: exit 0, no warnings, the wasm backend still in its own chunk', async () => {
  const dir = join(tmp, 'app-settings');
  mkdirSync(join(dir, 'src'), { recursive: true });
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  symlinkSync(PKG, join(dir, 'node_modules', 'resnet-ts'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app-settings', private: true, type: 'module' }));
  writeFileSync(join(dir, 'src', 'index.js'), APP_SETTINGS_JS);
  writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="/src/index.js"></script>\n');
  const r = await sh(join(BIN, 'vite'), ['build', '--outDir', 'out'], dir);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /warn|\(!\)|INEFFECTIVE/i, r.out);
  const entry = /src="\/([^"]+\.js)"/.exec(readFileSync(join(dir, 'out', 'index.html'), 'utf8'))![1];
  const withKernels = jsFiles(join(dir, 'out')).filter((f) => readFileSync(f, 'utf8').includes(KERNELS_PREFIX));
  assert.equal(withKernels.length, 1, `one chunk holds the kernels: ${withKernels}`);
  assert.ok(!withKernels[0].endsWith(entry), `the kernels are in the page's entry chunk ${entry}`);
});

test('webpack 5 (--mode production, no config): exit 0, no warnings, the page loads <= 40 kB gzipped JS', async () => {
  const r = await sh(join(BIN, 'webpack'), ['--mode', 'production', '--output-path', 'out-webpack'], APP);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /warn/i, r.out);
  const page = pageJs(join(APP, 'out-webpack'));
  console.log(`webpack: the page loads ${page.bytes} bytes of gzipped JS in ${page.files} files; webgpu chunk ${page.webgpu}`);
  assert.ok(page.bytes <= JS_GZIP_LIMIT, `webpack page loads ${page.bytes} bytes gzipped`);
});

/**
 * Writes `source` as check.ts in `dir` and type-checks it with tsc against the published .d.ts: strict,
 * no emit, skipLibCheck false (tsc's default, so every reachable .d.ts is checked), plus `options`.
 */
async function typeCheck(dir: string, source: string, options: Record<string, unknown>): Promise<void> {
  writeFileSync(join(dir, 'check.ts'), source);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false, ...options }, files: ['check.ts'] }),
  );
  const r = await sh(join(BIN, 'tsc'), ['-p', 'tsconfig.json'], dir);
  assert.equal(r.code, 0, r.out);
}

/** A Node app folder under tmp that depends on the built package (and on @types/node when asked). */
function nodeApp(name: string, withNodeTypes: boolean): string {
  const app = join(tmp, name);
  mkdirSync(join(app, 'node_modules', '@types'), { recursive: true });
  symlinkSync(PKG, join(app, 'node_modules', 'resnet-ts'));
  if (withNodeTypes) symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(app, 'node_modules', '@types', 'node'));
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  return app;
}

test('the app type-checks against the published .d.ts under the browser condition, without @types/node', async () => {
  await typeCheck(APP, APP_TS, {
    module: 'ESNext',
    moduleResolution: 'bundler',
    customConditions: ['browser'],
    lib: ['ES2022', 'DOM', 'ESNext.Disposable'], // Tensor has [Symbol.dispose] (`using`)
    types: [],
  });
});

// The webgpu backend is typed with @webgpu/types (a devDependency): no public .d.ts may need it.
test('a Node app that selects webgpu type-checks against the published .d.ts (Node condition), without @webgpu/types or @types/node', async () => {
  await typeCheck(
    nodeApp('app-node', false),
    `import { setBackend, getBackend, listBackends, createModel, randn } from 'resnet-ts';
const b = await setBackend('webgpu');
const y = createModel('cifar_resnet20').forward(randn([1, 3, 32, 32]));
console.log(b.name, getBackend().disposed, listBackends(), await y.data());
`,
    {
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2022', 'DOM', 'ESNext.Disposable'], // DOM has no WebGPU types (GPUDevice, GPUBuffer, ...)
      types: [],
    },
  );
});

// A Node-only TypeScript project: lib without DOM, @types/node, skipLibCheck false (tsc's default). TypeScript
// declares the WebAssembly namespace only in lib.dom / lib.webworker, and @types/node does not declare it, so
// no public .d.ts may name WebAssembly.Module / WebAssembly.Memory (or other DOM-only types).
test('a Node app with @types/node and no DOM lib type-checks against the published .d.ts', async () => {
  await typeCheck(
    nodeApp('app-node-nodom', true),
    `import { setBackend, getBackend, setThreads, createModel, randn, noGrad, trainStep, optim, data, WasmBackend } from 'resnet-ts';
await setThreads(1);
const b = await setBackend('wasm');
const model = createModel('cifar_resnet20', { numClasses: 10 });
const x = randn([2, 3, 32, 32]);
const r: { loss: number } = trainStep({ model, optimizer: new optim.SGD(model.parameters(), { lr: 0.1 }) }, { x: x.dataSync(), shape: [2, 3, 32, 32], y: new Int32Array([1, 2]) });
const y = noGrad(() => model.eval().forward(randn([1, 3, 32, 32])));
const wasm = getBackend();
// the heap's memory is typed without the DOM lib (not 'unknown'): its buffer's size is a number
const bytes: number = wasm instanceof WasmBackend ? wasm.heap.memory.buffer.byteLength : 0;
console.log(b.name, bytes, r.loss, await y.data(), data.loadFashionMNIST.name);
`,
    { module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'ESNext.Disposable'], types: ['node'] },
  );
});
