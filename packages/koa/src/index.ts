import { checkAdapterOptions, pathBelow, toKeyscopeError, type AuthContext, type Keyscope, type ProjectRequirement } from '@keyscope/core';
import type { Context, Middleware } from 'koa';

declare module 'koa' {
  interface DefaultState {
    /** Who is calling, set by `@keyscope/koa` once the request is authenticated. */
    auth?: AuthContext;
  }
}

/** Options of {@link keyscope}. */
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

/**
 * Koa middleware: authenticates the request and sets `ctx.state.auth`, or refuses it.
 *
 * @example router.get('/validate', keyscope(ks, { project: 'optional' }), (ctx) => { ctx.body = ctx.state.auth })
 */
export function keyscope(ks: Keyscope, options: KeyscopeKoaOptions = {}): Middleware {
  const { project, onError } = checkAdapterOptions(ks, options, 'throw');
  return async function keyscopeMiddleware(ctx, next) {
    const result = await ks.authenticate({ headers: ctx.headers, method: ctx.method, path: pathBelow(routerPrefix(ctx), ctx.path), project, clientIp: () => ctx.ip });
    if (result.ok) {
      ctx.state.auth = result.auth;
      return next();
    }
    if (onError === 'throw') throw toKeyscopeError(result.error);
    ctx.status = result.error.status;
    ctx.set(result.error.headers);
    ctx.body = JSON.stringify(result.error.body);
  };
}

/** The prefix of the `@koa/router` router running this middleware, if any. */
function routerPrefix(ctx: Context): string | undefined {
  const prefix = (ctx as { router?: { opts?: { prefix?: unknown } } }).router?.opts?.prefix;
  return typeof prefix === 'string' ? prefix : undefined;
}
