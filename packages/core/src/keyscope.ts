import { CHECK_DECIDES_FOR } from './adapter.js';
import { createKeyAdmin, type KeyAdmin } from './admin.js';
import { readHeader, type HeaderSource } from './headers.js';
import { KeyCache, NOT_FOUND, type CachedKey } from './key-cache.js';
import type { QuotaTake } from './limits.js';
import { resolveOptions, type KeyscopeEvent, type KeyscopeOptions } from './options.js';
import { OwnershipCache } from './ownership-cache.js';
import { limitHeaders, MemoryRateLimiter, quotaRetryAfter, type RateLimiter, type RateVerdict } from './rate-limit.js';
import { createRefusals, type AuthResult, type Refusal } from './refusals.js';
import { opaqueResolver, type KeyResolver } from './resolvers.js';
import { resolveSignedOptions, SignedKeys } from './signed.js';
import { Deadlines } from './shared-reads.js';
import { MemoryThrottle, throttleClient, type AttemptThrottle, type ThrottleVerdict } from './throttle.js';
import type { AuthContext, KeyAdminStore, KeyLevel, Project, StoreChange } from './types.js';
import { UsageRecorder } from './usage.js';

export type { KeyscopeEvent, KeyscopeOptions } from './options.js';
export type { AuthResult } from './refusals.js';

/** Whether a route needs a project for a user-level key. */
export type ProjectRequirement = 'optional' | 'required';

/** The neutral request the core reads. Adapters build it from their framework's request. */
export interface AuthInput {
  headers: HeaderSource;
  method?: string;
  /**
   * Request path (query allowed), or the matched route's path template, matched exactly against
   * `projectOptionalPaths`. A function is called only when the project rule needs it (a
   * user-level key without a project header, on a route whose requirement is not given), or
   * before a decision waits, so that it is made on the request as it arrived.
   */
  path?: string | (() => string | undefined);
  /**
   * The matched route's requirement; wins over `path`. Without both, a project is required. A
   * function is called only when the project rule needs it, or before a decision waits (as for
   * `path`); `undefined` from it defers to `path`.
   */
  project?: ProjectRequirement | (() => ProjectRequirement | undefined);
  /**
   * An object that lives exactly as long as the request (Koa `ctx`, Express `res.locals`, ...).
   * With it, a request is authenticated once however many keyscope middlewares it meets (usage
   * counted once): a later call reuses the first decision and applies only its own project
   * requirement on top. The decision is kept on it under a private symbol, so pick an object
   * that takes a new property cheaply (Express's `req` does not: see @keyscope/express).
   */
  request?: object;
  /**
   * Client address, for the failed-attempt throttle; a function is called only when the
   * throttle needs it (adapters pass `() => req.ip`, which frameworks compute on each read).
   */
  clientIp?: string | (() => string | undefined);
}

/** What {@link createKeyscope} returns. */
export interface Keyscope {
  /** Authenticate one request. Never throws for a bad request: failures come back coded. */
  authenticate(input: AuthInput): Promise<AuthResult>;
  /**
   * {@link Keyscope.authenticate} without the promise when nothing needs waiting for: a cached
   * key's decision comes back as the result itself, a decision that needs a store read as a
   * promise of it. For adapters and hot paths that go on in the same turn when they can. Unlike
   * `authenticate`, an exception from the input (a `project` or `clientIp` function that throws)
   * may be thrown here rather than returned as a rejected promise. Adapters call it only while
   * `authenticate` is this Keyscope's own (`checkOf`): a wrapper replacing `authenticate` decides.
   *
   * @example const r = ks.check(input); const result = 'then' in r ? await r : r
   */
  check(input: AuthInput): AuthResult | Promise<AuthResult>;
  /** Key administration. */
  readonly keys: KeyAdmin;
  /** Drop cached state for one key (by id), or everything. */
  invalidate(keyId?: string): void;
  /**
   * Drop cached ownership answers for one project: call it when your own project directory moves
   * or deletes a project (stores that report changes do this for you).
   * @example await db.transferProject('proj_a', 'new-owner'); ks.invalidateProject('proj_a')
   */
  invalidateProject(projectId: string): void;
  /**
   * The projects a request may see: all of the owner's for a user-level key, only its own for a
   * project-level key. Use it for `/projects` handlers instead of listing the owner's projects.
   * @example app.get('/projects', async (req, res) => res.json(await ks.projectsFor(req.auth!)))
   */
  projectsFor(auth: AuthContext): Promise<Project[]>;
  /**
   * True when `Authorization: Bearer` is read too. Node keeps only the first of several
   * `Authorization` headers, so Node adapters then pass `headersDistinct` to see them all.
   */
  readonly acceptsBearer: boolean;
  /** True when the failed-attempt throttle is on: adapters must then pass `clientIp`. */
  readonly needsClientAddress: boolean;
  /** Flush usage and stop timers and subscriptions. The store stays open: close it yourself. */
  close(): Promise<void>;
}

