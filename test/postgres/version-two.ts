import { sql } from './helpers.js';
import { versionOneSchema } from './version-one.js';

/**
 * Make `schema` as schema version 2 made it: version 1, then version 2's SQL. Copied here on
 * purpose, like version 1's: later edits to the migrations must not change what a real version 2
 * schema looks like.
 */
export async function versionTwoSchema(schema: string): Promise<void> {
  await versionOneSchema(schema);
  const s = `"${schema}"`;
  await sql(`
  ALTER TABLE ${s}.keys ADD COLUMN kind text NOT NULL DEFAULT 'opaque' CHECK (kind IN ('opaque', 'signed'));

  CREATE TABLE ${s}.key_denials (
    key_id   text PRIMARY KEY,
    from_at  timestamptz NOT NULL,
    until_at timestamptz NOT NULL
  );

  CREATE TRIGGER key_denials_changed
    AFTER INSERT OR UPDATE OR DELETE ON ${s}.key_denials
    FOR EACH ROW EXECUTE FUNCTION ${s}.notify_change('key', 'key_id');

  UPDATE ${s}.keyscope_schema SET version = 2;
  `);
}
