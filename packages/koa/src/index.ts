import { checkAdapterOptions, nodeHeaders, pathBelow, projectRuleOf, toError, toKeyscopeError, withProjectRule, type AuthContext, type AuthResult, type Keyscope, type ProjectRequirement } from '@keyscope/core';
import type { Context, Middleware, Next } from 'koa';

declare module 'koa' {
  interface DefaultState {
    /** Who is calling, set by `@keyscope/koa` once the request is authenticated. */
    auth?: AuthContext;
  }
}

/** Options of {@link keyscope} and {@link protectedRoutes}. */
export interface KeyscopeKoaOptions {
  /**
   * Whether a user-level key needs `X-Project-ID` here. Default: the core decides from
   * `ctx.path`, relative to the `@koa/router` prefix (or `koa-mount` mount point).
   */
  project?: ProjectRequirement;
  /**
   * `'respond'` (default) answers refusals with the problem+json response; `'throw'` throws a
   * `KeyscopeError` (`status`, `headers`, `expose`, `body`) for your error-handling middleware.
   */
  onError?: 'respond' | 'throw';
}

/** What {@link protectedRoutes} uses of an `@koa/router` router: its public API only. */
export interface KoaRouterLike {
  opts: { prefix?: string; routerPath?: string };
  match(path: string, method: string): { route: boolean; pathAndMethod?: readonly { path: unknown; methods: readonly string[]; stack?: readonly unknown[] }[] };
  matchHost?(host?: string): boolean;
  /** The router's dispatch middleware, whatever context type it declares. */
  routes(): (ctx: never, next: Next) => unknown;
}

/**
 * Authenticate `ctx`, deciding project-optional routes on `path` (below any mount prefix) unless
 * the middleware was given a requirement, or `rule` (the requirement of a keyscope on the route
 * ahead) gives one.
 */
type Check = (ctx: Context, next: Next, path: () => string, rule?: ProjectRequirement) => unknown;

function checker(ks: Keyscope, options: KeyscopeKoaOptions): Check & { project: ProjectRequirement | undefined } {
  const { project, onError, check: decide } = checkAdapterOptions(ks, options, 'throw');
  const settle = (ctx: Context, next: Next, result: AuthResult): unknown => {
    if (result.ok) {
      ctx.state.auth = result.auth;
      // A key with limits: its RateLimit fields go on the response.
      if (result.headers !== undefined) ctx.set(result.headers);
      return next();
    }
    if (onError === 'throw') throw toKeyscopeError(result.error);
    ctx.status = result.error.status;
    ctx.set(result.error.headers);
    ctx.body = result.error.text;
    return undefined;
  };
  const check: Check = (ctx, next, path, rule) => {
    // A cached key is decided in this turn and `next` is called in it, as after a hand-written check.
    // `request: ctx`: stacked keyscope middlewares authenticate this request once.
    try {
      const result = decide({ headers: nodeHeaders(ks, ctx.req), method: ctx.method, path, project: project ?? rule, request: ctx, clientIp: () => ctx.ip });
      return 'then' in result ? result.then((settled) => settle(ctx, next, settled), (error: unknown) => Promise.reject(toError(error))) : settle(ctx, next, result);
    } catch (error) {
      // Koa middleware answers a failure with a rejected promise, as an async function would.
      return Promise.reject(toError(error));
    }
  };
  return Object.assign(check, { project });
}

/**
 * Koa middleware: authenticates the request and sets `ctx.state.auth`, or refuses it. Mount it
 * with `app.use` or on single routes; for a whole router use {@link protectedRoutes}.
 *
 * @example router.get('/validate', keyscope(ks, { project: 'optional' }), (ctx) => { ctx.body = ctx.state.auth })
 */
export function keyscope(ks: Keyscope, options: KeyscopeKoaOptions = {}): Middleware {
  const check = checker(ks, options);
  const middleware: Middleware = function keyscopeMiddleware(ctx, next) {
    // The router is looked at now, while it is running this middleware (and warns now); the path
    // is read only if the core asks for it, when no `X-Project-ID` is sent.
    const prefix = dispatchPrefix(ctx, middleware);
    return check(ctx, next, () => pathBelow(prefix, ctx.path));
  };
  return withProjectRule(middleware, check.project);
}

