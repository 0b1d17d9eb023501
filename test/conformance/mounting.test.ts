/**
 * Every documented way of mounting each adapter, probed with spellings of the protected paths
 * that a router may match more loosely than the mount point: the case of the prefix and of the
 * path, doubled and trailing slashes, percent-encoded prefix characters. With no key, a garbage
 * key or a bad-checksum key, no handler behind keyscope may ever run: the answer is 401, 403 or
 * 404, never a 200 from a protected handler and never a 500.
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Keyscope } from '@keyscope/core';
import { keyscope as expressKeyscope } from '@keyscope/express';
import { keyscope as fastifyKeyscope } from '@keyscope/fastify';
import { authenticateRequest } from '@keyscope/fetch';
import { keyscope as honoKeyscope } from '@keyscope/fetch/hono';
import { keyscope as koaKeyscope, protectedRoutes } from '@keyscope/koa';
import { getRequestListener } from '@hono/node-server';
import Router from '@koa/router';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFixture, createSignedFixture, type Fixture, type KeyName } from './fixture.js';
import { send } from './http.js';

interface Running {
  port: number;
  close(): Promise<void>;
}
/** One mounting pattern: the protected routes below `/api/v1`, each handler reporting to `ran`. */
interface Mounting {
  adapter: 'express' | 'koa' | 'fastify' | 'hono';
  name: string;
  start(ks: Keyscope, ran: (route: string) => void): Promise<Running>;
}

/** Protected routes, as every framework writes them below the `/api/v1` mount point. */
const ROUTES = [
  ['/validate', 'validate'],
  ['/projects', 'projects'],
  ['/sites', 'sites'],
  ['/sites/:siteId/summary', 'site-summary'],
] as const;

function listen(listener: RequestListener): Promise<Running> {
  const server = createServer(listener);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ port: (server.address() as AddressInfo).port, close: () => new Promise<void>((done) => server.close(() => done())) }),
    ),
  );
}

