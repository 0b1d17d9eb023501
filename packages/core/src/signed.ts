import type { CryptoKey as JoseCryptoKey, JSONWebKeySet, JWK, JWTPayload, JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import { NOT_FOUND, type CachedKey } from './key-cache.js';
import { cacheRef, ID_PATTERN, MAX_TIME } from './key-format.js';
import type { KeyResolver } from './resolvers.js';
import { wholeNumberOption } from './options.js';
import { Deadlines, SharedReads } from './shared-reads.js';
import type { KeyDenial, KeyLevel, KeyStore } from './types.js';

type Jose = typeof import('jose');

/** The JWS `typ` of a keyscope signed key: a token minted for anything else is refused. */
export const SIGNED_KEY_TYPE = 'keyscope+jwt';
/** Algorithms a signed key may use. The token never chooses: the configured set does. */
export type SignedKeyAlgorithm = 'EdDSA' | 'ES256';
const ALGORITHMS: readonly SignedKeyAlgorithm[] = ['EdDSA', 'ES256'];
/**
 * What jose throws for a token that is simply not good (forged, expired, for someone else, signed
 * by a key not in the set). A key lookup that throws one of these has found no key for the token:
 * a 401. Anything else it throws (a JWKS that cannot be fetched) is the key source failing: a 503,
 * never a 401 and never a pass.
 */
const REFUSED = new Set([
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWS_INVALID',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWT_EXPIRED',
  'ERR_JWT_INVALID',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
]);
// Three base64url segments, the first two JSON objects (`{"` encodes as `eyJ`). A JWE has five.
const JWS_SHAPE = /^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// An Ed25519 or P-256 signature is 64 bytes: 86 base64url characters, the last carrying 2 bits
// (A, Q, g or w). Any other last character spells the same bytes another way: one token, one spelling.
const SIGNATURE = /\.[A-Za-z0-9_-]{85}[AQgw]$/;
const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/;

/** `createKeyscope({ signedKeys })`: accept signed keys (JWS) beside opaque ones. */
export interface SignedKeyOptions {
  /** `iss` of every signed key; a token from any other issuer is refused. */
  issuer: string;
  /** `aud` of every signed key: your API's identifier. */
  audience: string;
  /**
   * The public keys that verify signed keys, each with a `kid`: a JWK set (`{ keys: [...] }`), the
   * `https:` URL of a remote JWKS (fetched, cached, fetched again when a token names an unknown
   * `kid`), or a jose key lookup function. Rotate by adding the new key before signing with it,
   * and removing the old one when its tokens should stop working.
   */
  keys: JSONWebKeySet | URL | string | JWTVerifyGetKey;
  /** Algorithms accepted, never taken from the token. Default `['EdDSA', 'ES256']`. */
  algorithms?: readonly SignedKeyAlgorithm[];
  /** Leeway for `exp`, `nbf` and `iat`, in seconds. Default 5. */
  clockToleranceSeconds?: number;
  /** Longest token looked at; a longer one is refused before it is parsed. Default 2,048 characters. */
  maxLength?: number;
  /**
   * A remote JWKS: `timeoutMs` per fetch (default `storeTimeoutMs`), `cooldownMs` between
   * fetches for unknown `kid`s (default 30,000), `cacheMaxAgeMs` before a refetch (default 600,000).
   */
  remote?: { timeoutMs?: number; cooldownMs?: number; cacheMaxAgeMs?: number };
  /**
   * The private key `keys.createSigned` and `keys.rotate` sign with, as a `CryptoKey` or a private
   * JWK, and its `kid` (its public half must be in `keys`). Leave it out on instances that only verify.
   */
  signing?: { key: JoseCryptoKey | JWK; kid: string; alg?: SignedKeyAlgorithm };
  /**
   * How long the deny-list (revoked signed keys) is trusted without hearing of a change, in ms.
   * Default `cache.ttlMs`. Changes heard from the store or the bus reload it at once.
   */
  denyListMaxAgeMs?: number;
}

/** {@link SignedKeyOptions} checked, with defaults. */
export interface ResolvedSignedOptions {
  issuer: string;
  audience: string;
  keys: JSONWebKeySet | URL | JWTVerifyGetKey;
  algorithms: SignedKeyAlgorithm[];
  clockToleranceSeconds: number;
  maxLength: number;
  remote: { timeoutMs: number; cooldownMs: number; cacheMaxAgeMs: number };
  signing: { key: JoseCryptoKey | JWK; kid: string; alg: SignedKeyAlgorithm } | undefined;
  denyListMaxAgeMs: number;
}

/** Check `options.signedKeys` at setup: a `TypeError`/`RangeError` naming what is wrong. */
export function resolveSignedOptions(value: SignedKeyOptions, defaults: { ttlMs: number; storeTimeoutMs: number }): ResolvedSignedOptions {
  const at = 'options.signedKeys';
  if (value === null || typeof value !== 'object') throw new TypeError(`${at} must be an object with issuer, audience and keys`);
  const issuer = text(value.issuer, `${at}.issuer`);
  const audience = text(value.audience, `${at}.audience`);
  const given: unknown = value.algorithms ?? ALGORITHMS;
  const algorithms = Array.isArray(given) ? [...(given as SignedKeyAlgorithm[])] : [];
  if (algorithms.length === 0 || algorithms.some((alg) => !ALGORITHMS.includes(alg))) {
    throw new TypeError(`${at}.algorithms must be a non-empty list of ${ALGORITHMS.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value.algorithms)}`);
  }
  const remote = value.remote ?? {};
  let signing: ResolvedSignedOptions['signing'];
  if (value.signing !== undefined) {
    const { key, kid, alg = 'EdDSA' } = value.signing ?? ({} as never);
    if (key === null || typeof key !== 'object') throw new TypeError(`${at}.signing.key must be a private CryptoKey or a private JWK`);
    if (!(isCryptoKey(key) ? key.type === 'private' : typeof (key as JWK).d === 'string')) throw new TypeError(`${at}.signing.key must be a private key (a public key cannot sign)`);
    if (!ALGORITHMS.includes(alg)) throw new TypeError(`${at}.signing.alg must be 'EdDSA' or 'ES256', got ${JSON.stringify(alg)}`);
    if (!algorithms.includes(alg)) throw new TypeError(`${at}.signing.alg ${alg} is not in ${at}.algorithms: its keys would be refused`);
    signing = { key, kid: text(kid, `${at}.signing.kid`), alg };
  }
  const keys = keySource(value.keys, `${at}.keys`, algorithms);
  // Keys signed with a kid the local set lacks would be refused by every instance verifying with it.
  if (signing && !(keys instanceof URL) && typeof keys !== 'function' && !keys.keys.some((jwk) => jwk.kid === signing!.kid)) {
    throw new TypeError(`${at}.signing.kid ${JSON.stringify(signing.kid)} is not in ${at}.keys: add the signing key's public half`);
  }
  return {
    issuer,
    audience,
    keys,
    algorithms,
    clockToleranceSeconds: wholeNumberOption(value.clockToleranceSeconds ?? 5, `${at}.clockToleranceSeconds`, 0),
    maxLength: wholeNumberOption(value.maxLength ?? 2_048, `${at}.maxLength`, 64),
    remote: {
      timeoutMs: wholeNumberOption(remote.timeoutMs ?? defaults.storeTimeoutMs, `${at}.remote.timeoutMs`, 1),
      cooldownMs: wholeNumberOption(remote.cooldownMs ?? 30_000, `${at}.remote.cooldownMs`, 0),
      cacheMaxAgeMs: wholeNumberOption(remote.cacheMaxAgeMs ?? 600_000, `${at}.remote.cacheMaxAgeMs`, 0),
    },
    signing,
    denyListMaxAgeMs: wholeNumberOption(value.denyListMaxAgeMs ?? defaults.ttlMs, `${at}.denyListMaxAgeMs`, 0),
  };
}

/** JWK members that only private or secret keys have. */
const SECRET_MEMBERS = ['d', 'k', 'p', 'q', 'dp', 'dq', 'qi', 'priv'];
const COORDINATE = /^[A-Za-z0-9_-]{43}$/;

/** The algorithm a public JWK verifies, or `undefined` when it is neither an Ed25519 nor a P-256 key. */
function algorithmOf(jwk: JWK): SignedKeyAlgorithm | undefined {
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && COORDINATE.test(jwk.x ?? '')) return 'EdDSA';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && COORDINATE.test(jwk.x ?? '') && COORDINATE.test(jwk.y ?? '')) return 'ES256';
  return undefined;
}

