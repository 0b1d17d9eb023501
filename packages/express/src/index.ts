import { toKeyscopeError, type AuthContext, type Keyscope, type ProjectRequirement } from '@keyscope/core';
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
  const { project, onError = 'respond' } = checkOptions(ks, options);
  return function keyscopeMiddleware(req, res, next) {
    ks.authenticate({ headers: req.headers, method: req.method, path: req.path, project, clientIp: req.ip }).then((result) => {
      if (result.ok) {
        req.auth = result.auth;
        next();
      } else if (onError === 'next') {
        next(toKeyscopeError(result.error));
      } else {
        res.status(result.error.status).set(result.error.headers).end(JSON.stringify(result.error.body));
      }
    }, next);
  };
}

function checkOptions(ks: Keyscope, options: KeyscopeExpressOptions): KeyscopeExpressOptions {
  if (typeof ks?.authenticate !== 'function') throw new TypeError('keyscope(ks): ks must come from createKeyscope()');
  if (options === null || typeof options !== 'object') throw new TypeError('keyscope(ks, options): options must be an object');
  if (options.project !== undefined && options.project !== 'optional' && options.project !== 'required') {
    throw new TypeError(`options.project must be 'optional' or 'required', got ${JSON.stringify(options.project)}`);
  }
  if (options.onError !== undefined && options.onError !== 'respond' && options.onError !== 'next') {
    throw new TypeError(`options.onError must be 'respond' or 'next', got ${JSON.stringify(options.onError)}`);
  }
  return options;
}
