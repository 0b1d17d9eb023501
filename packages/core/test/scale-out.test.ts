/** What many instances share: an invalidation bus, and a throttle that counts for all of them. */
import { describe, expect, it } from 'vitest';
import {
  createKeyscope,
  generateKey,
  MemoryStore,
  MemoryThrottle,
  type AttemptThrottle,
  type AuthResult,
  type InvalidationBus,
  type KeyAdminStore,
  type KeyscopeEvent,
  type StoreChange,
} from '../src/index.js';
import { headers } from './helpers.js';

const code = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);

/** A store that reports nothing (a shared database without change notifications). */
function silentStore(): KeyAdminStore & { addProject: MemoryStore['addProject'] } {
  const memory = new MemoryStore();
  const store = Object.create(memory) as KeyAdminStore & { addProject: MemoryStore['addProject'] };
  (store as { subscribe?: unknown }).subscribe = undefined;
  return store;
}

/** An in-process bus: what the tests of a real bus (@keyscope/redis) check against a server. */
function localBus(): InvalidationBus & { listeners: Set<(change?: StoreChange) => void>; published: StoreChange[] } {
  const listeners = new Set<(change?: StoreChange) => void>();
  const published: StoreChange[] = [];
  return {
    listeners,
    published,
    publish(change) {
      published.push(change);
      for (const listener of listeners) listener(change);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}

describe('an invalidation bus', () => {
  it('carries a revocation and a rotation to another instance that had the key cached', async () => {
    let clock = Date.now();
    const store = silentStore();
    const bus = localBus();
    const a = createKeyscope({ store, bus, usage: false, now: () => clock });
    const b = createKeyscope({ store, bus, usage: false, now: () => clock });
    const one = await a.keys.create({ ownerId: 'u', name: 'one', level: 'user' });
    const two = await a.keys.create({ ownerId: 'u', name: 'two', level: 'user' });
    for (const key of [one.key, two.key]) expect(code(await b.authenticate({ headers: headers(key), path: '/validate' }))).toBe('ok');
    await a.keys.revoke(one.record.id);
    await a.keys.rotate(two.record.id, { gracePeriodMs: 1_000 });
    expect(code(await b.authenticate({ headers: headers(one.key), path: '/validate' }))).toBe('invalid_api_key');
    clock += 1_000;
    expect(code(await b.authenticate({ headers: headers(two.key), path: '/validate' }))).toBe('invalid_api_key');
    expect(bus.published).toEqual([{ kind: 'key', keyId: one.record.id }, { kind: 'key', keyId: two.record.id }]);
    await a.close();
    await b.close();
    expect(bus.listeners.size).toBe(0);
  });

  it('without a bus, the same store without change reports leaves the other instance on its cache (the TTL is the bound)', async () => {
    const store = silentStore();
    const a = createKeyscope({ store, usage: false });
    const b = createKeyscope({ store, usage: false });
    const { key, record } = await a.keys.create({ ownerId: 'u', name: 'one', level: 'user' });
    await b.authenticate({ headers: headers(key), path: '/validate' });
    await a.keys.revoke(record.id);
    expect(code(await b.authenticate({ headers: headers(key), path: '/validate' }))).toBe('ok');
  });

  it('carries invalidateProject, and "anything may have changed" (a reconnect) drops every cache', async () => {
    const store = silentStore();
    store.addProject({ id: 'p', ownerId: 'u', name: 'P' });
    const bus = localBus();
    const a = createKeyscope({ store, bus, usage: false });
    const b = createKeyscope({ store, bus, usage: false });
    const { key, record } = await a.keys.create({ ownerId: 'u', name: 'k', level: 'project', projectId: 'p' });
    expect(code(await b.authenticate({ headers: headers(key), path: '/sites' }))).toBe('ok');
    store.addProject({ id: 'p', ownerId: 'someone-else', name: 'P' });
    a.invalidateProject('p');
    expect(code(await b.authenticate({ headers: headers(key), path: '/sites' }))).toBe('project_forbidden');
    store.addProject({ id: 'p', ownerId: 'u', name: 'P' });
    await store.revokeKey(record.id, new Date()); // written by someone the bus did not hear from
    for (const listener of bus.listeners) listener(); // the bus reconnected: it may have missed messages
    expect(code(await b.authenticate({ headers: headers(key), path: '/sites' }))).toBe('invalid_api_key');
  });

  it('a bus that fails to publish changes nothing for the request and is told to onEvent', async () => {
    const events: KeyscopeEvent[] = [];
    const bus: InvalidationBus = { publish: () => Promise.reject(new Error('bus down')), subscribe: () => () => {} };
    const ks = createKeyscope({ store: silentStore(), bus, usage: false, onEvent: (e) => events.push(e) });
    const { key, record } = await ks.keys.create({ ownerId: 'u', name: 'k', level: 'user' });
    await ks.keys.revoke(record.id);
    expect(code(await ks.authenticate({ headers: headers(key), path: '/validate' }))).toBe('invalid_api_key');
    await new Promise((r) => setTimeout(r, 0));
    expect(events.filter((e) => e.type === 'bus_error')).toEqual([{ type: 'bus_error', error: expect.objectContaining({ message: 'bus down' }) }]);
    expect(() => createKeyscope({ store: silentStore(), bus: {} as never })).toThrow(/options\.bus/);
  });
});

describe('a throttle shared by many instances', () => {
  /** Each instance's view of one shared counter, answering asynchronously like a network round trip. */
  function sharedThrottle(counter: MemoryThrottle, trips: { rounds: number }): AttemptThrottle {
    const known = new Map<string, { until: number; seconds: number }>(); // what this instance has learned
    return {
      retryAfter(client, now) {
        const blocked = known.get(client);
        return blocked && blocked.until > now ? blocked.seconds : 0;
      },
      async fail(client, now) {
        trips.rounds++;
        await new Promise((r) => setTimeout(r, 1));
        const verdict = counter.fail(client, now);
        if (verdict.state !== 'counted') known.set(client, { until: now + verdict.retryAfterSeconds * 1000, seconds: verdict.retryAfterSeconds });
        return verdict;
      },
    };
  }

  it('holds the limit across instances: N failures in total, then 429 wherever the next one lands; a success costs no round trip', async () => {
    const store = new MemoryStore();
    const counter = new MemoryThrottle({ maxFailures: 5, windowMs: 60_000, maxClients: 100 });
    const throttle = { rounds: 0 };
    const instances = [1, 2, 3].map(() => createKeyscope({ store, throttle: sharedThrottle(counter, throttle), usage: false }));
    const { key } = await instances[0]!.keys.create({ ownerId: 'u', name: 'k', level: 'user' });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const result = await instances[i % 3]!.authenticate({ headers: headers(generateKey()), path: '/validate', clientIp: '203.0.113.5' });
      statuses.push(result.ok ? 200 : result.error.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    const rounds = throttle.rounds;
    for (const ks of instances) expect(code(await ks.authenticate({ headers: headers(key), path: '/validate', clientIp: '198.51.100.1' }))).toBe('ok');
    expect(throttle.rounds).toBe(rounds);
    expect(instances[0]!.needsClientAddress).toBe(true);
    expect(() => createKeyscope({ store, throttle: { retryAfter: () => 0 } as never })).toThrow(/options\.throttle/);
  });
});
