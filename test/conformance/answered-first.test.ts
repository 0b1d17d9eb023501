/**
 * Something answered before keyscope did: a guard that responds and still calls `next`, or a
 * timeout that responds while the key store is still being asked. keyscope must not write to
 * the finished response (no ERR_HTTP_HEADERS_SENT), must not leave a rejected promise behind
 * (an unhandled rejection ends the process), and an error while writing its answer must reach
 * the framework's own error path.
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createKeyscope, generateKey, type Keyscope, type KeyStore } from '@keyscope/core';
import { keyscope as expressKeyscope } from '@keyscope/express';
import { keyscope as fastifyKeyscope } from '@keyscope/fastify';
import { keyscope as honoKeyscope } from '@keyscope/fetch/hono';
import { keyscope as koaKeyscope } from '@keyscope/koa';
import { getRequestListener } from '@hono/node-server';
import express, { type ErrorRequestHandler } from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFixture, type Fixture } from './fixture.js';
import { send } from './http.js';

type Guard = 'answers-then-next' | 'timeout-during-lookup' | 'breaks-the-refusal';
type Mode = 'respond' | 'delegate';
interface Seen {
  /** Handlers behind keyscope that ran. */
  ran: string[];
  /** Errors that reached the framework's error path, or its log. */
  errors: string[];
}
interface Running {
  port: number;
  close(): Promise<void>;
}
interface Adapter {
  name: string;
  guards: readonly Guard[];
  start(ks: Keyscope, guard: Guard, mode: Mode, seen: Seen): Promise<Running>;
}

const TIMEOUT_MS = 20;
const LOOKUP_MS = 150;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function listen(listener: RequestListener): Promise<Running> {
  const server = createServer(listener);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ port: (server.address() as AddressInfo).port, close: () => new Promise<void>((done) => server.close(() => done())) }),
    ),
  );
}
const describeError = (err: unknown) => `${(err as { code?: string })?.code ?? ''} ${(err as Error)?.message ?? String(err)}`;

const ADAPTERS: readonly Adapter[] = [
  {
    name: 'express',
    guards: ['answers-then-next', 'timeout-during-lookup', 'breaks-the-refusal'],
    start(ks, guard, mode, seen) {
      const app = express();
      app.use((_req, res, next) => {
        if (guard === 'answers-then-next') res.status(503).end('busy');
        if (guard === 'timeout-during-lookup') setTimeout(() => void (res.headersSent || res.status(503).end('timeout')), TIMEOUT_MS);
        if (guard === 'breaks-the-refusal') res.set = () => { throw new Error('header write failed'); };
        next();
      });
      app.use(expressKeyscope(ks, { onError: mode === 'respond' ? 'respond' : 'next' }));
      app.get('/sites', (_req, res) => void (seen.ran.push('sites'), res.headersSent || res.json({ ok: true })));
      const onFailure: ErrorRequestHandler = (err, _req, res, next) => {
        seen.errors.push(describeError(err));
        if (res.headersSent) return next(err);
        res.status(err.status ?? 500).end('error handler');
      };
      app.use(onFailure);
      return listen(app);
    },
  },
  {
    name: 'koa',
    guards: ['answers-then-next', 'timeout-during-lookup', 'breaks-the-refusal'],
    start(ks, guard, mode, seen) {
      const app = new Koa();
      app.on('error', (err) => seen.errors.push(describeError(err)));
      app.use(async (ctx, next) => {
        try {
          if (guard === 'answers-then-next') ctx.res.writeHead(503).end('busy');
          if (guard === 'breaks-the-refusal') ctx.set = () => { throw new Error('header write failed'); };
          if (guard !== 'timeout-during-lookup') return await next();
          // koa-timeout style: whichever settles first answers.
          await Promise.race([next(), sleep(TIMEOUT_MS).then(() => void ((ctx.status = 503), (ctx.body = 'timeout')))]);
        } catch (err) {
          seen.errors.push(describeError(err));
          if (ctx.headerSent) return;
          ctx.status = (err as { status?: number }).status ?? 500;
          ctx.body = 'error handler';
        }
      });
      app.use(koaKeyscope(ks, { onError: mode === 'respond' ? 'respond' : 'throw' }));
      app.use((ctx) => void (seen.ran.push('sites'), (ctx.body = { ok: true })));
      return listen(app.callback());
    },
  },
  {
    name: 'fastify',
    guards: ['answers-then-next', 'timeout-during-lookup', 'breaks-the-refusal'],
    async start(ks, guard, mode, seen) {
      // Fastify reports a second reply in its log: collect the log.
      const stream = new Writable({
        write(chunk: Buffer, _encoding, done) {
          const line = JSON.parse(chunk.toString()) as { level: number; msg?: string; err?: { message?: string; code?: string } };
          if (line.level >= 40) seen.errors.push(`${line.err?.code ?? ''} ${line.err?.message ?? line.msg}`);
          done();
        },
      });
      const app = Fastify({ logger: { level: 'warn', stream } });
      app.addHook('onRequest', (_request, reply, done) => {
        if (guard === 'answers-then-next') reply.code(503).send('busy');
        if (guard === 'timeout-during-lookup') setTimeout(() => void (reply.sent || reply.code(503).send('timeout')), TIMEOUT_MS);
        if (guard === 'breaks-the-refusal') reply.headers = () => { throw new Error('header write failed'); };
        done();
      });
      app.setErrorHandler((err, _request, reply) => {
        seen.errors.push(describeError(err));
        if (reply.sent) return;
        return reply.code((err as { statusCode?: number }).statusCode ?? 500).send('error handler');
      });
      await app.register(fastifyKeyscope, { keyscope: ks, onError: mode === 'respond' ? 'respond' : 'throw' });
      app.get('/sites', async (_request, reply) => (seen.ran.push('sites'), reply.sent ? reply : { ok: true }));
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
    },
  },
  {
    name: 'hono',
    // A Hono response is a value returned up the chain: nothing is written until the chain is done.
    guards: ['answers-then-next', 'timeout-during-lookup'],
    start(ks, guard, mode, seen) {
      const app = new Hono();
      app.onError((err, c) => (seen.errors.push(describeError(err)), c.text('error handler', ((err as { status?: number }).status ?? 500) as 500)));
      app.use(async (c, next) => {
        if (guard === 'answers-then-next') {
          c.res = new Response('busy', { status: 503 });
          return next();
        }
        return Promise.race([next().then(() => c.res), sleep(TIMEOUT_MS).then(() => new Response('timeout', { status: 503 }))]);
      });
      app.use(honoKeyscope(ks, { onError: mode === 'respond' ? 'respond' : 'throw' }));
      app.get('/sites', (c) => (seen.ran.push('sites'), c.json({ ok: true })));
      return listen(getRequestListener(app.fetch));
    },
  },
];

