// ESLint: the recommended rule sets of ESLint and typescript-eslint (not the type-checked ones,
// so linting stays fast and needs no program), zero warnings allowed (`npm run lint`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    // AssemblyScript (assembly/) is not TypeScript (decorators on functions); asc checks it.
    ignores: [
      'dist/**',
      'web/dist/**',
      'test/artifacts/**',
      'node_modules/**',
      'test/fixtures/**',
      'bench/results/**',
      'runs/**',
      '.cache/**',
      'src/backend/wasm/kernels.generated.ts',
      'src/backend/wasm/assembly/*.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The few plain-JS files (bin, build and fixture scripts, a worker) run in Node.
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: Object.fromEntries(
        ['process', 'console', 'URL', 'Buffer', 'setTimeout', 'clearTimeout', 'TextDecoder', 'TextEncoder'].map((g) => [g, 'readonly']),
      ),
    },
  },
  {
    // The browser test page runs in a browser.
    files: ['test/browser/page.js'],
    languageOptions: { globals: Object.fromEntries(['window', 'self', 'document', 'fetch'].map((g) => [g, 'readonly'])) },
  },
  {
    rules: {
      // `_name` marks a parameter kept for an interface's sake.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
);