/** The protected routes in a context registered with `{ prefix: '/api/v1' }`, the plugin inside it. */
async function fastifyGroup(app: FastifyInstance, ks: Keyscope, ran: (route: string) => void): Promise<Running> {
  await app.register(
    async (v1) => {
      await v1.register(fastifyKeyscope, { keyscope: ks });
      for (const [path, name] of ROUTES) v1.get(path, async () => (ran(name), { route: name }));
    },
    { prefix: '/api/v1' },
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}

const MOUNTINGS: readonly Mounting[] = [
  {
    adapter: 'express',
    name: 'app.use(keyscope(ks))',
    start(ks, ran) {
      const app = express();
      app.use(expressKeyscope(ks));
      for (const [path, name] of ROUTES) app.get(`/api/v1${path}`, (_req, res) => void (ran(name), res.json({ route: name })));
      return listen(app);
    },
  },
  {
    adapter: 'express',
    name: 'router.use(keyscope(ks)), app.use("/api/v1", router)',
    start(ks, ran) {
      const app = express();
      const api = express.Router();
      api.use(expressKeyscope(ks));
      for (const [path, name] of ROUTES) api.get(path, (_req, res) => void (ran(name), res.json({ route: name })));
      app.use('/api/v1', api);
      return listen(app);
    },
  },
  {
    adapter: 'express',
    name: 'per route, on a router mounted at /api/v1',
    start(ks, ran) {
      const app = express();
      const api = express.Router();
      for (const [path, name] of ROUTES) api.get(path, expressKeyscope(ks), (_req, res) => void (ran(name), res.json({ route: name })));
      app.use('/api/v1', api);
      return listen(app);
    },
  },
  {
    adapter: 'koa',
    name: 'app.use(keyscope(ks)) before a prefixed router',
    start(ks, ran) {
      const app = new Koa();
      const api = new Router({ prefix: '/api/v1' });
      for (const [path, name] of ROUTES) api.get(path, (ctx) => void (ran(name), (ctx.body = { route: name })));
      app.use(koaKeyscope(ks)).use(api.routes());
      return listen(app.callback());
    },
  },
  {
    adapter: 'koa',
    name: 'protectedRoutes(ks, router) of a prefixed router',
    start(ks, ran) {
      const app = new Koa();
      const api = new Router({ prefix: '/api/v1' });
      for (const [path, name] of ROUTES) api.get(path, (ctx) => void (ran(name), (ctx.body = { route: name })));
      app.use(protectedRoutes(ks, api)).use(api.allowedMethods());
      return listen(app.callback());
    },
  },
  {
    adapter: 'koa',
    name: 'per route, on a prefixed router',
    start(ks, ran) {
      const app = new Koa();
      const api = new Router({ prefix: '/api/v1' });
      for (const [path, name] of ROUTES) api.get(path, koaKeyscope(ks), (ctx) => void (ran(name), (ctx.body = { route: name })));
      app.use(api.routes());
      return listen(app.callback());
    },
  },
  {
    adapter: 'koa',
    name: 'protectedRoutes(ks, parent), nested routers with prefixes',
    start(ks, ran) {
      const app = new Koa();
      const parent = new Router({ prefix: '/api' });
      const child = new Router({ prefix: '/v1' });
      for (const [path, name] of ROUTES) child.get(path, (ctx) => void (ran(name), (ctx.body = { route: name })));
      parent.use(child.routes());
      app.use(protectedRoutes(ks, parent));
      return listen(app.callback());
    },
  },
  {
    adapter: 'koa',
    name: 'protectedRoutes(ks, parent), nested router mounted at a path',
    start(ks, ran) {
      const app = new Koa();
      const parent = new Router();
      const child = new Router();
      for (const [path, name] of ROUTES) child.get(path, (ctx) => void (ran(name), (ctx.body = { route: name })));
      parent.use('/api/v1', child.routes());
      app.use(protectedRoutes(ks, parent));
      return listen(app.callback());
    },
  },
  {
    adapter: 'fastify',
    name: 'register(keyscope) at the root',
    async start(ks, ran) {
      const app = Fastify();
      await app.register(fastifyKeyscope, { keyscope: ks });
      for (const [path, name] of ROUTES) app.get(`/api/v1${path}`, async () => (ran(name), { route: name }));
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
    },
  },
  {
    adapter: 'fastify',
    name: 'register(keyscope) inside register(..., { prefix: "/api/v1" })',
    start: (ks, ran) => fastifyGroup(Fastify(), ks, ran),
  },
  {
    adapter: 'fastify',
    name: 'register(..., { prefix }) on a case-insensitive, slash-forgiving router',
    start: (ks, ran) => fastifyGroup(Fastify({ routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true } }), ks, ran),
  },
  {
    adapter: 'hono',
    name: 'app.use(keyscope(ks))',
    start(ks, ran) {
      const app = new Hono();
      app.use(honoKeyscope(ks));
      for (const [path, name] of ROUTES) app.get(`/api/v1${path}`, (c) => (ran(name), c.json({ route: name })));
      return listen(getRequestListener(app.fetch));
    },
  },
  {
    adapter: 'hono',
    name: 'sub.use(keyscope(ks)), app.route("/api/v1", sub), non-strict',
    start(ks, ran) {
      const app = new Hono({ strict: false });
      const sub = new Hono({ strict: false });
      sub.use(honoKeyscope(ks));
      for (const [path, name] of ROUTES) sub.get(path, (c) => (ran(name), c.json({ route: name })));
      app.route('/api/v1', sub);
      return listen(getRequestListener(app.fetch));
    },
  },
  {
    adapter: 'hono',
    name: 'per route',
    start(ks, ran) {
      const app = new Hono();
      for (const [path, name] of ROUTES) app.get(`/api/v1${path}`, honoKeyscope(ks), (c) => (ran(name), c.json({ route: name })));
      return listen(getRequestListener(app.fetch));
    },
  },
  {
    adapter: 'hono',
    name: 'authenticateRequest(ks, request) before a case-insensitive hand-written router',
    start(ks, ran) {
      return listen(
        getRequestListener(async (request) => {
          const auth = await authenticateRequest(ks, request);
          if (!auth.ok) return auth.response;
          const path = new URL(request.url).pathname.toLowerCase().replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
          const name = path === '/api/v1/validate' ? 'validate' : path === '/api/v1/sites' ? 'sites' : undefined;
          if (!name) return new Response('not found', { status: 404 });
          ran(name);
          return Response.json({ route: name });
        }),
      );
    },
  },
];

