// Builds the kernel module: AssemblyScript (assembly/*.ts) -> WebAssembly (SIMD128 + threads),
// then writes kernels.generated.ts (the module zlib-deflated, as base64) so that Node, browsers
// and bundlers load it without file-system access or asset copying. Only the shared-memory build
// is stored: the unshared one differs from it in one byte, the memory import's limits flag
// (checked here; its offset is written beside the module), which the loader flips. The stored
// module exports only what the loader calls (forLoader): the job layout, which the sources export
// as i32 globals, is read here and written beside the module as one constant per number, from the
// same build, so the two cannot disagree; for each argument slot (`NAME = D_ARGS + i` in the
// sources) whether the kernels read it as f32 (through df()) or as i32. Run: npm run build:wasm
//   --check   rebuild in memory and fail if kernels.generated.ts differs (used by a test); the
//             module is compared inflated, as deflate's bytes differ between compressors
//   --relaxed FILE   only write the shared-memory build with relaxed SIMD (f32x4.relaxed_madd in
//             the GEMM micro-kernel) to FILE, for bench/relaxed-simd.ts; nothing else changes
/* global WebAssembly */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { deflateSync, inflateSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const ascDir = dirname(require.resolve('assemblyscript/package.json'));
const ascBin = join(ascDir, 'bin', 'asc.js');
// the binaryen that asc itself uses (a dependency of assemblyscript)
const binaryen = (await import(pathToFileURL(createRequire(join(ascDir, 'package.json')).resolve('binaryen')).href)).default;
const outTs = join(here, '..', 'kernels.generated.ts');

const ASC_FLAGS = [
  '-O3', '--noAssert', '--runtime', 'stub', '--enable', 'simd,threads',
  '--importMemory', '--initialMemory', '1', '--maximumMemory', '65536', '--use', 'abort=',
];

function build(shared, relaxed = false) {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-asc-'));
  try {
    const wasm = join(dir, 'kernels.wasm');
    let flags = shared ? [...ASC_FLAGS, '--sharedMemory'] : ASC_FLAGS;
    if (relaxed) flags = flags.map((f) => (f === 'simd,threads' ? 'simd,threads,relaxed-simd' : f));
    execFileSync(process.execPath, [ascBin, join(here, 'index.ts'), ...flags, '-o', wasm], { stdio: 'inherit' });
    return readFileSync(wasm);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function literal(bytes) {
  const b64 = bytes.toString('base64');
  const lines = [];
  for (let i = 0; i < b64.length; i += 100) lines.push(`  '${b64.slice(i, i + 100)}'`);
  return lines.join(' +\n') + ';';
}

/** The module's exported i32 globals, by name. */
function exportedGlobals(bytes) {
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const out = {};
  for (const [k, v] of Object.entries(inst.exports)) if (v instanceof WebAssembly.Global) out[k] = v.value;
  return out;
}

/** Argument slots (declared `NAME: i32 = D_ARGS + i`) and the ones read as f32 (df(d, NAME)). */
function argSlots() {
  const src = readdirSync(here).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(here, f), 'utf8')).join('\n');
  const names = [...src.matchAll(/export const (\w+): i32 = D_ARGS \+ \d+;/g)].map((m) => m[1]);
  const floats = new Set([...src.matchAll(/\bdf\(\w+, (\w+)\)/g)].map((m) => m[1]));
  for (const f of floats) if (!names.includes(f)) throw new Error(`df() reads ${f}, which is not an argument slot`);
  return { names, floats };
}

/**
 * Every layout number as its own constant (bundlers inline or rename them: no table of names
 * reaches a page). A slot the kernels read as f32 is exported as F32 + its word index.
 */
function layout(bytes) {
  const g = exportedGlobals(bytes);
  const { names, floats } = argSlots();
  for (const n of names) if (!(n in g)) throw new Error(`argument slot ${n} is not exported by the module`);
  for (const n of names) if (g[n] >= F32_FLAG) throw new Error(`argument slot ${n} = ${g[n]} is not below F32 (${F32_FLAG})`);
  const args = names.slice().sort((a, b) => a.localeCompare(b));
  const consts = Object.keys(g).filter((k) => !names.includes(k)).sort((a, b) => a.localeCompare(b));
  return [
    `/** Added to the word index of an argument slot that the kernels read as f32 (df()); above every index of a ${F32_FLAG}-word descriptor. */`,
    `export const F32 = ${F32_FLAG};`,
    '/** Job argument slots (word index in a descriptor; F32 + index for an f32 one): the kernels read these, JS writes them. */',
    ...args.map((k) => `export const ${k} = ${floats.has(k) ? `${F32_FLAG + g[k]}; // F32 + ${g[k]}` : `${g[k]};`}`),
    '/** Header slots (D_*), job kinds (K_*), op codes (OP_*), pool modes (PM_*) and kernel sizes. */',
    ...consts.map((k) => `export const ${k} = ${g[k]};`),
  ].join('\n');
}

/** The exports the loader (loader.ts instantiate) calls; the stored module keeps only these. */
const KERNEL_API = ['run_job', 'heap_base', 'zero_bytes', 'copy_bytes', 'bench_kernel'];

/**
 * The module as stored: only KERNEL_API exported. The sources export the layout globals (read by
 * layout() first) and, through `export *`, every task function; without those exports binaryen
 * drops what nothing uses (the globals, the @inline helpers) and, optimizing again at asc's
 * level (-O3: optimize 3, shrink 0), treats the tasks as internal (dead-argument elimination,
 * constants propagated into them): 29.6 -> 27.8 kB, 11.6 -> 11.0 kB deflated.
 */
function forLoader(bytes, relaxed = false) {
  const F = binaryen.Features;
  const m = binaryen.readBinary(bytes);
  try {
    // asc's default features and the two the flags enable (simd, threads)
    m.setFeatures(F.MVP | F.SignExt | F.MutableGlobals | F.NontrappingFPToInt | F.BulkMemory | F.BulkMemoryOpt | F.SIMD128 | F.Atomics | (relaxed ? F.RelaxedSIMD : 0));
    const names = [];
    for (let i = 0; i < m.getNumExports(); i++) names.push(binaryen.getExportInfo(m.getExportByIndex(i)).name);
    for (const n of KERNEL_API) if (!names.includes(n)) throw new Error(`the module does not export ${n}`);
    for (const n of names) if (!KERNEL_API.includes(n)) m.removeExport(n);
    binaryen.setOptimizeLevel(3);
    binaryen.setShrinkLevel(0);
    m.runPasses(['remove-unused-module-elements']);
    m.optimize();
    if (!m.validate()) throw new Error('binaryen: the stripped module does not validate');
    const out = Buffer.from(m.emitBinary());
    new WebAssembly.Module(out); // valid for this engine too
    return out;
  } finally {
    m.dispose();
  }
}

/**
 * zlib stream of the stored module. zopfli (Debian's `zopfli`, if installed) makes a stream about
 * 4.5% smaller than zlib -9 that any inflater reads; without it, zlib -9. A committed stream that
 * already inflates to this module is kept (build() and --check rebuild the module, not the stream),
 * so a rebuild where zopfli is missing does not grow the page.
 */
function compress(module, committed) {
  try {
    if (committed && inflateSync(committed).equals(module)) return committed;
  } catch {
    // not a zlib stream: compress anew
  }
  try {
    const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-zopfli-'));
    try {
      const f = join(dir, 'kernels.wasm');
      writeFileSync(f, module);
      return execFileSync('zopfli', ['--zlib', '-c', f], { maxBuffer: 1 << 26 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } catch {
    console.warn('build.mjs: zopfli not found (apt-get install zopfli): deflating with zlib -9, about 0.5 kB larger');
    return deflateSync(module, { level: 9 });
  }
}

/** The base64 stream committed in kernels.generated.ts, decoded (empty when there is none). */
function committedStream(text) {
  const b64 = [...(text.split('export const KERNELS_WASM_DEFLATE_BASE64 =')[1] ?? '').split(';')[0].matchAll(/'([^']*)'/g)].map((m) => m[1]).join('');
  return Buffer.from(b64, 'base64');
}

/** The byte where the unshared build differs from the shared one: the memory import's limits flag, 3 -> 1. */
function sharedFlagOffset(shared, unshared) {
  const diff = [];
  for (let i = 0; i < shared.length; i++) if (shared[i] !== unshared[i]) diff.push(i);
  if (shared.length !== unshared.length || diff.length !== 1 || shared[diff[0]] !== 3 || unshared[diff[0]] !== 1) {
    throw new Error(`the unshared build is not the shared one with the memory's shared flag cleared (differences at ${diff.slice(0, 5)})`);
  }
  return diff[0];
}

/** args() in wasm.ts: slot constants at or above this are f32 slots (index + F32). */
const F32_FLAG = 256;

const HEAD = '// GENERATED by src/backend/wasm/assembly/build.mjs from src/backend/wasm/assembly/*.ts. Do not edit.';

/** kernels.generated.ts for the raw asc builds (layout() reads their globals) and the stored module's zlib stream. */
function render(shared, unshared, stream) {
  const stored = forLoader(shared);
  return [
    HEAD,
    `// WebAssembly (SIMD128 + threads), asc flags: ${ASC_FLAGS.join(' ')} --sharedMemory; exports stripped to ${KERNEL_API.join(', ')} and optimized again (binaryen -O3)`,
    `/** ${stored.length} bytes (${stream.length} deflated), imports a shared memory; the loader makes the unshared variant (one flag byte). */`,
    'export const KERNELS_WASM_DEFLATE_BASE64 =',
    literal(stream),
    '/** The byte of the memory import\'s limits flag: 3 (shared) in this build, 1 in the unshared one, which is otherwise the same. */',
    `export const KERNELS_SHARED_FLAG_OFFSET = ${sharedFlagOffset(stored, forLoader(unshared))};`,
    layout(unshared),
    '',
  ].join('\n');
}

const relaxedAt = process.argv.indexOf('--relaxed');
if (relaxedAt > 0) {
  writeFileSync(process.argv[relaxedAt + 1], forLoader(build(true, true), true));
  console.log(`wrote ${process.argv[relaxedAt + 1]}`);
  process.exit(0);
}
const shared = build(true),
  unshared = build(false);
let old = '';
try {
  old = readFileSync(outTs, 'utf8');
} catch {
  // first build
}
const committed = committedStream(old);
if (process.argv.includes('--check')) {
  // the committed stream must inflate to this build's stored module, and the rest of the file be what it renders to
  let same;
  try {
    same = inflateSync(committed).equals(forLoader(shared)) && old === render(shared, unshared, committed);
  } catch {
    same = false;
  }
  if (!same) {
    console.error('kernels.generated.ts is stale: run npm run build:wasm');
    process.exit(1);
  }
  console.log('kernels.generated.ts is up to date');
} else {
  const text = render(shared, unshared, compress(forLoader(shared), committed));
  if (text !== old) writeFileSync(outTs, text);
  console.log(text !== old ? `wrote ${outTs}` : `${outTs} is up to date`);
}
