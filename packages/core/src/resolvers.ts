import { isForeignKey } from './admin.js';
import { KeyCache, NOT_FOUND, type CachedKey } from './key-cache.js';
import { cacheRef, hasKeyShape, hasValidChecksum, keyStart } from './key-format.js';

/**
 * How one kind of key is checked. The pipeline picks a resolver by the key's shape, then asks it
 * the same questions whatever the kind: opaque keys are looked up by hash in the store, signed
 * keys are verified with a public key.
 */
export interface KeyResolver {
  /** What `onEvent` names when `load` fails. */
  readonly operation: 'findKeyByHash' | 'verifySignedKey';
  /** Is the key worth hashing at all? A length check, nothing more. */
  worthHashing(key: string): boolean;
  /** The key's cache identity: a SHA-256 (synchronous where Node's crypto is). Never the key itself. */
  ref(key: string): string | Promise<string>;
  /** The cached answer for the key at `now`, or `undefined` when it must be loaded. */
  cached(ref: string, now: number, key: string): CachedKey | typeof NOT_FOUND | undefined;
  /** The offline checks a key passes before it costs a store read or a signature check. */
  plausible(key: string): boolean;
  /** Look the key up (or verify it); rejects when the store or the key source fails. */
  load(ref: string, key: string): Promise<CachedKey | typeof NOT_FOUND>;
  /**
   * Is a known key refused now (revoked, expired, on the deny-list)? A promise only while a
   * deny-list loads; it rejects when the list cannot be loaded.
   */
  refused(entry: CachedKey, now: number): boolean | Promise<boolean>;
  /** The display start of a well-formed key that is not known, for events. */
  startOf(key: string): string | undefined;
}

/** Opaque keys (keyscope's own, and imported ones): offline shape and checksum, then the store by hash. */
export function opaqueResolver(cache: KeyCache, o: { prefix: string; keyLength: number; importedKeys: false | { minLength: number; maxLength: number } }): KeyResolver {
  const { prefix, keyLength, importedKeys } = o;
  const wellFormed = (key: string) => hasKeyShape(key, prefix) && hasValidChecksum(key);
  return {
    operation: 'findKeyByHash',
    // Keyscope keys have one length; imported ones a range.
    worthHashing: (key) => key.length === keyLength || (importedKeys !== false && key.length >= importedKeys.minLength && key.length <= importedKeys.maxLength),
    // The whole key's hash, in the cache's own compact form (the store is asked in hex).
    ref: cacheRef,
    cached: (hash, now) => cache.get(hash, now),
    // With imported keys on, a key of keyscope's own shape still needs its checksum: only other shapes go to the store unchecked.
    plausible: (key) => wellFormed(key) || (importedKeys !== false && !hasKeyShape(key, prefix) && isForeignKey(key, importedKeys)),
    load: (hash) => cache.load(hash),
    refused: (entry, now) => entry.refusedFrom !== null && entry.refusedFrom <= now,
    startOf: (key) => (wellFormed(key) ? keyStart(key) : undefined),
  };
}
