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

  it('counts from a failed write are kept and sent with the next batch', async () => {
    const written: UsageEntry[] = [];
    let fail = true;
    const recorder = new UsageRecorder({ recordUsage: async (entries) => { if (fail) throw new Error('down'); written.push(...entries); } }, 60_000);
    const day = Date.UTC(2026, 0, 2, 12);
    recorder.record('key_a', day);
    recorder.record('key_a', day + 1000);
    await expect(recorder.flush()).rejects.toThrow('down');
    recorder.record('key_a', day + 2000);
    recorder.record('key_a', day + 86_400_000);
    fail = false;
    await recorder.close();
    expect(written).toEqual([
      { keyId: 'key_a', day: '2026-01-02', count: 3, lastUsedAt: new Date(day + 2000) },
      { keyId: 'key_a', day: '2026-01-03', count: 1, lastUsedAt: new Date(day + 86_400_000) },
    ]);
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

  it('without a client address nothing is throttled', async () => {
    const store = new SpyStore();
    const ks = createKeyscope({ store, throttle: { maxFailures: 1, windowMs: 60_000 } });
    for (let i = 0; i < 5; i++) {
      const result = await ks.authenticate({ headers: headers('garbage'), path: '/validate' });
      expect(!result.ok && result.error.status).toBe(401);
    }
  });
});
