import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Imports point one way: cli -> coordinator, agent, shims -> common; proto/gen is usable by all.
 * agent and coordinator never import each other, shims imports only common. Shipped code never
 * imports test or benchmark code (or vitest); tests and benchmarks may import anything.
 */
const LAYERS = ['common', 'agent', 'coordinator', 'shims', 'cli'];
const MAY_IMPORT = {
  common: [],
  shims: ['common'],
  agent: ['common'],
  coordinator: ['common'],
  cli: ['common', 'agent', 'coordinator', 'shims'],
};
const importBoundaries = Object.entries(MAY_IMPORT).map(([layer, allowed]) => {
  const forbidden = LAYERS.filter((l) => l !== layer && !allowed.includes(l));
  const patterns = [
    {
      regex: '^(\\.\\./)+(test|bench)/',
      message: 'Shipped code does not import test or benchmark code (test/, bench/).',
    },
    { regex: '^vitest(/|$)', message: 'Shipped code does not import vitest (a devDependency).' },
  ];
  if (forbidden.length > 0)
    patterns.push({
      regex: `^(\\.\\./)+(${forbidden.join('|')})/src/`,
      message: `${layer}/src may import only ${['proto/gen', ...allowed].join(', ')}: imports point one way (cli -> coordinator, agent, shims -> common).`,
    });
  return {
    files: [`${layer}/src/**/*.{ts,cts,mts}`],
    ignores: ['**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  };
});

export default tseslint.config(
  { ignores: ['dist/**', 'dist-bench/**', 'proto/gen/**', 'node_modules/**', 'deploy/**'] },
  js.configs.recommended,
  {
    files: ['**/*.mjs', '**/*.cjs'],
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
      },
    },
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.property.name='copyFile']",
          message: 'fs.copyFile fills holes in sparse images; use the hole-aware copy.',
        },
        {
          selector: "CallExpression[callee.name='exec']",
          message: 'No shell strings: use execFile/spawn with an argument array.',
        },
      ],
    },
  },
  ...importBoundaries,
);
