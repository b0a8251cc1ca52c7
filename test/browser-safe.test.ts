// DESIGN.md: browser-safe code never imports node: modules. src/browser.ts is the browser entry;
// this walks its static imports (type-only ones erase at build time and are skipped) and fails on
// any Node built-in or sharp. Dynamic import() of node: modules inside Node-only branches (the
// wasm backend's worker threads, the weights cache) is allowed: it runs only when called in Node.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

/** Every module reachable from `entry` by static import/export, and the packages each names. */
function staticImports(entry: string): { files: string[]; packages: Map<string, string> } {
  const files = new Set<string>(), packages = new Map<string, string>();
  const todo = [resolve(entry)];
  while (todo.length) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022);
    for (const st of sf.statements) {
      let spec: ts.Expression | undefined;
      if (ts.isImportDeclaration(st) && !st.importClause?.isTypeOnly) spec = st.moduleSpecifier;
      else if (ts.isExportDeclaration(st) && !st.isTypeOnly) spec = st.moduleSpecifier;
      if (!spec || !ts.isStringLiteral(spec)) continue;
      const s = spec.text;
      if (!s.startsWith('.')) {
        if (!packages.has(s)) packages.set(s, relative('.', file));
        continue;
      }
      const ts_ = resolve(dirname(file), s.replace(/\.js$/, '.ts'));
      todo.push(existsSync(ts_) ? ts_ : resolve(dirname(file), s));
    }
  }
  return { files: [...files], packages };
}

const nodeOnly = (s: string) => s.startsWith('node:') || builtinModules.includes(s) || s === 'sharp' || s.startsWith('sharp/');

test('src/browser.ts reaches no Node built-in and no sharp through static imports', () => {
  const { files, packages } = staticImports('src/browser.ts');
  assert.ok(files.length > 30, `walked only ${files.length} files`);
  const bad = [...packages].filter(([s]) => nodeOnly(s)).map(([s, f]) => `${f} imports ${s}`);
  assert.deepEqual(bad, [], 'browser entry must not reach Node-only modules');
  // the walk can fail: the Node entry reaches the file-based datasets
  const node = staticImports('src/index.ts').packages;
  assert.ok(node.has('node:fs') && node.has('sharp'), 'the walk should find node:fs and sharp from src/index.ts');
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
