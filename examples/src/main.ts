/**
 * `pnpm start`: the example monitoring API on the framework named by FRAMEWORK, over one SQLite
 * file (keyscope's tables and the monitoring data side by side), or with keyscope's tables in
 * PostgreSQL (DATABASE_URL) and the bus and throttle on Redis (REDIS_URL). See examples/README.md.
 */
import { createKeyscope, type AttemptThrottle, type RateLimiter } from '@keyscope/core';
import keyscopeOptions from '../keyscope.config.js';
import { createApi } from './api.js';
import { backendsBanner, baseUrl, reuseBanner, seededBanner, type Backends } from './banner.js';
import { loadConfig } from './config.js';
import { eventLogger } from './log.js';
import { MonitoringData } from './data.js';
import { seedData, seedDemo, type DemoKeys } from './seed.js';
import type { StartServer } from './servers/types.js';
import { createWeb, PORTAL_PATH, type WebHandler } from './web.js';

// The environment is checked before anything is opened.
const config = loadConfig();

// The options the CLI loads too (keyscope.config.ts: the store — PostgreSQL on DATABASE_URL, else
// SQLite on config.db — key prefix, headers, project-optional paths), and on top of them what only
// a server taking traffic needs.
const options = await keyscopeOptions();
const { store } = options;
const backends: Backends = { store: config.store, maxFailures: config.maxFailures };

// PostgreSQL: create or upgrade keyscope's schema explicitly, now, and say so; opening the store
// never does it. (Safe with many servers starting at once: the migration takes an advisory lock.)
if ('migrate' in store) {
  try {
    const migration = await store.migrate();
    backends.migration = migration;
  } catch (error) {
    console.error(`keyscope: could not migrate the PostgreSQL schema ${store.schema} on DATABASE_URL: ${(error as Error).message}`);
    await store.close().catch(() => {});
    process.exit(1);
  }
}

