import type Database from 'better-sqlite3';
import { SqliteStoreError } from './errors.js';

/**
 * The schema history. Entry `n - 1` upgrades a version `n - 1` file to version `n`; an entry is
 * never edited once released (files in the wild were made by it): add a new one instead.
 */
const MIGRATIONS: readonly string[] = [
  // v1: keys (hash only, never the plaintext) and the project directory.
  `
  CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL,
    name       TEXT NOT NULL
  );
  CREATE INDEX projects_owner ON projects (owner_id);

  CREATE TABLE keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    owner_id     TEXT NOT NULL,
    level        TEXT NOT NULL CHECK (level IN ('user', 'project')),
    project_id   TEXT,
    hash         TEXT NOT NULL UNIQUE,
    start        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER,
    CHECK ((level = 'project') = (project_id IS NOT NULL))
  );
  CREATE INDEX keys_owner ON keys (owner_id, created_at);
  `,
  // v2: request counts per key and UTC day, and a change counter bumped by every write that can
  // change an authentication decision (not by usage writes), so watchers of another process
  // drop their caches only when it matters.
  `
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
  `,
  // v3: signed keys. Each key's kind, and the deny-list: a signed key is checked by its
  // signature, not looked up, so its revocation lives here (times in epoch ms, as in keys). No
  // index on until_at: every write drops the expired entries, so a read wants nearly all rows.
  // Denials bump the change counter, so another process's denial reaches the watchers.
  `
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
  `,
  // v4: per-key limits, all nullable (none: the level's default, or unlimited). A rate limit is
  // both rate columns or neither; a quota is quota_limit and the rest, its remaining units
  // counted down here by one UPDATE per request. Only setting limits bumps the change counter:
  // it always names the four columns below, and consuming the quota never does.
  `
  ALTER TABLE keys ADD COLUMN rate_limit INTEGER;
  ALTER TABLE keys ADD COLUMN rate_window_ms INTEGER;
  ALTER TABLE keys ADD COLUMN quota_limit INTEGER;
  ALTER TABLE keys ADD COLUMN quota_remaining INTEGER;
  ALTER TABLE keys ADD COLUMN quota_refill TEXT CHECK (quota_refill IN ('day', 'month'));
  ALTER TABLE keys ADD COLUMN quota_reset_at INTEGER;
  -- A rotated key's line: the key whose quota and rate-limit count it shares.
  ALTER TABLE keys ADD COLUMN limits_from TEXT;

  CREATE TRIGGER keys_limits_updated
    AFTER UPDATE OF rate_limit, rate_window_ms, quota_limit, quota_refill ON keys
    BEGIN UPDATE changes SET generation = generation + 1; END;
  `,
  // v5: a key's last use is kept on its usage row of the day, so a usage flush writes one narrow
  // row per key and day and never the wide keys row (on a busy server with many keys, rewriting
  // keys rows cost most of a flush). keys.last_used_at keeps what was recorded before.
  `
  ALTER TABLE usage_days ADD COLUMN last_used_at INTEGER;
  `,
];

/** The schema version this release writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * The keyscope schema version of an open file without writing to it: 0 for an empty (new)
 * database. Throws `sqlite_not_keyscope` for a file that is not SQLite, or a SQLite database
 * that holds other tables and no keyscope schema: keyscope never moves into someone else's file.
 */
export function schemaVersion(db: Database.Database, filename: string): number {
  let names: string[];
  try {
    names = db.prepare<[], string>("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").pluck().all();
  } catch (error) {
    if ((error as { code?: string }).code === 'SQLITE_NOTADB') {
      throw new SqliteStoreError('sqlite_not_keyscope', `${filename} is not a keyscope database (not a SQLite file)`, { cause: error });
    }
    throw error;
  }
  if (names.length === 0) return 0;
  if (!names.includes('keyscope_schema')) {
    throw new SqliteStoreError(
      'sqlite_not_keyscope',
      `${filename} is not a keyscope database: it holds other tables (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}) and no keyscope schema; keyscope will not write into it`,
    );
  }
  return (db.prepare<[], number>('SELECT version FROM keyscope_schema WHERE id = 1').pluck().get()) ?? 0;
}

/** The error for a file written by a newer release. */
export function newerSchema(filename: string, version: number): SqliteStoreError {
  return new SqliteStoreError(
    'sqlite_schema_newer',
    `${filename} has keyscope schema version ${version}, newer than version ${SCHEMA_VERSION} that this @keyscope/sqlite supports; upgrade @keyscope/sqlite`,
  );
}

/**
 * Bring the file to {@link SCHEMA_VERSION} in one immediate transaction (two processes opening
 * the same old file upgrade it once). Throws, changing nothing, if the file is newer or is not
 * a keyscope database.
 */
export function migrate(db: Database.Database, filename: string): void {
  db.transaction(() => {
    const current = schemaVersion(db, filename);
    if (current > SCHEMA_VERSION) throw newerSchema(filename, current);
    if (current === SCHEMA_VERSION) return;
    db.exec('CREATE TABLE IF NOT EXISTS keyscope_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)');
    for (let version = current + 1; version <= SCHEMA_VERSION; version++) db.exec(MIGRATIONS[version - 1]!);
    db.prepare('INSERT INTO keyscope_schema (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version').run(SCHEMA_VERSION);
  }).immediate();
}
