/** createRedisBus against a real Redis: revocations and project changes between instances, reconnects, outages. */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createKeyscope, type KeyscopeEvent, type StoreChange } from '@keyscope/core';
import { createRedisBus, type RedisBus } from '@keyscope/redis';
import { closeAll, code, connect, headers, RedisProxy, silentStore, unique, until } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(closeAll);

/** Every call a bus's listeners get, and a promise for the next "anything may have changed". */
function listen(bus: RedisBus) {
  const calls: (StoreChange | undefined)[] = [];
  let cleared = 0;
  bus.subscribe((change) => {
    calls.push(change);
    if (change === undefined) cleared++;
  });
  return { calls, cleared: () => cleared, subscribed: (n = 1) => until(() => cleared >= n, 5_000, 'the bus to subscribe') };
}

/** Two keyscope instances on one silent store, each with a bus on its own connection. */
async function twoInstances(channel: string, options: { bUrl?: string; bOnError?: (error: unknown) => void } = {}) {
  const store = silentStore();
  const clientA = await connect();
  const clientB = await connect({}, options.bUrl);
  const busA = createRedisBus({ client: clientA, channel });
  const busB = createRedisBus({ client: clientB, channel, ...(options.bOnError && { onError: options.bOnError }) });
  const eventsA: KeyscopeEvent[] = [];
  const a = createKeyscope({ store, bus: busA, usage: false, onEvent: (e) => eventsA.push(e) });
  const b = createKeyscope({ store, bus: busB, usage: false });
  const heardA = listen(busA);
  const heardB = listen(busB);
  cleanups.push(async () => {
    await a.close();
    await b.close();
    await busA.close();
    await busB.close();
  });
  await Promise.all([heardA.subscribed(), heardB.subscribed()]);
  return { store, clientA, clientB, busA, busB, a, b, heardB, eventsA };
}

/** Ask `ks` for `key` every 2 ms until it answers `expected`; the milliseconds that took. */
async function timeUntil(ks: ReturnType<typeof createKeyscope>, key: string, path: string, expected: string, projectHeader?: string): Promise<number> {
  const started = performance.now();
  const request = { headers: { ...headers(key), ...(projectHeader && { 'x-project-id': projectHeader }) }, path };
  await until(async () => code(await ks.authenticate(request)) === expected, 2_000, `${expected} from the other instance`);
  return performance.now() - started;
}

