import { createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKeyscope } from '@keyscope/core';
import { PostgresStore } from '@keyscope/postgres';
import { keyRecord } from '../stores/store-conformance.js';
import { DATABASE_URL, everyStoreCall, migratedSchemaPerTest, sql, until } from './helpers.js';

const fixture = migratedSchemaPerTest();
const open = fixture.open;
let schema: string;
beforeEach(() => {
  schema = fixture.schema();
});

describe('usage from many instances', () => {
  it('adds up exactly when several store instances flush at once, and lastUsedAt only moves forward', async () => {
    const instances = Array.from({ length: 6 }, () => open());
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { key: _key, ...record } = keyRecord();
      await instances[0]!.createKey(record);
      ids.push(record.id);
    }
    const days = ['2025-04-10', '2025-04-11', '2025-04-12'];
    const expected = new Map<string, number>();
    const latest = new Map<string, number>();
    const base = Date.UTC(2025, 3, 10);
    // Every instance flushes 15 batches, all at once: overlapping keys and days, in different orders.
    const flushes = instances.flatMap((store, n) =>
      Array.from({ length: 15 }, (_, b) => {
        const entries = ids.flatMap((keyId, k) =>
          days.map((day, d) => {
            const count = 1 + ((n * 7 + b * 3 + k + d) % 5);
            const at = base + d * 86_400_000 + n * 1_000 + b;
            expected.set(`${keyId} ${day}`, (expected.get(`${keyId} ${day}`) ?? 0) + count);
            latest.set(keyId, Math.max(latest.get(keyId) ?? 0, at));
            return { keyId, day, count, lastUsedAt: new Date(at) };
          }),
        );
        if ((n + b) % 2 === 1) entries.reverse();
        return store.recordUsage(entries);
      }),
    );
    await Promise.all(flushes);
    for (const keyId of ids) {
      const usage = (await instances[0]!.getUsage(keyId))!;
      expect(usage.days).toEqual(days.map((day) => ({ day, count: expected.get(`${keyId} ${day}`) })));
      expect(usage.lastUsedAt).toEqual(new Date(latest.get(keyId)!));
    }
    // An older batch arriving late does not move lastUsedAt back.
    await instances[1]!.recordUsage([{ keyId: ids[0]!, day: '2025-04-10', count: 1, lastUsedAt: new Date(base) }]);
    expect((await instances[2]!.getKey(ids[0]!))!.lastUsedAt).toEqual(new Date(latest.get(ids[0]!)!));
  });

  it('writes a batch in one statement', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    try {
      const store = open({ pool, listen: false });
      const { key: _key, ...record } = keyRecord();
      await store.createKey(record);
      const statements: string[] = [];
      const query = pool.query.bind(pool);
      pool.query = ((config: { text: string }, ...rest: unknown[]) => {
        statements.push(typeof config === 'string' ? config : config.text);
        return (query as (...args: unknown[]) => unknown)(config, ...rest);
      }) as typeof pool.query;
      await store.recordUsage([
        { keyId: record.id, day: '2025-04-10', count: 2, lastUsedAt: new Date(Date.UTC(2025, 3, 10)) },
        { keyId: record.id, day: '2025-04-11', count: 3, lastUsedAt: new Date(Date.UTC(2025, 3, 11)) },
        { keyId: 'key_unknown', day: '2025-04-11', count: 3, lastUsedAt: new Date(Date.UTC(2025, 3, 11)) },
      ]);
      expect(statements).toHaveLength(1);
      expect(statements[0]).toMatch(/unnest\(/);
      expect(statements[0]).toMatch(/ON CONFLICT \(key_id, day\) DO UPDATE SET count = usage\.count \+ excluded\.count/);
      expect(statements[0]).toMatch(/GREATEST/);
      expect((await store.getUsage(record.id))!.days).toEqual([
        { day: '2025-04-10', count: 2 },
        { day: '2025-04-11', count: 3 },
      ]);
    } finally {
      await pool.end();
    }
  });
});

