import { checkAdapterOptions, pathBelow, projectRuleOf, toKeyscopeError, withProjectRule, type AuthContext, type Keyscope, type ProjectRequirement } from '@keyscope/core';
import type { Context, MiddlewareHandler } from 'hono';
import { problemResponse } from './index.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** Who is calling, set by the `@keyscope/fetch/hono` middleware. */
    auth: AuthContext;
  }
}

/** Options of the Hono middleware {@link keyscope}. */
export interface KeyscopeHonoOptions {
  /**
   * Whether a user-level key needs `X-Project-ID` here. Default: the core decides on the route
   * Hono matched (its path template, relative to its sub-app's base path).
   */
  project?: ProjectRequirement;
  /**
   * `'respond'` (default) returns the problem+json response; `'throw'` throws a
   * `KeyscopeError` (`status`, `headers`, `body`) for your `app.onError`.
   */
  onError?: 'respond' | 'throw';
  /** The client address, for the core's failed-attempt throttle, e.g. `(c) => getConnInfo(c).remote.address`. */
  clientIp?: (c: Context) => string | undefined;
}

/**
 * Hono middleware: authenticates the request and sets `c.get('auth')`, or refuses it.
 *
 * @example app.get('/validate', keyscope(ks, { project: 'optional' }), (c) => c.json(c.get('auth')))
 */
export function keyscope(ks: Keyscope, options: KeyscopeHonoOptions = {}): MiddlewareHandler {
  const { project, onError, clientIp, check } = checkAdapterOptions(ks, options, 'throw');
  if (clientIp !== undefined && typeof clientIp !== 'function') throw new TypeError('options.clientIp must be a function of the context');
  // Hono does not know the client's address: without clientIp the throttle could count nothing.
  if (ks.needsClientAddress && clientIp === undefined) {
    console.warn('keyscope: the failed-attempt throttle is on, but this Hono middleware has no clientIp option, so it cannot count failures per client; pass clientIp: (c) => getConnInfo(c).remote.address');
  }
  return withProjectRule<MiddlewareHandler>(async function keyscopeMiddleware(c, next) {
    // A cached key is decided without a promise to wait on.
    const checked = check({
      headers: c.req.raw.headers,
      method: c.req.method,
      path: () => matchedRoute(c),
      // A keyscope further along this request's handlers, with its own requirement, decides.
      project: project ?? (() => projectRuleOf(c.req.matchedRoutes.slice(c.req.routeIndex + 1).map((route) => route.handler))),
      // Stacked keyscope middlewares authenticate this request once.
      request: c.req.raw,
      clientIp: clientIp && (() => clientIp(c)),
    });
    const result = 'then' in checked ? await checked : checked;
    if (result.ok) {
      c.set('auth', result.auth);
      const { headers } = result;
      if (headers === undefined) return next();
      // A key with limits: its RateLimit fields go on whatever response the handler makes.
      await next();
      for (const name in headers) c.header(name, headers[name]);
      return;
    }
    if (onError === 'throw') throw toKeyscopeError(result.error);
    return problemResponse(result.error);
  }, project);
}

/**
 * The route that will answer, as its path template below its (sub-)app's base path: Hono has
 * matched every route before the first middleware runs. So `/sites/:siteId` answering
 * `/sites/validate` is `/:siteId`, never the project-optional `/validate`. The handler is the last
 * matched route of a method (`get`, `post`, ...); with none (`app.all`, or no route) the answer is
 * `''`, which is not project-optional.
 */
function matchedRoute(c: Context): string {
  // `matchedRoutes` is marked deprecated in favour of `hono/route`, a runtime import we avoid.
  const route = c.req.matchedRoutes.findLast((r) => r.method !== 'ALL');
  return route ? pathBelow(route.basePath, route.path) : '';
}
