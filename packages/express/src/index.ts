import { checkAdapterOptions, toKeyscopeError, type AuthContext, type Keyscope, type ProjectRequirement } from '@keyscope/core';
import type { Request, RequestHandler } from 'express';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Who is calling, set by `@keyscope/express` once the request is authenticated. */
      auth?: AuthContext;
    }
  }
}

/** Options of {@link keyscope}. */
export interface KeyscopeExpressOptions {
  /**
   * Whether a user-level key needs `X-Project-ID` here. Default: the core decides on the route
   * Express will run (its path template relative to its router) and `projectOptionalPaths`.
   */
  project?: ProjectRequirement;
  /**
   * `'respond'` (default) answers refusals with the problem+json response; `'next'` calls
   * `next(err)` with a `KeyscopeError` (`status`, `headers`, `body`) for your error handler.
   */
  onError?: 'respond' | 'next';
}

/**
 * Express middleware: authenticates the request and sets `req.auth`, or refuses it.
 *
 * @example app.get('/validate', keyscope(ks, { project: 'optional' }), (req, res) => res.json(req.auth))
 */
export function keyscope(ks: Keyscope, options: KeyscopeExpressOptions = {}): RequestHandler {
  const { project, onError } = checkAdapterOptions(ks, options, 'next');
  return function keyscopeMiddleware(req, res, next) {
    ks.authenticate({ headers: req.headers, method: req.method, path: () => routeTemplate(req), project, clientIp: () => req.ip })
      .then((result) => {
        if (result.ok) {
          req.auth = result.auth;
          return next();
        }
        if (onError === 'next') return next(toKeyscopeError(result.error));
        // Something earlier (a timeout guard) already answered: there is nothing left to refuse.
        if (res.headersSent || res.writableEnded) return;
        res.status(result.error.status).set(result.error.headers).end(JSON.stringify(result.error.body));
      })
      // Whatever throws in there goes to Express's error path, as a throw in a synchronous middleware would.
      .catch(next);
  };
}

/** The parts of Express 5's router this adapter reads to find the route a request will reach. */
interface RouterLike {
  stack?: unknown;
}
interface LayerLike {
  match(path: string): unknown;
  route?: { path?: unknown; _handlesMethod?(method: string): boolean };
  handle?: RouterLike;
}

/**
 * The path template of the route Express will run for `req` (e.g. `/sites/:siteId`), relative to
 * the router that holds it, so that a project-optional path is decided on the route and not on
 * the URL: `/sites/validate` answered by `/sites/:siteId` needs a project. Inside a route it is
 * `req.route`; from `app.use` or `router.use` the app's router is walked the way Express walks it.
 * `''` (nothing is project-optional) when no route will run or the router is not one this reads.
 */
function routeTemplate(req: Request): string {
  if (req.route) return typeof req.route.path === 'string' ? req.route.path : '';
  const url = req.originalUrl ?? req.url;
  const query = url.indexOf('?');
  return findRoute((req.app as { router?: RouterLike } | undefined)?.router, query === -1 ? url : url.slice(0, query), req.method, 0) ?? '';
}

function findRoute(router: RouterLike | undefined, path: string, method: string, depth: number): string | undefined {
  if (!Array.isArray(router?.stack) || depth > 16) return undefined;
  for (const layer of router.stack as LayerLike[]) {
    let match: unknown;
    try {
      match = layer.match(path);
    } catch {
      return undefined; // Express answers a path it cannot decode with an error, not a route
    }
    if (!match) continue;
    const { route } = layer;
    if (route) {
      // As Express does: a route matches a method it handles; HEAD also reaches a GET route.
      if (method !== 'HEAD' && route._handlesMethod?.(method) !== true) continue;
      return typeof route.path === 'string' ? route.path : '';
    }
    // A mounted router: look inside with the mount path taken off. An older router that answers
    // `true` instead of the match cannot say what it matched: then nothing is optional.
    if (!Array.isArray(layer.handle?.stack)) continue;
    const mounted = (match as { path?: unknown }).path;
    if (typeof mounted !== 'string') return undefined;
    const rest = path.slice(mounted.length);
    const found = findRoute(layer.handle, rest.startsWith('/') ? rest : `/${rest}`, method, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}
