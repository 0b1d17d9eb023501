import { LRUCache } from 'lru-cache';
import { SharedReads } from './shared-reads.js';
import type { KeyLevel, KeyRecord, KeyStore } from './types.js';

/** What a lookup of a hash the store does not know answers. */
export const NOT_FOUND = Symbol('not found');

/** What a decision needs of a key, and no more: cached per key, times as epoch ms. */
export interface CachedKey {
  id: string;
  name: string;
  ownerId: string;
  level: KeyLevel;
  projectId: string | null;
  /** Epoch ms; `Infinity` when the key never expires. */
  expiresAt: number;
  revoked: boolean;
}

/** The cache entry of a stored key. */
export function cachedKey(record: KeyRecord): CachedKey {
  return {
    id: record.id,
    name: record.name,
    ownerId: record.ownerId,
    level: record.level,
    projectId: record.projectId,
    expiresAt: record.expiresAt === null ? Infinity : record.expiresAt.getTime(),
    revoked: record.revokedAt !== null,
  };
}

/**
 * Resolved keys by SHA-256 hash. Found keys live `ttlMs` (never past their `expiresAt`);
 * hashes the store does not know live `negativeTtlMs` in a separate, smaller LRU, so a flood of
 * made-up (checksum-valid) keys evicts only other made-up keys, never a real one.
 */
export class KeyCache {
  private readonly found: LRUCache<string, CachedKey>;
  private readonly missing: LRUCache<string, true>;
  private readonly reads: SharedReads;

  constructor(
    private readonly store: KeyStore,
    private readonly limits: { max: number; ttlMs: number; negativeMax: number; negativeTtlMs: number },
    timeoutMs: number,
    private readonly now: () => number,
  ) {
    this.found = new LRUCache({ max: limits.max });
    this.missing = new LRUCache({ max: limits.negativeMax });
    this.reads = new SharedReads(timeoutMs);
  }

  /** The cached answer for `hash`, or `undefined` when the store must be asked. */
  get(hash: string): CachedKey | typeof NOT_FOUND | undefined {
    return this.found.get(hash) ?? (this.missing.get(hash) ? NOT_FOUND : undefined);
  }

  /** Ask the store (one call for concurrent misses); rejects when the store fails or is too slow. */
  load(hash: string): Promise<CachedKey | typeof NOT_FOUND> {
    return this.reads.read<CachedKey | typeof NOT_FOUND>(
      hash,
      async () => {
        const record = await this.store.findKeyByHash(hash);
        return record ? cachedKey(record) : NOT_FOUND;
      },
      (entry) => {
        if (entry === NOT_FOUND) {
          if (this.limits.negativeTtlMs > 0) this.missing.set(hash, true, { ttl: this.limits.negativeTtlMs });
          return;
        }
        const ttl = Math.min(this.limits.ttlMs, entry.expiresAt - this.now());
        if (ttl > 0) this.found.set(hash, entry, { ttl });
      },
    );
  }

  /** Forget one key (by id), or everything; reads in flight fill nothing. */
  invalidate(keyId?: string): void {
    this.reads.invalidate();
    if (keyId === undefined) {
      this.found.clear();
      this.missing.clear();
      return;
    }
    const stale: string[] = [];
    for (const [hash, record] of this.found.entries()) if (record.id === keyId) stale.push(hash);
    for (const hash of stale) this.found.delete(hash);
  }
}
