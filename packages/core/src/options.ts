import { DEFAULT_KEY_PREFIX, assertKeyPrefix, keyLength } from './key-format.js';
import type { KeyscopeErrorCode } from './errors.js';
import type { SignedKeyOptions } from './signed.js';
import type { AttemptThrottle } from './throttle.js';
import type { LevelQuotaDefaults } from './admin.js';
import { MAX_QUOTA, RATE_LIMIT_BOUNDS } from './limits.js';
import type { RateLimit } from './limits.js';
import type { RateLimiter } from './rate-limit.js';
import { USAGE_BACKLOG_LIMIT } from './usage.js';
import type { InvalidationBus, KeyAdminStore, KeyLevel, KeyStore, ProjectDirectory } from './types.js';

/** Options for {@link createKeyscope}. Only `store` is required. */
export interface KeyscopeOptions {
  /** Where keys (and, unless `projects` is given, projects) live. */
  store: KeyStore;
  /** Your own project directory, when projects live in your app's database. Defaults to `store`. */
  projects?: ProjectDirectory;
  /** Key prefix; keys look like `<prefix>_...`. Default `'ks'`. */
  keyPrefix?: string;
  /** Header carrying the key. Default `'x-api-key'`. */
  header?: string;
  /** Header naming the project. Default `'x-project-id'`. */
  projectHeader?: string;
  /** Paths on which a user-level key needs no project header (exact match). Default `['/validate', '/projects']`. */
  projectOptionalPaths?: readonly string[];
  /**
   * Caches of resolved keys and project ownership. Defaults: `max` 10,000 entries, `ttlMs` 60 s;
   * "not found" and "not owned" answers live in their own smaller caches (`negativeMax` 1,000,
   * `negativeTtlMs` 5 s), so made-up keys and project ids never push real entries out.
   */
  cache?: { max?: number; ttlMs?: number; negativeMax?: number; negativeTtlMs?: number };
  /** A store call slower than this answers 503 `auth_unavailable`. Default 2,000 ms. */
  storeTimeoutMs?: number;
  /** `Retry-After` seconds sent with 503. Default 5. */
  retryAfterSeconds?: number;
  /** Realm named in the `WWW-Authenticate` challenge. Default `'api'`. */
  realm?: string;
  /**
   * Usage batching; `false` records no usage. Default: flush every 1,000 ms. While the store
   * refuses writes, unsent counts merge by key and day, at most `maxBacklog` key-days (default
   * 100,000; past it the oldest days are dropped and reported).
   */
  usage?: false | { flushIntervalMs?: number; maxBacklog?: number };
  /**
   * Throttle failed attempts per client address (needs `clientIp` in the input). Default off.
   * `maxClients` (default 10,000) bounds the table; IPv6 addresses count per /64. A throttle
   * object (`{ retryAfter, fail }`, e.g. a shared one on Redis) counts instead of the in-memory one.
   */
  throttle?: false | { maxFailures: number; windowMs: number; maxClients?: number } | AttemptThrottle;
  /**
   * Also accept keys made elsewhere and stored with `keys.import` (printable ASCII without
   * spaces, `minLength` 20 to `maxLength` 256 by default). Such keys skip the offline shape and
   * checksum check, so every unknown one costs a store read. Default `false`.
   */
  importedKeys?: boolean | { minLength?: number; maxLength?: number };
  /**
   * Also read the key from `Authorization: Bearer <key>` (for clients and gateways that only send
   * that). A request with both headers and different keys is refused. Default `false`.
   */
  bearer?: boolean;
  /**
   * Told of what happens, for logs and metrics: never the key or its hash, only the key id (or the
   * display start of a well-formed unknown key). Must not throw; it runs on the request path.
   * @example onEvent: (e) => logger.info(e, `keyscope ${e.type}`)
   */
  onEvent?: (event: KeyscopeEvent) => void;
  /**
   * Carries changes between instances (e.g. `@keyscope/redis`): revocations, rotations and
   * `invalidateProject` made through this instance are published, and every published change
   * drops what this instance has cached. Default: none (stores that report other processes'
   * changes, and the cache TTL, bound staleness).
   */
  bus?: InvalidationBus;
  /**
   * Also accept signed keys: JWS tokens that carry their scope, verified with a public key and
   * revoked through a deny-list in the store (`keys.createSigned` issues them). Opaque keys keep
   * working beside them; a key's shape decides which check it gets. Default: none.
   * @example signedKeys: { issuer: 'https://api.example.com', audience: 'api', keys: { keys: [publicJwk] } }
   */
  signedKeys?: SignedKeyOptions;
  /**
   * Per-key limits. A key's own rate limit (set with `keys.create` or `keys.setLimits`) wins over
   * its level's `rateLimit` here, which applies to every key of the level without one, signed
   * keys included. A level's `quota` is given to each new key of that level that `keys.create`
   * gives none (quotas are counted in the store, so they belong to the key). `limiter` counts
   * rate limits: default in memory, per process; `createRedisRateLimiter` from `@keyscope/redis`
   * counts once for every instance.
   * @example limits: { user: { rateLimit: { limit: 600, windowMs: 60_000 } }, limiter: createRedisRateLimiter({ client }) }
   */
  limits?: {
    user?: { rateLimit?: RateLimit; quota?: { limit: number; refill?: 'day' | 'month' | null } };
    project?: { rateLimit?: RateLimit; quota?: { limit: number; refill?: 'day' | 'month' | null } };
    limiter?: RateLimiter;
  };
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
}

