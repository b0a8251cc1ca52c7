// Builds the kernel module: AssemblyScript (assembly/*.ts) -> WebAssembly (SIMD128 + threads),
// then writes kernels.generated.ts (the module zlib-deflated, as base64: 10 kB gzipped where the
// plain base64 took 13 kB) so that Node, browsers and bundlers load it without file-system access
// or asset copying. Only the shared-memory build is stored: the unshared one differs from it in
// one byte, the memory import's limits flag (checked here; its offset is written beside the
// module), which the loader flips. The exported i32 globals that spell the job layout are read
// here and then dropped from the stored module (1.5 kB of the page's gzipped JS); the layout is
// written beside it, from the same build, so the two cannot disagree. Together with
// it, the job layout as typed
// constants: the module's exported globals (descriptor slots, job kinds, op codes, sizes), and
// for each argument slot (`NAME = D_ARGS + i` in the sources) whether the kernels read it as f32
// (through df()) or as i32. Run: npm run build:wasm
//   --check   rebuild in memory and fail if kernels.generated.ts differs (used by a test); the
//             module is compared inflated, as deflate's bytes may differ between zlib versions
//   --relaxed FILE   only write the shared-memory build with relaxed SIMD (f32x4.relaxed_madd in
//             the GEMM micro-kernel) to FILE, for bench/relaxed-simd.ts; nothing else changes
/* global WebAssembly */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { deflateSync, inflateSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const ascBin = join(dirname(require.resolve('assemblyscript/package.json')), 'bin', 'asc.js');
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

function layout(bytes) {
  const g = exportedGlobals(bytes);
  const { names, floats } = argSlots();
  for (const n of names) if (!(n in g)) throw new Error(`argument slot ${n} is not exported by the module`);
  const obj = (keys) => `{\n${keys.map((k) => `  ${k}: ${g[k]},`).join('\n')}\n}`;
  const args = names.slice().sort((a, b) => a.localeCompare(b));
  const consts = Object.keys(g).filter((k) => !names.includes(k)).sort((a, b) => a.localeCompare(b));
  return [
    '/** Job argument slots (word index in a descriptor): the kernels read these, JS writes them. */',
    `export const ARG_SLOTS = ${obj(args)} as const;`,
    '/** Argument slots the kernels read as f32; every other one is an i32 (a pointer as u32). */',
    `export const FLOAT_SLOTS: readonly (keyof typeof ARG_SLOTS)[] = [${args.filter((k) => floats.has(k)).map((k) => `'${k}'`).join(', ')}];`,
    '/** Header slots (D_*), job kinds (K_*), op codes (OP_*), pool modes (PM_*) and kernel sizes. */',
    `export const CONSTS = ${obj(consts)} as const;`,
  ].join('\n');
}

/**
 * The module without its exported globals (the job layout, which layout() has read): the export
 * section keeps only the functions. Sections are id, LEB128 size, body; an export is a name
 * (LEB128 length + bytes), a kind (0 function, 3 global) and a LEB128 index.
 */
function withoutGlobalExports(bytes) {
  let p = 8;
  const leb = () => {
    let v = 0,
      shift = 0,
      x;
    do {
      x = bytes[p++];
      v += (x & 0x7f) * 2 ** shift;
      shift += 7;
    } while (x & 0x80);
    return v;
  };
  const encode = (n) => {
    const out = [];
    do {
      let x = n & 0x7f;
      n = Math.floor(n / 128);
      if (n) x |= 0x80;
      out.push(x);
    } while (n);
    return Buffer.from(out);
  };
  const parts = [bytes.subarray(0, 8)];
  while (p < bytes.length) {
    const start = p,
      id = bytes[p++],
      size = leb(),
      end = p + size;
    if (id !== 7) {
      parts.push(bytes.subarray(start, end));
    } else {
      const kept = [];
      for (let n = leb(); n > 0; n--) {
        const e = p,
          len = leb();
        p += len;
        const kind = bytes[p++];
        leb();
        if (kind !== 3) kept.push(bytes.subarray(e, p));
      }
      const body = Buffer.concat([encode(kept.length), ...kept]);
      parts.push(Buffer.from([7]), encode(body.length), body);
    }
    p = end;
  }
  const out = Buffer.concat(parts);
  new WebAssembly.Module(out); // still valid
  return out;
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

const HEAD = '// GENERATED by src/backend/wasm/assembly/build.mjs from src/backend/wasm/assembly/*.ts. Do not edit.';

function render(shared, unshared, deflated = deflateSync(withoutGlobalExports(shared), { level: 9 })) {
  return [
    HEAD,
    `// WebAssembly (SIMD128 + threads), asc flags: ${ASC_FLAGS.join(' ')} --sharedMemory`,
    `/** ${withoutGlobalExports(shared).length} bytes (${deflated.length} deflated), imports a shared memory; the loader makes the unshared variant (one flag byte). */`,
    'export const KERNELS_WASM_DEFLATE_BASE64 =',
    literal(deflated),
    '/** The byte of the memory import\'s limits flag: 3 (shared) in this build, 1 in the unshared one, which is otherwise the same. */',
    `export const KERNELS_SHARED_FLAG_OFFSET = ${sharedFlagOffset(withoutGlobalExports(shared), withoutGlobalExports(unshared))};`,
    layout(unshared),
    '',
  ].join('\n');
}

const relaxedAt = process.argv.indexOf('--relaxed');
if (relaxedAt > 0) {
  writeFileSync(process.argv[relaxedAt + 1], build(true, true));
  console.log(`wrote ${process.argv[relaxedAt + 1]}`);
  process.exit(0);
}
const shared = build(true),
  unshared = build(false);
if (process.argv.includes('--check')) {
  const old = readFileSync(outTs, 'utf8');
  // the committed module, inflated, must be this build; the rest of the file must be what it renders to
  const b64 = [...(old.split('export const KERNELS_WASM_DEFLATE_BASE64 =')[1] ?? '').split(';')[0].matchAll(/'([^']*)'/g)].map((m) => m[1]).join('');
  const committed = b64 ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
  let same;
  try {
    same = inflateSync(committed).equals(withoutGlobalExports(shared)) && old === render(shared, unshared, committed);
  } catch {
    same = false;
  }
  if (!same) {
    console.error('kernels.generated.ts is stale: run npm run build:wasm');
    process.exit(1);
  }
  console.log('kernels.generated.ts is up to date');
} else {
  writeFileSync(outTs, render(shared, unshared));
  console.log(`wrote ${outTs}`);
}
