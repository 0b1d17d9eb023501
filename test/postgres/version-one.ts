import { sql } from './helpers.js';

/**
 * Make `schema` as schema version 1 made it. The SQL is copied here on purpose: later edits to
 * the migrations must not change what a real version 1 schema looks like.
 */
export async function versionOneSchema(schema: string): Promise<void> {
  const s = `"${schema}"`;
  const channel = `keyscope:${schema}`;
  await sql(`
  CREATE SCHEMA ${s};
  CREATE TABLE ${s}.keyscope_schema (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL);

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

  CREATE TRIGGER keys_changed
    AFTER UPDATE OF id, owner_id, level, project_id, hash, expires_at, revoked_at OR DELETE ON ${s}.keys
    FOR EACH ROW EXECUTE FUNCTION ${s}.notify_change('key', 'id');
  CREATE TRIGGER projects_changed
    AFTER INSERT OR UPDATE OR DELETE ON ${s}.projects
    FOR EACH ROW EXECUTE FUNCTION ${s}.notify_change('project', 'id');

  INSERT INTO ${s}.keyscope_schema (id, version) VALUES (1, 1);
  `);
}
