import { toKeyscopeError, type AuthContext, type Keyscope, type ProjectRequirement } from '@keyscope/core';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling; `null` on routes marked `config: { keyscope: false }`. */
    auth: AuthContext | null;
  }
  interface FastifyContextConfig {
    /** Per-route rule: `{ project }` wins over the path list; `false` makes the route public. */
    keyscope?: { project?: ProjectRequirement } | false;
  }
}

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
  const { keyscope: ks, onError = 'respond' } = checkOptions(options);
  // Registered inside `register(..., { prefix })`, route URLs are matched relative to the prefix.
  const prefix = fastify.prefix;
  if (!fastify.hasRequestDecorator('auth')) fastify.decorateRequest('auth', null);

  fastify.addHook('onRequest', async function keyscopeOnRequest(request, reply) {
    const rule = request.routeOptions.config.keyscope;
    if (rule === false) return;
    const path = relativeTo(prefix, request.routeOptions.url ?? request.url);
    const result = await ks.authenticate({ headers: request.headers, method: request.method, path, project: rule?.project, clientIp: request.ip });
    if (result.ok) {
      request.auth = result.auth;
      return;
    }
    if (onError === 'throw') throw toKeyscopeError(result.error);
    return reply.code(result.error.status).headers(result.error.headers).send(JSON.stringify(result.error.body));
  });
};

function relativeTo(prefix: string, url: string): string {
  if (prefix === '' || !url.startsWith(prefix)) return url;
  const rest = url.slice(prefix.length);
  return rest === '' || rest.startsWith('?') ? `/${rest}` : rest.startsWith('/') ? rest : url;
}

function checkOptions(options: KeyscopeFastifyOptions): KeyscopeFastifyOptions {
  if (typeof options?.keyscope?.authenticate !== 'function') {
    throw new TypeError('register(keyscope, options): options.keyscope must come from createKeyscope()');
  }
  if (options.onError !== undefined && options.onError !== 'respond' && options.onError !== 'throw') {
    throw new TypeError(`options.onError must be 'respond' or 'throw', got ${JSON.stringify(options.onError)}`);
  }
  return options;
}

/**
 * Fastify plugin: authenticates every request in `onRequest` and sets `request.auth`.
 *
 * @example await app.register(keyscope, { keyscope: ks }); app.get('/health', { config: { keyscope: false } }, () => 'ok')
 */
export const keyscope = fp(plugin, { fastify: '5.x', name: '@keyscope/fastify' });
export default keyscope;