function keySource(value: SignedKeyOptions['keys'], option: string, algorithms: readonly SignedKeyAlgorithm[]): ResolvedSignedOptions['keys'] {
  if (typeof value === 'function') return value;
  if (typeof value === 'string' || value instanceof URL) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new TypeError(`${option} must be a JWK set, a JWKS URL or a key lookup function, got ${JSON.stringify(String(value))}`);
    }
    // Keys fetched in the clear could be swapped on the way: only a loopback JWKS may use http.
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.test(url.hostname))) {
      throw new TypeError(`${option} must be an https: URL (http: only on localhost), got ${url.protocol}//${url.host}`);
    }
    return url;
  }
  if (value === null || typeof value !== 'object' || !Array.isArray((value as JSONWebKeySet).keys)) {
    throw new TypeError(`${option} must be a JWK set ({ keys: [...] }), a JWKS URL or a key lookup function`);
  }
  const kids = new Set<string>();
  for (const jwk of (value as JSONWebKeySet).keys) {
    if (jwk === null || typeof jwk !== 'object' || typeof jwk.kty !== 'string') throw new TypeError(`${option}: every entry must be a JWK`);
    const kid = JSON.stringify(jwk.kid);
    if (SECRET_MEMBERS.some((member) => member in jwk)) {
      throw new TypeError(`${option} holds a private or secret key (kid ${kid}): give only public keys; the private one goes in signing.key`);
    }
    if (typeof jwk.kid !== 'string' || jwk.kid === '') throw new TypeError(`${option}: every key needs a kid, so that keys can be rotated`);
    if (kids.has(jwk.kid)) throw new TypeError(`${option}: kid ${kid} appears twice`);
    kids.add(jwk.kid);
    // An entry that could never verify a signed key is a mistake to report now, not a 401 later.
    const alg = algorithmOf(jwk);
    if (alg === undefined) throw new TypeError(`${option}: kid ${kid} is not an Ed25519 (OKP) or P-256 (EC) public key with a 32-byte x${jwk.kty === 'EC' ? ' and y' : ''}`);
    if (!algorithms.includes(alg)) throw new TypeError(`${option}: kid ${kid} is a ${alg} key, and ${alg} is not in the accepted algorithms`);
    if (jwk.alg !== undefined && jwk.alg !== alg) throw new TypeError(`${option}: kid ${kid} says alg ${JSON.stringify(jwk.alg)}, but it is a ${alg} key`);
    if (jwk.use !== undefined && jwk.use !== 'sig') throw new TypeError(`${option}: kid ${kid} has use ${JSON.stringify(jwk.use)}; a verification key needs use 'sig' or none`);
    if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) {
      throw new TypeError(`${option}: kid ${kid} has key_ops without 'verify'`);
    }
  }
  return value as JSONWebKeySet;
}

