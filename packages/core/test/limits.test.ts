/**
 * Per-key rate limits and quotas through the pipeline and the admin API: where the step sits,
 * what it answers, what it costs a key without limits, and how it fails.
 */
import { describe, expect, it } from 'vitest';
import { createKeyscope, MemoryStore, type AuthResult, type KeyAdminStore, type KeyscopeEvent, type KeyscopeOptions, type RateLimiter } from '../src/index.js';

const MINUTE = 60_000;

async function world(options: Partial<KeyscopeOptions> = {}, store = new MemoryStore()) {
  store.addProject({ id: 'proj_a', ownerId: 'u1', name: 'A' });
  store.addProject({ id: 'proj_b', ownerId: 'u2', name: 'B' });
  const events: KeyscopeEvent[] = [];
  let clock = Date.UTC(2026, 10, 30, 12, 0, 0);
  const ks = createKeyscope({ store, usage: false, now: () => clock, onEvent: (e) => events.push(e), ...options });
  const tick = (ms: number) => (clock += ms);
  return { ks, store, events, tick, now: () => clock };
}

const ask = (ks: ReturnType<typeof createKeyscope>, key: string, project?: string) =>
  ks.authenticate({ headers: project === undefined ? { 'x-api-key': key } : { 'x-api-key': key, 'x-project-id': project }, path: '/sites' });
const codeOf = (r: AuthResult) => (r.ok ? 'ok' : r.error.code);

