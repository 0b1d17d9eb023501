import { describe, expect, it } from 'vitest';
import type { UsageEntry } from '../src/index.js';
import { USAGE_BACKLOG_LIMIT, UsageRecorder } from '../src/usage.js';

const DAY_MS = 86_400_000;
const T0 = Date.UTC(2026, 2, 1, 12);

/** A store whose recordUsage fails `failures` times, then keeps what it is sent. */
function flakyStore(failures: number) {
  const calls: UsageEntry[][] = [];
  const written: UsageEntry[] = [];
  let left = failures;
  return {
    calls,
    written,
    fail(times: number) {
      left = times;
    },
    async recordUsage(entries: UsageEntry[]) {
      calls.push(entries.map((e) => ({ ...e })));
      if (left > 0) {
        left--;
        throw new Error('store down');
      }
      written.push(...entries.map((e) => ({ ...e })));
    },
  };
}

/** What the store holds per `keyId day`: counts summed, latest lastUsedAt. */
function totals(entries: UsageEntry[]) {
  const out: Record<string, { count: number; lastUsedAt: number }> = {};
  for (const e of entries) {
    const slot = (out[`${e.keyId} ${e.day}`] ??= { count: 0, lastUsedAt: 0 });
    slot.count += e.count;
    slot.lastUsedAt = Math.max(slot.lastUsedAt, e.lastUsedAt.getTime());
  }
  return out;
}

