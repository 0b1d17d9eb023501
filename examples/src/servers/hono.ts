import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Keyscope, ProjectRequirement } from '@keyscope/core';
import { authenticateRequest } from '@keyscope/fetch';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { INTERNAL_ERROR, NOT_FOUND, type Reply } from '../api.js';
import { closeServer } from './close.js';
import type { StartServer } from './types.js';

function send(c: Context, reply: Reply): Response {
  return c.body(reply.body, reply.status as 200, reply.headers);
}

/**
 * `@keyscope/fetch`'s `keyscope()` Hono middleware, plus the client address: its options have no
 * way to pass one, and the failed-attempt throttle (on in the examples) counts per address.
 * Use `keyscope(ks, { project })` from `@keyscope/fetch` when you do not throttle.
 */
function keyscope(ks: Keyscope, { project }: { project: ProjectRequirement }): MiddlewareHandler {
  return async function keyscopeMiddleware(c, next) {
    const result = await authenticateRequest(ks, c.req.raw, { project, path: c.req.path, clientIp: getConnInfo(c).remote.address });
    if (!result.ok) return result.response;
    c.set('auth', result.auth);
    return next();
  };
}

export const start: StartServer = async ({ keyscope: ks, api }, { port, host }) => {
  const app = new Hono();

  // Each route says whether a user-level key needs X-Project-ID there; /health has no key check.
  const projectOptional = keyscope(ks, { project: 'optional' });
  const projectRequired = keyscope(ks, { project: 'required' });

  app.get('/health', (c) => send(c, api.health()));
  app.get('/validate', projectOptional, (c) => send(c, api.validate(c.get('auth'))));
  app.get('/projects', projectOptional, async (c) => send(c, await api.projects(c.get('auth'))));
  app.get('/sites', projectRequired, (c) => send(c, api.sites(c.get('auth'))));
  app.get('/sites/:siteId/summary', projectRequired, (c) => send(c, api.siteSummary(c.get('auth'), c.req.param('siteId'))));
  app.get('/monitoring', projectRequired, (c) => send(c, api.monitoring(c.get('auth'))));
  app.get('/usage', projectRequired, async (c) => send(c, await api.usage(c.get('auth'))));
  if (api.slowRouteEnabled) app.get('/test/slow', projectOptional, async (c) => send(c, await api.slow(c.get('auth'))));

  app.notFound((c) => send(c, NOT_FOUND));
  app.onError((error, c) => {
    console.error('request failed:', error);
    return send(c, INTERNAL_ERROR);
  });

  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port, hostname: host }, () => resolve(s));
    s.once('error', reject);
  });
  return { port: (server.address() as AddressInfo).port, close: () => closeServer(server as import('node:http').Server) };
};
