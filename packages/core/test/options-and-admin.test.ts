import { describe, expect, it } from 'vitest';
import { createKeyscope, dateFromEpoch, MemoryStore, narrowsFindKeyByHash, wholeNumberOption, type KeyscopeEvent, type KeyscopeOptions } from '../src/index.js';
import { headers, setup } from './helpers.js';

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

describe('options', () => {
  const store = new MemoryStore();
  it.each<[string, Partial<KeyscopeOptions> | null, RegExp, typeof TypeError | typeof RangeError]>([
    ['no options', null, /options must be an object/, TypeError],
    ['no store', { store: undefined as never }, /options\.store/, TypeError],
    ['a store without findKeyByHash', { store: {} as never }, /options\.store/, TypeError],
    ['a findKeyForAuth that is not a function', { store: Object.assign(new MemoryStore(), { findKeyForAuth: 'yes' }) as never }, /options\.store\.findKeyForAuth/, TypeError],
    ['bad projects', { projects: {} as never }, /options\.projects/, TypeError],
    ['bad prefix', { keyPrefix: 'K_S' }, /options\.keyPrefix/, TypeError],
    ['bad header', { header: 'x api key' }, /options\.header/, TypeError],
    ['bad project header', { projectHeader: '' }, /options\.projectHeader/, TypeError],
    ['relative optional path', { projectOptionalPaths: ['validate'] }, /options\.projectOptionalPaths/, TypeError],
    ['optional paths not an array', { projectOptionalPaths: '/validate' as never }, /options\.projectOptionalPaths/, TypeError],
    ['cache.max 0', { cache: { max: 0 } }, /options\.cache\.max/, RangeError],
    ['fractional ttl', { cache: { ttlMs: 1.5 } }, /options\.cache\.ttlMs/, TypeError],
    ['negative negative ttl', { cache: { negativeTtlMs: -1 } }, /options\.cache\.negativeTtlMs/, RangeError],
    ['zero store timeout', { storeTimeoutMs: 0 }, /options\.storeTimeoutMs/, RangeError],
    ['string retry', { retryAfterSeconds: '5' as never }, /options\.retryAfterSeconds/, TypeError],
    ['quoted realm', { realm: 'a"b' }, /options\.realm/, TypeError],
    ['throttle without max', { throttle: { windowMs: 1000 } as never }, /options\.throttle\.maxFailures/, TypeError],
    ['usage interval 0', { usage: { flushIntervalMs: 0 } }, /options\.usage\.flushIntervalMs/, RangeError],
    ['clock not a function', { now: 5 as never }, /options\.now/, TypeError],
  ])('%s throws at setup, naming the option', (_, partial, message, type) => {
    const options = partial === null ? (null as never) : { store, ...partial };
    expect(() => createKeyscope(options)).toThrow(type);
    expect(() => createKeyscope(options)).toThrow(message);
  });

  it('never mutates the options passed in', async () => {
    const parts = deepFreeze({
      projectOptionalPaths: ['/validate'],
      cache: { max: 10, ttlMs: 1000, negativeTtlMs: 10 },
      throttle: { maxFailures: 3, windowMs: 1000 },
      usage: { flushIntervalMs: 50 },
    });
    const snapshot = structuredClone(parts);
    // Frozen parts make any write throw (modules run in strict mode); the snapshot catches the rest.
    const ks = createKeyscope({ store: new MemoryStore(), ...parts });
    await ks.authenticate({ headers: {}, path: '/validate', clientIp: '10.0.0.1' });
    await ks.close();
    expect(parts).toEqual(snapshot);
  });
});

