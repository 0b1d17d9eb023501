// Node's crypto when the runtime has it (found at run time, so that runtimes with only Web Crypto
// load this module too); Web Crypto otherwise.
type NodeCrypto = typeof import('node:crypto');
const nodeCrypto: NodeCrypto | undefined = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;

/** The key alphabet: 62 characters, no separators, so a key is one word for secret scanners. */
export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Random characters per key: 30 × log2(62) ≈ 178 bits from the CSPRNG. */
export const KEY_RANDOM_LENGTH = 30;
/** Trailing base62 characters holding the CRC32 of everything before them. */
export const KEY_CHECKSUM_LENGTH = 6;
/** Default key prefix: keys look like `ks_<30 random><6 checksum>`. */
export const DEFAULT_KEY_PREFIX = 'ks';
/** The latest instant a JavaScript Date can hold (epoch ms). */
export const MAX_TIME = 8.64e15;
/** Project, owner and key ids: 1-128 characters of letters, digits, `.`, `_`, `:` or `-`. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const PREFIX_PATTERN = /^[a-z][a-z0-9]{0,15}$/;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC32 (IEEE) of an ASCII string (its first `end` characters), e.g. `crc32('123456789') === 0xcbf43926`. */
export function crc32(text: string, end: number = text.length): number {
  let crc = 0xffffffff;
  for (let i = 0; i < end; i++) {
    crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function toBase62(value: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

/** `length` base62 characters from the CSPRNG, without modulo bias. */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      // 248 = 4 × 62: rejecting bytes above it keeps every character equally likely.
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Throws a `TypeError` naming `option` unless `prefix` is 1–16 lowercase letters/digits. */
export function assertKeyPrefix(prefix: unknown, option = 'keyPrefix'): asserts prefix is string {
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new TypeError(`${option} must be 1-16 lowercase letters or digits starting with a letter, got ${JSON.stringify(prefix)}`);
  }
}

/**
 * A new API key: `<prefix>_<30 random base62><6 base62 CRC32>`.
 * @example generateKey() // 'ks_3VhN...' (39 characters)
 */
export function generateKey(prefix: string = DEFAULT_KEY_PREFIX): string {
  assertKeyPrefix(prefix, 'prefix');
  const body = `${prefix}_${randomBase62(KEY_RANDOM_LENGTH)}`;
  return body + toBase62(crc32(body), KEY_CHECKSUM_LENGTH);
}

/** The total length of a key with this prefix. */
export function keyLength(prefix: string = DEFAULT_KEY_PREFIX): number {
  return prefix.length + 1 + KEY_RANDOM_LENGTH + KEY_CHECKSUM_LENGTH;
}

/**
 * Does `key` have this prefix, the right length and alphabet, and a matching checksum?
 * Decided offline: a typo or a random string never reaches a store.
 * @example isWellFormedKey(generateKey()) === true
 */
export function isWellFormedKey(key: string, prefix: string = DEFAULT_KEY_PREFIX): boolean {
  return hasKeyShape(key, prefix) && hasValidChecksum(key);
}

/** Prefix, separator, length and alphabet only: the cheap half of {@link isWellFormedKey}. */
export function hasKeyShape(key: string, prefix: string = DEFAULT_KEY_PREFIX): boolean {
  if (key.length !== keyLength(prefix) || !key.startsWith(prefix) || key.charCodeAt(prefix.length) !== 95 /* _ */) {
    return false;
  }
  for (let i = prefix.length + 1; i < key.length; i++) {
    if (base62Digit(key.charCodeAt(i)) < 0) return false;
  }
  return true;
}

/** Do the last six characters of a key of the right shape hold the CRC32 of the rest? */
export function hasValidChecksum(key: string): boolean {
  const split = key.length - KEY_CHECKSUM_LENGTH;
  let stated = 0;
  for (let i = split; i < key.length; i++) stated = stated * 62 + base62Digit(key.charCodeAt(i));
  return stated === crc32(key, split);
}

/** The value of a base62 character code, or -1. */
function base62Digit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 90) return c - 55;
  if (c >= 97 && c <= 122) return c - 61;
  return -1;
}

const oneShotHash = typeof nodeCrypto?.hash === 'function' ? nodeCrypto.hash : undefined;

/**
 * Lowercase hex SHA-256 of the whole key: what stores keep and look up instead of the key.
 * Synchronous, so it needs Node's crypto; {@link hashKeyAsync} works on every runtime.
 * @example hashKey('ks_...').length === 64
 */
export function hashKey(key: string): string {
  if (oneShotHash) return oneShotHash('sha256', key, 'hex');
  if (nodeCrypto) return nodeCrypto.createHash('sha256').update(key).digest('hex');
  throw new TypeError('hashKey needs node:crypto; on a runtime with only Web Crypto, use hashKeyAsync');
}

/**
 * {@link hashKey} on any runtime: Node's crypto where there is one, else Web Crypto.
 * @example await hashKeyAsync('ks_...') === hashKey('ks_...')
 */
export async function hashKeyAsync(key: string): Promise<string> {
  return digestKey(key);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The key's hash, synchronously where Node's crypto is available (the request path stays unawaited). */
export function digestKey(key: string): string | Promise<string> {
  if (nodeCrypto) return hashKey(key);
  return crypto.subtle.digest('SHA-256', new TextEncoder().encode(key)).then((buffer) => {
    let hex = '';
    for (const byte of new Uint8Array(buffer)) hex += HEX[byte];
    return hex;
  });
}

/**
 * The key's identity in keyscope's own caches: its SHA-256 as 32 one-byte characters where Node's
 * crypto is (half the memory of hex per cached key, and half the characters for a Map to hash on
 * every request), else {@link digestKey}'s hex. Stores never see it: {@link hexOfCacheRef}.
 * @example hexOfCacheRef(cacheRef(key) as string) === hashKey(key)
 */
export function cacheRef(key: string): string | Promise<string> {
  if (oneShotHash) return oneShotHash('sha256', key, 'binary');
  if (nodeCrypto) return nodeCrypto.createHash('sha256').update(key).digest('binary');
  return digestKey(key);
}

/** Node's Buffer where there is one: it writes the hex of a cache miss's ref in half the time of the loop below. */
const NodeBuffer = (globalThis as { Buffer?: { from(text: string, encoding: 'latin1'): { toString(encoding: 'hex'): string } } }).Buffer;

/** The lowercase hex SHA-256 a store looks up, from a {@link cacheRef} (which may be hex already). */
export function hexOfCacheRef(ref: string): string {
  if (ref.length === 64) return ref;
  if (NodeBuffer) return NodeBuffer.from(ref, 'latin1').toString('hex');
  let hex = '';
  for (let i = 0; i < ref.length; i++) hex += HEX[ref.charCodeAt(i)];
  return hex;
}

/** The non-secret display start of a key: its prefix and first four random characters. */
export function keyStart(key: string): string {
  return key.slice(0, key.indexOf('_') + 5);
}

/** A new public key id, e.g. `key_8kQ2...` (not secret; safe to log). */
export function generateKeyId(): string {
  return `key_${randomBase62(20)}`;
}
