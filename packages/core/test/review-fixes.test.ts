/**
 * The classes an outside review found in the core: project keys outliving their project's
 * ownership, made-up keys and project ids evicting real cache entries, project writes not
 * reaching the caches, and a throttle that one-off failures could reset.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createKeyscope, generateKey, MemoryStore, type AuthResult, type Project, type ProjectDirectory } from '../src/index.js';
import { throttleClient } from '../src/throttle.js';
import { headers, setup } from './helpers.js';

const code = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);
const sites = (key: string, projectId?: string) => ({ headers: headers(key, projectId), path: '/sites' });

describe('a project key whose owner no longer owns its project is refused (403 project_forbidden)', () => {
  it('after the project moves to another owner through the store: on the very next request, though cached', async () => {
    const { ks, store, project } = await setup();
    expect(code(await ks.authenticate(sites(project.key)))).toBe('ok');
    expect(code(await ks.authenticate(sites(project.key, 'proj_alpha')))).toBe('ok');
    store.addProject({ id: 'proj_alpha', ownerId: 'other-user', name: 'Alpha' });
    expect(code(await ks.authenticate(sites(project.key)))).toBe('project_forbidden');
    expect(code(await ks.authenticate(sites(project.key, 'proj_alpha')))).toBe('project_forbidden');
    expect(code(await ks.authenticate({ headers: headers(project.key), path: '/validate' }))).toBe('project_forbidden');
    // Moved back: it works again, at once.
    store.addProject({ id: 'proj_alpha', ownerId: 'demo-user', name: 'Alpha' });
    expect(code(await ks.authenticate(sites(project.key)))).toBe('ok');
  });

  it('after the project is deleted', async () => {
    const { ks, store, project } = await setup();
    expect(code(await ks.authenticate(sites(project.key)))).toBe('ok');
    expect(store.removeProject('proj_alpha')).toBe(true);
    expect(code(await ks.authenticate(sites(project.key)))).toBe('project_forbidden');
  });

  it("with the app's own project directory: within the cache TTL, or at once after invalidateProject", async () => {
    let clock = Date.now();
    const owners = new Map([['proj_alpha', 'demo-user']]);
    const directory: ProjectDirectory = {
      ownsProject: (ownerId, projectId) => owners.get(projectId) === ownerId,
      listProjects: (ownerId) => [...owners].filter(([, o]) => o === ownerId).map(([id]): Project => ({ id, ownerId, name: id })),
    };
    const ks = createKeyscope({ store: new MemoryStore(), projects: directory, usage: false, now: () => clock, cache: { ttlMs: 1_000 } });
    const { key } = await ks.keys.create({ ownerId: 'demo-user', name: 'p', level: 'project', projectId: 'proj_alpha' });
    expect(code(await ks.authenticate(sites(key)))).toBe('ok');
    owners.set('proj_alpha', 'someone-else');
    // The ownership answer is cached like a user key's: the app tells keyscope, or the TTL ends.
    ks.invalidateProject('proj_alpha');
    expect(code(await ks.authenticate(sites(key)))).toBe('project_forbidden');
    owners.set('proj_alpha', 'demo-user');
    ks.invalidateProject('proj_alpha');
    expect(code(await ks.authenticate(sites(key)))).toBe('ok');
    owners.delete('proj_alpha');
    clock += 1_001;
    expect(code(await ks.authenticate(sites(key)))).toBe('project_forbidden');
  });

  it('the ownership check of a project key is cached: a warm request makes no directory call', async () => {
    const { ks, store, project } = await setup();
    await ks.authenticate(sites(project.key));
    const calls = store.ownsCalls;
    for (let i = 0; i < 5; i++) expect(code(await ks.authenticate(sites(project.key)))).toBe('ok');
    expect(store.ownsCalls).toBe(calls);
  });

  it('a directory that fails while checking a project key answers 503, never a pass', async () => {
    const { ks, store, project } = await setup();
    store.mode = 'throw';
    const result = await ks.authenticate(sites(project.key));
    expect(!result.ok && result.error.status).toBe(503);
  });

  it('rotate refuses such a key, and issues nothing', async () => {
    const { ks, store, project } = await setup();
    store.addProject({ id: 'proj_alpha', ownerId: 'other-user', name: 'Alpha' });
    await expect(ks.keys.rotate(project.record.id)).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringContaining('no longer owns') });
    store.removeProject('proj_alpha');
    await expect(ks.keys.rotate(project.record.id)).rejects.toMatchObject({ code: 'invalid_argument' });
    expect((await ks.keys.list('demo-user')).filter((k) => k.level === 'project')).toHaveLength(1);
  });
});

describe('made-up keys and project ids never push real entries out of the caches', () => {
  it('a flood of checksum-valid unknown keys, far more than the cache holds, leaves a warm key warm', async () => {
    const { ks, store, user } = await setup({ cache: { max: 10, negativeMax: 5 } });
    await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    for (let i = 0; i < 500; i++) await ks.authenticate({ headers: headers(generateKey()), path: '/validate' });
    const calls = store.findCalls;
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('ok');
    expect(store.findCalls).toBe(calls);
  });

  it('ten real keys stay cached beside the flood (max is for real keys)', async () => {
    const { ks, store } = await setup({ cache: { max: 10, negativeMax: 3 } });
    const real = [];
    for (let i = 0; i < 10; i++) real.push((await ks.keys.create({ ownerId: 'demo-user', name: `k${i}`, level: 'user' })).key);
    for (const key of real) await ks.authenticate({ headers: headers(key), path: '/validate' });
    for (let i = 0; i < 200; i++) await ks.authenticate({ headers: headers(generateKey()), path: '/validate' });
    const calls = store.findCalls;
    for (const key of real) expect(code(await ks.authenticate({ headers: headers(key), path: '/validate' }))).toBe('ok');
    expect(store.findCalls).toBe(calls);
  });

  it('unknown keys are still remembered, within their own bound', async () => {
    const { ks, store } = await setup({ cache: { negativeMax: 2 } });
    const unknown = generateKey();
    await ks.authenticate({ headers: headers(unknown), path: '/validate' });
    await ks.authenticate({ headers: headers(unknown), path: '/validate' });
    expect(store.findCalls).toBe(1);
  });

  it('a user key probing made-up project ids does not evict its owned projects', async () => {
    const { ks, store, user } = await setup({ cache: { max: 10, negativeMax: 5 } });
    await ks.authenticate(sites(user.key, 'proj_alpha'));
    for (let i = 0; i < 200; i++) expect(code(await ks.authenticate(sites(user.key, `proj_made_up_${i}`)))).toBe('project_forbidden');
    const calls = store.ownsCalls;
    expect(code(await ks.authenticate(sites(user.key, 'proj_alpha')))).toBe('ok');
    expect(store.ownsCalls).toBe(calls);
  });

  it('negativeMax is checked like every option', () => {
    expect(() => createKeyscope({ store: new MemoryStore(), cache: { negativeMax: 0 } })).toThrow(RangeError);
    expect(() => createKeyscope({ store: new MemoryStore(), cache: { negativeMax: 1.5 } })).toThrow(/options\.cache\.negativeMax/);
  });
});

describe('changes made through the store reach every keyscope on it at once', () => {
  it('a project moved with store.addProject: a user key is refused at once, though the answer was cached', async () => {
    const { ks, store, user } = await setup();
    expect(code(await ks.authenticate(sites(user.key, 'proj_beta')))).toBe('ok');
    store.addProject({ id: 'proj_beta', ownerId: 'other-user', name: 'Beta' });
    expect(code(await ks.authenticate(sites(user.key, 'proj_beta')))).toBe('project_forbidden');
  });

  it('a project created after a "not owned" answer works at once', async () => {
    const { ks, store, user } = await setup();
    expect(code(await ks.authenticate(sites(user.key, 'proj_new')))).toBe('project_forbidden');
    store.addProject({ id: 'proj_new', ownerId: 'demo-user', name: 'New' });
    expect(code(await ks.authenticate(sites(user.key, 'proj_new')))).toBe('ok');
  });

  it('a revocation made through one keyscope reaches another on the same store at once', async () => {
    const { ks, store, user } = await setup();
    const other = createKeyscope({ store, usage: false });
    expect(code(await other.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('ok');
    await ks.keys.revoke(user.record.id);
    expect(code(await other.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('invalid_api_key');
  });

  it('a rotation grace set through one keyscope reaches another at once', async () => {
    let clock = Date.now();
    const { ks, store, user } = await setup({ now: () => clock });
    const other = createKeyscope({ store, usage: false, now: () => clock });
    expect(code(await other.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('ok');
    await ks.keys.rotate(user.record.id, { gracePeriodMs: 1_000 });
    clock += 1_000;
    expect(code(await other.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('invalid_api_key');
  });

  it('a project directory of your own that reports changes is listened to, and close() stops listening', async () => {
    const listeners = new Set<(change?: { kind: 'project'; projectId: string }) => void>();
    let owner = 'demo-user';
    const directory: ProjectDirectory = {
      ownsProject: (ownerId) => ownerId === owner,
      listProjects: () => [],
      subscribe: (listener) => (listeners.add(listener), () => void listeners.delete(listener)),
    };
    const ks = createKeyscope({ store: new MemoryStore(), projects: directory, usage: false });
    const { key } = await ks.keys.create({ ownerId: 'demo-user', name: 'u', level: 'user' });
    expect(code(await ks.authenticate(sites(key, 'proj_x')))).toBe('ok');
    owner = 'else';
    for (const listener of listeners) listener({ kind: 'project', projectId: 'proj_x' });
    expect(code(await ks.authenticate(sites(key, 'proj_x')))).toBe('project_forbidden');
    await ks.close();
    expect(listeners.size).toBe(0);
  });
});

describe('rotation grace periods', () => {
  it('refuses a grace period that ends past the last representable date (it would store no expiry)', async () => {
    const { ks, user } = await setup();
    await expect(ks.keys.rotate(user.record.id, { gracePeriodMs: 100_000_000 * 86_400_000 })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(ks.keys.rotate(user.record.id, { gracePeriodMs: 8.64e15 })).rejects.toMatchObject({ code: 'invalid_argument' });
    // Nothing was issued, and the old key still works.
    expect(await ks.keys.list('demo-user')).toHaveLength(2);
  });
});

describe('failed-attempt throttle', () => {
  afterEach(() => vi.restoreAllMocks());

  it('counts IPv6 clients per /64: 10,000 addresses of one network are one client', async () => {
    const { ks } = await setup({ throttle: { maxFailures: 5, windowMs: 60_000 } });
    let last: AuthResult | undefined;
    for (let i = 0; i < 10_000; i++) {
      last = await ks.authenticate({ headers: headers('garbage'), path: '/validate', clientIp: `2001:db8:7:9:${(i >> 8).toString(16)}:${(i & 0xff).toString(16)}::1` });
    }
    expect(!last!.ok && last!.error.status).toBe(429);
    // Another /64 is another client.
    const other = await ks.authenticate({ headers: headers('garbage'), path: '/validate', clientIp: '2001:db8:7:a::1' });
    expect(!other.ok && other.error.status).toBe(401);
  });

  it('one-off failures from other addresses do not reset a client while the table has room; maxClients sets the room', async () => {
    const { ks } = await setup({ throttle: { maxFailures: 3, windowMs: 60_000, maxClients: 20_000 } });
    for (let i = 0; i < 3; i++) await ks.authenticate({ headers: headers('garbage'), path: '/validate', clientIp: '198.51.100.7' });
    for (let i = 0; i < 10_000; i++) {
      await ks.authenticate({ headers: headers('garbage'), path: '/validate', clientIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` });
    }
    const attacker = await ks.authenticate({ headers: headers('garbage'), path: '/validate', clientIp: '198.51.100.7' });
    expect(!attacker.ok && attacker.error.status).toBe(429);
    expect(() => createKeyscope({ store: new MemoryStore(), throttle: { maxFailures: 1, windowMs: 1, maxClients: 0 } })).toThrow(/options\.throttle\.maxClients/);
  });

  it('an IPv4-mapped IPv6 address is the IPv4 client', async () => {
    const { ks } = await setup({ throttle: { maxFailures: 2, windowMs: 60_000 } });
    await ks.authenticate({ headers: headers('garbage'), path: '/validate', clientIp: '192.0.2.1' });
    await ks.authenticate({ headers: headers('garbage'), path: '/validate', clientIp: '::ffff:192.0.2.1' });
    const third = await ks.authenticate({ headers: headers('garbage'), path: '/validate', clientIp: '::FFFF:c000:201' });
    expect(!third.ok && third.error.status).toBe(429);
  });

  it.each([
    ['2001:db8:1:2:aaaa::1', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['203.0.113.9', '203.0.113.9'],
    ['not:an::address::', 'not:an::address::'],
  ])('throttleClient(%s) is %s', (address, client) => {
    expect(throttleClient(address)).toBe(client);
  });

  it('warns once when the throttle is on but requests carry no client address', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const { ks } = await setup({ throttle: { maxFailures: 1, windowMs: 60_000 } });
    expect(ks.needsClientAddress).toBe(true);
    for (let i = 0; i < 3; i++) await ks.authenticate({ headers: headers('garbage'), path: '/validate' });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/clientIp/);
    expect((await setup()).ks.needsClientAddress).toBe(false);
  });
});

describe('a broken store row never widens a key', () => {
  it('a project-level record without a project is refused, not taken for a user key', async () => {
    const store = new MemoryStore();
    store.addProject({ id: 'proj_alpha', ownerId: 'demo-user', name: 'Alpha' });
    const ks = createKeyscope({ store, usage: false });
    const { key, record } = await ks.keys.create({ ownerId: 'demo-user', name: 'p', level: 'project', projectId: 'proj_alpha' });
    const find = store.findKeyByHash.bind(store);
    store.findKeyByHash = async (hash) => {
      const found = await find(hash);
      return found && found.id === record.id ? { ...found, projectId: null } : found;
    };
    for (const path of ['/sites', '/validate']) {
      expect(code(await ks.authenticate({ headers: headers(key, 'proj_alpha'), path }))).toBe('invalid_api_key');
      expect(code(await ks.authenticate({ headers: headers(key), path }))).toBe('invalid_api_key');
    }
  });
});
