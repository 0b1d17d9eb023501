import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyscope, generateKey, isWellFormedKey, type KeyscopeOptions } from '@keyscope/core';
import { assertBuilt, cliSession } from './helpers.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const ACME = fixture('config/acme.config.ts');

let dir: string;
let db: string;
/** Every plaintext key printed, to check nothing else carried one. */
const keys: string[] = [];

const { cli, json, fails, output } = cliSession(() => ({ cwd: dir, env: { ACME_KEYS_DB: db } }));

beforeAll(() => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'keyscope-config-'));
  db = join(dir, 'acme.db');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('one configuration for the server and the CLI (a .ts config module)', () => {
  let projectKey: string;
  let userKey: string;

  beforeAll(async () => {
    const project = await json(['keys', 'create', '--config', ACME, '--owner', 'acme_user', '--name', 'ci', '--level', 'project', '--project', 'app_proj_1']);
    const user = await json(['keys', 'create', '--config', ACME, '--owner', 'acme_user', '--name', 'laptop', '--level', 'user']);
    projectKey = project.key;
    userKey = user.key;
    keys.push(projectKey, userKey);
  });

  it('keys create issues keys with the configured prefix, for a project of the app’s own directory', () => {
    expect(projectKey).toMatch(/^acme_/);
    expect(isWellFormedKey(projectKey, 'acme')).toBe(true);
    expect(isWellFormedKey(userKey, 'acme')).toBe(true);
  });

  it('keys create refuses a project the app’s directory says the owner does not own (exit 2)', async () => {
    expect(await fails(2, ['keys', 'create', '--config', ACME, '--owner', 'acme_user', '--name', 'x', '--level', 'project', '--project', 'app_proj_2'])).toMatch(/not a project of owner/);
  });

  it('keys verify accepts those keys, with the configured optional paths', async () => {
    expect(await json(['keys', 'verify', '--config', ACME], { env: { KEYSCOPE_API_KEY: projectKey } })).toMatchObject({
      ok: true,
      auth: { ownerId: 'acme_user', level: 'project', projectId: 'app_proj_1' },
    });
    // The default --path is the first configured project-optional path, /whoami here.
    expect(await json(['keys', 'verify', '--config', ACME], { env: { KEYSCOPE_API_KEY: userKey } })).toMatchObject({ ok: true, auth: { level: 'user', projectId: null } });
    expect(await json(['keys', 'verify', '--config', ACME, '--path', '/data', '--project', 'app_proj_1'], { input: userKey })).toMatchObject({
      ok: true,
      auth: { projectId: 'app_proj_1' },
    });
    // /validate is not project-optional in this config: the server would refuse too.
    const refused = await cli(['keys', 'verify', '--config', ACME, '--path', '/validate', '--json'], { env: { KEYSCOPE_API_KEY: userKey } });
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, status: 403, code: 'project_required' });
    // A key of the default prefix is not a key of this app.
    const other = await cli(['keys', 'verify', '--config', ACME, '--json'], { env: { KEYSCOPE_API_KEY: generateKey() } });
    expect(JSON.parse(other.stdout)).toMatchObject({ ok: false, status: 401, code: 'invalid_api_key' });
  });

  it('a server built from the same config module accepts the CLI’s keys on the configured headers', async () => {
    const previous = process.env.ACME_KEYS_DB;
    process.env.ACME_KEYS_DB = db;
    let config: KeyscopeOptions;
    try {
      config = (await import('./fixtures/config/acme.config.js')).default;
    } finally {
      if (previous === undefined) delete process.env.ACME_KEYS_DB;
      else process.env.ACME_KEYS_DB = previous;
    }
    const ks = createKeyscope(config);
    try {
      expect(await ks.authenticate({ headers: { 'x-acme-key': projectKey }, path: '/data' })).toMatchObject({ ok: true, auth: { projectId: 'app_proj_1' } });
      expect(await ks.authenticate({ headers: { 'X-Acme-Key': userKey, 'X-Acme-Project': 'app_proj_1' }, path: '/data' })).toMatchObject({
        ok: true,
        auth: { level: 'user', projectId: 'app_proj_1' },
      });
      expect(await ks.authenticate({ headers: { 'x-acme-key': userKey }, path: '/whoami' })).toMatchObject({ ok: true, auth: { projectId: null } });
      expect(await ks.authenticate({ headers: { 'x-api-key': userKey }, path: '/whoami' })).toMatchObject({ ok: false, error: { code: 'missing_api_key' } });
    } finally {
      await ks.close();
      (config.store as { close?: () => void }).close?.();
    }
  });

  it('projects list reads the app’s directory; projects add says projects live there', async () => {
    expect(await json(['projects', 'list', '--config', ACME, '--owner', 'acme_user'])).toEqual([{ id: 'app_proj_1', ownerId: 'acme_user', name: 'Dashboard' }]);
    expect(await fails(2, ['projects', 'add', '--config', ACME, '--owner', 'acme_user', '--name', 'New'])).toMatch(/app’s own|your app/);
  });

  it('keys list and keys generate use the config too', async () => {
    const listed = await json(['keys', 'list', '--config', ACME, '--owner', 'acme_user']);
    expect(listed.map((k: any) => k.name)).toEqual(['ci', 'laptop']);
    const generated = await cli(['keys', 'generate', '--config', ACME]);
    expect(generated.code).toBe(0);
    expect(isWellFormedKey(generated.stdout.trim(), 'acme')).toBe(true);
  });

  it('takes the config from KEYSCOPE_CONFIG, and refuses --db beside a config (exit 2)', async () => {
    expect(await json(['keys', 'list', '--owner', 'acme_user'], { env: { KEYSCOPE_CONFIG: ACME } })).toHaveLength(2);
    expect(await fails(2, ['keys', 'list', '--owner', 'acme_user', '--config', ACME, '--db', db])).toMatch(/--db.*config|config.*--db/);
    expect(await fails(2, ['keys', 'list', '--owner', 'acme_user', '--db', db], { env: { KEYSCOPE_CONFIG: ACME } })).toMatch(/KEYSCOPE_CONFIG/);
  });
});