/** What `onEvent` is told. No event carries a key or a key hash. */
export type KeyscopeEvent =
  | { type: 'authenticated'; keyId: string; ownerId: string; level: KeyLevel; projectId: string | null }
  | {
      type: 'refused';
      code: KeyscopeErrorCode;
      status: number;
      /** The key's id when the key is known (revoked, expired, or refused a project). */
      keyId?: string;
      /** The display start of a well-formed key that is not known. */
      keyStart?: string;
    }
  | {
      type: 'store_error';
      /** What failed: a store read, the deny-list of signed keys, or a signed key's verification keys (e.g. a JWKS fetch). */
      operation: 'findKeyByHash' | 'ownsProject' | 'listKeyDenials' | 'verifySignedKey';
      error: unknown;
    }
  | {
      type: 'usage_flush_failed';
      error: unknown;
      /** Key-day counts waiting for the next flush. */
      backlog: number;
      /** Requests dropped so far because the backlog was full. */
      dropped: number;
    }
  | { type: 'throttle_tripped'; client: string; retryAfterSeconds: number }
  | {
      /** A key's quota could not be counted (the store failed: 503), or a custom limiter threw (503). */
      type: 'limit_error';
      operation: 'consumeQuota' | 'rateLimit';
      keyId: string;
      error: unknown;
    }
  | { type: 'bus_error'; error: unknown };

/** {@link KeyscopeOptions} checked, with every default filled in. */
export interface ResolvedOptions {
  store: KeyStore;
  projects: ProjectDirectory;
  prefix: string;
  keyLength: number;
  /** Header names as configured (for messages) and lowercased (for lookups). */
  displayHeader: string;
  displayProjectHeader: string;
  keyHeader: string;
  projectHeader: string;
  optionalPaths: ReadonlySet<string>;
  cache: { max: number; ttlMs: number; negativeMax: number; negativeTtlMs: number };
  storeTimeoutMs: number;
  retryAfterSeconds: number;
  realm: string;
  usage: false | { flushIntervalMs: number; maxBacklog: number; store: KeyAdminStore };
  throttle: false | { maxFailures: number; windowMs: number; maxClients: number } | AttemptThrottle;
  importedKeys: false | { minLength: number; maxLength: number };
  bearer: boolean;
  onEvent: ((event: KeyscopeEvent) => void) | undefined;
  bus: InvalidationBus | undefined;
  /** Each level's default rate limit (`null`: none), the quota new keys get, and a custom limiter. */
  limits: { rate: Record<KeyLevel, RateLimit | null>; quota: LevelQuotaDefaults; limiter: RateLimiter | undefined };
  now: () => number;
}

const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/**
 * Check every option and fill in the defaults. Bad configuration throws a `TypeError` or
 * `RangeError` naming the option; the object passed in is never modified.
 *
 * @example resolveOptions({ store }).cache.max === 10_000
 */
