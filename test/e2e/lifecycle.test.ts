/**
 * Shutdown and abuse, per framework: SIGTERM lets a request in flight finish with 200 and
 * refuses new connections; SIGINT writes the pending usage before the store closes; the
 * failed-attempt throttle (on in the examples) answers 429 and logs that it tripped.
 */
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { send } from '../conformance/http.js';
import { cli, demoKeys, FRAMEWORKS, keyscopeLog, startServer, processScope, until } from './harness.js';

// Each test starts real processes; on a busy machine that takes longer than the default.
vi.setConfig({ testTimeout: 60_000 });

const { tmp, running } = processScope();

async function start(framework: (typeof FRAMEWORKS)[number], name: string, env: Record<string, string> = {}) {
  const server = await startServer(framework, path.join(tmp.dir, `${framework}-${name}.db`), env);
  running.push(server);
  return { server, keys: demoKeys(server.output()) };
}

/** The error code of the first new connection that fails, trying for at most ~2 s. */
async function refusedSoon(port: number): Promise<string> {
  for (let attempt = 0; attempt < 80; attempt++) {
    try {
      await send(port, 'GET', '/health', []);
    } catch (error) {
      return (error as NodeJS.ErrnoException).code ?? String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return 'still accepting';
}

describe.each(FRAMEWORKS)('%s', (framework) => {
  it('SIGTERM: the request in flight completes with 200, new connections are refused, exit 0', async () => {
    // Test-only delay: GET /test/slow exists only with this variable set.
    const { server, keys } = await start(framework, 'sigterm', { KEYSCOPE_EXAMPLE_TEST_DELAY_MS: '1500' });
    const inFlight = send(server.port, 'GET', '/test/slow', [['X-API-Key', keys.user]]);
    await until(() => server.output().includes('test route: slow request started'), 10_000, 'the slow request to reach its handler');
    const exited = server.stop('SIGTERM');

    // Refused, or reset when it reached the backlog just as the listening socket closed.
    expect(['ECONNREFUSED', 'ECONNRESET']).toContain(await refusedSoon(server.port));
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ valid: true, key: { level: 'user' }, ownerId: 'demo-user' });
    expect(await exited).toBe(0);
    expect(server.output()).toMatch(/SIGTERM: finishing in-flight requests[\s\S]*stopped/);
  });

  it('SIGINT: usage still pending is written before the store closes', async () => {
    const db = path.join(tmp.dir, `${framework}-sigint.db`);
    const { server, keys } = await start(framework, 'sigint');
    const calls = 3;
    let keyId = '';
    for (let i = 0; i < calls; i++) {
      const res = await send(server.port, 'GET', '/validate', [['X-API-Key', keys.project]]);
      expect(res.status).toBe(200);
      keyId = (res.json as { key: { id: string } }).key.id;
    }
    // Usage is written in batches every second; stopping at once leaves it to the shutdown.
    expect(await server.stop('SIGINT')).toBe(0);
    const usage = await cli(db, ['keys', 'usage', keyId, '--json']);
    expect(usage.code, usage.stderr).toBe(0);
    expect(JSON.parse(usage.stdout)).toMatchObject({ keyId, total: calls, days: [{ day: new Date().toISOString().slice(0, 10), count: calls }] });
  });

  it('throttles failed attempts per client address: 429 with Retry-After, and one log line', async () => {
    const { server } = await start(framework, 'throttle', { KEYSCOPE_THROTTLE_MAX_FAILURES: '3' });
    const wrong = [['X-API-Key', 'ks_not-a-real-key']] as const;
    for (let i = 0; i < 3; i++) expect((await send(server.port, 'GET', '/validate', wrong)).status).toBe(401);
    const blocked = await send(server.port, 'GET', '/validate', wrong);
    expect(blocked.status).toBe(429);
    expect(blocked.json).toMatchObject({ code: 'too_many_attempts', status: 429 });
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    // The operator hears of it once, when the client goes over the limit.
    const tripped = keyscopeLog(server.output()).filter((line) => line.event === 'throttle_tripped');
    expect(tripped).toEqual([expect.objectContaining({ level: 'warn', client: expect.stringContaining('127.0.0.1'), retryAfterSeconds: expect.any(Number) })]);
    // Public routes stay open.
    expect((await send(server.port, 'GET', '/health', wrong)).status).toBe(200);
    expect(await server.stop('SIGTERM')).toBe(0);
  });
});
