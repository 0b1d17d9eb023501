/**
 * The same small API built with each adapter: `GET /health` public, `/validate` and `/projects`
 * project-optional (by the core's path list), `/sites` and `/sites/:siteId/summary`
 * project-scoped, and the same four under a route group mounted at `/api/v1`.
 * In `delegate` mode the adapter hands refusals to the framework's own error path, and the
 * app's error handler formats them (marking the body with `handledBy`).
 */
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { AuthContext, Keyscope } from '@keyscope/core';
import { keyscope as expressKeyscope } from '@keyscope/express';
import { keyscope as fastifyKeyscope } from '@keyscope/fastify';
import { keyscope as honoKeyscope } from '@keyscope/fetch/hono';
import { keyscope as koaKeyscope, protectedRoutes } from '@keyscope/koa';
import { getRequestListener } from '@hono/node-server';
import Router from '@koa/router';
import express, { type ErrorRequestHandler } from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';

export type Mode = 'respond' | 'delegate';
export interface RunningApp {
  port: number;
  close(): Promise<void>;
}
export interface Adapter {
  name: string;
  /** What the adapter's delegation mode is called. */
  delegate: string;
  start(ks: Keyscope, mode: Mode): Promise<RunningApp>;
}

/** Route paths as every framework writes them, and the name each handler reports. */
export const ROUTES = [
  ['/validate', 'validate'],
  ['/projects', 'projects'],
  ['/sites', 'sites'],
  ['/sites/:siteId/summary', 'site-summary'],
] as const;
/** Handlers that must never run without a project. */
export const PROJECT_SCOPED = new Set(['sites', 'site-summary', 'v1:sites', 'v1:site-summary']);
export const HANDLED_BY = 'app-error-handler';

const answer = (route: string, auth: AuthContext | null | undefined) => ({ route, auth: auth ?? null });

/** What every delegate-mode error handler does with a KeyscopeError: status, headers, body. */
function formatError(err: unknown): { status: number; headers: Record<string, string>; body: object } {
  const e = err as { status?: unknown; headers?: Record<string, string>; body?: object };
  if (typeof e?.status !== 'number' || !e.body) return { status: 500, headers: {}, body: { error: 'unexpected' } };
  return { status: e.status, headers: { ...e.headers }, body: { ...e.body, handledBy: HANDLED_BY } };
}

function listen(server: Server): Promise<RunningApp> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    );
  });
}

const expressAdapter: Adapter = {
  name: 'express',
  delegate: 'next',
  start(ks, mode) {
    const onError = mode === 'respond' ? 'respond' : 'next';
    const app = express();
    app.get('/health', (req, res) => void res.json(answer('health', req.auth)));
    const v1 = express.Router();
    v1.use(expressKeyscope(ks, { onError }));
    for (const [path, name] of ROUTES) v1.get(path, (req, res) => void res.json(answer(`v1:${name}`, req.auth)));
    app.use('/api/v1', v1);
    app.use(expressKeyscope(ks, { onError }));
    for (const [path, name] of ROUTES) app.get(path, (req, res) => void res.json(answer(name, req.auth)));
    const onFailure: ErrorRequestHandler = (err, _req, res, _next) => {
      const { status, headers, body } = formatError(err);
      res.status(status).set(headers).end(JSON.stringify(body));
    };
    app.use(onFailure);
    return listen(createServer(app));
  },
};

const koaAdapter: Adapter = {
  name: 'koa',
  delegate: 'throw',
  start(ks, mode) {
    const onError = mode === 'respond' ? 'respond' : 'throw';
    const app = new Koa();
    app.silent = true;
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (err) {
        const { status, headers, body } = formatError(err);
        ctx.status = status;
        ctx.set(headers);
        ctx.body = JSON.stringify(body);
      }
    });
    const open = new Router();
    open.get('/health', (ctx) => void (ctx.body = answer('health', ctx.state.auth)));
    app.use(open.routes());
    const v1 = new Router({ prefix: '/api/v1' });
    for (const [path, name] of ROUTES) v1.get(path, (ctx) => void (ctx.body = answer(`v1:${name}`, ctx.state.auth)));
    app.use(protectedRoutes(ks, v1, { onError }));
    app.use(koaKeyscope(ks, { onError }));
    const main = new Router();
    for (const [path, name] of ROUTES) main.get(path, (ctx) => void (ctx.body = answer(name, ctx.state.auth)));
    app.use(main.routes());
    return listen(createServer(app.callback()));
  },
};

const fastifyAdapter: Adapter = {
  name: 'fastify',
  delegate: 'throw',
  async start(ks, mode) {
    const onError = mode === 'respond' ? 'respond' : 'throw';
    const app = Fastify();
    app.setErrorHandler((err, _request, reply) => {
      const { status, headers, body } = formatError(err);
      return reply.code(status).headers(headers).send(JSON.stringify(body));
    });
    await app.register(async (top) => {
      await top.register(fastifyKeyscope, { keyscope: ks, onError });
      top.get('/health', { config: { keyscope: false } }, (request) => answer('health', request.auth));
      for (const [path, name] of ROUTES) top.get(path, (request) => answer(name, request.auth));
    });
    await app.register(
      async (v1) => {
        await v1.register(fastifyKeyscope, { keyscope: ks, onError });
        for (const [path, name] of ROUTES) v1.get(path, (request) => answer(`v1:${name}`, request.auth));
      },
      { prefix: '/api/v1' },
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
  },
};

const honoAdapter: Adapter = {
  name: 'hono',
  delegate: 'throw',
  start(ks, mode) {
    const onError = mode === 'respond' ? 'respond' : 'throw';
    const app = new Hono();
    app.onError((err, c) => {
      const { status, headers, body } = formatError(err);
      return new Response(JSON.stringify(body), { status, headers });
    });
    app.get('/health', (c) => c.json(answer('health', c.get('auth'))));
    const v1 = new Hono();
    v1.use(honoKeyscope(ks, { onError }));
    for (const [path, name] of ROUTES) v1.get(path, (c) => c.json(answer(`v1:${name}`, c.get('auth'))));
    app.route('/api/v1', v1);
    app.use(honoKeyscope(ks, { onError }));
    for (const [path, name] of ROUTES) app.get(path, (c) => c.json(answer(name, c.get('auth'))));
    return listen(createServer(getRequestListener(app.fetch)));
  },
};

export const ADAPTERS: readonly Adapter[] = [expressAdapter, koaAdapter, fastifyAdapter, honoAdapter];
