import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources; test/package checks the built output separately.
    alias: {
      '@keyscope/core': src('core'),
      '@keyscope/express': src('express'),
      '@keyscope/koa': src('koa'),
      '@keyscope/fastify': src('fastify'),
      '@keyscope/fetch': src('fetch'),
      '@keyscope/sqlite': src('sqlite'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    // Type tests (`*.test-d.ts`, expectTypeOf) run with every `vitest run`; tsc resolves
    // `@keyscope/*` through the built packages, which `pnpm test` builds first.
    typecheck: { enabled: true, include: ['packages/*/test/**/*.test-d.ts', 'test/**/*.test-d.ts'] },
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
