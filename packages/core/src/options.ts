import { DEFAULT_KEY_PREFIX, assertKeyPrefix, keyLength } from './key-format.js';
import type { KeyAdminStore, KeyStore, ProjectDirectory } from './types.js';

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
  /** Usage batching; `false` records no usage. Default: flush every 1,000 ms. */
  usage?: false | { flushIntervalMs?: number };
  /**
   * Throttle failed attempts per client address (needs `clientIp` in the input). Default off.
   * `maxClients` (default 10,000) bounds the table; IPv6 addresses count per /64.
   */
  throttle?: false | { maxFailures: number; windowMs: number; maxClients?: number };
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
}

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
  usage: false | { flushIntervalMs: number; store: KeyAdminStore };
  throttle: false | { maxFailures: number; windowMs: number; maxClients: number };
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
  const projects = options.projects ?? store;
  if (typeof projects.ownsProject !== 'function' || typeof projects.listProjects !== 'function') {
    throw new TypeError('options.projects (or options.store) must implement ownsProject and listProjects');
  }
  const prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  assertKeyPrefix(prefix, 'options.keyPrefix');
  const displayHeader = headerName(options.header ?? 'X-API-Key', 'options.header');
  const displayProjectHeader = headerName(options.projectHeader ?? 'X-Project-ID', 'options.projectHeader');
  const max = int(options.cache?.max ?? 10_000, 'options.cache.max', 1);
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
      ttlMs: int(options.cache?.ttlMs ?? 60_000, 'options.cache.ttlMs', 0),
      negativeMax: int(options.cache?.negativeMax ?? Math.min(1_000, max), 'options.cache.negativeMax', 1),
      negativeTtlMs: int(options.cache?.negativeTtlMs ?? 5_000, 'options.cache.negativeTtlMs', 0),
    },
    storeTimeoutMs: int(options.storeTimeoutMs ?? 2_000, 'options.storeTimeoutMs', 1),
    retryAfterSeconds: int(options.retryAfterSeconds ?? 5, 'options.retryAfterSeconds', 0),
    realm,
    usage: recordsUsage
      ? { flushIntervalMs: int(usage.flushIntervalMs ?? 1_000, 'options.usage.flushIntervalMs', 1), store: store as KeyAdminStore }
      : false,
    throttle: options.throttle ? throttleLimits(options.throttle) : false,
    now,
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

function throttleLimits(value: { maxFailures: number; windowMs: number; maxClients?: number }) {
  if (typeof value !== 'object') throw new TypeError('options.throttle must be false or { maxFailures, windowMs, maxClients? }');
  return {
    maxFailures: int(value.maxFailures, 'options.throttle.maxFailures', 1),
    windowMs: int(value.windowMs, 'options.throttle.windowMs', 1),
    maxClients: int(value.maxClients ?? 10_000, 'options.throttle.maxClients', 1),
  };
}
