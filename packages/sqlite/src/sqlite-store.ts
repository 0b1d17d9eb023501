import { chmodSync, closeSync, constants, existsSync, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { AUTH_KEY_COLUMNS, authRecordFromValues, dateFromEpoch, finiteLimit, KeyscopeError, narrowsFindKeyByHash, nextQuotaReset, quotaAt, quotaTime, recordFromRow, wholeNumberOption } from '@keyscope/core';
import type { AuthKeyRecord, AuthKeyValues, KeyAdminStore, KeyDenial, KeyLimitsUpdate, KeyRecord, KeyRow, KeyUsage, Project, Quota, QuotaTake, RateLimit, StoreChange, UsageEntry } from '@keyscope/core';
import { SqliteStoreError } from './errors.js';
import { migrate, newerSchema, SCHEMA_VERSION, schemaVersion } from './schema.js';

/** Options for {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /**
   * Database file, created (owner-only, mode 0600) if missing; `':memory:'` for a private
   * in-memory database. An existing file must be empty or a keyscope database.
   */
  filename: string;
  /**
   * Open read-only: the file must exist and have this release's schema; nothing is written to
   * it (no WAL switch, no migration) and the write methods reject. Default `false`.
   */
  readonly?: boolean;
  /** How often subscribers check the file for another process's changes, in ms. Default 500. */
  watchIntervalMs?: number;
  /** How long an admin write waits for another process's write lock before failing, in ms. Default 5,000. */
  busyTimeoutMs?: number;
  /**
   * How long a usage write waits for another process's write lock, in ms. Default 10. Usage is
   * written on the server's event loop: on a held lock the batch fails fast (`SQLITE_BUSY`) and
   * the core keeps it for the next flush instead of stalling every request.
   */
  usageBusyTimeoutMs?: number;
  /**
   * Most memory SQLite's page cache may hold for this store, in MiB. It grows only as pages are
   * read, so a small database never takes it all. Default 64 (SQLite's own default is 2): room
   * for a file of about 100,000 keys with their usage, so a cache miss is served from memory
   * instead of reading pages back from the file (about 30 % less CPU per lookup at that size).
   */
  pageCacheMiB?: number;
}

const KEY_COLUMNS =
  'id, name, owner_id, level, project_id, hash, start, created_at, expires_at, revoked_at, last_used_at, kind, ' +
  'rate_limit, rate_window_ms, quota_limit, quota_remaining, quota_refill, quota_reset_at, limits_from';

/**
 * What authentication reads (see `AuthKeyRecord`): no usage join, no display or creation
 * columns, read as arrays (better-sqlite3 builds an array row about 2 µs faster than an object of
 * these 14 columns, a fifth of a cache miss). A lookup of several hashes also reads each row's
 * hash, after them, to tell the rows apart.
 */
const AUTH_COLUMNS = AUTH_KEY_COLUMNS.join(', ');
const AUTH_HASH = AUTH_KEY_COLUMNS.length;

/**
 * What the other reads select: the decision's columns and the rest, with `last_used_at` as the
 * later of the key's own (kept from before schema 5) and its latest usage day's (one seek in that
 * table's primary key). A usage entry's last use falls on its day, so the latest day holds the
 * latest use.
 */
const KEY_SELECT =
  `${AUTH_COLUMNS}, hash, start, created_at, kind, ` +
  'nullif(max(coalesce(keys.last_used_at, 0), coalesce((SELECT u.last_used_at FROM usage_days u WHERE u.key_id = keys.id ORDER BY u.day DESC LIMIT 1), 0)), 0) AS last_used_at';

/** A waiting lookup by hash. */
interface Lookup<T> {
  hash: string;
  resolve: (record: T | null) => void;
  reject: (error: unknown) => void;
}

/**
 * Lookups by hash asked for in one turn of the event loop, answered together after it: one
 * statement for one hash, one statement (the hashes as a JSON array) for several.
 */
class HashLookups<Row, T> {
  private waiting: Lookup<T>[] = [];

  constructor(
    private readonly one: Database.Statement<[string], Row>,
    private readonly many: Database.Statement<[string], Row>,
    private readonly convert: (row: Row | undefined) => T | null,
    /** The hash a row of `many` was found by. */
    private readonly hashOf: (row: Row) => string,
    /** Called before the statements run: the store's held read transaction. */
    private readonly read: () => void,
  ) {}

