// In-process micro benchmarks for per-key limits, measured side by side in interleaved rounds,
// each awaited as a middleware does: a warm key without limits; the same with a rate limit
// counted in memory, and counted on Redis (one script call per request); and a key with a quota
// on SQLite (one atomic UPDATE per request). Limits are high enough never to refuse. Round
// trips are measured twice: one request at a time (the latency a request adds), and 50 in flight
// as a busy server has them (ioredis pipelines them: the cost per request under load).
// `node micro/limits.mjs [ROUNDS] [ITERATIONS]` prints a table; with `--json`, JSON (run.mjs).
// Redis at REDIS_URL (default redis://127.0.0.1:6379): when it cannot be reached, its row is
// left out and said so, and everything else runs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyscope, MemoryStore } from '@keyscope/core';
import { createRedisRateLimiter } from '@keyscope/redis';
import { SqliteStore } from '@keyscope/sqlite';
import { Redis } from 'ioredis';
import { interleaved } from './rounds.mjs';

const json = process.argv.includes('--json');
const [roundsArg, iterationsArg] = process.argv.slice(2).filter((arg) => arg !== '--json');
const rounds = Number(roundsArg ?? 5);
const N = Number(iterationsArg ?? 200_000);
// Round trips are ~1,000× a warm decision: fewer of them keep a round short.
const N_REMOTE = Math.max(1_000, Math.floor(N / 50));
const NEVER = { limit: 1_000_000_000, windowMs: 60_000 };

const store = new MemoryStore();
store.addProject({ id: 'proj_alpha', ownerId: 'u', name: 'Alpha' });
const memory = createKeyscope({ store, usage: false });
const unlimited = await memory.keys.create({ ownerId: 'u', name: 'unlimited', level: 'user' });
const rated = await memory.keys.create({ ownerId: 'u', name: 'rate limited', level: 'user', rateLimit: NEVER });

let redis;
let onRedis;
let redisReason;
try {
  const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1, connectTimeout: 2_000, lazyConnect: true });
  client.on('error', () => {});
  await client.connect();
  redis = client;
  onRedis = createKeyscope({ store, usage: false, limits: { limiter: createRedisRateLimiter({ client, prefix: `keyscope-bench:${process.pid}:` }) } });
} catch (error) {
  redisReason = error?.message ?? String(error);
}

const dir = mkdtempSync(join(tmpdir(), 'keyscope-limits-bench-'));
const sqlite = new SqliteStore({ filename: join(dir, 'limits.db') });
await sqlite.addProject({ id: 'proj_alpha', ownerId: 'u', name: 'Alpha' });
const onSqlite = createKeyscope({ store: sqlite, usage: false });
const quota = await onSqlite.keys.create({ ownerId: 'u', name: 'quota', level: 'user', quota: { limit: 1_000_000_000 } });
const sqliteUnlimited = await onSqlite.keys.create({ ownerId: 'u', name: 'unlimited', level: 'user' });

const input = (key) => ({ headers: Object.assign(Object.create(null), { host: '127.0.0.1', accept: '*/*', 'x-api-key': key, 'x-project-id': 'proj_alpha' }), method: 'GET', path: '/sites' });
const runs = [
  ['unlimited', memory, unlimited.key, N],
  ['rateMemory', memory, rated.key, N],
  ...(onRedis ? [['rateRedis', onRedis, rated.key, N_REMOTE]] : []),
  ['sqliteUnlimited', onSqlite, sqliteUnlimited.key, N],
  ['quotaSqlite', onSqlite, quota.key, N_REMOTE],
];
let sink;
const IN_FLIGHT = 50;
const cases = {};
for (const [name, ks, key, n] of runs) {
  const request = input(key);
  const result = await ks.authenticate(request);
  if (!result.ok) throw new Error(`bench key ${name} refused: ${result.error.code}`);
  cases[name] = async () => {
    const t = performance.now();
    for (let i = 0; i < n; i++) sink = await ks.authenticate(request);
    return ((performance.now() - t) / n) * 1e6;
  };
  if (name === 'rateRedis') {
    cases.rateRedisConcurrent = async () => {
      const t = performance.now();
      for (let i = 0; i < n; i += IN_FLIGHT) sink = await Promise.all(Array.from({ length: IN_FLIGHT }, () => ks.authenticate(request)));
      return ((performance.now() - t) / n) * 1e6;
    };
  }
}
const ns = await interleaved(cases, rounds);
await Promise.all([memory.close(), onRedis?.close(), onSqlite.close()]);
sqlite.close();
rmSync(dir, { recursive: true, force: true });
if (redis) {
  const keys = await redis.keys(`keyscope-bench:${process.pid}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
}

const result = { rounds, inFlight: IN_FLIGHT, ns, redis: redisReason ? { skipped: redisReason } : { skipped: false }, ratio: { rateMemoryToUnlimited: ns.rateMemory / ns.unlimited } };
if (json) console.log(JSON.stringify(result));
else {
  console.table(ns);
  console.log(`rate limit in memory ÷ no limit: ${result.ratio.rateMemoryToUnlimited.toFixed(2)}${redisReason ? `; Redis row skipped (${redisReason})` : ''}`);
}
