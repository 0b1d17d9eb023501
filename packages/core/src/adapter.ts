import type { HeaderSource } from './headers.js';
import type { Keyscope, ProjectRequirement } from './keyscope.js';

/** What every adapter accepts besides its framework's own settings. */
export interface AdapterOptions<Mode extends string> {
  project?: ProjectRequirement;
  onError?: 'respond' | Mode;
}

/**
 * Setup-time checks shared by the adapters: `ks` came from `createKeyscope`, `options` is an
 * object, and `project` / `onError` hold allowed values. Throws a `TypeError` naming the option.
 * Also gives `check`, what the adapter calls for a decision ({@link checkOf}).
 *
 * @example checkAdapterOptions(ks, options, 'next') // Express: onError is 'respond' or 'next'
 */
export function checkAdapterOptions<Mode extends string, O extends AdapterOptions<Mode>>(
  ks: Keyscope | undefined,
  options: O,
  delegateMode: Mode,
  ksName = 'ks',
): O & { ks: Keyscope; onError: 'respond' | Mode; check: Keyscope['check'] } {
  if (typeof ks?.authenticate !== 'function') throw new TypeError(`${ksName} must come from createKeyscope()`);
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (options.project !== undefined && options.project !== 'optional' && options.project !== 'required') {
    throw new TypeError(`options.project must be 'optional' or 'required', got ${JSON.stringify(options.project)}`);
  }
  const onError = options.onError ?? 'respond';
  if (onError !== 'respond' && onError !== delegateMode) {
    throw new TypeError(`options.onError must be 'respond' or '${delegateMode}', got ${JSON.stringify(options.onError)}`);
  }
  return { ...options, ks, onError, check: checkOf(ks) };
}

/** Marks the `check` of a Keyscope with the `authenticate` it decides for (see {@link checkOf}). */
export const CHECK_DECIDES_FOR = Symbol.for('keyscope.checkDecidesFor');

/**
 * What an adapter calls for a decision: `ks.check` (a cached key answered without a promise)
 * while `ks.authenticate` is the one that check decides for; else `ks.authenticate`. So a wrapper
 * that replaces `authenticate` (`{ ...ks, authenticate: withMyRule }`) decides every request, and a
 * Keyscope without `check` (an older core's) still works.
 *
 * @example const decide = checkOf(ks); const r = decide(input); const result = 'then' in r ? await r : r
 */
export function checkOf(ks: Keyscope): Keyscope['check'] {
  const { check, authenticate } = ks;
  if (typeof check === 'function' && (check as { [CHECK_DECIDES_FOR]?: unknown })[CHECK_DECIDES_FOR] === authenticate) return (input) => ks.check(input);
  return (input) => ks.authenticate(input);
}

/**
 * A thrown value as an `Error` for a framework's error path: frameworks read a falsy value given to
 * `next`/`done` as "go on", and Express reads `'route'`/`'router'` as "skip", so anything that is
 * not an `Error` is wrapped.
 *
 * @example catch (error) { return next(toError(error)) }
 */
export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(`keyscope: authentication failed with a thrown ${error === null ? 'null' : typeof error}`, { cause: error });
}

/**
 * `path` as seen below a mount prefix, for matching `projectOptionalPaths`; a path outside the
 * prefix comes back unchanged (and so fails closed).
 *
 * @example pathBelow('/api/v1', '/api/v1/validate') === '/validate'
 */
export function pathBelow(prefix: string | undefined, path: string): string {
  if (!prefix || prefix === '/' || !path.startsWith(prefix)) return path;
  const rest = path.slice(prefix.length);
  if (rest === '' || rest.startsWith('?')) return `/${rest}`;
  return rest.startsWith('/') ? rest : path;
}

/**
 * The headers a Node adapter hands the core: Node's parsed `headers`, or `headersDistinct` when
 * `ks` reads `Authorization` (Node keeps only the first of several `Authorization` headers, and
 * two different keys there must be refused, not silently cut to one).
 *
 * @example ks.authenticate({ headers: nodeHeaders(ks, req), ... })
 */
export function nodeHeaders(ks: Keyscope, message: { headers: HeaderSource; headersDistinct?: HeaderSource }): HeaderSource {
  return ks.acceptsBearer && message.headersDistinct !== undefined ? message.headersDistinct : message.headers;
}

/** Where an adapter's middleware keeps the project requirement it was given (see {@link withProjectRule}). */
const PROJECT_RULE = Symbol.for('keyscope.projectRule');

/**
 * Mark `middleware` with the `project` requirement it was given, so that a router-wide keyscope
 * that can see the route ahead lets that more specific rule decide.
 *
 * @example return withProjectRule(function keyscopeMiddleware(req, res, next) { … }, options.project)
 */
export function withProjectRule<F extends object>(middleware: F, project: ProjectRequirement | undefined): F {
  if (project !== undefined) Object.defineProperty(middleware, PROJECT_RULE, { value: project });
  return middleware;
}

/**
 * The project requirement of the first keyscope middleware among a route's handlers that was
 * given one, or `undefined`.
 *
 * @example projectRuleOf(route.stack.map((layer) => layer.handle))
 */
export function projectRuleOf(handlers: Iterable<unknown>): ProjectRequirement | undefined {
  for (const handler of handlers) {
    const rule = (handler as { [PROJECT_RULE]?: ProjectRequirement } | null)?.[PROJECT_RULE];
    if (rule !== undefined) return rule;
  }
  return undefined;
}
