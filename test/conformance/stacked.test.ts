/**
 * Stacked middleware: a router-wide keyscope and a per-route one on the same request, as every
 * adapter documents them. The request is authenticated once (usage counted once), and the more
 * specific per-route rule decides: `project: 'optional'` on `/status` lets a user key without
 * X-Project-ID through, `project: 'required'` on `/validate` does not.
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKeyscope, MemoryStore, type AuthContext, type Keyscope } from '@keyscope/core';
import { keyscope as expressKeyscope } from '@keyscope/express';
import { keyscope as fastifyKeyscope } from '@keyscope/fastify';
import { keyscope as honoKeyscope } from '@keyscope/fetch/hono';
import { keyscope as koaKeyscope, protectedRoutes } from '@keyscope/koa';
import { getRequestListener } from '@hono/node-server';
import Router from '@koa/router';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from './http.js';

interface Running {
  port: number;
  close(): Promise<void>;
}
type Reply = (route: string, auth: AuthContext | null | undefined) => object;
const reply: Reply = (route, auth) => ({ route, auth: auth ?? null });

function listen(listener: RequestListener): Promise<Running> {
  const server = createServer(listener);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ port: (server.address() as AddressInfo).port, close: () => new Promise<void>((done) => server.close(() => done())) }),
    ),
  );
}

/** `/api/v1/status` (per-route optional), `/api/v1/validate` (per-route required), `/api/v1/sites` (router-wide only). */
const APPS: Record<string, (ks: Keyscope) => Promise<Running>> = {
  async express(ks) {
    const app = express();
    app.use(expressKeyscope(ks));
    const api = express.Router();
    api.use(expressKeyscope(ks));
    api.get('/status', expressKeyscope(ks, { project: 'optional' }), (req, res) => void res.json(reply('status', req.auth)));
    api.get('/validate', expressKeyscope(ks, { project: 'required' }), (req, res) => void res.json(reply('validate', req.auth)));
    api.get('/sites', (req, res) => void res.json(reply('sites', req.auth)));
    app.use('/api/v1', api);
    return listen(app);
  },
  async koa(ks) {
    const app = new Koa();
    app.silent = true;
    const api = new Router({ prefix: '/api/v1' });
    api.get('/status', koaKeyscope(ks, { project: 'optional' }), (ctx) => void (ctx.body = reply('status', ctx.state.auth)));
    api.get('/validate', koaKeyscope(ks, { project: 'required' }), (ctx) => void (ctx.body = reply('validate', ctx.state.auth)));
    api.get('/sites', (ctx) => void (ctx.body = reply('sites', ctx.state.auth)));
    app.use(protectedRoutes(ks, api));
    return listen(app.callback());
  },
  async fastify(ks) {
    // Fastify's idiom for a per-route rule is the route config; the plugin registered twice (root and group) is the stacking.
    const app = Fastify();
    await app.register(fastifyKeyscope, { keyscope: ks });
    await app.register(
      async (api) => {
        await api.register(fastifyKeyscope, { keyscope: ks });
        api.get('/status', { config: { keyscope: { project: 'optional' } } }, (request) => reply('status', request.auth));
        api.get('/validate', { config: { keyscope: { project: 'required' } } }, (request) => reply('validate', request.auth));
        api.get('/sites', (request) => reply('sites', request.auth));
      },
      { prefix: '/api/v1' },
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
  },
  async hono(ks) {
    const app = new Hono();
    app.use(honoKeyscope(ks));
    const api = new Hono();
    api.use(honoKeyscope(ks));
    api.get('/status', honoKeyscope(ks, { project: 'optional' }), (c) => c.json(reply('status', c.get('auth'))));
    api.get('/validate', honoKeyscope(ks, { project: 'required' }), (c) => c.json(reply('validate', c.get('auth'))));
    api.get('/sites', (c) => c.json(reply('sites', c.get('auth'))));
    app.route('/api/v1', api);
    return listen(getRequestListener(app.fetch));
  },
};

const CASES = [
  { path: '/api/v1/status', project: undefined, status: 200, route: 'status', projectId: null },
  { path: '/api/v1/status', project: 'proj_a', status: 200, route: 'status', projectId: 'proj_a' },
  { path: '/api/v1/validate', project: undefined, status: 403, code: 'project_required' },
  { path: '/api/v1/validate', project: 'proj_a', status: 200, route: 'validate', projectId: 'proj_a' },
  { path: '/api/v1/sites', project: undefined, status: 403, code: 'project_required' },
  { path: '/api/v1/sites', project: 'proj_a', status: 200, route: 'sites', projectId: 'proj_a' },
] as const;

describe.each(Object.keys(APPS))('%s: router-wide and per-route keyscope on one request', (name) => {
  const store = new MemoryStore();
  store.addProject({ id: 'proj_a', ownerId: 'usr_1', name: 'Alpha' });
  let ks: Keyscope;
  let app: Running;
  let key: string;
  let keyId: string;
  beforeAll(async () => {
    ks = createKeyscope({ store, usage: { flushIntervalMs: 60_000 } });
    ({ key, record: { id: keyId } } = await ks.keys.create({ ownerId: 'usr_1', name: 'user key', level: 'user' }));
    app = await APPS[name]!(ks);
  });
  afterAll(async () => {
    await app?.close();
    await ks?.close();
  });

  it.each(CASES)('$path with X-Project-ID $project → $status', async (c) => {
    const headers: [string, string][] = [['X-API-Key', key]];
    if (c.project) headers.push(['X-Project-ID', c.project]);
    const res = await send(app.port, 'GET', c.path, headers);
    const body = res.json as { route?: string; auth?: AuthContext; code?: string };
    expect(res.status, res.text).toBe(c.status);
    if ('route' in c) expect(body).toMatchObject({ route: c.route, auth: { keyId, projectId: c.projectId } });
    else expect(body.code).toBe(c.code);
  });

  it('counts usage once per request, however many keyscope middlewares the request met', async () => {
    const before = (await ks.keys.usage(keyId)).days.reduce((sum, d) => sum + d.count, 0);
    for (const path of ['/api/v1/status', '/api/v1/sites']) {
      const res = await send(app.port, 'GET', path, [['X-API-Key', key], ['X-Project-ID', 'proj_a']]);
      expect(res.status).toBe(200);
    }
    const after = (await ks.keys.usage(keyId)).days.reduce((sum, d) => sum + d.count, 0);
    expect(after - before).toBe(2);
  });
});