const fixture: Fixture = await createFixture();
/** The fixture's store, answering key lookups only after LOOKUP_MS: the timeout fires first. */
function slowKeyscope(): Keyscope {
  const slow: KeyStore = {
    findKeyByHash: async (hash) => (await sleep(LOOKUP_MS), fixture.store.findKeyByHash(hash)),
    ownsProject: (ownerId, projectId) => fixture.store.ownsProject(ownerId, projectId),
    listProjects: (ownerId) => fixture.store.listProjects(ownerId),
  };
  return createKeyscope({ store: slow, usage: false });
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
beforeAll(() => void process.on('unhandledRejection', onUnhandled).on('uncaughtException', onUnhandled));
afterAll(() => void process.off('unhandledRejection', onUnhandled).off('uncaughtException', onUnhandled));

/** The request each guard is probed with, and the answer the client must get. */
const PROBES = [
  { guard: 'answers-then-next', key: 'none', expect: { status: [503], text: 'busy' } },
  { guard: 'timeout-during-lookup', key: 'unknown', expect: { status: [503], text: 'timeout' } },
  { guard: 'timeout-during-lookup', key: 'user', expect: { status: [503], text: 'timeout' } },
  { guard: 'breaks-the-refusal', key: 'none', expect: { status: [401, 500], text: 'error handler' } },
] as const;
const MODES: readonly Mode[] = ['respond', 'delegate'];

describe.each(ADAPTERS)('$name', (adapter) => {
  const cases = PROBES.filter((p) => adapter.guards.includes(p.guard)).flatMap((p) => MODES.map((mode) => ({ ...p, mode })));
  it.each(cases)('$guard, $key key, onError $mode: no second answer, no unhandled rejection', async ({ guard, key, expect: want, mode }) => {
    const seen: Seen = { ran: [], errors: [] };
    const app = await adapter.start(slowKeyscope(), guard, mode, seen);
    try {
      unhandled.length = 0;
      const headers: Array<[string, string]> = [['X-Project-ID', 'proj_a']];
      if (key === 'unknown') headers.push(['X-API-Key', generateKey('ks')]);
      if (key === 'user') headers.push(['X-API-Key', fixture.keys.user]);
      const res = await send(app.port, 'GET', '/sites', headers);
      await sleep(LOOKUP_MS + 100); // let keyscope finish after the guard answered
      const honoReplaces = adapter.name === 'hono' && guard === 'answers-then-next';
      // Hono: the earlier middleware set c.res and passed the request on; the refusal replaces it.
      expect(honoReplaces ? [503, 401] : (want.status as readonly number[])).toContain(res.status);
      if (!honoReplaces && want.status.length === 1) expect(res.text).toBe(want.text);
      if (guard === 'breaks-the-refusal' && mode === 'respond') expect(seen.errors.join('\n')).toMatch(/header write failed/);
      expect(seen.errors.join('\n')).not.toMatch(/ERR_HTTP_HEADERS_SENT|already sent|Cannot set headers/i);
      expect(unhandled.map(describeError)).toEqual([]);
      if (key !== 'user') expect(seen.ran).toEqual([]);
    } finally {
      await app.close();
    }
  });
});
