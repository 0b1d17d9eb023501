import { LRUCache } from 'lru-cache';
import { createKeyAdmin, ID_PATTERN, type KeyAdmin } from './admin.js';
import { ERROR_TABLE, problemType, type AuthError, type KeyscopeErrorCode } from './errors.js';
import { readHeader, type HeaderSource } from './headers.js';
import { DEFAULT_KEY_PREFIX, assertKeyPrefix, hashKey, hasKeyShape, hasValidChecksum, keyLength as lengthOfKey } from './key-format.js';
import type { AuthContext, KeyAdminStore, KeyRecord, KeyStore, ProjectDirectory } from './types.js';
import { UsageRecorder } from './usage.js';

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
  /** Resolved-key cache. Defaults: `max` 10,000 entries, `ttlMs` 60 s, `negativeTtlMs` 5 s. */
  cache?: { max?: number; ttlMs?: number; negativeTtlMs?: number };
  /** A store call slower than this answers 503 `auth_unavailable`. Default 2,000 ms. */
  storeTimeoutMs?: number;
  /** `Retry-After` seconds sent with 503. Default 5. */
  retryAfterSeconds?: number;
  /** Realm named in the `WWW-Authenticate` challenge. Default `'api'`. */
  realm?: string;
  /** Usage batching; `false` records no usage. Default: flush every 1,000 ms. */
  usage?: false | { flushIntervalMs?: number };
  /** Throttle failed attempts per client address (needs `clientIp` in the input). Default off. */
  throttle?: false | { maxFailures: number; windowMs: number };
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
}

/** Whether a route needs a project for a user-level key. */
export type ProjectRequirement = 'optional' | 'required';

/** The neutral request the core reads. Adapters build it from their framework's request. */
export interface AuthInput {
  headers: HeaderSource;
  method?: string;
  /** Request path (query allowed); matched exactly against `projectOptionalPaths`. */
  path?: string;
  /** The matched route's requirement; wins over `path`. Without both, a project is required. */
  project?: ProjectRequirement;
  /**
   * Client address, for the failed-attempt throttle; a function is called only when the
   * throttle needs it (adapters pass `() => req.ip`, which frameworks compute on each read).
   */
  clientIp?: string | (() => string | undefined);
}

/** The outcome of {@link Keyscope.authenticate}. */
export type AuthResult = { ok: true; auth: AuthContext } | { ok: false; error: AuthError };

/** What {@link createKeyscope} returns. */
export interface Keyscope {
  /** Authenticate one request. Never throws for a bad request: failures come back coded. */
  authenticate(input: AuthInput): Promise<AuthResult>;
  /** Key administration. */
  readonly keys: KeyAdmin;
  /** Drop cached state for one key, or everything. */
  invalidate(keyId?: string): void;
  /** Flush usage and stop timers and subscriptions. The store stays open: close it yourself. */
  close(): Promise<void>;
}

const NOT_FOUND = Symbol('not found');
type CachedKey = KeyRecord | typeof NOT_FOUND;
const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/**
 * Build an authenticator. Validates every option here: bad configuration throws a
 * `TypeError`/`RangeError` naming the option, never a request.
 *
 * @example
 * const ks = createKeyscope({ store: new MemoryStore() })
 * const result = await ks.authenticate({ headers: req.headers, path: '/sites' })
 */
