/**
 * Outside review of per-key rate limits and quotas (core + MemoryStore).
 *
 * Tests named "FIXED: …" fail today and pass once the hole is fixed; tests named "HELD: …" are
 * attacks that were tried and held, kept so they stay guarded.
 */
import { describe, expect, it } from 'vitest';
import { createKeyscope, MemoryRateLimiter, MemoryStore, type AuthResult, type KeyscopeOptions, type RateLimiter } from '@keyscope/core';

const MINUTE = 60_000;
const HOUR = 3_600_000;

function world(options: Partial<KeyscopeOptions> = {}) {
  const store = new MemoryStore();
  store.addProject({ id: 'proj_a', ownerId: 'u1', name: 'A' });
  store.addProject({ id: 'proj_b', ownerId: 'u2', name: 'B' });
  let clock = Date.UTC(2026, 10, 30, 12, 0, 0);
  const ks = createKeyscope({ store, usage: false, now: () => clock, ...options });
  return { ks, store, tick: (ms: number) => (clock += ms), now: () => clock };
}

const ask = (ks: ReturnType<typeof createKeyscope>, key: string, project?: string, path = '/sites') =>
  ks.authenticate({ headers: project === undefined ? { 'x-api-key': key } : { 'x-api-key': key, 'x-project-id': project }, path });
const codeOf = (r: AuthResult) => (r.ok ? 'ok' : r.error.code);

async function countOk(ks: ReturnType<typeof createKeyscope>, key: string, max: number, project = 'proj_a'): Promise<number> {
  let ok = 0;
  for (let i = 0; i < max; i++) if ((await ask(ks, key, project)).ok) ok++;
  return ok;
}

/** RFC 8941 §3.3.1: an sf-integer has at most 15 digits. */
const SF_INTEGER_MAX = 999_999_999_999_999;
function sfIntegers(field: string): number[] {
  return [...field.matchAll(/;[a-z]+=(-?\d+)/g)].map((m) => Number(m[1]));
}

describe('rotation and the allowance', () => {
  it('FIXED: rotating with a grace period (offered to owners by the portal) mints a second copy of the remaining quota, unboundedly', async () => {
    const { ks } = world();
    const mine = ks.keys.forOwner('u1');
    const first = await mine.create({ name: 'k', level: 'project', projectId: 'proj_a', quota: { limit: 10 } });
    // The owner rotates with the portal's default "1 hour" grace period, three times in a row,
    // each time rotating the key that is still in its grace period.
    const keys = [first.key];
    let id = first.record.id;
    for (let i = 0; i < 3; i++) {
      const next = await mine.rotate(id, { gracePeriodMs: HOUR });
      keys.push(next.key);
      id = next.record.id;
    }
    let granted = 0;
    for (const key of keys) granted += await countOk(ks, key, 20);
    // A quota of 10 in all: whatever the rotations, 10 requests at most (today: 40).
    expect(granted).toBeLessThanOrEqual(10);
  });

  it('FIXED: rotating also rotates the rate-limit bucket: a key at its rate limit gets a fresh burst at once', async () => {
    const { ks } = world();
    const mine = ks.keys.forOwner('u1');
    const { key, record } = await mine.create({ name: 'k', level: 'project', projectId: 'proj_a', rateLimit: { limit: 5, windowMs: MINUTE } });
    expect(await countOk(ks, key, 10)).toBe(5);
    // No grace period: the old key is revoked, the new one "carries the limits over"...
    const next = await mine.rotate(record.id);
    // ...but is counted under its new id, from zero: 5 more within the same instant.
    expect(await countOk(ks, next.key, 10)).toBe(0);
  });

  it('HELD: rotation without grace carries the quota where it stands (no fresh allowance)', async () => {
    const { ks } = world();
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', quota: { limit: 5 } });
    expect(await countOk(ks, key, 3)).toBe(3);
    const next = await ks.keys.rotate(record.id);
    expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('invalid_api_key');
    expect(await countOk(ks, next.key, 10)).toBe(2);
  });
});

