/**
 * The consumer apps of consumer.test.ts, as a new user would write them from the packages'
 * READMEs. They are kept here as strings rather than as .ts files because the repository's own
 * tsconfig includes test/ and must not compile them: they import the installed tarballs and
 * frameworks (express-oauth2-jwt-bearer, Koa 2) that the workspace does not have.
 *
 * Every server listens on an ephemeral port and prints one line, `READY {"port", "keys"}`, once
 * it accepts requests; it shuts down cleanly (flushing usage, closing its store) on SIGTERM. The
 * routes are the same everywhere:
 *   GET /health                  public
 *   GET <prefix>/validate        a key; project-optional (projectId null for a user key)
 *   GET <prefix>/sites           a key and a project (a user key needs X-Project-ID)
 * with <prefix> `/api/v1` (the Express + Auth0 app mounts keyscope's routes at `/keys`).
 */

export interface ConsumerApp {
  /** Shown in test names and failure messages. */
  title: string;
  /**
   * Which temp project it lives in: `main` has every package and Express, Fastify and the OAuth
   * library; `koa` is a CommonJS project with Koa 2; `fetch` has only core + fetch.
   */
  project: 'main' | 'koa' | 'fetch';
  /** Source path inside the project, e.g. `src/express/app.ts`. */
  source: string;
  /** Emitted JavaScript path inside the project (tsc with `outDir: out/<dir>`). */
  output: string;
  /** The route prefix of the keyscope routes. */
  prefix: string;
  code: string;
}

const ready = `console.log('READY ' + JSON.stringify({ port: (server.address() as AddressInfo).port, keys: { user: user.key, project: project.key } }));`;

/** Express 5, ESM TypeScript, the SQLite store on the file named by KEYSCOPE_DB. */
const express: ConsumerApp = {
  title: 'Express 5 (ESM) + @keyscope/sqlite',
  project: 'main',
  source: 'src/express/app.ts',
  output: 'out/express/app.js',
  prefix: '/api/v1',
  code: `import type { AddressInfo } from 'node:net';
import express from 'express';
import { createKeyscope } from '@keyscope/core';
import { keyscope } from '@keyscope/express';
import '@keyscope/express/augment';
import { SqliteStore } from '@keyscope/sqlite';

const filename = process.env.KEYSCOPE_DB;
if (!filename) throw new Error('KEYSCOPE_DB must name the database file');
const store = new SqliteStore({ filename });
await store.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
const ks = createKeyscope({ store });
const user = await ks.keys.create({ ownerId: 'user_1', name: 'consumer user key', level: 'user' });
const project = await ks.keys.create({ ownerId: 'user_1', name: 'consumer project key', level: 'project', projectId: 'proj_a' });

const app = express();
app.get('/health', (_req, res) => { res.json({ ok: true }); });
const api = express.Router();
api.use(keyscope(ks));
api.get('/validate', (req, res) => { res.json({ valid: true, auth: req.auth }); });
api.get('/sites', (req, res) => { res.json({ projectId: req.auth!.projectId }); });
app.use('/api/v1', api);

const server = app.listen(0, () => { ${ready} });
process.once('SIGTERM', () => {
  server.close(async () => {
    await ks.close();
    store.close();
  });
});
`,
};

/**
 * Koa 2 and @koa/router in a `"type": "commonjs"` project, every import a `require`, so it loads
 * each package's `require` entry and `index.d.cts` typings. Mounted as packages/koa/README.md
 * documents (`protectedRoutes(ks, router)` in place of `router.routes()`).
 */
const koa: ConsumerApp = {
  title: 'Koa 2 (CommonJS) + @koa/router',
  project: 'koa',
  source: 'src/koa/app.ts',
  output: 'out/koa/app.js',
  prefix: '/api/v1',
  code: `import type { AddressInfo } from 'node:net';
import Koa = require('koa');
import KoaRouter = require('@koa/router');
import core = require('@keyscope/core');
import keyscopeKoa = require('@keyscope/koa');

async function main(): Promise<void> {
  const store = new core.MemoryStore();
  store.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
  const ks = core.createKeyscope({ store });
  const user = await ks.keys.create({ ownerId: 'user_1', name: 'consumer user key', level: 'user' });
  const project = await ks.keys.create({ ownerId: 'user_1', name: 'consumer project key', level: 'project', projectId: 'proj_a' });

  const open = new KoaRouter.Router();
  open.get('/health', (ctx) => { ctx.body = { ok: true }; });
  const api = new KoaRouter.Router({ prefix: '/api/v1' });
  api.get('/validate', (ctx) => { ctx.body = { valid: true, auth: ctx.state.auth }; });
  api.get('/sites', (ctx) => { ctx.body = { projectId: ctx.state.auth!.projectId }; });

  const app = new Koa();
  app.use(open.routes()).use(keyscopeKoa.protectedRoutes(ks, api));
  const server = app.listen(0, () => { ${ready} });
  process.once('SIGTERM', () => { server.close(() => { void ks.close(); }); });
}

main().catch((err: unknown) => { console.error(err); process.exit(1); });
`,
};