  find(hash: string): Promise<T | null> {
    return new Promise((resolve, reject) => {
      if (this.waiting.length === 0) defer(this.answer);
      this.waiting.push({ hash, resolve, reject });
    });
  }

  /** Answer everything waiting now (also before the file closes). */
  readonly answer = (): void => {
    const lookups = this.waiting;
    if (lookups.length === 0) return;
    this.waiting = [];
    try {
      this.read();
      if (lookups.length === 1) {
        lookups[0]!.resolve(this.convert(this.one.get(lookups[0]!.hash)));
        return;
      }
      const rows = new Map<string, Row>();
      for (const row of this.many.all(JSON.stringify(lookups.map((lookup) => lookup.hash)))) rows.set(this.hashOf(row), row);
      for (const lookup of lookups) lookup.resolve(this.convert(rows.get(lookup.hash)));
    } catch (error) {
      for (const lookup of lookups) lookup.reject(error);
    }
  };
}

/**
 * Run after this turn of the event loop's I/O. Taken when the module loads, so a test's fake
 * timers (which replace the global) cannot hold a lookup back.
 */
const defer: (run: () => void) => void = globalThis.setImmediate;
const startTimer = globalThis.setTimeout;
const stopTimer = globalThis.clearTimeout;

/**
 * How long the read transaction of a cache-miss lookup stays open for the lookups after it, in
 * ms. Each read transaction takes and releases a lock on the -shm file (two fcntl calls: on a
 * virtual machine, more than half the cost of an indexed read); a busy server's misses share one
 * instead. What they cannot see meanwhile is another process's commit of the last few ms, which
 * the watcher reports only every `watchIntervalMs` anyway; this store's own writes end the read
 * first, so its lookups always see them.
 */
const READ_HOLD_MS = 5;

/** A refill is due: the quota refills, and its reset time has come (as `quotaAt` in core decides). */
const REFILL_DUE = 'quota_refill IS NOT NULL AND quota_reset_at IS NOT NULL AND quota_reset_at <= @at';

/** What taking a unit of a quota gives back. */
type QuotaRow = Pick<KeyRow, 'quota_limit' | 'quota_remaining' | 'quota_refill' | 'quota_reset_at'>;

/**
 * The embedded default store: keys, projects and usage in one SQLite file (WAL mode).
 * Stores only each key's SHA-256 hash. Several processes may share the file; a running server
 * that subscribes (as `createKeyscope` does) sees another process's revocation within
 * `watchIntervalMs` plus one request.
 *
 * @example
 * const store = new SqliteStore({ filename: './keyscope.db' })
 * await store.addProject({ id: 'proj_a', ownerId: 'u1', name: 'Alpha' })
 * const ks = createKeyscope({ store })
 */
export class SqliteStore implements KeyAdminStore {
  private readonly db: Database.Database;
  private readonly watchIntervalMs: number;
  private readonly listeners = new Set<(change?: StoreChange) => void>();
  private readonly busyTimeoutMs: number;
  private readonly usageBusyTimeoutMs: number;
  private watcher: ReturnType<typeof setInterval> | undefined;
  private lastDataVersion = 0;
  private lastGeneration = 0;
  private readonly sql: ReturnType<typeof statements>;

