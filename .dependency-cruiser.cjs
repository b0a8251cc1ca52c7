/* global module */
// The import arrows of src/ (README "Layout"): each layer may import only itself and the layers
// below it, and nothing may form a cycle. Run by `npm run depcheck` (CI runs it before the tests).
//   base <- backend <- tensor <- {nn, optim} <- models <- convert <- train <- cli
//   io (formats) and data lean on base; data may read formats from io; models, convert, train and
//   cli may use io and data. index.ts / browser.ts (re-exports only) may import everything.
const below = {
  base: [],
  backend: ['base'],
  tensor: ['base', 'backend'],
  nn: ['base', 'backend', 'tensor'],
  optim: ['base', 'backend', 'tensor', 'nn'],
  io: ['base'],
  data: ['base', 'io'],
  models: ['base', 'backend', 'tensor', 'nn', 'io'],
  convert: ['base', 'backend', 'tensor', 'nn', 'io', 'models'],
  train: ['base', 'backend', 'tensor', 'nn', 'optim', 'io', 'data', 'models', 'convert'],
  cli: ['base', 'backend', 'tensor', 'nn', 'optim', 'io', 'data', 'models', 'convert', 'train'],
};

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'an import cycle', from: {}, to: { circular: true } },
    ...Object.entries(below).map(([layer, ok]) => ({
      name: `layer-${layer}`,
      severity: 'error',
      comment: `src/${layer} may import only ${[layer, ...ok].join(', ')}`,
      from: { path: `^src/${layer}/` },
      to: { path: '^src/', pathNot: `^src/(${[layer, ...ok].join('|')})/` },
    })),
    {
      name: 'layers-known',
      severity: 'error',
      comment: 'every src/ folder is a layer with a rule above',
      from: { path: '^src/[^/]+/', pathNot: `^src/(${Object.keys(below).join('|')})/` },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/backend/wasm/assembly/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
