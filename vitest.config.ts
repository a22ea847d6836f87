import { defineConfig } from 'vitest/config';

export default defineConfig({
  oxc: { include: /\.(m?ts|cts|[jt]sx)$/ },
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-tmp/results.json' },
  },
});