describe('when the database is down', () => {
  let blackhole: Server;
  const sockets = new Set<Socket>();
  let port: number;
  beforeEach(async () => {
    // Accepts connections and never answers: a server that hangs, not one that refuses.
    blackhole = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    port = (blackhole.address() as { port: number }).port;
  });
  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => blackhole.close(resolve));
  });

  function methods(store: PostgresStore): [string, () => Promise<unknown>][] {
    const { key: _key, ...record } = keyRecord();
    return [...everyStoreCall(store, record), ['migrate', () => store.migrate()]];
  }

  it('rejects every method within the connection timeout when the server hangs, and keeps the process up while listening', async () => {
    const errors: unknown[] = [];
    const store = open({ connectionString: `postgres://postgres@127.0.0.1:${port}/test`, connectionTimeoutMs: 200, reconnectMinMs: 20, reconnectMaxMs: 50, onError: (e) => errors.push(e) });
    const unsubscribe = store.subscribe(() => {});
    const start = performance.now();
    const results = await Promise.allSettled(methods(store).map(([, call]) => call()));
    expect(results.map((r) => r.status)).toEqual(results.map(() => 'rejected'));
    expect(performance.now() - start).toBeLessThan(3_000);
    // The listener failed to connect, more than once, and said so to onError; nothing crashed.
    await until(() => errors.length >= 2, 3_000, 'listener connection errors');
    unsubscribe();
  });

  it('rejects every method at once when the server refuses connections, and a keyscope answers 503', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const refused = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    const store = open({ connectionString: `postgres://postgres@127.0.0.1:${refused}/test`, reconnectMinMs: 20 });
    for (const [name, call] of methods(store)) await expect(call(), name).rejects.toThrow(/ECONNREFUSED|connect/);
    const ks = createKeyscope({ store, usage: false });
    try {
      const { key } = keyRecord();
      expect(await ks.authenticate({ headers: { 'x-api-key': key }, path: '/validate' })).toMatchObject({ ok: false, error: { status: 503, code: 'auth_unavailable' } });
    } finally {
      await ks.close();
    }
  });

  it('survives its pool clients being killed: the error goes to onError, not to the process', async () => {
    const errors: unknown[] = [];
    const pool = new pg.Pool({ connectionString: DATABASE_URL, application_name: `keyscope-test-${schema}` });
    try {
      const store = open({ pool, onError: (e) => errors.push(e), listen: false });
      await Promise.all([store.listAllKeys(), store.listAllKeys(), store.listAllKeys()]);
      const idle = pool.idleCount;
      expect(idle).toBeGreaterThan(0);
      await sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`keyscope-test-${schema}`]);
      await until(() => errors.length === idle && pool.idleCount === 0, 2_000, 'every idle client error');
      expect(await store.listAllKeys()).toEqual([]);
    } finally {
      await pool.end();
    }
  });

  it('survives its clients being killed around its queries: some calls reject, none crash, and it recovers', async () => {
    const errors: unknown[] = [];
    const store = open({ onError: (e) => errors.push(e), listen: false });
    const name = `keyscope-kill-${schema}`;
    const pool = new pg.Pool({ connectionString: DATABASE_URL, application_name: name });
    const killer = new PostgresStore({ pool, schema, listen: false });
    try {
      await killer.listAllKeys();
      for (let round = 0; round < 10; round++) {
        // Kill the store's own (application_name keyscope) connections of this test while it queries.
        const kill = sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'keyscope' AND query LIKE $1", [`%${schema}%`]);
        const calls = Array.from({ length: 5 }, () => store.listAllKeys().then(() => 'ok', () => 'rejected'));
        await Promise.all([kill, ...calls]);
      }
      await until(async () => (await store.listAllKeys().then(() => true, () => false)), 2_000, 'a working query');
    } finally {
      await killer.close();
      await pool.end();
    }
  });
});
