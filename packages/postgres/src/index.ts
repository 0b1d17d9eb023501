export { migrate, PostgresStore } from './postgres-store.js';
export type { PostgresMigrateOptions, PostgresProjectQueries, PostgresStoreOptions } from './postgres-store.js';
export { PostgresStoreError } from './errors.js';
export type { PostgresStoreErrorCode } from './errors.js';
export { DEFAULT_SCHEMA, SCHEMA_VERSION } from './schema.js';
export type { MigrationResult } from './schema.js';
