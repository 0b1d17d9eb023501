import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { databaseFile } from '../keyscope.config.js';
import { backendsBanner, cliCommand, redactUrl } from './banner.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('cliCommand: the CLI lines the server prints, to run from the repository root', () => {
  it('names examples/keyscope.config.ts, and no KEYSCOPE_DB for the default database of pnpm start', () => {
    expect(cliCommand(databaseFile({}, ROOT), 'keys list --owner demo-user')).toBe(
      'pnpm keyscope keys list --config examples/keyscope.config.ts --owner demo-user',
    );
  });

  it('repeats KEYSCOPE_DB for any other file: relative to the repository root inside it, else absolute, quoted when needed', () => {
    expect(cliCommand(path.join(ROOT, 'data', 'x.db'), 'keys list --owner demo-user')).toBe(
      'KEYSCOPE_DB=data/x.db pnpm keyscope keys list --config examples/keyscope.config.ts --owner demo-user',
    );
    expect(cliCommand('/srv/my keys/x.db', 'keys create --owner demo-user --name k --level user')).toBe(
      "KEYSCOPE_DB='/srv/my keys/x.db' pnpm keyscope keys create --config examples/keyscope.config.ts --owner demo-user --name k --level user",
    );
  });

  it('finds the database as the server does: KEYSCOPE_DB, else .keyscope/example.db, from the current directory', () => {
    expect(databaseFile({}, '/app')).toBe(path.join('/app', '.keyscope', 'example.db'));
    expect(databaseFile({ KEYSCOPE_DB: 'x.db' }, '/app')).toBe(path.join('/app', 'x.db'));
    expect(databaseFile({ KEYSCOPE_DB: '/data/x.db' }, '/app')).toBe('/data/x.db');
  });
});

describe('with DATABASE_URL and REDIS_URL', () => {
  it('the CLI lines carry DATABASE_URL instead of KEYSCOPE_DB, unless it holds a password', () => {
    const db = path.join(ROOT, 'data', 'x.db');
    expect(cliCommand(db, 'keys list --owner demo-user', { kind: 'postgres', url: 'postgres://app@db.internal:5432/keys' })).toBe(
      'DATABASE_URL=postgres://app@db.internal:5432/keys pnpm keyscope keys list --config examples/keyscope.config.ts --owner demo-user',
    );
    expect(cliCommand(db, 'keys list --owner demo-user', { kind: 'postgres', url: 'postgres://app:s3cret@db/keys' })).toBe(
      'pnpm keyscope keys list --config examples/keyscope.config.ts --owner demo-user',
    );
  });

  it('the banner names the store, the change channels and the throttle, never a password', () => {
    expect(redactUrl('postgres://app:s3cret@db:5432/keys?sslmode=require')).toBe('postgres://app:***@db:5432/keys');
    const text = backendsBanner({
      store: { kind: 'postgres', url: 'postgres://app:s3cret@db:5432/keys' },
      migration: { schema: 'keyscope', from: 0, to: 1 },
      redis: { url: 'redis://:pw@cache:6379', channel: 'keyscope:changes' },
      maxFailures: 10,
    });
    expect(text).toContain('keyscope store: PostgreSQL postgres://app:***@db:5432/keys, schema keyscope (migrated from version 0 to 1)');
    expect(text).toContain('PostgreSQL LISTEN/NOTIFY + Redis bus redis://:***@cache:6379 (channel keyscope:changes)');
    expect(text).toContain('throttle: shared on Redis');
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain(':pw@');
    expect(backendsBanner({ store: { kind: 'sqlite', file: path.join(process.cwd(), 'x.db') }, maxFailures: 10 })).toBe(
      'keyscope store: SQLite x.db\nkeyscope changes: SQLite change polling (every 500 ms) + no bus (set REDIS_URL for the Redis bus); failed-attempt throttle: in this process, 10 failures per client per minute',
    );
  });
});