/**
 * The key in an `Authorization` header value: `undefined` unless the scheme is Bearer, `''` when
 * malformed (several values, no token, spaces inside).
 */
function bearerToken(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return value.length === 1 ? bearerToken(value[0]) : '';
  if (!/^bearer(?: |$)/i.test(value)) return undefined;
  const token = /^bearer +([^\s]+) *$/i.exec(value);
  return token ? token[1]! : '';
}

/**
 * Build an authenticator. Validates every option here: bad configuration throws a
 * `TypeError`/`RangeError` naming the option, never a request.
 *
 * @example
 * const ks = createKeyscope({ store: new MemoryStore() })
 * const result = await ks.authenticate({ headers: req.headers, path: '/sites' })
 */
export function createKeyscope(options: KeyscopeOptions): Keyscope {
  const o = resolveOptions(options);
  const { keyHeader, projectHeader, optionalPaths, now } = o;
  const refuse = createRefusals(o);
  const keyCache = new KeyCache(o.store, o.cache, o.storeTimeoutMs, now);
  const opaque = opaqueResolver(keyCache, o);
  const signed =
    options.signedKeys === undefined
      ? undefined
      : new SignedKeys(resolveSignedOptions(options.signedKeys, { ttlMs: o.cache.ttlMs, storeTimeoutMs: o.storeTimeoutMs }), o.store, o.cache, o.storeTimeoutMs, now);
  const ownership = new OwnershipCache(o.projects, o.cache, o.storeTimeoutMs, now);
  const throttle: AttemptThrottle | undefined = o.throttle === false ? undefined : 'fail' in o.throttle ? o.throttle : new MemoryThrottle(o.throttle);
  const { bearer } = o;
  // An operator's hook that throws must not turn a decision into a 500: its error is dropped.
  const hook = o.onEvent;
  const emit = hook
    ? (event: KeyscopeEvent) => {
        try {
          hook(event);
        } catch {
          // see above
        }
      }
    : undefined;
  const usage = o.usage
    ? new UsageRecorder(o.usage.store, o.usage.flushIntervalMs, now, {
        maxBacklog: o.usage.maxBacklog,
        onError: emit && ((error) => emit({ type: 'usage_flush_failed', error, backlog: usage!.backlogSize, dropped: usage!.dropped })),
      })
    : undefined;
  let warnedNoAddress = false;
  const rateDefaults = o.limits.rate;
  const levelDefaults = rateDefaults.user !== null || rateDefaults.project !== null;
  // Made on first use: an API without limits allocates nothing for them.
  let limiter: RateLimiter | undefined = o.limits.limiter;
  // A custom limiter's count and a quota unit are bounded like a store read.
  const limitCalls = new Deadlines(o.storeTimeoutMs);
  const quotas = o.store as Partial<KeyAdminStore>;

  /** The client a throttle counts, or `undefined` when there is no throttle or no address. */
  function clientOf(input: AuthInput): string | undefined {
    if (!throttle) return undefined;
    const address = typeof input.clientIp === 'function' ? input.clientIp() : input.clientIp;
    if (typeof address === 'string' && address !== '') return throttleClient(address);
    if (!warnedNoAddress) {
      warnedNoAddress = true;
      console.warn('keyscope: the failed-attempt throttle is on, but a request came without a client address (pass clientIp); such requests are not throttled');
    }
    return undefined;
  }

  /** A bad key: counted against its client, then the one 401 (or 429 once the client is over the limit). */
  function refuseKey(input: AuthInput): AuthResult | Promise<AuthResult> {
    const client = clientOf(input);
    if (client === undefined) return refuse.invalid;
    const at = now();
    const wait = throttle!.retryAfter(client, at);
    if (wait > 0) return refuse.tooMany(wait);
    const verdict = throttle!.fail(client, at);
    return 'then' in verdict ? verdict.then((v) => judged(client, v), () => refuse.invalid) : judged(client, verdict);
  }

  function judged(client: string, verdict: ThrottleVerdict): AuthResult {
    if (verdict.state === 'over') return refuse.tooMany(verdict.retryAfterSeconds);
    if (verdict.state === 'tripped') emit?.({ type: 'throttle_tripped', client, retryAfterSeconds: verdict.retryAfterSeconds });
    return refuse.invalid;
  }

  /** The key a request carries: a string, `undefined` when none, `''` when malformed (two values, two different keys). */
  function keyOf(input: AuthInput): string | undefined {
    const raw = readHeader(input.headers, keyHeader);
    const key = raw === undefined || typeof raw === 'string' ? raw : raw.length === 1 ? raw[0]! : '';
    if (!bearer) return key;
    const fromBearer = bearerToken(readHeader(input.headers, 'authorization'));
    if (fromBearer === undefined || fromBearer === key) return key;
    return key === undefined ? fromBearer : '';
  }

  /** What an event about this request may say of the key: its id when known. */
  interface Trace {
    keyId?: string;
    keyStart?: string;
    /** The decision was an earlier one's, reused: it was told already. */
    reused?: boolean;
  }

  // A request this instance has decided carries the decision under a symbol of its own, so that
  // stacked middlewares authenticate it once. (On an object with a shared hidden class a property
  // costs nothing; a WeakMap entry per request costs more than the rest of a warm decision.)
  const DECIDED = Symbol('keyscope decision');
  type Decided = { [DECIDED]?: AuthContext };

  // Each stage below answers synchronously when it can, so that a fully cached decision allocates
  // no promise and waits for no tick (adapters call `check` and go on in the same turn); a stage
  // that needs I/O (hashing on Web Crypto, a store or directory read, limits) returns a promise and
  // the stages after it run when it settles.

  function decide(input: AuthInput, trace?: Trace): AuthResult | Promise<AuthResult> {
    const { request } = input;
    if (request !== undefined) {
      const earlier = (request as Decided)[DECIDED];
      if (earlier !== undefined) {
        // Decided by an earlier keyscope on this request: only this route's project rule again.
        if (trace) {
          trace.keyId = earlier.keyId;
          trace.reused = true;
        }
        return earlier.projectId === null && !projectOptional(input) ? refuse.required : { ok: true, auth: earlier };
      }
    }

    // 1. The key header: absent, or not even the right length, decided without hashing.
    const key = keyOf(input);
    if (key === undefined) return refuse.missing;
    // Its shape says which kind of key it is: a signed key (JWS) or an opaque one.
    const resolver: KeyResolver = signed !== undefined && signed.fits(key) ? signed : opaque;
    if (!resolver.worthHashing(key)) return refuseKey(input);
    const ref = resolver.ref(key);
    if (typeof ref === 'string') return resolve(input, trace, resolver, key, ref);
    const arrived = asArrived(input);
    return ref.then((digest) => resolve(arrived, trace, resolver, key, digest));
  }

  /**
   * What a decision reads of `input`, taken now: the `X-Project-ID` header, the path or rule when
   * that is absent, and the client address when the throttle counts it. A decision that goes on
   * after an await (a store read, a hash on Web Crypto, a deny-list load) then sees the request as
   * it arrived, as a cached decision does, whatever other middleware changes meanwhile; the same
   * request never gets two answers. A rule that cannot be read fails only if the decision needs
   * it, as it would have.
   */
  function asArrived(input: AuthInput): AuthInput {
    const header = readHeader(input.headers, projectHeader);
    const headers: Record<string, string | string[] | undefined> = Object.create(null);
    const arrived: AuthInput = { headers, method: input.method, request: input.request };
    if (throttle) arrived.clientIp = typeof input.clientIp === 'function' ? input.clientIp() : input.clientIp;
    if (header !== undefined) {
      headers[projectHeader] = header;
      return arrived;
    }
    try {
      arrived.project = projectOptional(input) ? 'optional' : 'required';
    } catch (error) {
      arrived.project = () => {
        throw error;
      };
    }
    return arrived;
  }

  /** 2. Resolve: the cache, else (offline checks first, then the throttle) the store or the signature. */
  function resolve(input: AuthInput, trace: Trace | undefined, resolver: KeyResolver, key: string, ref: string): AuthResult | Promise<AuthResult> {
    // One clock reading serves a warm decision; after a store read, the clock is read again.
    const at = now();
    const entry = resolver.cached(ref, at, key);
    if (entry !== undefined) return judge(input, trace, resolver, entry, at);
    // Whatever is cached passed these checks; a different string with the same SHA-256 is not a thing that happens.
    if (!resolver.plausible(key)) return refuseKey(input);
    // A throttled client only gets through with a key that is already known good.
    const client = clientOf(input);
    const wait = client === undefined ? 0 : throttle!.retryAfter(client, at);
    if (wait > 0) return refuse.tooMany(wait);
    return load(asArrived(input), trace, resolver, key, ref);
  }

  async function load(input: AuthInput, trace: Trace | undefined, resolver: KeyResolver, key: string, ref: string): Promise<AuthResult> {
    let entry: CachedKey | typeof NOT_FOUND;
    try {
      entry = await resolver.load(ref, key);
    } catch (error) {
      emit?.({ type: 'store_error', operation: resolver.operation, error });
      return refuse.unavailable;
    }
    if (trace && entry === NOT_FOUND) {
      const start = resolver.startOf(key);
      if (start !== undefined) trace.keyStart = start;
    }
    return judge(input, trace, resolver, entry, now());
  }

  /** Revoked, expired or denied: the same 401 as an unknown key. */
  function judge(input: AuthInput, trace: Trace | undefined, resolver: KeyResolver, entry: CachedKey | typeof NOT_FOUND, at: number): AuthResult | Promise<AuthResult> {
    if (entry === NOT_FOUND) return refuseKey(input);
    if (trace) trace.keyId = entry.id;
    const refused = resolver.refused(entry, at);
    if (refused === false) return placeProject(input, entry, at);
    if (refused === true) return refuseKey(input);
    input = asArrived(input);
    return refused.then(
      (denied) => (denied ? refuseKey(input) : placeProject(input, entry, at)),
      (error: unknown) => {
        emit?.({ type: 'store_error', operation: 'listKeyDenials', error });
        return refuse.unavailable;
      },
    );
  }

  /** 3. The project rule. */
  function placeProject(input: AuthInput, entry: CachedKey, at: number): AuthResult | Promise<AuthResult> {
    const header = readHeader(input.headers, projectHeader);
    // One value is a value whatever its shape (Node's headersDistinct gives arrays); two is malformed.
    const requested = Array.isArray(header) && header.length === 1 ? header[0] : header;
    let projectId: string | null;
    const level = entry.projectId === null ? 'user' : 'project';
    if (level === 'project') {
      if (requested !== undefined && requested !== entry.projectId) return refuse.forbidden;
      projectId = entry.projectId;
    } else if (requested === undefined) {
      if (!projectOptional(input)) return refuse.required;
      projectId = null;
    } else {
      if (typeof requested !== 'string') return refuse.forbidden;
      projectId = requested;
    }
    if (projectId === null) return admit(input, entry, level, null, at);
    // The owner must own the project, today: for a project key too, whose project may have moved.
    const owned = ownership.ownsFor(entry, projectId, at);
    if (owned === true) return admit(input, entry, level, projectId, at);
    if (owned === false) return refuse.forbidden;
    return owned.then(
      (yes) => (yes ? admit(input, entry, level, projectId, at) : refuse.forbidden),
      (error: unknown) => {
        emit?.({ type: 'store_error', operation: 'ownsProject', error });
        return refuse.unavailable;
      },
    );
  }

  /**
   * 4. Limits, for a key with its own or a level with a default: after the key and project
   * checks, so a bad key is still 401 and a wrong project still 403. Then 5, success.
   */
  function admit(input: AuthInput, entry: CachedKey, level: KeyLevel, projectId: string | null, at: number): AuthResult | Promise<AuthResult> {
    if (entry.limits === undefined && !(levelDefaults && rateDefaults[level] !== null)) return succeed(input, entry, level, projectId, undefined);
    return applyLimits(entry, level, at).then((limited) => ((limited as Refusal).ok === false ? (limited as Refusal) : succeed(input, entry, level, projectId, limited as Readonly<Record<string, string>>)));
  }

  function succeed(input: AuthInput, entry: CachedKey, level: KeyLevel, projectId: string | null, headers: Readonly<Record<string, string>> | undefined): AuthResult {
    usage?.record(entry.id);
    const auth: AuthContext = { keyId: entry.id, keyName: entry.name, ownerId: entry.ownerId, level, projectId };
    const { request } = input;
    if (request !== undefined && Object.isExtensible(request)) (request as Decided)[DECIDED] = auth;
    return headers === undefined ? { ok: true, auth } : { ok: true, auth, headers };
  }

  /**
   * Count one request against the key's rate limit (its own, else its level's), then take one
   * unit of its quota: the `RateLimit` fields to send, or the 429. A request refused by the rate
   * limit takes no quota. Counting that fails answers 503, never a pass.
   */
  async function applyLimits(entry: CachedKey, level: KeyLevel, at: number): Promise<Refusal | Readonly<Record<string, string>>> {
    const rate = entry.limits?.rate ?? rateDefaults[level];
    // A rotated key counts as its line's first key: the old key and the new one share one count.
    const countedAs = entry.limits?.countedAs ?? entry.id;
    let verdict: RateVerdict | undefined;
    if (rate !== null) {
      const counter = (limiter ??= new MemoryRateLimiter());
      try {
        const taken = counter.take(countedAs, rate, at);
        verdict = 'then' in taken ? await limitCalls.run(() => taken) : taken;
        // A custom limiter's answer is checked like a store's: anything else is a failure, not a pass.
        if (verdict === null || typeof verdict !== 'object' || typeof verdict.allowed !== 'boolean') throw new TypeError(`the rate limiter answered ${String(verdict)}, not a RateVerdict`);
      } catch (error) {
        emit?.({ type: 'limit_error', operation: 'rateLimit', keyId: entry.id, error });
        return refuse.unavailable;
      }
      if (!verdict.allowed) return refuse.rateLimited(limitHeaders({ limit: rate, verdict }, undefined, at), verdict.retryAfterSeconds);
    }
    let take: QuotaTake | null = null;
    if (entry.limits?.quota === true) {
      try {
        if (typeof quotas.consumeQuota !== 'function') throw new TypeError('the store does not implement consumeQuota, so this key\'s quota cannot be counted');
        take = await limitCalls.run(() => quotas.consumeQuota!(countedAs, new Date(at)));
      } catch (error) {
        emit?.({ type: 'limit_error', operation: 'consumeQuota', keyId: entry.id, error });
        return refuse.unavailable;
      }
    }
    const fields = limitHeaders(rate === null ? undefined : { limit: rate, verdict: verdict! }, take ?? undefined, at);
    if (take !== null && !take.granted) return refuse.quotaExhausted(fields, quotaRetryAfter(take, at));
    return fields;
  }

  /** `decide`, telling `onEvent` what it decided. */
  function decideAndTell(input: AuthInput): AuthResult | Promise<AuthResult> {
    const trace: Trace = {};
    const result = decide(input, trace);
    return 'then' in result ? result.then((settled) => tell(settled, trace)) : tell(result, trace);
  }

  function tell(result: AuthResult, trace: Trace): AuthResult {
    const { reused, ...about } = trace;
    if (result.ok) {
      const { keyId, ownerId, level, projectId } = result.auth;
      if (!reused) emit!({ type: 'authenticated', keyId, ownerId, level, projectId });
    } else {
      const { code, status } = result.error;
      emit!({ type: 'refused', code, status, ...about });
    }
    return result;
  }

  function projectOptional(input: AuthInput): boolean {
    const rule = typeof input.project === 'function' ? input.project() : input.project;
    if (rule !== undefined) return rule === 'optional';
    const path = typeof input.path === 'function' ? input.path() : input.path;
    if (typeof path !== 'string') return false;
    const query = path.indexOf('?');
    return optionalPaths.has(query === -1 ? path : path.slice(0, query));
  }

  function invalidate(keyId?: string): void {
    keyCache.invalidate(keyId);
    if (keyId === undefined) {
      ownership.invalidate();
      signed?.clear();
    } else signed?.changed();
  }

  function onChange(change?: StoreChange): void {
    if (change === undefined || change.kind === 'key') invalidate(change?.keyId);
    else ownership.invalidate(change.projectId);
  }
  const subscriptions = [o.store.subscribe?.(onChange), o.bus?.subscribe(onChange)];
  if (o.projects !== o.store) subscriptions.push(o.projects.subscribe?.(onChange));

  /** Tell the other instances; a bus that fails is told to onEvent and changes nothing here. */
  function publish(change: StoreChange): void {
    if (!o.bus) return;
    try {
      Promise.resolve(o.bus.publish(change)).catch((error: unknown) => emit?.({ type: 'bus_error', error }));
    } catch (error) {
      emit?.({ type: 'bus_error', error });
    }
  }

  // What this instance's administration changes, it drops here and publishes to the others.
  const changedKey = (keyId?: string) => {
    invalidate(keyId);
    if (keyId !== undefined) publish({ kind: 'key', keyId });
  };
  // Without onEvent, requests pay nothing for events.
  const check: (input: AuthInput) => AuthResult | Promise<AuthResult> = emit ? decideAndTell : (input) => decide(input);
  function authenticate(input: AuthInput): Promise<AuthResult> {
    try {
      const result = check(input);
      return 'then' in result ? result : Promise.resolve(result);
    } catch (error) {
      return Promise.reject(error);
    }
  }
  // Adapters call check only while authenticate is this one: a wrapper replacing authenticate decides.
  Object.defineProperty(check, CHECK_DECIDES_FOR, { value: authenticate });

  const keys = createKeyAdmin({
    store: o.store,
    projects: o.projects,
    prefix: o.prefix,
    importedKeys: o.importedKeys,
    signed,
    quotaDefaults: o.limits.quota,
    now,
    invalidate: changedKey,
    flushUsage: () => usage?.flush(),
  });

  return {
    authenticate,
    check,
    keys,
    async projectsFor(auth) {
      if (auth === null || typeof auth !== 'object' || typeof auth.ownerId !== 'string') throw new TypeError('projectsFor(auth): auth must be the AuthContext of an authenticated request');
      const all = await o.projects.listProjects(auth.ownerId);
      return auth.level === 'project' ? all.filter((project) => project.id === auth.projectId) : [...all];
    },
    invalidate,
    invalidateProject(projectId: string) {
      if (typeof projectId !== 'string' || projectId === '') throw new TypeError('invalidateProject(projectId): projectId must be a non-empty string');
      ownership.invalidate(projectId);
      publish({ kind: 'project', projectId });
    },
    needsClientAddress: throttle !== undefined,
    acceptsBearer: bearer,
    async close() {
      for (const unsubscribe of subscriptions) unsubscribe?.();
      await usage?.close();
      invalidate();
    },
  };
}
