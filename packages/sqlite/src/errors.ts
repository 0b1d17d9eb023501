/** Why a file could not be opened as a keyscope database. Check by `code`, not `instanceof`. */
export type SqliteStoreErrorCode =
  /** The file was written by a newer release of @keyscope/sqlite. */
  | 'sqlite_schema_newer'
  /** Opened read-only, the file has an older schema that only a read-write open upgrades. */
  | 'sqlite_schema_older'
  /** The file is not SQLite, or is a SQLite database of something else (or empty, read-only). */
  | 'sqlite_not_keyscope'
  /** Opened read-only, the file does not exist. */
  | 'sqlite_file_missing';

/**
 * Thrown by `new SqliteStore(...)` when the file cannot serve as a keyscope database; nothing
 * in the file was changed.
 *
 * @example if (error.code === 'sqlite_not_keyscope') console.error(error.message)
 */
export class SqliteStoreError extends Error {
  readonly code: SqliteStoreErrorCode;

  constructor(code: SqliteStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