export function resolveOptions(options: KeyscopeOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('createKeyscope(options): options must be an object');
  const { store } = options;
  if (!store || typeof store.findKeyByHash !== 'function') {
    throw new TypeError('options.store must implement findKeyByHash (see KeyStore)');
  }
  if (store.findKeyForAuth !== undefined && typeof store.findKeyForAuth !== 'function') {
    throw new TypeError('options.store.findKeyForAuth must be a function when present (see KeyStore)');
  }
  const projects = options.projects ?? store;
  if (typeof projects.ownsProject !== 'function' || typeof projects.listProjects !== 'function') {
    throw new TypeError('options.projects (or options.store) must implement ownsProject and listProjects');
  }
  const prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  assertKeyPrefix(prefix, 'options.keyPrefix');
  const displayHeader = headerName(options.header ?? 'X-API-Key', 'options.header');
  const displayProjectHeader = headerName(options.projectHeader ?? 'X-Project-ID', 'options.projectHeader');
  const max = wholeNumberOption(options.cache?.max ?? 10_000, 'options.cache.max', 1);
  const realm = options.realm ?? 'api';
  if (typeof realm !== 'string' || !/^[\x20-\x7e]*$/.test(realm) || realm.includes('"')) {
    throw new TypeError('options.realm must be printable ASCII without quotes');
  }
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') throw new TypeError('options.now must be a function returning epoch milliseconds');
  const usage = options.usage ?? {};
  const recordsUsage = usage !== false && typeof (store as Partial<KeyAdminStore>).recordUsage === 'function';
  return {
    store,
    projects,
    prefix,
    keyLength: keyLength(prefix),
    displayHeader,
    displayProjectHeader,
    keyHeader: displayHeader.toLowerCase(),
    projectHeader: displayProjectHeader.toLowerCase(),
    optionalPaths: pathSet(options.projectOptionalPaths ?? ['/validate', '/projects']),
    cache: {
      max,
      ttlMs: wholeNumberOption(options.cache?.ttlMs ?? 60_000, 'options.cache.ttlMs', 0),
      negativeMax: wholeNumberOption(options.cache?.negativeMax ?? Math.min(1_000, max), 'options.cache.negativeMax', 1),
      negativeTtlMs: wholeNumberOption(options.cache?.negativeTtlMs ?? 5_000, 'options.cache.negativeTtlMs', 0),
    },
    storeTimeoutMs: wholeNumberOption(options.storeTimeoutMs ?? 2_000, 'options.storeTimeoutMs', 1),
    retryAfterSeconds: wholeNumberOption(options.retryAfterSeconds ?? 5, 'options.retryAfterSeconds', 0),
    realm,
    usage: recordsUsage
      ? {
          flushIntervalMs: wholeNumberOption(usage.flushIntervalMs ?? 1_000, 'options.usage.flushIntervalMs', 1),
          maxBacklog: wholeNumberOption(usage.maxBacklog ?? USAGE_BACKLOG_LIMIT, 'options.usage.maxBacklog', 1),
          store: store as KeyAdminStore,
        }
      : false,
    throttle: options.throttle ? throttleLimits(options.throttle) : false,
    importedKeys: importedKeyLimits(options.importedKeys ?? false),
    bearer: flag(options.bearer ?? false, 'options.bearer'),
    onEvent: optionalFunction(options.onEvent, 'options.onEvent'),
    bus: checkBus(options.bus),
    limits: levelLimits(options.limits),
    now,
  };
}

function atMost(value: number, max: number, option: string): number {
  if (value > max) throw new RangeError(`${option} must be ≤ ${max}, got ${value}`);
  return value;
}

function levelLimits(value: KeyscopeOptions['limits']): ResolvedOptions['limits'] {
  if (value === undefined) return { rate: { user: null, project: null }, quota: {}, limiter: undefined };
  if (value === null || typeof value !== 'object') throw new TypeError('options.limits must be { user?, project?, limiter? }');
  const rate: Record<KeyLevel, RateLimit | null> = { user: null, project: null };
  const quota: LevelQuotaDefaults = {};
  for (const level of ['user', 'project'] as const) {
    const given = value[level];
    if (given === undefined) continue;
    const option = `options.limits.${level}`;
    if (given === null || typeof given !== 'object') throw new TypeError(`${option} must be { rateLimit?, quota? }`);
    if (given.rateLimit !== undefined) {
      if (given.rateLimit === null || typeof given.rateLimit !== 'object') throw new TypeError(`${option}.rateLimit must be { limit, windowMs }`);
      // The bounds a key's own limit has (keys.create), so a default cannot say what a key could not.
      rate[level] = {
        limit: atMost(wholeNumberOption(given.rateLimit.limit, `${option}.rateLimit.limit`, 1), RATE_LIMIT_BOUNDS.maxLimit, `${option}.rateLimit.limit`),
        windowMs: atMost(wholeNumberOption(given.rateLimit.windowMs, `${option}.rateLimit.windowMs`, RATE_LIMIT_BOUNDS.minWindowMs), RATE_LIMIT_BOUNDS.maxWindowMs, `${option}.rateLimit.windowMs`),
      };
    }
    if (given.quota !== undefined) {
      if (given.quota === null || typeof given.quota !== 'object') throw new TypeError(`${option}.quota must be { limit, refill? }`);
      const refill = given.quota.refill ?? null;
      if (refill !== null && refill !== 'day' && refill !== 'month') throw new TypeError(`${option}.quota.refill must be 'day', 'month' or null, got ${JSON.stringify(refill)}`);
      quota[level] = { limit: atMost(wholeNumberOption(given.quota.limit, `${option}.quota.limit`, 1), MAX_QUOTA, `${option}.quota.limit`), refill };
    }
  }
  const { limiter } = value;
  if (limiter !== undefined && typeof limiter?.take !== 'function') throw new TypeError('options.limits.limiter must have take(keyId, limit, now)');
  return { rate, quota, limiter };
}