describe('admin input', () => {
  it('FIXED: a quota whose remaining exceeds its limit is accepted (create and setLimits)', async () => {
    const { ks } = world();
    await expect(ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', quota: { limit: 10, remaining: 1_000_000 } })).rejects.toMatchObject({ code: 'invalid_argument' });
  });

  it('FIXED: setLimits accepts remaining > limit, and the RateLimit field then says r > q', async () => {
    const { ks } = world();
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a' });
    let rejected = false;
    try {
      await ks.keys.setLimits(record.id, { quota: { limit: 1, remaining: 500 } });
    } catch (error) {
      rejected = (error as { code?: string }).code === 'invalid_argument';
    }
    if (!rejected) {
      const r = await ask(ks, key, 'proj_a');
      // Today: 200 with RateLimit-Policy "quota";q=1 and RateLimit "quota";r=499.
      expect(r.ok ? r.headers : undefined).toBeUndefined();
    }
    expect(rejected).toBe(true);
  });

  it('FIXED: a quota limit past 15 digits is accepted and sent as an invalid structured-field integer', async () => {
    const { ks } = world();
    let created: { key: string } | undefined;
    try {
      created = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', quota: { limit: Number.MAX_SAFE_INTEGER } });
    } catch {
      // Refusing it at creation is a fix too.
    }
    if (created) {
      const r = await ask(ks, created.key, 'proj_a');
      expect(r.ok).toBe(true);
      const headers = r.ok ? r.headers! : {};
      for (const n of [...sfIntegers(headers['RateLimit-Policy']!), ...sfIntegers(headers.RateLimit!)]) expect(Math.abs(n)).toBeLessThanOrEqual(SF_INTEGER_MAX);
    }
  });

  it('FIXED: a level default rate limit has no upper bound (admin caps limit at 1e9): q goes out past 15 digits', async () => {
    // keys.create/setLimits refuse a limit over 1e9 or a window over 366 days; the level default takes anything.
    let ks: ReturnType<typeof createKeyscope> | undefined;
    try {
      ks = createKeyscope({ store: new MemoryStore(), usage: false, limits: { user: { rateLimit: { limit: Number.MAX_SAFE_INTEGER, windowMs: Number.MAX_SAFE_INTEGER } } } });
    } catch (error) {
      expect(error).toBeInstanceOf(RangeError); // refusing it at setup is the fix
      return;
    }
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user' });
    const r = await ask(ks, key, undefined, '/validate');
    expect(r.ok).toBe(true);
    const headers = r.ok ? r.headers! : {};
    for (const n of [...sfIntegers(headers['RateLimit-Policy']!), ...sfIntegers(headers.RateLimit!)]) expect(Math.abs(n)).toBeLessThanOrEqual(SF_INTEGER_MAX);
  });

  it('HELD: NaN, Infinity, negative, fractional, string and huge limits are refused with invalid_argument', async () => {
    const { ks } = world();
    const { record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user' });
    const bad: unknown[] = [
      { rateLimit: { limit: Number.NaN, windowMs: MINUTE } },
      { rateLimit: { limit: Number.POSITIVE_INFINITY, windowMs: MINUTE } },
      { rateLimit: { limit: -1, windowMs: MINUTE } },
      { rateLimit: { limit: 0, windowMs: MINUTE } },
      { rateLimit: { limit: 1.5, windowMs: MINUTE } },
      { rateLimit: { limit: '10', windowMs: MINUTE } },
      { rateLimit: { limit: 1_000_000_001, windowMs: MINUTE } },
      { rateLimit: { limit: 10, windowMs: 999 } },
      { rateLimit: { limit: 10, windowMs: 367 * 86_400_000 } },
      { rateLimit: { limit: 10 } },
      { rateLimit: [] },
      { rateLimit: 10 },
      { quota: { limit: 0 } },
      { quota: { limit: 2 ** 53 } },
      { quota: { limit: 10, remaining: -1 } },
      { quota: { limit: 10, remaining: 0.5 } },
      { quota: { limit: 10, refill: 'week' } },
      { quota: { limit: 10, refill: false } },
      { quota: 5 },
      null,
      'x',
    ];
    for (const input of bad) await expect(ks.keys.setLimits(record.id, input as never), JSON.stringify(input)).rejects.toMatchObject({ code: 'invalid_argument' });
  });

  it('HELD: setLimits refuses limits for a signed key id', async () => {
    // createSigned needs signing keys; the check on kind is in setLimits, exercised via a stored signed record.
    const { ks, store } = world();
    const { record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user' });
    const raw = (store as unknown as { keys: Map<string, { kind: string }> }).keys.get(record.id);
    expect(raw, 'MemoryStore keeps records in a private keys map').toBeDefined();
    raw!.kind = 'signed';
    await expect(ks.keys.setLimits(record.id, { rateLimit: { limit: 1, windowMs: MINUTE } })).rejects.toMatchObject({ code: 'invalid_argument' });
  });
});

describe('counting that fails', () => {
  it('FIXED: a custom limiter that never settles hangs the request (no timeout; the quota count has storeTimeoutMs)', async () => {
    const limiter: RateLimiter = { take: () => new Promise(() => {}) };
    const { ks } = world({ limits: { limiter }, storeTimeoutMs: 200 });
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', rateLimit: { limit: 5, windowMs: MINUTE } });
    const answer = await Promise.race([ask(ks, key, 'proj_a').then(codeOf), new Promise<string>((r) => setTimeout(() => r('still waiting after 2 s'), 2_000))]);
    expect(answer).toBe('auth_unavailable');
  });

  it('FIXED: a custom limiter that resolves to nothing makes authenticate reject (a 500), not 503', async () => {
    const limiter = { take: async () => undefined } as unknown as RateLimiter;
    const { ks } = world({ limits: { limiter } });
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', rateLimit: { limit: 5, windowMs: MINUTE } });
    const outcome = await ask(ks, key, 'proj_a').then(codeOf, (e: Error) => `threw ${e.name}: ${e.message}`);
    expect(outcome).toBe('auth_unavailable');
  });

  it('HELD: a custom limiter that returns nothing synchronously answers 503', async () => {
    const limiter = { take: () => undefined } as unknown as RateLimiter;
    const { ks } = world({ limits: { limiter } });
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', rateLimit: { limit: 5, windowMs: MINUTE } });
    expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('auth_unavailable');
  });

  it('HELD: a quota count that throws synchronously (not a rejected promise) answers 503', async () => {
    const { ks, store } = world();
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', quota: { limit: 5 } });
    (store as unknown as { consumeQuota: () => never }).consumeQuota = () => {
      throw new Error('boom');
    };
    expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('auth_unavailable');
  });

  it('HELD: a quota count answering a granted:false with remaining > 0 is still a 429, never a pass', async () => {
    const { ks, store } = world();
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', quota: { limit: 5 } });
    (store as unknown as { consumeQuota: () => Promise<unknown> }).consumeQuota = async () => ({ granted: false, remaining: 3, limit: 5, refill: null, resetAt: null });
    expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('quota_exhausted');
  });
});

describe('counting', () => {
  it('FIXED: a high rate limit is counted with a rounded-down interval: 600,000/s lets 1,000,000/s through', () => {
    const limiter = new MemoryRateLimiter();
    const limit = { limit: 600_000, windowMs: 1_000 };
    let now = Date.UTC(2026, 0, 1);
    // Drain the burst, then count what one more whole window lets through.
    for (let i = 0; i < limit.limit; i++) limiter.take('k', limit, now);
    expect(limiter.take('k', limit, now).allowed).toBe(false);
    const end = now + 1_000;
    let passed = 0;
    for (now += 0.001; now <= end; now += 0.001) {
      // a step of 1 µs: every request the limiter lets through in that instant
      while (limiter.take('k', limit, now).allowed) passed++;
    }
    expect(passed).toBeLessThanOrEqual(limit.limit);
  });

  it('HELD: concurrent requests on one key never exceed the quota (memory store)', async () => {
    const { ks } = world();
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', quota: { limit: 25 } });
    const answers = await Promise.all(Array.from({ length: 200 }, () => ask(ks, key, 'proj_a')));
    expect(answers.filter((a) => a.ok).length).toBe(25);
  });

  it('HELD: concurrent requests on one key never exceed the rate limit (memory limiter)', async () => {
    const { ks } = world();
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', rateLimit: { limit: 7, windowMs: MINUTE } });
    const answers = await Promise.all(Array.from({ length: 100 }, () => ask(ks, key, 'proj_a')));
    expect(answers.filter((a) => a.ok).length).toBe(7);
  });

  it('HELD: a limit lowered mid-flight applies at once on the same instance (the time owed is read against the new limit)', async () => {
    const { ks } = world();
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', rateLimit: { limit: 100, windowMs: MINUTE } });
    expect(await countOk(ks, key, 30)).toBe(30);
    await ks.keys.setLimits(record.id, { rateLimit: { limit: 5, windowMs: MINUTE } });
    // 30 at 100/min owe 18 s: at 5/min (12 s each) that is 2 of the 5, so 3 more, as documented.
    expect(await countOk(ks, key, 10)).toBeLessThanOrEqual(3);
  });

  it('HELD: adding a quota to a key already cached applies on the next request', async () => {
    const { ks } = world();
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a' });
    expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('ok');
    await ks.keys.setLimits(record.id, { quota: { limit: 2 } });
    expect(await countOk(ks, key, 5)).toBe(2);
  });

  it('HELD: a daily quota refills exactly at 00:00 UTC, once', async () => {
    const { ks, tick, now } = world();
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', quota: { limit: 3, refill: 'day' } });
    expect(await countOk(ks, key, 5)).toBe(3);
    const midnight = Date.UTC(2026, 11, 1);
    tick(midnight - now() - 1);
    expect(await countOk(ks, key, 2)).toBe(0);
    tick(1);
    expect(await countOk(ks, key, 5)).toBe(3);
  });

  it('HELD: a monthly quota refills on the 1st (December → January)', async () => {
    const { ks, tick, now } = world();
    tick(Date.UTC(2026, 11, 31, 23, 59, 59) - now());
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', quota: { limit: 2, refill: 'month' } });
    expect(await countOk(ks, key, 3)).toBe(2);
    const r = await ask(ks, key, 'proj_a');
    expect(r.ok ? null : r.error.headers['Retry-After']).toBe('1');
    tick(1_000);
    expect(await countOk(ks, key, 3)).toBe(2);
  });
});

describe('what refusals reveal', () => {
  it('HELD: a limited key with the wrong project gets the very same 403 as an unlimited key (no RateLimit fields)', async () => {
    const { ks } = world();
    const limited = await ks.keys.create({ ownerId: 'u1', name: 'l', level: 'project', projectId: 'proj_a', rateLimit: { limit: 1, windowMs: MINUTE }, quota: { limit: 1 } });
    const plain = await ks.keys.create({ ownerId: 'u1', name: 'p', level: 'project', projectId: 'proj_a' });
    // Exhaust both limits first: the 403 must still not tell.
    expect(codeOf(await ask(ks, limited.key, 'proj_a'))).toBe('ok');
    expect(codeOf(await ask(ks, limited.key, 'proj_a'))).toBe('rate_limited');
    const a = await ask(ks, limited.key, 'proj_b');
    const b = await ask(ks, plain.key, 'proj_b');
    expect(a).toEqual(b);
    const userKey = await ks.keys.create({ ownerId: 'u1', name: 'u', level: 'user', quota: { limit: 1 } });
    const userPlain = await ks.keys.create({ ownerId: 'u1', name: 'u2', level: 'user' });
    expect(await ask(ks, userKey.key)).toEqual(await ask(ks, userPlain.key));
  });

  it('HELD: a revoked or expired key with exhausted limits answers exactly like an unknown key', async () => {
    const { ks, tick } = world();
    const gone = await ks.keys.create({ ownerId: 'u1', name: 'r', level: 'project', projectId: 'proj_a', quota: { limit: 1 }, rateLimit: { limit: 1, windowMs: HOUR } });
    const expiring = await ks.keys.create({ ownerId: 'u1', name: 'e', level: 'project', projectId: 'proj_a', quota: { limit: 1 }, expiresAt: new Date(Date.UTC(2026, 10, 30, 12, 0, 30)) });
    await ask(ks, gone.key, 'proj_a');
    await ask(ks, expiring.key, 'proj_a');
    await ks.keys.revoke(gone.record.id);
    // A well-formed key this store never saw.
    const fresh = createKeyscope({ store: new MemoryStore(), usage: false });
    const other = (await fresh.keys.create({ ownerId: 'z', name: 'z', level: 'user' })).key;
    tick(60_000);
    const answers = [await ask(ks, other, 'proj_a'), await ask(ks, gone.key, 'proj_a'), await ask(ks, expiring.key, 'proj_a')];
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    expect(codeOf(answers[0]!)).toBe('invalid_api_key');
  });

  it('HELD: the RateLimit fields of one key say nothing of another key of the same owner', async () => {
    const { ks } = world();
    const a = await ks.keys.create({ ownerId: 'u1', name: 'a', level: 'project', projectId: 'proj_a', rateLimit: { limit: 5, windowMs: MINUTE }, quota: { limit: 9 } });
    const b = await ks.keys.create({ ownerId: 'u1', name: 'b', level: 'project', projectId: 'proj_a', rateLimit: { limit: 5, windowMs: MINUTE }, quota: { limit: 9 } });
    await countOk(ks, a.key, 4);
    const r = await ask(ks, b.key, 'proj_a');
    expect(r.ok && r.headers).toEqual({ 'RateLimit-Policy': '"rate";q=5;w=60, "quota";q=9', RateLimit: '"rate";r=4;t=12, "quota";r=8' });
  });

  it('HELD: an unlimited key gets no limit fields and no limiter call', async () => {
    let calls = 0;
    const limiter: RateLimiter = { take: (...args) => (calls++, new MemoryRateLimiter().take(...args)) };
    const { ks } = world({ limits: { limiter } });
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a' });
    const r = await ask(ks, key, 'proj_a');
    expect(r.ok && r.headers).toBeUndefined();
    expect(calls).toBe(0);
  });

  it('HELD: a stacked second call on the same request is not counted again', async () => {
    const { ks } = world();
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', rateLimit: { limit: 2, windowMs: MINUTE }, quota: { limit: 2 } });
    const request = {};
    for (let i = 0; i < 5; i++) expect(codeOf(await ks.authenticate({ headers: { 'x-api-key': key }, path: '/sites', request }))).toBe('ok');
    expect(await countOk(ks, key, 3)).toBe(1);
  });
});