describe('the limit step', () => {
  it('counts a rate limit: 200s carry the RateLimit fields, then 429 rate_limited with Retry-After', async () => {
    const { ks, tick } = await world();
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'project', projectId: 'proj_a', rateLimit: { limit: 3, windowMs: MINUTE } });
    const answers = [await ask(ks, key), await ask(ks, key), await ask(ks, key), await ask(ks, key)];
    expect(answers.map(codeOf)).toEqual(['ok', 'ok', 'ok', 'rate_limited']);
    expect(answers.slice(0, 3).map((r) => (r.ok ? r.headers : undefined))).toEqual([
      { 'RateLimit-Policy': '"rate";q=3;w=60', RateLimit: '"rate";r=2;t=20' },
      { 'RateLimit-Policy': '"rate";q=3;w=60', RateLimit: '"rate";r=1;t=40' },
      { 'RateLimit-Policy': '"rate";q=3;w=60', RateLimit: '"rate";r=0;t=60' },
    ]);
    const refused = answers[3]!;
    if (refused.ok) throw new Error('expected a refusal');
    expect(refused.error).toMatchObject({ status: 429, code: 'rate_limited', title: 'Rate limit exceeded' });
    expect(refused.error.headers).toEqual({
      'Content-Type': 'application/problem+json',
      'Cache-Control': 'no-store',
      'RateLimit-Policy': '"rate";q=3;w=60',
      RateLimit: '"rate";r=0;t=20',
      'Retry-After': '20',
    });
    expect(JSON.parse(refused.error.text)).toEqual(refused.error.body);
    // Retry-After is honoured: one more after it, and only one.
    tick(20_000);
    expect(codeOf(await ask(ks, key))).toBe('ok');
    expect(codeOf(await ask(ks, key))).toBe('rate_limited');
  });

  it('comes after the key and project checks: a bad key is 401 and a wrong project 403, and neither is counted', async () => {
    const { ks } = await world();
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', rateLimit: { limit: 1, windowMs: MINUTE }, quota: { limit: 1 } });
    const bad = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    for (let i = 0; i < 3; i++) {
      expect(codeOf(await ask(ks, bad, 'proj_a'))).toBe('invalid_api_key');
      expect(codeOf(await ask(ks, key, 'proj_b'))).toBe('project_forbidden');
      expect(codeOf(await ask(ks, key))).toBe('project_required');
    }
    const forbidden = await ask(ks, key, 'proj_b');
    expect(forbidden.ok ? {} : forbidden.error.headers).not.toHaveProperty('RateLimit');
    // Nothing was spent: the first good request passes.
    expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('ok');
  });

  it('takes one unit of a quota per request, then 429 quota_exhausted; a daily quota says when it refills', async () => {
    const { ks, tick, now } = await world();
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', quota: { limit: 2, refill: 'day' } });
    const first = await ask(ks, key, 'proj_a');
    // 12:00 UTC: 12 hours to the refill.
    expect(first.ok && first.headers).toEqual({ 'RateLimit-Policy': '"quota";q=2;w=86400', RateLimit: '"quota";r=1;t=43200' });
    expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('ok');
    const used = await ask(ks, key, 'proj_a');
    expect(used.ok ? 'ok' : used.error.headers).toMatchObject({ RateLimit: '"quota";r=0;t=43200', 'Retry-After': '43200' });
    expect(codeOf(used)).toBe('quota_exhausted');
    expect((await ks.keys.get(record.id))?.quota).toMatchObject({ limit: 2, remaining: 0, refill: 'day' });
    // At midnight it is whole again.
    tick(Date.UTC(2026, 11, 1) - now());
    expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('ok');
    expect((await ks.keys.get(record.id))?.quota).toMatchObject({ remaining: 1, resetAt: new Date(Date.UTC(2026, 11, 2)) });
  });

  it('a quota that never refills: 429 without Retry-After (waiting will not help)', async () => {
    const { ks } = await world();
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', quota: { limit: 1 } });
    expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('ok');
    const refused = await ask(ks, key, 'proj_a');
    if (refused.ok) throw new Error('expected a refusal');
    expect(refused.error.code).toBe('quota_exhausted');
    expect(refused.error.headers).not.toHaveProperty('Retry-After');
    expect(refused.error.headers).toMatchObject({ 'RateLimit-Policy': '"quota";q=1', RateLimit: '"quota";r=0' });
  });

  it('a request refused by the rate limit takes no quota; both policies are reported together', async () => {
    const { ks, store } = await world();
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', rateLimit: { limit: 1, windowMs: MINUTE }, quota: { limit: 10 } });
    const ok = await ask(ks, key, 'proj_a');
    expect(ok.ok && ok.headers).toEqual({ 'RateLimit-Policy': '"rate";q=1;w=60, "quota";q=10', RateLimit: '"rate";r=0;t=60, "quota";r=9' });
    for (let i = 0; i < 5; i++) expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('rate_limited');
    expect((await store.getKey(record.id))?.quota?.remaining).toBe(9);
  });

  it("a level's default rate limit applies to its keys without their own; a key's own wins; signed and unlimited keys alike", async () => {
    const { ks } = await world({ limits: { project: { rateLimit: { limit: 1, windowMs: MINUTE } } } });
    const project = await ks.keys.create({ ownerId: 'u1', name: 'p', level: 'project', projectId: 'proj_a' });
    const own = await ks.keys.create({ ownerId: 'u1', name: 'own', level: 'project', projectId: 'proj_a', rateLimit: { limit: 3, windowMs: MINUTE } });
    const user = await ks.keys.create({ ownerId: 'u1', name: 'u', level: 'user' });
    expect([await ask(ks, project.key), await ask(ks, project.key)].map(codeOf)).toEqual(['ok', 'rate_limited']);
    expect([await ask(ks, own.key), await ask(ks, own.key), await ask(ks, own.key), await ask(ks, own.key)].map(codeOf)).toEqual(['ok', 'ok', 'ok', 'rate_limited']);
    // The user level has no default: no limit, no fields.
    for (let i = 0; i < 5; i++) {
      const r = await ask(ks, user.key, 'proj_a');
      expect(r).toEqual({ ok: true, auth: expect.any(Object) });
    }
  });

  it("a level's default quota goes to each new key of that level that gives none; null opts out", async () => {
    const { ks } = await world({ limits: { user: { quota: { limit: 100, refill: 'month' } } } });
    const given = await ks.keys.create({ ownerId: 'u1', name: 'd', level: 'user' });
    const none = await ks.keys.create({ ownerId: 'u1', name: 'n', level: 'user', quota: null });
    const own = await ks.keys.create({ ownerId: 'u1', name: 'o', level: 'user', quota: { limit: 5 } });
    const project = await ks.keys.create({ ownerId: 'u1', name: 'p', level: 'project', projectId: 'proj_a' });
    expect(given.record.quota).toEqual({ limit: 100, remaining: 100, refill: 'month', resetAt: new Date(Date.UTC(2026, 11, 1)) });
    expect(none.record.quota).toBeNull();
    expect(own.record.quota).toMatchObject({ limit: 5, remaining: 5, refill: null, resetAt: null });
    expect(project.record.quota).toBeNull();
  });

  it('a stacked second middleware reuses the decision: counted once', async () => {
    const { ks } = await world();
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', rateLimit: { limit: 1, windowMs: MINUTE } });
    const request = {};
    const input = { headers: { 'x-api-key': key }, path: '/validate', request };
    expect(codeOf(await ks.authenticate(input))).toBe('ok');
    expect(codeOf(await ks.authenticate(input))).toBe('ok');
    expect(codeOf(await ks.authenticate({ ...input, request: {} }))).toBe('rate_limited');
  });

  it('a store whose quota count fails answers 503 and tells onEvent, never a pass', async () => {
    const store = new MemoryStore();
    const { ks, events } = await world({}, store);
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', quota: { limit: 5 } });
    store.consumeQuota = () => Promise.reject(new Error('database unreachable'));
    const r = await ask(ks, key, 'proj_a');
    expect(r.ok ? 'ok' : [r.error.status, r.error.code]).toEqual([503, 'auth_unavailable']);
    expect(events).toContainEqual({ type: 'limit_error', operation: 'consumeQuota', keyId: record.id, error: expect.any(Error) });
  });

  it('a quota count slower than storeTimeoutMs answers 503', async () => {
    const store = new MemoryStore();
    const { ks } = await world({ storeTimeoutMs: 50 }, store);
    const { key } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', quota: { limit: 5 } });
    store.consumeQuota = () => new Promise(() => {});
    expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('auth_unavailable');
  });

  it('a custom limiter that throws answers 503; one that answers asynchronously is awaited', async () => {
    const throwing: RateLimiter = { take: () => { throw new Error('limiter down'); } };
    const a = await world({ limits: { limiter: throwing } });
    const k1 = await a.ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', rateLimit: { limit: 5, windowMs: MINUTE } });
    expect(codeOf(await ask(a.ks, k1.key, 'proj_a'))).toBe('auth_unavailable');
    expect(a.events.some((e) => e.type === 'limit_error' && e.operation === 'rateLimit')).toBe(true);

    const seen: string[] = [];
    const asynchronous: RateLimiter = { take: async (keyId) => (seen.push(keyId), { allowed: false, remaining: 0, resetSeconds: 9, retryAfterSeconds: 7 }) };
    const b = await world({ limits: { limiter: asynchronous } });
    const k2 = await b.ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', rateLimit: { limit: 5, windowMs: MINUTE } });
    const r = await ask(b.ks, k2.key, 'proj_a');
    expect(r.ok ? 'ok' : r.error.headers['Retry-After']).toBe('7');
    expect(seen).toEqual([k2.record.id]);
  });
});

