import type { KeyLimitsUpdate, Quota, QuotaTake, RateLimit } from './limits.js';

/** Access level of a key: a user's whole account, or one project. */
export type KeyLevel = 'user' | 'project';

/** What a successful authentication puts on the request (`req.auth`, `ctx.state.auth`, ...). */
export interface AuthContext {
  keyId: string;
  keyName: string;
  ownerId: string;
  level: KeyLevel;
  /** The project this request acts on; `null` only for a user key on a project-optional route. */
  projectId: string | null;
}

/**
 * How a key is checked: `opaque` keys are looked up by hash; `signed` keys are JWS tokens
 * verified with a public key (their record is kept for lists, usage and revocation).
 */
export type KeyKind = 'opaque' | 'signed';

/** A stored key. The plaintext never appears here: only its SHA-256 `hash` and a display `start`. */
export interface KeyRecord {
  /** Public, non-secret identifier (safe to log). */
  id: string;
  name: string;
  ownerId: string;
  level: KeyLevel;
  /** Required for project-level keys, `null` for user-level keys. */
  projectId: string | null;
  /** Lowercase hex SHA-256 of the whole key (of the whole token, for a signed key). */
  hash: string;
  /** A short non-secret prefix of the key for display, e.g. `ks_4fQ9`. */
  start: string;
  /** `signed` for a signed key (`keys.createSigned`); absent or `opaque` for any other. */
  kind?: KeyKind;
  /** Requests per window this key may make; absent or `null`: none of its own (the level's default applies). */
  rateLimit?: RateLimit | null;
  /** Requests this key may make in all, or per UTC day or month; absent or `null`: unlimited. */
  quota?: Quota | null;
  /**
   * Set by rotation: the first key of this key's line, whose quota this key draws on and whose
   * rate-limit count it shares, so that rotating never starts a fresh allowance (the old key and
   * the new one count as one). Absent or `null`: the key counts for itself.
   */
  limitsFrom?: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

/**
 * What a request's decision reads of a stored key: a {@link KeyRecord} without what only lists and
 * usage show (its hash, display start, kind, creation and last use). See {@link KeyStore.findKeyForAuth}.
 */
export type AuthKeyRecord = Pick<KeyRecord, 'id' | 'name' | 'ownerId' | 'level' | 'projectId' | 'expiresAt' | 'revokedAt' | 'rateLimit' | 'quota' | 'limitsFrom'>;

/** A {@link KeyStore.findKeyForAuth}: the narrower read, and the `findKeyByHash` it stands in for. */
export type NarrowRead = ((hash: string) => Promise<AuthKeyRecord | null>) & { readonly narrows?: (hash: string) => Promise<KeyRecord | null> };

/**
 * Mark `narrow` as the narrower form of `full`: keyscope then calls it on a cache miss while the
 * store's `findKeyByHash` is still `full` (see {@link KeyStore.findKeyForAuth}). `full` must be
 * the read that `narrow` answers as: a store's own `findKeyByHash` for its own `findKeyForAuth`;
 * for a wrapper of another narrow read, that read's `narrows` (never the `findKeyByHash` of the
 * object in hand, which may be a wrapper itself). A function is marked once; a subclass that
 * overrides `findKeyForAuth` marks its own method.
 *
 * @example narrowsFindKeyByHash(counting, store.findKeyForAuth.narrows)
 */
export function narrowsFindKeyByHash(narrow: (hash: string) => Promise<AuthKeyRecord | null>, full: ((hash: string) => Promise<KeyRecord | null>) | undefined): void {
  if (typeof narrow !== 'function') throw new TypeError('narrowsFindKeyByHash(narrow, full): narrow must be a function');
  if (typeof full !== 'function') throw new TypeError('narrowsFindKeyByHash(narrow, full): full must be the findKeyByHash that narrow answers as (a narrow read\'s own narrows, when wrapping one)');
  Object.defineProperty(narrow, 'narrows', { value: full });
}

/**
 * The read a cache miss makes of `store`: its `findKeyForAuth` while that narrows the store's
 * present `findKeyByHash`, else `findKeyByHash` itself.
 */
export function readForAuth(store: KeyStore, hash: string): Promise<AuthKeyRecord | null> {
  const narrow = store.findKeyForAuth;
  const full = store.findKeyByHash;
  return narrow !== undefined && narrow.narrows === full ? narrow.call(store, hash) : full.call(store, hash);
}

/** A project in the project directory. */
export interface Project {
  id: string;
  ownerId: string;
  name: string;
}

/** Requests counted for one key on one UTC day (`YYYY-MM-DD`). */
export interface UsageDay {
  day: string;
  count: number;
}

/** A key's recorded usage. */
export interface KeyUsage {
  keyId: string;
  lastUsedAt: Date | null;
  days: UsageDay[];
}

/** One batched usage write: `count` requests on UTC `day`, the latest at `lastUsedAt`. */
export interface UsageEntry {
  keyId: string;
  day: string;
  count: number;
  lastUsedAt: Date;
}

/**
 * Where projects and their owners live. A store provides one; an app whose projects live in
 * its own database passes its own to `createKeyscope({ projects })`.
 */
export interface ProjectDirectory {
  /** Is `projectId` an existing project owned by `ownerId`? Unknown projects answer `false`. */
  ownsProject(ownerId: string, projectId: string): Promise<boolean> | boolean;
  /** Every project `ownerId` owns. */
  listProjects(ownerId: string): Promise<Project[]> | Project[];
  /**
   * Optional: be told when keys or projects changed, so caches drop what they hold. A store
   * reports the writes made through it (so every keyscope instance on one store object sees
   * them at once) and, where it can, other processes' writes. The listener gets what changed,
   * or no argument for "anything may have changed". Returns a function that unsubscribes.
   */
  subscribe?(listener: (change?: StoreChange) => void): () => void;
}

/**
 * A signed key refused from `from` on (its revocation, or the end of a rotation's grace period),
 * until `until`, when its token expires anyway and the entry can be dropped.
 */
export interface KeyDenial {
  keyId: string;
  from: Date;
  until: Date;
}

/** The read path every store implements: what a request needs. */
export interface KeyStore extends ProjectDirectory {
  /** The key whose hash is `hash`, revoked and expired ones included; `null` when none. */
  findKeyByHash(hash: string): Promise<KeyRecord | null>;
  /**
   * Optional: the same lookup as `findKeyByHash`, answering only what a decision reads: a speed-up,
   * never a place for policy (refuse keys in `findKeyByHash`). A store whose full record costs
   * more to read (a usage join, dates to build) implements it and names the `findKeyByHash` it
   * narrows in its `narrows` property (see {@link narrowsFindKeyByHash}). A cache miss calls it
   * only while `store.findKeyByHash`, as the store object given to `createKeyscope` presents it,
   * is that function: a `findKeyByHash` replaced in any way (on the instance or the prototype, by
   * a subclass, a Proxy or a wrapper) is asked instead, and so is an unmarked `findKeyForAuth`.
   */
  findKeyForAuth?: NarrowRead;
  /**
   * Signed keys only: the deny-list entries still in force at `at` (`until` later than `at`).
   * Needed when `signedKeys` is configured; a request never waits on it once it is loaded.
   */
  listKeyDenials?(at: Date): Promise<KeyDenial[]>;
}

/**
 * One change a store reports to its subscribers: a key's revocation or expiry changed, or a
 * project's owner changed (moved or deleted).
 */
export type StoreChange = { kind: 'key'; keyId: string } | { kind: 'project'; projectId: string };

/**
 * Carries changes between keyscope instances (e.g. Redis pub/sub): what one instance revokes,
 * rotates or says of a project, every instance hears, and drops from its caches.
 */
export interface InvalidationBus {
  /** Tell every instance, this one included. May fail (the bus is an accelerator; cache TTLs bound staleness). */
  publish(change: StoreChange): Promise<void> | void;
  /**
   * Hear every instance's changes; no argument means "anything may have changed" (e.g. after a
   * reconnect, when messages may have been missed). Returns a function that unsubscribes.
   */
  subscribe(listener: (change?: StoreChange) => void): () => void;
}

/** The write path: what `keyscope.keys` needs to issue, list, revoke and rotate keys. */
export interface KeyAdminStore extends KeyStore {
  /** Persist a new key. Rejects if `record.id` or `record.hash` already exists. */
  createKey(record: KeyRecord): Promise<void>;
  /** A key by id, or `null`. */
  getKey(id: string): Promise<KeyRecord | null>;
  /** Every key of `ownerId`, revoked and expired ones included, oldest first. */
  listKeys(ownerId: string): Promise<KeyRecord[]>;
  /** Optional: every key of every owner, revoked and expired ones included, oldest first (`keyscope keys list --all`). */
  listAllKeys?(): Promise<KeyRecord[]>;
  /** Mark a key revoked at `at`; `false` when no such key. Revoking twice keeps the first time. */
  revokeKey(id: string, at: Date): Promise<boolean>;
  /** Set a key's expiry (used by rotation's grace period); `false` when no such key. */
  setKeyExpiry(id: string, expiresAt: Date): Promise<boolean>;
  /**
   * Signed keys only: put a key on the deny-list (one entry per key: a second denial keeps the
   * earlier `from` and the later `until`), and report `{ kind: 'key', keyId }` to subscribers.
   * Entries whose `until` has passed may be dropped. Needed to revoke or rotate a signed key.
   */
  denyKey?(denial: KeyDenial): Promise<void>;
  /**
   * Keys with a quota only: take one unit of `keyId`'s quota at `at` (a rotated key passes the
   * id its `limitsFrom` names), atomically (two instances
   * can never both take the last unit). A refill that is due (`resetAt` ≤ `at`) is applied
   * first. `null` when the key has no quota or does not exist. Needed for keys with a quota.
   */
  consumeQuota?(keyId: string, at: Date): Promise<QuotaTake | null>;
  /**
   * Change a key's limits (a field left `undefined` stays, `null` removes it) and report
   * `{ kind: 'key', keyId }` to subscribers; `false` when no such key. Needed by `keys.setLimits`.
   */
  setKeyLimits?(keyId: string, limits: KeyLimitsUpdate): Promise<boolean>;
  /** Add batched usage: counts are added per key and day, `lastUsedAt` only moves forward. */
  recordUsage(entries: UsageEntry[]): Promise<void>;
  /** A key's usage, or `null` when no such key. */
  getUsage(id: string): Promise<KeyUsage | null>;
  /** Optional: release connections and handles. */
  close?(): Promise<void> | void;
}

/**
 * A key as SQL stores keep it: snake_case columns, times as epoch milliseconds. Stores read rows
 * of this shape back with {@link recordFromRow}.
 */
export interface KeyRow {
  id: string;
  name: string;
  owner_id: string;
  level: KeyLevel;
  project_id: string | null;
  hash: string;
  start: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
  /** `'opaque'` or `'signed'`; a store without the column leaves it out (opaque). */
  kind?: KeyKind;
  /** The rate limit, both or neither; a store without the columns leaves them out. */
  rate_limit?: number | null;
  rate_window_ms?: number | null;
  /** The quota: `quota_limit` null means none; `quota_reset_at` null means it never refills. */
  quota_limit?: number | null;
  quota_remaining?: number | null;
  quota_refill?: 'day' | 'month' | null;
  quota_reset_at?: number | null;
  /** The key whose quota and rate-limit count this one shares (rotation); `null` for its own. */
  limits_from?: string | null;
}

/** The columns of a {@link KeyRow} that an {@link AuthKeyRecord} is read from. */
export type AuthKeyRow = Pick<
  KeyRow,
  'id' | 'name' | 'owner_id' | 'level' | 'project_id' | 'expires_at' | 'revoked_at' | 'rate_limit' | 'rate_window_ms' | 'quota_limit' | 'quota_remaining' | 'quota_refill' | 'quota_reset_at' | 'limits_from'
>;

/**
 * A time kept as epoch milliseconds, as a fresh `Date` (`null` stays `null`).
 *
 * @example lastUsedAt: dateFromEpoch(row.last_used_at)
 */
export function dateFromEpoch(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}

/** A rate limit from its two columns: both, or `null`. */
function rateOf(limit: number | null | undefined, windowMs: number | null | undefined): RateLimit | null {
  return limit == null || windowMs == null ? null : { limit: Number(limit), windowMs: Number(windowMs) };
}

/** A quota from its four columns, or `null` when `limit` is. */
function quotaOf(limit: number | null | undefined, remaining: number | null | undefined, refill: string | null | undefined, resetAt: number | null | undefined): Quota | null {
  if (limit == null) return null;
  return {
    limit: Number(limit),
    remaining: Number(remaining ?? 0),
    refill: refill === 'day' || refill === 'month' ? refill : null,
    resetAt: resetAt == null ? null : new Date(Number(resetAt)),
  };
}

/**
 * The {@link AuthKeyRecord} of a SQL row (`null` for none): each call a fresh object.
 *
 * @example return authRecordFromRow(db.prepare('SELECT id, name, … FROM keys WHERE hash = ?').get(hash))
 */
export function authRecordFromRow(row: AuthKeyRow | undefined | null): AuthKeyRecord | null {
  if (!row) return null;
  return {
    id: row.id,
    name: row.name,
    ownerId: row.owner_id,
    level: row.level,
    projectId: row.project_id,
    expiresAt: dateFromEpoch(row.expires_at),
    revokedAt: dateFromEpoch(row.revoked_at),
    rateLimit: rateOf(row.rate_limit, row.rate_window_ms),
    quota: quotaOf(row.quota_limit, row.quota_remaining, row.quota_refill, row.quota_reset_at),
    limitsFrom: row.limits_from ?? null,
  };
}

/**
 * The columns {@link authRecordFromValues} reads, in the order it reads them: select them so
 * (`AUTH_KEY_COLUMNS.join(', ')`) where rows come back as arrays.
 */
export const AUTH_KEY_COLUMNS = [
  'id',
  'name',
  'owner_id',
  'level',
  'project_id',
  'expires_at',
  'revoked_at',
  'rate_limit',
  'rate_window_ms',
  'quota_limit',
  'quota_remaining',
  'quota_refill',
  'quota_reset_at',
  'limits_from',
] as const satisfies readonly (keyof AuthKeyRow)[];

/** A row of {@link AUTH_KEY_COLUMNS} as an array, in that order; values after them (a hash, say) are ignored. */
export type AuthKeyValues = readonly [
  id: string,
  name: string,
  owner_id: string,
  level: KeyLevel,
  project_id: string | null,
  expires_at: number | null,
  revoked_at: number | null,
  rate_limit: number | null | undefined,
  rate_window_ms: number | null | undefined,
  quota_limit: number | null | undefined,
  quota_remaining: number | null | undefined,
  quota_refill: 'day' | 'month' | null | undefined,
  quota_reset_at: number | null | undefined,
  limits_from: string | null | undefined,
  ...rest: unknown[],
];

/**
 * {@link authRecordFromRow} for a row read as an array (better-sqlite3's `raw()`, pg's
 * `rowMode: 'array'`), which a driver builds faster than an object of named columns.
 *
 * @example return authRecordFromValues(db.prepare(`SELECT ${AUTH_KEY_COLUMNS.join(', ')} FROM keys WHERE hash = ?`).raw().get(hash))
 */
export function authRecordFromValues(values: AuthKeyValues | undefined | null): AuthKeyRecord | null {
  if (!values) return null;
  return {
    id: values[0],
    name: values[1],
    ownerId: values[2],
    level: values[3],
    projectId: values[4],
    expiresAt: dateFromEpoch(values[5]),
    revokedAt: dateFromEpoch(values[6]),
    rateLimit: rateOf(values[7], values[8]),
    quota: quotaOf(values[9], values[10], values[11], values[12]),
    limitsFrom: values[13] ?? null,
  };
}

/**
 * The {@link KeyRecord} of a SQL row (`null` for none): each call a fresh object, dates included.
 *
 * @example return recordFromRow(db.prepare('SELECT … FROM keys WHERE hash = ?').get(hash))
 */
export function recordFromRow(row: KeyRow | undefined | null): KeyRecord | null {
  if (!row) return null;
  // The decision's fields, then the rest added to the same object (spreading it into a new
  // literal instead made every full read about 5 µs slower).
  const record = authRecordFromRow(row) as KeyRecord;
  record.hash = row.hash;
  record.start = row.start;
  record.createdAt = new Date(row.created_at);
  record.lastUsedAt = dateFromEpoch(row.last_used_at);
  record.kind = row.kind === 'signed' ? 'signed' : 'opaque';
  return record;
}
