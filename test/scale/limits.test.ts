/**
 * Per-key limits shared by three keyscope instances: each an in-process createKeyscope with a
 * PostgresStore of its own on one fresh database, and its own ioredis client with
 * createRedisRateLimiter on the real Redis (a prefix of its own for this run).
 * - a 20/minute key gets exactly 20 successes across the three, then 429 `rate_limited` with a
 *   `Retry-After` that is honoured: a request after it succeeds;
 * - a quota of 50 gets at most 50 successes in total across the three, under concurrency, then
 *   429 `quota_exhausted`, and still after the three are replaced by new instances.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createKeyscope, type AuthResult, type Keyscope } from '@keyscope/core';
import { createRedisRateLimiter } from '@keyscope/redis';
import { PostgresStore } from '../../packages/postgres/src/index.js';
import { adminOn, freshDatabase, REDIS_URL, runId, sleep } from './support.js';

vi.setConfig({ testTimeout: 30_000 });
const INSTANCES = 3;

const db = await freshDatabase('limits');
const admin = await adminOn(db.url);
await admin.store.addProject({ id: 'proj_l', ownerId: 'limits-user', name: 'Limits' });
const prefix = `${runId('limits')}:`;

const clients: Redis[] = [];
const open: { ks: Keyscope; store: PostgresStore }[] = [];

/** Three instances, as three servers behind a load balancer would be. */
async function startThree(): Promise<Keyscope[]> {
  return Promise.all(
    Array.from({ length: INSTANCES }, async () => {
      const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 2_000 });
      clients.push(client);
      // Redis is required: a ping that fails is a failure of this file, not a skip.
      expect(await client.ping()).toBe('PONG');
      const store = new PostgresStore({ connectionString: db.url, listen: false });
      const ks = createKeyscope({
        store,
        usage: false,
        limits: { limiter: createRedisRateLimiter({ client, prefix, onError: (error) => console.error('rate limiter:', error) }) },
      });
      open.push({ ks, store });
      return ks;
    }),
  );
}

async function stopAll(): Promise<void> {
  for (const { ks, store } of open.splice(0)) {
    await ks.close();
    await store.close();
  }
}

afterAll(async () => {
  await stopAll();
  const keys = await clients[0]!.keys(`${prefix}*`);
  if (keys.length > 0) await clients[0]!.del(...keys);
  await Promise.all(clients.map((client) => client.quit()));
});

const ask = (ks: Keyscope, key: string) => ks.authenticate({ headers: { 'x-api-key': key }, path: '/validate' });
const codeOf = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);

describe(`per-key limits across ${INSTANCES} instances on Redis and one PostgreSQL store`, () => {
  it('a 20/minute key: exactly 20 successes across the three, then 429 rate_limited, and Retry-After is honoured', async () => {
    const instances = await startThree();
    const { key } = await admin.ks.keys.create({ ownerId: 'limits-user', name: 'twenty a minute', level: 'project', projectId: 'proj_l', rateLimit: { limit: 20, windowMs: 60_000 } });
    // 30 at once, spread over the three: exactly 20 pass, wherever they land.
    const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(instances[i % INSTANCES]!, key)));
    const codes = burst.map(codeOf);
    expect(codes.filter((c) => c === 'ok')).toHaveLength(20);
    expect(codes.filter((c) => c === 'rate_limited')).toHaveLength(10);
    // The successes count the allowance down: 19 … 0 remaining, each value once.
    const remaining = burst.flatMap((r) => (r.ok ? [Number(/"rate";r=(\d+)/.exec(r.headers!['RateLimit']!)![1])] : []));
    expect(remaining.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));

    // Every instance now refuses, with a Retry-After…
    const refused = await Promise.all(instances.map((ks) => ask(ks, key)));
    const waits = refused.map((r) => (r.ok ? NaN : Number(r.error.headers['Retry-After'])));
    for (const r of refused) expect(codeOf(r)).toBe('rate_limited');
    for (const wait of waits) expect(wait).toBeGreaterThanOrEqual(1);
    // …of a 20/minute allowance: one more request every 3 s.
    expect(Math.max(...waits)).toBeLessThanOrEqual(3);
    // Honoured: after it, a request passes (and only one: the next is refused again).
    await sleep(Math.max(...waits) * 1000 + 100);
    expect(codeOf(await ask(instances[1]!, key))).toBe('ok');
    expect(codeOf(await ask(instances[2]!, key))).toBe('rate_limited');
    await stopAll();
    console.log(`[scale] rate limit 20/min over ${INSTANCES} instances: 30 at once → 20 ok, 10 rate_limited; Retry-After ${Math.max(...waits)} s honoured`);
  });

  it('a quota of 50: at most 50 successes in total across the three, then 429 quota_exhausted, after restarts too', async () => {
    const { key, record } = await admin.ks.keys.create({ ownerId: 'limits-user', name: 'fifty in all', level: 'user', quota: { limit: 50 } });
    let instances = await startThree();
    // 40 concurrent, spread over the three.
    const first = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(instances[i % INSTANCES]!, key)));
    expect(first.filter((r) => r.ok)).toHaveLength(40);
    // The three are replaced: the quota is in the store, not in them.
    await stopAll();
    instances = await startThree();
    const second = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(instances[i % INSTANCES]!, key)));
    const codes = second.map(codeOf);
    expect(codes.filter((c) => c === 'ok')).toHaveLength(10);
    expect(codes.filter((c) => c === 'quota_exhausted')).toHaveLength(20);
    // A quota that never refills sends no Retry-After, and says 0 remain.
    const exhausted = second.find((r) => !r.ok)!;
    expect(exhausted.ok ? undefined : exhausted.error.headers['Retry-After']).toBeUndefined();
    expect(exhausted.ok ? '' : exhausted.error.headers['RateLimit']).toMatch(/"quota";r=0/);
    // Restarted once more: still refused, and the store says 0 remain.
    await stopAll();
    instances = await startThree();
    expect(codeOf(await ask(instances[0]!, key))).toBe('quota_exhausted');
    expect((await admin.ks.keys.get(record.id))?.quota).toMatchObject({ limit: 50, remaining: 0 });
    await stopAll();
    console.log(`[scale] quota 50 over ${INSTANCES} instances and two restarts: 50 ok in total, then quota_exhausted`);
  });
});
