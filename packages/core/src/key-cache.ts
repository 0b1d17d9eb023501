import { LRUCache } from 'lru-cache';
import { SharedReads } from './shared-reads.js';
import type { RateLimit } from './limits.js';
import { hexOfCacheRef } from './key-format.js';
import { readForAuth, type AuthKeyRecord, type KeyStore } from './types.js';

/** What a lookup of a hash the store does not know answers. */
export const NOT_FOUND = Symbol('not found');

/** What a decision needs of a key, and no more: cached per key, times as epoch ms. */
export interface CachedKey {
  id: string;
  name: string;
  ownerId: string;
  /** A project-level key's project; `null` for a user-level key (so no level is stored). */
  projectId: string | null;
  /**
   * Epoch ms from which the key is refused: its expiry, or 0 when revoked; `null` when neither
   * (most keys: no number is allocated for them).
   */
  refusedFrom: number | null;
  /** Until when the cache may answer with this entry, in ms after the cache's creation (a small integer). */
  cachedUntil: number;
  /**
   * The owner's "owned" answers in the ownership cache (project → until when), once one of them
   * let this key through: a warm check of a project reads it directly instead of looking the owner
   * up. `null` until then. See `OwnershipCache.ownsFor`.
   */
  ownerAnswers: Map<string, number> | null;
  /**
   * Only on a key with limits of its own, or a rotated one (so an unlimited key's entry is no
   * bigger): its rate limit, whether it has a quota (counted in the store on every request), and
   * the id they are counted under (its line's first key: see `KeyRecord.limitsFrom`).
   */
  limits?: { rate: RateLimit | null; quota: boolean; countedAs: string };
}

/** The cache entry of a stored key. */
export function cachedKey(record: AuthKeyRecord): CachedKey {
  const entry: CachedKey = {
    id: record.id,
    name: record.name,
    ownerId: record.ownerId,
    projectId: record.level === 'project' ? record.projectId : null,
    // A project-level record without a project (a broken row) is refused, never widened to its owner's account.
    refusedFrom: record.revokedAt !== null || (record.level === 'project' && !record.projectId) ? 0 : record.expiresAt === null ? null : record.expiresAt.getTime(),
    cachedUntil: 0,
    ownerAnswers: null,
  };
  const rate = record.rateLimit ?? null;
  const quota = record.quota != null;
  const from = record.limitsFrom ?? null;
  if (rate !== null || quota || from !== null) entry.limits = { rate: rate && { limit: rate.limit, windowMs: rate.windowMs }, quota, countedAs: from ?? record.id };
  return entry;
}

/**
 * Answers by hash: found keys for `ttlMs` (their expiry is checked on every request, so an expired
 * key stays cached as refused and costs no store read); "not found" for `negativeTtlMs` in a
 * separate, smaller LRU, so a flood of made-up keys evicts only other made-up keys, never a real
 * one. Each entry carries its own deadline, read against the clock the request already took (the
 * LRUs only bound size); deadlines count from the cache's creation so they stay small integers.
 */
export class AnswerCache {
  private readonly found: LRUCache<string, CachedKey>;
  /** Hash → until when "not found" holds. */
  private readonly missing: LRUCache<string, number>;
  private readonly origin: number;

  constructor(
    private readonly limits: { max: number; ttlMs: number; negativeMax: number; negativeTtlMs: number },
    now: number,
  ) {
    this.found = new LRUCache({ max: limits.max });
    this.missing = new LRUCache({ max: limits.negativeMax });
    this.origin = now;
  }

  /** The answer for `hash` at `now`, or `undefined` when there is none; stale entries go. */
  get(hash: string, now: number): CachedKey | typeof NOT_FOUND | undefined {
    const at = now - this.origin;
    const entry = this.found.get(hash);
    if (entry !== undefined) {
      if (entry.cachedUntil > at) return entry;
      this.found.delete(hash);
    }
    const until = this.missing.get(hash);
    if (until !== undefined) {
      if (until > at) return NOT_FOUND;
      this.missing.delete(hash);
    }
    return undefined;
  }

  /** Keep what a lookup found at `now`. */
  set(hash: string, entry: CachedKey | typeof NOT_FOUND, now: number): void {
    const at = now - this.origin;
    if (entry === NOT_FOUND) {
      if (this.limits.negativeTtlMs > 0) this.missing.set(hash, at + this.limits.negativeTtlMs);
    } else if (this.limits.ttlMs > 0) {
      entry.cachedUntil = at + this.limits.ttlMs;
      this.found.set(hash, entry);
    }
  }

  /** Forget one key's entries (by id), or everything. */
  delete(keyId?: string): void {
    if (keyId === undefined) {
      this.found.clear();
      this.missing.clear();
      return;
    }
    const stale: string[] = [];
    for (const [hash, entry] of this.found.entries()) if (entry.id === keyId) stale.push(hash);
    for (const hash of stale) this.found.delete(hash);
  }
}

/** What the cache keeps of a store's answer. */
function entryOf(record: AuthKeyRecord | null): CachedKey | typeof NOT_FOUND {
  return record ? cachedKey(record) : NOT_FOUND;
}

/** Stored keys by SHA-256 hash (a `cacheRef`), read through to the store on a miss. */
export class KeyCache {
  private readonly answers: AnswerCache;
  private readonly reads: SharedReads;

  constructor(
    private readonly store: KeyStore,
    limits: { max: number; ttlMs: number; negativeMax: number; negativeTtlMs: number },
    timeoutMs: number,
    private readonly now: () => number,
  ) {
    this.answers = new AnswerCache(limits, now());
    this.reads = new SharedReads(timeoutMs);
  }

  /** The cached answer for `hash` at `now`, or `undefined` when the store must be asked. */
  get(hash: string, now: number): CachedKey | typeof NOT_FOUND | undefined {
    return this.answers.get(hash, now);
  }

  /**
   * Ask the store (one call for concurrent misses); rejects when the store fails or is too slow.
   * `hash` is the key's `cacheRef` (the store is asked with its hex).
   */
  load(hash: string): Promise<CachedKey | typeof NOT_FOUND> {
    return this.reads.read<CachedKey | typeof NOT_FOUND>(
      hash,
      // The narrower read where the store has one for its present findKeyByHash: the same answer, less to build.
      () => readForAuth(this.store, hexOfCacheRef(hash)).then(entryOf),
      (entry) => this.answers.set(hash, entry, this.now()),
    );
  }

  /** Forget one key (by id), or everything; reads in flight fill nothing. */
  invalidate(keyId?: string): void {
    this.reads.invalidate();
    this.answers.delete(keyId);
  }
}
