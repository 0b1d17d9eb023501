/**
 * An example server whose PostgreSQL is behind a fault-injecting proxy (support.ts FaultProxy):
 * PostgreSQL stalled, refusing or unreachable → 503 auth_unavailable with Retry-After within
 * storeTimeoutMs + a margin, for 200 concurrent requests too (nothing queues without bound), never
 * a 401, no crash; served again by itself when the proxy passes again; a key cached before the
 * fault works only until its cache TTL. Then the LISTEN connection is cut while keys are revoked:
 * once it is back, no revoked key is accepted.
 */
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { processScope, startServer, type ServerProcess } from '../e2e/harness.js';
import { adminOn, FaultProxy, freshDatabase, get, pgUrl, sleep, type Answer } from './support.js';

vi.setConfig({ testTimeout: 40_000, hookTimeout: 60_000 });

const STORE_TIMEOUT_MS = 1_000;
/** Margin on top of storeTimeoutMs for an answer under load (200 concurrent requests, 2 shared cores). */
const MARGIN_MS = 1_000;
const ANSWER_BOUND_MS = STORE_TIMEOUT_MS + MARGIN_MS;
const CACHE_TTL_MS = 1_500;
/** After the proxy passes again, the server answers 200 within this long (pool reconnects). */
const RECOVERY_BOUND_MS = 5_000;
/** The LISTEN session's reconnect delay is at most 5 s (PostgresStore's reconnectMaxMs), plus a margin. */
const RELISTEN_BOUND_MS = 5_000 + 1_500;
const CONCURRENT = 200;

const { tmp, running } = processScope();
const db = await freshDatabase('faults');
const admin = await adminOn(db.url);
await admin.store.addProject({ id: 'proj_f', ownerId: 'fault-user', name: 'Faults' });

const proxy = await new FaultProxy().start();
const listenProxy = await new FaultProxy().start();
afterAll(async () => {
  await proxy.close();
  await listenProxy.close();
});

function serverEnv(port: number, ttlMs: number): Record<string, string> {
  return {
    DATABASE_URL: pgUrl(db.name, port),
    KEYSCOPE_SEED: 'off',
    KEYSCOPE_STORE_TIMEOUT_MS: String(STORE_TIMEOUT_MS),
    KEYSCOPE_CACHE_TTL_MS: String(ttlMs),
    KEYSCOPE_THROTTLE_MAX_FAILURES: '1000000',
    KEYSCOPE_LOG_LEVEL: 'error',
  };
}

/** The server with a short cache TTL (faults), and one with the default 60 s TTL (the LISTEN cut). */
const [server, listening] = await Promise.all([
  startServer('express', path.join(tmp.dir, 'faults.db'), serverEnv(proxy.port, CACHE_TTL_MS)),
  startServer('koa', path.join(tmp.dir, 'listen.db'), serverEnv(listenProxy.port, 60_000)),
]);
running.push(server, listening);
const crashed = new Map<ServerProcess, number | null>();
for (const s of [server, listening]) void s.exited.then((code) => crashed.set(s, code));

async function newKeys(count: number, name: string): Promise<Array<{ id: string; key: string }>> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const { key, record } = await admin.ks.keys.create({ ownerId: 'fault-user', name: `${name}-${i}`, level: 'project', projectId: 'proj_f' });
      return { id: record.id, key };
    }),
  );
}

function expectUnavailable(answer: Answer, what: string): void {
  expect(answer.status, `${what}: ${answer.body}`).toBe(503);
  expect(answer.json).toMatchObject({ code: 'auth_unavailable', status: 503 });
  expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
  expect(answer.ms, `${what} answered after ${answer.ms.toFixed(0)} ms`).toBeLessThanOrEqual(ANSWER_BOUND_MS);
}

