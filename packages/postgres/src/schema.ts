import type { ClientBase } from 'pg';
import { PostgresStoreError } from './errors.js';

/** Schema names the store accepts: lowercase, so the app's unquoted SQL names the same schema. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,39}$/;

/** The default schema that holds keyscope's tables. */
export const DEFAULT_SCHEMA = 'keyscope';

/**
 * The schema history: entry `n - 1` upgrades version `n - 1` to `n`. An entry is never edited
 * once released (databases in the wild were made by it): add a new one instead. `s` is the
 * quoted schema name, `channel` the NOTIFY channel.
 */
const MIGRATIONS: readonly ((s: string, channel: string) => string)[] = [
  // v1: keys (hash only, never the plaintext), the project directory, usage per key and UTC day,
  // and the triggers that NOTIFY every listening store of a change that can alter a decision.
  (s, channel) => `
  CREATE TABLE ${s}.projects (
    id         text PRIMARY KEY,
    owner_id   text NOT NULL,
    name       text NOT NULL,
    position   bigint GENERATED ALWAYS AS IDENTITY
  );
  CREATE INDEX projects_owner ON ${s}.projects (owner_id, position);

  CREATE TABLE ${s}.keys (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    owner_id     text NOT NULL,
    level        text NOT NULL CHECK (level IN ('user', 'project')),
    project_id   text,
    hash         text NOT NULL,
    start        text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    position     bigint GENERATED ALWAYS AS IDENTITY,
    CHECK ((level = 'project') = (project_id IS NOT NULL))
  );
  CREATE UNIQUE INDEX keys_hash ON ${s}.keys (hash);
  CREATE INDEX keys_owner ON ${s}.keys (owner_id, created_at, position);
  CREATE INDEX keys_created ON ${s}.keys (created_at, position);

  CREATE TABLE ${s}.usage (
    key_id text NOT NULL REFERENCES ${s}.keys (id) ON DELETE CASCADE,
    day    date NOT NULL,
    count  bigint NOT NULL,
    PRIMARY KEY (key_id, day)
  );

  -- notify_change(kind, id_column): NOTIFY '${channel}' with {"kind":"key","keyId":…} or
  -- {"kind":"project","projectId":…}; "origin" names the store that wrote (it reported the
  -- change itself), and is absent for anyone else's SQL. Usable on the app's own projects table.
  CREATE FUNCTION ${s}.notify_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
  DECLARE
    kind   text := TG_ARGV[0];
    field  text := CASE TG_ARGV[0] WHEN 'key' THEN 'keyId' ELSE 'projectId' END;
    col    text := coalesce(TG_ARGV[1], 'id');
    origin text := nullif(current_setting('keyscope.origin', true), '');
    old_id text;
    new_id text;
  BEGIN
    IF TG_OP <> 'INSERT' THEN old_id := to_jsonb(OLD) ->> col; END IF;
    IF TG_OP <> 'DELETE' THEN new_id := to_jsonb(NEW) ->> col; END IF;
    IF old_id IS NOT NULL THEN
      PERFORM pg_notify('${channel}', json_strip_nulls(json_build_object('kind', kind, field, old_id, 'origin', origin))::text);
    END IF;
    IF new_id IS NOT NULL AND new_id IS DISTINCT FROM old_id THEN
      PERFORM pg_notify('${channel}', json_strip_nulls(json_build_object('kind', kind, field, new_id, 'origin', origin))::text);
    END IF;
    RETURN NULL;
  END
  $fn$;

  -- Not on INSERT (a new key changes no cached decision) nor on last_used_at (usage writes).
  CREATE TRIGGER keys_changed
    AFTER UPDATE OF id, owner_id, level, project_id, hash, expires_at, revoked_at OR DELETE ON ${s}.keys
    FOR EACH ROW EXECUTE FUNCTION ${s}.notify_change('key', 'id');
  CREATE TRIGGER projects_changed
    AFTER INSERT OR UPDATE OR DELETE ON ${s}.projects
    FOR EACH ROW EXECUTE FUNCTION ${s}.notify_change('project', 'id');
  `,
  // v2: signed keys. Each key's kind, and the deny-list: a signed key is checked by its
  // signature, not looked up, so its revocation lives here. No index on until_at: every write
  // drops the expired entries, so a read wants nearly all rows. Every denial change NOTIFYs
  // as a change of its key, so every instance reloads the list.
  (s) => `
  ALTER TABLE ${s}.keys ADD COLUMN kind text NOT NULL DEFAULT 'opaque' CHECK (kind IN ('opaque', 'signed'));

  CREATE TABLE ${s}.key_denials (
    key_id   text PRIMARY KEY,
    from_at  timestamptz NOT NULL,
    until_at timestamptz NOT NULL
  );

  CREATE TRIGGER key_denials_changed
    AFTER INSERT OR UPDATE OR DELETE ON ${s}.key_denials
    FOR EACH ROW EXECUTE FUNCTION ${s}.notify_change('key', 'key_id');
  `,
  // v3: per-key limits, all nullable (none: the level's default, or unlimited). A rate limit is
  // both rate columns or neither; a quota is quota_limit and the rest, its remaining units
  // counted down here by one UPDATE per request. Setting limits NOTIFYs (it always names the
  // four columns below); consuming the quota never does.
  (s) => `
  ALTER TABLE ${s}.keys
    ADD COLUMN rate_limit      bigint,
    ADD COLUMN rate_window_ms  bigint,
    ADD COLUMN quota_limit     bigint,
    ADD COLUMN quota_remaining bigint,
    ADD COLUMN quota_refill    text CHECK (quota_refill IN ('day', 'month')),
    ADD COLUMN quota_reset_at  timestamptz,
    -- A rotated key's line: the key whose quota and rate-limit count it shares.
    ADD COLUMN limits_from     text;

  CREATE TRIGGER keys_limits_changed
    AFTER UPDATE OF rate_limit, rate_window_ms, quota_limit, quota_refill ON ${s}.keys
    FOR EACH ROW EXECUTE FUNCTION ${s}.notify_change('key', 'id');
  `,
];

