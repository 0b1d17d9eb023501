/** MemoryRateLimiter (GCRA, burst = limit) and the RateLimit-Policy / RateLimit fields. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { limitHeaders, MemoryRateLimiter, quotaRetryAfter, type QuotaRefill, type QuotaTake, type RateLimit, type RateVerdict } from '../src/index.js';

/** A store's answer, with how the quota refills (a QuotaTake with `refill` or without it). */
type Take = QuotaTake & { refill?: QuotaRefill | null };

const perMinute: RateLimit = { limit: 20, windowMs: 60_000 };
const T0 = Date.UTC(2026, 10, 15, 12); // any epoch ms: the clock is passed in

describe('MemoryRateLimiter', () => {
  it('20 per minute: exactly 20 at once, counting down; the 21st waits 3 s, and after 3 s one more passes', () => {
    const limiter = new MemoryRateLimiter();
    const burst = Array.from({ length: 20 }, () => limiter.take('k', perMinute, T0));
    expect(burst.every((v) => v.allowed)).toBe(true);
    expect(burst.map((v) => v.remaining)).toEqual([19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    // Whole again one emission interval (3 s) per request taken.
    expect(burst.map((v) => v.resetSeconds)).toEqual(Array.from({ length: 20 }, (_, i) => 3 * (i + 1)));
    expect(burst.every((v) => v.retryAfterSeconds === 0)).toBe(true);

    expect(limiter.take('k', perMinute, T0)).toEqual<RateVerdict>({ allowed: false, remaining: 0, resetSeconds: 60, retryAfterSeconds: 3 });
    expect(limiter.take('k', perMinute, T0 + 1_500)).toEqual<RateVerdict>({ allowed: false, remaining: 0, resetSeconds: 59, retryAfterSeconds: 2 });
    expect(limiter.take('k', perMinute, T0 + 2_999).allowed).toBe(false);
    expect(limiter.take('k', perMinute, T0 + 3_000)).toEqual<RateVerdict>({ allowed: true, remaining: 0, resetSeconds: 60, retryAfterSeconds: 0 });
    expect(limiter.take('k', perMinute, T0 + 3_000)).toEqual<RateVerdict>({ allowed: false, remaining: 0, resetSeconds: 60, retryAfterSeconds: 3 });
  });

  it('a refused request takes nothing: a client hammering while refused gets in as soon as one that waited', () => {
    const hammered = new MemoryRateLimiter();
    const patient = new MemoryRateLimiter();
    for (let i = 0; i < 20; i++) {
      hammered.take('k', perMinute, T0);
      patient.take('k', perMinute, T0);
    }
    for (let ms = 0; ms < 3_000; ms += 10) expect(hammered.take('k', perMinute, T0 + ms).allowed).toBe(false);
    expect(hammered.take('k', perMinute, T0 + 3_000)).toEqual(patient.take('k', perMinute, T0 + 3_000));
  });

  it('refills evenly: after a minute idle the whole burst is back; after 30 s, half of it', () => {
    const limiter = new MemoryRateLimiter();
    for (let i = 0; i < 20; i++) limiter.take('k', perMinute, T0);
    expect(limiter.take('k', perMinute, T0 + 30_000)).toMatchObject({ allowed: true, remaining: 9, resetSeconds: 33 });
    const later = T0 + 120_000;
    expect(limiter.take('k', perMinute, later)).toMatchObject({ allowed: true, remaining: 19, resetSeconds: 3 });
  });

  it('stays exact when the window does not divide by the limit (3 per second: three at once, not two or four)', () => {
    const limiter = new MemoryRateLimiter();
    const limit = { limit: 3, windowMs: 1_000 };
    expect([0, 0, 0, 0].map(() => limiter.take('k', limit, T0).allowed)).toEqual([true, true, true, false]);
    expect(limiter.take('k', limit, T0 + 333).allowed).toBe(false);
    expect(limiter.take('k', limit, T0 + 334).allowed).toBe(true);
    // 7 per minute: exactly 7 at once, one more every 8.57 s.
    const odd = { limit: 7, windowMs: 60_000 };
    expect(Array.from({ length: 8 }, () => limiter.take('o', odd, T0).allowed).filter(Boolean)).toHaveLength(7);
    expect(limiter.take('o', odd, T0 + 8_571).allowed).toBe(false);
    expect(limiter.take('o', odd, T0 + 8_572).allowed).toBe(true);
  });

  it('counts each key on its own', () => {
    const limiter = new MemoryRateLimiter();
    for (let i = 0; i < 20; i++) limiter.take('a', perMinute, T0);
    expect(limiter.take('a', perMinute, T0).allowed).toBe(false);
    expect(limiter.take('b', perMinute, T0)).toMatchObject({ allowed: true, remaining: 19 });
  });

  it('is synchronous: a verdict, never a promise', () => {
    const verdict = new MemoryRateLimiter().take('k', perMinute, T0);
    expect('then' in verdict).toBe(false);
    expect(Object.keys(verdict)).toEqual(['allowed', 'remaining', 'resetSeconds', 'retryAfterSeconds']);
  });

  it('when a key\'s limit changes between requests: what was used still counts, nothing goes negative', () => {
    const limiter = new MemoryRateLimiter();
    for (let i = 0; i < 10; i++) limiter.take('k', { limit: 10, windowMs: 60_000 }, T0); // 60 s of debt
    // Lowered to 5 per minute: the debt (60 s) is more than the new burst allows (48 s ahead).
    const lowered = limiter.take('k', { limit: 5, windowMs: 60_000 }, T0);
    expect(lowered).toEqual<RateVerdict>({ allowed: false, remaining: 0, resetSeconds: 60, retryAfterSeconds: 12 });
    expect(limiter.take('k', { limit: 5, windowMs: 60_000 }, T0 + 12_000)).toMatchObject({ allowed: true, remaining: 0 });
    // Raised to 100 per minute: what is owed is time (a whole window here), and it drains at the
    // new pace: one more every 0.6 s, half the burst back 30 s later.
    const hundred = { limit: 100, windowMs: 60_000 };
    expect(limiter.take('k', hundred, T0 + 12_000)).toEqual<RateVerdict>({ allowed: false, remaining: 0, resetSeconds: 60, retryAfterSeconds: 1 });
    expect(limiter.take('k', hundred, T0 + 12_600)).toMatchObject({ allowed: true, remaining: 0 });
    expect(limiter.take('k', hundred, T0 + 42_600)).toMatchObject({ allowed: true, remaining: 49, resetSeconds: 31 });
    // A shorter window (10 per second) with 30 s owed: refused until it has drained.
    expect(limiter.take('k', { limit: 10, windowMs: 1_000 }, T0 + 42_600)).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 30 });
  });

  it('remembers at most maxKeys keys: the least recently used one starts afresh', () => {
    const limiter = new MemoryRateLimiter({ maxKeys: 2 });
    for (const key of ['a', 'b']) for (let i = 0; i < 20; i++) limiter.take(key, perMinute, T0);
    expect(limiter.take('a', perMinute, T0).allowed).toBe(false); // a is now the most recent
    limiter.take('c', perMinute, T0); // pushes out b
    expect(limiter.take('b', perMinute, T0)).toMatchObject({ allowed: true, remaining: 19 });
    expect(limiter.take('c', perMinute, T0)).toMatchObject({ allowed: true, remaining: 18 });
  });

  it('checks maxKeys when it is built, naming the option, and leaves the options as they were', () => {
    expect(() => new MemoryRateLimiter({ maxKeys: 0 })).toThrow(RangeError);
    expect(() => new MemoryRateLimiter({ maxKeys: 1.5 })).toThrow(/options\.maxKeys/);
    expect(() => new MemoryRateLimiter(null as never)).toThrow(TypeError);
    const options = Object.freeze({ maxKeys: 10 });
    new MemoryRateLimiter(options);
    expect(options).toEqual({ maxKeys: 10 });
  });

  it('property: over any stretch of time, no more than the burst plus one per interval passes; waiting Retry-After is enough', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1_000, max: 120_000 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 150 }),
        (limit, windowMs, gaps) => {
          const limiter = new MemoryRateLimiter({ maxKeys: 1 });
          const rate = { limit, windowMs };
          const passed: number[] = [];
          let now = T0;
          for (const gap of gaps) {
            now += gap;
            const v = limiter.take('k', rate, now);
            expect(v.remaining).toBeGreaterThanOrEqual(0);
            expect(v.remaining).toBeLessThan(limit);
            if (v.allowed) passed.push(now);
            else {
              expect(v.retryAfterSeconds).toBeGreaterThanOrEqual(1);
              // Waiting Retry-After is enough (checked on a copy of the state: a fresh limiter replaying the passes).
              const replay = new MemoryRateLimiter({ maxKeys: 1 });
              for (const at of passed) replay.take('k', rate, at);
              expect(replay.take('k', rate, now + v.retryAfterSeconds * 1000).allowed).toBe(true);
            }
          }
          // GCRA's bound, with the limiter's interval (whole microseconds): n passes in [a, b] ≤ limit + (b - a) / interval.
          const interval = Math.floor((windowMs * 1000) / limit) / 1000;
          let worst = 0;
          for (let i = 0; i < passed.length; i++) {
            for (let j = i; j < passed.length; j++) worst = Math.max(worst, j - i + 1 - Math.floor((passed[j]! - passed[i]!) / interval));
          }
          expect(worst).toBeLessThanOrEqual(limit);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('limitHeaders (draft-ietf-httpapi-ratelimit-headers-11)', () => {
  const tenHoursBeforeMidnight = Date.UTC(2026, 10, 15, 14); // 15 Nov 2026, 14:00 UTC
  const daily = (remaining: number, granted = remaining > 0): Take => ({ granted, remaining, limit: 1000, refill: 'day', resetAt: new Date(Date.UTC(2026, 10, 16)) });

  it('names both policies, with q and w in RateLimit-Policy and r and t in RateLimit, as structured-field lists', () => {
    const verdict = new MemoryRateLimiter().take('k', perMinute, tenHoursBeforeMidnight);
    expect(limitHeaders({ limit: perMinute, verdict }, daily(999), tenHoursBeforeMidnight)).toEqual({
      'RateLimit-Policy': '"rate";q=20;w=60, "quota";q=1000;w=86400',
      RateLimit: '"rate";r=19;t=3, "quota";r=999;t=36000',
    });
  });

  it('a refused request: r=0 and t = Retry-After (the effective window ends when Retry-After does)', () => {
    const limiter = new MemoryRateLimiter();
    for (let i = 0; i < 20; i++) limiter.take('k', perMinute, T0);
    const verdict = limiter.take('k', perMinute, T0);
    expect(limitHeaders({ limit: perMinute, verdict }, undefined, T0)).toEqual({ 'RateLimit-Policy': '"rate";q=20;w=60', RateLimit: '"rate";r=0;t=3' });
  });

  it('the last allowed request of a burst: r=0, t until the allowance is whole again', () => {
    const limiter = new MemoryRateLimiter();
    let verdict!: RateVerdict;
    for (let i = 0; i < 20; i++) verdict = limiter.take('k', perMinute, T0);
    expect(limitHeaders({ limit: perMinute, verdict }, undefined, T0).RateLimit).toBe('"rate";r=0;t=60');
  });

  it('a quota alone, used up; and one that never refills (no w, no t)', () => {
    expect(limitHeaders(undefined, daily(0), tenHoursBeforeMidnight)).toEqual({ 'RateLimit-Policy': '"quota";q=1000;w=86400', RateLimit: '"quota";r=0;t=36000' });
    const once: Take = { granted: true, remaining: 49, limit: 50, refill: null, resetAt: null };
    expect(limitHeaders(undefined, once, T0)).toEqual({ 'RateLimit-Policy': '"quota";q=50', RateLimit: '"quota";r=49' });
  });

  it('a monthly quota: w is the length of the calendar month it counts (ending at resetAt)', () => {
    const monthly = (resetAt: number): Take => ({ granted: true, remaining: 7, limit: 10_000, refill: 'month', resetAt: new Date(resetAt) });
    // 15 Nov 12:00 → 1 Dec: November has 30 days.
    expect(limitHeaders(undefined, monthly(Date.UTC(2026, 11, 1)), T0)).toEqual({
      'RateLimit-Policy': '"quota";q=10000;w=2592000',
      RateLimit: '"quota";r=7;t=1339200',
    });
    expect(limitHeaders(undefined, monthly(Date.UTC(2027, 0, 1)), Date.UTC(2026, 11, 3))['RateLimit-Policy']).toBe('"quota";q=10000;w=2678400');
    expect(limitHeaders(undefined, monthly(Date.UTC(2027, 2, 1)), Date.UTC(2027, 1, 3))['RateLimit-Policy']).toBe('"quota";q=10000;w=2419200');
    expect(limitHeaders(undefined, monthly(Date.UTC(2028, 2, 1)), Date.UTC(2028, 1, 3))['RateLimit-Policy']).toBe('"quota";q=10000;w=2505600'); // leap year
  });

  it('without refill, it is told from resetAt; on the last day of a month, where a daily and a monthly quota look alike, w is left out', () => {
    // A caller whose QuotaTake does not say how the quota refills.
    const told = (resetAt: number) => ({ granted: true, remaining: 3, limit: 5, resetAt: new Date(resetAt) }) as Take;
    expect(limitHeaders(undefined, told(Date.UTC(2026, 10, 16)), T0)['RateLimit-Policy']).toBe('"quota";q=5;w=86400');
    expect(limitHeaders(undefined, told(Date.UTC(2026, 11, 1)), T0)['RateLimit-Policy']).toBe('"quota";q=5;w=2592000');
    expect(limitHeaders(undefined, told(Date.UTC(2026, 11, 7)), T0)['RateLimit-Policy']).toBe('"quota";q=5'); // neither: no guess
    const lastDay = Date.UTC(2026, 10, 30, 15);
    const take = told(Date.UTC(2026, 11, 1));
    expect(limitHeaders(undefined, take, lastDay)).toEqual({ 'RateLimit-Policy': '"quota";q=5', RateLimit: '"quota";r=3;t=32400' });
    expect(limitHeaders(undefined, { ...take, refill: 'month' }, lastDay)['RateLimit-Policy']).toBe('"quota";q=5;w=2592000');
    expect(limitHeaders(undefined, { ...take, refill: 'day' }, lastDay)['RateLimit-Policy']).toBe('"quota";q=5;w=86400');
    expect(limitHeaders(undefined, { ...take, refill: null, resetAt: null }, lastDay)['RateLimit-Policy']).toBe('"quota";q=5');
  });

  it('a window that is not whole seconds is rounded up (w has no fractions; a longer window never invites more)', () => {
    const verdict = new MemoryRateLimiter().take('k', { limit: 3, windowMs: 1_500 }, T0);
    expect(limitHeaders({ limit: { limit: 3, windowMs: 1_500 }, verdict }, undefined, T0)).toEqual({ 'RateLimit-Policy': '"rate";q=3;w=2', RateLimit: '"rate";r=2;t=1' });
    const fast = new MemoryRateLimiter().take('k', { limit: 5, windowMs: 200 }, T0);
    expect(limitHeaders({ limit: { limit: 5, windowMs: 200 }, verdict: fast }, undefined, T0)['RateLimit-Policy']).toBe('"rate";q=5;w=1');
  });

  it('no limits, no fields', () => {
    expect(limitHeaders(undefined, undefined, T0)).toEqual({});
  });

  it('every value is a valid structured-field list of string items with integer parameters', () => {
    const item = /^"[a-z]+"(;[a-z]+=\d{1,15})+$/;
    const verdict = new MemoryRateLimiter().take('k', perMinute, T0);
    const fields = limitHeaders({ limit: perMinute, verdict }, daily(5), T0);
    for (const value of Object.values(fields)) for (const member of value.split(', ')) expect(member).toMatch(item);
  });
});

describe('quotaRetryAfter', () => {
  it('is the seconds until the quota refills (at least 1), or undefined when it never does', () => {
    const take = (resetAt: Date | null): Take => ({ granted: false, remaining: 0, limit: 100, refill: resetAt ? 'day' : null, resetAt });
    expect(quotaRetryAfter(take(new Date(T0 + 90_500)), T0)).toBe(91);
    expect(quotaRetryAfter(take(new Date(T0 + 10)), T0)).toBe(1);
    expect(quotaRetryAfter(take(new Date(T0 - 1_000)), T0)).toBe(1);
    expect(quotaRetryAfter(take(null), T0)).toBeUndefined();
  });
});