/**
 * `router.routes()` with keyscope in front of every route of `router` (nested routers included):
 * the router itself says whether a route will run, and only then is the request authenticated.
 * Project-optional routes are decided on the route the router matched (its path template below
 * the prefix), so `/sites/:siteId` answering `/sites/validate` still needs a project.
 *
 * @example app.use(protectedRoutes(ks, api)) // instead of app.use(api.routes())
 */
export function protectedRoutes(ks: Keyscope, router: KoaRouterLike, options: KeyscopeKoaOptions = {}): Middleware {
  const check = checker(ks, options);
  if (typeof router?.match !== 'function' || typeof router.routes !== 'function') throw new TypeError('router must be an @koa/router Router');
  const dispatch = router.routes() as Middleware;
  return function protectedRoutesMiddleware(ctx, next) {
    // The host check and the path the router's own dispatch reads (@koa/router `middleware()`).
    if (router.matchHost && !router.matchHost(ctx.host)) return dispatch(ctx, next);
    const { newRouterPath, routerPath } = ctx as RouterState;
    const path = router.opts?.routerPath || newRouterPath || ctx.path || String(routerPath ?? '');
    const matched = router.match(path, ctx.method);
    if (!matched.route) return dispatch(ctx, next);
    // The route that will answer is the last matched layer with methods, as the router itself reports it (`_matchedRoute`).
    const route = matched.pathAndMethod?.findLast((layer) => layer.methods.length > 0);
    // A route given as a RegExp has no template: then nothing is project-optional by path.
    const template = typeof route?.path === 'string' ? route.path : '';
    // A keyscope on that route with its own requirement decides: the more specific rule wins.
    return check(ctx, () => dispatch(ctx, next), () => pathBelow(router.opts?.prefix, template), projectRuleOf(route?.stack ?? []));
  };
}

interface RouterLayer {
  path: unknown;
  methods: string[];
  stack: unknown[];
  match(path: string): boolean;
}
interface RouterState {
  router?: { opts?: { prefix?: unknown; sensitive?: boolean }; stack?: RouterLayer[] };
  routeMatched?: boolean;
  routerPath?: unknown;
  newRouterPath?: string;
}

const checkedLayers = new WeakSet<object>();

/**
 * The prefix of the `@koa/router` router whose dispatch is running this middleware right now.
 * `ctx.router` stays set after a router that matched nothing: only a layer of it that holds this
 * middleware and that the router just entered (`ctx.routerPath`) counts.
 */
function dispatchPrefix(ctx: Context, self: Middleware): string | undefined {
  const { router, routeMatched, routerPath } = ctx as RouterState;
  if (!router || routeMatched !== true) return undefined;
  const layer = router.stack?.find((l) => l.path === routerPath && l.stack.includes(self));
  if (!layer) return undefined;
  if (!checkedLayers.has(layer)) {
    checkedLayers.add(layer);
    warnIfCaseSensitiveUse(ctx, router, layer);
  }
  const prefix = router.opts?.prefix;
  return typeof prefix === 'string' ? prefix : undefined;
}

/**
 * `router.use(mw)` without a path matches the router's prefix case-sensitively while its routes
 * match in any case, so `/API/...` reaches the routes without this middleware: say so, once.
 */
function warnIfCaseSensitiveUse(ctx: Context, router: NonNullable<RouterState['router']>, layer: RouterLayer): void {
  if (layer.methods.length > 0 || router.opts?.sensitive === true) return;
  if (layer.match(ctx.path.toUpperCase()) && layer.match(ctx.path.toLowerCase())) return;
  process.emitWarning(
    'keyscope(ks) was added with router.use() to a router whose prefix is matched case-sensitively while its routes are not, ' +
      'so a request spelling the prefix in another case reaches the routes without it. Use app.use(protectedRoutes(ks, router)) instead.',
    { code: 'KEYSCOPE_KOA_ROUTER_USE' },
  );
}