// Redis (REDIS_URL): one client; the bus subscribes on a connection of its own, the throttle
// counts every instance's failures in one place. Neither ever fails a request: while Redis is away
// the bus is silent (PostgreSQL's LISTEN/NOTIFY or the cache TTL still bound staleness) and the
// throttle counts per process.
const WINDOW_MS = 60_000;
let redis: { quit(): Promise<unknown>; disconnect(): void } | undefined;
let bus: { close(): Promise<void> } | undefined;
let throttle: AttemptThrottle | { maxFailures: number; windowMs: number } = { maxFailures: config.maxFailures, windowMs: WINDOW_MS };
let busOption = {};
// Per-key rate limits (set on keys with the CLI or the portal) count per process, or once for
// every server sharing Redis.
let limiter: RateLimiter | undefined;
if (config.redisUrl) {
  const [{ Redis }, { createRedisBus, createRedisRateLimiter, createRedisThrottle }] = await Promise.all([import('ioredis'), import('@keyscope/redis')]);
  const redisLog = (what: string) => (error: unknown) =>
    console.log(JSON.stringify({ time: new Date().toISOString(), level: 'warn', msg: `redis ${what} unavailable`, error: String((error as Error)?.message ?? error) }));
  const client = new Redis(config.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
  client.on('error', () => {}); // reported once per outage by the bus and the throttle below
  const channel = `${config.redisPrefix}changes`;
  const redisBus = createRedisBus({ client, channel, onError: redisLog('bus') });
  throttle = createRedisThrottle({ client, maxFailures: config.maxFailures, windowMs: WINDOW_MS, prefix: `${config.redisPrefix}throttle:`, onError: redisLog('throttle') });
  limiter = createRedisRateLimiter({ client, prefix: `${config.redisPrefix}rate:`, onError: redisLog('rate limiter') });
  redis = client;
  bus = redisBus;
  busOption = { bus: redisBus };
  backends.redis = { url: config.redisUrl, channel };
}

const data = new MonitoringData(config.db);
const ks = createKeyscope({
  ...options,
  ...busOption,
  // On in the examples (off by default in core): a client guessing keys gets 429 for a minute —
  // counted per process, or across every server sharing Redis.
  throttle,
  // Valid keys cached for KEYSCOPE_CACHE_TTL_MS (60 s); a store slower than KEYSCOPE_STORE_TIMEOUT_MS → 503.
  cache: { ttlMs: config.cacheTtlMs },
  storeTimeoutMs: config.storeTimeoutMs,
  // A JSON line per refusal, store error, failed usage write and tripped throttle (see log.ts).
  onEvent: eventLogger(config.logLevel),
  // Each key's last use and daily counts (GET /usage), written in batches once a second.
  usage: { flushIntervalMs: 1_000 },
  ...(limiter ? { limits: { limiter } } : {}),
});

let demoKeys: DemoKeys | undefined;
if (config.seed && config.store.kind === 'postgres') {
  // Keys and projects are in PostgreSQL, shared by every server; the sites are in this server's
  // own data file. Demo keys are made (and printed) once per database, not once per server.
  if ((await store.listProjects('demo-user')).length === 0) demoKeys = await seedDemo({ keyscope: ks, store, data });
  else if (!data.isSeeded()) seedData(data);
} else if (config.seed && !data.isSeeded()) {
  demoKeys = await seedDemo({ keyscope: ks, store, data });
}

const servers: Record<typeof config.framework, () => Promise<{ start: StartServer }>> = {
  express: () => import('./servers/express.js'),
  koa: () => import('./servers/koa.js'),
  fastify: () => import('./servers/fastify.js'),
  hono: () => import('./servers/hono.js'),
};
const { start } = await servers[config.framework]();
const api = createApi({ keyscope: ks, data, testDelayMs: config.testDelayMs });
// The key portal and its demo sign-in, beside the API. The session secret is read (or made) now,
// before listening; the pages are built once the address is known (PORT=0), for the portal's examples.
let pages: WebHandler | undefined;
const web: WebHandler = async (request) => (pages ? pages(request) : new Response('Starting\n', { status: 503, headers: { 'Retry-After': '1' } }));
const makeWeb = (apiUrl: string) => createWeb({ keyscope: ks, env: process.env, db: config.db, apiUrl });
let built: ReturnType<typeof makeWeb>;
try {
  built = makeWeb(baseUrl(config.host, config.port));
} catch (error) {
  console.error(`keyscope example: ${(error as Error).message}`);
  process.exit(1);
}
const server = await start({ keyscope: ks, api, web }, { port: config.port, host: config.host });
const base = baseUrl(config.host, server.port);
pages = (config.port === server.port ? built : makeWeb(base)).handler;

if (demoKeys) console.log(seededBanner(demoKeys, base, config.db, config.store));
else console.log(reuseBanner(config.db, data.isSeeded(), config.store));
console.log(backendsBanner(backends));
console.log(`keyscope example API (${config.framework}) listening on ${base}`);
console.log(`OpenAPI 3.1 description (no key needed): ${base}/openapi.json`);
console.log(`Key portal (demo sign-in as demo-user or other-user): ${base}${PORTAL_PATH}`);

/**
 * `ks.close()`, tried again while another process holds the file's write lock. The store gives a
 * usage write only a few ms (requests must not stall behind it), and a failed write is kept for
 * the next try; at shutdown nothing else waits, so wait a few seconds for the lock.
 */
async function closeKeyscope(): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      return await ks.close();
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: finishing in-flight requests, then stopping`);
  let code = 0;
  try {
    await server.close();
  } catch (error) {
    console.error('closing the server failed:', error);
    code = 1;
  }
  try {
    await closeKeyscope(); // writes the usage still pending
  } catch (error) {
    console.error('writing pending usage failed:', error);
    code = 1;
  }
  try {
    await bus?.close();
    await redis?.quit();
  } catch {
    redis?.disconnect();
  }
  await store.close();
  data.close();
  console.log('stopped');
  process.exit(code);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
