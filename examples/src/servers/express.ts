import type { AddressInfo } from 'node:net';
import { keyscope } from '@keyscope/express';
import '@keyscope/express/augment';
import express, { type NextFunction, type Request, type Response } from 'express';
import { INTERNAL_ERROR, NOT_FOUND, type Reply } from '../api.js';
import { clientError, clientErrorStatus } from './client-error.js';
import { closeServer } from './close.js';
import type { StartServer } from './types.js';
import { nodeListener } from './web-bridge.js';
import { isWebPath } from '../web.js';

/** Write a shared Reply as is (setHeader, not res.set: Express would add a charset of its own). */
function send(res: Response, reply: Reply): void {
  res.status(reply.status);
  for (const [name, value] of Object.entries(reply.headers)) res.setHeader(name, value);
  res.end(reply.body);
}

export const start: StartServer = async ({ keyscope: ks, api, web }, { port, host }) => {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // The same routing rules as Fastify and Hono: /VALIDATE and /validate/ are other paths.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);

  // Each route says whether a user-level key needs X-Project-ID there; /health and /openapi.json have no key check.
  const projectOptional = keyscope(ks, { project: 'optional' });
  const projectRequired = keyscope(ks, { project: 'required' });

  // The portal and the demo sign-in: a Fetch handler, before any route (no key check, body unread).
  const pages = nodeListener(web);
  app.use((req, res, next) => (isWebPath(req.path) ? void pages(req, res).catch(next) : next()));

  app.get('/health', (_req, res) => send(res, api.health()));
  app.get('/openapi.json', (_req, res) => send(res, api.openApi()));
  app.get('/validate', projectOptional, (req, res) => send(res, api.validate(req.auth)));
  app.get('/projects', projectOptional, async (req, res) => send(res, await api.projects(req.auth)));
  app.get('/sites', projectRequired, (req, res) => send(res, api.sites(req.auth)));
  app.get('/sites/:siteId/summary', projectRequired, (req, res) => send(res, api.siteSummary(req.auth, req.params.siteId as string)));
  app.get('/monitoring', projectRequired, (req, res) => send(res, api.monitoring(req.auth)));
  app.get('/usage', projectRequired, async (req, res) => send(res, await api.usage(req.auth)));
  if (api.slowRouteEnabled) app.get('/test/slow', projectOptional, async (req, res) => send(res, await api.slow(req.auth)));

  app.use((_req, res) => send(res, NOT_FOUND));
  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error); // Express's own handler closes the connection
    const status = clientErrorStatus(error); // e.g. 400 for a URL Express cannot decode
    if (status !== undefined) return send(res, clientError(status));
    console.error('request failed:', error);
    send(res, INTERNAL_ERROR);
  });

  const server = app.listen(port, host);
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  return { port: (server.address() as AddressInfo).port, close: () => closeServer(server) };
};
