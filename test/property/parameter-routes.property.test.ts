/**
 * Project-scoped parameter routes below a mount prefix (`/sites/:siteId`,
 * `/sites/:siteId/summary`), keyscope mounted the way each adapter's README documents for a
 * group of routes. A parameter can take any value, `validate` and `projects` included: the
 * handler behind `/sites/:siteId` is project-scoped whatever `siteId` is, so it must never run
 * with `projectId: null` (property 2), nor without a valid key (property 1).
 * Reproduce a failure with the seed it prints: KEYSCOPE_PROPERTY_SEED=<seed>.
 */
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey, type AuthContext, type Keyscope } from '@keyscope/core';
import { keyscope as expressKeyscope } from '@keyscope/express';
import { keyscope as fastifyKeyscope } from '@keyscope/fastify';
import { keyscope as honoKeyscope } from '@keyscope/fetch/hono';
import { protectedRoutes } from '@keyscope/koa';
import { getRequestListener } from '@hono/node-server';
import Router from '@koa/router';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { createFixture, type KeyName } from '../conformance/fixture.js';
import { rawRequest } from './raw-http.js';

const SEED = Number(process.env.KEYSCOPE_PROPERTY_SEED ?? 20_250_611);
const RUNS = Number(process.env.KEYSCOPE_PROPERTY_RUNS ?? 300);

const fixture = await createFixture();
const ids: Partial<Record<KeyName, string>> = {};
for (const name of ['user', 'project', 'otherUser'] as const) ids[name] = (await fixture.store.findKeyByHash(hashKey(fixture.keys[name])))!.id;

interface App {
  port: number;
  close(): Promise<void>;
}
const answer = (route: string, siteId: unknown, auth: AuthContext | null | undefined) => ({ route, siteId, auth: auth ?? null });

function listen(server: Server): Promise<App> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as AddressInfo).port, close: () => new Promise<void>((done) => server.close(() => done())) })),
  );
}

const APPS: Record<string, (ks: Keyscope) => Promise<App>> = {
  express(ks) {
    const app = express();
    const sites = express.Router();
    sites.use(expressKeyscope(ks));
    sites.get('/:siteId', (req, res) => void res.json(answer('site', req.params.siteId, req.auth)));
    sites.get('/:siteId/summary', (req, res) => void res.json(answer('site-summary', req.params.siteId, req.auth)));
    app.use('/sites', sites);
    return listen(createServer(app));
  },
  koa(ks) {
    const app = new Koa();
    app.silent = true;
    const sites = new Router({ prefix: '/sites' });
    sites.get('/:siteId', (ctx) => void (ctx.body = answer('site', ctx.params.siteId, ctx.state.auth)));
    sites.get('/:siteId/summary', (ctx) => void (ctx.body = answer('site-summary', ctx.params.siteId, ctx.state.auth)));
    app.use(protectedRoutes(ks, sites));
    return listen(createServer(app.callback()));
  },
  async fastify(ks) {
    const app = Fastify();
    await app.register(
      async (sites) => {
        await sites.register(fastifyKeyscope, { keyscope: ks });
        sites.get('/:siteId', (request) => answer('site', (request.params as { siteId: string }).siteId, request.auth));
        sites.get('/:siteId/summary', (request) => answer('site-summary', (request.params as { siteId: string }).siteId, request.auth));
      },
      { prefix: '/sites' },
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
  },
  hono(ks) {
    const app = new Hono();
    const sites = new Hono();
    sites.use(honoKeyscope(ks));
    sites.get('/:siteId', (c) => c.json(answer('site', c.req.param('siteId'), c.get('auth'))));
    sites.get('/:siteId/summary', (c) => c.json(answer('site-summary', c.req.param('siteId'), c.get('auth'))));
    app.route('/sites', sites);
    return listen(createServer(getRequestListener(app.fetch)));
  },
};

const request = fc.record({
  mount: fc.constantFrom('/sites', '/sites', '/SITES', '/Sites', '/sites/', '//sites'),
  siteId: fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('validate', 'projects', 's1') },
    { weight: 2, arbitrary: fc.constantFrom('VALIDATE', 'Validate', 'validate.', '%76alidate', 'validate%2F', '.', '..', '%2e%2e', 'validate;x', '') },
  ),
  tail: fc.constantFrom('', '', '/summary', '/', '?x=1', '/summary?x=/validate'),
  key: fc.constantFrom<KeyName>('user', 'user', 'project', 'otherUser', 'revoked', 'badChecksum'),
  project: fc.constantFrom<string | undefined>(undefined, undefined, 'proj_a', 'proj_c'),
});

describe.each(Object.keys(APPS))('%s: project-scoped parameter routes below a mount', (name) => {
  let app: App;
  beforeAll(async () => {
    app = await APPS[name]!(fixture.keyscope());
  });
  afterAll(() => app?.close());

  it(`never runs them without a valid key or a project over ${RUNS} requests (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(request, async (g) => {
        const target = `${g.mount}/${g.siteId}${g.tail}`;
        let head = `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-API-Key: ${fixture.keys[g.key]}\r\n`;
        if (g.project !== undefined) head += `X-Project-ID: ${g.project}\r\n`;
        const res = await rawRequest(app.port, Buffer.from(`${head}\r\n`));
        const where = `GET ${target} (${g.key} key, project ${g.project ?? 'none'}) → ${res.status} ${res.text.slice(0, 200)}`;
        expect(res.status, where).not.toBe(0);
        expect(res.status >= 500, where).toBe(false);
        let body: { route?: string; auth?: AuthContext | null } | undefined;
        try {
          body = JSON.parse(res.text);
        } catch {
          body = undefined;
        }
        if (body?.route === undefined) return;
        expect(ids[g.key], `${where}: handler ran without a valid key`).toBeDefined();
        expect(body.auth?.keyId, where).toBe(ids[g.key]);
        expect(body.auth?.projectId ?? null, `${where}: project-scoped handler ran without a project`).not.toBeNull();
      }),
      { seed: SEED, numRuns: RUNS },
    );
  }, 60_000);
});
