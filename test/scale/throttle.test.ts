/**
 * The shared failed-attempt throttle: three keyscope instances (in-process createKeyscope, one
 * PostgresStore each on one fresh database), each with its own ioredis client and
 * createRedisThrottle on the real Redis (a prefix of its own for this run): the limit holds
 * across them — failures spread over the three trip the client after MAX_FAILURES in total, and
 * then every instance answers 429, while another client address is unaffected and a cached good
 * key keeps working.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeyscope, type AuthResult } from '@keyscope/core';
import { createRedisThrottle } from '@keyscope/redis';
import { PostgresStore } from '../../packages/postgres/src/index.js';
import { adminOn, freshDatabase, REDIS_URL, runId } from './support.js';

const MAX_FAILURES = 5;
const INSTANCES = 3;

const db = await freshDatabase('throttle');
const admin = await adminOn(db.url);
await admin.store.addProject({ id: 'proj_t', ownerId: 'throttle-user', name: 'Throttle' });
const prefix = `${runId('throttle')}:`;

const clients: Redis[] = [];
const instances = await Promise.all(
  Array.from({ length: INSTANCES }, async () => {
    const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 2_000 });
    clients.push(client);
    // Redis is required: a ping that fails is a failure of this file, not a skip.
    expect(await client.ping()).toBe('PONG');
    const store = new PostgresStore({ connectionString: db.url, listen: false });
    const ks = createKeyscope({
      store,
      usage: false,
      throttle: createRedisThrottle({ client, maxFailures: MAX_FAILURES, windowMs: 60_000, prefix, onError: (error) => console.error('throttle:', error) }),
    });
    return { store, ks };
  }),
);
afterAll(async () => {
  for (const { ks, store } of instances) {
    await ks.close();
    await store.close();
  }
  const keys = await clients[0]!.keys(`${prefix}*`);
  if (keys.length > 0) await clients[0]!.del(...keys);
  await Promise.all(clients.map((client) => client.quit()));
});

const auth = (i: number, key: string, clientIp: string): Promise<AuthResult> =>
  instances[i % INSTANCES]!.ks.authenticate({ headers: { 'x-api-key': key }, path: '/validate', clientIp });

const status = (result: AuthResult) => (result.ok ? 200 : result.error.status);

describe(`createRedisThrottle shared by ${INSTANCES} instances on one PostgreSQL store`, () => {
  it(`the limit holds across them: ${MAX_FAILURES} failures in total, spread over the instances, then 429 on every one`, async () => {
    const { key: good } = await admin.ks.keys.create({ ownerId: 'throttle-user', name: 'good', level: 'project', projectId: 'proj_t' });
    // Cached as good on every instance before the client trips.
    for (let i = 0; i < INSTANCES; i++) expect(status(await auth(i, good, '192.0.2.10'))).toBe(200);

    // A revoked key: each use is a store read answered 401, a failure of 192.0.2.10.
    const revoked = await admin.ks.keys.create({ ownerId: 'throttle-user', name: 'revoked', level: 'user' });
    await admin.ks.keys.revoke(revoked.record.id);
    const unknown = revoked.key;
    const seen: number[] = [];
    for (let i = 0; i < MAX_FAILURES; i++) seen.push(status(await auth(i, unknown, '192.0.2.10')));
    expect(seen).toEqual(Array(MAX_FAILURES).fill(401));
    // One more failure, wherever it lands, is past the limit; then every instance answers 429.
    const over = await auth(MAX_FAILURES, unknown, '192.0.2.10');
    expect(status(over)).toBe(429);
    for (let i = 0; i < INSTANCES; i++) {
      const result = await auth(i, unknown, '192.0.2.10');
      expect(result.ok ? 'ok' : result.error.code).toBe('too_many_attempts');
      expect(result.ok ? undefined : Number(result.error.headers['Retry-After'] ?? result.error.headers['retry-after'])).toBeGreaterThan(0);
    }
    console.log(`[scale] shared throttle: ${MAX_FAILURES} failures over ${INSTANCES} instances → 401 ×${MAX_FAILURES}, then 429 on each instance (bound checked: exactly ${MAX_FAILURES} failures in total)`);

    // The throttled address still uses its cached good key; another address is not throttled.
    for (let i = 0; i < INSTANCES; i++) expect(status(await auth(i, good, '192.0.2.10'))).toBe(200);
    for (let i = 0; i < INSTANCES; i++) expect(status(await auth(i, unknown, '198.51.100.7'))).toBe(401);
  });
});
