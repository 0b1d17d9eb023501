import { describe, expect, it } from 'vitest';
import { createKeyscope, generateKey, type UsageEntry } from '../src/index.js';
import { UsageRecorder } from '../src/usage.js';
import { headers, setup, SpyStore } from './helpers.js';

describe('usage', () => {
  it('is recorded off the request path, in batches, per UTC day', async () => {
    const { store, user } = await setup();
    const batches: UsageEntry[][] = [];
    const record = store.recordUsage.bind(store);
    store.recordUsage = async (entries) => {
      batches.push(entries);
      return record(entries);
    };
    const ks = createKeyscope({ store, usage: { flushIntervalMs: 30 } });
    for (let i = 0; i < 5; i++) await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    expect(batches).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 80));
    expect(batches).toHaveLength(1);
    expect(batches[0]).toEqual([expect.objectContaining({ keyId: user.record.id, count: 5, day: new Date().toISOString().slice(0, 10) })]);
    const usage = await ks.keys.usage(user.record.id);
    expect(usage.days).toEqual([{ day: new Date().toISOString().slice(0, 10), count: 5 }]);
    expect(usage.lastUsedAt).toBeInstanceOf(Date);
    await ks.close();
  });

  it('a slow usage write never delays a response', async () => {
    const { store, user } = await setup();
    store.recordUsage = () => new Promise(() => {});
    const ks = createKeyscope({ store, usage: { flushIntervalMs: 1 } });
    await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    await new Promise((r) => setTimeout(r, 10));
    const started = performance.now();
    for (let i = 0; i < 50; i++) expect((await ks.authenticate({ headers: headers(user.key), path: '/validate' })).ok).toBe(true);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('counts from a failed write are kept and sent with the next batch, each stamped when batched', async () => {
    const written: UsageEntry[] = [];
    let fail = true;
    let clock = Date.UTC(2026, 0, 2, 23, 59, 59, 500);
    const store = { recordUsage: async (entries: UsageEntry[]) => { if (fail) throw new Error('down'); written.push(...entries); } };
    const recorder = new UsageRecorder(store, 60_000, () => clock);
    recorder.record('key_a');
    recorder.record('key_a');
    recorder.record('key_b');
    await expect(recorder.flush()).rejects.toThrow('down');
    clock += 1000; // past midnight: the next batch is a new UTC day
    recorder.record('key_a');
    fail = false;
    await recorder.close();
    expect(written).toEqual([
      { keyId: 'key_a', day: '2026-01-02', count: 2, lastUsedAt: new Date(Date.UTC(2026, 0, 2, 23, 59, 59, 500)) },
      { keyId: 'key_b', day: '2026-01-02', count: 1, lastUsedAt: new Date(Date.UTC(2026, 0, 2, 23, 59, 59, 500)) },
      { keyId: 'key_a', day: '2026-01-03', count: 1, lastUsedAt: new Date(Date.UTC(2026, 0, 3, 0, 0, 0, 500)) },
    ]);
    recorder.record('key_a');
    await recorder.flush();
    expect(written).toHaveLength(3);
  });

  it('close() flushes what is pending', async () => {
    const { store, user } = await setup();
    const ks = createKeyscope({ store, usage: { flushIntervalMs: 60_000 } });
    await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    await ks.close();
    expect((await store.getUsage(user.record.id))?.days[0]?.count).toBe(1);
  });
});

describe('failed-attempt throttle', () => {
  it('is off by default', async () => {
    const { ks } = await setup();
    for (let i = 0; i < 50; i++) {
      const result = await ks.authenticate({ headers: headers(generateKey()), path: '/validate', clientIp: '10.0.0.1' });
      expect(!result.ok && result.error.status).toBe(401);
    }
  });

  it('answers 429 with Retry-After after maxFailures, per client, and lifts after the window', async () => {
    let clock = Date.now();
    const { ks, store, user } = await setup({ throttle: { maxFailures: 3, windowMs: 10_000 }, now: () => clock });
    const attempt = (ip: string, key = generateKey()) => ks.authenticate({ headers: headers(key), path: '/validate', clientIp: ip });
    for (let i = 0; i < 3; i++) expect((await attempt('10.0.0.1')).ok).toBe(false);
    const blocked = await attempt('10.0.0.1');
    expect(!blocked.ok && blocked.error).toMatchObject({ status: 429, code: 'too_many_attempts', headers: { 'Retry-After': '10' } });
    const calls = store.findCalls;
    await attempt('10.0.0.1');
    expect(store.findCalls).toBe(calls);
    const other = await attempt('10.0.0.2');
    expect(!other.ok && other.error.status).toBe(401);
    clock += 10_000;
    const lifted = await attempt('10.0.0.1');
    expect(!lifted.ok && lifted.error.status).toBe(401);
    expect(JSON.stringify(blocked)).not.toContain(user.key);
  });

  it('never locks out a key already known good from that client address', async () => {
    const { ks, user } = await setup({ throttle: { maxFailures: 2, windowMs: 60_000 } });
    expect((await ks.authenticate({ headers: headers(user.key), path: '/validate', clientIp: '10.0.0.9' })).ok).toBe(true);
    for (let i = 0; i < 5; i++) await ks.authenticate({ headers: headers('garbage'), path: '/validate', clientIp: '10.0.0.9' });
    expect((await ks.authenticate({ headers: headers(user.key), path: '/validate', clientIp: '10.0.0.9' })).ok).toBe(true);
  });

  it('reads a client address given as a function only when the throttle needs it', async () => {
    const { ks, user } = await setup();
    let reads = 0;
    const clientIp = () => (reads++, '10.0.0.7');
    await ks.authenticate({ headers: headers(user.key), path: '/validate', clientIp });
    await ks.authenticate({ headers: headers('garbage'), path: '/validate', clientIp });
    expect(reads).toBe(0);
    const throttled = (await setup({ throttle: { maxFailures: 1, windowMs: 60_000 } })).ks;
    await throttled.authenticate({ headers: headers('garbage'), path: '/validate', clientIp });
    const second = await throttled.authenticate({ headers: headers('garbage'), path: '/validate', clientIp });
    expect(!second.ok && second.error.status).toBe(429);
    expect(reads).toBe(2);
  });

  it('without a client address nothing is throttled', async () => {
    const store = new SpyStore();
    const ks = createKeyscope({ store, throttle: { maxFailures: 1, windowMs: 60_000 } });
    for (let i = 0; i < 5; i++) {
      const result = await ks.authenticate({ headers: headers('garbage'), path: '/validate' });
      expect(!result.ok && result.error.status).toBe(401);
    }
  });
});