export function createKeyscope(options: KeyscopeOptions): Keyscope {
  if (options === null || typeof options !== 'object') throw new TypeError('createKeyscope(options): options must be an object');
  const { store } = options;
  if (!store || typeof store.findKeyByHash !== 'function') {
    throw new TypeError('options.store must implement findKeyByHash (see KeyStore)');
  }
  const projects = options.projects ?? store;
  if (typeof projects.ownsProject !== 'function' || typeof projects.listProjects !== 'function') {
    throw new TypeError('options.projects (or options.store) must implement ownsProject and listProjects');
  }
  const prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  assertKeyPrefix(prefix, 'options.keyPrefix');
  const keyLength = lengthOfKey(prefix);
  const displayHeader = headerName(options.header ?? 'X-API-Key', 'options.header');
  const displayProjectHeader = headerName(options.projectHeader ?? 'X-Project-ID', 'options.projectHeader');
  const keyHeader = displayHeader.toLowerCase();
  const projectHeader = displayProjectHeader.toLowerCase();
  const optionalPaths = pathSet(options.projectOptionalPaths ?? ['/validate', '/projects']);
  const cacheMax = int(options.cache?.max ?? 10_000, 'options.cache.max', 1);
  const ttlMs = int(options.cache?.ttlMs ?? 60_000, 'options.cache.ttlMs', 0);
  const negativeTtlMs = int(options.cache?.negativeTtlMs ?? 5_000, 'options.cache.negativeTtlMs', 0);
  const storeTimeoutMs = int(options.storeTimeoutMs ?? 2_000, 'options.storeTimeoutMs', 1);
  const retryAfter = int(options.retryAfterSeconds ?? 5, 'options.retryAfterSeconds', 0);
  const realm = options.realm ?? 'api';
  if (typeof realm !== 'string' || !/^[\x20-\x7e]*$/.test(realm) || realm.includes('"')) {
    throw new TypeError('options.realm must be printable ASCII without quotes');
  }
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') throw new TypeError('options.now must be a function returning epoch milliseconds');
  const throttle = options.throttle ? throttleLimits(options.throttle) : undefined;
  const usageOptions = options.usage ?? {};
  const recordsUsage = usageOptions !== false && typeof (store as Partial<KeyAdminStore>).recordUsage === 'function';
  const usage = recordsUsage
    ? new UsageRecorder(store as KeyAdminStore, int(usageOptions.flushIntervalMs ?? 1_000, 'options.usage.flushIntervalMs', 1), now)
    : undefined;

  // Every refusal but 429 is the same frozen object each time: built once here, sent as is.
  const challenge = `ApiKey realm="${realm}", header="${displayHeader}"`;
  const failure = (code: KeyscopeErrorCode, detail: string, extra: Record<string, string> = {}): AuthError => {
    const { status, title } = ERROR_TABLE[code];
    const headers = Object.freeze({ 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store', ...extra });
    const body = Object.freeze({ type: problemType(code), title, status, detail, code });
    return Object.freeze({ status, code, title, detail, headers, body });
  };
  const refusal = (error: AuthError): AuthResult => Object.freeze({ ok: false as const, error });
  const MISSING = refusal(failure('missing_api_key', `Send your API key in the ${displayHeader} header.`, { 'WWW-Authenticate': challenge }));
  const INVALID = refusal(failure('invalid_api_key', 'The API key is incorrect, expired or revoked.', { 'WWW-Authenticate': challenge }));
  const REQUIRED = refusal(failure('project_required', `A user-level key must name the project in the ${displayProjectHeader} header.`));
  const FORBIDDEN = refusal(failure('project_forbidden', 'This API key does not have access to the requested project.'));
  const UNAVAILABLE = refusal(failure('auth_unavailable', 'Authentication is temporarily unavailable; retry later.', { 'Retry-After': String(retryAfter) }));

  const keyCache = new LRUCache<string, CachedKey>({ max: cacheMax });
  const ownershipCache = new LRUCache<string, boolean>({ max: cacheMax });
  const inFlight = new Map<string, Promise<unknown>>();
  // Bumped by every invalidation: a store read begun before it must not refill the cache.
  let generation = 0;
  const failures = throttle ? new LRUCache<string, { count: number; resetAt: number }>({ max: 10_000 }) : undefined;

  function deduped<T>(cacheKey: string, read: () => Promise<T> | T, remember: (value: T) => void): Promise<T> {
    const pending = inFlight.get(cacheKey) as Promise<T> | undefined;
    if (pending) return pending;
    const started = generation;
    const promise = withTimeout(read, storeTimeoutMs).then(
      (value) => {
        if (started === generation) remember(value);
        return value;
      },
    ).finally(() => {
      if (inFlight.get(cacheKey) === promise) inFlight.delete(cacheKey);
    });
    inFlight.set(cacheKey, promise);
    return promise;
  }

  function findKey(hash: string): Promise<CachedKey> {
    return deduped<CachedKey>(
      hash,
      async () => (await store.findKeyByHash(hash)) ?? NOT_FOUND,
      (record) => {
        if (record === NOT_FOUND) {
          if (negativeTtlMs > 0) keyCache.set(hash, NOT_FOUND, { ttl: negativeTtlMs });
          return;
        }
        const ttl = record.expiresAt ? Math.min(ttlMs, record.expiresAt.getTime() - now()) : ttlMs;
        if (ttl > 0) keyCache.set(hash, record, { ttl });
      },
    );
  }

  function ownsProject(ownerId: string, projectId: string): Promise<boolean> | boolean {
    const cacheKey = `${ownerId}\n${projectId}`;
    const cached = ownershipCache.get(cacheKey);
    if (cached !== undefined) return cached;
    // Only well-formed ids reach the directory (or the cache); a malformed one is simply not owned.
    if (!ID_PATTERN.test(projectId)) return false;
    return deduped<boolean>(
      `project\n${cacheKey}`,
      async () => (await projects.ownsProject(ownerId, projectId)) === true,
      (owned) => {
        const ttl = owned ? ttlMs : negativeTtlMs;
        if (ttl > 0) ownershipCache.set(cacheKey, owned, { ttl });
      },
    );
  }

  function blocked(clientIp: string | undefined): AuthError | undefined {
    if (!failures || clientIp === undefined) return undefined;
    const entry = failures.get(clientIp);
    const at = now();
    if (!entry || entry.resetAt <= at || entry.count < throttle!.maxFailures) return undefined;
    return failure('too_many_attempts', 'Too many failed attempts from this client; retry later.', {
      'Retry-After': String(Math.ceil((entry.resetAt - at) / 1000)),
    });
  }

  function refuseKey(input: AuthInput): AuthResult {
    const clientIp = failures && addressOf(input);
    if (!failures || clientIp === undefined) return INVALID;
    const tooMany = blocked(clientIp);
    if (tooMany) return refusal(tooMany);
    const at = now();
    const entry = failures.get(clientIp);
    if (!entry || entry.resetAt <= at) failures.set(clientIp, { count: 1, resetAt: at + throttle!.windowMs });
    else entry.count++;
    return INVALID;
  }

  async function authenticate(input: AuthInput): Promise<AuthResult> {
    const raw = readHeader(input.headers, keyHeader);
    if (raw === undefined) return MISSING;
    const key = Array.isArray(raw) ? (raw.length === 1 ? raw[0]! : '') : raw;
    if (key.length !== keyLength) return refuseKey(input);

    const hash = hashKey(key);
    let record = keyCache.get(hash);
    if (record === undefined) {
      // Shape and checksum are checked only on a miss: whatever is cached passed them, and a
      // different string with the same SHA-256 is not a thing that happens.
      if (!hasKeyShape(key, prefix) || !hasValidChecksum(key)) return refuseKey(input);
      // A throttled client only gets through with a key that is already known good.
      const tooMany = failures && blocked(addressOf(input));
      if (tooMany) return refusal(tooMany);
      try {
        record = await findKey(hash);
      } catch {
        return UNAVAILABLE;
      }
    }
    if (record === NOT_FOUND || record.revokedAt !== null || (record.expiresAt !== null && record.expiresAt.getTime() <= now())) {
      return refuseKey(input);
    }

    const header = readHeader(input.headers, projectHeader);
    // One value is a value whatever its shape (Node's headersDistinct gives arrays); two is malformed.
    const requested = Array.isArray(header) && header.length === 1 ? header[0] : header;
    let projectId: string | null;
    if (record.level === 'project') {
      if (requested !== undefined && requested !== record.projectId) return FORBIDDEN;
      projectId = record.projectId;
    } else if (requested === undefined) {
      if (!projectOptional(input)) return REQUIRED;
      projectId = null;
    } else {
      if (typeof requested !== 'string') return FORBIDDEN;
      // Awaited only on a cache miss: a warm request runs without yielding.
      let owned = ownsProject(record.ownerId, requested);
      if (typeof owned !== 'boolean') {
        try {
          owned = await owned;
        } catch {
          return UNAVAILABLE;
        }
      }
      if (!owned) return FORBIDDEN;
      projectId = requested;
    }

    usage?.record(record.id);
    return {
      ok: true,
      auth: { keyId: record.id, keyName: record.name, ownerId: record.ownerId, level: record.level, projectId },
    };
  }

  function projectOptional(input: AuthInput): boolean {
    if (input.project !== undefined) return input.project === 'optional';
    const path = input.path;
    if (path === undefined) return false;
    const query = path.indexOf('?');
    return optionalPaths.has(query === -1 ? path : path.slice(0, query));
  }

  function invalidate(keyId?: string): void {
    generation++;
    inFlight.clear();
    if (keyId === undefined) {
      keyCache.clear();
      ownershipCache.clear();
      return;
    }
    const stale: string[] = [];
    for (const [hash, record] of keyCache.entries()) {
      if (record !== NOT_FOUND && record.id === keyId) stale.push(hash);
    }
    for (const hash of stale) keyCache.delete(hash);
  }

  const unsubscribe = (store as Partial<KeyAdminStore>).subscribe?.((change) => invalidate(change?.kind === 'key' ? change.keyId : undefined));

  const keys = createKeyAdmin({ store, projects, prefix, now, invalidate, flushUsage: () => usage?.flush() });

  return {
    authenticate,
    keys,
    invalidate,
    async close() {
      unsubscribe?.();
      await usage?.close();
      invalidate();
    },
  };
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

function int(value: unknown, option: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new TypeError(`${option} must be a whole number, got ${JSON.stringify(value)}`);
  if (value < min) throw new RangeError(`${option} must be ≥ ${min}, got ${value}`);
  return value;
}

function throttleLimits(value: { maxFailures: number; windowMs: number }) {
  if (typeof value !== 'object') throw new TypeError('options.throttle must be false or { maxFailures, windowMs }');
  return {
    maxFailures: int(value.maxFailures, 'options.throttle.maxFailures', 1),
    windowMs: int(value.windowMs, 'options.throttle.windowMs', 1),
  };
}

function addressOf(input: AuthInput): string | undefined {
  return typeof input.clientIp === 'function' ? input.clientIp() : input.clientIp;
}

/** Run a store call; reject if it throws or takes longer than `ms`. */
function withTimeout<T>(read: () => Promise<T> | T, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`store call exceeded ${ms} ms`)), ms);
    Promise.resolve()
      .then(read)
      .then(resolve, reject)
      .finally(() => clearTimeout(timer));
  });
}
