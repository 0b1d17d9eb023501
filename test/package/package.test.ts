// Checks the built packages, not the sources: exports maps, ESM and CJS entry points, typings.
// The README's test command builds every package before vitest runs.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const packages = readdirSync(join(root, 'packages'))
  .map((dir) => ({ dir: join(root, 'packages', dir), json: JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) }))
  .filter(({ dir }) => existsSync(join(dir, 'src/index.ts')));

describe('@keyscope/core dependencies', () => {
  it('has no runtime dependency beyond jose and lru-cache, and names no framework or driver', () => {
    const core = packages.find((p) => p.json.name === '@keyscope/core')!.json;
    expect(Object.keys(core.dependencies ?? {}).filter((d) => d !== 'jose' && d !== 'lru-cache')).toEqual([]);
    expect(core.peerDependencies).toBeUndefined();
    const sources = readdirSync(join(root, 'packages/core/src')).map((f) => readFileSync(join(root, 'packages/core/src', f), 'utf8')).join('\n');
    expect(sources).not.toMatch(/from ['"](express|koa|fastify|hono|pg|better-sqlite3|ioredis|redis)['"]/);
  });
});

describe('@keyscope/fetch', () => {
  it('needs nothing but the Fetch API at its root entry: no hono in its code or types; the middleware is @keyscope/fetch/hono', async () => {
    const dist = join(root, 'packages/fetch/dist');
    const rootEntry = ['index.js', 'index.cjs', 'index.d.ts', 'index.d.cts'];
    // Follow the ESM entry's chunk imports too: what `import '@keyscope/fetch'` loads.
    const chunks = [...readFileSync(join(dist, 'index.js'), 'utf8').matchAll(/from ['"]\.\/(chunk-[\w-]+\.js)['"]/g)].map((m) => m[1]!);
    for (const file of [...rootEntry, ...chunks]) expect(readFileSync(join(dist, file), 'utf8'), file).not.toMatch(/['"]hono['"]/);
    const hono = await run(process.execPath, ['--input-type=module', '-e', "import * as m from '@keyscope/fetch/hono'; console.log(typeof m.keyscope)"], { cwd: root });
    expect(hono.stdout.trim()).toBe('function');
    const honoCjs = await run(process.execPath, ['-e', "console.log(typeof require('@keyscope/fetch/hono').keyscope)"], { cwd: root });
    expect(honoCjs.stdout.trim()).toBe('function');
  });
});

describe.each(packages.map((p) => [p.json.name as string, p] as const))('%s as published', (name, { dir, json }) => {
  it('declares exports with types first, sideEffects false, and has its built files', () => {
    expect(json.sideEffects).toBe(false);
    const entries = Object.entries(json.exports).filter(([subpath]) => subpath !== './package.json');
    expect(entries.map(([subpath]) => subpath)).toContain('.');
    for (const [, entry] of entries as [string, Record<'import' | 'require', Record<string, string>>][]) {
      for (const condition of ['import', 'require'] as const) {
        expect(Object.keys(entry[condition])[0]).toBe('types');
        for (const file of Object.values(entry[condition])) {
          expect(existsSync(join(dir, file)), `${file} missing: run the build first`).toBe(true);
        }
      }
    }
    expect(existsSync(join(dir, 'README.md'))).toBe(true);
  });

  it('imports from ESM and from CJS with the same named exports', async () => {
    const esm = await run(process.execPath, ['--input-type=module', '-e', `import * as m from '${name}'; console.log(JSON.stringify(Object.keys(m).sort()))`], { cwd: root });
    const cjs = await run(process.execPath, ['-e', `console.log(JSON.stringify(Object.keys(require('${name}')).sort()))`], { cwd: root });
    const esmNames = JSON.parse(esm.stdout).filter((n: string) => n !== 'default' && n !== 'module.exports');
    const cjsNames = JSON.parse(cjs.stdout).filter((n: string) => n !== 'default');
    expect(esmNames.length).toBeGreaterThan(0);
    expect(cjsNames).toEqual(esmNames);
  });

  it('has types that resolve the same for node10, node16 (ESM and CJS) and bundlers (are-the-types-wrong)', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'node_modules/@arethetypeswrong/cli/dist/index.js'), '--pack', dir, '--format', 'json'], { cwd: root });
    const report = JSON.parse(stdout);
    expect(report.analysis.entrypoints).toHaveProperty('.');
    expect(report.problems).toEqual({});
  });

  it('passes publint', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'node_modules/publint/src/cli.js'), '--pack', 'npm', '--strict', dir], { cwd: root });
    expect(stdout).toMatch(/All good|No issues/i);
  });
});
