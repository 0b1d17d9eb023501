import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { StoreChange } from '@keyscope/core';
import { PostgresStore, SCHEMA_VERSION } from '@keyscope/postgres';
import { DATABASE_URL, dropSchema, endAdmin, schemaName, sql, until } from '../postgres/helpers.js';
import { assertBuilt, cliSession } from './helpers.js';

const PG_CONFIG = fileURLToPath(new URL('./fixtures/config/postgres.config.mjs', import.meta.url));

let dir: string;
let schema: string;
const { cli, json, fails } = cliSession(() => ({ cwd: dir, env: {} }));
/** The CLI on this test's schema, through DATABASE_URL. */
const pg = (args: string[]) => [...args, '--schema', schema];
const viaEnv = { env: { DATABASE_URL } };

beforeAll(() => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'keyscope-cli-pg-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await endAdmin();
});
beforeEach(() => {
  schema = schemaName('ks_cli');
});
afterEach(async () => {
  await dropSchema(schema);
});

describe('keyscope db migrate', () => {
  it('creates the schema with --database-url, then says it is up to date; --json prints { schema, from, to }', async () => {
    const first = await cli(['db', 'migrate', '--database-url', DATABASE_URL, '--schema', schema]);
    expect(first).toMatchObject({ code: 0, stderr: '', stdout: `Migrated schema ${schema} from version 0 to ${SCHEMA_VERSION}.\n` });
    expect(await json(['db', 'migrate', '--schema', schema], viaEnv)).toEqual({ schema, from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    const again = await cli(['db', 'migrate', '--schema', schema], viaEnv);
    expect(again.stdout).toBe(`Schema ${schema} is up to date (version ${SCHEMA_VERSION}).\n`);
    expect(await sql(`SELECT version FROM "${schema}".keyscope_schema`)).toEqual([{ version: SCHEMA_VERSION }]);
  });

  it('migrates once when run twice at once', async () => {
    const runs = await Promise.all([0, 1, 2].map(() => json(['db', 'migrate', '--schema', schema], viaEnv)));
    expect(runs.map((r) => r.from).sort()).toEqual([0, SCHEMA_VERSION, SCHEMA_VERSION]);
  });

  it('migrates the store of a config', async () => {
    const env = { APP_DATABASE_URL: DATABASE_URL, APP_KEYSCOPE_SCHEMA: schema };
    expect(await json(['db', 'migrate', '--config', PG_CONFIG], { env })).toEqual({ schema, from: 0, to: SCHEMA_VERSION });
    const created = await json(['keys', 'create', '--config', PG_CONFIG, '--owner', 'u1', '--name', 'ci', '--level', 'user'], { env });
    expect(created.key).toMatch(/^acme_/);
  });

  it('refuses a newer schema, a schema of something else, SQLite and no database, with exit 2', async () => {
    await json(['db', 'migrate', '--schema', schema], viaEnv);
    await sql(`UPDATE "${schema}".keyscope_schema SET version = 99`);
    expect(await fails(2, ['db', 'migrate', '--schema', schema], viaEnv)).toMatch(/version 99, newer/);
    expect(await fails(2, pg(['keys', 'list', '--all']), viaEnv)).toMatch(/version 99, newer/);
    await dropSchema(schema);
    await sql(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".orders (id int)`);
    expect(await fails(2, ['db', 'migrate', '--schema', schema], viaEnv)).toMatch(/holds other tables \(orders\)/);
    expect(await fails(2, ['db', 'migrate', '--db', join(dir, 'x.db')])).toMatch(/db migrate is for PostgreSQL/);
    expect(await fails(2, ['db', 'migrate'])).toMatch(/PostgreSQL/);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('every command on PostgreSQL', () => {
  it('never migrates silently: on an unmigrated database each command exits 2 naming keyscope db migrate, creating nothing', async () => {
    for (const args of [
      ['projects', 'add', '--owner', 'u1', '--name', 'A'],
      ['projects', 'list', '--owner', 'u1'],
      ['keys', 'create', '--owner', 'u1', '--name', 'ci', '--level', 'user'],
      ['keys', 'list', '--all'],
      ['keys', 'revoke', 'key_x'],
    ]) {
      expect(await fails(2, pg(args), viaEnv), args.join(' ')).toMatch(/keyscope db migrate --database-url <url> --schema ks_cli_/);
    }
    expect(await sql('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).toEqual([]);
  });

  it('issues, lists, verifies, rotates and revokes keys, and a running server hears the revocation through NOTIFY', async () => {
    await json(['db', 'migrate', '--database-url', DATABASE_URL, '--schema', schema]);
    await json(pg(['projects', 'add', '--owner', 'u1', '--name', 'Alpha', '--id', 'proj_a']), viaEnv);
    expect(await fails(2, pg(['projects', 'add', '--owner', 'u2', '--name', 'Taken', '--id', 'proj_a']), viaEnv)).toMatch(/proj_a already exists/);
    expect(await json(pg(['projects', 'list', '--owner', 'u1']), viaEnv)).toEqual([{ id: 'proj_a', ownerId: 'u1', name: 'Alpha' }]);
    const created = await json(pg(['keys', 'create', '--owner', 'u1', '--name', 'ci', '--level', 'project', '--project', 'proj_a']), viaEnv);
    const verified = await json(pg(['keys', 'verify', '--path', '/sites']), { env: { DATABASE_URL, KEYSCOPE_API_KEY: created.key } });
    expect(verified).toMatchObject({ ok: true, auth: { keyId: created.record.id, projectId: 'proj_a' } });

    // A server on the same database (another process's view), subscribed as createKeyscope does.
    const server = new PostgresStore({ connectionString: DATABASE_URL, schema });
    const heard: (StoreChange | undefined)[] = [];
    const unsubscribe = server.subscribe((change) => heard.push(change));
    try {
      await until(async () => (await sql("SELECT 1 FROM pg_stat_activity WHERE query = $1", [`LISTEN "keyscope:${schema}"`])).length > 0, 5_000, 'the server listening');
      const rotated = await json(pg(['keys', 'rotate', created.record.id, '--grace', '1h']), { env: { DATABASE_URL } });
      expect(rotated.record).toMatchObject({ name: 'ci', projectId: 'proj_a' });
      const revoked = await json(['keys', 'revoke', rotated.record.id, '--database-url', DATABASE_URL, '--schema', schema]);
      expect(revoked.status).toBe('revoked');
      await until(() => heard.length >= 2, 2_000, 'the CLI’s changes to reach the server');
      expect(heard).toEqual([
        { kind: 'key', keyId: created.record.id },
        { kind: 'key', keyId: rotated.record.id },
      ]);
      expect((await server.getKey(rotated.record.id))!.revokedAt).not.toBeNull();
    } finally {
      unsubscribe();
      await server.close();
    }
    const listed = await json(pg(['keys', 'list', '--all']), viaEnv);
    expect(listed.map((k: { status: string }) => k.status)).toEqual(['expiring', 'revoked']); // the old key is in its hour of grace
    const usage = await json(pg(['keys', 'usage', created.record.id]), viaEnv);
    expect(usage).toMatchObject({ keyId: created.record.id, total: 0 });
    // The CLI left no connection behind.
    await until(async () => (await sql("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'keyscope%' AND query LIKE $1", [`%${schema}%`])).length === 0, 3_000, 'no connection left');
  });

  it('refuses --db beside --database-url, both KEYSCOPE_DB and DATABASE_URL, --schema with SQLite, and --database-url beside a config', async () => {
    const db = join(dir, 'k.db');
    expect(await fails(2, ['keys', 'list', '--all', '--db', db, '--database-url', DATABASE_URL])).toMatch(/--db \(SQLite\) and --database-url \(PostgreSQL\)/);
    expect(await fails(2, ['keys', 'list', '--all'], { env: { DATABASE_URL, KEYSCOPE_DB: db } })).toMatch(/both KEYSCOPE_DB .* and DATABASE_URL/);
    expect(await fails(2, ['keys', 'list', '--all', '--db', db, '--schema', 'x'])).toMatch(/--schema is for PostgreSQL/);
    expect(await fails(2, ['keys', 'list', '--all', '--config', PG_CONFIG, '--database-url', DATABASE_URL])).toMatch(/--database-url cannot be used with a config/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('takes --db over DATABASE_URL from the environment (a flag beats a variable)', async () => {
    const db = join(dir, 'flag.db');
    try {
      expect(await json(['projects', 'add', '--owner', 'u1', '--name', 'A', '--id', 'p', '--db', db], viaEnv)).toEqual({ id: 'p', ownerId: 'u1', name: 'A' });
      expect(readdirSync(dir)).toEqual(['flag.db']);
    } finally {
      rmSync(db, { force: true });
    }
  });

  it('fails with exit 1 and the host, never the password, when the server cannot be reached; a long password is not taken for a key', async () => {
    const password = 'Zq8xVw3LmN5pR7tY2uK4sD6fG9hJ1aB0cE';
    const stderr = await fails(1, ['keys', 'list', '--all', '--database-url', `postgres://app:${password}@127.0.0.1:1/keys`]);
    expect(stderr).toMatch(/cannot use PostgreSQL at postgres:\/\/127\.0\.0\.1:1\/keys: .*ECONNREFUSED/);
    expect(stderr).not.toContain(password);
    expect(stderr).not.toContain('app:');
  });
});
