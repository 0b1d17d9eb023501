import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, isWellFormedKey } from '@keyscope/core';
import { assertBuilt, cliSession, runCli } from './helpers.js';

const IMPORTING = fileURLToPath(new URL('./fixtures/config/imported.config.mjs', import.meta.url));
const NO_LIST_ALL = fileURLToPath(new URL('./fixtures/config/no-list-all.config.mjs', import.meta.url));
const DAY = 86_400_000;

let dir: string;
let db: string;
const keys: string[] = [];

const { cli, json, fails, output } = cliSession(() => ({ cwd: dir, env: { KEYSCOPE_DB: db } }));

beforeAll(async () => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'keyscope-commands-'));
  db = join(dir, 'keys.db');
  await json(['projects', 'add', '--owner', 'u1', '--name', 'Alpha', '--id', 'proj_a']);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('keys list status', () => {
  it('says expiring for a key that expires within 7 days, in the table and in --json', async () => {
    const soon = await json(['keys', 'create', '--owner', 'status', '--name', 'soon', '--level', 'user', '--expires-in', '3d']);
    const later = await json(['keys', 'create', '--owner', 'status', '--name', 'later', '--level', 'user', '--expires-in', '8d']);
    keys.push(soon.key, later.key);
    await cli(['keys', 'revoke', later.record.id]);
    const never = await json(['keys', 'create', '--owner', 'status', '--name', 'never', '--level', 'user']);
    keys.push(never.key);
    const listed = await json(['keys', 'list', '--owner', 'status']);
    expect(listed.map((k: any) => [k.name, k.status])).toEqual([
      ['soon', 'expiring'],
      ['later', 'revoked'],
      ['never', 'active'],
    ]);
    const table = await cli(['keys', 'list', '--owner', 'status']);
    expect(table.stdout.split('\n')[1]).toMatch(/\bsoon\b.*\bexpiring\b/);
  });
});

describe('durations', () => {
  it('--expires-in takes y (365 days) and w (7 days)', async () => {
    for (const [value, days] of [['1y', 365], ['2w', 14]] as const) {
      const before = Date.now();
      const { key, record } = await json(['keys', 'create', '--owner', 'durations', '--name', value, '--level', 'user', '--expires-in', value]);
      keys.push(key);
      const expires = Date.parse(record.expiresAt);
      expect(expires).toBeGreaterThanOrEqual(before + days * DAY);
      expect(expires).toBeLessThanOrEqual(Date.now() + days * DAY);
    }
    expect(await fails(2, ['keys', 'create', '--owner', 'durations', '--name', 'x', '--level', 'user', '--expires-in', '1mo'])).toMatch(/1y/);
    const help = await cli(['--help']);
    expect(help.stdout).toMatch(/<n>w/);
    expect(help.stdout).toMatch(/<n>y/);
    for (const words of ['keys import', 'keys generate', '--all', '--config <file>', 'KEYSCOPE_CONFIG', 'keyscope.config.ts', '--version']) expect(help.stdout).toContain(words);
  });
});

describe('--version', () => {
  it('prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(fileURLToPath(new URL('../../packages/cli/package.json', import.meta.url)), 'utf8'));
    expect(await cli(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
  });
});

describe('keys generate', () => {
  it('prints a new key and nothing else, opening no database', async () => {
    const cwd = mkdtempSync(join(dir, 'generate-'));
    const run = await runCli(['keys', 'generate'], { cwd });
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^ks_[0-9A-Za-z]{36}\n$/);
    expect(isWellFormedKey(run.stdout.trim())).toBe(true);
    const again = await runCli(['keys', 'generate', '--json'], { cwd });
    const doc = JSON.parse(again.stdout);
    expect(Object.keys(doc)).toEqual(['key', 'start']);
    expect(isWellFormedKey(doc.key)).toBe(true);
    expect(doc.key).not.toBe(run.stdout.trim());
    expect(doc.key.startsWith(doc.start)).toBe(true);
    expect(readdirSync(cwd)).toEqual([]);
    expect(await fails(2, ['keys', 'generate', 'extra'])).toMatch(/no arguments/);
  });
});

