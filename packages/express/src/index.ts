import { checkAdapterOptions, toKeyscopeError, type AuthContext, type Keyscope, type ProjectRequirement } from '@keyscope/core';
import type { RequestHandler } from 'express';

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
   * Whether a user-level key needs `X-Project-ID` here. Default: the core decides from
   * `req.path` (relative to the mount point) and its `projectOptionalPaths`.
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
    ks.authenticate({ headers: req.headers, method: req.method, path: req.path, project, clientIp: () => req.ip })
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
