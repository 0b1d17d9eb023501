/**
 * The example's keyscope options, shared by the server (`src/main.ts`) and the `keyscope` CLI:
 *
 *   pnpm keyscope keys list --config examples/keyscope.config.ts --owner demo-user
 *
 * Everything that decides whether a key is valid and what it reaches is here, so that a key the
 * CLI issues is one the server accepts. The server adds what only traffic needs (the failed-attempt
 * throttle, the Redis bus, the event log, usage recording); the CLI turns those off anyway.
 *
 * The store: PostgreSQL when `DATABASE_URL` is set (one store for many server processes), else the
 * SQLite file `KEYSCOPE_DB`. The server and the CLI read the same variables, so they always agree.
 *
 * The default export is a function: importing this module opens nothing, and each caller (the
 * server after it has checked its environment, the CLI once per command) gets its own store.
 * `@keyscope/postgres` (and `pg`) are loaded only when `DATABASE_URL` asks for them.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { KeyscopeOptions } from '@keyscope/core';
import type { PostgresStore } from '@keyscope/postgres';
import type { SqliteStore } from '@keyscope/sqlite';

/**
 * The SQLite file holding the monitoring data, and keyscope's tables unless `DATABASE_URL` is set:
 * `KEYSCOPE_DB`, else `.keyscope/example.db` (`.keyscope/example-data.db` with `DATABASE_URL`: a
 * file without keyscope's tables, which the SQLite store would refuse to adopt later), relative to
 * the current directory (the repository root under `pnpm`).
 */
export function databaseFile(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return path.resolve(cwd, env.KEYSCOPE_DB || path.join('.keyscope', env.DATABASE_URL ? 'example-data.db' : 'example.db'));
}

/** Where keyscope's keys and projects live, as read from the environment. */
export type StoreLocation = { kind: 'postgres'; url: string } | { kind: 'sqlite'; file: string };

export function storeLocation(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): StoreLocation {
  const url = env.DATABASE_URL;
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) throw new TypeError('DATABASE_URL must be a postgres:// or postgresql:// URL');
    return { kind: 'postgres', url };
  }
  return { kind: 'sqlite', file: databaseFile(env, cwd) };
}

/**
 * How long a PostgreSQL connection attempt may take, and a query, before the store gives up. The
 * server answers 503 after its own `storeTimeoutMs` (2 s) whatever happens; these make sure the
 * connections behind requests that already got their 503 do not pile up for longer.
 */
export const POSTGRES_CONNECT_TIMEOUT_MS = 2_000;
export const POSTGRES_QUERY_TIMEOUT_MS = 4_000;

export default async function keyscopeOptions(env: NodeJS.ProcessEnv = process.env) {
  const where = storeLocation(env);
  let store: PostgresStore | SqliteStore;
  if (where.kind === 'postgres') {
    const { PostgresStore } = await import('@keyscope/postgres');
    // The tables are created by an explicit migration (the server runs it at start, or
    // `keyscope db migrate`), never by opening the store.
    store = new PostgresStore({
      connectionString: where.url,
      connectionTimeoutMs: POSTGRES_CONNECT_TIMEOUT_MS,
      queryTimeoutMs: POSTGRES_QUERY_TIMEOUT_MS,
    });
  } else {
    const { SqliteStore } = await import('@keyscope/sqlite');
    mkdirSync(path.dirname(where.file), { recursive: true });
    store = new SqliteStore({ filename: where.file });
  }
  return {
    store,
    // Projects live in the same store (addProject), so no `projects` directory.
    // The defaults, spelled out: change one here and the server and the CLI change together.
    keyPrefix: 'ks',
    header: 'X-API-Key',
    projectHeader: 'X-Project-ID',
    projectOptionalPaths: ['/validate', '/projects'],
  } satisfies KeyscopeOptions;
}
