import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createKeyscope, hashKey, narrowsFindKeyByHash } from '@keyscope/core';
import type { KeyRecord, KeyStore } from '@keyscope/core';
import { SCHEMA_VERSION, SqliteStore } from '@keyscope/sqlite';
import { fixtureKey } from './fixtures/make-v1.mjs';

const FIXTURE_V1 = fileURLToPath(new URL('./fixtures/v1.db', import.meta.url));
const HOLD_LOCK = fileURLToPath(new URL('./fixtures/hold-lock.mjs', import.meta.url));

/**
 * A file as schema version 2 wrote it: the v1 fixture plus version 2's SQL, copied here on
 * purpose (later edits to the migrations must not change what a real version 2 file looks
 * like), with one key used once.
 */
function versionTwoFile(filename: string): void {
  copyFileSync(FIXTURE_V1, filename);
  const db = new Database(filename);
  db.exec(`
    CREATE TABLE usage_days (
      key_id TEXT NOT NULL REFERENCES keys (id),
      day    TEXT NOT NULL,
      count  INTEGER NOT NULL,
      PRIMARY KEY (key_id, day)
    ) WITHOUT ROWID;

    CREATE TABLE changes (
      id         INTEGER PRIMARY KEY CHECK (id = 1),
      generation INTEGER NOT NULL
    );
    INSERT INTO changes (id, generation) VALUES (1, 0);

    CREATE TRIGGER keys_inserted AFTER INSERT ON keys
      BEGIN UPDATE changes SET generation = generation + 1; END;
    CREATE TRIGGER keys_updated
      AFTER UPDATE OF id, name, owner_id, level, project_id, hash, expires_at, revoked_at ON keys
      BEGIN UPDATE changes SET generation = generation + 1; END;
    CREATE TRIGGER keys_deleted AFTER DELETE ON keys
      BEGIN UPDATE changes SET generation = generation + 1; END;
    CREATE TRIGGER projects_inserted AFTER INSERT ON projects
      BEGIN UPDATE changes SET generation = generation + 1; END;
    CREATE TRIGGER projects_updated AFTER UPDATE ON projects
      BEGIN UPDATE changes SET generation = generation + 1; END;
    CREATE TRIGGER projects_deleted AFTER DELETE ON projects
      BEGIN UPDATE changes SET generation = generation + 1; END;

    INSERT INTO usage_days (key_id, day, count) VALUES ('key_v1fixture', '2025-01-02', 3);
    UPDATE keyscope_schema SET version = 2;
  `);
  db.close();
}

/**
 * A file as schema version 3 wrote it: version 2's file plus version 3's SQL, copied here on
 * purpose as above, with a signed key and its denial.
 */
function versionThreeFile(filename: string): void {
  versionTwoFile(filename);
  const db = new Database(filename);
  db.exec(`
    ALTER TABLE keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'opaque' CHECK (kind IN ('opaque', 'signed'));

    CREATE TABLE key_denials (
      key_id   TEXT PRIMARY KEY,
      from_at  INTEGER NOT NULL,
      until_at INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TRIGGER key_denials_inserted AFTER INSERT ON key_denials
      BEGIN UPDATE changes SET generation = generation + 1; END;
    CREATE TRIGGER key_denials_updated AFTER UPDATE ON key_denials
      BEGIN UPDATE changes SET generation = generation + 1; END;
    CREATE TRIGGER key_denials_deleted AFTER DELETE ON key_denials
      BEGIN UPDATE changes SET generation = generation + 1; END;

    INSERT INTO keys (id, name, owner_id, level, project_id, hash, start, created_at, kind)
      VALUES ('key_v3signed', 'v3 signed', 'user_v1', 'user', NULL, 'v3-signed-token-hash', 'eyJhbGc', 1735776000000, 'signed');
    INSERT INTO key_denials (key_id, from_at, until_at) VALUES ('key_v3signed', 1735776000000, 4102444800000);
    UPDATE keyscope_schema SET version = 3;
  `);
  db.close();
}

/**
 * A file as schema version 4 wrote it: version 3's file plus version 4's SQL, copied here on
 * purpose as above, with usage as version 4 kept it (the last use on the keys row, none on the
 * usage rows).
 */
function versionFourFile(filename: string): void {
  versionThreeFile(filename);
  const db = new Database(filename);
  db.exec(`
    ALTER TABLE keys ADD COLUMN rate_limit INTEGER;
    ALTER TABLE keys ADD COLUMN rate_window_ms INTEGER;
    ALTER TABLE keys ADD COLUMN quota_limit INTEGER;
    ALTER TABLE keys ADD COLUMN quota_remaining INTEGER;
    ALTER TABLE keys ADD COLUMN quota_refill TEXT CHECK (quota_refill IN ('day', 'month'));
    ALTER TABLE keys ADD COLUMN quota_reset_at INTEGER;
    ALTER TABLE keys ADD COLUMN limits_from TEXT;

    CREATE TRIGGER keys_limits_updated
      AFTER UPDATE OF rate_limit, rate_window_ms, quota_limit, quota_refill ON keys
      BEGIN UPDATE changes SET generation = generation + 1; END;

    INSERT INTO usage_days (key_id, day, count) VALUES ('key_v1fixture', '2025-06-01', 7) ON CONFLICT (key_id, day) DO UPDATE SET count = count + 7;
    UPDATE keys SET last_used_at = 1748779200000 WHERE id = 'key_v1fixture';
    UPDATE keyscope_schema SET version = 4;
  `);
  db.close();
}

