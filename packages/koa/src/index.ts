import { toKeyscopeError, type AuthContext, type Keyscope, type ProjectRequirement } from '@keyscope/core';
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
  const { project, onError = 'respond' } = checkOptions(ks, options);
  return async function keyscopeMiddleware(ctx, next) {
    const result = await ks.authenticate({ headers: ctx.headers, method: ctx.method, path: routerRelativePath(ctx), project, clientIp: ctx.ip });
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

/** `ctx.path` without the prefix of the `@koa/router` router running this middleware, if any. */
function routerRelativePath(ctx: Context): string {
  const prefix = (ctx as { router?: { opts?: { prefix?: unknown } } }).router?.opts?.prefix;
  const path = ctx.path;
  if (typeof prefix !== 'string' || prefix === '' || prefix === '/' || !path.startsWith(prefix)) return path;
  const rest = path.slice(prefix.length);
  return rest === '' ? '/' : rest.startsWith('/') ? rest : path;
}

function checkOptions(ks: Keyscope, options: KeyscopeKoaOptions): KeyscopeKoaOptions {
  if (typeof ks?.authenticate !== 'function') throw new TypeError('keyscope(ks): ks must come from createKeyscope()');
  if (options === null || typeof options !== 'object') throw new TypeError('keyscope(ks, options): options must be an object');
  if (options.project !== undefined && options.project !== 'optional' && options.project !== 'required') {
    throw new TypeError(`options.project must be 'optional' or 'required', got ${JSON.stringify(options.project)}`);
  }
  if (options.onError !== undefined && options.onError !== 'respond' && options.onError !== 'throw') {
    throw new TypeError(`options.onError must be 'respond' or 'throw', got ${JSON.stringify(options.onError)}`);
  }
  return options;
}