/** The schema version this release writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** What {@link migrate} did: the schema, and its version before and after. */
export interface MigrationResult {
  schema: string;
  from: number;
  to: number;
}

/** A checked schema name; bad ones throw a TypeError naming `option`. */
export function schemaName(value: unknown, option: string): string {
  if (value === undefined) return DEFAULT_SCHEMA;
  if (typeof value !== 'string' || !SCHEMA_NAME.test(value)) {
    throw new TypeError(`${option} must be 1-40 lowercase letters, digits or '_', not starting with a digit; got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The quoted schema name, for SQL. */
export function quoted(schema: string): string {
  return `"${schema}"`;
}

/** The NOTIFY channel of a schema's changes. */
export function channelOf(schema: string): string {
  return `keyscope:${schema}`;
}

/** The keyscope schema version of `schema`: 0 when it has no keyscope tables. */
export async function schemaVersion(client: Pick<ClientBase, 'query'>, schema: string): Promise<number> {
  const { rows } = await client.query<{ table: string | null }>('SELECT to_regclass($1)::text AS table', [`${quoted(schema)}.keyscope_schema`]);
  if (rows[0]?.table == null) return 0;
  const version = await client.query<{ version: number }>(`SELECT version FROM ${quoted(schema)}.keyscope_schema WHERE id = 1`);
  return version.rows[0]?.version ?? 0;
}

/** The error for a schema another release migrated further. */
export function newerSchema(schema: string, version: number): PostgresStoreError {
  return new PostgresStoreError(
    'postgres_schema_newer',
    `schema ${schema} has keyscope schema version ${version}, newer than version ${SCHEMA_VERSION} that this @keyscope/postgres supports; upgrade @keyscope/postgres`,
  );
}

/**
 * Bring `schema` to {@link SCHEMA_VERSION} in one transaction, under a transaction-level advisory
 * lock on the schema's name: of two migrations at once, the second waits and then finds nothing
 * to do. Throws, changing nothing, if the schema is newer or holds something else.
 */
export async function migrateWith(client: ClientBase, schema: string): Promise<MigrationResult> {
  const s = quoted(schema);
  await client.query('BEGIN');
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('keyscope.migrate'), hashtext($1))", [schema]);
    const { rows: tables } = await client.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1",
      [schema],
    );
    const names = tables.map((t) => t.name);
    if (names.length > 0 && !names.includes('keyscope_schema')) {
      throw new PostgresStoreError(
        'postgres_not_keyscope',
        `schema ${schema} holds other tables (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}) and no keyscope schema; keyscope will not write into it: choose another schema`,
      );
    }
    const from = names.length === 0 ? 0 : await schemaVersion(client, schema);
    if (from > SCHEMA_VERSION) throw newerSchema(schema, from);
    if (from < SCHEMA_VERSION) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${s}.keyscope_schema (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)`);
      for (let version = from + 1; version <= SCHEMA_VERSION; version++) await client.query(MIGRATIONS[version - 1]!(s, channelOf(schema)));
      await client.query(
        `INSERT INTO ${s}.keyscope_schema (id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = excluded.version`,
        [SCHEMA_VERSION],
      );
    }
    await client.query('COMMIT');
    return { schema, from, to: Math.max(from, SCHEMA_VERSION) };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
