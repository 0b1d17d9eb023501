import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyscope, generateKey, isWellFormedKey } from '@keyscope/core';
import Database from 'better-sqlite3';
import { SqliteStore } from '@keyscope/sqlite';
import { assertBuilt, runCli, type Run } from './helpers.js';

let dir: string;
let db: string;
/** Every plaintext key the CLI printed, and everything it wrote to stderr. */
const keys: string[] = [];
const stderrLog: string[] = [];

async function cli(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  const run = await runCli(args, { ...options, env: { KEYSCOPE_DB: db, ...options.env }, cwd: dir });
  stderrLog.push(run.stderr);
  return run;
}

/** A successful `--json` command: exit 0, nothing on stderr, one JSON document on stdout. */
async function json<T = any>(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<T> {
  const run = await cli([...args, '--json'], options);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as T;
}

/** A failing command: this exit code, nothing on stdout, one line on stderr. */
async function fails(code: 1 | 2, args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<string> {
  const run = await cli(args, options);
  expect({ code: run.code, stdout: run.stdout }).toEqual({ code, stdout: '' });
  expect(run.stderr).toMatch(/^keyscope: [^\n]+\n$/);
  return run.stderr;
}

async function createKey(args: string[]): Promise<{ key: string; record: any }> {
  const created = await json(['keys', 'create', ...args]);
  keys.push(created.key);
  return created;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

beforeAll(async () => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'keyscope-cli-'));
  db = join(dir, 'keys.db');
  expect(await json(['projects', 'add', '--owner', 'u1', '--name', 'Alpha', '--id', 'proj_a'])).toEqual({ id: 'proj_a', ownerId: 'u1', name: 'Alpha' });
  await json(['projects', 'add', '--owner', 'u1', '--name', 'Beta', '--id', 'proj_b']);
  await json(['projects', 'add', '--owner', 'u2', '--name', 'Not yours', '--id', 'proj_x']);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('projects', () => {
  it('adds with a generated id and lists an owner’s projects (JSON and table)', async () => {
    const added = await json(['projects', 'add', '--owner', 'u3', '--name', '  Gamma  ']);
    expect(added).toEqual({ id: expect.stringMatching(/^proj_[0-9a-f]{16}$/), ownerId: 'u3', name: 'Gamma' });
    expect(await json(['projects', 'list', '--owner', 'u3'])).toEqual([added]);
    expect(await json(['projects', 'list', '--owner', 'nobody'])).toEqual([]);

    const table = await cli(['projects', 'list', '--owner', 'u1']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n').slice(0, 3)).toEqual([expect.stringMatching(/^ID\s+NAME$/), expect.stringMatching(/^proj_a\s+Alpha$/), expect.stringMatching(/^proj_b\s+Beta$/)]);
  });

  it('refuses bad input with exit 2: an existing id, a bad owner, an empty or over-long name, a missing flag', async () => {
    expect(await fails(2, ['projects', 'add', '--owner', 'u2', '--name', 'Steal', '--id', 'proj_a'])).toMatch(/already exists/);
    expect(await json(['projects', 'list', '--owner', 'u2'])).toEqual([{ id: 'proj_x', ownerId: 'u2', name: 'Not yours' }]);
    await fails(2, ['projects', 'add', '--owner', 'bad owner!', '--name', 'X']);
    await fails(2, ['projects', 'add', '--owner', 'u1', '--name', '   ']);
    await fails(2, ['projects', 'add', '--owner', 'u1', '--name', 'x'.repeat(65)]);
    expect(await fails(2, ['projects', 'list'])).toMatch(/--owner/);
  });
});

describe('keys create', () => {
  it('prints the key once, with a line saying it will not be shown again', async () => {
    const run = await cli(['keys', 'create', '--owner', 'u1', '--name', 'human', '--level', 'user']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const found = run.stdout.match(/[a-z]+_[0-9A-Za-z]{36}/g) ?? [];
    expect(found).toHaveLength(1);
    expect(isWellFormedKey(found[0]!)).toBe(true);
    keys.push(found[0]!);
    expect(run.stdout).toMatch(/will not be shown again/);
  });

  it('--json prints { key, record } with exactly the documented fields', async () => {
    const { key, record } = await createKey(['--owner', 'u1', '--name', 'ci', '--level', 'project', '--project', 'proj_a', '--expires-in', '30d']);
    expect(isWellFormedKey(key)).toBe(true);
    expect(Object.keys(record).sort()).toEqual(['createdAt', 'expiresAt', 'id', 'kind', 'level', 'name', 'ownerId', 'projectId', 'start'].sort());
    expect(record).toEqual({
      id: expect.stringMatching(/^key_/),
      name: 'ci',
      ownerId: 'u1',
      level: 'project',
      projectId: 'proj_a',
      start: key.slice(0, 7),
      kind: 'opaque',
      createdAt: expect.stringMatching(ISO),
      expiresAt: expect.stringMatching(ISO),
    });
    const lifetime = Date.parse(record.expiresAt) - Date.parse(record.createdAt);
    expect(Math.abs(lifetime - 30 * 86_400_000)).toBeLessThan(60_000);

    const user = await createKey(['--owner', 'u1', '--name', 'until', '--level', 'user', '--expires-at', '2099-01-31T12:00:00Z']);
    expect(user.record).toMatchObject({ level: 'user', projectId: null, expiresAt: '2099-01-31T12:00:00.000Z' });
  });

  it.each([
    ['a project-level key without --project', ['--name', 'k', '--level', 'project']],
    ['a project the owner does not own', ['--name', 'k', '--level', 'project', '--project', 'proj_x']],
    ['a project that does not exist', ['--name', 'k', '--level', 'project', '--project', 'proj_missing']],
    ['a user-level key with --project', ['--name', 'k', '--level', 'user', '--project', 'proj_a']],
    ['an empty name', ['--name', ' ', '--level', 'user']],
    ['a name over 64 characters', ['--name', 'n'.repeat(65), '--level', 'user']],
    ['an expiry in the past', ['--name', 'k', '--level', 'user', '--expires-at', '2001-01-01']],
    ['a zero lifetime', ['--name', 'k', '--level', 'user', '--expires-in', '0s']],
    ['a bad duration', ['--name', 'k', '--level', 'user', '--expires-in', '30 days']],
    ['a date that is not ISO-8601', ['--name', 'k', '--level', 'user', '--expires-at', 'tomorrow']],
    ['both expiry flags', ['--name', 'k', '--level', 'user', '--expires-in', '1d', '--expires-at', '2099-01-01']],
    ['a bad level', ['--name', 'k', '--level', 'admin']],
    ['a missing level', ['--name', 'k']],
    ['an unknown option', ['--name', 'k', '--level', 'user', '--color', 'red']],
    ['an option without its value', ['--name', 'k', '--level']],
  ])('refuses %s with exit 2 and creates nothing', async (_case, args) => {
    const before = (await json(['keys', 'list', '--owner', 'u1'])).length;
    await fails(2, ['keys', 'create', '--owner', 'u1', ...args]);
    expect(await json(['keys', 'list', '--owner', 'u1'])).toHaveLength(before);
  });
});

describe('keys list', () => {
  it('lists records without plaintext or hash, as JSON and as a table', async () => {
    const { key, record } = await createKey(['--owner', 'lister', '--name', 'listed', '--level', 'user']);
    const listed = await cli(['keys', 'list', '--owner', 'lister', '--json']);
    const records = JSON.parse(listed.stdout);
    expect(records).toEqual([
      { ...record, revokedAt: null, lastUsedAt: null, rateLimit: null, quota: null, status: 'active' },
    ]);
    expect(listed.stdout).not.toContain(key);
    expect(listed.stdout).not.toMatch(/"hash"/);

    const table = await cli(['keys', 'list', '--owner', 'lister']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+LEVEL\s+PROJECT\s+START\s+STATUS\s+CREATED\s+EXPIRES\s+LAST USED\n/);
    expect(table.stdout).toContain(record.id);
    expect(table.stdout).not.toContain(key);
    expect(await json(['keys', 'list', '--owner', 'nobody'])).toEqual([]);
  });
});

describe('keys verify', () => {
  let userKey: string;
  let projectKey: string;
  beforeAll(async () => {
    userKey = (await createKey(['--owner', 'u1', '--name', 'verifier', '--level', 'user'])).key;
    projectKey = (await createKey(['--owner', 'u1', '--name', 'proj verifier', '--level', 'project', '--project', 'proj_a'])).key;
  });

  it('resolves the scope of a key read from KEYSCOPE_API_KEY or from stdin', async () => {
    const fromEnv = await json(['keys', 'verify'], { env: { KEYSCOPE_API_KEY: userKey } });
    expect(fromEnv).toEqual({
      ok: true,
      status: 200,
      auth: { keyId: expect.stringMatching(/^key_/), keyName: 'verifier', ownerId: 'u1', level: 'user', projectId: null },
    });
    expect(await json(['keys', 'verify', '--path', '/sites', '--project', 'proj_b'], { input: `${userKey}\n` })).toMatchObject({
      ok: true,
      auth: { projectId: 'proj_b' },
    });
    expect(await json(['keys', 'verify', '--path', '/sites'], { input: projectKey })).toMatchObject({
      ok: true,
      auth: { level: 'project', projectId: 'proj_a' },
    });
    const human = await cli(['keys', 'verify'], { input: userKey });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^200 ok: key key_\w+ "verifier" of owner u1, user level, project none/);
  });

  it.each([
    ['a user key on a project route without a project', () => ({ args: ['--path', '/sites'], key: userKey }), 403, 'project_required'],
    ['a project the key’s owner does not own', () => ({ args: ['--path', '/sites', '--project', 'proj_x'], key: userKey }), 403, 'project_forbidden'],
    ['another project for a project key', () => ({ args: ['--path', '/sites', '--project', 'proj_b'], key: projectKey }), 403, 'project_forbidden'],
    ['an unknown key', () => ({ args: [], key: generateKey() }), 401, 'invalid_api_key'],
    ['a mistyped key', () => ({ args: [], key: `${userKey.slice(0, -1)}${userKey.endsWith('a') ? 'b' : 'a'}` }), 401, 'invalid_api_key'],
  ])('refuses %s with exit 1 and the core’s code', async (_case, setup, status, code) => {
    const { args, key } = setup();
    const run = await cli(['keys', 'verify', ...args, '--json'], { input: key });
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: false, status, code });
    const human = await cli(['keys', 'verify', ...args], { input: key });
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(new RegExp(`^${status} ${code}: `));
    expect(human.stdout + human.stderr).not.toContain(key);
  });

  it('never takes the key from the command line, and does not echo it', async () => {
    const stderr = await fails(2, ['keys', 'verify', userKey]);
    expect(stderr).not.toContain(userKey);
    expect(stderr).toMatch(/KEYSCOPE_API_KEY or stdin/);
  });

  it('exits 2 when there is no key to verify', async () => {
    expect(await fails(2, ['keys', 'verify'], { input: '' })).toMatch(/no key/);
    await fails(2, ['keys', 'verify', '--path', 'sites'], { input: userKey });
  });
});

describe('keys revoke, rotate and usage', () => {
  it('revokes a key: verify is refused, revoking again is fine, unknown ids exit 1', async () => {
    const { key, record } = await createKey(['--owner', 'u1', '--name', 'doomed', '--level', 'user']);
    const revoked = await json(['keys', 'revoke', record.id]);
    expect(revoked).toMatchObject({ id: record.id, status: 'revoked', revokedAt: expect.stringMatching(ISO) });
    expect(revoked).not.toHaveProperty('hash');
    expect(await cli(['keys', 'verify', '--json'], { input: key })).toMatchObject({ code: 1, stdout: expect.stringContaining('invalid_api_key') });

    const again = await cli(['keys', 'revoke', record.id]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already revoked/);
    expect((await json(['keys', 'revoke', record.id])).revokedAt).toBe(revoked.revokedAt);

    expect(await fails(1, ['keys', 'revoke', 'key_doesnotexist'])).toMatch(/key_doesnotexist/);
    await fails(2, ['keys', 'revoke']);
    await fails(2, ['keys', 'revoke', record.id, 'extra']);
  });

  it('rotates a key: same name and scope, new plaintext; with --grace the old key keeps working', async () => {
    const old = await createKey(['--owner', 'u1', '--name', 'rotating', '--level', 'project', '--project', 'proj_b']);
    const rotated = await json(['keys', 'rotate', old.record.id, '--grace', '1h']);
    keys.push(rotated.key);
    expect(rotated.key).not.toBe(old.key);
    expect(Object.keys(rotated.record).sort()).toEqual(Object.keys(old.record).sort());
    expect(rotated.record).toMatchObject({ name: 'rotating', level: 'project', projectId: 'proj_b', ownerId: 'u1', expiresAt: null });
    expect(rotated.record.id).not.toBe(old.record.id);
    expect(await json(['keys', 'verify'], { input: old.key })).toMatchObject({ ok: true, auth: { keyId: old.record.id } });
    expect(await json(['keys', 'verify'], { input: rotated.key })).toMatchObject({ ok: true, auth: { keyId: rotated.record.id } });
    const listed = await json<any[]>(['keys', 'list', '--owner', 'u1']);
    const oldListed = listed.find((k) => k.id === old.record.id);
    expect(Date.parse(oldListed.expiresAt) - Date.parse(rotated.record.createdAt)).toBeGreaterThan(3_500_000);

    // Without --grace the old key stops at once.
    const human = await cli(['keys', 'rotate', rotated.record.id]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/will not be shown again/);
    expect(human.stdout).toMatch(/no longer works/);
    keys.push(human.stdout.match(/[a-z]+_[0-9A-Za-z]{36}/)![0]);
    expect((await cli(['keys', 'verify'], { input: rotated.key })).code).toBe(1);

    await fails(1, ['keys', 'rotate', 'key_doesnotexist']);
    expect(await fails(2, ['keys', 'rotate', rotated.record.id])).toMatch(/revoked/);
    await fails(2, ['keys', 'rotate', old.record.id, '--grace', 'forever']);
  });

  it('reports usage written by a server on the same file', async () => {
    const { key, record } = await createKey(['--owner', 'u1', '--name', 'busy', '--level', 'user']);
    expect(await json(['keys', 'usage', record.id])).toEqual({ keyId: record.id, lastUsedAt: null, total: 0, days: [] });

    const store = new SqliteStore({ filename: db });
    const ks = createKeyscope({ store });
    for (let i = 0; i < 3; i++) expect(await ks.authenticate({ headers: { 'x-api-key': key }, path: '/validate' })).toMatchObject({ ok: true });
    await ks.close();
    store.close();

    const usage = await json(['keys', 'usage', record.id]);
    const today = new Date().toISOString().slice(0, 10);
    expect(usage).toEqual({ keyId: record.id, lastUsedAt: expect.stringMatching(ISO), total: 3, days: [{ day: today, count: 3 }] });
    const human = await cli(['keys', 'usage', record.id]);
    expect(human.stdout).toMatch(/3 requests/);
    expect(human.stdout).toContain(today);
    await fails(1, ['keys', 'usage', 'key_doesnotexist']);
    await fails(2, ['keys', 'usage']);
  });
});

describe('usage errors and the database file', () => {
  it('exits 2 with one line for no command, an unknown command or option; --help exits 0', async () => {
    await fails(2, []);
    expect(await fails(2, ['keys', 'frobnicate'])).toMatch(/unknown command 'keys frobnicate'/);
    expect(await fails(2, ['keys', 'list', '--owner', 'u1', '--verbose'])).toMatch(/unknown option --verbose/);
    await fails(2, ['keys', 'list', '--owner', 'u1', '--json=yes']);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: keyscope/);
    for (const command of ['projects add', 'projects list', 'keys create', 'keys list', 'keys revoke', 'keys rotate', 'keys usage', 'keys verify']) {
      expect(help.stdout).toContain(command);
    }
  });

  it('takes the file from --db over KEYSCOPE_DB, and never creates one for a reading command', async () => {
    const other = join(dir, 'other.db');
    expect(await fails(2, ['keys', 'list', '--owner', 'u1', '--db', other])).toMatch(/no keyscope database/);
    expect(existsSync(other)).toBe(false);
    await json(['projects', 'add', '--owner', 'u9', '--name', 'Elsewhere', '--id', 'proj_e', '--db', other]);
    expect(await json(['projects', 'list', '--owner', 'u9', '--db', other])).toHaveLength(1);
    expect(await json(['projects', 'list', '--owner', 'u9'])).toEqual([]);
  });

  it('defaults to ./keyscope.db in the working directory', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'keyscope-cwd-'));
    try {
      const run = await runCli(['projects', 'add', '--owner', 'u1', '--name', 'Here', '--json'], { cwd });
      expect(run.code).toBe(0);
      expect(existsSync(join(cwd, 'keyscope.db'))).toBe(true);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('two concurrent `projects add` processes of one id: one exits 0, the other 2 "already exists", and the owner stays the winner', async () => {
    for (const id of ['proj_race1', 'proj_race2']) {
      const runs = await Promise.all(['alice', 'mallory'].map((owner) => cli(['projects', 'add', '--owner', owner, '--name', 'Race', '--id', id, '--json'])));
      expect(runs.map((r) => r.code).sort()).toEqual([0, 2]);
      const winner = JSON.parse(runs.find((r) => r.code === 0)!.stdout).ownerId;
      expect(runs.find((r) => r.code === 2)!.stderr).toMatch(new RegExp(`^keyscope: project ${id} already exists\n$`));
      expect((await json<any[]>(['projects', 'list', '--owner', winner])).map((p) => p.id)).toContain(id);
      expect((await json<any[]>(['projects', 'list', '--owner', winner === 'alice' ? 'mallory' : 'alice'])).map((p) => p.id)).not.toContain(id);
    }
  });

  it('creates the database owner-only (0600), and SQLite gives its -wal and -shm the same mode', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'keyscope-mode-'));
    try {
      const file = join(cwd, 'fresh.db');
      expect((await runCli(['projects', 'add', '--owner', 'u1', '--name', 'A', '--db', file])).code).toBe(0);
      const mode = (f: string) => statSync(f).mode & 0o777;
      expect(mode(file)).toBe(0o600);
      // A server keeps the -wal and -shm open; they must be no more readable than the file.
      const server = new SqliteStore({ filename: file });
      await server.addProject({ id: 'proj_b', ownerId: 'u1', name: 'B' });
      expect([file, `${file}-wal`, `${file}-shm`].map(mode)).toEqual([0o600, 0o600, 0o600]);
      server.close();
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('never turns another SQLite file into a keyscope database: reads and writes are refused, the file byte-identical, no -wal/-shm', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'keyscope-foreign-'));
    try {
      const file = join(cwd, 'app.db');
      const app = new Database(file);
      app.exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices (total) VALUES (12.5)");
      app.close();
      const bytes = readFileSync(file);
      const key = generateKey();
      for (const args of [
        ['projects', 'list', '--owner', 'u1'],
        ['keys', 'list', '--owner', 'u1'],
        ['keys', 'usage', 'key_x'],
        ['keys', 'verify'],
        ['projects', 'add', '--owner', 'u1', '--name', 'A'],
        ['keys', 'create', '--owner', 'u1', '--name', 'k', '--level', 'user'],
        ['keys', 'revoke', 'key_x'],
        ['keys', 'rotate', 'key_x'],
      ]) {
        const run = await runCli([...args, '--db', file], { env: { KEYSCOPE_API_KEY: key } });
        expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 2, stdout: '' });
        expect(run.stderr).toMatch(/not a keyscope database/);
        expect(readFileSync(file).equals(bytes)).toBe(true);
        expect(readdirSync(cwd)).toEqual(['app.db']);
      }
      // A missing file is refused by every command but the two that create; an empty file is a new database.
      for (const args of [['keys', 'list', '--owner', 'u1'], ['keys', 'revoke', 'key_x'], ['keys', 'verify']]) {
        expect((await runCli([...args, '--db', join(cwd, 'missing.db')], { env: { KEYSCOPE_API_KEY: key } })).code).toBe(2);
      }
      expect(readdirSync(cwd)).toEqual(['app.db']);
      writeFileSync(join(cwd, 'empty.db'), '');
      expect((await runCli(['keys', 'list', '--owner', 'u1', '--db', join(cwd, 'empty.db')])).code).toBe(2);
      expect(statSync(join(cwd, 'empty.db')).size).toBe(0);
      expect((await runCli(['projects', 'add', '--owner', 'u1', '--name', 'A', '--db', join(cwd, 'empty.db')])).code).toBe(0);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('reads a keyscope database without writing to it', async () => {
    const before = readFileSync(db);
    for (const args of [['projects', 'list', '--owner', 'u1'], ['keys', 'list', '--owner', 'u1'], ['keys', 'usage', 'key_doesnotexist']]) {
      await cli(args);
      expect(readFileSync(db).equals(before)).toBe(true);
    }
  });

  it('keys list --owner <a pasted key, whole or one character short> exits 2 and echoes it nowhere', async () => {
    const key = keys[0]!;
    for (const value of [key, key.slice(0, -1)]) {
      const run = await cli(['keys', 'list', '--owner', value]);
      expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 2, stdout: '' });
      expect(run.stderr).toMatch(/looks like an API key/);
      expect(run.stderr).not.toContain(value.slice(3, 20));
    }
  });

  it('never lets a plaintext key reach the database file, its WAL, or stderr', () => {
    expect(keys.length).toBeGreaterThanOrEqual(10);
    const bytes = Buffer.concat([db, `${db}-wal`].filter(existsSync).map((f) => readFileSync(f)));
    expect(bytes.length).toBeGreaterThan(0);
    const stderr = stderrLog.join('');
    for (const key of keys) {
      expect(bytes.includes(key)).toBe(false);
      expect(bytes.includes(key.slice(3))).toBe(false);
      expect(stderr).not.toContain(key);
    }
  });
});
