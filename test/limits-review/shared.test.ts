/**
 * Outside review of per-key limits on the shared services: PostgreSQL (quotas) and Redis (rate
 * limits). "FIXED: …" fails today; "HELD: …" is an attack that held, kept as a guard.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createKeyscope, type AuthResult, type Keyscope, type KeyscopeOptions } from '@keyscope/core';
import { createRedisRateLimiter } from '@keyscope/redis';
import { PostgresStore } from '../../packages/postgres/src/index.js';
import { adminOn, FaultProxy, freshDatabase, pgUrl, REDIS_URL, runId } from '../scale/support.js';
import { RedisProxy } from '../redis/helpers.js';

vi.setConfig({ testTimeout: 30_000 });
const MINUTE = 60_000;
const HOUR = 3_600_000;

const db = await freshDatabase('limitsreview');
const admin = await adminOn(db.url);
await admin.store.addProject({ id: 'proj_r', ownerId: 'rev', name: 'Review' });
const prefix = `${runId('limitsreview')}:`;

const closers: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

async function instance(options: Partial<KeyscopeOptions> = {}, store = new PostgresStore({ connectionString: db.url, listen: false })): Promise<Keyscope> {
  const ks = createKeyscope({ store, usage: false, ...options });
  closers.push(async () => {
    await ks.close();
    await store.close();
  });
  return ks;
}

async function redis(url = REDIS_URL): Promise<Redis> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 1_000, retryStrategy: () => 50 });
  client.on('error', () => {});
  closers.push(() => client.disconnect());
  return client;
}

const ask = (ks: Keyscope, key: string) => ks.authenticate({ headers: { 'x-api-key': key }, path: '/sites' });
const codeOf = (r: AuthResult) => (r.ok ? 'ok' : r.error.code);
const newKey = (input: Record<string, unknown>) => admin.ks.keys.create({ ownerId: 'rev', name: 'k', level: 'project', projectId: 'proj_r', ...input });

describe('quotas on PostgreSQL', () => {
  it('HELD: three instances, 300 concurrent requests, a quota of 40: exactly 40 pass', async () => {
    const all = await Promise.all([instance(), instance(), instance()]);
    const { key } = await newKey({ quota: { limit: 40 } });
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => ask(all[i % 3]!, key)));
    expect(answers.filter((a) => a.ok).length).toBe(40);
    expect(new Set(answers.filter((a) => !a.ok).map(codeOf))).toEqual(new Set(['quota_exhausted']));
  });

  it('FIXED: rotation with a grace period doubles the remaining quota on PostgreSQL too', async () => {
    const ks = await instance();
    const { key, record } = await newKey({ quota: { limit: 10 } });
    const next = await admin.ks.keys.forOwner('rev').rotate(record.id, { gracePeriodMs: HOUR });
    let ok = 0;
    for (const k of [key, next.key]) for (let i = 0; i < 15; i++) if ((await ask(ks, k)).ok) ok++;
    expect(ok).toBeLessThanOrEqual(10);
  });

  it('HELD: a quota set by another instance applies to a listening instance that has the key cached, within a second', async () => {
    const listening = await instance({}, new PostgresStore({ connectionString: db.url, listen: true }));
    const { key, record } = await newKey({});
    expect(codeOf(await ask(listening, key))).toBe('ok'); // cached, unlimited
    await admin.ks.keys.setLimits(record.id, { quota: { limit: 2 } });
    const deadline = Date.now() + 1_000;
    let limited = false;
    while (!limited && Date.now() < deadline) {
      const r = await ask(listening, key);
      limited = r.ok && r.headers !== undefined;
      if (!limited) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(limited).toBe(true);
    // The key used one unit on the request that first saw the quota.
    expect(codeOf(await ask(listening, key))).toBe('ok');
    expect(codeOf(await ask(listening, key))).toBe('quota_exhausted');
  });

  it('HELD: clocks ten minutes apart refill a daily quota once, early on the fast instance, never twice', async () => {
    const real = { t: Date.UTC(2026, 10, 30, 23, 50) };
    const slow = await instance({ now: () => real.t });
    const fast = await instance({ now: () => real.t + 10 * MINUTE });
    // The key is made "now" by the admin (real clock), with a reset at the real next midnight.
    const { key, record } = await newKey({});
    await admin.store.setKeyLimits(record.id, { quota: { limit: 3, remaining: 3, refill: 'day', resetAt: new Date(Date.UTC(2026, 11, 1)) } });
    let ok = 0;
    // From 23:50 on day D to 23:40 on day D+1 (real), alternating instances, 4 tries every 10 minutes.
    for (; real.t < Date.UTC(2026, 11, 1, 23, 40); real.t += 10 * MINUTE) {
      for (const ks of [slow, fast, slow, fast]) if ((await ask(ks, key)).ok) ok++;
    }
    // Day D's quota (its unused units are dropped by the early refill) and one refill: at most 6, never 9.
    expect(ok).toBeGreaterThanOrEqual(3);
    expect(ok).toBeLessThanOrEqual(6);
  });

  it('HELD: PostgreSQL stalled during the quota write: 503 within storeTimeoutMs, never a pass', async () => {
    const proxy = await new FaultProxy().start();
    closers.push(() => proxy.close());
    const store = new PostgresStore({ connectionString: pgUrl(db.name, proxy.port), listen: false });
    const ks = await instance({ storeTimeoutMs: 300 }, store);
    const { key } = await newKey({ quota: { limit: 100 } });
    expect(codeOf(await ask(ks, key))).toBe('ok'); // key cached
    await proxy.set('stall');
    const started = Date.now();
    expect(codeOf(await ask(ks, key))).toBe('auth_unavailable');
    expect(Date.now() - started).toBeLessThan(1_500);
    await proxy.set('down');
    expect(codeOf(await ask(ks, key))).toBe('auth_unavailable');
  });

  it('HELD: a quota limit in the billions round-trips through the bigint columns', async () => {
    const ks = await instance();
    const { key } = await newKey({ quota: { limit: 5_000_000_000, refill: 'month' } });
    const r = await ask(ks, key);
    expect(r.ok && r.headers?.RateLimit).toMatch(/"quota";r=4999999999;t=\d+$/);
  });
});

describe('rate limits on Redis', () => {
  it('HELD: two instances share one allowance on Redis', async () => {
    const [a, b] = [await redis(), await redis()];
    const one = await instance({ limits: { limiter: createRedisRateLimiter({ client: a, prefix }) } });
    const two = await instance({ limits: { limiter: createRedisRateLimiter({ client: b, prefix }) } });
    await Promise.all([a.ping(), b.ping()]);
    const { key } = await newKey({ rateLimit: { limit: 6, windowMs: MINUTE } });
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => ask(i % 2 ? one : two, key)));
    expect(answers.filter((r) => r.ok).length).toBe(6);
  });

  it('FIXED: on Redis too, rotating the key (no grace) starts a fresh rate-limit allowance', async () => {
    const client = await redis();
    await client.ping();
    const ks = await instance({ limits: { limiter: createRedisRateLimiter({ client, prefix }) } });
    const { key, record } = await newKey({ rateLimit: { limit: 3, windowMs: MINUTE } });
    for (let i = 0; i < 3; i++) expect(codeOf(await ask(ks, key))).toBe('ok');
    expect(codeOf(await ask(ks, key))).toBe('rate_limited');
    const next = await admin.ks.keys.forOwner('rev').rotate(record.id);
    expect(codeOf(await ask(ks, next.key))).toBe('rate_limited');
  });

  it('HELD: Redis refusing connections or stalled: requests still answered (memory fallback), one warning, never a 500 or 503', async () => {
    const proxy = new RedisProxy();
    await proxy.start();
    closers.push(() => proxy.stop());
    const client = await redis(proxy.url);
    await client.ping();
    const warnings: unknown[] = [];
    const ks = await instance({ limits: { limiter: createRedisRateLimiter({ client, prefix, timeoutMs: 200, retryMs: 100, onError: (e) => warnings.push(e) }) } });
    const { key } = await newKey({ rateLimit: { limit: 4, windowMs: MINUTE } });
    expect(codeOf(await ask(ks, key))).toBe('ok');
    proxy.stall();
    const started = Date.now();
    const stalled = [await ask(ks, key), await ask(ks, key)];
    expect(stalled.map(codeOf)).toEqual(['ok', 'ok']);
    expect(Date.now() - started).toBeLessThan(1_000);
    await proxy.stop();
    const down: string[] = [];
    for (let i = 0; i < 6; i++) down.push(codeOf(await ask(ks, key)));
    // Counted in memory from the outage on: a fresh per-process allowance of 4, then 429.
    expect(down.every((c) => c === 'ok' || c === 'rate_limited')).toBe(true);
    expect(down).toContain('rate_limited');
    expect(warnings.length).toBe(1);
  });
});