function headerName(value: unknown, option: string): string {
  if (typeof value !== 'string' || !HEADER_NAME_PATTERN.test(value.toLowerCase())) {
    throw new TypeError(`${option} must be an HTTP header name, got ${JSON.stringify(value)}`);
  }
  return value;
}

function pathSet(paths: readonly string[]): ReadonlySet<string> {
  if (!Array.isArray(paths)) throw new TypeError('options.projectOptionalPaths must be an array of paths');
  for (const path of paths) {
    if (typeof path !== 'string' || !path.startsWith('/') || /[?#\s]/.test(path)) {
      throw new TypeError(`options.projectOptionalPaths entries must be paths like '/validate', got ${JSON.stringify(path)}`);
    }
  }
  return new Set(paths);
}

/**
 * A whole-number option, checked at setup: a `TypeError` unless it is a safe integer, a
 * `RangeError` below `min`, each naming the option. For stores and adapters with options too.
 *
 * @example const watchMs = wholeNumberOption(options.watchIntervalMs ?? 500, 'options.watchIntervalMs', 1)
 */
export function wholeNumberOption(value: unknown, option: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new TypeError(`${option} must be a whole number, got ${JSON.stringify(value)}`);
  if (value < min) throw new RangeError(`${option} must be ≥ ${min}, got ${value}`);
  return value;
}

function checkBus(bus: InvalidationBus | undefined): InvalidationBus | undefined {
  if (bus !== undefined && (typeof bus?.publish !== 'function' || typeof bus.subscribe !== 'function')) {
    throw new TypeError('options.bus must have publish(change) and subscribe(listener)');
  }
  return bus;
}

function flag(value: unknown, option: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${option} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function optionalFunction<F>(value: F | undefined, option: string): F | undefined {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(`${option} must be a function`);
  return value;
}

function importedKeyLimits(value: boolean | { minLength?: number; maxLength?: number }) {
  if (value === false) return false;
  const given = value === true ? {} : value;
  if (given === null || typeof given !== 'object') throw new TypeError('options.importedKeys must be a boolean or { minLength?, maxLength? }');
  const minLength = wholeNumberOption(given.minLength ?? 20, 'options.importedKeys.minLength', 16);
  const maxLength = wholeNumberOption(given.maxLength ?? 256, 'options.importedKeys.maxLength', minLength);
  return { minLength, maxLength };
}

function throttleLimits(value: { maxFailures: number; windowMs: number; maxClients?: number } | AttemptThrottle) {
  if (typeof value !== 'object') throw new TypeError('options.throttle must be false, { maxFailures, windowMs, maxClients? }, or a throttle ({ retryAfter, fail })');
  if ('fail' in value || 'retryAfter' in value) {
    const custom = value as Partial<AttemptThrottle>;
    if (typeof custom.fail !== 'function' || typeof custom.retryAfter !== 'function') throw new TypeError('options.throttle: a throttle needs retryAfter(client, now) and fail(client, now)');
    return value as AttemptThrottle;
  }
  const limits = value as { maxFailures: number; windowMs: number; maxClients?: number };
  return {
    maxFailures: wholeNumberOption(limits.maxFailures, 'options.throttle.maxFailures', 1),
    windowMs: wholeNumberOption(limits.windowMs, 'options.throttle.windowMs', 1),
    maxClients: wholeNumberOption(limits.maxClients ?? 10_000, 'options.throttle.maxClients', 1),
  };
}
