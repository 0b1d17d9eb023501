/**
 * Three example servers (Express, Koa, Fastify: examples/src/main.ts, as `pnpm start` runs it)
 * on one fresh PostgreSQL database, DATABASE_URL, driven by the `keyscope` CLI through
 * examples/keyscope.config.ts with the same DATABASE_URL:
 * - a revoked key is refused by all three within 1 s of the CLI's exit (20 revocations; p50/p99 printed);
 * - a rotation's grace is honoured by all three: the old key works until the grace ends, then 401;
 * - usage counted on the three adds up exactly once they have flushed at shutdown.
 *
 * Needs `pnpm build` (the CLI's bin, and the config's @keyscope/postgres through jiti).
 */
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { processScope, startServer, type ServerProcess } from '../e2e/harness.js';
import { adminOn, freshDatabase, get, keyscopeJson, percentile, sleep } from './support.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** The bound this file checks for revocation: every server refuses within this long after the CLI exits. */
const REVOCATION_BOUND_MS = 1_000;
/** How often each server is polled while waiting for a refusal. */
const POLL_MS = 10;
const REVOCATIONS = 20;
/** Revocations run two at a time. */
const LANES = 2;
const GRACE_MS = 3_000;

const { tmp, running } = processScope();
const db = await freshDatabase('multi');
const admin = await adminOn(db.url);
const env = { DATABASE_URL: db.url };

await admin.store.addProject({ id: 'proj_scale', ownerId: 'scale-user', name: 'Scale' });

async function startThree(): Promise<ServerProcess[]> {
  const servers = await Promise.all(
    (['express', 'koa', 'fastify'] as const).map((framework) =>
      startServer(framework, path.join(tmp.dir, `${framework}-data.db`), {
        DATABASE_URL: db.url,
        KEYSCOPE_SEED: 'off',
        // Refusals are what this file is about: the failed-attempt throttle must not answer them first.
        KEYSCOPE_THROTTLE_MAX_FAILURES: '1000000',
        KEYSCOPE_LOG_LEVEL: 'warn',
      }),
    ),
  );
  running.push(...servers);
  return servers;
}

const servers = await startThree();

async function newKey(name: string): Promise<{ id: string; key: string }> {
  const { key, record } = await admin.ks.keys.create({ ownerId: 'scale-user', name, level: 'project', projectId: 'proj_scale' });
  return { id: record.id, key };
}

async function expectStatusEverywhere(key: string, status: number): Promise<void> {
  const answers = await Promise.all(servers.map((s) => get(s.port, '/validate', key)));
  expect(answers.map((a) => `${a.status}`)).toEqual(servers.map(() => `${status}`));
}

/** Poll one server every ~10 ms until it refuses `key` with 401; ms since `from`. Fails past `boundMs` (+ 2 s to report how late). */
async function refusedAfter(port: number, key: string, from: number, boundMs: number): Promise<number> {
  const deadline = from + boundMs + 2_000;
  for (;;) {
    const answer = await get(port, '/validate', key, { timeoutMs: 2_000 });
    if (answer.status === 401) return Math.max(0, performance.now() - from);
    if (answer.status !== 200) throw new Error(`:${port} answered ${answer.status} ${answer.body} while waiting for a refusal`);
    if (performance.now() > deadline) throw new Error(`:${port} still accepts the key ${Math.round(performance.now() - from)} ms after the CLI exited`);
    await sleep(POLL_MS);
  }
}

