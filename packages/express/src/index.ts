import { checkAdapterOptions, nodeHeaders, projectRuleOf, withProjectRule, toError, toKeyscopeError, type AuthContext, type AuthResult, type Keyscope, type ProjectRequirement } from '@keyscope/core';
import type { Request, RequestHandler } from 'express';


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
  /**
   * The request property that receives the {@link AuthContext}: `'auth'` (default), another name
   * when `req.auth` is taken (Auth0's `express-oauth2-jwt-bearer` sets `req.auth` too), or `false`
   * for none. {@link authOf} reads it whatever the property.
   */
  property?: string | false;
}

/** Where the caller is kept for {@link authOf}, whatever `property` says (see {@link decisionsOf}). */
const AUTH = Symbol('keyscope auth');
type WithAuth = { [AUTH]?: AuthContext };

/**
 * Where keyscope keeps what it decided about a request: `res.locals`, Express's object for data
 * scoped to one request (created per request, shared by mounted sub-apps), not `req`. Express
 * gives every `req` a hidden class of its own (it swaps the prototype), so each property added
 * to `req` makes V8 copy that class: measured at several µs per property per request, most of
 * what this middleware cost beyond a hand-written check. `res.locals` is a plain dictionary, where
 * a symbol costs a hash insert. The symbols are private: request data cannot set them.
 */
function decisionsOf(req: Request): object {
  const locals = (req.res as { locals?: unknown } | undefined)?.locals;
  return locals !== null && typeof locals === 'object' ? locals : req;
}

/**
 * Who is calling: the {@link AuthContext} keyscope decided for this request, typed without any
 * global augmentation. Throws when keyscope has not authenticated the request (a route that is not
 * behind it, or `res.locals` replaced since), so a handler cannot run on a missing decision by mistake.
 *
 * @example app.get('/sites', (req, res) => res.json(listSites(authOf(req).projectId!)))
 */
export function authOf(req: Request): AuthContext {
  const auth = (decisionsOf(req) as WithAuth)[AUTH];
  if (auth === undefined) throw new Error('keyscope has not authenticated this request: mount keyscope() before this route');
  return auth;
}

/**
 * Express middleware: authenticates the request and sets `req.auth` (see `property`), or refuses it.
 *
 * @example app.get('/validate', keyscope(ks, { project: 'optional' }), (req, res) => res.json(req.auth))
 */
export function keyscope(ks: Keyscope, options: KeyscopeExpressOptions = {}): RequestHandler {
  const { project, onError, property = 'auth', check } = checkAdapterOptions(ks, options, 'next');
  if (property !== false && (typeof property !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(property) || property === '__proto__')) {
    throw new TypeError(`options.property must be a property name or false, got ${JSON.stringify(property)}`);
  }
  return withProjectRule<RequestHandler>(function keyscopeMiddleware(req, res, next) {
    // Found only if the project rule needs it (a user key without X-Project-ID), then once.
    let ahead: RouteAhead | undefined;
    const route = () => (ahead ??= routeAhead(req));
    const decisions = decisionsOf(req);
    const settle = (result: AuthResult): void => {
      if (result.ok) {
        (decisions as WithAuth)[AUTH] = result.auth;
        if (property !== false) (req as unknown as Record<string, unknown>)[property] = result.auth;
        if (result.headers !== undefined) res.set(result.headers);
        return next();
      }
      if (onError === 'next') return next(toKeyscopeError(result.error));
      if (res.headersSent || res.writableEnded) return;
      res.status(result.error.status).set(result.error.headers).end(result.error.text);
    };
    // A cached key is decided in this turn, and the next handler runs in it, as after a hand-written check.
    let result: AuthResult | Promise<AuthResult>;
    try {
      result = check({
        headers: nodeHeaders(ks, req),
        method: req.method,
        project: project ?? (() => route().rule),
        path: () => route().template,
        // Stacked keyscope middlewares authenticate this request once.
        request: decisions,
        clientIp: () => req.ip,
      });
      if (!('then' in result)) return settle(result);
    } catch (error) {
      return next(toError(error));
    }
    result.then(settle).catch((error: unknown) => next(toError(error)));
  }, project);
}

/** The parts of Express 5's router this adapter reads to find the route a request will reach. */
interface RouterLike {
  stack?: unknown;
}
interface RouteLike {
  path?: unknown;
  stack?: unknown;
  _handlesMethod?(method: string): boolean;
}
interface LayerLike {
  match(path: string): unknown;
  route?: RouteLike;
  handle?: RouterLike;
}
/** The route a request will reach: its path template, and the project rule of a keyscope on it. */
interface RouteAhead {
  template: string;
  rule: ProjectRequirement | undefined;
}

/**
 * The route Express will run for `req`: its path template (e.g. `/sites/:siteId`), relative to
 * the router that holds it, so that a project-optional path is decided on the route and not on
 * the URL (`/sites/validate` answered by `/sites/:siteId` needs a project); and the requirement of
 * a keyscope middleware on that route, which then decides. Inside a route it is `req.route`; from
 * `app.use` or `router.use` the app's router is walked the way Express walks it. No route found
 * (none will run, or a router this cannot read): template `''`, which is not project-optional.
 */
function routeAhead(req: Request): RouteAhead {
  const url = req.originalUrl ?? req.url;
  const query = url.indexOf('?');
  const route: RouteLike | undefined = req.route ?? findRoute((req.app as { router?: RouterLike } | undefined)?.router, query === -1 ? url : url.slice(0, query), req.method, 0);
  const handlers = Array.isArray(route?.stack) ? (route.stack as { handle?: unknown }[]).map((layer) => layer.handle) : [];
  return { template: typeof route?.path === 'string' ? route.path : '', rule: projectRuleOf(handlers) };
}

function findRoute(router: RouterLike | undefined, path: string, method: string, depth: number): RouteLike | undefined {
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
      return route;
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
