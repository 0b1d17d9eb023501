import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import { keyscope } from '@keyscope/koa';
import Koa, { type Context } from 'koa';
import { INTERNAL_ERROR, NOT_FOUND, type Reply } from '../api.js';
import { clientError, clientErrorStatus } from './client-error.js';
import { closeServer } from './close.js';
import type { StartServer } from './types.js';
import { nodeListener } from './web-bridge.js';
import { isWebPath } from '../web.js';

function send(ctx: Context, reply: Reply): void {
  ctx.status = reply.status;
  ctx.set(reply.headers);
  ctx.body = reply.body;
}

export const start: StartServer = async ({ keyscope: ks, api, web }, { port, host }) => {
  const app = new Koa();
  // The same routing rules as Fastify and Hono: /VALIDATE and /validate/ are other paths.
  const router = new Router({ sensitive: true, strict: true });

  // Each route says whether a user-level key needs X-Project-ID there; /health and /openapi.json have no key check.
  const projectOptional = keyscope(ks, { project: 'optional' });
  const projectRequired = keyscope(ks, { project: 'required' });

  router.get('/health', (ctx) => send(ctx, api.health()));
  router.get('/openapi.json', (ctx) => send(ctx, api.openApi()));
  router.get('/validate', projectOptional, (ctx) => send(ctx, api.validate(ctx.state.auth)));
  router.get('/projects', projectOptional, async (ctx) => send(ctx, await api.projects(ctx.state.auth)));
  router.get('/sites', projectRequired, (ctx) => send(ctx, api.sites(ctx.state.auth)));
  router.get('/sites/:siteId/summary', projectRequired, (ctx) => send(ctx, api.siteSummary(ctx.state.auth, ctx.params.siteId!)));
  router.get('/monitoring', projectRequired, (ctx) => send(ctx, api.monitoring(ctx.state.auth)));
  router.get('/usage', projectRequired, async (ctx) => send(ctx, await api.usage(ctx.state.auth)));
  if (api.slowRouteEnabled) router.get('/test/slow', projectOptional, async (ctx) => send(ctx, await api.slow(ctx.state.auth)));

  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const status = clientErrorStatus(error);
      if (status !== undefined) return send(ctx, clientError(status));
      console.error('request failed:', error);
      send(ctx, INTERNAL_ERROR);
    }
  });
  // The portal and the demo sign-in: a Fetch handler writing to the raw response (Koa stands aside).
  const pages = nodeListener(web);
  app.use(async (ctx, next) => {
    if (!isWebPath(ctx.path)) return next();
    ctx.respond = false;
    await pages(ctx.req, ctx.res);
  });
  app.use(router.routes());
  // Nothing matched: the same JSON 404 as the other frameworks.
  app.use((ctx) => send(ctx, NOT_FOUND));

  const server = app.listen(port, host);
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  return { port: (server.address() as AddressInfo).port, close: () => closeServer(server) };
};