let dir: string;
const open: SqliteStore[] = [];
function store(filename = join(dir, 'keys.db'), options: { watchIntervalMs?: number; readonly?: boolean; pageCacheMiB?: number } = {}): SqliteStore {
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
    expect(() => new SqliteStore({ filename: ':memory:', pageCacheMiB: 0 })).toThrow(/options\.pageCacheMiB must be ≥ 1/);
    expect(() => new SqliteStore({ filename: ':memory:', pageCacheMiB: 2 ** 21 })).toThrow(/options\.pageCacheMiB must be ≤/);
    expect(() => new SqliteStore({ filename: ':memory:', pageCacheMiB: '64' as never })).toThrow(TypeError);
    const options = Object.freeze({ filename: ':memory:', watchIntervalMs: 100 });
    expect(() => open.push(new SqliteStore(options))).not.toThrow();
    expect(options).toEqual({ filename: ':memory:', watchIntervalMs: 100 });
  });

  it('gives SQLite a page cache of pageCacheMiB (64 MiB unless told), on read-write and read-only files alike', () => {
    const filename = join(dir, 'keys.db');
    const cacheOf = (s: SqliteStore) => (s as unknown as { db: Database.Database }).db.pragma('cache_size', { simple: true });
    expect(cacheOf(store(filename))).toBe(-64 * 1024);
    expect(cacheOf(store(filename, { pageCacheMiB: 8 }))).toBe(-8 * 1024);
    expect(cacheOf(store(filename, { readonly: true, pageCacheMiB: 3 }))).toBe(-3 * 1024);
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

/** Each read by hash, with the two statements it answers by and what it answers of a stored key. */
const READS = [
  { read: 'findKeyByHash', one: 'byHash', several: 'byHashes', of: (record: KeyRecord) => record },
  {
    read: 'findKeyForAuth',
    one: 'authByHash',
    several: 'authByHashes',
    of: ({ id, name, ownerId, level, projectId, expiresAt, revokedAt, rateLimit, quota, limitsFrom }: KeyRecord) => ({ id, name, ownerId, level, projectId, expiresAt, revokedAt, rateLimit, quota, limitsFrom }),
  },
] as const;

describe.each(READS)('$read: lookups of one turn answered together', ({ read, one: oneStatement, several: severalStatement, of }) => {
  it('answers every lookup of a turn with its own record: known, unknown, the same hash twice, and a key written in that turn', async () => {
    const s = store();
    const ks = createKeyscope({ store: s, usage: false });
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await ks.keys.create({ ownerId: 'u1', name: `k${i}`, level: 'user' }));
    const [a, b, c] = made.map(({ key }) => hashKey(key));
    const ids = made.map(({ record }) => record.id);
    const unknown = hashKey('ks_not_a_key_anyone_has');
    // The store's two lookup statements, watched: the turn must be one statement, not five.
    const sql = (s as unknown as { sql: Record<string, { get: (...args: unknown[]) => unknown; all: (...args: unknown[]) => unknown }> }).sql;
    const one = vi.spyOn(sql[oneStatement]!, 'get');
    const several = vi.spyOn(sql[severalStatement]!, 'all');
    const find = (hash: string) => s[read](hash);
    // One turn: all of these are asked for before any is answered.
    const asked = [find(a!), find(unknown), find(b!), find(a!), find(c!)];
    const late = ks.keys.create({ ownerId: 'u1', name: 'late', level: 'user' });
    const answers = await Promise.all(asked);
    expect([one.mock.calls.length, several.mock.calls.length]).toEqual([0, 1]);
    one.mockRestore();
    several.mockRestore();
    expect(answers.map((record) => record?.id ?? null)).toEqual([ids[0], null, ids[1], ids[0], ids[2]]);
    expect(answers[0]).toEqual(of((await s.getKey(ids[0]!))!));
    const { key: lateKey } = await late;
    expect((await Promise.all([find(hashKey(lateKey)), find(c!)])).map((record) => record?.name)).toEqual(['late', 'k2']);
    await ks.close();
  });

  it('answers lookups asked for just before close from the file, and rejects those asked after it', async () => {
    const s = store();
    const ks = createKeyscope({ store: s, usage: false });
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user' });
    await ks.close();
    const pending = [s[read](hashKey(key)), s[read](hashKey('ks_unknown'))];
    s.close();
    expect((await Promise.all(pending)).map((found) => found?.id ?? null)).toEqual([record.id, null]);
    await expect(s[read](hashKey(key))).rejects.toThrow(/not open/);
  });

  it('rejects every lookup of a turn when the read fails', async () => {
    const filename = join(dir, 'keys.db');
    const s = store(filename);
    const ks = createKeyscope({ store: s, usage: false });
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user' });
    await ks.close();
    // Another connection renames the table away: the next read fails, for every lookup of the turn.
    const other = new Database(filename);
    other.exec('ALTER TABLE keys RENAME TO keys_gone');
    other.close();
    const results = await Promise.allSettled([s[read](hashKey(key)), s[read](hashKey('ks_unknown'))]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
  });
});

describe('findKeyForAuth: what a cache miss reads', () => {
  /** The store's two reads by hash, watched where they reach SQLite. */
  function watchReads(s: SqliteStore) {
    const sql = (s as unknown as { sql: Record<string, { get: (...args: unknown[]) => unknown }> }).sql;
    return { narrow: vi.spyOn(sql.authByHash!, 'get'), full: vi.spyOn(sql.byHash!, 'get') };
  }

  it('is what a cache miss reads, and a findKeyByHash asked in the same turn is answered too', async () => {
    const s = store();
    const admin = createKeyscope({ store: s, usage: false });
    const [first, second] = [await admin.keys.create({ ownerId: 'u1', name: 'a', level: 'user' }), await admin.keys.create({ ownerId: 'u1', name: 'b', level: 'user' })];
    await admin.close();
    const { narrow, full } = watchReads(s);
    const ks = createKeyscope({ store: s, usage: false });
    const results = await Promise.all([ks.authenticate({ headers: { 'x-api-key': first.key }, path: '/validate' }), s.findKeyByHash(hashKey(second.key))]);
    expect(results[0].ok && results[0].auth.keyId).toBe(first.record.id);
    expect(results[1]?.id).toBe(second.record.id);
    expect([narrow.mock.calls.length, full.mock.calls.length]).toEqual([1, 1]);
    await ks.close();
  });

  // Each way of replacing findKeyByHash, here with one that refuses a key by answering "not
  // found" for it: a cache miss must ask the replacement, never read around it.
  type Blocking = (original: SqliteStore, refuse: (hash: string) => boolean) => { store: KeyStore; restore?: () => void };
  const refusing = (target: SqliteStore, refuse: (hash: string) => boolean) => async (hash: string) => (refuse(hash) ? null : FIND.call(target, hash));
  const FIND = SqliteStore.prototype.findKeyByHash;
  const ways: [string, Blocking][] = [
    ['a subclass', (original, refuse) => {
      class Refusing extends SqliteStore {
        override async findKeyByHash(hash: string): Promise<KeyRecord | null> {
          return refuse(hash) ? null : super.findKeyByHash(hash);
        }
      }
      original.close();
      const refusingStore = new Refusing({ filename: join(dir, 'keys.db') });
      open.push(refusingStore);
      return { store: refusingStore };
    }],
    ['a function set on the instance', (original, refuse) => {
      original.findKeyByHash = refusing(original, refuse);
      return { store: original };
    }],
    ['a patch of the prototype', (original, refuse) => {
      SqliteStore.prototype.findKeyByHash = async function (this: SqliteStore, hash: string) {
        return refuse(hash) ? null : FIND.call(this, hash);
      };
      return { store: original, restore: () => void (SqliteStore.prototype.findKeyByHash = FIND) };
    }],
    ['vi.spyOn on the prototype', (original, refuse) => {
      const spy = vi.spyOn(SqliteStore.prototype, 'findKeyByHash').mockImplementation(function (this: SqliteStore, hash: string) {
        return refuse(hash) ? Promise.resolve(null) : FIND.call(this, hash);
      });
      return { store: original, restore: () => spy.mockRestore() };
    }],
    ['a Proxy that binds every method to the store', (original, refuse) => ({
      store: new Proxy(original, {
        get(target, property) {
          if (property === 'findKeyByHash') return refusing(target, refuse);
          const value = Reflect.get(target, property);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
    })],
    ['a wrapper object forwarding every method, bound', (original, refuse) => {
      const wrapper: Record<string, unknown> = {};
      for (const name of Object.getOwnPropertyNames(SqliteStore.prototype)) {
        const value = (original as unknown as Record<string, unknown>)[name];
        if (name !== 'constructor' && typeof value === 'function') wrapper[name] = value.bind(original);
      }
      wrapper.findKeyByHash = refusing(original, refuse);
      return { store: wrapper as unknown as KeyStore };
    }],
    ['Object.create(store) with its own findKeyByHash', (original, refuse) => {
      const derived = Object.create(original) as SqliteStore;
      derived.findKeyByHash = refusing(original, refuse);
      return { store: derived };
    }],
  ];

  it.each(ways)('asks a findKeyByHash replaced by %s', async (_, replace) => {
    const filename = join(dir, 'keys.db');
    const admin = createKeyscope({ store: store(filename), usage: false });
    const blocked = await admin.keys.create({ ownerId: 'u1', name: 'blocked', level: 'user' });
    const allowed = await admin.keys.create({ ownerId: 'u1', name: 'allowed', level: 'user' });
    await admin.close();
    const { store: replaced, restore } = replace(store(filename), (hash) => hash === hashKey(blocked.key));
    try {
      const ks = createKeyscope({ store: replaced, usage: false });
      const statusOf = async (key: string) => {
        const result = await ks.authenticate({ headers: { 'x-api-key': key }, path: '/validate' });
        return result.ok ? 200 : result.error.status;
      };
      expect([await statusOf(blocked.key), await statusOf(allowed.key)]).toEqual([401, 200]);
      await ks.close();
    } finally {
      restore?.();
    }
  });

  it('keeps a refusal when a counting wrapper of findKeyForAuth is put on a store that is a wrapper itself', async () => {
    const filename = join(dir, 'keys.db');
    const admin = createKeyscope({ store: store(filename), usage: false });
    const blocked = await admin.keys.create({ ownerId: 'u1', name: 'blocked', level: 'user' });
    await admin.close();
    const original = store(filename);
    // A policy layer: every method bound to the store, findKeyByHash refusing one key.
    const policy: Record<string, unknown> = {};
    for (const name of Object.getOwnPropertyNames(SqliteStore.prototype)) {
      const value = (original as unknown as Record<string, unknown>)[name];
      if (name !== 'constructor' && typeof value === 'function') policy[name] = value.bind(original);
    }
    policy.findKeyByHash = async (hash: string) => (hash === hashKey(blocked.key) ? null : original.findKeyByHash(hash));
    // A metrics layer on top, marked as the docs say: the bound read it wraps has no mark to pass on.
    const wrapped = policy.findKeyForAuth as NonNullable<KeyStore['findKeyForAuth']>;
    expect(() => narrowsFindKeyByHash((hash) => wrapped(hash), wrapped.narrows)).toThrow(TypeError);
    const ks = createKeyscope({ store: policy as unknown as KeyStore, usage: false });
    const result = await ks.authenticate({ headers: { 'x-api-key': blocked.key }, path: '/validate' });
    expect(!result.ok && result.error.status).toBe(401);
    await ks.close();
  });

  it('keeps the narrower read for a wrapper that counts it and says what it narrows', async () => {
    const s = store();
    const admin = createKeyscope({ store: s, usage: false });
    const { key } = await admin.keys.create({ ownerId: 'u1', name: 'k', level: 'user' });
    await admin.close();
    const { narrow, full } = watchReads(s);
    let reads = 0;
    const read = s.findKeyForAuth.bind(s);
    const counting = (hash: string) => (reads++, read(hash));
    narrowsFindKeyByHash(counting, (s as KeyStore).findKeyForAuth!.narrows);
    s.findKeyForAuth = counting;
    const ks = createKeyscope({ store: s, usage: false });
    expect((await ks.authenticate({ headers: { 'x-api-key': key }, path: '/validate' })).ok).toBe(true);
    expect([reads, narrow.mock.calls.length, full.mock.calls.length]).toEqual([1, 1, 0]);
    await ks.close();
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
      kind: 'opaque',
      rateLimit: null,
      quota: null,
      limitsFrom: null,
    });
    expect(await s.listProjects('user_v1')).toEqual([{ id: 'proj_v1', ownerId: 'user_v1', name: 'Made by v1' }]);

    // What later versions added works on the upgraded file.
    const ks = createKeyscope({ store: s });
    expect(await ks.authenticate({ headers: { 'x-api-key': key }, path: '/sites' })).toMatchObject({
      ok: true,
      auth: { keyId: 'key_v1fixture', projectId: 'proj_v1' },
    });
    const usage = await ks.keys.usage('key_v1fixture');
    expect(usage.days).toHaveLength(1);
    expect(usage.days[0]!.count).toBe(1);
    await ks.close();
    const until = new Date(Date.now() + 60_000);
    await s.denyKey({ keyId: 'key_v1fixture', from: new Date(Date.UTC(2025, 0, 3)), until });
    expect(await s.listKeyDenials(new Date())).toEqual([{ keyId: 'key_v1fixture', from: new Date(Date.UTC(2025, 0, 3)), until }]);
    s.close();

    const after = raw(filename);
    expect(after.prepare('SELECT version FROM keyscope_schema').pluck().get()).toBe(SCHEMA_VERSION);
    after.close();
    // Opening an up-to-date file again changes nothing.
    expect(await store(filename).getKey('key_v1fixture')).not.toBeNull();
  });

  it('upgrades a file written by schema version 2: its keys become opaque, its usage stays, signed keys and denials work', async () => {
    const filename = join(dir, 'v2.db');
    versionTwoFile(filename);
    const s = store(filename);
    const key = fixtureKey();
    expect(await s.findKeyByHash(hashKey(key))).toMatchObject({ id: 'key_v1fixture', kind: 'opaque' });
    expect(await s.listKeys('user_v1')).toMatchObject([{ id: 'key_v1fixture', kind: 'opaque' }]);
    expect((await s.getUsage('key_v1fixture'))!.days).toEqual([{ day: '2025-01-02', count: 3 }]);

    const ks = createKeyscope({ store: s, usage: false });
    expect(await ks.authenticate({ headers: { 'x-api-key': key }, path: '/sites' })).toMatchObject({ ok: true, auth: { keyId: 'key_v1fixture' } });
    await ks.close();
    await s.createKey({ ...(await s.getKey('key_v1fixture'))!, id: 'key_signed', hash: hashKey('a signed token'), kind: 'signed' });
    expect((await s.getKey('key_signed'))!.kind).toBe('signed');
    const until = new Date(Date.now() + 60_000);
    await s.denyKey({ keyId: 'key_signed', from: new Date(Date.UTC(2025, 0, 3)), until });
    expect(await s.listKeyDenials(new Date())).toEqual([{ keyId: 'key_signed', from: new Date(Date.UTC(2025, 0, 3)), until }]);
    s.close();

    const after = new Database(filename);
    try {
      expect(after.prepare('SELECT version FROM keyscope_schema').pluck().get()).toBe(SCHEMA_VERSION);
      // The file itself refuses a kind it does not know, whoever writes it.
      expect(() => after.prepare("UPDATE keys SET kind = 'jwt'").run()).toThrow(/CHECK constraint failed/);
    } finally {
      after.close();
    }
  });

  it('upgrades a file written by schema version 3: its keys have no limits, then take a quota and a rate limit', async () => {
    const filename = join(dir, 'v3.db');
    versionThreeFile(filename);
    const s = store(filename);
    const key = fixtureKey();
    expect(await s.findKeyByHash(hashKey(key))).toMatchObject({ id: 'key_v1fixture', kind: 'opaque', rateLimit: null, quota: null });
    expect(await s.listKeys('user_v1')).toMatchObject([
      { id: 'key_v1fixture', rateLimit: null, quota: null },
      { id: 'key_v3signed', kind: 'signed', rateLimit: null, quota: null },
    ]);
    expect(await s.listKeyDenials(new Date())).toEqual([{ keyId: 'key_v3signed', from: new Date(Date.UTC(2025, 0, 2)), until: new Date(Date.UTC(2100, 0, 1)) }]);
    expect(await s.consumeQuota('key_v1fixture', new Date())).toBeNull();

    const ks = createKeyscope({ store: s, usage: false });
    expect(await ks.authenticate({ headers: { 'x-api-key': key }, path: '/sites' })).toMatchObject({ ok: true, auth: { keyId: 'key_v1fixture' } });
    await ks.close();

    // What version 4 added works on the upgraded file.
    const quota = { limit: 2, remaining: 2, refill: 'day' as const, resetAt: new Date(Date.UTC(2025, 5, 2)) };
    expect(await s.setKeyLimits('key_v1fixture', { rateLimit: { limit: 10, windowMs: 60_000 }, quota })).toBe(true);
    expect(await s.consumeQuota('key_v1fixture', new Date(Date.UTC(2025, 5, 1)))).toEqual({ granted: true, remaining: 1, limit: 2, refill: 'day', resetAt: quota.resetAt });
    expect(await s.getKey('key_v1fixture')).toMatchObject({ rateLimit: { limit: 10, windowMs: 60_000 }, quota: { ...quota, remaining: 1 } });
    s.close();

    const after = new Database(filename);
    try {
      expect(after.prepare('SELECT version FROM keyscope_schema').pluck().get()).toBe(SCHEMA_VERSION);
      // The file itself refuses a refill it does not know, whoever writes it.
      expect(() => after.prepare("UPDATE keys SET quota_refill = 'week'").run()).toThrow(/CHECK constraint failed/);
    } finally {
      after.close();
    }
  });

  it('upgrades a file written by schema version 4: a last use recorded then is kept, and later usage moves it forward', async () => {
    const filename = join(dir, 'v4.db');
    versionFourFile(filename);
    const s = store(filename);
    const before = new Date(1748779200000); // 2025-06-01T12:00Z, on the keys row
    expect(await s.getKey('key_v1fixture')).toMatchObject({ lastUsedAt: before });
    expect(await s.findKeyByHash(hashKey(fixtureKey()))).toMatchObject({ lastUsedAt: before });
    const days = (await s.getUsage('key_v1fixture'))!.days;
    expect(days).toContainEqual({ day: '2025-06-01', count: expect.any(Number) });

    // Usage on a later day (and an earlier use on the same day as before, which moves nothing).
    await s.recordUsage([{ keyId: 'key_v1fixture', day: '2025-06-01', count: 1, lastUsedAt: new Date(1748779200000 - 3_600_000) }]);
    expect((await s.getUsage('key_v1fixture'))!.lastUsedAt).toEqual(before);
    const later = new Date(Date.UTC(2025, 5, 3, 8));
    await s.recordUsage([{ keyId: 'key_v1fixture', day: '2025-06-03', count: 2, lastUsedAt: later }]);
    expect(await s.getUsage('key_v1fixture')).toMatchObject({ lastUsedAt: later, days: expect.arrayContaining([{ day: '2025-06-03', count: 2 }]) });
    expect((await s.listKeys('user_v1')).find((k) => k.id === 'key_v1fixture')).toMatchObject({ lastUsedAt: later });
    s.close();

    const after = raw(filename);
    try {
      expect(after.prepare('SELECT version FROM keyscope_schema').pluck().get()).toBe(SCHEMA_VERSION);
    } finally {
      after.close();
    }
  });

  it('writes usage to the usage rows only: a flush never rewrites a key\'s row', async () => {
    const filename = join(dir, 'keys.db');
    const s = store(filename);
    const ks = createKeyscope({ store: s, usage: false });
    const { record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user' });
    const at = new Date(Date.UTC(2026, 10, 30, 9));
    await s.recordUsage([{ keyId: record.id, day: '2026-11-30', count: 3, lastUsedAt: at }]);
    expect(await s.getKey(record.id)).toMatchObject({ lastUsedAt: at });
    const check = raw(filename);
    try {
      // The wide keys row is read on every cache miss: usage leaves it as it was.
      expect(check.prepare('SELECT last_used_at FROM keys WHERE id = ?').pluck().get(record.id)).toBeNull();
      expect(check.prepare('SELECT count, last_used_at FROM usage_days WHERE key_id = ?').get(record.id)).toEqual({ count: 3, last_used_at: at.getTime() });
    } finally {
      check.close();
    }
    await ks.close();
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
    expect(() => new SqliteStore({ filename })).toThrow(expect.objectContaining({ code: 'sqlite_schema_newer', name: 'SqliteStoreError' }));
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

  it('calls the listener without a key id when another connection denies a signed key, and the denial is there to read', async () => {
    const filename = join(dir, 'keys.db');
    const server = store(filename, { watchIntervalMs: 20 });
    const cli = store(filename);
    const calls: unknown[][] = [];
    server.subscribe((...args: unknown[]) => calls.push(args));
    const tokenExpiry = new Date(Date.now() + 60_000);
    await cli.denyKey({ keyId: 'key_signed', from: new Date(Date.UTC(2025, 0, 1)), until: tokenExpiry });
    expect(await until(() => calls.length > 0)).toBe(true);
    expect(calls).toEqual([[]]);
    expect(await server.listKeyDenials(new Date())).toEqual([{ keyId: 'key_signed', from: new Date(Date.UTC(2025, 0, 1)), until: tokenExpiry }]);

    // Widening the entry is a change too.
    await cli.denyKey({ keyId: 'key_signed', from: new Date(Date.UTC(2024, 0, 1)), until: tokenExpiry });
    expect(await until(() => calls.length > 1)).toBe(true);
    expect(calls).toEqual([[], []]);
  });

  it('stays quiet for another process’s usage writes, and after unsubscribing', async () => {
    const filename = join(dir, 'keys.db');
    const server = store(filename, { watchIntervalMs: 10 });
    const other = store(filename);
    const admin = createKeyscope({ store: other, usage: false });
    const { record } = await admin.keys.create({ ownerId: 'u1', name: 'quiet', level: 'user' });
    await admin.close();

    const listener = vi.fn();
    const unsubscribe = server.subscribe(listener);
    await server.recordUsage([{ keyId: record.id, day: '2025-01-01', count: 1, lastUsedAt: new Date() }]);
    await other.recordUsage([{ keyId: record.id, day: '2025-01-01', count: 3, lastUsedAt: new Date() }]);
    await new Promise((r) => setTimeout(r, 150));
    expect(listener).not.toHaveBeenCalled();
    expect((await server.getUsage(record.id))!.days).toEqual([{ day: '2025-01-01', count: 4 }]);

    unsubscribe();
    await other.setKeyExpiry(record.id, new Date(Date.UTC(2030, 0, 1)));
    await server.revokeKey(record.id, new Date());
    await new Promise((r) => setTimeout(r, 100));
    expect(listener).not.toHaveBeenCalled();
  });

  it('calls the listener when another connection sets a key’s limits, and stays quiet while it takes units of a quota', async () => {
    const filename = join(dir, 'keys.db');
    const server = store(filename, { watchIntervalMs: 10 });
    const other = store(filename);
    const admin = createKeyscope({ store: other, usage: false });
    const { record } = await admin.keys.create({ ownerId: 'u1', name: 'metered', level: 'user' });
    await admin.close();
    await other.setKeyLimits(record.id, { quota: { limit: 100, remaining: 100, refill: null, resetAt: null } });

    const listener = vi.fn();
    server.subscribe(listener);
    for (let i = 0; i < 5; i++) await other.consumeQuota(record.id, new Date());
    await server.consumeQuota(record.id, new Date());
    await new Promise((r) => setTimeout(r, 150));
    expect(listener).not.toHaveBeenCalled();
    expect((await server.getKey(record.id))!.quota!.remaining).toBe(94);

    // Any limits write is heard, even one that sets only the rate limit or changes nothing.
    for (const limits of [{ rateLimit: { limit: 5, windowMs: 1_000 } }, { quota: null }, {}]) {
      const calls = listener.mock.calls.length;
      await other.setKeyLimits(record.id, limits);
      expect(await until(() => listener.mock.calls.length > calls)).toBe(true);
      expect(listener.mock.calls.at(-1)).toEqual([]);
    }
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

describe('subscribe: writes made through this store', () => {
  it('reports each write to every listener before the write resolves, with what changed', async () => {
    const s = store(join(dir, 'keys.db'), { watchIntervalMs: 10 });
    const admin = createKeyscope({ store: store(join(dir, 'keys.db')), usage: false });
    const { record } = await admin.keys.create({ ownerId: 'u1', name: 'own', level: 'user' });
    await admin.close();
    const first: unknown[][] = [];
    const second: unknown[][] = [];
    s.subscribe((...args) => first.push(args));
    s.subscribe((...args) => second.push(args));
    await new Promise((r) => setTimeout(r, 50));
    first.length = 0;
    second.length = 0;

    // What a write reported by the time its promise exists: stores report right after commit.
    let before = 0;
    const seen = (write: () => Promise<unknown>) => {
      before = first.length;
      const promise = write();
      const reported = first.slice(before);
      return promise.then(() => reported);
    };
    expect(await seen(() => s.setKeyExpiry(record.id, new Date(Date.UTC(2030, 0, 1))))).toEqual([[{ kind: 'key', keyId: record.id }]]);
    expect(await seen(() => s.revokeKey(record.id, new Date()))).toEqual([[{ kind: 'key', keyId: record.id }]]);
    expect(await seen(() => s.addProject({ id: 'proj_a', ownerId: 'u1', name: 'A' }))).toEqual([[{ kind: 'project', projectId: 'proj_a' }]]);
    expect(await seen(() => s.addProject({ id: 'proj_a', ownerId: 'u2', name: 'A' }))).toEqual([[{ kind: 'project', projectId: 'proj_a' }]]);
    expect(await seen(() => s.createProject({ id: 'proj_b', ownerId: 'u1', name: 'B' }))).toEqual([[{ kind: 'project', projectId: 'proj_b' }]]);
    expect(await seen(() => s.removeProject('proj_b'))).toEqual([[{ kind: 'project', projectId: 'proj_b' }]]);
    const denial = { keyId: record.id, from: new Date(), until: new Date(Date.now() + 60_000) };
    expect(await seen(() => s.denyKey(denial))).toEqual([[{ kind: 'key', keyId: record.id }]]);
    // Nothing changed: nothing to report.
    expect(await seen(() => s.revokeKey('key_unknown', new Date()))).toEqual([]);
    expect(await seen(() => s.removeProject('proj_b'))).toEqual([]);
    await expect(s.createProject({ id: 'proj_a', ownerId: 'u3', name: 'A' })).rejects.toThrow();
    expect(await seen(() => s.recordUsage([{ keyId: record.id, day: '2025-01-01', count: 1, lastUsedAt: new Date() }]))).toEqual([]);
    expect(second).toEqual(first);

    // The watcher does not report our own writes again as "anything may have changed".
    const count = first.length;
    await new Promise((r) => setTimeout(r, 80));
    expect(first.length).toBe(count);
  });

  it('still reports another process’s write with no argument after its own writes', async () => {
    const filename = join(dir, 'keys.db');
    const s = store(filename, { watchIntervalMs: 10 });
    const other = store(filename);
    const calls: unknown[][] = [];
    s.subscribe((...args) => calls.push(args));
    await s.addProject({ id: 'p1', ownerId: 'u1', name: 'One' });
    await other.addProject({ id: 'p2', ownerId: 'u1', name: 'Two' });
    const end = Date.now() + 2_000;
    while (calls.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(calls).toEqual([[{ kind: 'project', projectId: 'p1' }], []]);
  });
});

describe('createProject and removeProject', () => {
  it('createProject never re-owns a project: of two connections that both saw no project, one fails', async () => {
    const filename = join(dir, 'keys.db');
    const a = store(filename);
    const b = store(filename);
    expect(await a.getProject('proj_x')).toBeNull();
    expect(await b.getProject('proj_x')).toBeNull();
    const results = await Promise.allSettled([
      a.createProject({ id: 'proj_x', ownerId: 'alice', name: 'Mine' }),
      b.createProject({ id: 'proj_x', ownerId: 'mallory', name: 'Mine now' }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const failure = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(failure.reason).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/proj_x already exists/) });
    expect(await b.getProject('proj_x')).toEqual({ id: 'proj_x', ownerId: 'alice', name: 'Mine' });
    await expect(a.createProject({ id: '', ownerId: 'u', name: 'n' })).rejects.toMatchObject({ code: 'invalid_argument' });
  });

  it('removeProject deletes the project: its owner no longer owns it, and its project keys stop working', async () => {
    const s = store(join(dir, 'keys.db'));
    await s.addProject({ id: 'proj_a', ownerId: 'u1', name: 'A' });
    await s.addProject({ id: 'proj_b', ownerId: 'u1', name: 'B' });
    const ks = createKeyscope({ store: s, usage: false });
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'p', level: 'project', projectId: 'proj_a' });
    expect(await ks.authenticate({ headers: { 'x-api-key': key }, path: '/sites' })).toMatchObject({ ok: true });
    expect(await s.removeProject('proj_a')).toBe(true);
    expect(await s.removeProject('proj_a')).toBe(false);
    expect(await s.ownsProject('u1', 'proj_a')).toBe(false);
    expect(await s.getProject('proj_a')).toBeNull();
    expect(await s.listProjects('u1')).toEqual([{ id: 'proj_b', ownerId: 'u1', name: 'B' }]);
    await ks.close();
    const fresh = createKeyscope({ store: s, usage: false });
    expect(await fresh.authenticate({ headers: { 'x-api-key': key }, path: '/sites' })).toMatchObject({ ok: false, error: { status: 403 } });
    await fresh.close();
  });
});

describe('the read transaction cache misses share', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  /** A store with one key, and that key's lookup just made: the read it opened is still held. */
  async function holding() {
    const filename = join(dir, 'keys.db');
    const s = store(filename);
    const admin = createKeyscope({ store: s, usage: false });
    const { key, record } = await admin.keys.create({ ownerId: 'u1', name: 'held', level: 'user' });
    await admin.close();
    await s.addProject({ id: 'proj_a', ownerId: 'u1', name: 'A' });
    expect((await s.findKeyForAuth(hashKey(key)))?.id).toBe(record.id);
    return { s, filename, hash: hashKey(key), id: record.id };
  }

  it('lets every write through it commit at once, seen by another connection and by its own next lookup', async () => {
    const { s, filename, hash, id } = await holding();
    const other = raw(filename);
    const row = () => other.prepare('SELECT revoked_at, expires_at, rate_limit FROM keys WHERE id = ?').get(id) as Record<string, number | null>;
    const writes: [string, () => Promise<unknown>, () => unknown][] = [
      ['revokeKey', () => s.revokeKey(id, new Date(1_000)), () => row().revoked_at],
      ['setKeyExpiry', () => s.setKeyExpiry(id, new Date(2_000)), () => row().expires_at],
      ['setKeyLimits', () => s.setKeyLimits(id, { rateLimit: { limit: 5, windowMs: 1_000 } }), () => row().rate_limit],
      ['addProject', () => s.addProject({ id: 'proj_b', ownerId: 'u1', name: 'B' }), () => other.prepare("SELECT count(*) FROM projects WHERE id = 'proj_b'").pluck().get()],
      ['denyKey', () => s.denyKey({ keyId: id, from: new Date(0), until: new Date(4_102_444_800_000) }), () => other.prepare('SELECT count(*) FROM key_denials').pluck().get()],
      ['recordUsage', () => s.recordUsage([{ keyId: id, day: '2026-01-02', count: 3, lastUsedAt: new Date(3_000) }]), () => other.prepare('SELECT count FROM usage_days').pluck().get()],
    ];
    const seen: Record<string, unknown> = {};
    for (const [name, write, read] of writes) {
      // A lookup first, each time, so that a read is held when the write begins.
      await s.findKeyForAuth(hash);
      await write();
      seen[name] = read();
    }
    expect(seen).toEqual({ revokeKey: 1_000, setKeyExpiry: 2_000, setKeyLimits: 5, addProject: 1, denyKey: 1, recordUsage: 3 });
    const record = await s.findKeyForAuth(hash);
    expect([record?.revokedAt?.getTime(), record?.expiresAt?.getTime(), record?.rateLimit?.limit]).toEqual([1_000, 2_000, 5]);
    other.close();
  });

  it('takes a unit of a quota durably with a read held', async () => {
    const { s, filename, hash, id } = await holding();
    await s.setKeyLimits(id, { quota: { limit: 10, remaining: 10, refill: null, resetAt: null } });
    await s.findKeyForAuth(hash);
    expect(await s.consumeQuota(id, new Date())).toMatchObject({ granted: true, remaining: 9 });
    const other = raw(filename);
    expect(other.prepare('SELECT quota_remaining FROM keys WHERE id = ?').pluck().get(id)).toBe(9);
    other.close();
  });

  it('sees another connection\'s change within a few ms, however many lookups keep coming', async () => {
    const { s, filename, hash, id } = await holding();
    const other = new Database(filename);
    other.prepare("UPDATE keys SET name = 'renamed' WHERE id = ?").run(id);
    const started = Date.now();
    let name: string | undefined;
    while (Date.now() - started < 1_000) {
      name = (await s.findKeyForAuth(hash))?.name;
      if (name === 'renamed') break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(name).toBe('renamed');
    expect(Date.now() - started).toBeLessThan(200);
    other.close();
  });

  it('lets the watcher report another connection\'s revocation while lookups keep coming', async () => {
    const { s, filename, hash, id } = await holding();
    const calls: unknown[][] = [];
    s.subscribe((...args: unknown[]) => calls.push(args));
    const other = new Database(filename);
    other.prepare('UPDATE keys SET revoked_at = 1 WHERE id = ?').run(id);
    const started = Date.now();
    while (calls.length === 0 && Date.now() - started < 2_000) {
      await s.findKeyForAuth(hash);
      await sleep(1);
    }
    expect(calls).toEqual([[]]);
    other.close();
  });

  it('ends when the file closes: nothing is left open', async () => {
    const { s, filename } = await holding();
    s.close();
    const other = new Database(filename);
    // A checkpoint that must wait for no reader finds none (and the file was closed cleanly).
    expect(other.pragma('wal_checkpoint(TRUNCATE)')).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
    other.close();
  });
});

describe('usage writes while another process holds the write lock', () => {
  function holdLock(filename: string, forMs?: number) {
    const child = spawn(process.execPath, [HOLD_LOCK, filename, ...(forMs === undefined ? [] : [String(forMs)])], { stdio: ['pipe', 'pipe', 'inherit'] });
    const locked = new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => chunk.includes('locked') && resolve());
      child.on('exit', (code) => reject(new Error(`lock holder exited with ${code}`)));
    });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    return { locked, release: () => (child.stdin!.end(), exited) };
  }

  it('a usage batch fails fast (SQLITE_BUSY in milliseconds) and writes nothing; admin writes still wait', async () => {
    const filename = join(dir, 'keys.db');
    const s = store(filename);
    const ks = createKeyscope({ store: s, usage: false });
    const { record } = await ks.keys.create({ ownerId: 'u1', name: 'busy', level: 'user' });
    const other = new Database(filename);
    other.exec('BEGIN IMMEDIATE');
    const entry = { keyId: record.id, day: '2026-01-01', count: 2, lastUsedAt: new Date() };
    const started = performance.now();
    const write = s.recordUsage([entry]);
    const blocked = performance.now() - started;
    await expect(write).rejects.toMatchObject({ code: expect.stringMatching(/^SQLITE_BUSY/) });
    expect(blocked).toBeLessThan(100);
    other.exec('COMMIT');
    expect((await s.getUsage(record.id))!.days).toEqual([]);
    await s.recordUsage([entry]);
    expect((await s.getUsage(record.id))!.days).toEqual([{ day: '2026-01-01', count: 2 }]);

    other.close();
    // An admin write waits out another process's short lock rather than failing.
    const lock = holdLock(filename, 300);
    await lock.locked;
    await expect(s.revokeKey(record.id, new Date())).resolves.toBe(true);
    await lock.release();
    await ks.close();
  });

  it('a running keyscope never stalls its event loop for the held lock, and the counts arrive once after release', async () => {
    const filename = join(dir, 'keys.db');
    const s = store(filename);
    const ks = createKeyscope({ store: s, usage: { flushIntervalMs: 20 } });
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'counted', level: 'user' });
    const check = () => ks.authenticate({ headers: { 'x-api-key': key }, path: '/validate' });
    expect(await check()).toMatchObject({ ok: true });

    const lock = holdLock(filename);
    await lock.locked;
    // Measure the event loop's worst stall while the lock is held and flushes keep failing.
    let last = performance.now();
    let worst = 0;
    const ticker = setInterval(() => {
      const t = performance.now();
      worst = Math.max(worst, t - last);
      last = t;
    }, 5);
    let served = 1;
    const until = Date.now() + 600;
    while (Date.now() < until) {
      expect(await check()).toMatchObject({ ok: true });
      served++;
      await new Promise((r) => setTimeout(r, 15));
    }
    clearInterval(ticker);
    expect(worst).toBeLessThan(100);
    await lock.release();

    const end = Date.now() + 3_000;
    let total = 0;
    while (Date.now() < end) {
      total = (await s.getUsage(record.id))!.days.reduce((sum, d) => sum + d.count, 0);
      if (total >= served) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 100));
    await ks.close();
    expect((await s.getUsage(record.id))!.days.reduce((sum, d) => sum + d.count, 0)).toBe(served);
  });
});

describe('read-only opening and files that are not keyscope databases', () => {
  function files() {
    return readdirSync(dir).sort();
  }
  function foreign(name = 'other.db') {
    const filename = join(dir, name);
    const db = new Database(filename);
    db.exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices (total) VALUES (9.5)");
    db.close();
    return { filename, bytes: readFileSync(filename) };
  }

  it('refuses a missing file read-only, creating nothing', () => {
    const filename = join(dir, 'missing.db');
    expect(() => new SqliteStore({ filename, readonly: true })).toThrow(expect.objectContaining({ code: 'sqlite_file_missing' }));
    expect(files()).toEqual([]);
  });

  it('refuses a foreign SQLite file read-only or read-write, leaving it byte-identical with no -wal, -shm or journal', () => {
    const { filename, bytes } = foreign();
    for (const readonly of [true, false]) {
      expect(() => new SqliteStore({ filename, readonly })).toThrow(expect.objectContaining({ code: 'sqlite_not_keyscope', message: expect.stringMatching(/not a keyscope database/) }));
      expect(readFileSync(filename).equals(bytes)).toBe(true);
      expect(files()).toEqual(['other.db']);
    }
  });

  it('refuses a file that is not SQLite at all, and an empty file read-only; writes into an empty file', () => {
    const text = join(dir, 'notes.db');
    writeFileSync(text, 'not a database '.repeat(40));
    for (const readonly of [true, false]) {
      expect(() => new SqliteStore({ filename: text, readonly })).toThrow(expect.objectContaining({ code: 'sqlite_not_keyscope' }));
    }
    expect(readFileSync(text, 'utf8')).toBe('not a database '.repeat(40));
    const empty = join(dir, 'empty.db');
    writeFileSync(empty, '');
    expect(() => new SqliteStore({ filename: empty, readonly: true })).toThrow(expect.objectContaining({ code: 'sqlite_not_keyscope' }));
    expect(statSync(empty).size).toBe(0);
    expect(files()).toEqual(['empty.db', 'notes.db']);
    store(empty);
    expect(statSync(empty).size).toBeGreaterThan(0);
  });

  it('reads a keyscope file read-only without writing to it, and refuses writes', async () => {
    const filename = join(dir, 'keys.db');
    const writer = store(filename);
    await writer.addProject({ id: 'proj_a', ownerId: 'u1', name: 'A' });
    writer.close();
    const bytes = readFileSync(filename);
    const reader = store(filename, { readonly: true });
    expect(await reader.listProjects('u1')).toEqual([{ id: 'proj_a', ownerId: 'u1', name: 'A' }]);
    await expect(reader.addProject({ id: 'proj_b', ownerId: 'u1', name: 'B' })).rejects.toThrow(/readonly/);
    reader.close();
    expect(readFileSync(filename).equals(bytes)).toBe(true);
  });

  it('does not migrate an older schema read-only: it says how to upgrade and changes nothing', () => {
    const filename = join(dir, 'old.db');
    copyFileSync(FIXTURE_V1, filename);
    const bytes = readFileSync(filename);
    expect(() => new SqliteStore({ filename, readonly: true })).toThrow(expect.objectContaining({ code: 'sqlite_schema_older', message: expect.stringMatching(/version 1.*upgrade/) }));
    expect(readFileSync(filename).equals(bytes)).toBe(true);

    const v2 = join(dir, 'v2.db');
    versionTwoFile(v2);
    const v2bytes = readFileSync(v2);
    expect(() => new SqliteStore({ filename: v2, readonly: true })).toThrow(
      expect.objectContaining({ code: 'sqlite_schema_older', message: expect.stringMatching(new RegExp(`version 2, older than version ${SCHEMA_VERSION}`)) }),
    );
    expect(readFileSync(v2).equals(v2bytes)).toBe(true);

    const v3 = join(dir, 'v3.db');
    versionThreeFile(v3);
    const v3bytes = readFileSync(v3);
    expect(() => new SqliteStore({ filename: v3, readonly: true })).toThrow(
      expect.objectContaining({ code: 'sqlite_schema_older', message: expect.stringMatching(new RegExp(`version 3, older than version ${SCHEMA_VERSION}`)) }),
    );
    expect(readFileSync(v3).equals(v3bytes)).toBe(true);
  });
});

describe('file permissions', () => {
  const mode = (file: string) => statSync(file).mode & 0o777;

  it('creates the database, its -wal and its -shm readable by the owner only', async () => {
    const filename = join(dir, 'keys.db');
    const s = store(filename);
    await s.addProject({ id: 'proj_a', ownerId: 'u1', name: 'A' });
    expect(existsSync(`${filename}-wal`)).toBe(true);
    expect(existsSync(`${filename}-shm`)).toBe(true);
    expect([filename, `${filename}-wal`, `${filename}-shm`].map(mode)).toEqual([0o600, 0o600, 0o600]);
  });

  it('tightens a leftover -wal or -shm that is looser than its database', async () => {
    const filename = join(dir, 'keys.db');
    store(filename).close();
    const held = new Database(filename);
    held.pragma('journal_mode = WAL');
    held.exec('CREATE TABLE IF NOT EXISTS pad (x)');
    // A crash leaves the -wal and -shm behind; say another tool made them world-readable.
    for (const suffix of ['-wal', '-shm']) {
      chmodSync(`${filename}${suffix}`, 0o644);
    }
    const s = store(filename);
    await s.addProject({ id: 'proj_a', ownerId: 'u1', name: 'A' });
    held.close();
    expect([filename, `${filename}-wal`, `${filename}-shm`].filter(existsSync).map(mode)).toEqual(
      [filename, `${filename}-wal`, `${filename}-shm`].filter(existsSync).map(() => 0o600),
    );
  });
});