describe('createRedisBus', () => {
  it('carries a revocation to another instance on its own connection: refused on its next request, within 250 ms', async () => {
    const { a, b } = await twoInstances(unique('bus'));
    const { key, record } = await a.keys.create({ ownerId: 'u', name: 'k', level: 'user' });
    expect(code(await b.authenticate({ headers: headers(key), path: '/validate' }))).toBe('ok');
    await a.keys.revoke(record.id);
    const ms = await timeUntil(b, key, '/validate', 'invalid_api_key');
    console.log(`redis bus: revocation refused by the other instance after ${ms.toFixed(1)} ms`);
    expect(ms).toBeLessThan(250);
  });

  it('carries invalidateProject: the other instance re-reads ownership within 250 ms', async () => {
    const { store, a, b } = await twoInstances(unique('bus'));
    store.addProject({ id: 'p', ownerId: 'u', name: 'P' });
    const { key } = await a.keys.create({ ownerId: 'u', name: 'k', level: 'project', projectId: 'p' });
    expect(code(await b.authenticate({ headers: headers(key), path: '/sites' }))).toBe('ok');
    store.addProject({ id: 'p', ownerId: 'someone-else', name: 'P' });
    // Without the bus, b still answers from its ownership cache.
    expect(code(await b.authenticate({ headers: headers(key), path: '/sites' }))).toBe('ok');
    a.invalidateProject('p');
    const ms = await timeUntil(b, key, '/sites', 'project_forbidden');
    console.log(`redis bus: project change seen by the other instance after ${ms.toFixed(1)} ms`);
    expect(ms).toBeLessThan(250);
  });

  it('publishes JSON changes, hears them back, and ignores anything else on the channel', async () => {
    const channel = unique('bus');
    const client = await connect();
    const bus = createRedisBus({ client, channel });
    cleanups.push(() => bus.close());
    const heard = listen(bus);
    await heard.subscribed();
    const raw = await connect();
    const seen: string[] = [];
    const spy = await connect();
    await spy.subscribe(channel);
    spy.on('message', (_, message) => seen.push(message));
    for (const junk of ['not json', 'null', '42', '{"kind":"key"}', '{"kind":"key","keyId":5}', '{"kind":"project","projectId":""}', '{"kind":"nope","keyId":"k"}']) {
      await raw.publish(channel, junk);
    }
    await bus.publish({ kind: 'key', keyId: 'key_1' });
    await bus.publish({ kind: 'project', projectId: 'proj_1' });
    await until(() => heard.calls.length >= 3, 2_000, 'the two changes');
    expect(heard.calls).toEqual([undefined, { kind: 'key', keyId: 'key_1' }, { kind: 'project', projectId: 'proj_1' }]);
    // The spy is a connection of its own: it can hear the last message after the bus did.
    await until(() => seen.length >= 9, 2_000, 'all nine messages on the spy connection');
    expect(seen.slice(-2).map((m) => JSON.parse(m))).toEqual([
      { kind: 'key', keyId: 'key_1' },
      { kind: 'project', projectId: 'proj_1' },
    ]);
  });

  it('after its subscriber connection is killed: resubscribes, tells listeners "anything may have changed", and a revocation made meanwhile is refused', async () => {
    const channel = unique('bus');
    const name = unique('sub').replace(/:/g, '-');
    const store = silentStore();
    const clientA = await connect();
    // A slow reconnect, so that the revocation below surely lands while b's subscriber is away.
    const clientB = await connect({ connectionName: name, retryStrategy: () => 300 });
    const busA = createRedisBus({ client: clientA, channel });
    const busB = createRedisBus({ client: clientB, channel, onError: () => {} });
    const a = createKeyscope({ store, bus: busA, usage: false });
    const b = createKeyscope({ store, bus: busB, usage: false });
    const heardB = listen(busB);
    cleanups.push(async () => {
      await Promise.all([a.close(), b.close(), busA.close(), busB.close()]);
    });
    await heardB.subscribed();
    await until(async () => ((await clientA.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string).includes(`name=${name}`), 2_000, 'the subscriber');
    const { key, record } = await a.keys.create({ ownerId: 'u', name: 'k', level: 'user' });
    expect(code(await b.authenticate({ headers: headers(key), path: '/validate' }))).toBe('ok');

    const list = (await clientA.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
    const id = list.split('\n').find((line) => line.includes(` name=${name} `))!.match(/^id=(\d+)/)![1]!;
    expect(await clientA.client('KILL', 'ID', id)).toBe(1);
    await a.keys.revoke(record.id); // published while b hears nothing
    const calls = heardB.calls.length;
    await heardB.subscribed(2);
    expect(heardB.calls.slice(calls)).toEqual([undefined]); // the revocation itself was missed...
    expect(code(await b.authenticate({ headers: headers(key), path: '/validate' }))).toBe('invalid_api_key'); // ...and still refused
    // The bus subscribes on a connection of its own; b's client was never touched.
    expect(clientB.status).toBe('ready');
  });

  it('while Redis is away from one instance, its requests go on (one warning); when it is back, it drops its caches', async () => {
    const proxy = new RedisProxy();
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const warnings: unknown[] = [];
    const { a, b, heardB, eventsA } = await twoInstances(unique('bus'), { bUrl: proxy.url, bOnError: (e) => warnings.push(e) });
    const { key, record } = await a.keys.create({ ownerId: 'u', name: 'k', level: 'user' });
    const other = await a.keys.create({ ownerId: 'u', name: 'other', level: 'user' });
    expect(code(await b.authenticate({ headers: headers(key), path: '/validate' }))).toBe('ok');

    await proxy.stop();
    await until(() => warnings.length > 0, 2_000, 'the warning');
    await a.keys.revoke(record.id);
    // b goes on: from its cache, and from the store for a key it has not seen.
    for (let i = 0; i < 5; i++) expect(code(await b.authenticate({ headers: headers(other.key), path: '/validate' }))).toBe('ok');
    await new Promise((r) => setTimeout(r, 300)); // several failed reconnects
    expect(warnings).toHaveLength(1);
    expect(eventsA.filter((e) => e.type === 'bus_error')).toEqual([]); // a's own bus was fine

    const cleared = heardB.cleared();
    await proxy.start();
    await heardB.subscribed(cleared + 1);
    expect(code(await b.authenticate({ headers: headers(key), path: '/validate' }))).toBe('invalid_api_key');
    expect(warnings).toHaveLength(1);
  });

  it('tells listeners "anything may have changed" only once the subscription is back: a change right after that call is heard', async () => {
    // A slow link to Redis: the SUBSCRIBE after a reconnect takes 150 ms to arrive. Were the
    // listeners told at reconnect (before it arrived), the request below would cache the key
    // again, the revocation would be published to nobody, and b would keep the key until its TTL.
    const proxy = new RedisProxy();
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const { a, b, heardB } = await twoInstances(unique('bus'), { bUrl: proxy.url, bOnError: () => {} });
    const { key, record } = await a.keys.create({ ownerId: 'u', name: 'k', level: 'user' });
    const cleared = heardB.cleared();
    await proxy.stop();
    proxy.delayMs = 150;
    await proxy.start();
    await heardB.subscribed(cleared + 1);
    expect(code(await b.authenticate({ headers: headers(key), path: '/validate' }))).toBe('ok');
    await a.keys.revoke(record.id);
    const ms = await timeUntil(b, key, '/validate', 'invalid_api_key');
    expect(ms).toBeLessThan(250);
  });

  it('close() ends the connection it opened and only that one', async () => {
    const name = unique('close').replace(/:/g, '-');
    const client = await connect({ connectionName: name });
    const bus = createRedisBus({ client, channel: unique('bus') });
    const heard = listen(bus);
    await heard.subscribed();
    const named = async () => ((await client.client('LIST')) as string).split('\n').filter((line) => line.includes(` name=${name} `)).length;
    expect(await named()).toBe(2);
    await bus.close();
    await until(async () => (await named()) === 1, 2_000, 'the subscriber to close');
    expect(client.status).toBe('ready');
    expect(() => bus.subscribe(() => {})).toThrow(/after close/);
  });

  it('a bus that only publishes opens no second connection', async () => {
    const name = unique('pub').replace(/:/g, '-');
    const client = await connect({ connectionName: name });
    const bus = createRedisBus({ client, channel: unique('bus') });
    await bus.publish({ kind: 'key', keyId: 'k' });
    const list = (await client.client('LIST')) as string;
    expect(list.split('\n').filter((line) => line.includes(` name=${name} `))).toHaveLength(1);
    await bus.close();
  });

  it('checks its options at setup and leaves them as they were', async () => {
    const client = await connect();
    expect(() => createRedisBus({} as never)).toThrow(/options\.client/);
    expect(() => createRedisBus({ client: { publish() {} } as never })).toThrow(/options\.client/);
    expect(() => createRedisBus({ client, channel: '' })).toThrow(/options\.channel/);
    expect(() => createRedisBus({ client, onError: 'no' as never })).toThrow(/options\.onError/);
    const options = Object.freeze({ client, channel: unique('bus') });
    const bus = createRedisBus(options);
    expect(Object.keys(options)).toEqual(['client', 'channel']);
    await bus.close();
  });
});