  constructor(options: SqliteStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('new SqliteStore(options): options must be an object');
    const { filename } = options;
    if (typeof filename !== 'string' || filename === '') throw new TypeError('options.filename must be a non-empty string (a path or ":memory:")');
    const readonly = options.readonly ?? false;
    if (typeof readonly !== 'boolean') throw new TypeError(`options.readonly must be a boolean, got ${JSON.stringify(readonly)}`);
    this.watchIntervalMs = wholeNumberOption(options.watchIntervalMs ?? 500, 'options.watchIntervalMs', 1);
    this.busyTimeoutMs = wholeNumberOption(options.busyTimeoutMs ?? 5_000, 'options.busyTimeoutMs', 0);
    this.usageBusyTimeoutMs = wholeNumberOption(options.usageBusyTimeoutMs ?? 10, 'options.usageBusyTimeoutMs', 0);
    const pageCacheMiB = wholeNumberOption(options.pageCacheMiB ?? 64, 'options.pageCacheMiB', 1);
    // SQLite takes the size in KiB as a 32-bit number.
    if (pageCacheMiB > 1_048_576) throw new RangeError(`options.pageCacheMiB must be ≤ 1048576 (1 TiB), got ${pageCacheMiB}`);
    const onDisk = filename !== ':memory:';

    if (onDisk && readonly && !existsSync(filename)) {
      throw new SqliteStoreError('sqlite_file_missing', `no keyscope database at ${filename}`);
    }
    // SQLite would create the file with the process umask (often world-readable); it then gives
    // the -wal and -shm the main file's mode, so an owner-only main file covers all three.
    if (onDisk && !readonly) createPrivate(filename);
    this.db = new Database(filename, { timeout: this.busyTimeoutMs, readonly, fileMustExist: readonly });
    try {
      // Before anything writes: a file of another application is refused untouched.
      const version = schemaVersion(this.db, filename);
      // Negative: a size in KiB rather than in pages.
      this.db.pragma(`cache_size = -${pageCacheMiB * 1024}`);
      if (readonly) {
        if (version === 0) throw new SqliteStoreError('sqlite_not_keyscope', `${filename} is not a keyscope database (it is empty)`);
        if (version > SCHEMA_VERSION) throw newerSchema(filename, version);
        if (version < SCHEMA_VERSION) {
          throw new SqliteStoreError(
            'sqlite_schema_older',
            `${filename} has keyscope schema version ${version}, older than version ${SCHEMA_VERSION}; open it once read-write (a server, or any keyscope write command) to upgrade it`,
          );
        }
      } else {
        if (version > SCHEMA_VERSION) throw newerSchema(filename, version);
        // WAL: readers (the servers) never wait for a writer (the CLI), and the reverse.
        this.db.pragma('journal_mode = WAL');
        // better-sqlite3 builds SQLite with NORMAL for WAL files, where a power cut can undo the
        // last commits: a revocation must survive one. Writes are rare (admin, one usage batch a second;
        // quota units, per request, are committed with NORMAL: see consumeQuota).
        this.db.pragma('synchronous = FULL');
        this.db.pragma('foreign_keys = ON');
        migrate(this.db, filename);
        if (onDisk) tightenSidecars(filename);
      }
    } catch (error) {
      this.db.close();
      throw error;
    }

    this.sql = statements(this.db);
    this.fullLookups = new HashLookups(this.sql.byHash, this.sql.byHashes, recordFromRow, (row) => row.hash, this.holdRead);
    this.authLookups = new HashLookups(this.sql.authByHash, this.sql.authByHashes, authRecordFromValues, (row) => row[AUTH_HASH] as string, this.holdRead);
    const batch = this.db.transaction((entries: UsageEntry[]) => {
      for (const { keyId, day, count, lastUsedAt } of entries) {
        const at = lastUsedAt.getTime();
        // Most entries count a key already used that day: its row alone is updated, by primary key.
        // A usage row means its key exists: keyscope never deletes keys, and with foreign keys on
        // (as this store opens the file) a key with usage rows cannot be deleted. A key deleted by
        // hand with foreign keys off keeps adding to its leftover rows of that day, which nothing reads.
        if (this.sql.bumpUsage.run(count, at, keyId, day).changes === 0) this.sql.addUsage.run(keyId, day, count, at, keyId);
      }
    });
    // Immediate: take the write lock up front, so the busy timeout (not a failed upgrade from a
    // read snapshot) decides when another process's lock makes the batch wait for the next flush.
    this.recordBatch = (entries) => batch.immediate(entries);
  }

  private readonly recordBatch: (entries: UsageEntry[]) => void;

  /**
   * Add a project, or replace the owner and name of the project with this id (for seeding;
   * use {@link SqliteStore.createProject} where an existing id must not change hands).
   */
  async addProject(project: Project): Promise<void> {
    checkProject(project);
    this.write(() => this.sql.upsertProject.run(project.id, project.ownerId, project.name));
    this.report({ kind: 'project', projectId: project.id });
  }