describe('config modules of every kind', () => {
  it('an .mjs config exporting an async function', async () => {
    const { key } = await json(['keys', 'create', '--config', fixture('config/function.config.mjs'), '--owner', 'u1', '--name', 'fn', '--level', 'user']);
    keys.push(key);
    expect(isWellFormedKey(key, 'fn')).toBe(true);
    expect(await json(['keys', 'verify', '--config', fixture('config/function.config.mjs')], { input: key })).toMatchObject({ ok: true });
  });

  it('a .cjs config exporting a promise of the options', async () => {
    const { key } = await json(['keys', 'create', '--config', fixture('config/promise.config.cjs'), '--owner', 'u1', '--name', 'cjs', '--level', 'user']);
    keys.push(key);
    expect(isWellFormedKey(key, 'cjs')).toBe(true);
  });

  it('finds keyscope.config.* in the working directory', async () => {
    const cwd = fixture('found');
    const generated = await cli(['keys', 'generate'], { cwd });
    expect(generated).toMatchObject({ code: 0, stderr: '' });
    expect(isWellFormedKey(generated.stdout.trim(), 'found')).toBe(true);
    // --config wins over the file found; --db beside a found config is refused.
    const other = await cli(['keys', 'generate', '--config', fixture('config/function.config.mjs')], { cwd });
    expect(isWellFormedKey(other.stdout.trim(), 'fn')).toBe(true);
    expect(await fails(2, ['keys', 'list', '--owner', 'u1', '--db', db], { cwd })).toMatch(/keyscope\.config\.mjs/);
    expect(existsSync(join(cwd, 'keyscope.db'))).toBe(false);
  });

  it('searches keyscope.config.ts, .mts, .js, .mjs, .cjs in that order', async () => {
    const cwd = mkdtempSync(join(dir, 'order-'));
    const store = `{ findKeyByHash: async () => null, ownsProject: () => false, listProjects: () => [] }`;
    writeFileSync(join(cwd, 'keyscope.config.mjs'), `export default { store: ${store}, keyPrefix: 'mjs' };\n`);
    writeFileSync(join(cwd, 'keyscope.config.cjs'), `module.exports = { store: ${store}, keyPrefix: 'cjs' };\n`);
    expect(isWellFormedKey((await cli(['keys', 'generate'], { cwd })).stdout.trim(), 'mjs')).toBe(true);
    writeFileSync(join(cwd, 'keyscope.config.ts'), `const prefix: string = 'tsfirst';\nexport default { store: ${store}, keyPrefix: prefix };\n`);
    expect(isWellFormedKey((await cli(['keys', 'generate'], { cwd })).stdout.trim(), 'tsfirst')).toBe(true);
  });

  it('a store without key administration: verify works, writes exit 2 with a clear message', async () => {
    const file = join(dir, 'readonly.config.mjs');
    writeFileSync(file, `export default { store: { findKeyByHash: async () => null, ownsProject: () => true, listProjects: () => [] } };\n`);
    expect(await fails(2, ['keys', 'create', '--config', file, '--owner', 'u1', '--name', 'x', '--level', 'user'])).toMatch(/createKey/);
    expect(await fails(2, ['keys', 'revoke', 'key_abc', '--config', file])).toMatch(/key administration/);
    expect(await fails(2, ['projects', 'add', '--config', file, '--owner', 'u1', '--name', 'x'])).toMatch(/createProject/);
    const verify = await cli(['keys', 'verify', '--config', file, '--json'], { input: generateKey() });
    expect(verify.code).toBe(1);
    expect(JSON.parse(verify.stdout)).toMatchObject({ status: 401, code: 'invalid_api_key' });
  });

  it('closes the config’s store after each command, and does not hang on handles the config left open', async () => {
    const file = join(dir, 'closing.config.mjs');
    writeFileSync(
      file,
      `import { appendFileSync } from 'node:fs';\n` +
        `setInterval(() => {}, 60_000); // the app's own pool or timer, which the CLI cannot close\n` +
        `const store = { findKeyByHash: async () => null, ownsProject: () => true, listProjects: () => [], close: () => appendFileSync(process.env.CLOSED_LOG, 'closed\\n') };\n` +
        `export default { store };\n`,
    );
    const log = join(dir, 'closed.log');
    const started = Date.now();
    const verify = await cli(['keys', 'verify', '--config', file], { input: generateKey(), env: { CLOSED_LOG: log } });
    expect(verify.code).toBe(1);
    await fails(2, ['keys', 'create', '--config', file, '--owner', 'u1', '--name', 'x', '--level', 'user'], { env: { CLOSED_LOG: log } });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(readFileSync(log, 'utf8')).toBe('closed\nclosed\n');
  });

  it.each([
    ['a syntax error (.mjs)', 'broken.config.mjs', 'export default {\n', /cannot load .*broken\.config\.mjs: SyntaxError: /],
    ['a syntax error (.ts)', 'broken.config.ts', 'const x: number = ;\nexport default {};\n', /cannot load .*broken\.config\.ts: .* \(at \/.*broken\.config\.ts:1:\d+\)/],
    ['no store', 'nostore.config.mjs', `export default { keyPrefix: 'x' };\n`, /store/],
    ['no default export', 'named.config.mjs', `export const store = {};\n`, /default export/],
    ['a throw while loading', 'throws.config.mjs', `throw new Error('database password missing');\n`, /database password missing/],
    ['a bad option', 'badprefix.config.mjs', `export default { store: { findKeyByHash: async () => null, ownsProject: () => true, listProjects: () => [] }, keyPrefix: 'Bad!' };\n`, /keyPrefix/],
    ['a file that is not a module', 'config.json', '{}\n', /\.ts.*\.cjs/],
  ])('%s: exit 2 with one line and no stack', async (_case, name, source, message) => {
    const file = join(dir, name);
    writeFileSync(file, source);
    for (const command of [['keys', 'list', '--owner', 'u1'], ['keys', 'generate']]) {
      expect(await fails(2, [...command, '--config', file])).toMatch(message);
    }
  });

  it('a missing config file: exit 2', async () => {
    expect(await fails(2, ['keys', 'generate', '--config', join(dir, 'nope.config.ts')])).toMatch(/no config file at/);
    expect(await fails(2, ['keys', 'generate'], { env: { KEYSCOPE_CONFIG: join(dir, 'nope.config.ts') } })).toMatch(/KEYSCOPE_CONFIG/);
  });
});

it('wrote no key except where a command shows one', () => {
  for (const text of output) for (const key of keys) expect(text).not.toContain(key);
});