describe('three example servers (express, koa, fastify) on one PostgreSQL database', () => {
  it('print the store they use, and migrated it explicitly at start', () => {
    for (const server of servers) {
      expect(server.output()).toMatch(/keyscope store: PostgreSQL postgres:\/\/postgres@127\.0\.0\.1:5432\/ks_scale_multi_\S+, schema keyscope \((migrated from version \d+ to \d+|version \d+, up to date)\)/);
      expect(server.output()).toContain('keyscope changes: PostgreSQL LISTEN/NOTIFY');
    }
  });

  it(`a key revoked with the CLI is refused by all three within ${REVOCATION_BOUND_MS} ms (${REVOCATIONS} revocations, polled every ${POLL_MS} ms)`, async () => {
    const keys = await Promise.all(Array.from({ length: REVOCATIONS }, (_, i) => newKey(`revoke-${i}`)));
    const worst: number[] = [];
    const all: number[] = [];
    // Two revocations in flight at a time (each CLI run costs ~1-2 s of start-up): one lane's CLI
    // starts while the other polls, so the figures are taken with the machine busy.
    let next = 0;
    await Promise.all(
      Array.from({ length: LANES }, async () => {
        while (next < keys.length) {
          const { id, key } = keys[next++]!;
          // Cached as good on every server first: the revocation must reach a warm cache.
          await expectStatusEverywhere(key, 200);
          await expectStatusEverywhere(key, 200);
          const { exitedAt } = await keyscopeJson(['keys', 'revoke', id], env);
          const latencies = await Promise.all(servers.map((s) => refusedAfter(s.port, key, exitedAt, REVOCATION_BOUND_MS)));
          all.push(...latencies);
          worst.push(Math.max(...latencies));
        }
      }),
    );
    const fmt = (values: number[]) => `p50 ${percentile(values, 50).toFixed(1)} ms, p99 ${percentile(values, 99).toFixed(1)} ms, max ${Math.max(...values).toFixed(1)} ms`;
    console.log(
      `[scale] revocation → refusal (CLI exit to first 401, polled every ${POLL_MS} ms), ${REVOCATIONS} revocations (${LANES} at a time) × 3 servers:\n` +
        `[scale]   slowest of the three per revocation: ${fmt(worst)}\n` +
        `[scale]   every server, every revocation (${all.length}): ${fmt(all)}\n` +
        `[scale]   bound checked: every one ≤ ${REVOCATION_BOUND_MS} ms`,
    );
    expect(Math.max(...all)).toBeLessThanOrEqual(REVOCATION_BOUND_MS);
    // And they stay refused.
    for (const { key } of keys.slice(0, 3)) await expectStatusEverywhere(key, 401);
  });

  it(`a rotation's grace (${GRACE_MS} ms) is honoured by all three: the old key works during it and is refused after it`, async () => {
    const old = await newKey('rotate-me');
    await expectStatusEverywhere(old.key, 200);
    const { doc } = await keyscopeJson<{ key: string; record: { id: string } }>(['keys', 'rotate', old.id, '--grace', `${GRACE_MS / 1000}s`], env);
    const record = await admin.store.getKey(old.id);
    const endsAt = record!.expiresAt!.getTime();
    const wallToPerf = performance.now() - Date.now();
    // The new key works everywhere at once; the old one too, until shortly before its grace ends.
    await expectStatusEverywhere(doc.key, 200);
    let checks = 0;
    while (Date.now() < endsAt - 300) {
      await expectStatusEverywhere(old.key, 200);
      checks++;
      await sleep(100);
    }
    expect(checks).toBeGreaterThan(5);
    // After the grace: refused by each within 1 s of its end.
    const latencies = await Promise.all(servers.map((s) => refusedAfter(s.port, old.key, endsAt + wallToPerf, REVOCATION_BOUND_MS)));
    console.log(`[scale] rotation grace ${GRACE_MS} ms: old key accepted by all three on ${checks} checks during the grace; refused ${latencies.map((l) => `${l.toFixed(0)} ms`).join(', ')} after it ended (bound ${REVOCATION_BOUND_MS} ms)`);
    expect(Math.max(...latencies)).toBeLessThanOrEqual(REVOCATION_BOUND_MS);
    await expectStatusEverywhere(doc.key, 200);
  });

  it('usage counted on the three adds up exactly: N requests spread over them → keys usage shows N after the shutdown flush', async () => {
    const { id, key } = await newKey('usage');
    const N = 300;
    const CONCURRENCY = 12;
    let next = 0;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < N) {
          const i = next++;
          statuses.push((await get(servers[i % servers.length]!.port, '/validate', key)).status);
        }
      }),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(N);
    // SIGTERM: each server writes what it still holds before it exits.
    expect(await Promise.all(servers.map((s) => s.stop('SIGTERM')))).toEqual([0, 0, 0]);
    const { doc } = await keyscopeJson<{ keyId: string; total: number }>(['keys', 'usage', id], env);
    console.log(`[scale] usage: ${N} requests over 3 servers → keys usage total ${doc.total}`);
    expect(doc).toMatchObject({ keyId: id, total: N });
  });
});
