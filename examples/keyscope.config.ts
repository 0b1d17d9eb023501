/**
 * The example's keyscope options, shared by the server (`src/main.ts`) and the `keyscope` CLI:
 *
 *   pnpm keyscope keys list --config examples/keyscope.config.ts --owner demo-user
 *
 * Everything that decides whether a key is valid and what it reaches is here, so that a key the
 * CLI issues is one the server accepts. The server adds what only traffic needs (the failed-attempt
 * throttle, the event log, usage recording); the CLI turns those off anyway.
 *
 * The default export is a function: importing this module opens nothing, and each caller (the
 * server after it has checked its environment, the CLI once per command) gets its own store.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { KeyscopeOptions } from '@keyscope/core';
import { SqliteStore } from '@keyscope/sqlite';

/**
 * The SQLite file holding keyscope's tables and the monitoring data: `KEYSCOPE_DB`, else
 * `.keyscope/example.db`, relative to the current directory (the repository root under `pnpm`).
 */
export function databaseFile(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return path.resolve(cwd, env.KEYSCOPE_DB || path.join('.keyscope', 'example.db'));
}

export default function keyscopeOptions(env: NodeJS.ProcessEnv = process.env) {
  const filename = databaseFile(env);
  mkdirSync(path.dirname(filename), { recursive: true });
  return {
    store: new SqliteStore({ filename }),
    // Projects live in the same store (SqliteStore.addProject), so no `projects` directory.
    // The defaults, spelled out: change one here and the server and the CLI change together.
    keyPrefix: 'ks',
    header: 'X-API-Key',
    projectHeader: 'X-Project-ID',
    projectOptionalPaths: ['/validate', '/projects'],
  } satisfies KeyscopeOptions;
}
