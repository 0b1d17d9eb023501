import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import type { WebHandler } from '../web.js';

/**
 * The portal and sign-in pages (a Fetch handler) as a Node `(req, res)` listener, for Express, Koa
 * and Fastify: @hono/node-server's bridge turns the IncomingMessage (body unread) into a Request
 * and writes the Response back, streaming. Hono calls the Fetch handler directly.
 */
export function nodeListener(web: WebHandler): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return getRequestListener((request) => web(request));
}

/** The path of a request target, for routing only (no decoding: the portal decides what it serves). */
export function pathOf(url: string | undefined): string {
  const target = url ?? '/';
  const end = target.search(/[?#]/);
  return end === -1 ? target : target.slice(0, end);
}
