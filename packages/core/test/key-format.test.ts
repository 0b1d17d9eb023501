import { describe, expect, it, vi } from 'vitest';
import { crc32, generateKey, hashKey, isWellFormedKey, keyLength, keyStart, KEY_CHECKSUM_LENGTH } from '../src/index.js';
import { cacheRef, hexOfCacheRef } from '../src/key-format.js';

describe('key format', () => {
  it('computes the standard CRC32 check value', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
    expect(crc32('')).toBe(0);
  });

  it('generates prefixed base62 keys of fixed length that pass the offline check', () => {
    const key = generateKey();
    expect(key).toMatch(/^ks_[0-9A-Za-z]{36}$/);
    expect(key).toHaveLength(keyLength());
    expect(isWellFormedKey(key)).toBe(true);
  });

  it('draws at least 160 bits: 1,000 keys are all distinct and use the whole alphabet', () => {
    const keys = new Set(Array.from({ length: 1000 }, () => generateKey()));
    expect(keys.size).toBe(1000);
    const chars = new Set([...keys].join('').replace(/^ks_/gm, ''));
    expect(chars.size).toBeGreaterThanOrEqual(62);
  });

  it('honours a custom prefix and rejects a key with another prefix', () => {
    const key = generateKey('acme');
    expect(key.startsWith('acme_')).toBe(true);
    expect(isWellFormedKey(key, 'acme')).toBe(true);
    expect(isWellFormedKey(key)).toBe(false);
    expect(() => generateKey('Bad-Prefix')).toThrow(TypeError);
  });

  it('rejects every single-character typo through the checksum', () => {
    const key = generateKey();
    for (let i = 3; i < key.length; i++) {
      const swapped = key[i] === 'a' ? 'b' : 'a';
      expect(isWellFormedKey(key.slice(0, i) + swapped + key.slice(i + 1)), `position ${i}`).toBe(false);
    }
  });

  it('rejects wrong length, charset and separators', () => {
    const key = generateKey();
    for (const bad of ['', 'ks_', key + 'A', key.slice(0, -1), key.replace('_', '-'), key.slice(0, 10) + '+' + key.slice(11), ` ${key}`, 'x'.repeat(8192)]) {
      expect(isWellFormedKey(bad), JSON.stringify(bad.slice(0, 20))).toBe(false);
    }
  });

  it('hashes with SHA-256 (hex) and shows only a short non-secret start', () => {
    expect(hashKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const key = generateKey();
    expect(keyStart(key)).toBe(key.slice(0, 7));
    expect(key.length - keyStart(key).length).toBeGreaterThan(KEY_CHECKSUM_LENGTH + 20);
  });
  it("keeps a key in the caches as its SHA-256 in 32 one-byte characters, and asks stores with that hash's hex", () => {
    for (const key of ['abc', generateKey(), generateKey('acme'), 'x'.repeat(256)]) {
      const ref = cacheRef(key);
      if (typeof ref !== 'string') throw new Error('Node crypto hashes synchronously');
      expect(ref).toHaveLength(32);
      expect(hexOfCacheRef(ref)).toBe(hashKey(key));
    }
    // A hex ref (Web Crypto runtimes cache by hex) goes to the store as it is.
    expect(hexOfCacheRef(hashKey('abc'))).toBe(hashKey('abc'));
  });
  it('writes the same hex without a global Buffer', async () => {
    vi.stubGlobal('Buffer', undefined);
    vi.resetModules();
    try {
      const fresh = await import('../src/key-format.js');
      for (const key of ['abc', generateKey(), 'x'.repeat(256)]) expect(fresh.hexOfCacheRef(cacheRef(key) as string)).toBe(hashKey(key));
    } finally {
      vi.unstubAllGlobals();
      vi.resetModules();
    }
  });
});