describe('keys.setLimits and the limits of keys.create', () => {
  it('applies from the next request, on a cached key too; null removes', async () => {
    const { ks } = await world();
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user' });
    expect((await ask(ks, key, 'proj_a')).ok).toBe(true); // cached now, without limits
    const info = await ks.keys.setLimits(record.id, { rateLimit: { limit: 1, windowMs: MINUTE } });
    expect(info.rateLimit).toEqual({ limit: 1, windowMs: MINUTE });
    expect([await ask(ks, key, 'proj_a'), await ask(ks, key, 'proj_a')].map(codeOf)).toEqual(['ok', 'rate_limited']);
    await ks.keys.setLimits(record.id, { quota: { limit: 3, remaining: 1 } });
    expect((await ks.keys.get(record.id))).toMatchObject({ rateLimit: { limit: 1, windowMs: MINUTE }, quota: { limit: 3, remaining: 1, refill: null } });
    await ks.keys.setLimits(record.id, { rateLimit: null, quota: null });
    for (let i = 0; i < 3; i++) expect(await ask(ks, key, 'proj_a')).toEqual({ ok: true, auth: expect.any(Object) });
  });

  it.each([
    [{ rateLimit: { limit: 0, windowMs: MINUTE } }, /rateLimit\.limit/],
    [{ rateLimit: { limit: 1.5, windowMs: MINUTE } }, /rateLimit\.limit/],
    [{ rateLimit: { limit: 10, windowMs: 999 } }, /rateLimit\.windowMs/],
    [{ rateLimit: { limit: 10 } }, /rateLimit\.windowMs/],
    [{ rateLimit: 'fast' }, /rateLimit must be/],
    [{ quota: { limit: -1 } }, /quota\.limit/],
    [{ quota: { limit: 10, remaining: -1 } }, /quota\.remaining/],
    [{ quota: { limit: 10, refill: 'week' } }, /quota\.refill/],
    [{ quota: 5 }, /quota must be/],
    [{ quota: { limit: 10, remaining: 11 } }, /quota\.remaining/],
    [{ quota: { limit: 1_000_000_000_000_000 } }, /quota\.limit/],
    [{ rateLimit: { limit: 1_000_000_001, windowMs: MINUTE } }, /rateLimit\.limit/],
  ])('refuses %j with invalid_argument naming the field, and stores nothing', async (limits, message) => {
    const { ks, store } = await world();
    await expect(ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', ...(limits as object) })).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(message) });
    expect(await store.listKeys('u1')).toEqual([]);
    const { record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user' });
    await expect(ks.keys.setLimits(record.id, limits as never)).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(message) });
    expect((await store.getKey(record.id))).toMatchObject({ rateLimit: null, quota: null });
  });

  it('setLimits: not_found for an unknown key or another owner\'s (forOwner)', async () => {
    const { ks } = await world();
    const theirs = await ks.keys.create({ ownerId: 'u2', name: 'k', level: 'user' });
    await expect(ks.keys.setLimits('key_nope', { quota: null })).rejects.toMatchObject({ code: 'not_found' });
    await expect(ks.keys.forOwner('u1').setLimits(theirs.record.id, { quota: { limit: 1 } })).rejects.toMatchObject({ code: 'not_found' });
    expect((await ks.keys.get(theirs.record.id))?.quota).toBeNull();
  });

  it('rotation carries the limits over, and the quota where it stands (no fresh allowance)', async () => {
    const { ks } = await world();
    const { key, record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', rateLimit: { limit: 5, windowMs: MINUTE }, quota: { limit: 10, refill: 'day' } });
    for (let i = 0; i < 4; i++) expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('ok');
    const rotated = await ks.keys.rotate(record.id);
    expect(rotated.record).toMatchObject({ rateLimit: { limit: 5, windowMs: MINUTE }, quota: { limit: 10, remaining: 6, refill: 'day' } });
  });

  it('a rotated key and the key it replaced count as one: one quota, one rate-limit count, one set of limits', async () => {
    const { ks } = await world();
    const { key: oldKey, record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', rateLimit: { limit: 4, windowMs: MINUTE }, quota: { limit: 6 } });
    expect(codeOf(await ask(ks, oldKey, 'proj_a'))).toBe('ok');
    const { key: newKey, record: rotated } = await ks.keys.rotate(record.id, { gracePeriodMs: 3_600_000 });
    expect(rotated.limitsFrom).toBe(record.id);
    // Both keys work during the grace period, on one allowance of 4 (one spent already).
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push(codeOf(await ask(ks, i % 2 ? oldKey : newKey, 'proj_a')));
    expect(codes).toEqual(['ok', 'ok', 'ok']);
    expect(codeOf(await ask(ks, newKey, 'proj_a'))).toBe('rate_limited');
    expect(codeOf(await ask(ks, oldKey, 'proj_a'))).toBe('rate_limited');
    // The quota counted 4 of 6 on the line's first key; lists show it on both.
    for (const id of [record.id, rotated.id]) expect((await ks.keys.get(id))?.quota).toMatchObject({ limit: 6, remaining: 2 });
    expect((await ks.keys.list('u1')).map((k) => k.quota?.remaining)).toEqual([2, 2]);
    // Limits changed on the new key change the old one's too.
    await ks.keys.setLimits(rotated.id, { rateLimit: null, quota: { limit: 3, remaining: 1 } });
    expect((await ks.keys.get(record.id))).toMatchObject({ rateLimit: null, quota: { limit: 3, remaining: 1 } });
    expect([await ask(ks, oldKey, 'proj_a'), await ask(ks, newKey, 'proj_a')].map(codeOf)).toEqual(['ok', 'quota_exhausted']);
    // Rotating again keeps the same line.
    const again = await ks.keys.rotate(rotated.id, { gracePeriodMs: 3_600_000 });
    expect(again.record.limitsFrom).toBe(record.id);
    // What it returns is the line's count as it stands, not the rotated key's stale copy.
    expect(again.record.quota).toMatchObject({ limit: 3, remaining: 0 });
    expect(codeOf(await ask(ks, again.key, 'proj_a'))).toBe('quota_exhausted');
  });

  it('a store that cannot count quotas: a key with a quota is refused at creation, not silently unlimited', async () => {
    const memory = new MemoryStore();
    const { consumeQuota: _c, setKeyLimits: _s, ...rest } = Object.fromEntries(
      Object.getOwnPropertyNames(MemoryStore.prototype).filter((n) => n !== 'constructor').map((n) => [n, (memory as never as Record<string, (...a: unknown[]) => unknown>)[n]!.bind(memory)]),
    );
    const store = rest as unknown as KeyAdminStore;
    const ks = createKeyscope({ store, usage: false });
    await expect(ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user', quota: { limit: 5 } })).rejects.toThrow(/consumeQuota/);
    const { record } = await ks.keys.create({ ownerId: 'u1', name: 'k', level: 'user' });
    await expect(ks.keys.setLimits(record.id, { rateLimit: { limit: 1, windowMs: MINUTE } })).rejects.toThrow(/setKeyLimits/);
  });

  it('a record with a quota from a store without consumeQuota is refused with 503, never passed', async () => {
    const memory = new MemoryStore();
    memory.addProject({ id: 'proj_a', ownerId: 'u1', name: 'A' });
    const admin = createKeyscope({ store: memory, usage: false });
    const { key } = await admin.keys.create({ ownerId: 'u1', name: 'k', level: 'user', quota: { limit: 5 } });
    const readOnly = { findKeyByHash: (h: string) => memory.findKeyByHash(h), ownsProject: (o: string, p: string) => memory.ownsProject(o, p), listProjects: (o: string) => memory.listProjects(o) };
    const ks = createKeyscope({ store: readOnly });
    expect(codeOf(await ask(ks, key, 'proj_a'))).toBe('auth_unavailable');
  });
});

describe('options.limits', () => {
  it.each([
    [{ user: { rateLimit: { limit: 0, windowMs: MINUTE } } }, /options\.limits\.user\.rateLimit\.limit/],
    [{ project: { rateLimit: { limit: 5, windowMs: 10 } } }, /options\.limits\.project\.rateLimit\.windowMs/],
    [{ user: { quota: { limit: 5, refill: 'year' } } }, /options\.limits\.user\.quota\.refill/],
    [{ user: { rateLimit: { limit: 1_000_000_001, windowMs: MINUTE } } }, /options\.limits\.user\.rateLimit\.limit must be ≤ 1000000000/],
    [{ user: { rateLimit: { limit: 5, windowMs: 400 * 86_400_000 } } }, /options\.limits\.user\.rateLimit\.windowMs must be ≤/],
    [{ project: { quota: { limit: 2 ** 53 - 1 } } }, /options\.limits\.project\.quota\.limit must be ≤ 999999999999999/],
    [{ limiter: {} }, /options\.limits\.limiter/],
    [5, /options\.limits must be/],
  ])('%j throws at setup, naming the option', (limits, message) => {
    expect(() => createKeyscope({ store: new MemoryStore(), limits: limits as never })).toThrow(message);
  });

  it('is not modified', () => {
    const limits = Object.freeze({ user: Object.freeze({ rateLimit: Object.freeze({ limit: 5, windowMs: MINUTE }) }) });
    expect(() => createKeyscope({ store: new MemoryStore(), limits })).not.toThrow();
  });
});