describe('keys import', () => {
  it('stores a key read from KEYSCOPE_API_KEY or stdin, and prints only its record', async () => {
    const fromEnv = generateKey();
    const imported = await json(['keys', 'import', '--owner', 'u1', '--name', 'legacy', '--level', 'project', '--project', 'proj_a'], { env: { KEYSCOPE_API_KEY: fromEnv } });
    expect(imported).toEqual({ record: expect.objectContaining({ id: expect.stringMatching(/^key_/), name: 'legacy', level: 'project', projectId: 'proj_a', start: fromEnv.slice(0, 7) }) });
    expect(await json(['keys', 'verify'], { env: { KEYSCOPE_API_KEY: fromEnv } })).toMatchObject({ ok: true, auth: { keyId: imported.record.id, projectId: 'proj_a' } });

    const fromStdin = generateKey();
    const human = await cli(['keys', 'import', '--owner', 'u1', '--name', 'piped', '--level', 'user'], { input: `${fromStdin}\n` });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^Imported key key_\w+ "piped"/);
    expect(human.stdout).not.toContain(fromStdin);
    expect(await json(['keys', 'verify'], { input: fromStdin })).toMatchObject({ ok: true });
    keys.push(fromEnv, fromStdin);
  });

  it('refuses a key on the command line, no key, and a key made elsewhere without importedKeys (exit 2)', async () => {
    const key = generateKey();
    expect(await fails(2, ['keys', 'import', '--owner', 'u1', '--name', 'x', '--level', 'user', key])).not.toContain(key);
    expect(await fails(2, ['keys', 'import', '--owner', 'u1', '--name', 'x', '--level', 'user'])).toMatch(/no key to import: set KEYSCOPE_API_KEY or pipe the key on stdin/);
    const foreign = 'sk-live-legacy-0123456789-abcdef';
    const refused = await fails(2, ['keys', 'import', '--owner', 'u1', '--name', 'x', '--level', 'user'], { input: foreign });
    expect(refused).toMatch(/importedKeys/);
    expect(refused).not.toContain(foreign);
  });

  it('imports a key made elsewhere through a config with importedKeys', async () => {
    const foreign = 'sk-live-legacy-0123456789-abcdef';
    const env = { ACME_KEYS_DB: join(dir, 'imported.db'), KEYSCOPE_API_KEY: foreign };
    const { record } = await json(['keys', 'import', '--config', IMPORTING, '--owner', 'ops', '--name', 'service', '--level', 'user'], { env });
    expect(record.start).toBe('sk-l');
    const verified = await json(['keys', 'verify', '--config', IMPORTING], { env });
    expect(verified).toMatchObject({ ok: true, auth: { keyId: record.id, ownerId: 'ops' } });
    expect(JSON.stringify(verified)).not.toContain(foreign);
  });
});

describe('keys list --all', () => {
  it('lists every owner’s keys through a store with listAllKeys', async () => {
    const env = { ACME_KEYS_DB: join(dir, 'all.db') };
    const first = await json(['keys', 'create', '--config', IMPORTING, '--owner', 'alice', '--name', 'a', '--level', 'user'], { env });
    const second = await json(['keys', 'create', '--config', IMPORTING, '--owner', 'bob', '--name', 'b', '--level', 'user', '--expires-in', '1d'], { env });
    keys.push(first.key, second.key);
    const all = await json(['keys', 'list', '--all', '--config', IMPORTING], { env });
    expect(all.map((k: any) => [k.ownerId, k.name, k.status])).toEqual([
      ['alice', 'a', 'active'],
      ['bob', 'b', 'expiring'],
    ]);
    expect(JSON.stringify(all)).not.toMatch(/"hash"/);
    const table = await cli(['keys', 'list', '--all', '--config', IMPORTING], { env });
    expect(table.stdout).toMatch(/^ID\s+OWNER\s+NAME\s+LEVEL/);
    expect(table.stdout).toMatch(/\balice\b/);
    expect(table.stdout).toMatch(/\bbob\b/);
  });

  it('lists every owner’s keys of a SQLite database given with --db', async () => {
    const db = join(dir, 'all-sqlite.db');
    const a = await json(['keys', 'create', '--db', db, '--owner', 'carol', '--name', 'c', '--level', 'user']);
    const b = await json(['keys', 'create', '--db', db, '--owner', 'dave', '--name', 'd', '--level', 'user']);
    keys.push(a.key, b.key);
    const all = await json(['keys', 'list', '--all', '--db', db]);
    expect(all.map((k: any) => k.ownerId)).toEqual(['carol', 'dave']);
  });

  it('exits 2 when the store cannot list every key, or with --owner, or with neither', async () => {
    expect(await fails(2, ['keys', 'list', '--all', '--config', NO_LIST_ALL])).toMatch(/listAllKeys/);
    expect(await fails(2, ['keys', 'list', '--all', '--owner', 'u1'])).toMatch(/--owner <ownerId> or --all/);
    expect(await fails(2, ['keys', 'list'])).toMatch(/--owner <ownerId> or --all/);
    expect(existsSync(join(dir, 'keyscope.db'))).toBe(false);
  });
});

it('wrote no key to stderr', () => {
  for (const text of output) for (const key of keys) expect(text).not.toContain(key);
});
