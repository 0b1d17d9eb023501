/** createRedisRateLimiter against a real Redis: one allowance per key for many instances, timed by Redis, fail-open to memory. */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RateLimiter, RateVerdict } from '@keyscope/core';
import { createRedisRateLimiter, type RedisRateLimiterOptions } from '@keyscope/redis';
import type { Redis } from 'ioredis';
import { closeAll, connect, deleteKeys, RedisProxy, unique, until } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(closeAll);

/** A key prefix of this test's own, deleted afterwards. */
async function ownPrefix(): Promise<string> {
  const prefix = `${unique('rate')}:`;
  const admin = await connect();
  cleanups.push(() => deleteKeys(admin, prefix));
  return prefix;
}

const perMinute = { limit: 20, windowMs: 60_000 };
const take = (limiter: RateLimiter, keyId: string, limit = perMinute, now = Date.now()) => Promise.resolve(limiter.take(keyId, limit, now));
const allowedCount = (verdicts: RateVerdict[]) => verdicts.filter((v) => v.allowed).length;

/** The commands Redis receives from `clients` (MONITOR on a connection of its own), until `stop()`. */
async function monitor(clients: Redis[]) {
  const ports = new Set(clients.map((c) => `127.0.0.1:${c.stream.localPort}`));
  const seen: string[][] = [];
  const watcher = await connect();
  const marker = await connect();
  const markerSource = `127.0.0.1:${marker.stream.localPort}`;
  const mon = await watcher.monitor();
  let markerSeen = false;
  mon.on('monitor', (_time: string, args: string[], source: string) => {
    if (ports.has(source)) seen.push(args);
    if (source === markerSource) markerSeen = true;
  });
  return {
    async stop() {
      await marker.ping();
      await until(() => markerSeen, 2_000, 'MONITOR to catch up');
      mon.disconnect();
      return seen;
    },
  };
}

