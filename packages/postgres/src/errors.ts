/** Why a database cannot serve as a keyscope store (yet). Check by `code`, not `instanceof`. */
export type PostgresStoreErrorCode =
  /** The schema has no keyscope tables: run `keyscope db migrate` (or `migrate()`) first. */
  | 'postgres_schema_missing'
  /** The schema was migrated by an older release: run `keyscope db migrate` (or `migrate()`) to upgrade it. */
  | 'postgres_schema_older'
  /** The schema was migrated by a newer release of @keyscope/postgres: upgrade this one. */
  | 'postgres_schema_newer'
  /** The schema holds other tables and no keyscope schema: keyscope will not write into it. */
  | 'postgres_not_keyscope';

/**
 * A database that cannot serve as a keyscope store: the store's methods reject with it (nothing
 * is migrated silently), and `migrate()` throws it, having changed nothing.
 *
 * @example if (error.code === 'postgres_schema_missing') console.error('run: keyscope db migrate')
 */
export class PostgresStoreError extends Error {
  readonly code: PostgresStoreErrorCode;

  constructor(code: PostgresStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