/** Poll until `key` gets 200 again; ms it took. Fails past `boundMs`. Any 401 on the way fails. */
async function servedAgainAfter(port: number, key: string, boundMs: number): Promise<number> {
  const start = performance.now();
  for (;;) {
    const answer = await get(port, '/validate', key, { timeoutMs: ANSWER_BOUND_MS + 1_000 });
    if (answer.status === 200) return performance.now() - start;
    expect(answer.status, `never a 401 while the store recovers: ${answer.body}`).toBe(503);
    if (performance.now() - start > boundMs) throw new Error(`not served again within ${boundMs} ms`);
    await sleep(50);
  }
}

function expectAlive(s: ServerProcess): void {
  expect(crashed.has(s), `the server exited (${crashed.get(s)}):\n${s.output()}`).toBe(false);
  expect(s.output()).not.toMatch(/unhandled|uncaught|ERR_UNHANDLED_REJECTION/i);
}

describe(`PostgreSQL behind a faulty proxy (storeTimeoutMs ${STORE_TIMEOUT_MS} ms, bound ${ANSWER_BOUND_MS} ms, cache TTL ${CACHE_TTL_MS} ms)`, () => {
  it(`stalled: ${CONCURRENT} concurrent requests all get 503 within the bound; a cached key works only until its TTL; served again by itself`, async () => {
    const [warm] = await newKeys(1, 'warm');
    const cold = await newKeys(CONCURRENT, 'cold');
    const first = await get(server.port, '/validate', warm!.key);
    expect(first.status).toBe(200);
    const cachedAt = performance.now();

    await proxy.set('stall');
    // The key cached before the stall, polled while the 200 others wait: 200 until its TTL ends,
    // then 503 (never 401), and never 200 again while stalled.
    const warmPoll = (async () => {
      let lastOk = -1;
      let refused: Answer | undefined;
      const deadline = cachedAt + CACHE_TTL_MS + ANSWER_BOUND_MS + 500;
      while (performance.now() < deadline) {
        const answer = await get(server.port, '/validate', warm!.key, { timeoutMs: ANSWER_BOUND_MS + 1_000 });
        if (answer.status === 200) {
          expect(refused, 'a 200 after the cached key was refused').toBeUndefined();
          lastOk = performance.now() - cachedAt;
        } else {
          expectUnavailable(answer, 'the cached key after its TTL');
          refused ??= answer;
        }
        await sleep(50);
      }
      return { lastOk, refused };
    })();
    const answers = await Promise.all(cold.map(({ key }) => get(server.port, '/validate', key, { timeoutMs: ANSWER_BOUND_MS + 2_000 })));
    answers.forEach((answer, i) => expectUnavailable(answer, `stalled request ${i}`));
    const slowest = Math.max(...answers.map((a) => a.ms));
    console.log(`[scale] stall: ${CONCURRENT} concurrent requests → all 503 auth_unavailable, slowest ${slowest.toFixed(0)} ms (bound ${ANSWER_BOUND_MS} ms)`);

    const { lastOk, refused } = await warmPoll;
    expect(lastOk, 'the cached key was not served from the cache during the stall').toBeGreaterThanOrEqual(0);
    expect(refused, 'the cached key was still accepted after its TTL').toBeDefined();
    // Served from the cache no later than its TTL (+ the time the request that filled it took).
    expect(lastOk).toBeLessThanOrEqual(CACHE_TTL_MS + first.ms + 100);
    console.log(`[scale] stall: the key cached before it was accepted until ${lastOk.toFixed(0)} ms after caching (TTL ${CACHE_TTL_MS} ms), then 503`);

    await proxy.set('pass');
    const recovered = await servedAgainAfter(server.port, cold[0]!.key, RECOVERY_BOUND_MS);
    const after = await Promise.all(cold.map(({ key }) => get(server.port, '/validate', key)));
    expect(after.filter((a) => a.status === 200)).toHaveLength(CONCURRENT);
    expect((await get(server.port, '/validate', warm!.key)).status).toBe(200);
    console.log(`[scale] stall over: served again after ${recovered.toFixed(0)} ms (bound ${RECOVERY_BOUND_MS} ms), all ${CONCURRENT} keys 200`);
    expectAlive(server);
  });

  it('refusing (new connections closed, open ones cut): 503 within the bound, never 401; served again by itself', async () => {
    const keys = await newKeys(20, 'refuse');
    await proxy.set('refuse');
    proxy.cut();
    const answers = await Promise.all(keys.map(({ key }) => get(server.port, '/validate', key)));
    answers.forEach((answer, i) => expectUnavailable(answer, `refused request ${i}`));
    console.log(`[scale] refuse: slowest 503 after ${Math.max(...answers.map((a) => a.ms)).toFixed(0)} ms (bound ${ANSWER_BOUND_MS} ms)`);
    await proxy.set('pass');
    const recovered = await servedAgainAfter(server.port, keys[0]!.key, RECOVERY_BOUND_MS);
    console.log(`[scale] refuse over: served again after ${recovered.toFixed(0)} ms (bound ${RECOVERY_BOUND_MS} ms)`);
    expectAlive(server);
  });

  it('unreachable (nothing listens): 503 within the bound, never 401; served again by itself', async () => {
    const keys = await newKeys(20, 'down');
    await proxy.set('down');
    proxy.cut();
    const answers = await Promise.all(keys.map(({ key }) => get(server.port, '/validate', key)));
    answers.forEach((answer, i) => expectUnavailable(answer, `unreachable request ${i}`));
    console.log(`[scale] unreachable: slowest 503 after ${Math.max(...answers.map((a) => a.ms)).toFixed(0)} ms (bound ${ANSWER_BOUND_MS} ms)`);
    await proxy.set('pass');
    const recovered = await servedAgainAfter(server.port, keys[0]!.key, RECOVERY_BOUND_MS);
    console.log(`[scale] unreachable over: served again after ${recovered.toFixed(0)} ms (bound ${RECOVERY_BOUND_MS} ms)`);
    expectAlive(server);
  });

  it(`the LISTEN connection cut while keys are revoked: once it is back (≤ ${RELISTEN_BOUND_MS} ms), no revoked key is accepted`, async () => {
    const keys = await newKeys(8, 'listen');
    for (const { key } of keys) expect((await get(listening.port, '/validate', key)).status).toBe(200);
    const revoked: typeof keys = [];
    const revoke = async (k: (typeof keys)[number]) => {
      expect(await admin.ks.keys.revoke(k.id)).toBeTruthy();
      revoked.push(k);
    };

    // Every connection of the server (LISTEN session and pool) cut, new ones refused for a while.
    await listenProxy.set('refuse');
    expect(listenProxy.cut()).toBeGreaterThan(0);
    await revoke(keys[0]!);
    await sleep(400);
    await revoke(keys[1]!);
    await sleep(400);
    await revoke(keys[2]!);
    await listenProxy.set('pass');
    const passedAt = performance.now();
    // While it reconnects, and after.
    await revoke(keys[3]!);
    await sleep(150);
    await revoke(keys[4]!);
    await sleep(600);
    // Cut once more, at once back: the session is lost again while a revocation lands.
    listenProxy.cut();
    await revoke(keys[5]!);

    const refusedAt: number[] = [];
    for (const { key } of revoked) {
      for (;;) {
        const answer = await get(listening.port, '/validate', key);
        if (answer.status === 401) break;
        expect(answer.status, answer.body).toBe(200);
        if (performance.now() - passedAt > RELISTEN_BOUND_MS) throw new Error(`a revoked key still accepted ${RELISTEN_BOUND_MS} ms after the proxy passed again`);
        await sleep(25);
      }
      refusedAt.push(performance.now() - passedAt);
    }
    console.log(`[scale] LISTEN cut: all ${revoked.length} revoked keys refused by ${Math.max(...refusedAt).toFixed(0)} ms after the proxy passed again (bound ${RELISTEN_BOUND_MS} ms)`);
    // From now on: every revoked key refused, the others still accepted.
    for (let round = 0; round < 3; round++) {
      for (const { key } of revoked) expect((await get(listening.port, '/validate', key)).status).toBe(401);
      for (const { key } of keys.slice(6)) expect((await get(listening.port, '/validate', key)).status).toBe(200);
      await sleep(100);
    }
    expectAlive(listening);
  });
});