/** Fastify 5, ESM TypeScript, as packages/fastify/README.md shows it. */
const fastify: ConsumerApp = {
  title: 'Fastify 5 (ESM)',
  project: 'main',
  source: 'src/fastify/app.ts',
  output: 'out/fastify/app.js',
  prefix: '/api/v1',
  code: `import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { createKeyscope, MemoryStore } from '@keyscope/core';
import keyscope from '@keyscope/fastify';

const store = new MemoryStore();
store.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
const ks = createKeyscope({ store });
const user = await ks.keys.create({ ownerId: 'user_1', name: 'consumer user key', level: 'user' });
const project = await ks.keys.create({ ownerId: 'user_1', name: 'consumer project key', level: 'project', projectId: 'proj_a' });

const app = Fastify();
app.get('/health', async () => ({ ok: true }));
await app.register(async (api) => {
  await api.register(keyscope, { keyscope: ks });
  api.get('/validate', async (request) => ({ valid: true, auth: request.auth }));
  api.get('/sites', async (request) => ({ projectId: request.auth!.projectId }));
}, { prefix: '/api/v1' });

await app.listen({ port: 0, host: '127.0.0.1' });
const server = app.server;
${ready}
process.once('SIGTERM', () => { void app.close().then(() => ks.close()); });
`,
};

/**
 * Fetch API only: @keyscope/core and @keyscope/fetch in a project without hono, calling
 * `authenticateRequest(ks, new Request(...))` from a plain node:http server that turns each
 * request into a Fetch `Request` — what any Fetch runtime (Next.js, Bun, Deno, Workers) does.
 */
const fetchOnly: ConsumerApp = {
  title: 'Fetch API only (no hono installed)',
  project: 'fetch',
  source: 'src/fetch/app.ts',
  output: 'out/fetch/app.js',
  prefix: '/api/v1',
  code: `import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKeyscope, MemoryStore } from '@keyscope/core';
import { authenticateRequest } from '@keyscope/fetch';

const store = new MemoryStore();
store.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
const ks = createKeyscope({ store });
const user = await ks.keys.create({ ownerId: 'user_1', name: 'consumer user key', level: 'user' });
const project = await ks.keys.create({ ownerId: 'user_1', name: 'consumer project key', level: 'project', projectId: 'proj_a' });

/** The app: a Fetch handler, as a route handler of any Fetch runtime would be. */
async function handle(request: Request): Promise<Response> {
  const { pathname } = new URL(request.url);
  if (pathname === '/health') return Response.json({ ok: true });
  if (pathname === '/api/v1/validate') {
    const result = await authenticateRequest(ks, request, { project: 'optional' });
    if (!result.ok) return result.response;
    return Response.json({ valid: true, auth: result.auth });
  }
  if (pathname === '/api/v1/sites') {
    const result = await authenticateRequest(ks, request, { project: 'required' });
    if (!result.ok) return result.response;
    return Response.json({ projectId: result.auth.projectId });
  }
  return new Response('Not Found', { status: 404 });
}

const server = createServer((req, res) => {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
  }
  const request = new Request(new URL(req.url ?? '/', 'http://' + (req.headers.host ?? 'localhost')), { method: req.method, headers });
  handle(request).then(async (response) => {
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  }, (err: unknown) => {
    console.error(err);
    res.writeHead(500).end();
  });
});
server.listen(0, '127.0.0.1', () => { ${ready} });
process.once('SIGTERM', () => { server.close(() => { void ks.close(); }); });
`,
};

/**
 * Express with express-oauth2-jwt-bearer in the same strict program: Auth0 types and sets
 * `req.auth`, so keyscope's augmentation is left out and its caller goes under `apiKey`, read
 * with `authOf`. The OAuth middleware guards /oauth/me (an HS256 JWT, secret from
 * OAUTH_SECRET); keyscope guards the /keys router.
 */
const expressAuth0: ConsumerApp = {
  title: 'Express 5 beside express-oauth2-jwt-bearer',
  project: 'main',
  source: 'src/express-auth0/app.ts',
  output: 'out/express-auth0/app.js',
  prefix: '/keys',
  code: `import type { AddressInfo } from 'node:net';
import express from 'express';
import { auth } from 'express-oauth2-jwt-bearer';
import { createKeyscope, MemoryStore } from '@keyscope/core';
import { authOf, keyscope } from '@keyscope/express';

const secret = process.env.OAUTH_SECRET;
if (!secret) throw new Error('OAUTH_SECRET must be set');
const store = new MemoryStore();
store.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
const ks = createKeyscope({ store });
const user = await ks.keys.create({ ownerId: 'user_1', name: 'consumer user key', level: 'user' });
const project = await ks.keys.create({ ownerId: 'user_1', name: 'consumer project key', level: 'project', projectId: 'proj_a' });

const app = express();
app.get('/health', (_req, res) => { res.json({ ok: true }); });

const oauth = auth({ issuer: 'https://issuer.consumer.test/', audience: 'keyscope-consumer', secret, tokenSigningAlg: 'HS256' });
app.get('/oauth/me', oauth, (req, res) => { res.json({ sub: req.auth?.payload.sub ?? null }); });

const keys = express.Router();
// req.auth is Auth0's here: keyscope puts its caller under another name, read with authOf.
keys.use(keyscope(ks, { property: 'apiKey' }));
keys.get('/validate', (req, res) => { res.json({ valid: true, auth: authOf(req) }); });
keys.get('/sites', (req, res) => { res.json({ projectId: authOf(req).projectId }); });
app.use('/keys', keys);

const server = app.listen(0, () => { ${ready} });
process.once('SIGTERM', () => { server.close(() => { void ks.close(); }); });
`,
};

export const APPS = { express, koa, fastify, fetchOnly, expressAuth0 } as const;
export type AppName = keyof typeof APPS;
