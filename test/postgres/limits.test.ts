import { describe, expect, it } from 'vitest';
import type { Quota, StoreChange } from '@keyscope/core';
import { migrate, PostgresStore, SCHEMA_VERSION } from '@keyscope/postgres';
import { keyRecord } from '../stores/store-conformance.js';
import { adminPool, DATABASE_URL, dropSchema, migratedSchemaPerTest, schemaName, sql, until } from './helpers.js';
import { versionTwoSchema } from './version-two.js';

const fixture = migratedSchemaPerTest();

async function addKey(store: PostgresStore, quota: Quota | null) {
  const { key: _key, ...record } = keyRecord({ quota });
  await store.createKey(record);
  return record;
}

/** Each unit handed out once: the remaining counts granted are exactly limit - 1 down to 0. */
function expectEachUnitOnce(remainders: number[], limit: number): void {
  expect(remainders).toHaveLength(limit);
  expect([...remainders].sort((a, b) => a - b)).toEqual(Array.from({ length: limit }, (_, i) => i));
}

describe('consumeQuota on one schema shared by several stores', () => {
  it('three stores (three pools), 150 concurrent takes of a quota of 50: exactly 50 granted, each unit once', async () => {
    const stores = [fixture.open(), fixture.open(), fixture.open()];
    const record = await addKey(stores[0]!, { limit: 50, remaining: 50, refill: null, resetAt: null });
    const now = new Date();
    const takes = await Promise.all(Array.from({ length: 150 }, (_, i) => stores[i % 3]!.consumeQuota(record.id, now)));
    expectEachUnitOnce(takes.filter((t) => t!.granted).map((t) => t!.remaining), 50);
    expect(takes.filter((t) => !t!.granted)).toEqual(Array(100).fill({ granted: false, remaining: 0, limit: 50, refill: null, resetAt: null }));
    expect((await stores[1]!.getKey(record.id))!.quota!.remaining).toBe(0);
  });

  it('applies a due refill once when 150 requests race for it: exactly 50 granted, resetAt moved once', async () => {
    const stores = [fixture.open(), fixture.open(), fixture.open()];
    const record = await addKey(stores[0]!, { limit: 50, remaining: 0, refill: 'day', resetAt: new Date(Date.UTC(2025, 5, 2)) });
    const now = new Date(Date.UTC(2025, 5, 2, 9));
    const takes = await Promise.all(Array.from({ length: 150 }, (_, i) => stores[i % 3]!.consumeQuota(record.id, now)));
    expectEachUnitOnce(takes.filter((t) => t!.granted).map((t) => t!.remaining), 50);
    const next = new Date(Date.UTC(2025, 5, 3));
    expect(new Set(takes.map((t) => t!.resetAt!.getTime()))).toEqual(new Set([next.getTime()]));
    expect((await stores[2]!.getKey(record.id))!.quota).toEqual({ limit: 50, remaining: 0, refill: 'day', resetAt: next });
  });
});

describe('limits and NOTIFY', () => {
  /** Backends LISTENing on this test's channel. */
  async function listening(): Promise<number> {
    const rows = await sql("SELECT 1 FROM pg_stat_activity WHERE application_name = 'keyscope-listen' AND query = $1", [`LISTEN "keyscope:${fixture.schema()}"`]);
    return rows.length;
  }

  it("reaches every instance: one store's setKeyLimits reaches another store's subscribers, and its own once", async () => {
    const a = fixture.open();
    const b = fixture.open();
    const record = await addKey(a, null);
    const fromA: (StoreChange | undefined)[] = [];
    const fromB: (StoreChange | undefined)[] = [];
    a.subscribe((change) => fromA.push(change));
    b.subscribe((change) => fromB.push(change));
    await until(async () => (await listening()) === 2, 5_000, 'both LISTEN sessions');

    await a.setKeyLimits(record.id, { quota: { limit: 10, remaining: 10, refill: null, resetAt: null } });
    // Its own write is reported at once, before the promise resolves.
    expect(fromA).toEqual([{ kind: 'key', keyId: record.id }]);
    await until(() => fromB.length === 1, 1_000, 'the other instance');
    // Setting only the rate limit, or nothing at all, is heard too.
    await a.setKeyLimits(record.id, { rateLimit: { limit: 1, windowMs: 1_000 } });
    await a.setKeyLimits(record.id, {});
    await until(() => fromB.length === 3, 1_000, 'two more');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fromA).toEqual(Array(3).fill({ kind: 'key', keyId: record.id }));
    expect(fromB).toEqual(fromA);
  });

  it('NOTIFYs nobody for consumeQuota, and the quota columns written by SQL are heard like any limits change', async () => {
    const client = await adminPool().connect();
    const payloads: string[] = [];
    try {
      client.on('notification', (m) => payloads.push(m.payload ?? ''));
      await client.query(`LISTEN "keyscope:${fixture.schema()}"`);
      const store = fixture.open({ listen: false });
      const record = await addKey(store, { limit: 100, remaining: 100, refill: 'day', resetAt: new Date(Date.UTC(2025, 0, 1)) });
      // Including one that applies a refill (it moves quota_reset_at).
      for (let i = 0; i < 5; i++) expect(await store.consumeQuota(record.id, new Date())).toMatchObject({ granted: true });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(payloads).toEqual([]);
      await sql(`UPDATE "${fixture.schema()}".keys SET quota_limit = 5 WHERE id = $1`, [record.id]);
      await until(() => payloads.length === 1, 1_000, 'the notification');
      expect(JSON.parse(payloads[0]!)).toEqual({ kind: 'key', keyId: record.id });
    } finally {
      await client.query('UNLISTEN *');
      client.release();
    }
  });
});