describe('keys.create rejects bad input with invalid_argument', () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['a project key without projectId', { level: 'project' }, /needs a projectId/],
    ['a project key for a project its owner does not own', { level: 'project', projectId: 'proj_gamma' }, /not a project of owner/],
    ['a project key for an unknown project', { level: 'project', projectId: 'proj_nope' }, /not a project of owner/],
    ['a user key with a projectId', { level: 'user', projectId: 'proj_alpha' }, /leave projectId out/],
    ['an empty name', { level: 'user', name: '   ' }, /name must not be empty/],
    ['a 65-character name', { level: 'user', name: 'n'.repeat(65) }, /at most 64 characters/],
    ['a name with a newline', { level: 'user', name: 'a\nb' }, /control characters/],
    ['an unknown level', { level: 'admin' }, /level must be 'user' or 'project'/],
    ['an expiry in the past', { level: 'user', expiresAt: new Date(Date.now() - 1000) }, /in the past/],
    ['an invalid date', { level: 'user', expiresAt: new Date('nope') }, /valid Date/],
    ['a bad owner id', { level: 'user', ownerId: '' }, /ownerId/],
  ])('%s', async (_, input, message) => {
    const { ks, store } = await setup();
    const before = (await store.listKeys('demo-user')).length;
    const attempt = ks.keys.create({ ownerId: 'demo-user', name: 'k', ...input } as never);
    await expect(attempt).rejects.toMatchObject({ name: 'KeyscopeError', code: 'invalid_argument', status: 400 });
    await expect(ks.keys.create({ ownerId: 'demo-user', name: 'k', ...input } as never)).rejects.toThrow(message);
    expect((await store.listKeys('demo-user')).length).toBe(before);
  });

  it('accepts a 64-character name and an expiry in the future', async () => {
    const { ks } = await setup();
    const { record } = await ks.keys.create({ ownerId: 'demo-user', name: 'n'.repeat(64), level: 'user', expiresAt: new Date(Date.now() + 60_000) });
    expect(record.name).toHaveLength(64);
  });
});

