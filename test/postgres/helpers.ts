import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '@keyscope/postgres';

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
