import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createKeyscope, hashKey } from '@keyscope/core';
import { SCHEMA_VERSION, SqliteStore } from '@keyscope/sqlite';
import { fixtureKey } from './fixtures/make-v1.mjs';

const FIXTURE_V1 = fileURLToPath(new URL('./fixtures/v1.db', import.meta.url));


let dir: string;
const open: SqliteStore[] = [];
function store(filename = join(dir, 'keys.db'), options: { watchIntervalMs?: number } = {}): SqliteStore {
  const s = new SqliteStore({ filename, ...options });
  open.push(s);
  return s;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyscope-sqlite-'));
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

function raw(filename: string) {
  return new Database(filename, { readonly: true });
}

describe('options', () => {
  it('rejects bad options with errors naming the option, and leaves the options alone', () => {
    expect(() => new SqliteStore(undefined as never)).toThrow(TypeError);
    expect(() => new SqliteStore({ filename: '' })).toThrow(/options\.filename/);
    expect(() => new SqliteStore({ filename: 1 as never })).toThrow(TypeError);
    expect(() => new SqliteStore({ filename: ':memory:', watchIntervalMs: 0 })).toThrow(RangeError);
    expect(() => new SqliteStore({ filename: ':memory:', watchIntervalMs: 1.5 })).toThrow(/options\.watchIntervalMs/);
    const options = Object.freeze({ filename: ':memory:', watchIntervalMs: 100 });
    expect(() => open.push(new SqliteStore(options))).not.toThrow();
    expect(options).toEqual({ filename: ':memory:', watchIntervalMs: 100 });
  });

  it('rejects a project without id, owner or name with invalid_argument', async () => {
    const s = store(':memory:');
    await expect(s.addProject({ id: '', ownerId: 'u1', name: 'A' })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(s.addProject({ id: 'p', ownerId: 'u1' } as never)).rejects.toMatchObject({ code: 'invalid_argument' });
    expect(await s.listProjects('u1')).toEqual([]);
  });
});

describe('the file', () => {
  it('is in WAL mode, looks keys up through the hash index, and has the current schema version', () => {
    const filename = join(dir, 'keys.db');
    store(filename);
    const db = raw(filename);
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const plan = db.prepare('EXPLAIN QUERY PLAN SELECT * FROM keys WHERE hash = ?').all('x') as { detail: string }[];
      expect(plan.map((p) => p.detail).join(' ')).toMatch(/USING INDEX/);
      expect(db.prepare('SELECT version FROM keyscope_schema').pluck().get()).toBe(SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it('keeps keys, projects and usage across reopening', async () => {
    const filename = join(dir, 'keys.db');
    const first = store(filename);
    await first.addProject({ id: 'proj_a', ownerId: 'u1', name: 'Alpha' });
    const ks = createKeyscope({ store: first });
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'persisted', level: 'project', projectId: 'proj_a' });
    expect(await ks.authenticate({ headers: { 'x-api-key': key }, path: '/sites' })).toMatchObject({ ok: true });
    await ks.close();
    first.close();

    const second = store(filename);
    expect((await second.findKeyByHash(hashKey(key)))?.id).toBe(record.id);
    expect(await second.ownsProject('u1', 'proj_a')).toBe(true);
    expect((await second.getUsage(record.id))?.days).toHaveLength(1);
  });

  it('never stores the plaintext key: not in the database, not in the WAL', async () => {
    const filename = join(dir, 'keys.db');
    const s = store(filename);
    const ks = createKeyscope({ store: s });
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await ks.keys.create({ ownerId: 'u1', name: `k${i}`, level: 'user' }));
    const rotated = await ks.keys.rotate(created[0]!.record.id, { gracePeriodMs: 60_000 });
    await ks.close();
    const bytes = Buffer.concat([readFileSync(filename), existsSync(`${filename}-wal`) ? readFileSync(`${filename}-wal`) : Buffer.alloc(0)]);
    // The hash is there, which shows the search reads the right bytes.
    expect(bytes.includes(hashKey(rotated.key))).toBe(true);
    for (const { key } of [...created, rotated]) {
      expect(bytes.includes(key)).toBe(false);
      expect(bytes.includes(key.slice(8))).toBe(false);
    }
  });
});

describe('schema migration', () => {
  it('upgrades a file written by schema version 1 and keeps its keys and projects', async () => {
    const filename = join(dir, 'old.db');
    copyFileSync(FIXTURE_V1, filename);
    const before = raw(filename);
    expect(before.prepare('SELECT version FROM keyscope_schema').pluck().get()).toBe(1);
    expect(before.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'usage_days'").pluck().get()).toBe(0);
    before.close();

    const s = store(filename);
    const key = fixtureKey();
    const record = await s.findKeyByHash(hashKey(key));
    expect(record).toEqual({
      id: 'key_v1fixture',
      name: 'v1 key',
      ownerId: 'user_v1',
      level: 'project',
      projectId: 'proj_v1',
      hash: hashKey(key),
      start: key.slice(0, 7),
      createdAt: new Date(Date.UTC(2025, 0, 1)),
      expiresAt: null,
      revokedAt: null,
      lastUsedAt: new Date(Date.UTC(2025, 0, 2)),
    });
    expect(await s.listProjects('user_v1')).toEqual([{ id: 'proj_v1', ownerId: 'user_v1', name: 'Made by v1' }]);

    // What v2 added works on the upgraded file.
    const ks = createKeyscope({ store: s });
    expect(await ks.authenticate({ headers: { 'x-api-key': key }, path: '/sites' })).toMatchObject({
      ok: true,
      auth: { keyId: 'key_v1fixture', projectId: 'proj_v1' },
    });
    const usage = await ks.keys.usage('key_v1fixture');
    expect(usage.days).toHaveLength(1);
    expect(usage.days[0]!.count).toBe(1);
    await ks.close();
    s.close();

    const after = raw(filename);
    expect(after.prepare('SELECT version FROM keyscope_schema').pluck().get()).toBe(SCHEMA_VERSION);
    after.close();
    // Opening an up-to-date file again changes nothing.
    expect(await store(filename).getKey('key_v1fixture')).not.toBeNull();
  });

  it('refuses a file from a newer schema, naming both versions, and leaves it untouched', () => {
    const filename = join(dir, 'future.db');
    store(filename).close();
    const db = new Database(filename);
    db.prepare('UPDATE keyscope_schema SET version = ?').run(SCHEMA_VERSION + 7);
    db.close();
    expect(() => new SqliteStore({ filename })).toThrow(
      new RegExp(`schema version ${SCHEMA_VERSION + 7}, newer than version ${SCHEMA_VERSION}`),
    );
    const check = raw(filename);
    expect(check.prepare('SELECT version FROM keyscope_schema').pluck().get()).toBe(SCHEMA_VERSION + 7);
    check.close();
  });
});

describe('subscribe: changes made by another connection', () => {
  const until = async (check: () => boolean, ms = 2_000) => {
    const end = Date.now() + ms;
    while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    return check();
  };

  it('calls the listener without a key id when another connection revokes, rotates or creates', async () => {
    const filename = join(dir, 'keys.db');
    const server = store(filename, { watchIntervalMs: 20 });
    const cli = store(filename);
    const admin = createKeyscope({ store: cli, usage: false });
    const { record } = await admin.keys.create({ ownerId: 'u1', name: 'watched', level: 'user' });

    const calls: unknown[][] = [];
    const unsubscribe = server.subscribe((...args: unknown[]) => calls.push(args));
    await admin.keys.revoke(record.id);
    expect(await until(() => calls.length > 0)).toBe(true);
    expect(calls[0]).toEqual([]);

    const seen = calls.length;
    await cli.addProject({ id: 'proj_new', ownerId: 'u1', name: 'New' });
    expect(await until(() => calls.length > seen)).toBe(true);
    unsubscribe();
    await admin.close();
  });

  it('stays quiet for its own writes, for another process’s usage writes, and after unsubscribing', async () => {
    const filename = join(dir, 'keys.db');
    const server = store(filename, { watchIntervalMs: 10 });
    const other = store(filename);
    const admin = createKeyscope({ store: other, usage: false });
    const { record } = await admin.keys.create({ ownerId: 'u1', name: 'quiet', level: 'user' });
    await admin.close();

    const listener = vi.fn();
    const unsubscribe = server.subscribe(listener);
    await server.revokeKey(record.id, new Date());
    await other.recordUsage([{ keyId: record.id, day: '2025-01-01', count: 3, lastUsedAt: new Date() }]);
    await new Promise((r) => setTimeout(r, 150));
    expect(listener).not.toHaveBeenCalled();
    expect((await server.getUsage(record.id))!.days).toEqual([{ day: '2025-01-01', count: 3 }]);

    unsubscribe();
    await other.setKeyExpiry(record.id, new Date(Date.UTC(2030, 0, 1)));
    await new Promise((r) => setTimeout(r, 100));
    expect(listener).not.toHaveBeenCalled();
  });

  it('keeps telling the other listeners when one throws, and stops on close', async () => {
    const filename = join(dir, 'keys.db');
    const server = store(filename, { watchIntervalMs: 10 });
    const other = store(filename);
    const good = vi.fn();
    server.subscribe(() => {
      throw new Error('listener failure');
    });
    server.subscribe(good);
    await other.addProject({ id: 'p1', ownerId: 'u1', name: 'One' });
    expect(await until(() => good.mock.calls.length > 0)).toBe(true);
    server.close();
    server.close();
    const calls = good.mock.calls.length;
    await other.addProject({ id: 'p2', ownerId: 'u1', name: 'Two' });
    await new Promise((r) => setTimeout(r, 80));
    expect(good.mock.calls.length).toBe(calls);
  });

  it('lets a running keyscope refuse a key another connection revoked, without waiting for the cache TTL', async () => {
    const filename = join(dir, 'keys.db');
    const serverStore = store(filename, { watchIntervalMs: 25 });
    const cliStore = store(filename);
    const server = createKeyscope({ store: serverStore, cache: { ttlMs: 600_000 } });
    const cli = createKeyscope({ store: cliStore, usage: false });
    const { key, record } = await cli.keys.create({ ownerId: 'u1', name: 'cached', level: 'user' });
    const check = () => server.authenticate({ headers: { 'x-api-key': key }, path: '/validate' });
    expect(await check()).toMatchObject({ ok: true });
    await cli.keys.revoke(record.id);
    const start = Date.now();
    let result = await check();
    while (result.ok && Date.now() - start < 2_000) {
      await new Promise((r) => setTimeout(r, 10));
      result = await check();
    }
    expect(result).toMatchObject({ ok: false, error: { status: 401, code: 'invalid_api_key' } });
    await server.close();
    await cli.close();
  });
});