  /**
   * Add a new project; rejects with `invalid_argument` ("... already exists") if the id is
   * taken, atomically, so two concurrent creations never hand one project to another owner.
   */
  async createProject(project: Project): Promise<void> {
    checkProject(project);
    try {
      this.write(() => this.sql.insertProject.run(project.id, project.ownerId, project.name));
    } catch (error) {
      if ((error as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) {
        throw new KeyscopeError('invalid_argument', `project ${project.id} already exists`, { cause: error });
      }
      throw error;
    }
    this.report({ kind: 'project', projectId: project.id });
  }

  /**
   * Delete a project; `false` if unknown. Its keys stay (their history with them) but stop
   * working: their owner no longer owns the project.
   */
  async removeProject(id: string): Promise<boolean> {
    const removed = this.write(() => this.sql.deleteProject.run(id)).changes > 0;
    if (removed) this.report({ kind: 'project', projectId: id });
    return removed;
  }

  /** One project by id, or `null`. */
  async getProject(id: string): Promise<Project | null> {
    return this.sql.project.get(id) ?? null;
  }

  /**
   * The key whose SHA-256 is `hash` (revoked and expired ones included), or `null`. Lookups
   * asked for in one turn of the event loop (a busy server's cache misses, one per request it
   * read) are answered together after that turn, by one statement: SQLite then walks its index
   * once for all of them, at a fraction of the cost of one lookup each.
   */
  findKeyByHash(hash: string): Promise<KeyRecord | null> {
    return this.fullLookups.find(hash);
  }

  /**
   * What a cache miss in `createKeyscope` reads: the same lookup as {@link SqliteStore.findKeyByHash},
   * batched the same way, without the columns only lists show and without the usage join for the
   * last use (about a quarter less work per lookup). Where `findKeyByHash` has been replaced (a
   * subclass, or a wrapper set on the instance), the replacement answers instead.
   */
  findKeyForAuth(hash: string): Promise<AuthKeyRecord | null> {
    // Called with findKeyByHash replaced (createKeyscope then never calls this): answer through the replacement.
    const full = this.findKeyByHash;
    if (full !== FIND_KEY_BY_HASH) return full.call(this, hash);
    return this.authLookups.find(hash);
  }

  private readonly fullLookups: HashLookups<KeyRow, KeyRecord>;
  private readonly authLookups: HashLookups<AuthKeyValues, AuthKeyRecord>;

  /** Is `projectId` a project of `ownerId`? Unknown projects answer `false`. */
  async ownsProject(ownerId: string, projectId: string): Promise<boolean> {
    return this.sql.owns.get(projectId, ownerId) !== undefined;
  }

  /** Every project of `ownerId`, in the order they were added. */
  async listProjects(ownerId: string): Promise<Project[]> {
    return this.sql.projects.all(ownerId);
  }

  /** Persist a new key; rejects with `invalid_argument` if its id or hash exists. */
  async createKey(record: KeyRecord): Promise<void> {
    try {
      this.write(() => this.sql.insertKey.run({
        id: record.id,
        name: record.name,
        owner_id: record.ownerId,
        level: record.level,
        project_id: record.projectId,
        hash: record.hash,
        start: record.start,
        created_at: record.createdAt.getTime(),
        expires_at: time(record.expiresAt),
        revoked_at: time(record.revokedAt),
        last_used_at: time(record.lastUsedAt),
        kind: record.kind ?? 'opaque',
        ...limitColumns(record.rateLimit ?? null, record.quota ?? null),
        limits_from: record.limitsFrom ?? null,
      }));
    } catch (error) {
      if ((error as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) {
        throw new KeyscopeError('invalid_argument', `a key with id ${record.id} or the same hash already exists, or the record is inconsistent`, { cause: error });
      }
      throw error;
    }
  }

  /** A key by id, or `null`. */
  async getKey(id: string): Promise<KeyRecord | null> {
    return recordFromRow(this.sql.byId.get(id));
  }

  /** Every key of `ownerId`, oldest first. */
  async listKeys(ownerId: string): Promise<KeyRecord[]> {
    return this.sql.byOwner.all(ownerId).map((row) => recordFromRow(row)!);
  }

  /** Every key of every owner, oldest first. */
  async listAllKeys(): Promise<KeyRecord[]> {
    return this.sql.all.all().map((row) => recordFromRow(row)!);
  }

  /** Mark a key revoked at `at` (a second revocation keeps the first time); `false` if unknown. */
  async revokeKey(id: string, at: Date): Promise<boolean> {
    const found = this.write(() => this.sql.revoke.run(at.getTime(), id)).changes > 0;
    if (found) this.report({ kind: 'key', keyId: id });
    return found;
  }

  /** Set a key's expiry; `false` if unknown. */
  async setKeyExpiry(id: string, expiresAt: Date): Promise<boolean> {
    const found = this.write(() => this.sql.expire.run(expiresAt.getTime(), id)).changes > 0;
    if (found) this.report({ kind: 'key', keyId: id });
    return found;
  }

  /**
   * Take one unit of a key's quota at `at`, in one UPDATE ... RETURNING: the write lock makes it
   * atomic across every process on the file, and a due refill is applied in the same statement.
   * When no row comes back, one read tells an exhausted quota from no quota. Not reported to
   * subscribers (it is per request) and it leaves the change counter alone.
   *
   * Committed with `synchronous = NORMAL`: a commit with FULL waits for an fsync (milliseconds,
   * on the event loop) on every request, and what a power cut can undo here is a few units
   * taken, not a revocation. The next FULL commit makes them durable too.
   */
  async consumeQuota(keyId: string, at: Date): Promise<QuotaTake | null> {
    const now = quotaTime(at);
    const values = { id: keyId, at: now, next_day: nextQuotaReset('day', now), next_month: nextQuotaReset('month', now) };
    this.endRead();
    this.sql.syncNormal.run();
    let taken: QuotaRow | undefined;
    try {
      taken = this.sql.consumeQuota.get(values);
    } finally {
      this.sql.syncFull.run();
    }
    if (taken) return { granted: true, remaining: taken.quota_remaining!, limit: taken.quota_limit!, refill: taken.quota_refill ?? null, resetAt: dateFromEpoch(taken.quota_reset_at ?? null) };
    const quota = recordFromRow(this.sql.byId.get(keyId))?.quota;
    if (!quota) return null;
    const current = quotaAt(quota, now);
    return { granted: false, remaining: 0, limit: current.limit, refill: current.refill, resetAt: current.resetAt };
  }

  /**
   * Change a key's rate limit and quota (`undefined` leaves one, `null` removes it); `false` if
   * unknown. Reports `{ kind: 'key', keyId }`; other processes' watchers hear it as "anything
   * may have changed".
   */
  async setKeyLimits(keyId: string, limits: KeyLimitsUpdate): Promise<boolean> {
    const columns = limitColumns(limits.rateLimit ?? null, limits.quota ?? null);
    const found = this.write(() =>
      this.sql.setLimits.run({ id: keyId, set_rate: limits.rateLimit === undefined ? 0 : 1, set_quota: limits.quota === undefined ? 0 : 1, ...columns }),
    ).changes > 0;
    if (found) this.report({ kind: 'key', keyId });
    return found;
  }

  /**
   * Put a signed key on the deny-list, or widen its entry (the earlier `from`, the later
   * `until`), dropping entries whose `until` has passed in the same transaction. Reports
   * `{ kind: 'key', keyId }`; other processes' watchers hear it as "anything may have changed".
   */
  async denyKey(denial: KeyDenial): Promise<void> {
    this.write(() => {
      this.sql.deny.run(denial.keyId, denial.from.getTime(), denial.until.getTime());
      this.sql.dropDenials.run(Date.now());
    });
    this.report({ kind: 'key', keyId: denial.keyId });
  }

  /** The deny-list entries whose `until` is later than `at`, by key id. */
  async listKeyDenials(at: Date): Promise<KeyDenial[]> {
    return this.sql.denials.all(at.getTime()).map((row) => ({ keyId: row.key_id, from: new Date(row.from_at), until: new Date(row.until_at) }));
  }

  /**
   * Add one batch of usage in one transaction: counts add up per key and UTC day, `lastUsedAt`
   * only moves forward. The core calls this every second, so a crash loses at most that second.
   * Waits at most `usageBusyTimeoutMs` for another process's write lock, then rejects with
   * `SQLITE_BUSY`, having written nothing.
   */
  async recordUsage(entries: UsageEntry[]): Promise<void> {
    if (entries.length === 0) return;
    this.endRead();
    this.db.pragma(`busy_timeout = ${this.usageBusyTimeoutMs}`);
    try {
      this.recordBatch(entries);
    } finally {
      this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    }
  }

  /** A key's usage per UTC day (oldest first) and last use, or `null` if unknown. */
  async getUsage(id: string): Promise<KeyUsage | null> {
    // One read transaction, so the days and lastUsedAt come from the same batch.
    this.endRead();
    return this.db.transaction(() => {
      const row = this.sql.byId.get(id);
      if (!row) return null;
      return { keyId: id, lastUsedAt: dateFromEpoch(row.last_used_at), days: this.sql.usageDays.all(id) };
    })();
  }

  /**
   * Be told when keys or projects change. Writes through this store are reported right after
   * they commit, with what changed (`{ kind: 'key', keyId }` for a revocation, expiry, denial or limits,
   * `{ kind: 'project', projectId }` for a project added, moved or removed). Another
   * connection's writes (another process, the CLI) are found by polling SQLite's
   * `PRAGMA data_version` every `watchIntervalMs` while anyone listens, and reported with no
   * argument, meaning "anything may have changed". Returns the unsubscribe function.
   */
  subscribe(listener: (change?: StoreChange) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('subscribe(listener): listener must be a function');
    this.listeners.add(listener);
    if (!this.watcher && this.db.open) {
      this.endRead();
      this.lastDataVersion = this.sql.dataVersion.get()!;
      this.lastGeneration = this.sql.generation.get()!;
      this.watcher = setInterval(() => this.poll(), this.watchIntervalMs);
      this.watcher.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopWatching();
    };
  }

  /** Stop watching and close the file. Safe to call twice. */
  close(): void {
    // Lookups already asked for are answered from the open file.
    this.fullLookups.answer();
    this.authLookups.answer();
    this.endRead();
    this.stopWatching();
    this.listeners.clear();
    if (this.db.open) this.db.close();
  }

  /**
   * Run a write that may bump the change counter, and keep a watcher from reporting our own
   * change back to us. Reading the counter before and after, under the write lock, tells our
   * bump apart from another process's that the watcher has not seen yet.
   */
  private write<T>(run: () => T): T {
    // Inside the held read, better-sqlite3 would nest this in a savepoint, committed only with it.
    this.endRead();
    return this.db.transaction(() => {
      if (!this.watcher) return run();
      const before = this.sql.generation.get();
      const result = run();
      if (before === this.lastGeneration) this.lastGeneration = this.sql.generation.get()!;
      return result;
    }).immediate();
  }

  /** Tell every listener about a write of ours that has committed. */
  private report(change: StoreChange): void {
    this.notify(change);
  }

  private notify(change?: StoreChange): void {
    for (const listener of [...this.listeners]) {
      try {
        if (change === undefined) listener();
        else listener({ ...change });
      } catch {
        // One listener's failure must not keep the others stale.
      }
    }
  }

  private poll(): void {
    let changed: boolean;
    try {
      // A held read would keep showing the snapshot it began with, data_version included.
      this.endRead();
      // data_version moves only when another connection commits; our own writes leave it.
      const dataVersion = this.sql.dataVersion.get()!;
      if (dataVersion === this.lastDataVersion) return;
      this.lastDataVersion = dataVersion;
      // Another process's usage writes move data_version too; only real changes bump this.
      const generation = this.sql.generation.get()!;
      changed = generation !== this.lastGeneration;
      this.lastGeneration = generation;
    } catch {
      // Busy or closed: nothing is known to have changed; try again next tick.
      return;
    }
    if (changed) this.notify();
  }

  /** The timer that ends the held read transaction; `undefined` when none is open. */
  private holding: ReturnType<typeof setTimeout> | undefined;

  /** Open the read transaction that lookups share for `READ_HOLD_MS`, unless one is open. */
  private readonly holdRead = (): void => {
    if (this.holding !== undefined || this.db.inTransaction) return;
    this.sql.beginRead.run();
    this.holding = startTimer(this.endRead, READ_HOLD_MS);
    this.holding.unref?.();
  };

  /** End the held read transaction, if open: before any write, poll or other transaction. */
  private readonly endRead = (): void => {
    if (this.holding === undefined) return;
    stopTimer(this.holding);
    this.holding = undefined;
    if (!this.db.open || !this.db.inTransaction) return;
    try {
      this.sql.endRead.run();
    } catch {
      // A read transaction has nothing to lose; it must not stay open under the next write.
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
    }
  };

  private stopWatching(): void {
    if (this.watcher) clearInterval(this.watcher);
    this.watcher = undefined;
  }
}

/** The store's own full read, as defined: findKeyForAuth narrows it, and only it. */
const FIND_KEY_BY_HASH = SqliteStore.prototype.findKeyByHash;
narrowsFindKeyByHash(SqliteStore.prototype.findKeyForAuth, FIND_KEY_BY_HASH);

/** Every statement the store runs, prepared once. */
function statements(db: Database.Database) {
  return {
    byHash: db.prepare<[string], KeyRow>(`SELECT ${KEY_SELECT} FROM keys WHERE hash = ?`),
    // Several hashes as one JSON array: one statement for any number of them, through the hash index.
    byHashes: db.prepare<[string], KeyRow>(`SELECT ${KEY_SELECT} FROM keys WHERE hash IN (SELECT value FROM json_each(?))`),
    authByHash: db.prepare<[string], AuthKeyValues>(`SELECT ${AUTH_COLUMNS} FROM keys WHERE hash = ?`).raw(),
    authByHashes: db.prepare<[string], AuthKeyValues>(`SELECT ${AUTH_COLUMNS}, hash FROM keys WHERE hash IN (SELECT value FROM json_each(?))`).raw(),
    byId: db.prepare<[string], KeyRow>(`SELECT ${KEY_SELECT} FROM keys WHERE id = ?`),
    byOwner: db.prepare<[string], KeyRow>(`SELECT ${KEY_SELECT} FROM keys WHERE owner_id = ? ORDER BY created_at, rowid`),
    all: db.prepare<[], KeyRow>(`SELECT ${KEY_SELECT} FROM keys ORDER BY created_at, rowid`),
    insertKey: db.prepare(
      `INSERT INTO keys (${KEY_COLUMNS}) VALUES (@id, @name, @owner_id, @level, @project_id, @hash, @start, @created_at, @expires_at, @revoked_at, @last_used_at, @kind,
       @rate_limit, @rate_window_ms, @quota_limit, @quota_remaining, @quota_refill, @quota_reset_at, @limits_from)`,
    ),
    consumeQuota: db.prepare<[{ id: string; at: number; next_day: number; next_month: number }], QuotaRow>(
      `UPDATE keys SET
         quota_remaining = CASE WHEN ${REFILL_DUE} THEN quota_limit - 1 ELSE quota_remaining - 1 END,
         quota_reset_at = CASE WHEN ${REFILL_DUE} THEN (CASE quota_refill WHEN 'day' THEN @next_day ELSE @next_month END) ELSE quota_reset_at END
       WHERE id = @id AND quota_limit IS NOT NULL AND (CASE WHEN ${REFILL_DUE} THEN quota_limit ELSE quota_remaining END) > 0
       RETURNING quota_limit, quota_remaining, quota_refill, quota_reset_at`,
    ),
    // Names all four columns the change trigger watches, even when they stay as they are.
    setLimits: db.prepare<[{ id: string; set_rate: number; set_quota: number } & LimitColumns]>(
      `UPDATE keys SET
         rate_limit = CASE WHEN @set_rate THEN @rate_limit ELSE rate_limit END,
         rate_window_ms = CASE WHEN @set_rate THEN @rate_window_ms ELSE rate_window_ms END,
         quota_limit = CASE WHEN @set_quota THEN @quota_limit ELSE quota_limit END,
         quota_remaining = CASE WHEN @set_quota THEN @quota_remaining ELSE quota_remaining END,
         quota_refill = CASE WHEN @set_quota THEN @quota_refill ELSE quota_refill END,
         quota_reset_at = CASE WHEN @set_quota THEN @quota_reset_at ELSE quota_reset_at END
       WHERE id = @id`,
    ),
    revoke: db.prepare<[number, string]>('UPDATE keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?'),
    expire: db.prepare<[number, string]>('UPDATE keys SET expires_at = ? WHERE id = ?'),
    deny: db.prepare<[string, number, number]>(
      `INSERT INTO key_denials (key_id, from_at, until_at) VALUES (?, ?, ?)
       ON CONFLICT (key_id) DO UPDATE SET from_at = min(from_at, excluded.from_at), until_at = max(until_at, excluded.until_at)`,
    ),
    dropDenials: db.prepare<[number]>('DELETE FROM key_denials WHERE until_at <= ?'),
    denials: db.prepare<[number], { key_id: string; from_at: number; until_at: number }>(
      'SELECT key_id, from_at, until_at FROM key_denials WHERE until_at > ? ORDER BY key_id',
    ),
    bumpUsage: db.prepare<[number, number, string, string]>(
      'UPDATE usage_days SET count = count + ?, last_used_at = max(coalesce(last_used_at, 0), ?) WHERE key_id = ? AND day = ?',
    ),
    // The day's first use: usage of a key that does not exist is dropped, as MemoryStore does.
    addUsage: db.prepare<[string, string, number, number, string]>(
      `INSERT INTO usage_days (key_id, day, count, last_used_at) SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM keys WHERE id = ?)
       ON CONFLICT (key_id, day) DO UPDATE SET count = count + excluded.count, last_used_at = max(coalesce(last_used_at, 0), excluded.last_used_at)`,
    ),
    usageDays: db.prepare<[string], { day: string; count: number }>('SELECT day, count FROM usage_days WHERE key_id = ? ORDER BY day'),
    owns: db.prepare<[string, string], number>('SELECT 1 FROM projects WHERE id = ? AND owner_id = ?').pluck(),
    projects: db.prepare<[string], Project>('SELECT id, owner_id AS ownerId, name FROM projects WHERE owner_id = ? ORDER BY rowid'),
    project: db.prepare<[string], Project>('SELECT id, owner_id AS ownerId, name FROM projects WHERE id = ?'),
    insertProject: db.prepare<[string, string, string]>('INSERT INTO projects (id, owner_id, name) VALUES (?, ?, ?)'),
    deleteProject: db.prepare<[string]>('DELETE FROM projects WHERE id = ?'),
    upsertProject: db.prepare<[string, string, string]>(
      'INSERT INTO projects (id, owner_id, name) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET owner_id = excluded.owner_id, name = excluded.name',
    ),
    dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
    beginRead: db.prepare('BEGIN'),
    endRead: db.prepare('COMMIT'),
    syncNormal: db.prepare('PRAGMA synchronous = NORMAL'),
    syncFull: db.prepare('PRAGMA synchronous = FULL'),
    generation: db.prepare<[], number>('SELECT generation FROM changes WHERE id = 1').pluck(),
  };
}

function checkProject(project: Project): void {
  for (const field of ['id', 'ownerId', 'name'] as const) {
    if (typeof project?.[field] !== 'string' || project[field] === '') {
      throw new KeyscopeError('invalid_argument', `project.${field} must be a non-empty string`);
    }
  }
}

/** Create `filename` empty and owner-only if it does not exist; an existing file keeps its mode. */
function createPrivate(filename: string): void {
  try {
    closeSync(openSync(filename, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600));
  } catch {
    // It exists (keep its mode: the operator's choice), or SQLite will say why it cannot open it.
  }
}

/**
 * SQLite gives a new -wal/-shm the main file's mode, but one left by a crash keeps its own:
 * never let it be readable by more than the database is.
 */
function tightenSidecars(filename: string): void {
  try {
    const main = statSync(filename).mode & 0o777;
    for (const suffix of ['-wal', '-shm', '-journal']) {
      const side = `${filename}${suffix}`;
      if (!existsSync(side)) continue;
      const mode = statSync(side).mode & 0o777;
      if ((mode & ~main) !== 0) chmodSync(side, mode & main);
    }
  } catch {
    // Not ours to change (another user's file): SQLite's own rule still applies to new ones.
  }
}

function time(value: Date | null): number | null {
  return value === null ? null : value.getTime();
}

/** A key's limits as its six columns (all null for none). */
interface LimitColumns {
  rate_limit: number | null;
  rate_window_ms: number | null;
  quota_limit: number | null;
  quota_remaining: number | null;
  quota_refill: 'day' | 'month' | null;
  quota_reset_at: number | null;
}

/**
 * The columns of a rate limit and a quota. The admin layer checks limits; this only keeps NaN
 * and Infinity out of the file (SQLite would store NaN as NULL, and a quota would change meaning).
 */
function limitColumns(rateLimit: RateLimit | null, quota: Quota | null): LimitColumns {
  return {
    rate_limit: rateLimit && finiteLimit(rateLimit.limit, 'rateLimit.limit'),
    rate_window_ms: rateLimit && finiteLimit(rateLimit.windowMs, 'rateLimit.windowMs'),
    quota_limit: quota && finiteLimit(quota.limit, 'quota.limit'),
    quota_remaining: quota && finiteLimit(quota.remaining, 'quota.remaining'),
    quota_refill: quota?.refill ?? null,
    quota_reset_at: quota?.resetAt ? finiteLimit(quota.resetAt.getTime(), 'quota.resetAt') : null,
  };
}

