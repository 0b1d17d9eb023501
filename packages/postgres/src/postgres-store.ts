import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { ClientConfig, Pool, PoolClient, QueryResultRow } from 'pg';
import { authRecordFromRow, dateFromEpoch, finiteLimit, KeyscopeError, narrowsFindKeyByHash, nextQuotaReset, quotaAt, quotaTime, recordFromRow, wholeNumberOption } from '@keyscope/core';
import type { AuthKeyRecord, AuthKeyRow, KeyAdminStore, KeyDenial, KeyLimitsUpdate, KeyRecord, KeyRow, KeyUsage, Project, Quota, QuotaTake, RateLimit, StoreChange, UsageEntry } from '@keyscope/core';
import { PostgresStoreError } from './errors.js';
import { ChangeListener } from './listener.js';
import { channelOf, migrateWith, newerSchema, quoted, SCHEMA_VERSION, schemaName, schemaVersion, type MigrationResult } from './schema.js';

/**
 * The app's own projects table as the project directory: two queries the store runs instead of
 * reading its `projects` table.
 *
 * @example { owns: 'SELECT 1 FROM app.projects WHERE owner_id = $1 AND id = $2', list: 'SELECT id, owner_id AS "ownerId", name FROM app.projects WHERE owner_id = $1 ORDER BY id' }
 */
export interface PostgresProjectQueries {
  /** `$1` the owner id, `$2` the project id: owned when it returns a row. */
  owns: string;
  /** `$1` the owner id: one row per project, with the columns `id`, `ownerId` and `name`. */
  list: string;
}

