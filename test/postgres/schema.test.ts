import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createKeyscope } from '@keyscope/core';
import { migrate, PostgresStore, SCHEMA_VERSION } from '@keyscope/postgres';
import { keyRecord } from '../stores/store-conformance.js';
import { adminPool, DATABASE_URL, dropSchema, endAdmin, migratedSchema, schemaName, sql, everyStoreCall } from './helpers.js';
import { versionOneSchema } from './version-one.js';

const schemas: string[] = [];
const stores: PostgresStore[] = [];
function fresh(): string {
  const schema = schemaName();
  schemas.push(schema);
  return schema;
}
function open(schema: string, options: Partial<ConstructorParameters<typeof PostgresStore>[0]> = {}): PostgresStore {
  const store = new PostgresStore({ connectionString: DATABASE_URL, schema, ...options });
  stores.push(store);
  return store;
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const schema of schemas.splice(0)) await dropSchema(schema);
});
afterAll(endAdmin);

describe('options', () => {
  it('rejects bad options with errors naming the option, and leaves the options alone', () => {
    expect(() => new PostgresStore(undefined as never)).toThrow(TypeError);
    expect(() => new PostgresStore({})).toThrow(/connectionString or options\.pool/);
    expect(() => new PostgresStore({ connectionString: DATABASE_URL, pool: adminPool() })).toThrow(/one of them/);
    expect(() => new PostgresStore({ connectionString: '' })).toThrow(/options\.connectionString/);
    expect(() => new PostgresStore({ connectionString: DATABASE_URL, schema: 'Bad-Name' })).toThrow(/options\.schema/);
    expect(() => new PostgresStore({ connectionString: DATABASE_URL, schema: 'x; DROP TABLE y' })).toThrow(TypeError);
    expect(() => new PostgresStore({ connectionString: DATABASE_URL, connectionTimeoutMs: 0 })).toThrow(RangeError);
    expect(() => new PostgresStore({ connectionString: DATABASE_URL, queryTimeoutMs: 1.5 })).toThrow(/options\.queryTimeoutMs/);
    expect(() => new PostgresStore({ connectionString: DATABASE_URL, projects: { owns: 'SELECT 1' } as never })).toThrow(/options\.projects\.list/);
    const options = Object.freeze({ connectionString: DATABASE_URL, schema: 'frozen_opts', projects: Object.freeze({ owns: 'SELECT 1', list: 'SELECT 1' }) });
    expect(() => stores.push(new PostgresStore(options))).not.toThrow();
    expect(options).toEqual({ connectionString: DATABASE_URL, schema: 'frozen_opts', projects: { owns: 'SELECT 1', list: 'SELECT 1' } });
  });

  it('never ends a pool it did not create', async () => {
    const schema = await migratedSchema();
    schemas.push(schema);
    const pool = adminPool();
    const store = new PostgresStore({ pool, schema });
    await store.addProject({ id: 'p', ownerId: 'u', name: 'P' });
    await store.close();
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});

describe('migrations', () => {
  it('never migrates silently: on an unmigrated schema every method rejects with postgres_schema_missing, then works once migrated', async () => {
    const schema = fresh();
    const store = open(schema);
    const record = keyRecord();
    const calls: [string, () => Promise<unknown>][] = [['ready', () => store.ready()], ...everyStoreCall(store, record)];
    for (const [name, call] of calls) {
      await expect(call(), name).rejects.toMatchObject({ name: 'PostgresStoreError', code: 'postgres_schema_missing', message: expect.stringMatching(/keyscope db migrate/) });
    }
    // Nothing was created by trying.
    expect(await sql('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).toEqual([]);

    expect(await migrate({ connectionString: DATABASE_URL, schema })).toEqual({ schema, from: 0, to: SCHEMA_VERSION });
    await store.createKey(record);
    expect(await store.getKey(record.id)).toMatchObject({ id: record.id });
  });

  it('upgrades a version 1 schema only through migrate(): until then every call says postgres_schema_older; then its keys, projects and usage are there, as opaque keys', async () => {
    const schema = fresh();
    await versionOneSchema(schema);
    const { key, ...record } = keyRecord({ ownerId: 'user_v1', level: 'project', projectId: 'proj_v1', lastUsedAt: new Date(Date.UTC(2025, 0, 2, 0, 0, 0, 5)) });
    await sql(`INSERT INTO "${schema}".projects (id, owner_id, name) VALUES ('proj_v1', 'user_v1', 'Made by v1')`);
    await sql(
      `INSERT INTO "${schema}".keys (id, name, owner_id, level, project_id, hash, start, created_at, expires_at, revoked_at, last_used_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9)`,
      [record.id, record.name, record.ownerId, record.level, record.projectId, record.hash, record.start, record.createdAt, record.lastUsedAt],
    );
    await sql(`INSERT INTO "${schema}".usage (key_id, day, count) VALUES ($1, '2025-01-02', 3)`, [record.id]);

    const store = open(schema);
    const calls: [string, () => Promise<unknown>][] = [['ready', () => store.ready()], ...everyStoreCall(store, record)];
    for (const [name, call] of calls) {
      await expect(call(), name).rejects.toMatchObject({
        code: 'postgres_schema_older',
        message: expect.stringMatching(new RegExp(`version 1, older than version ${SCHEMA_VERSION}: .*keyscope db migrate`)),
      });
    }

    expect(await migrate({ connectionString: DATABASE_URL, schema })).toEqual({ schema, from: 1, to: SCHEMA_VERSION });
    expect(await sql(`SELECT version FROM "${schema}".keyscope_schema`)).toEqual([{ version: SCHEMA_VERSION }]);
    expect(await store.findKeyByHash(record.hash)).toEqual({ ...record, kind: 'opaque' });
    expect(await store.listKeys('user_v1')).toEqual([{ ...record, kind: 'opaque' }]);
    expect((await store.getUsage(record.id))!.days).toEqual([{ day: '2025-01-02', count: 3 }]);
    const ks = createKeyscope({ store, usage: false });
    try {
      expect(await ks.authenticate({ headers: { 'x-api-key': key }, path: '/sites' })).toMatchObject({ ok: true, auth: { keyId: record.id, projectId: 'proj_v1' } });
    } finally {
      await ks.close();
    }

    // What version 2 added works on the upgraded schema.
    const { key: _signed, ...signed } = keyRecord({ ownerId: 'user_v1', kind: 'signed' });
    await store.createKey(signed);
    expect((await store.getKey(signed.id))!.kind).toBe('signed');
    const denial = { keyId: signed.id, from: new Date(Date.UTC(2025, 0, 3)), until: new Date(Date.now() + 60_000) };
    await store.denyKey(denial);
    expect(await store.listKeyDenials(new Date())).toEqual([denial]);
    // The database itself refuses a kind it does not know, whoever writes it.
    await expect(sql(`UPDATE "${schema}".keys SET kind = 'jwt' WHERE id = $1`, [record.id])).rejects.toMatchObject({ code: '23514' });
  });

  it('refuses a schema a newer release migrated, with postgres_schema_newer, from the store and from migrate()', async () => {
    const schema = fresh();
    await migrate({ connectionString: DATABASE_URL, schema });
    await sql(`UPDATE "${schema}".keyscope_schema SET version = $1`, [SCHEMA_VERSION + 1]);
    const store = open(schema);
    await expect(store.listAllKeys()).rejects.toMatchObject({ code: 'postgres_schema_newer', message: expect.stringMatching(new RegExp(`version ${SCHEMA_VERSION + 1}, newer`)) });
    await expect(migrate({ connectionString: DATABASE_URL, schema })).rejects.toMatchObject({ code: 'postgres_schema_newer' });
    expect(await sql(`SELECT version FROM "${schema}".keyscope_schema`)).toEqual([{ version: SCHEMA_VERSION + 1 }]);
  });

  it('will not move into a schema of something else (postgres_not_keyscope), and leaves it as it was', async () => {
    const schema = fresh();
    await sql(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".invoices (id int)`);
    await expect(migrate({ connectionString: DATABASE_URL, schema })).rejects.toMatchObject({ code: 'postgres_not_keyscope', message: expect.stringMatching(/invoices/) });
    expect((await sql('SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = $1', [schema])).map((r) => r.relname)).toEqual(['invoices']);
  });

  it('migrates once when two migrations run at once, and a second run changes nothing', async () => {
    const schema = fresh();
    const results = await Promise.all([
      migrate({ connectionString: DATABASE_URL, schema }),
      migrate({ connectionString: DATABASE_URL, schema }),
      open(schema).migrate(),
    ]);
    expect(results.map((r) => r.from).sort()).toEqual([0, SCHEMA_VERSION, SCHEMA_VERSION]);
    expect(results.every((r) => r.to === SCHEMA_VERSION)).toBe(true);
    expect(await migrate({ connectionString: DATABASE_URL, schema })).toEqual({ schema, from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    expect(await sql(`SELECT version FROM "${schema}".keyscope_schema`)).toEqual([{ version: SCHEMA_VERSION }]);
  });

  it('takes the advisory lock: a migration waits while another session holds it', async () => {
    const schema = fresh();
    const holder = await adminPool().connect();
    try {
      await holder.query('BEGIN');
      await holder.query("SELECT pg_advisory_xact_lock(hashtext('keyscope.migrate'), hashtext($1))", [schema]);
      let done = false;
      const running = migrate({ connectionString: DATABASE_URL, schema }).then((r) => ((done = true), r));
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(done).toBe(false);
      await holder.query('COMMIT');
      expect(await running).toMatchObject({ from: 0 });
    } finally {
      holder.release();
    }
  });

  it('creates keys with a unique index on hash, used by the lookup, and usage keyed by key and UTC day', async () => {
    const schema = await migratedSchema();
    schemas.push(schema);
    const indexes = await sql('SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1', [schema]);
    expect(indexes.find((i) => i.indexname === 'keys_hash')?.indexdef).toMatch(/CREATE UNIQUE INDEX keys_hash ON .*keys USING btree \(hash\)/);
    expect(indexes.find((i) => i.indexname === 'usage_pkey')?.indexdef).toMatch(/\(key_id, day\)/);
    const client = await adminPool().connect();
    try {
      await client.query('SET enable_seqscan = off');
      const plan = await client.query(`EXPLAIN SELECT * FROM "${schema}".keys WHERE hash = 'x'`);
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/Index Scan using keys_hash/);
    } finally {
      await client.query('RESET enable_seqscan');
      client.release();
    }
  });

  it('stores no plaintext key: only its hash and start', async () => {
    const schema = await migratedSchema();
    schemas.push(schema);
    const store = open(schema);
    const record = keyRecord();
    const { key, ...rest } = record;
    await store.createKey(rest);
    const dump = JSON.stringify(await sql(`SELECT * FROM "${schema}".keys`));
    expect(dump).toContain(record.hash);
    expect(dump).not.toContain(key);
    expect(dump).not.toContain(key.slice(key.indexOf('_') + 1, key.indexOf('_') + 21));
  });

  it('keeps the latest storable instant exactly', async () => {
    const schema = await migratedSchema();
    schemas.push(schema);
    const store = open(schema);
    const { key: _key, ...record } = keyRecord({ expiresAt: new Date(8.64e15), createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, 1)) });
    await store.createKey(record);
    expect(await store.getKey(record.id)).toEqual(record);
  });
});
