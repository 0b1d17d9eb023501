import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeEach } from 'vitest';
import type { KeyRecord } from '@keyscope/core';
import { migrate, PostgresStore } from '@keyscope/postgres';

/**
 * The PostgreSQL the tests run on. A missing server fails the tests (connection refused); they
 * never skip: CI must not go green without having run them.
 */
export const DATABASE_URL = process.env.KEYSCOPE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let admin: pg.Pool | undefined;
/** A small pool for the tests' own SQL (the "app" or "another process"), never a store's. */
export function adminPool(): pg.Pool {
  if (!admin) {
    admin = new pg.Pool({ connectionString: DATABASE_URL, max: 4, application_name: 'keyscope-test-admin' });
    admin.on('error', () => {});
  }
  return admin;
}

/** Run SQL as another connection would (the app, or a psql session). */
export async function sql<R extends pg.QueryResultRow = any>(text: string, values: unknown[] = []): Promise<R[]> {
  return (await adminPool().query<R>(text, values)).rows;
}

/** A new schema name, unique to this run: tests never share tables. */
export function schemaName(prefix = 'ks_test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** A fresh, migrated schema; drop it with {@link dropSchema}. */
export async function migratedSchema(): Promise<string> {
  const schema = schemaName();
  await migrate({ connectionString: DATABASE_URL, schema });
  return schema;
}

export async function dropSchema(schema: string): Promise<void> {
  await sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** Wait until `check` is true, polling; fails after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** End the tests' own pool (call from afterAll). */
export async function endAdmin(): Promise<void> {
  await admin?.end();
  admin = undefined;
}

type StoreOptions = Partial<ConstructorParameters<typeof PostgresStore>[0]>;

/**
 * A freshly migrated schema for every test of the file, and stores opened on it: closed, and the
 * schema dropped, after each test.
 */
export function migratedSchemaPerTest(): { schema(): string; open(options?: StoreOptions): PostgresStore } {
  let current = '';
  const stores: PostgresStore[] = [];
  beforeEach(async () => {
    current = await migratedSchema();
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await dropSchema(current);
  });
  afterAll(endAdmin);
  return {
    schema: () => current,
    open(options = {}) {
      const store = new PostgresStore({ ...(options.pool ? {} : { connectionString: DATABASE_URL }), schema: current, ...options });
      stores.push(store);
      return store;
    },
  };
}

/** Every data method of a store, with harmless arguments: for tests that expect them all to fail alike. */
export function everyStoreCall(store: PostgresStore, record: KeyRecord): [string, () => Promise<unknown>][] {
  return [
    ['findKeyByHash', () => store.findKeyByHash(record.hash)],
    ['getKey', () => store.getKey(record.id)],
    ['createKey', () => store.createKey(record)],
    ['listKeys', () => store.listKeys('u')],
    ['listAllKeys', () => store.listAllKeys()],
    ['revokeKey', () => store.revokeKey(record.id, new Date())],
    ['setKeyExpiry', () => store.setKeyExpiry(record.id, new Date())],
    ['denyKey', () => store.denyKey({ keyId: record.id, from: new Date(), until: new Date(Date.now() + 60_000) })],
    ['listKeyDenials', () => store.listKeyDenials(new Date())],
    ['recordUsage', () => store.recordUsage([{ keyId: record.id, day: '2025-01-01', count: 1, lastUsedAt: new Date() }])],
    ['getUsage', () => store.getUsage(record.id)],
    ['ownsProject', () => store.ownsProject('u', 'p')],
    ['listProjects', () => store.listProjects('u')],
    ['addProject', () => store.addProject({ id: 'p', ownerId: 'u', name: 'P' })],
    ['createProject', () => store.createProject({ id: 'p', ownerId: 'u', name: 'P' })],
    ['removeProject', () => store.removeProject('p')],
    ['getProject', () => store.getProject('p')],
  ];
}
