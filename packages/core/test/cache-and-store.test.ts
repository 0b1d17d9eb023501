import { describe, expect, it } from 'vitest';
import { generateKey, hashKey, type AuthResult } from '../src/index.js';
import { deferred, headers, setup } from './helpers.js';

const code = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);

describe('cache', () => {
  it("a key's warm project check follows a project moved while its owner's answers were out of the ownership cache", async () => {
    const { ks, store } = await setup({ cache: { max: 2 } });
    store.addProject({ id: 'proj_x', ownerId: 'owner-x', name: 'X' });
    store.addProject({ id: 'proj_y', ownerId: 'owner-y', name: 'Y' });
    const [a, b, c] = await Promise.all(['demo-user', 'owner-x', 'owner-y'].map((ownerId) => ks.keys.create({ ownerId, name: ownerId, level: 'user' })));
    const ask = async (key: string, projectId: string) => code(await ks.authenticate({ headers: headers(key, projectId), path: '/sites' }));
    expect(await ask(a!.key, 'proj_alpha')).toBe('ok');
    expect(await ask(b!.key, 'proj_x')).toBe('ok');
    // Answered from what a's entry holds: the ownership cache is not touched, so demo-user is its oldest owner.
    expect(await ask(a!.key, 'proj_alpha')).toBe('ok');
    // A third owner: b's key and demo-user's answers leave their caches; a's key stays.
    expect(await ask(c!.key, 'proj_y')).toBe('ok');
    const reads = store.findCalls;
    store.addProject({ id: 'proj_alpha', ownerId: 'owner-x', name: 'Alpha' });
    ks.invalidateProject('proj_alpha');
    expect(await ask(a!.key, 'proj_alpha')).toBe('project_forbidden');
    expect(store.findCalls).toBe(reads);
  });

  it('a warm key makes no further store call', async () => {
    const { ks, store, user } = await setup();
    for (let i = 0; i < 5; i++) expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('ok');
    expect(store.findCalls).toBe(1);
  });

  it('100 concurrent misses for one key make one store call', async () => {
    const { ks, store, user } = await setup();
    const gate = deferred();
    store.gate = gate.promise;
    const all = Array.from({ length: 100 }, () => ks.authenticate({ headers: headers(user.key, 'proj_alpha'), path: '/sites' }));
    await new Promise((r) => setTimeout(r, 10));
    gate.resolve();
    const results = await Promise.all(all);
    expect(results.map(code)).toEqual(Array(100).fill('ok'));
    expect(store.findCalls).toBe(1);
    expect(store.ownsCalls).toBe(1);
  });

  it('unknown keys are cached briefly (negative TTL), then looked up again', async () => {
    const { ks, store } = await setup({ cache: { negativeTtlMs: 40 } });
    const unknown = generateKey();
    await ks.authenticate({ headers: headers(unknown), path: '/validate' });
    await ks.authenticate({ headers: headers(unknown), path: '/validate' });
    expect(store.findCalls).toBe(1);
    await new Promise((r) => setTimeout(r, 60));
    await ks.authenticate({ headers: headers(unknown), path: '/validate' });
    expect(store.findCalls).toBe(2);
  });

  it('a key created after a negative lookup of another key works at once', async () => {
    const { ks } = await setup();
    await ks.authenticate({ headers: headers(generateKey()), path: '/validate' });
    const fresh = await ks.keys.create({ ownerId: 'demo-user', name: 'fresh', level: 'user' });
    expect(code(await ks.authenticate({ headers: headers(fresh.key), path: '/validate' }))).toBe('ok');
  });

  it('positive entries expire after ttlMs', async () => {
    const { ks, store, user } = await setup({ cache: { ttlMs: 40 } });
    await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    await new Promise((r) => setTimeout(r, 60));
    await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    expect(store.findCalls).toBe(2);
  });

  it('a cached key is refused the moment it expires (TTL capped by expiresAt)', async () => {
    let clock = Date.now();
    const { ks, store } = await setup({ now: () => clock, cache: { ttlMs: 60_000 } });
    const { key } = await ks.keys.create({ ownerId: 'demo-user', name: 'short', level: 'user', expiresAt: new Date(clock + 5_000) });
    expect(code(await ks.authenticate({ headers: headers(key), path: '/validate' }))).toBe('ok');
    clock += 4_999;
    expect(code(await ks.authenticate({ headers: headers(key), path: '/validate' }))).toBe('ok');
    clock += 1;
    expect(code(await ks.authenticate({ headers: headers(key), path: '/validate' }))).toBe('invalid_api_key');
    expect(store.findCalls).toBe(1);
  });

  it('project ownership answers are cached too', async () => {
    const { ks, store, user } = await setup();
    for (let i = 0; i < 3; i++) await ks.authenticate({ headers: headers(user.key, 'proj_beta'), path: '/sites' });
    expect(store.ownsCalls).toBe(1);
  });

  it('the cache is bounded by max', async () => {
    const { ks, store } = await setup({ cache: { max: 2 } });
    const keys = await Promise.all([1, 2, 3].map((n) => ks.keys.create({ ownerId: 'demo-user', name: `k${n}`, level: 'user' })));
    for (const { key } of keys) await ks.authenticate({ headers: headers(key), path: '/validate' });
    store.findCalls = 0;
    await ks.authenticate({ headers: headers(keys[0]!.key), path: '/validate' });
    expect(store.findCalls).toBe(1);
  });
});

