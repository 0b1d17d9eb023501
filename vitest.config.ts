import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources; test/package checks the built output separately.
    alias: {
      '@keyscope/core': src('core'),
      '@keyscope/express/augment': fileURLToPath(new URL('./packages/express/src/augment.ts', import.meta.url)),
      '@keyscope/express': src('express'),
      '@keyscope/koa': src('koa'),
      '@keyscope/fastify': src('fastify'),
      // Before '@keyscope/fetch', which would otherwise take this subpath as a prefix.
      '@keyscope/fetch/hono': fileURLToPath(new URL('./packages/fetch/src/hono.ts', import.meta.url)),
      '@keyscope/fetch': src('fetch'),
      '@keyscope/sqlite': src('sqlite'),
      '@keyscope/postgres': src('postgres'),
      '@keyscope/redis': src('redis'),
      '@keyscope/portal': src('portal'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    // Type tests (`*.test-d.ts`, expectTypeOf) run with every `vitest run`, against the sources.
    typecheck: {
      enabled: true,
      include: ['packages/*/test/**/*.test-d.ts', 'test/**/*.test-d.ts'],
      tsconfig: 'test/types/tsconfig.json',
    },
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
