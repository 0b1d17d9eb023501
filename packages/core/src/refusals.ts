import { ERROR_TABLE, problemType, type AuthError, type KeyscopeErrorCode } from './errors.js';
import type { AuthContext } from './types.js';

/**
 * The outcome of `Keyscope.authenticate`. A success may carry `headers` to set on the response
 * (the `RateLimit-Policy` and `RateLimit` fields of a key with limits); adapters set them.
 */
export type AuthResult = { ok: true; auth: AuthContext; headers?: Readonly<Record<string, string>> } | { ok: false; error: AuthError };
/** A refused outcome. */
export type Refusal = Extract<AuthResult, { ok: false }>;

/** Every refusal the pipeline sends, built once: all but 429 are the same frozen object each time. */
export interface Refusals {
  missing: Refusal;
  invalid: Refusal;
  required: Refusal;
  forbidden: Refusal;
  unavailable: Refusal;
  /** 429 with `Retry-After: seconds`. */
  tooMany(seconds: number): Refusal;
  /** 429 `rate_limited`: the key's rate limit, with its `RateLimit` fields and `Retry-After`. */
  rateLimited(headers: Readonly<Record<string, string>>, retryAfterSeconds: number): Refusal;
  /** 429 `quota_exhausted`, with the `RateLimit` fields, and `Retry-After` when the quota refills. */
  quotaExhausted(headers: Readonly<Record<string, string>>, retryAfterSeconds: number | undefined): Refusal;
}

/**
 * Build the refusals for one configuration (header names, realm, `Retry-After`).
 *
 * @example createRefusals({ displayHeader: 'X-API-Key', displayProjectHeader: 'X-Project-ID', realm: 'api', retryAfterSeconds: 5 }).invalid.error.status === 401
 */
export function createRefusals(options: {
  displayHeader: string;
  displayProjectHeader: string;
  realm: string;
  retryAfterSeconds: number;
  /** Project-optional paths, named in the `project_required` detail. */
  optionalPaths?: Iterable<string>;
  /** Whether `Authorization: Bearer` is accepted too (then the challenge names it). */
  bearer?: boolean;
}): Refusals {
  const bearer = options.bearer ? `, Bearer realm="${options.realm}"` : '';
  const challenge = { 'WWW-Authenticate': `ApiKey realm="${options.realm}", header="${options.displayHeader}"${bearer}` };
  const optional = [...(options.optionalPaths ?? [])];
  const exceptions = optional.length ? ` (only ${optional.join(', ')} ${optional.length === 1 ? 'works' : 'work'} without it)` : '';
  return {
    missing: refusal('missing_api_key', `Send your API key in the ${options.displayHeader} header.`, challenge),
    invalid: refusal('invalid_api_key', 'The API key is incorrect, expired or revoked.', challenge),
    required: refusal(
      'project_required',
      `This route acts on a project: with a user-level key, send the project's id in the ${options.displayProjectHeader} header${exceptions}.`,
    ),
    forbidden: refusal('project_forbidden', 'This API key does not have access to the requested project.'),
    unavailable: refusal('auth_unavailable', 'Authentication is temporarily unavailable; retry later.', { 'Retry-After': String(options.retryAfterSeconds) }),
    tooMany: (seconds) => refusal('too_many_attempts', 'Too many failed attempts from this client; retry later.', { 'Retry-After': String(seconds) }),
    rateLimited: (headers, seconds) => refusal('rate_limited', 'This API key made too many requests; retry after the time in Retry-After.', { ...headers, 'Retry-After': String(seconds) }),
    quotaExhausted: (headers, seconds) =>
      refusal(
        'quota_exhausted',
        seconds === undefined ? "This API key's quota is used up." : "This API key's quota is used up until it refills; retry after the time in Retry-After.",
        seconds === undefined ? headers : { ...headers, 'Retry-After': String(seconds) },
      ),
  };
}

function refusal(code: KeyscopeErrorCode, detail: string, extra: Record<string, string> = {}): Refusal {
  const { status, title } = ERROR_TABLE[code];
  const headers = Object.freeze({ 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store', ...extra });
  const body = Object.freeze({ type: problemType(code), title, status, detail, code });
  return Object.freeze({ ok: false as const, error: Object.freeze({ status, code, title, detail, headers, body, text: JSON.stringify(body) }) });
}