describe('revocation and rotation', () => {
  it('revoke takes effect on the next request although the key was cached', async () => {
    const { ks, user } = await setup();
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('ok');
    const revoked = await ks.keys.revoke(user.record.id);
    expect(revoked.revokedAt).toBeInstanceOf(Date);
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('invalid_api_key');
  });

  it('revoke wins the race with a store read in flight when it ran', async () => {
    const { ks, store, user } = await setup();
    const gate = deferred();
    store.gate = gate.promise;
    const before = ks.authenticate({ headers: headers(user.key), path: '/validate' });
    await new Promise((r) => setTimeout(r, 5));
    store.gate = undefined;
    await ks.keys.revoke(user.record.id);
    // The very next request must not join the stale read.
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('invalid_api_key');
    gate.resolve();
    // The request that began before the revoke may pass; its stale answer must not be cached.
    expect(code(await before)).toBe('ok');
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('invalid_api_key');
  });

  it('rotate: the new key works at once; the old one until the grace period ends', async () => {
    let clock = Date.now();
    const { ks, user } = await setup({ now: () => clock });
    await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    const rotated = await ks.keys.rotate(user.record.id, { gracePeriodMs: 60_000 });
    expect(rotated.key).not.toBe(user.key);
    expect(rotated.record).toMatchObject({ name: 'user key', ownerId: 'demo-user', level: 'user', projectId: null });
    expect(code(await ks.authenticate({ headers: headers(rotated.key), path: '/validate' }))).toBe('ok');
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('ok');
    clock += 60_000;
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('invalid_api_key');
    expect(code(await ks.authenticate({ headers: headers(rotated.key), path: '/validate' }))).toBe('ok');
  });

  it('rotate without grace revokes the old key immediately, and keeps a project key on its project', async () => {
    const { ks, project } = await setup();
    const rotated = await ks.keys.rotate(project.record.id);
    expect(code(await ks.authenticate({ headers: headers(project.key), path: '/sites' }))).toBe('invalid_api_key');
    const result = await ks.authenticate({ headers: headers(rotated.key), path: '/sites' });
    expect(result.ok && result.auth.projectId).toBe('proj_alpha');
    expect((await ks.keys.get(project.record.id))?.revokedAt).toBeInstanceOf(Date);
  });

  it('rotate keeps the lifetime of an expiring key and refuses revoked ones', async () => {
    let clock = Date.now();
    const { ks } = await setup({ now: () => clock });
    const k = await ks.keys.create({ ownerId: 'demo-user', name: 'month', level: 'user', expiresAt: new Date(clock + 30 * 86_400_000) });
    clock += 86_400_000;
    const rotated = await ks.keys.rotate(k.record.id);
    expect(rotated.record.expiresAt?.getTime()).toBe(clock + 30 * 86_400_000);
    await expect(ks.keys.rotate(k.record.id)).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(ks.keys.rotate('key_missing')).rejects.toMatchObject({ code: 'not_found', status: 404 });
  });
});

describe('the store failing', () => {
  it('a store that throws answers 503 auth_unavailable with Retry-After, never cached', async () => {
    const { ks, store, user } = await setup();
    store.mode = 'throw';
    const result = await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({ status: 503, code: 'auth_unavailable' });
    expect(result.error.headers).toMatchObject({ 'Retry-After': '5', 'Cache-Control': 'no-store', 'Content-Type': 'application/problem+json' });
    expect(result.error.headers['WWW-Authenticate']).toBeUndefined();
    store.mode = 'ok';
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('ok');
  });

  it('a store slower than storeTimeoutMs answers 503, and the next request tries again', async () => {
    const { ks, store, user } = await setup({ storeTimeoutMs: 30, retryAfterSeconds: 2 });
    store.mode = 'hang';
    const started = Date.now();
    const result = await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(!result.ok && result.error.headers['Retry-After']).toBe('2');
    expect(code(result)).toBe('auth_unavailable');
    store.mode = 'ok';
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('ok');
  });

  it('a failing project lookup is a 503, never a 403 and never a pass', async () => {
    const { ks, store, user } = await setup();
    await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    store.mode = 'throw';
    expect(code(await ks.authenticate({ headers: headers(user.key, 'proj_alpha'), path: '/sites' }))).toBe('auth_unavailable');
  });

  it('a store change notification drops the cache', async () => {
    const { ks, user, store } = await setup();
    let notify: (keyId?: string) => void = () => {};
    const subscribing = Object.assign(Object.create(store), { subscribe: (listener: (keyId?: string) => void) => ((notify = listener), () => {}) });
    const { createKeyscope } = await import('../src/index.js');
    const other = createKeyscope({ store: subscribing, usage: false });
    expect(code(await other.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('ok');
    await store.revokeKey(user.record.id, new Date());
    expect(code(await other.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('ok');
    notify();
    expect(code(await other.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('invalid_api_key');
    expect(hashKey(user.key)).toHaveLength(64);
  });
});
