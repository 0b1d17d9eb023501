// One benchmark server in its own process: FRAMEWORK × VARIANT, answering GET /sites.
// Variants: bare (no auth); noop (a middleware that only calls next: the cost of a layer, and
// the noise control); hand (the hand-written reference check, written as the framework's docs
// write middleware; on Fastify a synchronous onRequest hook calling done()); hand-async (Fastify
// only: the same check in an async hook, the shape keyscope's plugin has); keyscope; peer (the
// framework's popular alternative, where one exists). Started by ../run.mjs with fork(), it
// reports its port and answers { stats } messages with keyscope's store-call counts; run.mjs
// reads this process's CPU time from /proc, so nothing here measures itself.
// keyscope's store is SQLite (BENCH_DB) unless BENCH_STORE=postgres: then a PostgresStore on
// BENCH_DATABASE_URL and BENCH_PG_SCHEMA (migrated and filled by run.mjs), with its defaults.
// BENCH_USAGE=off turns usage recording off (createKeyscope's usage: false).
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createHandCheck } from '../hand-check.mjs';

const { FRAMEWORK, VARIANT, BENCH_DB, BENCH_KEYS, BENCH_CACHE_MAX = '10000', BENCH_STORE = 'sqlite', BENCH_USAGE = 'on', BENCH_DATABASE_URL, BENCH_PG_SCHEMA } = process.env;
const keys = JSON.parse(readFileSync(BENCH_KEYS, 'utf8')); // { owner, projectId, plaintext: [...] }
const payload = { ok: true };

const handCheck = createHandCheck(keys.plaintext, keys.owner, keys.projectId);

let storeCalls = 0;
async function keyscopeInstance() {
  const { createKeyscope, narrowsFindKeyByHash } = await import('@keyscope/core');
  let store;
  if (BENCH_STORE === 'postgres') {
    const { PostgresStore } = await import('@keyscope/postgres');
    store = new PostgresStore({ connectionString: BENCH_DATABASE_URL, schema: BENCH_PG_SCHEMA });
    await store.ready(); // fail at startup, not in the measurement
  } else {
    const { SqliteStore } = await import('@keyscope/sqlite');
    store = new SqliteStore({ filename: BENCH_DB });
  }
  // Count the reads a cache miss makes: findKeyForAuth where the store has it. The counting
  // wrapper says which findKeyByHash it narrows, or a miss would read the whole record instead.
  const read = typeof store.findKeyForAuth === 'function' ? 'findKeyForAuth' : 'findKeyByHash';
  const find = store[read].bind(store);
  const counted = (h) => {
    storeCalls++;
    return find(h);
  };
  if (read === 'findKeyForAuth') narrowsFindKeyByHash(counted, store.findKeyForAuth.narrows);
  store[read] = counted;
  // BENCH_USAGE=off: usage not recorded (the store comparison's third server), else the default.
  return createKeyscope({ store, cache: { max: Number(BENCH_CACHE_MAX) }, ...(BENCH_USAGE === 'off' && { usage: false }) });
}

async function express() {
  const { default: express } = await import('express');
  const app = express();
  if (VARIANT === 'noop') app.use((req, res, next) => next());
  if (VARIANT === 'keyscope') app.use((await import('@keyscope/express')).keyscope(await keyscopeInstance()));
  if (VARIANT === 'hand') app.use((req, res, next) => (handCheck(req.headers) ? next() : res.status(401).json({ error: 'Invalid API key' })));
  if (VARIANT === 'peer') {
    const { default: passport } = await import('passport');
    const { HeaderAPIKeyStrategy } = await import('passport-headerapikey');
    // The verify callback does the hand-written check's lookup (SHA-256, Map, project Set), so
    // passport's number differs from the hand-written one by passport alone.
    passport.use(new HeaderAPIKeyStrategy({ header: 'X-API-Key', prefix: '' }, true, (key, done, req) => done(null, handCheck(req.headers) ?? false)));
    app.use(passport.initialize());
    app.use(passport.authenticate('headerapikey', { session: false }));
  }
  app.get('/sites', (req, res) => res.json(payload));
  return createServer(app);
}

async function koa() {
  const { default: Koa } = await import('koa');
  const app = new Koa();
  if (VARIANT === 'noop') app.use((ctx, next) => next());
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
  // Fastify documents hooks in two styles: (request, reply, done), shown first, and async. A
  // check that does no async work needs no promise, so the reference calls done(), as keyscope's
  // hook does for a cached key; the async style runs too, to show what a promise per request costs.
  if (VARIANT === 'noop') app.addHook('onRequest', (request, reply, done) => done());
  if (VARIANT === 'hand') {
    app.addHook('onRequest', (request, reply, done) => {
      if (handCheck(request.headers)) return done();
      reply.code(401).send({ error: 'Invalid API key' });
    });
  }
  if (VARIANT === 'hand-async') {
    app.addHook('onRequest', async (request, reply) => {
      if (!handCheck(request.headers)) return reply.code(401).send({ error: 'Invalid API key' });
    });
  }
  // bearer-auth compares the key with each of its keys in turn: run.mjs sends the 500th of 1,000.
  if (VARIANT === 'peer') await app.register((await import('@fastify/bearer-auth')).default, { keys: new Set(keys.plaintext) });
  app.get('/sites', async () => payload);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app.server;
}

async function hono() {
  const { Hono } = await import('hono');
  const { getRequestListener } = await import('@hono/node-server');
  const app = new Hono();
  if (VARIANT === 'noop') {
    app.use(async (c, next) => {
      await next();
    });
  }
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