describe('createRedisRateLimiter', () => {
  it('holds one allowance across three instances on their own connections: 30 concurrent requests of a 20/min key, exactly 20 pass', async () => {
    const prefix = await ownPrefix();
    const clients = await Promise.all([connect(), connect(), connect()]);
    const limiters = clients.map((client) => createRedisRateLimiter({ client, prefix }));
    const verdicts = await Promise.all(Array.from({ length: 30 }, (_, i) => take(limiters[i % 3]!, 'key_a')));
    expect(allowedCount(verdicts)).toBe(20);
    // Each allowed request saw a different count: 19 down to 0, whichever instance it landed on.
    expect(verdicts.filter((v) => v.allowed).map((v) => v.remaining).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const refused of verdicts.filter((v) => !v.allowed)) expect(refused).toEqual({ allowed: false, remaining: 0, resetSeconds: 60, retryAfterSeconds: 3 });
    // The state is one key, `<prefix><key id>`, that expires when it no longer matters (a full minute ahead now).
    const admin = await connect();
    const ttl = await admin.pttl(`${prefix}key_a`);
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('one round trip per request, and a refused request writes nothing', async () => {
    const prefix = await ownPrefix();
    const client = await connect();
    const limiter = createRedisRateLimiter({ client, prefix });
    const limit = { limit: 2, windowMs: 60_000 };
    await take(limiter, 'warm', limit); // loads the script if this Redis has not seen it
    const watch = await monitor([client]);
    const verdicts = [];
    for (let i = 0; i < 4; i++) verdicts.push(await take(limiter, 'key_b', limit));
    const commands = await watch.stop();
    expect(verdicts.map((v) => v.allowed)).toEqual([true, true, false, false]);
    expect(commands.map(([command]) => command)).toEqual(['evalsha', 'evalsha', 'evalsha', 'evalsha']);
    const admin = await connect();
    const state = await admin.get(`${prefix}key_b`);
    await take(limiter, 'key_b', limit);
    expect(await admin.get(`${prefix}key_b`)).toBe(state);
  });

  it('honours Retry-After: wait it, and one more passes (refused requests took nothing meanwhile)', async () => {
    const prefix = await ownPrefix();
    const [a, b] = (await Promise.all([connect(), connect()])).map((client) => createRedisRateLimiter({ client, prefix })) as [RateLimiter, RateLimiter];
    const limit = { limit: 2, windowMs: 2_000 }; // one more every second
    expect([await take(a, 'key_c', limit), await take(b, 'key_c', limit)].map((v) => v.allowed)).toEqual([true, true]);
    const refused = await take(a, 'key_c', limit);
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1 });
    for (let i = 0; i < 5; i++) expect((await take(b, 'key_c', limit)).allowed).toBe(false);
    await new Promise((r) => setTimeout(r, refused.retryAfterSeconds * 1000));
    expect(await take(b, 'key_c', limit)).toMatchObject({ allowed: true, remaining: 0 });
    expect(await take(a, 'key_c', limit)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
  });

  it('counts each key on its own, and by Redis\' clock: an instance whose clock is an hour off counts the same', async () => {
    const prefix = await ownPrefix();
    const [a, b] = (await Promise.all([connect(), connect()])).map((client) => createRedisRateLimiter({ client, prefix })) as [RateLimiter, RateLimiter];
    for (let i = 0; i < 20; i++) await take(a, 'key_d');
    expect((await take(b, 'key_d', perMinute, Date.now() + 3_600_000)).allowed).toBe(false);
    expect((await take(b, 'key_d', perMinute, 0)).allowed).toBe(false);
    expect(await take(b, 'key_e')).toMatchObject({ allowed: true, remaining: 19, resetSeconds: 3 });
  });

  it('when Redis cannot be reached: counts in memory, one warning, nothing thrown, never waits longer than timeoutMs; shared again when it is back', async () => {
    const prefix = await ownPrefix();
    const proxy = new RedisProxy();
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    cleanups.push(() => process.off('unhandledRejection', onRejection));

    const warnings: unknown[] = [];
    const viaProxy = await connect({}, proxy.url);
    const x = createRedisRateLimiter({ client: viaProxy, prefix, timeoutMs: 100, retryMs: 100, onError: (e) => warnings.push(e) });
    const y = createRedisRateLimiter({ client: await connect(), prefix });

    // Connection refused: every request is answered at once, from memory.
    await proxy.stop();
    await until(() => viaProxy.status !== 'ready', 2_000, 'the client to notice');
    const started = performance.now();
    const down = await Promise.all(Array.from({ length: 25 }, () => take(x, 'key_f')));
    expect(performance.now() - started).toBeLessThan(100);
    expect(allowedCount(down)).toBe(20);
    expect(down[24]).toEqual({ allowed: false, remaining: 0, resetSeconds: 60, retryAfterSeconds: 3 });
    expect(warnings).toHaveLength(1);
    expect((warnings[0] as Error).message).toMatch(/connection is/);
    // Counted in x's memory only: Redis, and so y, has heard nothing of it.
    expect(await take(y, 'key_f')).toMatchObject({ allowed: true, remaining: 19 });

    // Back: one allowance again for both.
    await proxy.start();
    await until(() => viaProxy.status === 'ready', 5_000, 'the client to reconnect');
    const shared = await Promise.all(Array.from({ length: 24 }, (_, i) => take(i % 2 ? x : y, 'key_g')));
    expect(allowedCount(shared)).toBe(20);
    expect(warnings).toHaveLength(1);

    // Connected but silent: a request waits timeoutMs at most, then counts in memory; within
    // retryMs the next ones do not wait at all. One more warning, for this outage.
    proxy.stall();
    const times: number[] = [];
    const stalled: RateVerdict[] = [];
    for (let i = 0; i < 3; i++) {
      const begun = performance.now();
      stalled.push(await take(x, 'key_h'));
      times.push(performance.now() - begun);
    }
    console.log(`redis rate limiter: three requests on a silent connection took ${times.map((t) => t.toFixed(0)).join(', ')} ms (timeoutMs 100)`);
    expect(stalled.map((v) => v.allowed)).toEqual([true, true, true]);
    expect(stalled.map((v) => v.remaining)).toEqual([19, 18, 17]);
    expect(times[0]).toBeGreaterThanOrEqual(95);
    expect(times[0]).toBeLessThan(175); // timeoutMs, and the event loop's own lag
    expect(Math.max(times[1]!, times[2]!)).toBeLessThan(25);
    expect(warnings).toHaveLength(2);
    expect((warnings[1] as Error).message).toMatch(/no answer within 100 ms/);

    await proxy.stop();
    await new Promise((r) => setTimeout(r, 50));
    expect(rejections).toEqual([]);
  });

  it('warns once with console.warn when no onError is given', async () => {
    const proxy = new RedisProxy();
    await proxy.start();
    const client = await connect({}, proxy.url);
    await proxy.stop();
    await until(() => client.status !== 'ready', 2_000, 'the client to notice');
    const warned: unknown[][] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void warned.push(args);
    try {
      const limiter = createRedisRateLimiter({ client, prefix: unique('never-written') });
      const verdicts = [];
      for (let i = 0; i < 3; i++) verdicts.push(await take(limiter, 'key_i', { limit: 2, windowMs: 60_000 }));
      expect(verdicts.map((v) => v.allowed)).toEqual([true, true, false]);
    } finally {
      console.warn = warn;
    }
    expect(warned).toEqual([[expect.stringMatching(/^keyscope: Redis is unreachable for the rate limiter/)]]);
  });

  it('checks its options at setup, naming the option, and leaves them as they were', async () => {
    const client = await connect();
    expect(() => createRedisRateLimiter(undefined as never)).toThrow(TypeError);
    expect(() => createRedisRateLimiter({ client: {} as never })).toThrow(/options\.client/);
    expect(() => createRedisRateLimiter({ client, timeoutMs: 0 })).toThrow(RangeError);
    expect(() => createRedisRateLimiter({ client, retryMs: 1.5 })).toThrow(/options\.retryMs/);
    expect(() => createRedisRateLimiter({ client, maxKeys: -1 })).toThrow(/options\.maxKeys/);
    expect(() => createRedisRateLimiter({ client, prefix: 5 as never })).toThrow(/options\.prefix/);
    expect(() => createRedisRateLimiter({ client, onError: 'log' as never })).toThrow(/options\.onError/);
    const options: RedisRateLimiterOptions = Object.freeze({ client, prefix: 'p:' });
    const limiter: RateLimiter = createRedisRateLimiter(options);
    expect(typeof limiter.take).toBe('function');
    expect(Object.keys(options)).toEqual(['client', 'prefix']);
  });
});