describe('key administration', () => {
  it('stores only the hash; the plaintext exists only in the create result', async () => {
    const { ks, store, user, project } = await setup();
    const stored = await store.getKey(user.record.id);
    expect(JSON.stringify(stored)).not.toContain(user.key);
    expect(user.record).not.toHaveProperty('hash');
    expect(user.record.start).toBe(user.key.slice(0, 7));
    const listed = await ks.keys.list('demo-user');
    expect(listed.map((k) => k.id).sort()).toEqual([user.record.id, project.record.id].sort());
    for (const record of listed) expect(record).not.toHaveProperty('hash');
    expect(JSON.stringify(listed)).not.toContain(user.key);
  });

  it('lists keys oldest first, whatever order the store received them in', async () => {
    const store = new MemoryStore();
    const record = (id: string, createdAt: number) => ({
      id, name: id, ownerId: 'o', level: 'user' as const, projectId: null, hash: id.padEnd(64, '0'), start: 'ks_x',
      createdAt: new Date(createdAt), expiresAt: null, revokedAt: null, lastUsedAt: null,
    });
    await store.createKey(record('key_b', 2_000));
    await store.createKey(record('key_a', 1_000));
    const ks = createKeyscope({ store, usage: false });
    expect((await ks.keys.list('o')).map((k) => k.id)).toEqual(['key_a', 'key_b']);
  });

  it('get returns null and revoke/usage throw not_found for an unknown id', async () => {
    const { ks } = await setup();
    expect(await ks.keys.get('key_nope')).toBeNull();
    await expect(ks.keys.revoke('key_nope')).rejects.toMatchObject({ code: 'not_found' });
    await expect(ks.keys.usage('key_nope')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('revoking twice keeps the first revocation time', async () => {
    const { ks, user } = await setup();
    const first = await ks.keys.revoke(user.record.id);
    await new Promise((r) => setTimeout(r, 5));
    const second = await ks.keys.revoke(user.record.id);
    expect(second.revokedAt).toEqual(first.revokedAt);
  });

  it('a read-only store authenticates but refuses administration with a TypeError', async () => {
    const { store, user } = await setup();
    const readOnly = {
      findKeyByHash: store.findKeyByHash.bind(store),
      ownsProject: store.ownsProject.bind(store),
      listProjects: store.listProjects.bind(store),
    };
    const ks = createKeyscope({ store: readOnly });
    expect((await ks.authenticate({ headers: headers(user.key), path: '/validate' })).ok).toBe(true);
    await expect(ks.keys.create({ ownerId: 'demo-user', name: 'x', level: 'user' })).rejects.toThrow(/does not implement createKey/);
  });

  it('a store with findKeyForAuth: a cache miss reads that instead once it says which findKeyByHash it narrows, and its failure is a 503 told as findKeyByHash', async () => {
    const { store, user } = await setup();
    let failing = false;
    const reads: string[] = [];
    const narrow = {
      findKeyByHash: (hash: string) => (reads.push('full'), store.findKeyByHash(hash)),
      // The decision's fields only, as a store's narrower read gives them.
      async findKeyForAuth(hash: string) {
        reads.push('auth');
        if (failing) throw new Error('store unreachable');
        const record = await store.findKeyByHash(hash);
        return record && { id: record.id, name: record.name, ownerId: record.ownerId, level: record.level, projectId: record.projectId, expiresAt: record.expiresAt, revokedAt: record.revokedAt, rateLimit: null, quota: null, limitsFrom: null };
      },
      ownsProject: store.ownsProject.bind(store),
      listProjects: store.listProjects.bind(store),
    };
    // Not said to narrow this findKeyByHash: never called.
    const unmarked = createKeyscope({ store: narrow, usage: false });
    expect((await unmarked.authenticate({ headers: headers(user.key), path: '/validate' })).ok).toBe(true);
    expect(reads).toEqual(['full']);
    reads.length = 0;
    narrowsFindKeyByHash(narrow.findKeyForAuth, narrow.findKeyByHash);
    const events: KeyscopeEvent[] = [];
    const ks = createKeyscope({ store: narrow, usage: false, onEvent: (event) => events.push(event) });
    const first = await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    expect(first.ok && first.auth).toMatchObject({ keyId: user.record.id, ownerId: 'demo-user', level: 'user' });
    expect(reads).toEqual(['auth']);
    ks.invalidate();
    failing = true;
    const down = await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    expect(!down.ok && down.error.status).toBe(503);
    expect(events).toContainEqual({ type: 'store_error', operation: 'findKeyByHash', error: expect.any(Error) });
    expect(reads).toEqual(['auth', 'auth']);
  });

  it('a custom project directory replaces the store for ownership', async () => {
    const { store, user } = await setup();
    const ks = createKeyscope({
      store,
      usage: false,
      projects: { ownsProject: (owner, project) => owner === 'demo-user' && project === 'elsewhere-1', listProjects: () => [] },
    });
    const ok = await ks.authenticate({ headers: headers(user.key, 'elsewhere-1'), path: '/sites' });
    expect(ok.ok && ok.auth.projectId).toBe('elsewhere-1');
    const refused = await ks.authenticate({ headers: headers(user.key, 'proj_alpha'), path: '/sites' });
    expect(!refused.ok && refused.error.code).toBe('project_forbidden');
  });
});

describe('helpers shared with stores and adapters', () => {
  it('wholeNumberOption names the option in a TypeError or RangeError', () => {
    expect(wholeNumberOption(5, 'options.x', 1)).toBe(5);
    expect(() => wholeNumberOption(1.5, 'options.x', 1)).toThrow(new TypeError('options.x must be a whole number, got 1.5'));
    expect(() => wholeNumberOption('5', 'options.x', 1)).toThrow(TypeError);
    expect(() => wholeNumberOption(0, 'options.x', 1)).toThrow(new RangeError('options.x must be ≥ 1, got 0'));
  });

  it('dateFromEpoch gives a fresh Date, or null', () => {
    expect(dateFromEpoch(null)).toBeNull();
    const a = dateFromEpoch(1_000)!;
    expect(a.getTime()).toBe(1_000);
    expect(dateFromEpoch(1_000)).not.toBe(a);
  });
});
