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
 * What an adapter calls for a decision, looked up on `ks` at each call (so a rule put on it later
 * counts from the next request): a `check` and `authenticate` of keyscope's own → `check` (a cached
 * key answered without a promise); `authenticate` replaced (`{ ...ks, authenticate: withMyRule }`,
 * `vi.spyOn(ks, 'authenticate')`) → `authenticate`; `check` replaced → that `check`; no `check` (an
 * older core's Keyscope) → `authenticate`. Whatever you wrap is what decides.
 *
 * @example const decide = checkOf(ks); const r = decide(input); const result = 'then' in r ? await r : r
 */
export function checkOf(ks: Keyscope): Keyscope['check'] {
  return (input) => {
    const check = ks.check as Keyscope['check'] & { [CHECK_DECIDES_FOR]?: unknown };
    if (typeof check !== 'function') return ks.authenticate(input);
    const pair = check[CHECK_DECIDES_FOR];
    return pair === undefined || pair === ks.authenticate ? ks.check(input) : ks.authenticate(input);
  };
}

/**
 * A thrown value safe to hand to `next(value)` / `done(value)`: frameworks read a falsy value as
 * "go on", and Express reads `'route'` / `'router'` as "skip to the next route / router", so those
 * become an `Error` (the value its `cause`). Anything else goes as it was, so a wrapper's
 * `{ status: 403 }` or an error from another realm keeps its meaning.
 *
 * @example catch (error) { return next(toError(error)) }
 */
export function toError(error: unknown): unknown {
  if (error && error !== 'route' && error !== 'router') return error;
  return new Error(`keyscope: authentication failed with a thrown ${JSON.stringify(error) ?? String(error)}`, { cause: error });
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
