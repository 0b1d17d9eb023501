import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { keyscope } from '@keyscope/fetch/hono';
import { Hono, type Context } from 'hono';
import { INTERNAL_ERROR, NOT_FOUND, type Reply } from '../api.js';
import { clientError, clientErrorStatus } from './client-error.js';
import { closeServer } from './close.js';
import type { StartServer } from './types.js';
import { isWebPath } from '../web.js';

function send(c: Context, reply: Reply): Response {
  return c.body(reply.body, reply.status as 200, reply.headers);
}

export const start: StartServer = async ({ keyscope: ks, api, web }, { port, host }) => {
  const app = new Hono();

  // Each route says whether a user-level key needs X-Project-ID there; /health and /openapi.json have no key check.
  // The client address feeds the failed-attempt throttle.
  const clientIp = (c: Context) => getConnInfo(c).remote.address;
  const projectOptional = keyscope(ks, { project: 'optional', clientIp });
  const projectRequired = keyscope(ks, { project: 'required', clientIp });

  // The portal and the demo sign-in: a Fetch handler, called as is.
  app.use(async (c, next) => (isWebPath(c.req.path) ? web(c.req.raw) : next()));

  app.get('/health', (c) => send(c, api.health()));
  app.get('/openapi.json', (c) => send(c, api.openApi()));
  app.get('/validate', projectOptional, (c) => send(c, api.validate(c.get('auth'))));
  app.get('/projects', projectOptional, async (c) => send(c, await api.projects(c.get('auth'))));
  app.get('/sites', projectRequired, (c) => send(c, api.sites(c.get('auth'))));
  app.get('/sites/:siteId/summary', projectRequired, (c) => send(c, api.siteSummary(c.get('auth'), c.req.param('siteId'))));
  app.get('/monitoring', projectRequired, (c) => send(c, api.monitoring(c.get('auth'))));
  app.get('/usage', projectRequired, async (c) => send(c, await api.usage(c.get('auth'))));
  if (api.slowRouteEnabled) app.get('/test/slow', projectOptional, async (c) => send(c, await api.slow(c.get('auth'))));

  app.notFound((c) => send(c, NOT_FOUND));
  app.onError((error, c) => {
    const status = clientErrorStatus(error); // an HTTPException with a 4xx status
    if (status !== undefined) return send(c, clientError(status));
    console.error('request failed:', error);
    return send(c, INTERNAL_ERROR);
  });

  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port, hostname: host }, () => resolve(s));
    s.once('error', reject);
  });
  return { port: (server.address() as AddressInfo).port, close: () => closeServer(server as Server) };
};