describe('migrations: version 2 to 3', () => {
  it('upgrades a version 2 schema: its keys have no limits, then take a quota and a rate limit', async () => {
    const schema = schemaName();
    const store = new PostgresStore({ connectionString: DATABASE_URL, schema });
    try {
      await versionTwoSchema(schema);
      const { key: _key, rateLimit: _r, quota: _q, ...record } = keyRecord({ ownerId: 'user_v2', lastUsedAt: new Date(Date.UTC(2025, 0, 2, 0, 0, 0, 5)) });
      await sql(
        `INSERT INTO "${schema}".keys (id, name, owner_id, level, project_id, hash, start, created_at, expires_at, revoked_at, last_used_at, kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9, 'opaque')`,
        [record.id, record.name, record.ownerId, record.level, record.projectId, record.hash, record.start, record.createdAt, record.lastUsedAt],
      );
      await sql(`INSERT INTO "${schema}".key_denials (key_id, from_at, until_at) VALUES ('key_signed', '2025-01-02Z', '2100-01-01Z')`);

      for (const call of [() => store.consumeQuota(record.id, new Date()), () => store.setKeyLimits(record.id, { quota: null })]) {
        await expect(call()).rejects.toMatchObject({ code: 'postgres_schema_older', message: expect.stringMatching(new RegExp(`version 2, older than version ${SCHEMA_VERSION}`)) });
      }
      expect(await migrate({ connectionString: DATABASE_URL, schema })).toEqual({ schema, from: 2, to: SCHEMA_VERSION });

      expect(await store.findKeyByHash(record.hash)).toEqual({ ...record, rateLimit: null, quota: null });
      expect(await store.listKeys('user_v2')).toEqual([{ ...record, rateLimit: null, quota: null }]);
      expect(await store.listKeyDenials(new Date())).toEqual([{ keyId: 'key_signed', from: new Date(Date.UTC(2025, 0, 2)), until: new Date(Date.UTC(2100, 0, 1)) }]);
      expect(await store.consumeQuota(record.id, new Date())).toBeNull();

      // What version 3 added works on the upgraded schema.
      const quota: Quota = { limit: 2, remaining: 2, refill: 'month', resetAt: new Date(Date.UTC(2025, 6, 1)) };
      expect(await store.setKeyLimits(record.id, { rateLimit: { limit: 10, windowMs: 60_000 }, quota })).toBe(true);
      expect(await store.consumeQuota(record.id, new Date(Date.UTC(2025, 5, 30)))).toEqual({ granted: true, remaining: 1, limit: 2, refill: 'month', resetAt: quota.resetAt });
      expect(await store.getKey(record.id)).toEqual({ ...record, rateLimit: { limit: 10, windowMs: 60_000 }, quota: { ...quota, remaining: 1 } });
      // The database itself refuses a refill it does not know, whoever writes it.
      await expect(sql(`UPDATE "${schema}".keys SET quota_refill = 'week' WHERE id = $1`, [record.id])).rejects.toMatchObject({ code: '23514' });
    } finally {
      await store.close();
      await dropSchema(schema);
    }
  });
});
