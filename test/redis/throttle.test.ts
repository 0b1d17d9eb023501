/** createRedisThrottle against a real Redis: one count for many instances, no command on success, fail-open. */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createKeyscope, generateKey, MemoryStore, type Keyscope } from '@keyscope/core';
import { createRedisThrottle, type RedisThrottleOptions } from '@keyscope/redis';
import type { Redis } from 'ioredis';
import { closeAll, code, connect, deleteKeys, headers, RedisProxy, status, unique, until } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(closeAll);

/** A key prefix of this test's own, deleted afterwards. */
async function ownPrefix(): Promise<string> {
  const prefix = `${unique('throttle')}:`;
  const admin = await connect();
  cleanups.push(() => deleteKeys(admin, prefix));
  return prefix;
}

const fail = (ks: Keyscope, clientIp: string) => ks.authenticate({ headers: headers(generateKey()), path: '/validate', clientIp });

/**
 * The commands Redis receives from `clients` (seen through MONITOR on a connection of its
 * own), until `stop()`, which waits for a marker command so that nothing sent before is missed.
 */
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
    seen,
    async stop() {
      await marker.ping();
      await until(() => markerSeen, 2_000, 'MONITOR to catch up');
      mon.disconnect();
      return seen;
    },
  };
}

describe('createRedisThrottle', () => {
  it('holds the limit across three instances on their own connections: N failures in total, then 429 on any; one round trip per failure, none on success', async () => {
    const prefix = await ownPrefix();
    const store = new MemoryStore();
    const clients = await Promise.all([connect(), connect(), connect()]);
    const instances = clients.map((client) => createKeyscope({ store, usage: false, throttle: createRedisThrottle({ client, maxFailures: 5, windowMs: 60_000, prefix }) }));
    const { key } = await instances[0]!.keys.create({ ownerId: 'u', name: 'k', level: 'user' });
    const ip = '203.0.113.5';
    // Each instance has the valid key cached before the attack.
    for (const ks of instances) expect(code(await ks.authenticate({ headers: headers(key), path: '/validate', clientIp: ip }))).toBe('ok');

    const watch = await monitor(clients);
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await fail(instances[i % 3]!, ip));
    const failures = [...(await watch.stop())];
    expect(results.map(status)).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    for (const result of results.slice(5)) {
      const seconds = Number(!result.ok && result.error.headers['Retry-After']);
      expect(seconds).toBeGreaterThanOrEqual(59);
      expect(seconds).toBeLessThanOrEqual(60);
    }
    // Failures 1-5 counted; 6 and 7 land on instances that had not seen the trip and ask Redis
    // (which says "over"); 8 lands on the instance that tripped it and knows.
    const scripts = failures.filter(([command]) => command === 'evalsha');
    expect(scripts).toHaveLength(7);
    expect(failures.filter(([command]) => command !== 'evalsha').map(([command]) => command)).toEqual(failures.some(([c]) => c === 'eval') ? ['eval'] : []);
    // The counter's key holds the client's address under the prefix, nothing of the keys tried.
    expect(new Set(scripts.map((args) => args[3]))).toEqual(new Set([`${prefix}${ip}`]));

    // The key's real holder, at the same address, still gets in everywhere, and costs Redis nothing.
    const quiet = await monitor(clients);
    for (const ks of instances) expect(code(await ks.authenticate({ headers: headers(key), path: '/validate', clientIp: ip }))).toBe('ok');
    for (const ks of instances) expect(code(await ks.authenticate({ headers: headers(key), path: '/validate', clientIp: '198.51.100.1' }))).toBe('ok');
    expect(await quiet.stop()).toEqual([]);
    // Another address is not affected.
    expect(status(await fail(instances[2]!, '198.51.100.1'))).toBe(401);
  });

  it('honours Retry-After: once the window is over, the client is counted afresh', async () => {
    const prefix = await ownPrefix();
    const store = new MemoryStore();
    const clients = await Promise.all([connect(), connect()]);
    const [a, b] = clients.map((client) => createKeyscope({ store, usage: false, throttle: createRedisThrottle({ client, maxFailures: 2, windowMs: 1_000, prefix }) })) as [Keyscope, Keyscope];
    const ip = '2001:db8:1:2::7';
    expect((await Promise.all([fail(a, ip), fail(b, '2001:db8:1:2:ffff::1')])).map(status)).toEqual([401, 401]); // one /64: two failures of one client
    const over = await fail(a, ip);
    expect(status(over)).toBe(429);
    expect(!over.ok && over.error.headers['Retry-After']).toBe('1');
    expect(status(await fail(b, ip))).toBe(429);
    await new Promise((r) => setTimeout(r, 1_050));
    expect((await Promise.all([fail(b, ip), fail(a, ip)])).map(status).sort()).toEqual([401, 401]);
    expect(status(await fail(a, ip))).toBe(429);
  });

  it('when Redis cannot be reached: authentication goes on, failures count in memory, one warning, no unhandled rejection; when it is back, the count is shared again', async () => {
    const prefix = await ownPrefix();
    const proxy = new RedisProxy();
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    cleanups.push(() => process.off('unhandledRejection', onRejection));

    const store = new MemoryStore();
    const warnings: unknown[] = [];
    const throttled = (client: Redis, onError?: (e: unknown) => void) =>
      createKeyscope({ store, usage: false, throttle: createRedisThrottle({ client, maxFailures: 3, windowMs: 60_000, prefix, timeoutMs: 100, retryMs: 100, ...(onError && { onError }) }) });
    const viaProxy = await connect({}, proxy.url);
    const x = throttled(viaProxy, (e) => warnings.push(e));
    const y = throttled(await connect());
    const { key } = await x.keys.create({ ownerId: 'u', name: 'k', level: 'user' });

    // Connection refused.
    await proxy.stop();
    await until(() => viaProxy.status !== 'ready', 2_000, 'the client to notice');
    const started = performance.now();
    expect(code(await x.authenticate({ headers: headers(key), path: '/validate', clientIp: '192.0.2.1' }))).toBe('ok'); // not cached: from the store
    expect([await fail(x, '192.0.2.1'), await fail(x, '192.0.2.1'), await fail(x, '192.0.2.1'), await fail(x, '192.0.2.1')].map(status)).toEqual([401, 401, 401, 429]);
    expect(performance.now() - started).toBeLessThan(100); // no waiting on a connection that is down
    expect(code(await x.authenticate({ headers: headers(key), path: '/validate', clientIp: '192.0.2.1' }))).toBe('ok'); // cached now: the holder gets in
    expect(warnings).toHaveLength(1);
    // Counted in x's memory only: y, on Redis, has heard nothing of it.
    expect(status(await fail(y, '192.0.2.1'))).toBe(401);

    // Back: counting is shared again.
    await proxy.start();
    await until(() => viaProxy.status === 'ready', 5_000, 'the client to reconnect');
    const ip = '192.0.2.2';
    expect([await fail(x, ip), await fail(y, ip), await fail(x, ip)].map(status)).toEqual([401, 401, 401]);
    expect(status(await fail(y, ip))).toBe(429);
    expect(status(await fail(x, ip))).toBe(429);

    // Connected but silent: each failure waits at most timeoutMs, then counts in memory; one more warning for this outage.
    proxy.stall();
    const stalled = performance.now();
    expect([await fail(x, '192.0.2.3'), await fail(x, '192.0.2.3'), await fail(x, '192.0.2.3')].map(status)).toEqual([401, 401, 401]);
    const waited = performance.now() - stalled;
    console.log(`redis throttle: three failures on a silent connection took ${waited.toFixed(0)} ms (timeoutMs 100, retryMs 100)`);
    expect(waited).toBeLessThan(250); // the first waits timeoutMs; the next ones, within retryMs, do not
    expect(warnings).toHaveLength(2);
    expect(warnings.map((e) => (e as Error).message)).toEqual([expect.stringMatching(/connection is/), expect.stringMatching(/no answer within 100 ms/)]);
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
      const throttle = createRedisThrottle({ client, maxFailures: 2, windowMs: 60_000, prefix: unique('never-written') });
      const verdicts = [];
      for (let i = 0; i < 3; i++) verdicts.push(await throttle.fail('192.0.2.9', Date.now()));
      expect(verdicts.map((v) => v.state)).toEqual(['counted', 'tripped', 'over']);
      expect(throttle.retryAfter('192.0.2.9', Date.now())).toBeGreaterThan(0);
    } finally {
      console.warn = warn;
    }
    expect(warned).toEqual([[expect.stringMatching(/^keyscope: Redis is unreachable for the failed-attempt throttle/)]]);
  });

  it('checks its options at setup, naming the option, and leaves them as they were', async () => {
    const client = await connect();
    const base = { client, maxFailures: 5, windowMs: 60_000 };
    expect(() => createRedisThrottle({ ...base, client: {} as never })).toThrow(/options\.client/);
    expect(() => createRedisThrottle({ ...base, maxFailures: 0 })).toThrow(RangeError);
    expect(() => createRedisThrottle({ ...base, windowMs: 1.5 })).toThrow(/options\.windowMs/);
    expect(() => createRedisThrottle({ ...base, maxClients: -1 })).toThrow(/options\.maxClients/);
    expect(() => createRedisThrottle({ ...base, prefix: 5 as never })).toThrow(/options\.prefix/);
    const options: RedisThrottleOptions = Object.freeze({ ...base });
    createRedisThrottle(options);
    expect(Object.keys(options)).toEqual(['client', 'maxFailures', 'windowMs']);
  });
});
