import { checkAdapterOptions, nodeHeaders, pathBelow, toError, toKeyscopeError, type AuthContext, type AuthResult, type Keyscope, type ProjectRequirement } from '@keyscope/core';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling; `null` on routes marked `config: { keyscope: false }`. */
    auth: AuthContext | null;
  }
  interface FastifyContextConfig {
    /**
     * Per-route rule: `{ project }` wins over the path list; `false` makes the route public.
     * (`project` is required, so `true` or a misspelt key is a type error; in JavaScript, route
     * registration throws.)
     */
    keyscope?: KeyscopeRouteRule;
  }
}

/** A route's keyscope rule, in its `config.keyscope`. */
export type KeyscopeRouteRule = { project: ProjectRequirement } | false;

/** Options of the {@link keyscope} plugin. */
export interface KeyscopeFastifyOptions {
  /** The authenticator, from `createKeyscope()`. */
  keyscope: Keyscope;
  /**
   * `'respond'` (default) replies to refusals from `onRequest` with the problem+json response;
   * `'throw'` throws a `KeyscopeError` (`statusCode`, `headers`, `body`) to your `setErrorHandler`.
   */
  onError?: 'respond' | 'throw';
}

const plugin: FastifyPluginAsync<KeyscopeFastifyOptions> = async (fastify, options) => {
  const { ks, onError, check } = checkAdapterOptions(options?.keyscope, options, 'throw', 'options.keyscope');
  // Registered inside `register(..., { prefix })`, route URLs are matched relative to the prefix.
  const prefix = fastify.prefix;
  if (!fastify.hasRequestDecorator('auth')) fastify.decorateRequest('auth', null);

  // A rule that means nothing is a mistake to hear about when the route is added, not a request later.
  fastify.addHook('onRoute', (route) => {
    const rule: unknown = (route.config as { keyscope?: unknown } | undefined)?.keyscope;
    if (rule === undefined || rule === false) return;
    const keys = rule !== null && typeof rule === 'object' ? Object.keys(rule) : [];
    const project = (rule as { project?: unknown } | null)?.project;
    if (keys.length !== 1 || keys[0] !== 'project' || (project !== 'optional' && project !== 'required')) {
      throw new TypeError(`${route.method} ${route.url}: config.keyscope must be false or { project: 'optional' | 'required' }, got ${JSON.stringify(rule)}`);
    }
  });

  /** Carry out a decision: `done()` to go on, `done(error)` to throw, or the refusal as the reply (then no `done`). */
  const settle = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction, result: AuthResult): void => {
    if (result.ok) {
      request.auth = result.auth;
      // A key with limits: its RateLimit fields go on the reply.
      if (result.headers !== undefined) reply.headers(result.headers);
      return done();
    }
    if (onError === 'throw') return done(toKeyscopeError(result.error));
    // Something earlier (a timeout) already replied: Fastify runs nothing more for this request.
    if (reply.sent) return;
    // The body is already serialized (once per refusal); passing it through a serializer keeps
    // Fastify from adding a charset, and a string goes out in one write with the headers
    // (a Buffer costs Node a second, vectored write: a 401 flood then cost more than valid keys).
    reply.code(result.error.status).headers(result.error.headers).serializer(asIs).send(result.error.text);
  };

  // The hook style Fastify documents first, (request, reply, done): a cached key is decided in
  // this turn and `done()` called in it, with no promise for Fastify to wait on.
  fastify.addHook('onRequest', function keyscopeOnRequest(request, reply, done) {
    // routeOptions is rebuilt on every read: read it once.
    const { config, url } = request.routeOptions;
    const rule = config.keyscope;
    if (rule === false) return done();
    const path = pathBelow(prefix, url ?? request.url);
    let result: AuthResult | Promise<AuthResult>;
    try {
      result = check({ headers: nodeHeaders(ks, request.raw), method: request.method, path, project: rule?.project, request, clientIp: () => request.ip });
    } catch (error) {
      return done(toError(error) as Error);
    }
    if (!('then' in result)) return settle(request, reply, done, result);
    // Decided later: whatever fails from here (writing the refusal included) reaches Fastify's error path, once.
    let called = false;
    const once: HookHandlerDoneFunction = (error) => {
      if (called) return;
      called = true;
      done(error);
    };
    result.then((settled) => settle(request, reply, once, settled)).catch((error: unknown) => once(toError(error) as Error));
  });
};

const asIs = (text: string): string => text;

/**
 * Fastify plugin: authenticates every request in `onRequest` and sets `request.auth`.
 *
 * @example await app.register(keyscope, { keyscope: ks }); app.get('/health', { config: { keyscope: false } }, () => 'ok')
 */
export const keyscope = fp(plugin, { fastify: '5.x', name: '@keyscope/fastify' });
export default keyscope;