function text(value: unknown, option: string): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${option} must be a non-empty string`);
  return value;
}

const CryptoKeyClass = (globalThis as { CryptoKey?: abstract new () => object }).CryptoKey;

function isCryptoKey(key: object): key is JoseCryptoKey {
  return CryptoKeyClass !== undefined && key instanceof CryptoKeyClass;
}

/** What a signed key says about itself, once verified. */
export interface SignedClaims {
  ownerId: string;
  name: string;
  level: KeyLevel;
  projectId: string | null;
  keyId: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** Characters of an Ed25519 or P-256 signature in base64url (64 bytes). */
const SIGNATURE_LENGTH = 86;

/**
 * Verified tokens for the cache TTL (`exp` is checked on every request), and refused ones for the
 * negative TTL in a smaller LRU, like opaque keys' answers. An entry is found by the SHA-256 of the
 * token's signature and holds the token's signed part (header and claims: nothing secret), which
 * must equal the request's: the whole token is bound, a quarter of it is hashed, and nothing a
 * token could be rebuilt from is kept. Deadlines count from the cache's creation (small integers).
 */
class SignedAnswers {
  private readonly found: LRUCache<string, { entry: CachedKey; signed: string }>;
  private readonly missing: LRUCache<string, { until: number; signed: string }>;
  private readonly origin: number;

  constructor(
    private readonly limits: { max: number; ttlMs: number; negativeMax: number; negativeTtlMs: number },
    now: number,
  ) {
    this.found = new LRUCache({ max: limits.max });
    this.missing = new LRUCache({ max: limits.negativeMax });
    this.origin = now;
  }

  get(ref: string, token: string, now: number): CachedKey | typeof NOT_FOUND | undefined {
    const at = now - this.origin;
    const hit = this.found.get(ref);
    if (hit !== undefined && sameSignedPart(token, hit.signed)) {
      if (hit.entry.cachedUntil > at) return hit.entry;
      this.found.delete(ref);
    }
    const refused = this.missing.get(ref);
    if (refused !== undefined && sameSignedPart(token, refused.signed)) {
      if (refused.until > at) return NOT_FOUND;
      this.missing.delete(ref);
    }
    return undefined;
  }

  set(ref: string, token: string, entry: CachedKey | typeof NOT_FOUND, now: number): void {
    const at = now - this.origin;
    const signed = signedPart(token);
    if (entry === NOT_FOUND) {
      if (this.limits.negativeTtlMs > 0) this.missing.set(ref, { until: at + this.limits.negativeTtlMs, signed });
    } else if (this.limits.ttlMs > 0) {
      entry.cachedUntil = at + this.limits.ttlMs;
      this.found.set(ref, { entry, signed });
    }
  }

  clear(): void {
    this.found.clear();
    this.missing.clear();
  }
}

/** A token without its signature and the dot before it, as a string of its own: a slice would keep the whole token alive. */
function signedPart(token: string): string {
  return JSON.parse(JSON.stringify(token.slice(0, token.length - SIGNATURE_LENGTH - 1))) as string;
}

/** Is `signed` the part of `token` before its 86-character signature? */
function sameSignedPart(token: string, signed: string): boolean {
  return token.length === signed.length + SIGNATURE_LENGTH + 1 && token.charCodeAt(signed.length) === 46 /* . */ && token.slice(0, signed.length) === signed;
}

/**
 * Verifies signed keys and keeps the verified ones (see {@link SignedAnswers}): a warm signed key
 * costs about what a warm opaque key does.
 */
export class SignedKeys implements KeyResolver {
  readonly operation = 'verifySignedKey';
  private readonly answers: SignedAnswers;
  private readonly reads: SharedReads;
  private readonly denials: DenyList;
  private jose: Promise<Jose> | undefined;
  private keySet: JWTVerifyGetKey | undefined;

  constructor(
    private readonly options: ResolvedSignedOptions,
    store: KeyStore,
    limits: { max: number; ttlMs: number; negativeMax: number; negativeTtlMs: number },
    timeoutMs: number,
    private readonly now: () => number,
  ) {
    if (typeof store.listKeyDenials !== 'function') {
      throw new TypeError('options.signedKeys needs a store that implements listKeyDenials (the deny-list of revoked signed keys)');
    }
    this.answers = new SignedAnswers(limits, now());
    this.reads = new SharedReads(timeoutMs);
    this.denials = new DenyList(store, options.denyListMaxAgeMs, timeoutMs, now);
  }

  /**
   * Is this a signed key to verify (not an opaque key)? Decided on its size, its start and the dot
   * before a 64-byte signature, in constant time; the full check waits for a cache miss.
   */
  fits(key: string): boolean {
    return key.length <= this.options.maxLength && key.charCodeAt(key.length - SIGNATURE_LENGTH - 1) === 46 /* . */ && key.startsWith('eyJ');
  }

  /** Its shape chose this resolver, and the shape bounds its size: nothing more to check before hashing. */
  worthHashing(): boolean {
    return true;
  }

  /** The hash of the token's signature (its last 86 characters); the entry it finds is checked against the rest. */
  ref(key: string): string | Promise<string> {
    return cacheRef(key.slice(-SIGNATURE_LENGTH));
  }

  /**
   * Three base64url segments, the first two JSON objects, and a 64-byte signature spelled the one
   * canonical way: only such a string reaches jose's parser.
   */
  plausible(key: string): boolean {
    return JWS_SHAPE.test(key) && SIGNATURE.test(key);
  }

  /** Expired (by its `exp`), or on the deny-list. */
  refused(entry: CachedKey, now: number): boolean | Promise<boolean> {
    return entry.refusedFrom! <= now || this.denials.denied(entry.id, now);
  }

  startOf(): undefined {
    return undefined;
  }

  /** The cached answer for a token's hash, or `undefined` when it must be verified. */
  cached(ref: string, now: number, token: string): CachedKey | typeof NOT_FOUND | undefined {
    return this.answers.get(ref, token, now);
  }

  /** Verify a token (one verification for concurrent requests with it); rejects when the key source fails. */
  load(ref: string, token: string): Promise<CachedKey | typeof NOT_FOUND> {
    // Requests share a verification only when they carry the very same token.
    return this.reads.read<CachedKey | typeof NOT_FOUND>(
      `${ref}${token.slice(0, -SIGNATURE_LENGTH)}`,
      () => this.verify(token),
      (entry) => this.answers.set(ref, token, entry, this.now()),
    );
  }


  /** A key changed somewhere (revoked, rotated): the deny-list is reloaded before the next decision. */
  changed(): void {
    this.denials.changed();
  }

  /** Forget every verified token (the deny-list too). */
  clear(): void {
    this.reads.invalidate();
    this.answers.clear();
    this.denials.changed();
  }

  /** Whether this instance can sign (`signing` is configured). */
  get canSign(): boolean {
    return this.options.signing !== undefined;
  }

  /** Sign a new key's token. Throws when no signing key is configured. */
  async sign(claims: Omit<SignedClaims, 'expiresAt'> & { issuedAt: number; expiresAt: number }): Promise<string> {
    const { signing, issuer, audience } = this.options;
    if (!signing) throw new TypeError('signing a key needs options.signedKeys.signing (a private key and its kid)');
    const jose = await this.library();
    const key = isCryptoKey(signing.key) ? signing.key : await jose.importJWK(signing.key, signing.alg);
    const payload: JWTPayload = { lvl: claims.level, name: claims.name };
    if (claims.projectId !== null) payload.pid = claims.projectId;
    return new jose.SignJWT(payload)
      .setProtectedHeader({ alg: signing.alg, kid: signing.kid, typ: SIGNED_KEY_TYPE })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(claims.ownerId)
      .setJti(claims.keyId)
      .setIssuedAt(Math.floor(claims.issuedAt / 1000))
      .setExpirationTime(Math.floor(claims.expiresAt / 1000))
      .sign(key as JoseCryptoKey);
  }

  /** jose, loaded on first use: apps without signed keys never load it. */
  private library(): Promise<Jose> {
    this.jose ??= import('jose');
    return this.jose;
  }

  private async verify(token: string): Promise<CachedKey | typeof NOT_FOUND> {
    const jose = await this.library();
    const { options } = this;
    this.keySet ??= keyLookup(jose, options, this.now);
    let payload: JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, this.keySet, {
        algorithms: options.algorithms,
        typ: SIGNED_KEY_TYPE,
        issuer: options.issuer,
        audience: options.audience,
        requiredClaims: ['exp', 'jti', 'sub'],
        clockTolerance: options.clockToleranceSeconds,
        currentDate: new Date(this.now()),
      }));
    } catch (error) {
      // The key source failing is a 503; anything else jose refuses is the token's fault: a 401.
      if (error instanceof SourceFailure) throw error.cause;
      return NOT_FOUND;
    }
    return entryOf(payload) ?? NOT_FOUND;
  }
}

/** An error of the key source itself (a JWKS that cannot be fetched, a lookup that throws): a 503. */
class SourceFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('signed key source failed');
  }
}

/**
 * The key lookup jose calls, wrapped: a lookup that finds no key says so (a 401), one that throws
 * fails the source (a 503). A remote JWKS that fails is not asked again for `cooldownMs`: in that
 * time a `kid` its last good copy does not hold is refused at once, so made-up `kid`s cannot turn
 * every request into a fetch.
 */
function keyLookup(jose: Jose, options: ResolvedSignedOptions, now: () => number): JWTVerifyGetKey {
  const { keys, remote } = options;
  const noKey = () => new jose.errors.JWKSNoMatchingKey();
  if (typeof keys === 'function') {
    return async (header, token) => {
      let key: Awaited<ReturnType<JWTVerifyGetKey>> | undefined;
      try {
        key = await keys(header, token);
      } catch (error) {
        if (REFUSED.has((error as { code?: unknown })?.code as string)) throw error;
        throw new SourceFailure(error);
      }
      if (key == null) throw noKey();
      return key;
    };
  }
  if (!(keys instanceof URL)) {
    const local = jose.createLocalJWKSet(keys);
    return async (header, token) => {
      try {
        return await local(header, token);
      } catch (error) {
        if (REFUSED.has((error as { code?: unknown })?.code as string)) throw error;
        throw new SourceFailure(error);
      }
    };
  }
  const set = jose.createRemoteJWKSet(keys, { timeoutDuration: remote.timeoutMs, cooldownDuration: remote.cooldownMs, cacheMaxAge: remote.cacheMaxAgeMs });
  let failedAt = -Infinity;
  return async (header, token) => {
    if (now() - failedAt < remote.cooldownMs) {
      const held = set.jwks()?.keys ?? [];
      if (!held.some((jwk) => jwk.kid === header.kid)) throw noKey();
    }
    try {
      return await set(header, token);
    } catch (error) {
      if (REFUSED.has((error as { code?: unknown })?.code as string)) throw error;
      failedAt = now();
      throw new SourceFailure(error);
    }
  };
}

/** The cache entry of a verified token, or `null` when its claims do not describe a key. */
function entryOf(payload: JWTPayload): CachedKey | null {
  const { sub, jti, exp, lvl, pid, name } = payload;
  if (typeof sub !== 'string' || !ID_PATTERN.test(sub) || typeof jti !== 'string' || !ID_PATTERN.test(jti)) return null;
  // A signed key must expire: a finite exp within what a Date can hold (1e400 parses to Infinity).
  if (typeof name !== 'string' || name === '' || name.length > 64 || typeof exp !== 'number' || !(exp * 1000 <= MAX_TIME)) return null;
  if (lvl === 'user' ? pid !== undefined : lvl !== 'project' || typeof pid !== 'string' || !ID_PATTERN.test(pid)) return null;
  return { id: jti, name, ownerId: sub, projectId: lvl === 'project' ? (pid as string) : null, refusedFrom: exp * 1000, cachedUntil: 0, ownerAnswers: null };
}

/**
 * The store's deny-list of signed keys, held in memory: a decision reads a map, never the store.
 * It is reloaded when a change is heard (and then before the next decision), and when it is older
 * than `maxAgeMs`. A list that cannot be loaded refuses with 503: it is never guessed.
 */
class DenyList {
  private from = new Map<string, number>();
  private freshUntil = -Infinity;
  private loading: Promise<void> | undefined;
  private version = 0;
  /** Loads are numbered; an older one that finishes after a newer one is dropped. */
  private started = 0;
  private applied = 0;
  private readonly deadlines: Deadlines;

  constructor(
    private readonly store: KeyStore,
    private readonly maxAgeMs: number,
    timeoutMs: number,
    private readonly now: () => number,
  ) {
    this.deadlines = new Deadlines(timeoutMs);
  }

  denied(keyId: string, now: number): boolean | Promise<boolean> {
    if (now < this.freshUntil) return this.has(keyId, now);
    return this.load().then(() => this.has(keyId, now));
  }

  changed(): void {
    this.version++;
    this.freshUntil = -Infinity;
    // A load that began before the change may have missed it: the next decision starts another.
    this.loading = undefined;
  }

  private has(keyId: string, now: number): boolean {
    const from = this.from.get(keyId);
    return from !== undefined && from <= now;
  }

  private load(): Promise<void> {
    if (this.loading) return this.loading;
    const version = this.version;
    const number = ++this.started;
    const started = this.now();
    const loading = this.deadlines.run(() => this.store.listKeyDenials!(new Date(started)))
      .then((entries: KeyDenial[]) => {
        if (number < this.applied) return;
        const from = new Map<string, number>();
        for (const entry of entries) from.set(entry.keyId, entry.from.getTime());
        this.from = from;
        this.applied = number;
        if (version === this.version) this.freshUntil = started + this.maxAgeMs;
      })
      .finally(() => {
        if (this.loading === loading) this.loading = undefined;
      });
    this.loading = loading;
    return loading;
  }
}
