// One benchmark server in its own process: FRAMEWORK × VARIANT, answering GET /sites.
// Variants: bare (no auth), hand (the hand-written reference check), keyscope, peer (the
// framework's popular alternative, where one exists). Started by ../run.mjs with fork(), it
// reports its port and answers { stats } messages with keyscope's store-call counts.
// keyscope's store is SQLite (BENCH_DB) unless BENCH_STORE=postgres: then a PostgresStore on
// BENCH_DATABASE_URL and BENCH_PG_SCHEMA (migrated and filled by run.mjs), with its defaults.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createHandCheck } from '../hand-check.mjs';

const { FRAMEWORK, VARIANT, BENCH_DB, BENCH_KEYS, BENCH_CACHE_MAX = '10000', BENCH_STORE = 'sqlite', BENCH_DATABASE_URL, BENCH_PG_SCHEMA } = process.env;
const keys = JSON.parse(readFileSync(BENCH_KEYS, 'utf8')); // { owner, projectId, plaintext: [...] }
const payload = { ok: true };

const handCheck = createHandCheck(keys.plaintext, keys.owner, keys.projectId);

let storeCalls = 0;
async function keyscopeInstance() {
  const { createKeyscope } = await import('@keyscope/core');
  let store;
  if (BENCH_STORE === 'postgres') {
    const { PostgresStore } = await import('@keyscope/postgres');
    store = new PostgresStore({ connectionString: BENCH_DATABASE_URL, schema: BENCH_PG_SCHEMA });
    await store.ready(); // fail at startup, not in the measurement
  } else {
    const { SqliteStore } = await import('@keyscope/sqlite');
    store = new SqliteStore({ filename: BENCH_DB });
  }
  const findKeyByHash = store.findKeyByHash.bind(store);
  store.findKeyByHash = (h) => {
    storeCalls++;
    return findKeyByHash(h);
  };
  return createKeyscope({ store, cache: { max: Number(BENCH_CACHE_MAX) } });
}

async function express() {
  const { default: express } = await import('express');
  const app = express();
  if (VARIANT === 'keyscope') app.use((await import('@keyscope/express')).keyscope(await keyscopeInstance()));
  if (VARIANT === 'hand') app.use((req, res, next) => (handCheck(req.headers) ? next() : res.status(401).json({ error: 'Invalid API key' })));
  if (VARIANT === 'peer') {
    const { default: passport } = await import('passport');
    const { HeaderAPIKeyStrategy } = await import('passport-headerapikey');
    const plain = new Map(keys.plaintext.map((k) => [k, { ownerId: keys.owner }]));
    passport.use(new HeaderAPIKeyStrategy({ header: 'X-API-Key', prefix: '' }, false, (key, done) => done(null, plain.get(key) ?? false)));
    app.use(passport.initialize());
    app.use(passport.authenticate('headerapikey', { session: false }));
  }
  app.get('/sites', (req, res) => res.json(payload));
  return createServer(app);
}

async function koa() {
  const { default: Koa } = await import('koa');
  const app = new Koa();
  if (VARIANT === 'keyscope') app.use((await import('@keyscope/koa')).keyscope(await keyscopeInstance()));
  if (VARIANT === 'hand') app.use((ctx, next) => (handCheck(ctx.headers) ? next() : ((ctx.status = 401), (ctx.body = { error: 'Invalid API key' }))));
  app.use((ctx) => {
    if (ctx.path === '/sites') ctx.body = payload;
  });
  return createServer(app.callback());
}

async function fastify() {
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  if (VARIANT === 'keyscope') await app.register((await import('@keyscope/fastify')).keyscope, { keyscope: await keyscopeInstance() });
  if (VARIANT === 'hand') {
    app.addHook('onRequest', async (request, reply) => {
      if (!handCheck(request.headers)) return reply.code(401).send({ error: 'Invalid API key' });
    });
  }
  if (VARIANT === 'peer') await app.register((await import('@fastify/bearer-auth')).default, { keys: new Set(keys.plaintext) });
  app.get('/sites', async () => payload);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app.server;
}

async function hono() {
  const { Hono } = await import('hono');
  const { getRequestListener } = await import('@hono/node-server');
  const app = new Hono();
  if (VARIANT === 'keyscope') app.use((await import('@keyscope/fetch/hono')).keyscope(await keyscopeInstance()));
  if (VARIANT === 'hand') {
    app.use(async (c, next) => {
      const h = { 'x-api-key': c.req.header('x-api-key'), 'x-project-id': c.req.header('x-project-id') };
      if (!handCheck(h)) return c.json({ error: 'Invalid API key' }, 401);
      await next();
    });
  }
  app.get('/sites', (c) => c.json(payload));
  return createServer(getRequestListener(app.fetch));
}

const builders = { express, koa, fastify, hono };
if (!builders[FRAMEWORK]) throw new Error(`FRAMEWORK must be one of ${Object.keys(builders).join(', ')}`);
const server = await builders[FRAMEWORK]();
if (!server.listening) await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
process.on('message', (message) => {
  if (message === 'stats') process.send({ storeCalls });
  if (message === 'reset') storeCalls = 0;
  if (message === 'stop') server.close(() => process.exit(0));
});
// The parent gone (a crash, Ctrl-C): go too, rather than linger holding a port and connections.
process.on('disconnect', () => process.exit(0));
process.send({ port: server.address().port });
