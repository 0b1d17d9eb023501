import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKeyscope, generateKey, generateKeyId, hashKey, keyStart } from '@keyscope/core';
import type { KeyAdminStore, KeyDenial, KeyRecord, Project, Quota, StoreChange } from '@keyscope/core';

/** What a store under test brings: the store, a way to add projects, and its cleanup. */
export interface StoreHarness {
  store: KeyAdminStore;
  /** Put a project in the store's project directory (every store has its own way). */
  addProject(project: Project): Promise<void> | void;
  /** Delete a project from the store's project directory. */
  removeProject(id: string): Promise<unknown> | unknown;
  /** Close the store and remove what the factory created. */
  cleanup?(): Promise<void> | void;
}

const DAY = 86_400_000;

/**
 * A complete key record, ready for `createKey`, with `kind` and the limits (none) set as
 * `keys.create` sets them; `overrides` wins.
 */
export function keyRecord(overrides: Partial<KeyRecord> = {}): KeyRecord & { key: string } {
  const key = generateKey();
  return {
    key,
    id: generateKeyId(),
    name: 'ci',
    ownerId: 'user_1',
    level: 'user',
    projectId: null,
    hash: hashKey(key),
    start: keyStart(key),
    kind: 'opaque',
    rateLimit: null,
    quota: null,
    limitsFrom: null,
    createdAt: new Date(Date.UTC(2025, 0, 1, 12, 0, 0, 123)),
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    ...overrides,
  };
}

/** The record as a store should give it back (without the test-only plaintext). */
function stored(record: KeyRecord & { key?: string }): KeyRecord {
  const { key: _key, ...rest } = record;
  return rest;
}

/**
 * The contract every `KeyAdminStore` must meet, run against a fresh store per test.
 *
 * @example storeConformance('MemoryStore', async () => { const store = new MemoryStore(); return { store, addProject: (p) => store.addProject(p), removeProject: (id) => store.removeProject(id) } })
 */