describe('UsageRecorder backlog while the store fails', () => {
  it('merges unsent counts by key and UTC day: retries stay one entry per key-day, and counts are exact after recovery', async () => {
    const failures = 25;
    const store = flakyStore(failures);
    let clock = T0;
    const recorder = new UsageRecorder(store, 60_000, () => clock);
    let sent = 0;
    for (let i = 0; i < failures; i++) {
      for (let n = 0; n <= i % 3; n++, sent++) recorder.record('key_a');
      if (i % 2 === 0) {
        recorder.record('key_b');
        sent++;
      }
      clock += 1_000;
      await expect(recorder.flush()).rejects.toThrow('store down');
      // Never more entries than distinct key-days: 2 keys, 1 day.
      expect(store.calls.at(-1)!.length).toBeLessThanOrEqual(2);
      expect(recorder.backlogSize).toBeLessThanOrEqual(2);
    }
    recorder.record('key_a');
    sent++;
    clock += 1_000;
    await recorder.flush();
    expect(store.calls).toHaveLength(failures + 1);
    expect(store.calls.every((batch) => batch.length <= 2)).toBe(true);
    const day = new Date(T0).toISOString().slice(0, 10);
    expect(store.written).toHaveLength(2);
    const got = totals(store.written);
    expect(got[`key_a ${day}`]!.count + got[`key_b ${day}`]!.count).toBe(sent);
    expect(got[`key_b ${day}`]!.count).toBe(13);
    // The latest use wins: key_a was used in the last batch, key_b last in batch 24.
    expect(got[`key_a ${day}`]!.lastUsedAt).toBe(clock);
    expect(got[`key_b ${day}`]!.lastUsedAt).toBe(T0 + 25_000);
    expect(recorder.backlogSize).toBe(0);
    expect(recorder.dropped).toBe(0);

    // Nothing is sent twice.
    await recorder.flush();
    expect(store.calls).toHaveLength(failures + 1);
  });

  it('keeps separate days apart across an outage past midnight', async () => {
    const store = flakyStore(3);
    let clock = Date.UTC(2026, 0, 2, 23, 59, 58);
    const recorder = new UsageRecorder(store, 60_000, () => clock);
    for (let i = 0; i < 4; i++) {
      recorder.record('key_a');
      recorder.record('key_a');
      clock += 1_000; // 23:59:59, 00:00:00, 00:00:01, 00:00:02
      await recorder.flush().catch(() => {});
    }
    expect(store.written.map(({ keyId, day, count }) => ({ keyId, day, count }))).toEqual([
      { keyId: 'key_a', day: '2026-01-02', count: 2 },
      { keyId: 'key_a', day: '2026-01-03', count: 6 },
    ]);
    expect(store.written[0]!.lastUsedAt).toEqual(new Date(Date.UTC(2026, 0, 2, 23, 59, 59)));
    expect(store.written[1]!.lastUsedAt).toEqual(new Date(clock));
  });

  it('caps the backlog at maxBacklog key-days: the oldest days go first and are counted in `dropped`', async () => {
    const store = flakyStore(Number.POSITIVE_INFINITY);
    let clock = T0;
    const recorder = new UsageRecorder(store, 60_000, () => clock, { maxBacklog: 4 });
    let recorded = 0;
    // Day 1: keys a, b (3 requests each); day 2: keys a, b, c (1 each); day 3: key a (5).
    for (const [day, uses] of [[0, { a: 3, b: 3 }], [1, { a: 1, b: 1, c: 1 }], [2, { a: 5 }]] as const) {
      clock = T0 + day * DAY_MS;
      for (const [key, n] of Object.entries(uses)) {
        for (let i = 0; i < n; i++, recorded++) recorder.record(`key_${key}`);
      }
      await recorder.flush().catch(() => {});
      expect(recorder.backlogSize).toBeLessThanOrEqual(4);
    }
    // 6 key-days were unsent; the two of the first day that did not fit (3 + 3 requests) were dropped.
    expect(recorder.backlogSize).toBe(4);
    expect(recorder.dropped).toBe(6);

    store.fail(0);
    await recorder.flush();
    const days = store.written.map(({ keyId, day, count }) => `${keyId} ${day} ${count}`).sort();
    expect(days).toEqual(['key_a 2026-03-02 1', 'key_a 2026-03-03 5', 'key_b 2026-03-02 1', 'key_c 2026-03-02 1']);
    const written = store.written.reduce((sum, e) => sum + e.count, 0);
    expect(written + recorder.dropped).toBe(recorded);
  });

  it('drops nothing that fits, and documents its default cap', async () => {
    expect(USAGE_BACKLOG_LIMIT).toBe(100_000);
    const store = flakyStore(1);
    const recorder = new UsageRecorder(store, 60_000, () => T0, { maxBacklog: 3 });
    for (const key of ['a', 'b', 'c']) recorder.record(`key_${key}`);
    await expect(recorder.flush()).rejects.toThrow();
    for (const key of ['a', 'b', 'c']) recorder.record(`key_${key}`);
    await recorder.flush();
    expect(recorder.dropped).toBe(0);
    expect(store.written.map((e) => e.count)).toEqual([2, 2, 2]);
    expect(() => new UsageRecorder(store, 1, Date.now, { maxBacklog: 0 })).toThrow(RangeError);
  });

  it('sends a large backlog in batches of at most maxBatch entries, and keeps an unsent batch exactly once', async () => {
    const store = flakyStore(1);
    const recorder = new UsageRecorder(store, 60_000, () => T0, { maxBatch: 10 });
    for (let i = 0; i < 35; i++) recorder.record(`key_${i}`);
    await expect(recorder.flush()).rejects.toThrow();
    expect(store.calls[0]).toHaveLength(10);
    expect(recorder.backlogSize).toBe(35);
    await recorder.flush();
    expect(store.calls.slice(1).map((c) => c.length)).toEqual([10, 10, 10, 5]);
    expect(store.written).toHaveLength(35);
    expect(new Set(store.written.map((e) => e.keyId)).size).toBe(35);
  });

  it('sends a flush in primary-key order across its batches: oldest day first, then key id', async () => {
    const store = flakyStore(0);
    let now = T0;
    const recorder = new UsageRecorder(store, 60_000, () => now, { maxBatch: 4 });
    // Keys recorded in a scrambled order, on two days (the first day's flush fails, so it waits).
    const ids = Array.from({ length: 11 }, (_, i) => `key_${String.fromCharCode(97 + ((i * 7) % 11))}`);
    store.fail(1);
    for (const id of ids) recorder.record(id);
    await expect(recorder.flush()).rejects.toThrow('store down');
    now = T0 + DAY_MS;
    for (const id of [...ids].reverse()) recorder.record(id);
    await recorder.flush();
    const sent = store.calls.slice(1).flat();
    const expected = ['2026-03-01', '2026-03-02'].flatMap((day) => [...ids].sort().map((keyId) => `${day} ${keyId}`));
    expect(sent.map((e) => `${e.day} ${e.keyId}`)).toEqual(expected);
    expect(store.calls.slice(1).map((c) => c.length)).toEqual([4, 4, 4, 4, 4, 2]);
  });

  it('counts recorded during an in-flight write that then fails are neither lost nor doubled', async () => {
    const written: UsageEntry[] = [];
    let release!: (ok: boolean) => void;
    let attempts = 0;
    const store = {
      recordUsage: (entries: UsageEntry[]) => {
        attempts++;
        if (attempts > 1) {
          written.push(...entries);
          return Promise.resolve();
        }
        return new Promise<void>((resolve, reject) => {
          release = (ok) => (ok ? resolve() : reject(new Error('busy')));
        });
      },
    };
    const recorder = new UsageRecorder(store, 60_000, () => T0);
    recorder.record('key_a');
    const first = recorder.flush();
    await new Promise((r) => setTimeout(r, 0));
    expect(attempts).toBe(1);
    recorder.record('key_a');
    recorder.record('key_a');
    release(false);
    await expect(first).rejects.toThrow('busy');
    await recorder.flush();
    expect(written.map((e) => [e.keyId, e.count])).toEqual([['key_a', 3]]);
  });
});