/** Options for {@link PostgresStore}: `connectionString` or `pool`, exactly one. */
export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:5432/db`: the store makes (and on `close()` ends) its own pool. */
  connectionString?: string;
  /** Your own `pg.Pool`: the store uses it and never ends it. */
  pool?: Pool;
  /** The schema holding keyscope's tables. Default `keyscope`. */
  schema?: string;
  /** Read projects from the app's own table instead of the store's. */
  projects?: PostgresProjectQueries;
  /**
   * Hear other processes' changes through LISTEN/NOTIFY while anyone subscribes (default `true`),
   * on its own session connection made from `connectionString`, the pool's settings, or the
   * `pg.ClientConfig` given here. `false`: report only this store's own writes.
   */
  listen?: boolean | ClientConfig;
  /** Own pool and listener: give up connecting after this many ms. Default 5,000. */
  connectionTimeoutMs?: number;
  /** Own pool and listener: fail a query with no answer after this many ms. Default 10,000. */
  queryTimeoutMs?: number;
  /** The listener's first reconnect delay, doubled per failure (jittered). Default 100. */
  reconnectMinMs?: number;
  /** The longest reconnect delay. Default 5,000. */
  reconnectMaxMs?: number;
  /** How often the listener checks its connection is alive, in ms. Default 15,000. */
  heartbeatMs?: number;
  /** Told of connection errors the store survives (an idle pool client or the listener dropping). */
  onError?: (error: unknown) => void;
}

/** Where {@link migrate} works: `connectionString` or `pool`, and the schema. */
export interface PostgresMigrateOptions {
  connectionString?: string;
  pool?: Pool;
  /** Default `keyscope`. */
  schema?: string;
}

/** Times leave the database as epoch ms (exact, no time zone parsing in the driver). */
const ms = (column: string, alias = column) => `(extract(epoch FROM ${column}) * 1000)::float8 AS ${alias}`;
/** Counts leave as numbers too (pg gives bigint as a string). */
const num = (column: string) => `${column}::float8 AS ${column}`;
/** What authentication reads (see `AuthKeyRecord`): no display, creation or last-use columns. */
const AUTH_SELECT =
  `id, name, owner_id, level, project_id, ${ms('expires_at')}, ${ms('revoked_at')}, ` +
  `${num('rate_limit')}, ${num('rate_window_ms')}, ${num('quota_limit')}, ${num('quota_remaining')}, quota_refill, ${ms('quota_reset_at')}, limits_from`;
/** What the other reads select: the decision's columns and the rest. */
const KEY_SELECT = `${AUTH_SELECT}, hash, start, ${ms('created_at')}, ${ms('last_used_at')}, kind`;
/** A refill is due at `$2`: the quota refills, and its reset time has come (as `quotaAt` in core decides). */
const REFILL_DUE = 'quota_refill IS NOT NULL AND quota_reset_at IS NOT NULL AND quota_reset_at <= $2::timestamptz';
/** Sets the writing store's origin for the NOTIFY trigger, for this transaction only. */
const ORIGIN = "WITH origin AS (SELECT set_config('keyscope.origin', $1, true) AS origin)";

/**
 * The shared store for many instances: keys, projects and usage in PostgreSQL (`pg`), changes
 * heard through LISTEN/NOTIFY. Stores only each key's SHA-256 hash. The schema is created by
 * {@link migrate} (or `keyscope db migrate`), never silently: until then every method rejects
 * with a {@link PostgresStoreError}.
 *
 * @example
 * await migrate({ connectionString: process.env.DATABASE_URL })
 * const store = new PostgresStore({ connectionString: process.env.DATABASE_URL })
 * const ks = createKeyscope({ store })
 */
export class PostgresStore implements KeyAdminStore {
  /** The schema holding the tables. */
  readonly schema: string;
  private readonly pool: Pool;
  private readonly ownsPool: boolean;
  private readonly s: string;
  private readonly origin = randomBytes(12).toString('hex');
  private readonly listeners = new Set<(change?: StoreChange) => void>();
  private readonly listenConfig: ClientConfig | undefined;
  private readonly appProjects: PostgresProjectQueries | undefined;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly heartbeatMs: number;
  private readonly onError: (error: unknown) => void;
  private readonly onPoolError = (error: unknown) => this.onError(error);
  /**
   * pg emits a connection's error on the pool only while the client is idle; one that arrives
   * just after a query settled would go to the client with no listener and end the process.
   */
  private readonly onPoolConnect = (client: pg.PoolClient) => {
    // Heard here and dropped: the query it broke rejects, and an idle client's reaches onError via the pool.
    client.on('error', ignore);
  };
  private listener: ChangeListener | undefined;
  private checked: Promise<void> | undefined;
  private closed = false;

  constructor(options: PostgresStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('new PostgresStore(options): options must be an object');
    const { connectionString, pool } = options;
    if ((connectionString === undefined) === (pool === undefined)) {
      throw new TypeError('new PostgresStore(options): give options.connectionString or options.pool (one of them)');
    }
    if (connectionString !== undefined && (typeof connectionString !== 'string' || connectionString === '')) {
      throw new TypeError('options.connectionString must be a non-empty string (postgres://…)');
    }
    if (pool !== undefined && (pool === null || typeof pool.query !== 'function' || typeof pool.connect !== 'function')) {
      throw new TypeError('options.pool must be a pg.Pool');
    }
    this.schema = schemaName(options.schema, 'options.schema');
    this.s = quoted(this.schema);
    const connectionTimeoutMs = wholeNumberOption(options.connectionTimeoutMs ?? 5_000, 'options.connectionTimeoutMs', 1);
    const queryTimeoutMs = wholeNumberOption(options.queryTimeoutMs ?? 10_000, 'options.queryTimeoutMs', 1);
    this.reconnectMinMs = wholeNumberOption(options.reconnectMinMs ?? 100, 'options.reconnectMinMs', 1);
    this.reconnectMaxMs = wholeNumberOption(options.reconnectMaxMs ?? 5_000, 'options.reconnectMaxMs', this.reconnectMinMs);
    this.heartbeatMs = wholeNumberOption(options.heartbeatMs ?? 15_000, 'options.heartbeatMs', 1);
    if (options.onError !== undefined && typeof options.onError !== 'function') throw new TypeError('options.onError must be a function');
    this.onError = options.onError ?? (() => {});
    this.appProjects = options.projects === undefined ? undefined : projectQueries(options.projects);

    const listen = options.listen ?? true;
    if (typeof listen !== 'boolean' && (listen === null || typeof listen !== 'object')) {
      throw new TypeError('options.listen must be a boolean or a pg ClientConfig');
    }
    const timeouts = { connectionTimeoutMillis: connectionTimeoutMs, query_timeout: queryTimeoutMs };
    const base: ClientConfig = typeof listen === 'object' ? listen : connectionString !== undefined ? { connectionString } : { ...(pool!.options as ClientConfig) };
    this.listenConfig = listen === false ? undefined : { ...timeouts, keepAlive: true, application_name: 'keyscope-listen', ...base };

    this.ownsPool = pool === undefined;
    this.pool = pool ?? new pg.Pool({ connectionString, ...timeouts, application_name: 'keyscope' });
    // An idle client's error is emitted on the pool; unheard, it would end the process.
    this.pool.on('error', this.onPoolError);
    this.pool.on('connect', this.onPoolConnect);
  }

  /**
   * Resolves once the schema is known to be this release's; rejects with a
   * {@link PostgresStoreError} (`postgres_schema_missing`, `_older`, `_newer`) otherwise, or with
   * the connection error. Every method waits for it; call it at startup to fail fast.
   */
  ready(): Promise<void> {
    // Only success is kept: after `keyscope db migrate`, or once the server is back, the next call succeeds.
    this.checked ??= this.check().catch((error: unknown) => {
      this.checked = undefined;
      throw error;
    });
    return this.checked;
  }

  /** Migrate this store's schema (see {@link migrate}). */
  async migrate(): Promise<MigrationResult> {
    const client = await this.pool.connect();
    try {
      return await migrateWith(client, this.schema);
    } finally {
      client.release();
    }
  }

  private async check(): Promise<void> {
    const version = await schemaVersion(this.pool, this.schema);
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) throw newerSchema(this.schema, version);
    const how = `run \`keyscope db migrate --database-url <url>${this.schema === 'keyscope' ? '' : ` --schema ${this.schema}`}\` or migrate() from @keyscope/postgres`;
    if (version === 0) throw new PostgresStoreError('postgres_schema_missing', `schema ${this.schema} has no keyscope tables: ${how} first`);
    throw new PostgresStoreError('postgres_schema_older', `schema ${this.schema} has keyscope schema version ${version}, older than version ${SCHEMA_VERSION}: ${how} to upgrade it`);
  }

  private async query<R extends QueryResultRow>(text: string, values: unknown[] = [], name?: string) {
    await this.ready();
    return this.pool.query<R>(name === undefined ? { text, values } : { name, text, values });
  }

  /**
   * Add a project, or replace the owner and name of the project with this id (for seeding;
   * use {@link PostgresStore.createProject} where an existing id must not change hands).
   */
  async addProject(project: Project): Promise<void> {
    checkProject(project);
    this.ownProjects();
    await this.query(
      `${ORIGIN} INSERT INTO ${this.s}.projects (id, owner_id, name) SELECT $2, $3, $4 FROM origin
       ON CONFLICT (id) DO UPDATE SET owner_id = excluded.owner_id, name = excluded.name`,
      [this.origin, project.id, project.ownerId, project.name],
    );
    this.report({ kind: 'project', projectId: project.id });
  }

  /**
   * Add a new project; rejects with `invalid_argument` ("... already exists") if the id is
   * taken, atomically, so two concurrent creations never hand one project to another owner.
   */
  async createProject(project: Project): Promise<void> {
    checkProject(project);
    this.ownProjects();
    try {
      await this.query(`${ORIGIN} INSERT INTO ${this.s}.projects (id, owner_id, name) SELECT $2, $3, $4 FROM origin`, [
        this.origin,
        project.id,
        project.ownerId,
        project.name,
      ]);
    } catch (error) {
      if ((error as { code?: string }).code === '23505') throw new KeyscopeError('invalid_argument', `project ${project.id} already exists`, { cause: error });
      throw error;
    }
    this.report({ kind: 'project', projectId: project.id });
  }

  /** Delete a project; `false` if unknown. Its keys stay but stop working: their owner no longer owns it. */
  async removeProject(id: string): Promise<boolean> {
    this.ownProjects();
    const { rowCount } = await this.query(`${ORIGIN} DELETE FROM ${this.s}.projects USING origin WHERE id = $2`, [this.origin, id]);
    const removed = (rowCount ?? 0) > 0;
    if (removed) this.report({ kind: 'project', projectId: id });
    return removed;
  }

  /** One project by id, or `null`. */
  async getProject(id: string): Promise<Project | null> {
    this.ownProjects();
    const { rows } = await this.query<Project>(`SELECT id, owner_id AS "ownerId", name FROM ${this.s}.projects WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }

  /** The key whose SHA-256 is `hash` (revoked and expired ones included), or `null`. */
  async findKeyByHash(hash: string): Promise<KeyRecord | null> {
    const { rows } = await this.query<KeyRow>(`SELECT ${KEY_SELECT} FROM ${this.s}.keys WHERE hash = $1`, [hash], `keyscope.byhash.${this.schema}`);
    return recordFromRow(rows[0]);
  }

  /**
   * What a cache miss in `createKeyscope` reads: the same lookup as {@link PostgresStore.findKeyByHash},
   * without the columns only lists show. Where `findKeyByHash` has been replaced (a subclass, or
   * a wrapper set on the instance), the replacement answers instead.
   */
  async findKeyForAuth(hash: string): Promise<AuthKeyRecord | null> {
    // Called with findKeyByHash replaced (createKeyscope then never calls this): answer through the replacement.
    const full = this.findKeyByHash;
    if (full !== FIND_KEY_BY_HASH) return full.call(this, hash);
    const { rows } = await this.query<AuthKeyRow>(`SELECT ${AUTH_SELECT} FROM ${this.s}.keys WHERE hash = $1`, [hash], `keyscope.authbyhash.${this.schema}`);
    return authRecordFromRow(rows[0]);
  }

  /** Is `projectId` a project of `ownerId`? Unknown projects answer `false`. */
  async ownsProject(ownerId: string, projectId: string): Promise<boolean> {
    const text = this.appProjects?.owns ?? `SELECT 1 FROM ${this.s}.projects WHERE owner_id = $1 AND id = $2`;
    const { rows } = await this.query(text, [ownerId, projectId], this.appProjects ? undefined : `keyscope.owns.${this.schema}`);
    return rows.length > 0;
  }

  /** Every project of `ownerId` (the store's: in the order they were added). */
  async listProjects(ownerId: string): Promise<Project[]> {
    const text = this.appProjects?.list ?? `SELECT id, owner_id AS "ownerId", name FROM ${this.s}.projects WHERE owner_id = $1 ORDER BY position`;
    const { rows } = await this.query<Record<string, unknown>>(text, [ownerId]);
    return rows.map((row) => ({ id: String(row.id), ownerId: String(row.ownerId), name: String(row.name) }));
  }

  async createKey(record: KeyRecord): Promise<void> {
    try {
      await this.query(
        `INSERT INTO ${this.s}.keys (id, name, owner_id, level, project_id, hash, start, created_at, expires_at, revoked_at, last_used_at, kind,
           rate_limit, rate_window_ms, quota_limit, quota_remaining, quota_refill, quota_reset_at, limits_from)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz, $9::timestamptz, $10::timestamptz, $11::timestamptz, $12,
           $13::bigint, $14::bigint, $15::bigint, $16::bigint, $17::text, $18::timestamptz, $19::text)`,
        [
          record.id,
          record.name,
          record.ownerId,
          record.level,
          record.projectId,
          record.hash,
          record.start,
          timestamp(record.createdAt),
          timestamp(record.expiresAt),
          timestamp(record.revokedAt),
          timestamp(record.lastUsedAt),
          record.kind ?? 'opaque',
          ...limitValues(record.rateLimit ?? null, record.quota ?? null),
          record.limitsFrom ?? null,
        ],
      );
    } catch (error) {
      if ((error as { code?: string }).code === '23505') {
        throw new KeyscopeError('invalid_argument', `a key with id ${record.id} or the same hash already exists`, { cause: error });
      }
      throw error;
    }
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    const { rows } = await this.query<KeyRow>(`SELECT ${KEY_SELECT} FROM ${this.s}.keys WHERE id = $1`, [id]);
    return recordFromRow(rows[0]);
  }

  /** Every key of `ownerId`, revoked and expired ones included, oldest first. */
  async listKeys(ownerId: string): Promise<KeyRecord[]> {
    const { rows } = await this.query<KeyRow>(`SELECT ${KEY_SELECT} FROM ${this.s}.keys WHERE owner_id = $1 ORDER BY created_at, position`, [ownerId]);
    return rows.map((row) => recordFromRow(row)!);
  }

  /** Every key of every owner, revoked and expired ones included, oldest first. */
  async listAllKeys(): Promise<KeyRecord[]> {
    const { rows } = await this.query<KeyRow>(`SELECT ${KEY_SELECT} FROM ${this.s}.keys ORDER BY created_at, position`);
    return rows.map((row) => recordFromRow(row)!);
  }

  /** Mark a key revoked at `at` (revoking twice keeps the first time); `false` when no such key. */
  async revokeKey(id: string, at: Date): Promise<boolean> {
    const { rowCount } = await this.query(
      `${ORIGIN} UPDATE ${this.s}.keys SET revoked_at = coalesce(revoked_at, $3::timestamptz) FROM origin WHERE id = $2`,
      [this.origin, id, timestamp(at)],
    );
    const found = (rowCount ?? 0) > 0;
    if (found) this.report({ kind: 'key', keyId: id });
    return found;
  }

  /** Set a key's expiry; `false` when no such key. */
  async setKeyExpiry(id: string, expiresAt: Date): Promise<boolean> {
    const { rowCount } = await this.query(`${ORIGIN} UPDATE ${this.s}.keys SET expires_at = $3::timestamptz FROM origin WHERE id = $2`, [
      this.origin,
      id,
      timestamp(expiresAt),
    ]);
    const found = (rowCount ?? 0) > 0;
    if (found) this.report({ kind: 'key', keyId: id });
    return found;
  }

  /**
   * Take one unit of a key's quota at `at`, in one UPDATE ... RETURNING: the row lock makes it
   * atomic across every instance (a concurrent UPDATE waits, then re-checks the WHERE on the row
   * as committed), and a due refill is applied in the same statement. When no row comes back,
   * one read tells an exhausted quota from no quota. NOTIFYs nobody: it is per request.
   */
  async consumeQuota(keyId: string, at: Date): Promise<QuotaTake | null> {
    const now = quotaTime(at);
    const { rows } = await this.query<{ quota_limit: number; quota_remaining: number; quota_refill: 'day' | 'month' | null; quota_reset_at: number | null }>(
      `UPDATE ${this.s}.keys SET
         quota_remaining = CASE WHEN ${REFILL_DUE} THEN quota_limit - 1 ELSE quota_remaining - 1 END,
         quota_reset_at = CASE WHEN ${REFILL_DUE} THEN (CASE quota_refill WHEN 'day' THEN $3::timestamptz ELSE $4::timestamptz END) ELSE quota_reset_at END
       WHERE id = $1 AND quota_limit IS NOT NULL AND (CASE WHEN ${REFILL_DUE} THEN quota_limit ELSE quota_remaining END) > 0
       RETURNING ${num('quota_limit')}, ${num('quota_remaining')}, quota_refill, ${ms('quota_reset_at')}`,
      [keyId, timestamp(at), timestamp(new Date(nextQuotaReset('day', now))), timestamp(new Date(nextQuotaReset('month', now)))],
      `keyscope.quota.${this.schema}`,
    );
    const taken = rows[0];
    if (taken) return { granted: true, remaining: taken.quota_remaining, limit: taken.quota_limit, refill: taken.quota_refill, resetAt: dateFromEpoch(taken.quota_reset_at) };
    const quota = (await this.getKey(keyId))?.quota;
    if (!quota) return null;
    const current = quotaAt(quota, now);
    return { granted: false, remaining: 0, limit: current.limit, refill: current.refill, resetAt: current.resetAt };
  }

  /**
   * Change a key's rate limit and quota (`undefined` leaves one, `null` removes it); `false` when
   * no such key. Reports `{ kind: 'key', keyId }` at once; other instances hear it through NOTIFY.
   */
  async setKeyLimits(keyId: string, limits: KeyLimitsUpdate): Promise<boolean> {
    const values = limitValues(limits.rateLimit ?? null, limits.quota ?? null);
    // Names all four columns the NOTIFY trigger watches, even when they stay as they are.
    const { rowCount } = await this.query(
      `${ORIGIN} UPDATE ${this.s}.keys SET
         rate_limit = CASE WHEN $3::boolean THEN $5::bigint ELSE rate_limit END,
         rate_window_ms = CASE WHEN $3::boolean THEN $6::bigint ELSE rate_window_ms END,
         quota_limit = CASE WHEN $4::boolean THEN $7::bigint ELSE quota_limit END,
         quota_remaining = CASE WHEN $4::boolean THEN $8::bigint ELSE quota_remaining END,
         quota_refill = CASE WHEN $4::boolean THEN $9::text ELSE quota_refill END,
         quota_reset_at = CASE WHEN $4::boolean THEN $10::timestamptz ELSE quota_reset_at END
       FROM origin WHERE id = $2`,
      [this.origin, keyId, limits.rateLimit !== undefined, limits.quota !== undefined, ...values],
    );
    const found = (rowCount ?? 0) > 0;
    if (found) this.report({ kind: 'key', keyId });
    return found;
  }

  /**
   * Put a signed key on the deny-list, or widen its entry (the earlier `from`, the later
   * `until`), dropping entries whose `until` has passed in the same transaction. Reports
   * `{ kind: 'key', keyId }` at once; other instances hear it through NOTIFY.
   */
  async denyKey(denial: KeyDenial): Promise<void> {
    await this.ready();
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      await client.query("SELECT set_config('keyscope.origin', $1, true)", [this.origin]);
      await client.query(
        `INSERT INTO ${this.s}.key_denials AS d (key_id, from_at, until_at) VALUES ($1, $2::timestamptz, $3::timestamptz)
         ON CONFLICT (key_id) DO UPDATE SET from_at = LEAST(d.from_at, excluded.from_at), until_at = GREATEST(d.until_at, excluded.until_at)`,
        [denial.keyId, timestamp(denial.from), timestamp(denial.until)],
      );
      await client.query(`DELETE FROM ${this.s}.key_denials WHERE until_at <= $1::timestamptz`, [timestamp(new Date())]);
      await client.query('COMMIT');
    } catch (error) {
      // A connection that cannot even roll back goes, rather than back to the pool.
      broken = await client.query('ROLLBACK').then(() => false, () => true);
      throw error;
    } finally {
      client.release(broken);
    }
    this.report({ kind: 'key', keyId: denial.keyId });
  }

  /** The deny-list entries whose `until` is later than `at`, by key id. */
  async listKeyDenials(at: Date): Promise<KeyDenial[]> {
    const { rows } = await this.query<{ key_id: string; from_at: number; until_at: number }>(
      `SELECT key_id, ${ms('from_at')}, ${ms('until_at')} FROM ${this.s}.key_denials WHERE until_at > $1::timestamptz ORDER BY key_id`,
      [timestamp(at)],
    );
    return rows.map((row) => ({ keyId: row.key_id, from: new Date(row.from_at), until: new Date(row.until_at) }));
  }

  /**
   * Add a batch of usage in one statement: counts add up per key and UTC day (`count =
   * usage.count + excluded.count`, so flushes of many instances add up exactly), `lastUsedAt`
   * only moves forward (`GREATEST`). Keys that do not exist are skipped. The keys are locked in
   * id order before any usage row, so concurrent batches queue instead of deadlocking.
   */
  async recordUsage(entries: UsageEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.query(
      `WITH batch AS (
         SELECT key_id, day, sum(count)::bigint AS count, max(at) AS at
         FROM unnest($1::text[], $2::date[], $3::bigint[], $4::timestamptz[]) AS b (key_id, day, count, at)
         GROUP BY key_id, day
       ), locked AS (
         SELECT id FROM ${this.s}.keys WHERE id IN (SELECT key_id FROM batch) ORDER BY id FOR NO KEY UPDATE
       ), touched AS (
         UPDATE ${this.s}.keys k SET last_used_at = GREATEST(k.last_used_at, t.at)
         FROM (SELECT key_id, max(at) AS at FROM batch GROUP BY key_id) t
         WHERE k.id = t.key_id AND k.id IN (SELECT id FROM locked)
       )
       INSERT INTO ${this.s}.usage AS usage (key_id, day, count)
       SELECT key_id, day, count FROM batch WHERE key_id IN (SELECT id FROM locked) ORDER BY key_id, day
       ON CONFLICT (key_id, day) DO UPDATE SET count = usage.count + excluded.count`,
      [entries.map((e) => e.keyId), entries.map((e) => e.day), entries.map((e) => e.count), entries.map((e) => timestamp(e.lastUsedAt))],
    );
  }

  /** A key's usage, days oldest first, or `null` when no such key. */
  async getUsage(id: string): Promise<KeyUsage | null> {
    const { rows } = await this.query<{ last_used_at: number | null; day: string | null; count: number | null }>(
      `SELECT ${ms('k.last_used_at', 'last_used_at')}, to_char(u.day, 'YYYY-MM-DD') AS day, u.count::float8 AS count
       FROM ${this.s}.keys k LEFT JOIN ${this.s}.usage u ON u.key_id = k.id WHERE k.id = $1 ORDER BY u.day`,
      [id],
    );
    if (rows.length === 0) return null;
    return {
      keyId: id,
      lastUsedAt: dateFromEpoch(rows[0]!.last_used_at),
      days: rows.filter((row) => row.day !== null).map((row) => ({ day: row.day!, count: row.count! })),
    };
  }

  /**
   * Be told of key and project changes: this store's writes at once (before their promise
   * resolves), anyone else's (other instances, the app's own SQL) through LISTEN/NOTIFY, and a
   * call with no argument after the listening connection came back (changes may have been missed).
   */
  subscribe(listener: (change?: StoreChange) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('subscribe(listener): listener must be a function');
    if (this.closed) return () => {};
    this.listeners.add(listener);
    if (this.listenConfig && !this.listener) {
      this.listener = new ChangeListener({
        client: this.listenConfig,
        channel: channelOf(this.schema),
        origin: this.origin,
        reconnectMinMs: this.reconnectMinMs,
        reconnectMaxMs: this.reconnectMaxMs,
        heartbeatMs: this.heartbeatMs,
        onChange: (change) => this.report(change),
        onError: this.onError,
      });
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopListening();
    };
  }

  /** Stop listening and, if the store made its pool, end it. A pool you passed stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.stopListening();
    if (this.ownsPool) await this.pool.end();
    else {
      this.pool.off('error', this.onPoolError);
      this.pool.off('connect', this.onPoolConnect);
    }
  }

  private stopListening(): void {
    this.listener?.stop();
    this.listener = undefined;
  }

  private ownProjects(): void {
    if (this.appProjects) {
      throw new KeyscopeError('invalid_argument', "this store reads projects from your app's own table (options.projects): add, change and remove projects in your app");
    }
  }

  /** Tell every subscriber; one listener's failure must not keep the others stale. */
  private report(change?: StoreChange): void {
    for (const listener of [...this.listeners]) {
      try {
        if (change === undefined) listener();
        else listener(change);
      } catch {
        // ignored: see above
      }
    }
  }
}

/** The store's own full read, as defined: findKeyForAuth narrows it, and only it. */
const FIND_KEY_BY_HASH = PostgresStore.prototype.findKeyByHash;
narrowsFindKeyByHash(PostgresStore.prototype.findKeyForAuth, FIND_KEY_BY_HASH);

/**
 * Create or upgrade the keyscope schema (default `keyscope`) to this release's version, in one
 * transaction under an advisory lock: safe to run from several deploys at once. Throws a
 * {@link PostgresStoreError}, changing nothing, for a newer schema or a schema of something else.
 *
 * @example await migrate({ connectionString: process.env.DATABASE_URL }) // { schema: 'keyscope', from: 0, to: 3 }
 */
export async function migrate(options: PostgresMigrateOptions): Promise<MigrationResult> {
  if (options === null || typeof options !== 'object') throw new TypeError('migrate(options): options must be an object');
  const { connectionString, pool } = options;
  if ((connectionString === undefined) === (pool === undefined)) throw new TypeError('migrate(options): give options.connectionString or options.pool (one of them)');
  const schema = schemaName(options.schema, 'options.schema');
  if (pool) {
    const client: PoolClient = await pool.connect();
    try {
      return await migrateWith(client, schema);
    } finally {
      client.release();
    }
  }
  const client = new pg.Client({ connectionString, application_name: 'keyscope-migrate' });
  client.on('error', () => {});
  await client.connect();
  try {
    return await migrateWith(client, schema);
  } finally {
    await client.end().catch(() => {});
  }
}

function ignore(): void {}

function projectQueries(value: unknown): PostgresProjectQueries {
  const queries = value as Partial<PostgresProjectQueries> | null;
  for (const field of ['owns', 'list'] as const) {
    if (typeof queries?.[field] !== 'string' || queries[field].trim() === '') {
      throw new TypeError(`options.projects.${field} must be a SQL query (${field === 'owns' ? '$1 owner id, $2 project id' : '$1 owner id'})`);
    }
  }
  return { owns: queries!.owns!, list: queries!.list! };
}

function checkProject(project: Project): void {
  for (const field of ['id', 'ownerId', 'name'] as const) {
    if (typeof project?.[field] !== 'string' || project[field] === '') {
      throw new KeyscopeError('invalid_argument', `project.${field} must be a non-empty string`);
    }
  }
}

/** A Date as PostgreSQL reads it: ISO-8601 without the `+` JavaScript puts before 5-digit years. */
function timestamp(value: Date | null): string | null {
  return value === null ? null : value.toISOString().replace(/^\+/, '');
}

/**
 * A rate limit and a quota as the six column values (all null for none). The admin layer checks
 * limits; this only keeps NaN and Infinity from reaching the database as an obscure error.
 */
function limitValues(rateLimit: RateLimit | null, quota: Quota | null): [number | null, number | null, number | null, number | null, string | null, string | null] {
  return [
    rateLimit && finiteLimit(rateLimit.limit, 'rateLimit.limit'),
    rateLimit && finiteLimit(rateLimit.windowMs, 'rateLimit.windowMs'),
    quota && finiteLimit(quota.limit, 'quota.limit'),
    quota && finiteLimit(quota.remaining, 'quota.remaining'),
    quota?.refill ?? null,
    quota?.resetAt ? timestamp(new Date(finiteLimit(quota.resetAt.getTime(), 'quota.resetAt'))) : null,
  ];
}