/** Spellings of the protected paths that a router may accept but a mount point may not. */
const PATHS = [
  '/API/V1/validate',
  '/Api/v1/sites',
  '/api/V1/sites/s1/summary',
  '/API/V1/VALIDATE',
  '/api/v1/VALIDATE',
  '/api/v1/Sites',
  '/api/v1/validate/',
  '/API/V1/sites/',
  '/api/v1/',
  '/API/V1',
  '//api/v1/validate',
  '/api//v1/validate',
  '/api/v1//sites',
  '/%61pi/v1/validate',
  '/%41PI/V1/sites',
  '/api/%761/projects',
  '/api%2Fv1/validate',
  '/api%2fv1/sites',
  '/api/v1%2Fsites',
  '/api/v1/%73ites',
  '/api/v1/validate?x=1',
  '/API/v1/sites/s1/summary/',
] as const;

/** Requests that carry no usable key. */
const NO_KEY: ReadonlyArray<{ name: string; key?: KeyName | string }> = [
  { name: 'no key' },
  { name: 'a garbage key', key: 'not-a-key' },
  { name: 'a bad-checksum key', key: 'badChecksum' as KeyName },
];

// Every mounting with opaque keys, and again with signed keys (a forged signature as the bad key).
const FIXTURES: readonly Fixture[] = [await createFixture(), await createSignedFixture()];

describe.each(FIXTURES.flatMap((fixture) => MOUNTINGS.map((mounting) => ({ fixture, mounting, kind: fixture.kind, adapter: mounting.adapter, name: mounting.name }))))('$kind keys, $adapter: $name', ({ fixture, mounting }) => {
  let app: Running;
  let ks: Keyscope;
  const ran: string[] = [];
  beforeAll(async () => {
    ks = fixture.keyscope();
    app = await mounting.start(ks, (route) => ran.push(route));
  });
  afterAll(() => app?.close());

  it('serves its protected routes to a valid key (so the probes below reach a live mount)', async () => {
    const res = await send(app.port, 'GET', '/api/v1/validate', [['X-API-Key', fixture.keys.project]]);
    expect(res.status, res.text).toBe(200);
    expect(ran.splice(0)).toEqual(['validate']);
  });

  const probes = NO_KEY.flatMap((k) => PATHS.map((path) => ({ ...k, path })));
  it.each(probes)('$path with $name: no protected handler runs', async ({ key, path }) => {
    const value = key === undefined ? undefined : key in fixture.keys ? fixture.keys[key as KeyName] : key;
    const res = await send(app.port, 'GET', path, value === undefined ? [] : [['X-API-Key', value]]);
    expect(ran.splice(0), `handler ran for ${path}`).toEqual([]);
    expect([401, 403, 404], `status ${res.status}: ${res.text.slice(0, 200)}`).toContain(res.status);
  });

  // A valid user key that names no project, or another owner's: decided once after a store read
  // (the cache emptied first), once from the cache. The two answers are one, and no handler of a
  // route that needs a project runs; with another owner's project, none at all.
  it.each(PATHS)('%s with a user key, from the store and from the cache: one answer, no project-required handler', async (path) => {
    const asks: Array<{ project: string | undefined; allowed: string[] }> = [
      { project: undefined, allowed: ['validate', 'projects'] },
      { project: 'proj_c', allowed: [] },
    ];
    for (const { project, allowed } of asks) {
      const headers: [string, string][] = [['X-API-Key', fixture.keys.user], ...(project === undefined ? [] : [['X-Project-ID', project] as [string, string]])];
      ks.invalidate();
      const cold = await send(app.port, 'GET', path, headers);
      const coldRan = ran.splice(0);
      const warm = await send(app.port, 'GET', path, headers);
      const warmRan = ran.splice(0);
      expect({ status: cold.status, ran: coldRan }, `project ${project}`).toEqual({ status: warm.status, ran: warmRan });
      expect(coldRan.filter((route) => !allowed.includes(route)), `project ${project}: ${cold.text.slice(0, 200)}`).toEqual([]);
      expect(cold.status).toBeLessThan(500);
    }
  });
});
