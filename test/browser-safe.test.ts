// DESIGN.md: browser-safe code never imports node: modules, statically or through a dynamic
// import(): bundlers follow both. src/browser.ts is the browser entry; this walks every import it
// reaches (static, re-export, dynamic import(), require(); type-only ones erase and are skipped),
// fails on Node built-ins, sharp, import.meta.resolve and non-literal import(), then bundles the
// entry with esbuild for the browser with no flags beyond --platform=browser and no externals.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { build } from 'esbuild';
import ts from 'typescript';

interface Walk {
  files: string[];
  /** package specifier -> the first file importing it (and how) */
  packages: Map<string, string>;
  /** constructs a bundler cannot follow or a browser cannot run */
  problems: string[];
}

/** Every module reachable from `entry` by any import, the packages each names, and problems. */
function walkImports(entry: string): Walk {
  const files = new Set<string>(),
    packages = new Map<string, string>(),
    problems: string[] = [];
  const todo = [resolve(entry)];
  while (todo.length) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const where = (n: ts.Node) => `${relative('.', file)}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}`;
    const use = (s: string, how: string, n: ts.Node) => {
      if (!s.startsWith('.')) {
        if (!packages.has(s)) packages.set(s, `${where(n)} (${how})`);
        return;
      }
      const t = resolve(dirname(file), s.replace(/\.js$/, '.ts'));
      todo.push(existsSync(t) ? t : resolve(dirname(file), s));
    };
    const visit = (n: ts.Node): void => {
      if (ts.isImportDeclaration(n) && !n.importClause?.isTypeOnly && ts.isStringLiteral(n.moduleSpecifier)) use(n.moduleSpecifier.text, 'import', n);
      else if (ts.isExportDeclaration(n) && !n.isTypeOnly && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier))
        use(n.moduleSpecifier.text, 'export from', n);
      else if (
        ts.isCallExpression(n) &&
        (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === 'require'))
      ) {
        const how = n.expression.kind === ts.SyntaxKind.ImportKeyword ? 'import()' : 'require()';
        const a = n.arguments[0];
        if (a && ts.isStringLiteralLike(a)) use(a.text, how, n);
        else problems.push(`${where(n)}: ${how} of a computed specifier`);
      } else if (ts.isPropertyAccessExpression(n) && ts.isMetaProperty(n.expression) && n.name.text === 'resolve') {
        problems.push(`${where(n)}: import.meta.resolve`);
      }
      // import('x').T in a type position is erased: do not descend into types
      if (!ts.isTypeNode(n)) ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return { files: [...files], packages, problems };
}

const nodeOnly = (s: string) => s.startsWith('node:') || builtinModules.includes(s) || s === 'sharp' || s.startsWith('sharp/');

test('src/browser.ts reaches no Node built-in, sharp or import.meta.resolve through any import, static or dynamic', () => {
  const { files, packages, problems } = walkImports('src/browser.ts');
  assert.ok(files.length > 30, `walked only ${files.length} files`);
  const bad = [...packages].filter(([s]) => nodeOnly(s)).map(([s, f]) => `${f} imports ${s}`);
  assert.deepEqual([...bad, ...problems], [], 'browser entry must not reach Node-only modules');
  // the walk can fail: the Node entry reaches the file-based datasets statically, the data loader's
  // worker pool (with import.meta.resolve), and sharp through a dynamic import()
  const node = walkImports('src/index.ts');
  assert.ok(node.packages.has('node:fs') && node.packages.has('node:worker_threads'), 'the walk should find node:fs and node:worker_threads from src/index.ts');
  assert.match(node.packages.get('sharp') ?? '', /import\(\)/, 'the walk should find the dynamic import of sharp from src/index.ts');
  assert.ok(
    node.problems.some((p) => p.includes('import.meta.resolve')),
    'the walk should find import.meta.resolve in the loader pool',
  );
});

test('esbuild bundles src/browser.ts for the browser with no externals and no warnings', async () => {
  const r = await build({
    entryPoints: ['src/browser.ts'],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
    metafile: true,
  });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(
    r.warnings.map((w) => w.text),
    [],
  );
  const inputs = Object.keys(r.metafile!.inputs);
  assert.ok(
    !inputs.some((f) => /loader-pool|image-folder|fashion-mnist|idx-file/.test(f)),
    `Node-only modules in the bundle: ${inputs.filter((f) => /loader-pool|image-folder|fashion-mnist|idx-file/.test(f))}`,
  );
  assert.ok(
    inputs.some((f) => f.endsWith('backend/wasm/wasm.ts')),
    'the wasm backend is in the bundle',
  );
});

test('the browser entry builds and runs a model; its data namespace has no file-based datasets', async () => {
  const web = await import('../src/browser.js');
  const full = await import('../src/index.js');
  const m = web.createModel('cifar_resnet20', { numClasses: 10, inChannels: 1 });
  m.eval();
  const y = web.noGrad(() => m.forward(web.randn([2, 1, 28, 28])));
  assert.deepEqual(y.shape, [2, 10]);
  assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
  assert.equal(typeof web.data.DataLoader, 'function');
  assert.equal(typeof web.data.parseIdx, 'function');
  assert.equal('loadFashionMNIST' in web.data, false);
  assert.equal(typeof full.data.loadFashionMNIST, 'function');
  assert.equal(full.createModel, web.createModel);
});

test('without sharp installed the Node entry still loads, and decoding an image names the missing package', async () => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  // a resolve hook that answers for 'sharp' what Node answers when the package is not installed
  const hook = `export async function resolve(s, c, next) { if (s === 'sharp') { const e = new Error("Cannot find package 'sharp'"); e.code = 'ERR_MODULE_NOT_FOUND'; throw e; } return next(s, c); }`;
  const script = [
    `import { register } from 'node:module';`,
    `register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`,
    `const m = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)});`,
    `try { await m.data.decodeImage(${JSON.stringify(new URL('../package.json', import.meta.url).pathname)}); console.log('decoded?'); }`,
    `catch (e) { console.log(e.name + ': ' + e.message); }`,
  ].join('\n');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  assert.equal(stdout.trim(), "ConfigError: decoding image files needs the npm package 'sharp', which is not installed: npm install sharp");
});