export function storeConformance(name: string, factory: () => Promise<StoreHarness>): void {
  describe(`store conformance: ${name}`, () => {
    let harness: StoreHarness;
    let store: KeyAdminStore;

    beforeEach(async () => {
      harness = await factory();
      store = harness.store;
    });
    afterEach(async () => {
      await harness.cleanup?.();
    });

    describe('keys', () => {
      it('finds a created key by hash and by id, every field intact', async () => {
        const record = keyRecord({ expiresAt: new Date(Date.UTC(2030, 5, 1, 0, 0, 0, 7)) });
        await store.createKey(stored(record));
        expect(await store.findKeyByHash(record.hash)).toEqual(stored(record));
        expect(await store.getKey(record.id)).toEqual(stored(record));
        const found = (await store.findKeyByHash(record.hash))!;
        for (const field of ['createdAt', 'expiresAt'] as const) expect(found[field]).toBeInstanceOf(Date);
        expect(found.revokedAt).toBeNull();
        expect(found.lastUsedAt).toBeNull();
      });

      it('answers with findKeyForAuth, where the store has it, what findKeyByHash answers of every field a decision reads', async (ctx) => {
        if (typeof store.findKeyForAuth !== 'function') ctx.skip();
        // Marked as narrowing this findKeyByHash, or a cache miss would never call it.
        expect(store.findKeyForAuth!.narrows).toBe(store.findKeyByHash);
        await harness.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
        const first = keyRecord({ rateLimit: { limit: 5, windowMs: 60_000 }, quota: { limit: 100, remaining: 100, refill: 'day', resetAt: new Date(Date.UTC(2025, 0, 2)) } });
        const records = [
          keyRecord(),
          keyRecord({ level: 'project', projectId: 'proj_a', expiresAt: new Date(Date.UTC(2030, 5, 1, 0, 0, 0, 7)) }),
          keyRecord({ revokedAt: new Date(Date.UTC(2025, 2, 1)) }),
          first,
          keyRecord({ quota: { limit: 3, remaining: 1, refill: null, resetAt: null }, limitsFrom: first.id }),
        ];
        for (const record of records) await store.createKey(stored(record));
        // A last use on record, which the narrower read leaves out.
        await store.recordUsage([{ keyId: records[0]!.id, day: '2025-04-10', count: 1, lastUsedAt: new Date(Date.UTC(2025, 3, 10)) }]);
        const decisionFields = ['id', 'name', 'ownerId', 'level', 'projectId', 'expiresAt', 'revokedAt', 'rateLimit', 'quota', 'limitsFrom'] as const;
        for (const record of records) {
          const full = (await store.findKeyByHash(record.hash))!;
          const narrow = (await store.findKeyForAuth!(record.hash))!;
          expect(narrow).toEqual(Object.fromEntries(decisionFields.map((field) => [field, full[field]])));
          expect(narrow.expiresAt === null || narrow.expiresAt instanceof Date).toBe(true);
        }
        expect((await store.findKeyByHash(records[0]!.hash))!.lastUsedAt).not.toBeNull();
        expect(await store.findKeyForAuth!(hashKey(generateKey()))).toBeNull();
      });

      it('answers findKeyForAuth through a findKeyByHash replaced on the instance, so a cache miss never goes around it', async (ctx) => {
        if (typeof store.findKeyForAuth !== 'function') ctx.skip();
        const [blocked, allowed] = [keyRecord(), keyRecord()];
        for (const record of [blocked, allowed]) await store.createKey(stored(record));
        const own = Object.getOwnPropertyDescriptor(store, 'findKeyByHash');
        const find = store.findKeyByHash.bind(store);
        const asked: string[] = [];
        // A wrapper that refuses one key by answering "not found" for it, and notes every read.
        store.findKeyByHash = async (hash) => (asked.push(hash), hash === blocked.hash ? null : find(hash));
        try {
          expect(await store.findKeyForAuth!(blocked.hash)).toBeNull();
          expect((await store.findKeyForAuth!(allowed.hash))?.id).toBe(allowed.id);
          expect(asked).toEqual([blocked.hash, allowed.hash]);
        } finally {
          if (own) Object.defineProperty(store, 'findKeyByHash', own);
          else delete (store as { findKeyByHash?: unknown }).findKeyByHash;
        }
      });

      it('keeps a project-level key’s project and a user-level key’s null project', async () => {
        await harness.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
        const projectKey = keyRecord({ level: 'project', projectId: 'proj_a' });
        const userKey = keyRecord();
        await store.createKey(stored(projectKey));
        await store.createKey(stored(userKey));
        expect(await store.getKey(projectKey.id)).toMatchObject({ level: 'project', projectId: 'proj_a' });
        expect(await store.getKey(userKey.id)).toMatchObject({ level: 'user', projectId: null });
      });

      it('answers null for an unknown hash or id', async () => {
        expect(await store.findKeyByHash(hashKey(generateKey()))).toBeNull();
        expect(await store.getKey('key_missing')).toBeNull();
      });

      it('rejects a second key with the same id or the same hash', async () => {
        const record = keyRecord();
        await store.createKey(stored(record));
        await expect(store.createKey(stored({ ...keyRecord(), id: record.id }))).rejects.toThrow();
        await expect(store.createKey(stored({ ...keyRecord(), hash: record.hash }))).rejects.toThrow();
        expect(await store.listKeys('user_1')).toHaveLength(1);
      });

      it('lists an owner’s keys oldest first, revoked and expired ones included, nobody else’s', async () => {
        const t = Date.UTC(2025, 0, 1);
        const second = keyRecord({ name: 'second', createdAt: new Date(t + 2000), revokedAt: new Date(t + 3000) });
        const first = keyRecord({ name: 'first', createdAt: new Date(t + 1000), expiresAt: new Date(t + 1500) });
        const third = keyRecord({ name: 'third', createdAt: new Date(t + 4000) });
        // Created in time order, as keys.create does: MemoryStore lists by insertion order.
        await store.createKey(stored(first));
        await store.createKey(stored(keyRecord({ ownerId: 'user_2' })));
        await store.createKey(stored(second));
        await store.createKey(stored(third));
        const listed = await store.listKeys('user_1');
        expect(listed.map((k) => k.name)).toEqual(['first', 'second', 'third']);
        expect(listed[0]).toEqual(stored(first));
        expect(listed[1]).toEqual(stored(second));
        expect(await store.listKeys('user_nobody')).toEqual([]);
      });

      it("lists every owner's keys oldest first with listAllKeys", async () => {
        expect(typeof store.listAllKeys, 'keyscope keys list --all needs it').toBe('function');
        const b = keyRecord({ ownerId: 'user_2', createdAt: new Date(Date.UTC(2025, 0, 2)) });
        const a = keyRecord({ ownerId: 'user_1', createdAt: new Date(Date.UTC(2025, 0, 1)) });
        const c = keyRecord({ ownerId: 'user_1', createdAt: new Date(Date.UTC(2025, 0, 3)), revokedAt: new Date(Date.UTC(2025, 0, 4)) });
        for (const r of [b, c, a]) await store.createKey(stored(r));
        expect(await store.listAllKeys!()).toEqual([stored(a), stored(b), stored(c)]);
      });

      it('hands out copies: changing what it returned or what it was given changes nothing stored', async () => {
        const record = keyRecord({ expiresAt: new Date(Date.UTC(2030, 0, 1)) });
        const expected = structuredClone(stored(record));
        const input = stored(record);
        await store.createKey(input);
        input.name = 'changed after create';
        input.expiresAt!.setTime(0);

        const byHash = (await store.findKeyByHash(record.hash))!;
        const byId = (await store.getKey(record.id))!;
        const [listed] = await store.listKeys('user_1');
        expect(byHash).not.toBe(byId);
        for (const got of [byHash, byId, listed!]) {
          got.name = 'mutated';
          got.createdAt.setTime(0);
          got.expiresAt!.setTime(0);
          got.revokedAt = new Date(0);
        }
        expect(await store.getKey(record.id)).toEqual(expected);
        expect(await store.findKeyByHash(record.hash)).toEqual(expected);

        // A record read before a write does not change under the caller's feet.
        const before = (await store.getKey(record.id))!;
        await store.revokeKey(record.id, new Date(Date.UTC(2026, 0, 1)));
        await store.setKeyExpiry(record.id, new Date(Date.UTC(2027, 0, 1)));
        await store.recordUsage([{ keyId: record.id, day: '2026-01-01', count: 1, lastUsedAt: new Date(Date.UTC(2026, 0, 1)) }]);
        expect(before).toEqual(expected);
      });
    });

    describe('key kind', () => {
      it('gives a signed and an opaque key back with their kind, from every read', async () => {
        const signed = keyRecord({ kind: 'signed', createdAt: new Date(Date.UTC(2025, 0, 1)) });
        const opaque = keyRecord({ kind: 'opaque', createdAt: new Date(Date.UTC(2025, 0, 2)) });
        await store.createKey(stored(signed));
        await store.createKey(stored(opaque));
        for (const [record, kind] of [[signed, 'signed'], [opaque, 'opaque']] as const) {
          expect((await store.findKeyByHash(record.hash))?.kind).toBe(kind);
          expect((await store.getKey(record.id))?.kind).toBe(kind);
        }
        expect((await store.listKeys('user_1')).map((k) => k.kind)).toEqual(['signed', 'opaque']);
        expect((await store.listAllKeys!()).map((k) => k.kind)).toEqual(['signed', 'opaque']);
        expect(await store.getKey(signed.id)).toEqual(stored(signed));
      });
    });

    describe('deny-list (signed keys)', () => {
      const HOUR = 3_600_000;
      // Relative to the real clock: a store drops entries whose `until` has passed by it.
      const now = () => Date.now();
      const byId = (list: KeyDenial[]) => [...list].sort((a, b) => a.keyId.localeCompare(b.keyId));

      it('lists an entry while `at` is earlier than its until, and not from its until on', async () => {
        expect(typeof store.denyKey, 'revoking a signed key needs it').toBe('function');
        expect(typeof store.listKeyDenials, 'signedKeys needs it').toBe('function');
        const from = new Date(now() - HOUR);
        const until = new Date(now() + HOUR);
        await store.denyKey!({ keyId: 'key_a', from, until });
        const entry = { keyId: 'key_a', from, until };
        expect(await store.listKeyDenials!(new Date(from.getTime() - DAY))).toEqual([entry]);
        expect(await store.listKeyDenials!(new Date(until.getTime() - 1))).toEqual([entry]);
        expect(await store.listKeyDenials!(until)).toEqual([]);
        expect(await store.listKeyDenials!(new Date(until.getTime() + 1))).toEqual([]);
        const [listed] = await store.listKeyDenials!(new Date(now()));
        expect(listed!.from).toBeInstanceOf(Date);
        expect(listed!.until).toBeInstanceOf(Date);
      });

      it('keeps one entry per key: a second denial keeps the earlier from and the later until', async () => {
        const t = now();
        await store.denyKey!({ keyId: 'key_a', from: new Date(t - HOUR), until: new Date(t + 2 * HOUR) });
        await store.denyKey!({ keyId: 'key_a', from: new Date(t - 2 * HOUR), until: new Date(t + HOUR) });
        expect(await store.listKeyDenials!(new Date(t))).toEqual([{ keyId: 'key_a', from: new Date(t - 2 * HOUR), until: new Date(t + 2 * HOUR) }]);
        await store.denyKey!({ keyId: 'key_a', from: new Date(t), until: new Date(t + 3 * HOUR) });
        expect(await store.listKeyDenials!(new Date(t))).toEqual([{ keyId: 'key_a', from: new Date(t - 2 * HOUR), until: new Date(t + 3 * HOUR) }]);
        await store.denyKey!({ keyId: 'key_b', from: new Date(t + HOUR), until: new Date(t + 4 * HOUR) });
        expect(byId(await store.listKeyDenials!(new Date(t)))).toEqual([
          { keyId: 'key_a', from: new Date(t - 2 * HOUR), until: new Date(t + 3 * HOUR) },
          { keyId: 'key_b', from: new Date(t + HOUR), until: new Date(t + 4 * HOUR) },
        ]);
      });

      it('lists no entry whose until has passed, and drops those when it writes', async () => {
        const t = now();
        await store.denyKey!({ keyId: 'key_old', from: new Date(t - 3 * HOUR), until: new Date(t - HOUR) });
        await store.denyKey!({ keyId: 'key_new', from: new Date(t - HOUR), until: new Date(t + HOUR) });
        expect(await store.listKeyDenials!(new Date(t))).toEqual([{ keyId: 'key_new', from: new Date(t - HOUR), until: new Date(t + HOUR) }]);
        // Asked about a time when key_old was still in force: it is gone, dropped by the writes.
        expect(await store.listKeyDenials!(new Date(t - 2 * HOUR))).toEqual([{ keyId: 'key_new', from: new Date(t - HOUR), until: new Date(t + HOUR) }]);
      });

      it('keeps no Date of the caller and hands out copies', async () => {
        const t = now();
        const from = new Date(t - HOUR);
        const until = new Date(t + HOUR);
        await store.denyKey!({ keyId: 'key_a', from, until });
        from.setTime(0);
        until.setTime(0);
        const [listed] = await store.listKeyDenials!(new Date(t));
        listed!.from.setTime(0);
        listed!.until.setTime(0);
        expect(await store.listKeyDenials!(new Date(t))).toEqual([{ keyId: 'key_a', from: new Date(t - HOUR), until: new Date(t + HOUR) }]);
      });
    });

    describe('revokeKey and setKeyExpiry', () => {
      it('revokes a key at the given time and answers false for an unknown one', async () => {
        const record = keyRecord();
        await store.createKey(stored(record));
        const at = new Date(Date.UTC(2025, 1, 1, 0, 0, 0, 5));
        expect(await store.revokeKey(record.id, at)).toBe(true);
        expect((await store.getKey(record.id))!.revokedAt).toEqual(at);
        expect((await store.findKeyByHash(record.hash))!.revokedAt).toEqual(at);
        expect(await store.revokeKey('key_missing', at)).toBe(false);
      });

      it('keeps the first revocation time when revoked twice', async () => {
        const record = keyRecord();
        await store.createKey(stored(record));
        const first = new Date(Date.UTC(2025, 1, 1));
        await store.revokeKey(record.id, first);
        expect(await store.revokeKey(record.id, new Date(Date.UTC(2025, 2, 1)))).toBe(true);
        expect((await store.getKey(record.id))!.revokedAt).toEqual(first);
      });

      it('does not keep the caller’s Date: mutating it after revokeKey changes nothing', async () => {
        const record = keyRecord();
        await store.createKey(stored(record));
        const at = new Date(Date.UTC(2025, 1, 1));
        await store.revokeKey(record.id, at);
        at.setTime(0);
        expect((await store.getKey(record.id))!.revokedAt).toEqual(new Date(Date.UTC(2025, 1, 1)));
      });

      it('sets, moves earlier and later, a key’s expiry; false for an unknown key', async () => {
        const record = keyRecord();
        await store.createKey(stored(record));
        const later = new Date(Date.UTC(2031, 0, 1, 0, 0, 0, 999));
        const earlier = new Date(Date.UTC(2029, 0, 1));
        expect(await store.setKeyExpiry(record.id, later)).toBe(true);
        expect((await store.getKey(record.id))!.expiresAt).toEqual(later);
        expect(await store.setKeyExpiry(record.id, earlier)).toBe(true);
        expect((await store.findKeyByHash(record.hash))!.expiresAt).toEqual(earlier);
        expect(await store.setKeyExpiry('key_missing', later)).toBe(false);
      });
    });

    describe('rate limits and quotas', () => {
      const at = (iso: string) => new Date(iso);
      const quota = (overrides: Partial<Quota> = {}): Quota => ({ limit: 3, remaining: 3, refill: null, resetAt: null, ...overrides });
      async function withQuota(q: Quota | null, overrides: Partial<KeyRecord> = {}) {
        const record = keyRecord({ quota: q, ...overrides });
        await store.createKey(stored(record));
        return record;
      }

      it('gives limits back from createKey through every read, null where there are none', async () => {
        const both = keyRecord({
          name: 'both',
          createdAt: new Date(Date.UTC(2025, 0, 1)),
          rateLimit: { limit: 100, windowMs: 60_000 },
          quota: { limit: 10_000, remaining: 9_500, refill: 'month', resetAt: at('2025-02-01T00:00:00.000Z') },
        });
        const rateOnly = keyRecord({ name: 'rate', createdAt: new Date(Date.UTC(2025, 0, 2)), rateLimit: { limit: 5, windowMs: 366 * DAY } });
        const quotaOnly = keyRecord({ name: 'quota', createdAt: new Date(Date.UTC(2025, 0, 3)), quota: quota({ limit: 50, remaining: 0 }) });
        const none = keyRecord({ name: 'none', createdAt: new Date(Date.UTC(2025, 0, 4)) });
        // A rotated key: it names the first key of its line, whose quota it draws on.
        const rotated = keyRecord({ name: 'rotated', createdAt: new Date(Date.UTC(2025, 0, 4, 1)), quota: quota({ limit: 50, remaining: 0 }), limitsFrom: quotaOnly.id });
        // A record without the fields at all (an older caller) is stored without limits.
        const { rateLimit: _r, quota: _q, limitsFrom: _l, ...bare } = stored(keyRecord({ name: 'bare', createdAt: new Date(Date.UTC(2025, 0, 5)) }));
        for (const record of [both, rateOnly, quotaOnly, none, rotated]) await store.createKey(stored(record));
        await store.createKey(bare);

        const expected = [stored(both), stored(rateOnly), stored(quotaOnly), stored(none), stored(rotated), { ...bare, rateLimit: null, quota: null, limitsFrom: null }];
        for (const record of expected) {
          expect(await store.getKey(record.id)).toEqual(record);
          expect(await store.findKeyByHash(record.hash)).toEqual(record);
        }
        expect(await store.listKeys('user_1')).toEqual(expected);
        expect(await store.listAllKeys!()).toEqual(expected);
        expect((await store.getKey(both.id))!.quota!.resetAt).toBeInstanceOf(Date);
      });

      it('hands out limits as copies, and keeps none of the caller’s', async () => {
        const resetAt = at('2025-02-01T00:00:00.000Z');
        const input = stored(keyRecord({ rateLimit: { limit: 10, windowMs: 1_000 }, quota: { limit: 5, remaining: 5, refill: 'day', resetAt } }));
        const expected = structuredClone(input);
        await store.createKey(input);
        input.rateLimit!.limit = 99;
        input.quota!.remaining = 99;
        resetAt.setTime(0);
        const got = (await store.getKey(input.id))!;
        got.rateLimit!.windowMs = 1;
        got.quota!.limit = 1;
        got.quota!.resetAt!.setTime(0);
        const [listed] = await store.listKeys('user_1');
        listed!.quota!.resetAt!.setTime(0);
        expect(await store.getKey(input.id)).toEqual(expected);
        expect(await store.findKeyByHash(input.hash)).toEqual(expected);
      });

      it('counts a quota down to 0, then refuses without going below', async () => {
        expect(typeof store.consumeQuota, 'keys with a quota need it').toBe('function');
        const record = await withQuota(quota({ limit: 3, remaining: 3 }));
        const now = at('2025-06-01T12:00:00.000Z');
        const takes = [];
        for (let i = 0; i < 5; i++) takes.push(await store.consumeQuota!(record.id, now));
        expect(takes).toEqual([
          { granted: true, remaining: 2, limit: 3, refill: null, resetAt: null },
          { granted: true, remaining: 1, limit: 3, refill: null, resetAt: null },
          { granted: true, remaining: 0, limit: 3, refill: null, resetAt: null },
          { granted: false, remaining: 0, limit: 3, refill: null, resetAt: null },
          { granted: false, remaining: 0, limit: 3, refill: null, resetAt: null },
        ]);
        expect((await store.getKey(record.id))!.quota).toEqual(quota({ limit: 3, remaining: 0 }));
      });

      it('keeps a quota that never refills used up, however late, with resetAt null', async () => {
        const record = await withQuota(quota({ limit: 1, remaining: 1 }));
        expect(await store.consumeQuota!(record.id, at('2025-06-01T00:00:00.000Z'))).toEqual({ granted: true, remaining: 0, limit: 1, refill: null, resetAt: null });
        expect(await store.consumeQuota!(record.id, at('2035-06-01T00:00:00.000Z'))).toEqual({ granted: false, remaining: 0, limit: 1, refill: null, resetAt: null });
        // Without a refill, a reset time refills nothing either (as quotaAt in core decides).
        const odd = await withQuota(quota({ limit: 1, remaining: 0, resetAt: at('2025-01-01T00:00:00.000Z') }));
        expect(await store.consumeQuota!(odd.id, at('2025-06-01T00:00:00.000Z'))).toEqual({ granted: false, remaining: 0, limit: 1, refill: null, resetAt: at('2025-01-01T00:00:00.000Z') });
      });

      it('refuses an exhausted quota before its reset, and says when it resets', async () => {
        const resetAt = at('2025-06-02T00:00:00.000Z');
        const record = await withQuota(quota({ limit: 5, remaining: 0, refill: 'day', resetAt }));
        expect(await store.consumeQuota!(record.id, new Date(resetAt.getTime() - 1))).toEqual({ granted: false, remaining: 0, limit: 5, refill: 'day', resetAt });
        expect((await store.getKey(record.id))!.quota).toEqual(quota({ limit: 5, remaining: 0, refill: 'day', resetAt }));
      });

      it('applies a refill that is due: limit minus this one, and resetAt moves to the next UTC day', async () => {
        const resetAt = at('2025-06-02T00:00:00.000Z');
        const record = await withQuota(quota({ limit: 5, remaining: 0, refill: 'day', resetAt }));
        // Due from its reset time on, exactly.
        expect(await store.consumeQuota!(record.id, resetAt)).toEqual({ granted: true, remaining: 4, limit: 5, refill: 'day', resetAt: at('2025-06-03T00:00:00.000Z') });
        expect(await store.consumeQuota!(record.id, at('2025-06-02T23:59:59.999Z'))).toEqual({ granted: true, remaining: 3, limit: 5, refill: 'day', resetAt: at('2025-06-03T00:00:00.000Z') });
        // Days later, with units left: refilled to the limit, not added to.
        expect(await store.consumeQuota!(record.id, at('2025-06-09T08:00:00.000Z'))).toEqual({ granted: true, remaining: 4, limit: 5, refill: 'day', resetAt: at('2025-06-10T00:00:00.000Z') });
        expect((await store.getKey(record.id))!.quota).toEqual(quota({ limit: 5, remaining: 4, refill: 'day', resetAt: at('2025-06-10T00:00:00.000Z') }));
      });

      it('applies a monthly refill on the 1st of the next month after the request, months skipped or not', async () => {
        const record = await withQuota(quota({ limit: 2, remaining: 1, refill: 'month', resetAt: at('2025-07-01T00:00:00.000Z') }));
        expect(await store.consumeQuota!(record.id, at('2025-06-30T23:00:00.000Z'))).toEqual({ granted: true, remaining: 0, limit: 2, refill: 'month', resetAt: at('2025-07-01T00:00:00.000Z') });
        expect(await store.consumeQuota!(record.id, at('2025-08-31T23:00:00.000Z'))).toEqual({ granted: true, remaining: 1, limit: 2, refill: 'month', resetAt: at('2025-09-01T00:00:00.000Z') });
        expect(await store.consumeQuota!(record.id, at('2025-08-31T23:30:00.000Z'))).toEqual({ granted: true, remaining: 0, limit: 2, refill: 'month', resetAt: at('2025-09-01T00:00:00.000Z') });
        expect(await store.consumeQuota!(record.id, at('2025-08-31T23:45:00.000Z'))).toEqual({ granted: false, remaining: 0, limit: 2, refill: 'month', resetAt: at('2025-09-01T00:00:00.000Z') });
        // December's next month is January of the next year.
        expect(await store.consumeQuota!(record.id, at('2025-12-15T00:00:00.000Z'))).toEqual({ granted: true, remaining: 1, limit: 2, refill: 'month', resetAt: at('2026-01-01T00:00:00.000Z') });
      });

      it('answers null for a key without a quota (a rate limit is not one) and for an unknown key', async () => {
        const none = await withQuota(null);
        const rateOnly = await withQuota(null, { rateLimit: { limit: 1, windowMs: 1_000 } });
        const now = at('2025-06-01T00:00:00.000Z');
        expect(await store.consumeQuota!(none.id, now)).toBeNull();
        expect(await store.consumeQuota!(rateOnly.id, now)).toBeNull();
        expect(await store.consumeQuota!('key_missing', now)).toBeNull();
        expect(await store.getKey(rateOnly.id)).toEqual(stored(rateOnly));
      });

      it('hands out exactly the remaining units to concurrent requests', async () => {
        const record = await withQuota(quota({ limit: 20, remaining: 20 }));
        const now = at('2025-06-01T00:00:00.000Z');
        const takes = await Promise.all(Array.from({ length: 60 }, () => store.consumeQuota!(record.id, now)));
        const granted = takes.filter((t) => t!.granted);
        expect(granted).toHaveLength(20);
        expect(granted.map((t) => t!.remaining).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
        expect((await store.getKey(record.id))!.quota!.remaining).toBe(0);
      });

      it('sets, leaves and removes each limit with setKeyLimits; false for an unknown key', async () => {
        expect(typeof store.setKeyLimits, 'keys.setLimits needs it').toBe('function');
        const record = await withQuota(null);
        const rateLimit = { limit: 10, windowMs: 1_000 };
        const monthly: Quota = { limit: 100, remaining: 40, refill: 'month', resetAt: at('2025-07-01T00:00:00.000Z') };
        const limitsOf = async () => {
          const got = (await store.getKey(record.id))!;
          return { rateLimit: got.rateLimit, quota: got.quota };
        };

        expect(await store.setKeyLimits!(record.id, { rateLimit })).toBe(true);
        expect(await limitsOf()).toEqual({ rateLimit, quota: null });
        expect(await store.setKeyLimits!(record.id, { quota: monthly })).toBe(true);
        expect(await limitsOf()).toEqual({ rateLimit, quota: monthly });
        expect(await store.findKeyByHash(record.hash)).toEqual({ ...stored(record), rateLimit, quota: monthly });

        // Consumed units stay when only the rate limit changes, or nothing does.
        await store.consumeQuota!(record.id, at('2025-06-15T00:00:00.000Z'));
        expect(await store.setKeyLimits!(record.id, { rateLimit: { limit: 20, windowMs: 2_000 } })).toBe(true);
        expect(await store.setKeyLimits!(record.id, {})).toBe(true);
        expect(await limitsOf()).toEqual({ rateLimit: { limit: 20, windowMs: 2_000 }, quota: { ...monthly, remaining: 39 } });

        // A new quota replaces all of the old one: its remaining, refill and reset.
        expect(await store.setKeyLimits!(record.id, { quota: quota({ limit: 7, remaining: 7 }) })).toBe(true);
        expect(await limitsOf()).toEqual({ rateLimit: { limit: 20, windowMs: 2_000 }, quota: quota({ limit: 7, remaining: 7 }) });
        expect(await store.consumeQuota!(record.id, at('2035-01-01T00:00:00.000Z'))).toEqual({ granted: true, remaining: 6, limit: 7, refill: null, resetAt: null });

        expect(await store.setKeyLimits!(record.id, { rateLimit: null })).toBe(true);
        expect(await limitsOf()).toEqual({ rateLimit: null, quota: quota({ limit: 7, remaining: 6 }) });
        expect(await store.setKeyLimits!(record.id, { quota: null })).toBe(true);
        expect(await limitsOf()).toEqual({ rateLimit: null, quota: null });
        expect(await store.consumeQuota!(record.id, at('2035-01-01T00:00:00.000Z'))).toBeNull();
        expect(await store.getKey(record.id)).toEqual(stored(record));

        expect(await store.setKeyLimits!('key_missing', { rateLimit })).toBe(false);
        expect(await store.getKey('key_missing')).toBeNull();
      });

      it('keeps none of the caller’s objects given to setKeyLimits', async () => {
        const record = await withQuota(null);
        const rateLimit = { limit: 10, windowMs: 1_000 };
        const resetAt = at('2025-07-01T00:00:00.000Z');
        const q: Quota = { limit: 5, remaining: 5, refill: 'day', resetAt };
        await store.setKeyLimits!(record.id, { rateLimit, quota: q });
        rateLimit.limit = 1;
        q.remaining = 0;
        resetAt.setTime(0);
        expect(await store.getKey(record.id)).toMatchObject({ rateLimit: { limit: 10, windowMs: 1_000 }, quota: { limit: 5, remaining: 5, resetAt: at('2025-07-01T00:00:00.000Z') } });
      });

      it('tells its subscribers of setKeyLimits, not of consumeQuota nor of an unknown key', async () => {
        const record = await withQuota(quota({ limit: 5, remaining: 5 }));
        const changes: (StoreChange | undefined)[] = [];
        const unsubscribe = store.subscribe!((change) => changes.push(change));
        try {
          await store.consumeQuota!(record.id, at('2025-06-01T00:00:00.000Z'));
          expect(changes.filter((c) => c !== undefined)).toEqual([]);
          await store.setKeyLimits!(record.id, { rateLimit: { limit: 1, windowMs: 1_000 } });
          await store.setKeyLimits!(record.id, { quota: null });
          await store.setKeyLimits!('key_missing', { quota: null });
          await store.consumeQuota!(record.id, at('2025-06-01T00:00:00.000Z'));
          expect(changes.filter((c) => c !== undefined)).toEqual([
            { kind: 'key', keyId: record.id },
            { kind: 'key', keyId: record.id },
          ]);
        } finally {
          unsubscribe();
        }
      });

      it('never writes NaN: rejects non-finite limits and an invalid time with invalid_argument, changing nothing', async () => {
        const record = await withQuota(quota({ limit: 5, remaining: 5 }));
        await expect(store.createKey(stored(keyRecord({ quota: quota({ remaining: NaN }) })))).rejects.toMatchObject({ code: 'invalid_argument' });
        await expect(store.createKey(stored(keyRecord({ rateLimit: { limit: 1, windowMs: Infinity } })))).rejects.toMatchObject({ code: 'invalid_argument' });
        await expect(store.setKeyLimits!(record.id, { quota: quota({ limit: NaN }) })).rejects.toMatchObject({ code: 'invalid_argument' });
        await expect(store.setKeyLimits!(record.id, { quota: quota({ refill: 'day', resetAt: new Date(NaN) }) })).rejects.toMatchObject({ code: 'invalid_argument' });
        await expect(store.setKeyLimits!(record.id, { rateLimit: { limit: NaN, windowMs: 1_000 } })).rejects.toMatchObject({ code: 'invalid_argument' });
        await expect(store.consumeQuota!(record.id, new Date(NaN))).rejects.toMatchObject({ code: 'invalid_argument' });
        expect(await store.listKeys('user_1')).toEqual([stored(record)]);
      });
    });

    describe('usage', () => {
      it('adds counts per key and UTC day across batches, days oldest first', async () => {
        const a = keyRecord();
        const b = keyRecord();
        await store.createKey(stored(a));
        await store.createKey(stored(b));
        const t = Date.UTC(2025, 3, 10, 23, 59);
        await store.recordUsage([
          { keyId: a.id, day: '2025-04-11', count: 2, lastUsedAt: new Date(t + DAY) },
          { keyId: a.id, day: '2025-04-10', count: 3, lastUsedAt: new Date(t) },
          { keyId: b.id, day: '2025-04-10', count: 1, lastUsedAt: new Date(t) },
        ]);
        await store.recordUsage([{ keyId: a.id, day: '2025-04-10', count: 4, lastUsedAt: new Date(t) }]);
        expect(await store.getUsage(a.id)).toEqual({
          keyId: a.id,
          lastUsedAt: new Date(t + DAY),
          days: [
            { day: '2025-04-10', count: 7 },
            { day: '2025-04-11', count: 2 },
          ],
        });
        expect(await store.getUsage(b.id)).toEqual({ keyId: b.id, lastUsedAt: new Date(t), days: [{ day: '2025-04-10', count: 1 }] });
      });

      it('adds up one key and day named twice in one batch, and a later batch on top', async () => {
        const record = keyRecord();
        await store.createKey(stored(record));
        const t = Date.UTC(2025, 3, 10, 8);
        await store.recordUsage([
          { keyId: record.id, day: '2025-04-10', count: 2, lastUsedAt: new Date(t + 1_000) },
          { keyId: record.id, day: '2025-04-10', count: 3, lastUsedAt: new Date(t) },
        ]);
        await store.recordUsage([{ keyId: record.id, day: '2025-04-10', count: 1, lastUsedAt: new Date(t + 500) }]);
        expect(await store.getUsage(record.id)).toEqual({ keyId: record.id, lastUsedAt: new Date(t + 1_000), days: [{ day: '2025-04-10', count: 6 }] });
      });

      it('moves lastUsedAt only forward, and shows it on the key record', async () => {
        const record = keyRecord();
        await store.createKey(stored(record));
        const late = new Date(Date.UTC(2025, 3, 10, 12, 0, 0, 1));
        await store.recordUsage([{ keyId: record.id, day: '2025-04-10', count: 1, lastUsedAt: late }]);
        await store.recordUsage([{ keyId: record.id, day: '2025-04-10', count: 1, lastUsedAt: new Date(late.getTime() - 60_000) }]);
        expect((await store.getUsage(record.id))!.lastUsedAt).toEqual(late);
        expect((await store.getKey(record.id))!.lastUsedAt).toEqual(late);
        expect((await store.findKeyByHash(record.hash))!.lastUsedAt).toEqual(late);
        expect((await store.getUsage(record.id))!.days).toEqual([{ day: '2025-04-10', count: 2 }]);
      });

      it('reports no usage for an unused key, null for an unknown one, and ignores unknown keys in a batch', async () => {
        const record = keyRecord();
        await store.createKey(stored(record));
        expect(await store.getUsage(record.id)).toEqual({ keyId: record.id, lastUsedAt: null, days: [] });
        expect(await store.getUsage('key_missing')).toBeNull();
        await store.recordUsage([]);
        await store.recordUsage([
          { keyId: 'key_missing', day: '2025-04-10', count: 5, lastUsedAt: new Date(Date.UTC(2025, 3, 10)) },
          { keyId: record.id, day: '2025-04-10', count: 1, lastUsedAt: new Date(Date.UTC(2025, 3, 10)) },
        ]);
        expect(await store.getUsage('key_missing')).toBeNull();
        expect((await store.getUsage(record.id))!.days).toEqual([{ day: '2025-04-10', count: 1 }]);
      });

      it('hands out usage as a copy', async () => {
        const record = keyRecord();
        await store.createKey(stored(record));
        const at = new Date(Date.UTC(2025, 3, 10));
        await store.recordUsage([{ keyId: record.id, day: '2025-04-10', count: 1, lastUsedAt: at }]);
        at.setTime(0);
        const usage = (await store.getUsage(record.id))!;
        usage.lastUsedAt!.setTime(0);
        usage.days[0]!.count = 99;
        usage.days.push({ day: '2099-01-01', count: 1 });
        expect(await store.getUsage(record.id)).toEqual({
          keyId: record.id,
          lastUsedAt: new Date(Date.UTC(2025, 3, 10)),
          days: [{ day: '2025-04-10', count: 1 }],
        });
      });
    });

    describe('projects', () => {
      it('knows which owner owns which project; unknown projects are not owned', async () => {
        await harness.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
        await harness.addProject({ id: 'proj_b', ownerId: 'user_2', name: 'Beta' });
        expect(await store.ownsProject('user_1', 'proj_a')).toBe(true);
        expect(await store.ownsProject('user_2', 'proj_a')).toBe(false);
        expect(await store.ownsProject('user_1', 'proj_b')).toBe(false);
        expect(await store.ownsProject('user_1', 'proj_missing')).toBe(false);
      });

      it('lists only an owner’s projects, as copies', async () => {
        await harness.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
        await harness.addProject({ id: 'proj_b', ownerId: 'user_2', name: 'Beta' });
        await harness.addProject({ id: 'proj_c', ownerId: 'user_1', name: 'Gamma' });
        const listed = await store.listProjects('user_1');
        expect([...listed].sort((x, y) => x.id.localeCompare(y.id))).toEqual([
          { id: 'proj_a', ownerId: 'user_1', name: 'Alpha' },
          { id: 'proj_c', ownerId: 'user_1', name: 'Gamma' },
        ]);
        listed[0]!.ownerId = 'user_2';
        listed[0]!.name = 'mutated';
        expect(await store.ownsProject('user_1', listed[0]!.id)).toBe(true);
        expect((await store.listProjects('user_1')).map((p) => p.name).sort()).toEqual(['Alpha', 'Gamma']);
        expect(await store.listProjects('user_nobody')).toEqual([]);
      });
    });

    describe('change reports', () => {
      it('tells its subscribers of its own writes: revocation, expiry, project created, moved and deleted', async () => {
        expect(typeof store.subscribe, 'every keyscope store reports changes').toBe('function');
        const changes: (StoreChange | undefined)[] = [];
        const unsubscribe = store.subscribe!((change) => changes.push(change));
        try {
          const record = keyRecord();
          await store.createKey(stored(record));
          await store.revokeKey(record.id, new Date());
          await store.setKeyExpiry(record.id, new Date(Date.now() + DAY));
          await harness.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
          await harness.addProject({ id: 'proj_a', ownerId: 'user_2', name: 'Alpha' });
          await harness.removeProject('proj_a');
          // What must be there, in order; a store may also say "anything changed" (no argument).
          expect(changes.filter((c) => c !== undefined)).toEqual([
            { kind: 'key', keyId: record.id },
            { kind: 'key', keyId: record.id },
            { kind: 'project', projectId: 'proj_a' },
            { kind: 'project', projectId: 'proj_a' },
            { kind: 'project', projectId: 'proj_a' },
          ]);
          unsubscribe();
          await store.revokeKey(keyRecord().id, new Date());
          await store.denyKey!({ keyId: 'key_after', from: new Date(), until: new Date(Date.now() + DAY) });
          await harness.addProject({ id: 'proj_b', ownerId: 'user_1', name: 'Beta' });
          expect(changes.filter((c) => c !== undefined)).toHaveLength(5);
        } finally {
          unsubscribe();
        }
      });
    });

    describe('change reports of denials', () => {
      it('tells its subscribers of a denial as a change of that key, every time', async () => {
        const changes: (StoreChange | undefined)[] = [];
        const unsubscribe = store.subscribe!((change) => changes.push(change));
        try {
          const until = new Date(Date.now() + DAY);
          await store.denyKey!({ keyId: 'key_a', from: new Date(), until });
          await store.denyKey!({ keyId: 'key_a', from: new Date(), until });
          await store.denyKey!({ keyId: 'key_b', from: new Date(), until });
          expect(changes.filter((c) => c !== undefined)).toEqual([
            { kind: 'key', keyId: 'key_a' },
            { kind: 'key', keyId: 'key_a' },
            { kind: 'key', keyId: 'key_b' },
          ]);
        } finally {
          unsubscribe();
        }
      });
    });

    describe('createKeyscope on this store, end to end', () => {
      let clock: number;
      const start = Date.UTC(2025, 5, 1, 9, 0, 0);

      async function setup() {
        clock = start;
        await harness.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
        await harness.addProject({ id: 'proj_b', ownerId: 'user_1', name: 'Beta' });
        await harness.addProject({ id: 'proj_x', ownerId: 'user_2', name: 'Not yours' });
        const ks = createKeyscope({ store, now: () => clock, usage: { flushIntervalMs: 60_000 } });
        const auth = (key: string, path: string, project?: string) =>
          ks.authenticate({ headers: { 'x-api-key': key, ...(project ? { 'x-project-id': project } : {}) }, path });
        return { ks, auth };
      }

      it('answers 200, 401 and 403 as the project rule says', async () => {
        const { ks, auth } = await setup();
        try {
          const user = await ks.keys.create({ ownerId: 'user_1', name: 'user key', level: 'user' });
          const project = await ks.keys.create({ ownerId: 'user_1', name: 'project key', level: 'project', projectId: 'proj_a' });

          expect(await auth(user.key, '/validate')).toEqual({
            ok: true,
            auth: { keyId: user.record.id, keyName: 'user key', ownerId: 'user_1', level: 'user', projectId: null },
          });
          expect(await auth(user.key, '/sites', 'proj_b')).toMatchObject({ ok: true, auth: { projectId: 'proj_b' } });
          expect(await auth(user.key, '/sites')).toMatchObject({ ok: false, error: { status: 403, code: 'project_required' } });
          expect(await auth(user.key, '/sites', 'proj_x')).toMatchObject({ ok: false, error: { status: 403, code: 'project_forbidden' } });
          expect(await auth(user.key, '/sites', 'proj_missing')).toMatchObject({ ok: false, error: { status: 403, code: 'project_forbidden' } });

          expect(await auth(project.key, '/sites')).toMatchObject({ ok: true, auth: { level: 'project', projectId: 'proj_a' } });
          expect(await auth(project.key, '/sites', 'proj_a')).toMatchObject({ ok: true, auth: { projectId: 'proj_a' } });
          expect(await auth(project.key, '/sites', 'proj_b')).toMatchObject({ ok: false, error: { status: 403, code: 'project_forbidden' } });

          expect(await auth(generateKey(), '/validate')).toMatchObject({ ok: false, error: { status: 401, code: 'invalid_api_key' } });

          const usage = await ks.keys.usage(user.record.id);
          expect(usage.days).toEqual([{ day: '2025-06-01', count: 2 }]);
          expect(usage.lastUsedAt).toEqual(new Date(start));
        } finally {
          await ks.close();
        }
      });

      it('refuses a revoked key from the next request on, and an expired one', async () => {
        const { ks, auth } = await setup();
        try {
          const { key, record } = await ks.keys.create({ ownerId: 'user_1', name: 'short', level: 'user', expiresAt: new Date(start + 60_000) });
          const other = await ks.keys.create({ ownerId: 'user_1', name: 'other', level: 'user' });
          expect(await auth(key, '/validate')).toMatchObject({ ok: true });
          clock = start + 60_000;
          expect(await auth(key, '/validate')).toMatchObject({ ok: false, error: { status: 401, code: 'invalid_api_key' } });

          expect(await auth(other.key, '/validate')).toMatchObject({ ok: true });
          const revoked = await ks.keys.revoke(other.record.id);
          expect(revoked.revokedAt).toEqual(new Date(clock));
          expect(await auth(other.key, '/validate')).toMatchObject({ ok: false, error: { status: 401, code: 'invalid_api_key' } });
          expect((await ks.keys.get(record.id))!.id).toBe(record.id);
        } finally {
          await ks.close();
        }
      });

      it('rotates with a grace period: both keys work, then only the new one', async () => {
        const { ks, auth } = await setup();
        try {
          const old = await ks.keys.create({ ownerId: 'user_1', name: 'rotating', level: 'project', projectId: 'proj_a' });
          expect(await auth(old.key, '/sites')).toMatchObject({ ok: true });
          const fresh = await ks.keys.rotate(old.record.id, { gracePeriodMs: 3_600_000 });
          expect(fresh.key).not.toBe(old.key);
          expect(fresh.record).toMatchObject({ name: 'rotating', level: 'project', projectId: 'proj_a', ownerId: 'user_1' });
          expect(await auth(old.key, '/sites')).toMatchObject({ ok: true });
          expect(await auth(fresh.key, '/sites')).toMatchObject({ ok: true, auth: { keyId: fresh.record.id } });
          clock = start + 3_600_000;
          expect(await auth(old.key, '/sites')).toMatchObject({ ok: false, error: { status: 401 } });
          expect(await auth(fresh.key, '/sites')).toMatchObject({ ok: true });
          expect((await ks.keys.list('user_1')).map((k) => k.id)).toEqual([old.record.id, fresh.record.id]);
        } finally {
          await ks.close();
        }
      });

      it("refuses a project key from the next request on once its project moves to another owner or is deleted", async () => {
        const { ks, auth } = await setup();
        const other = createKeyscope({ store, now: () => clock, usage: false });
        try {
          const a = await ks.keys.create({ ownerId: 'user_1', name: 'a', level: 'project', projectId: 'proj_a' });
          const b = await ks.keys.create({ ownerId: 'user_1', name: 'b', level: 'project', projectId: 'proj_b' });
          const user = await ks.keys.create({ ownerId: 'user_1', name: 'u', level: 'user' });
          for (const k of [ks, other]) {
            expect(await k.authenticate({ headers: { 'x-api-key': a.key }, path: '/sites' })).toMatchObject({ ok: true });
            expect(await k.authenticate({ headers: { 'x-api-key': user.key, 'x-project-id': 'proj_a' }, path: '/sites' })).toMatchObject({ ok: true });
          }
          await harness.addProject({ id: 'proj_a', ownerId: 'user_2', name: 'Alpha' });
          await harness.removeProject('proj_b');
          for (const k of [ks, other]) {
            expect(await k.authenticate({ headers: { 'x-api-key': a.key }, path: '/sites' })).toMatchObject({ ok: false, error: { code: 'project_forbidden' } });
            expect(await k.authenticate({ headers: { 'x-api-key': b.key }, path: '/sites' })).toMatchObject({ ok: false, error: { code: 'project_forbidden' } });
            expect(await k.authenticate({ headers: { 'x-api-key': user.key, 'x-project-id': 'proj_a' }, path: '/sites' })).toMatchObject({ ok: false, error: { code: 'project_forbidden' } });
          }
          await expect(ks.keys.rotate(a.record.id)).rejects.toMatchObject({ code: 'invalid_argument' });
          expect(await auth(user.key, '/sites', 'proj_missing')).toMatchObject({ ok: false });
        } finally {
          await other.close();
          await ks.close();
        }
      });

      it('rotates without grace: the old key is refused at once', async () => {
        const { ks, auth } = await setup();
        try {
          const old = await ks.keys.create({ ownerId: 'user_1', name: 'rotating', level: 'user' });
          expect(await auth(old.key, '/validate')).toMatchObject({ ok: true });
          const fresh = await ks.keys.rotate(old.record.id);
          expect(await auth(old.key, '/validate')).toMatchObject({ ok: false, error: { status: 401 } });
          expect(await auth(fresh.key, '/validate')).toMatchObject({ ok: true });
        } finally {
          await ks.close();
        }
      });
    });
  });
}
