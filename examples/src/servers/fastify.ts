import { keyscope } from '@keyscope/fastify';
import Fastify, { type FastifyReply } from 'fastify';
import { INTERNAL_ERROR, NOT_FOUND, type Reply } from '../api.js';
import { clientError, clientErrorStatus } from './client-error.js';
import type { StartServer } from './types.js';
import { nodeListener } from './web-bridge.js';
import { PORTAL_PATH } from '../web.js';

/** A Buffer, so Fastify sends the Content-Type as given instead of adding a charset to it. */
function send(reply: FastifyReply, answer: Reply): FastifyReply {
  return reply.code(answer.status).headers(answer.headers).send(Buffer.from(answer.body));
}

export const start: StartServer = async ({ keyscope: ks, api, web }, { port, host }) => {
  const app = Fastify();

  // keyscope runs in onRequest for every route in this plugin; each route's config says whether
  // a user-level key needs X-Project-ID there, or (`false`) that the route is public. Keeping it
  // encapsulated leaves the 404 handler outside, as unmatched paths are in the other servers.
  await app.register(async (routes) => {
    await routes.register(keyscope, { keyscope: ks });
    const projectOptional = { config: { keyscope: { project: 'optional' as const } } };
    const projectRequired = { config: { keyscope: { project: 'required' as const } } };

    routes.get('/health', { config: { keyscope: false } }, (_req, reply) => send(reply, api.health()));
    routes.get('/openapi.json', { config: { keyscope: false } }, (_req, reply) => send(reply, api.openApi()));
    routes.get('/validate', projectOptional, (req, reply) => send(reply, api.validate(req.auth)));
    routes.get('/projects', projectOptional, async (req, reply) => send(reply, await api.projects(req.auth)));
    routes.get('/sites', projectRequired, (req, reply) => send(reply, api.sites(req.auth)));
    routes.get<{ Params: { siteId: string } }>('/sites/:siteId/summary', projectRequired, (req, reply) =>
      send(reply, api.siteSummary(req.auth, req.params.siteId)),
    );
    routes.get('/monitoring', projectRequired, (req, reply) => send(reply, api.monitoring(req.auth)));
    routes.get('/usage', projectRequired, async (req, reply) => send(reply, await api.usage(req.auth)));
    if (api.slowRouteEnabled) routes.get('/test/slow', projectOptional, async (req, reply) => send(reply, await api.slow(req.auth)));
  });

  // The portal and the demo sign-in: a Fetch handler given the raw request, body unread (no
  // content-type parsing in this scope), outside keyscope's scope.
  await app.register(async (pages) => {
    const listener = nodeListener(web);
    pages.removeAllContentTypeParsers();
    pages.addContentTypeParser('*', (_req, _payload, done) => done(null));
    const handler = async (req: { raw: import('node:http').IncomingMessage }, reply: FastifyReply) => {
      reply.hijack();
      await listener(req.raw, reply.raw);
    };
    for (const url of [PORTAL_PATH, `${PORTAL_PATH}/*`, '/signin', '/signout', '/signin.css']) pages.all(url, handler);
  });

  app.setNotFoundHandler((_req, reply) => send(reply, NOT_FOUND));
  app.setErrorHandler((error, _req, reply) => {
    const status = clientErrorStatus(error); // e.g. 400 for a body Fastify cannot parse
    if (status !== undefined) return send(reply, clientError(status));
    console.error('request failed:', error);
    return send(reply, INTERNAL_ERROR);
  });

  await app.listen({ port, host });
  const address = app.server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close() {
      // app.close() waits for requests in flight; like closeServer(), give them 10 s at most.
      const force = setTimeout(() => app.server.closeAllConnections(), 10_000).unref();
      return app.close().finally(() => clearTimeout(force));
    },
  };
};
