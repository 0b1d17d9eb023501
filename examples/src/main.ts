/**
 * `pnpm start`: the example monitoring API on the framework named by FRAMEWORK, over one SQLite
 * file (keyscope's tables and the monitoring data side by side). See examples/README.md.
 */
import { createKeyscope } from '@keyscope/core';
import keyscopeOptions from '../keyscope.config.js';
import { createApi } from './api.js';
import { baseUrl, reuseBanner, seededBanner } from './banner.js';
import { loadConfig } from './config.js';
import { eventLogger } from './log.js';
import { MonitoringData } from './data.js';
import { seedDemo, type DemoKeys } from './seed.js';
import type { StartServer } from './servers/types.js';

// The environment is checked before anything is opened.
const config = loadConfig();

// The options the CLI loads too (keyscope.config.ts: the store on config.db, key prefix, headers,
// project-optional paths), and on top of them what only a server taking traffic needs.
const options = keyscopeOptions();
const { store } = options;
const data = new MonitoringData(config.db);
const ks = createKeyscope({
  ...options,
  // On in the examples (off by default in core): a client guessing keys gets 429 for a minute.
  throttle: { maxFailures: config.maxFailures, windowMs: 60_000 },
  // A JSON line per refusal, store error, failed usage write and tripped throttle (see log.ts).
  onEvent: eventLogger(config.logLevel),
  // Each key's last use and daily counts (GET /usage), written in batches once a second.
  usage: { flushIntervalMs: 1_000 },
});

let demoKeys: DemoKeys | undefined;
if (config.seed && !data.isSeeded()) demoKeys = await seedDemo({ keyscope: ks, store, data });

const servers: Record<typeof config.framework, () => Promise<{ start: StartServer }>> = {
  express: () => import('./servers/express.js'),
  koa: () => import('./servers/koa.js'),
  fastify: () => import('./servers/fastify.js'),
  hono: () => import('./servers/hono.js'),
};
const { start } = await servers[config.framework]();
const api = createApi({ keyscope: ks, data, testDelayMs: config.testDelayMs });
const server = await start({ keyscope: ks, api }, { port: config.port, host: config.host });
const base = baseUrl(config.host, server.port);

if (demoKeys) console.log(seededBanner(demoKeys, base, config.db));
else console.log(reuseBanner(config.db, data.isSeeded()));
console.log(`keyscope example API (${config.framework}) listening on ${base}`);
console.log(`OpenAPI 3.1 description (no key needed): ${base}/openapi.json`);

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
  store.close();
  data.close();
  console.log('stopped');
  process.exit(code);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
