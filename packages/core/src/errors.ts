/** Every coded outcome keyscope can report. Check errors by `code`, never by `instanceof`. */
export type KeyscopeErrorCode =
  | 'missing_api_key'
  | 'invalid_api_key'
  | 'project_required'
  | 'project_forbidden'
  | 'too_many_attempts'
  | 'rate_limited'
  | 'quota_exhausted'
  | 'auth_unavailable'
  | 'invalid_argument'
  | 'not_found';

/** The one code → HTTP status and title table. Adapters translate; they never choose a status. */
export const ERROR_TABLE: Readonly<Record<KeyscopeErrorCode, { status: number; title: string }>> =
  Object.freeze({
    missing_api_key: { status: 401, title: 'Invalid API key' },
    invalid_api_key: { status: 401, title: 'Invalid API key' },
    project_required: { status: 403, title: 'Insufficient permissions' },
    project_forbidden: { status: 403, title: 'Insufficient permissions' },
    too_many_attempts: { status: 429, title: 'Too many failed attempts' },
    rate_limited: { status: 429, title: 'Rate limit exceeded' },
    quota_exhausted: { status: 429, title: 'Quota exhausted' },
    auth_unavailable: { status: 503, title: 'Authentication unavailable' },
    invalid_argument: { status: 400, title: 'Invalid argument' },
    not_found: { status: 404, title: 'Not found' },
  });

/** The HTTP status for a code, e.g. `statusOf('project_required') === 403`. */
export function statusOf(code: KeyscopeErrorCode): number {
  return ERROR_TABLE[code].status;
}

/** An RFC 9457 problem document as keyscope sends it. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: KeyscopeErrorCode;
}

/**
 * A refused request, ready to send: write `status`, every entry of `headers`, and
 * `JSON.stringify(body)`. Carries no key material.
 */
export interface AuthError {
  status: number;
  code: KeyscopeErrorCode;
  title: string;
  detail: string;
  headers: Readonly<Record<string, string>>;
  body: Readonly<ProblemDetails>;
  /** `body` as JSON, serialized once: what an adapter writes. */
  text: string;
}

/** The problem `type` URI for a code, e.g. `urn:keyscope:error:invalid_api_key`. */
export function problemType(code: KeyscopeErrorCode): string {
  return `urn:keyscope:error:${code}`;
}

/**
 * The one error class keyscope throws or hands to a framework's error path.
 * `status`, `headers` and `expose` follow the convention Express, Koa and Fastify error
 * handlers read, so `next(err)` / `throw err` answer correctly without extra code.
 *
 * @example
 * if (err.code === 'invalid_argument') console.error(err.message)
 */
export class KeyscopeError extends Error {
  readonly code: KeyscopeErrorCode;
  readonly status: number;
  readonly statusCode: number;
  readonly title: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Readonly<ProblemDetails>;
  /** Tells Koa (and http-errors users) that the message is safe to show the client. */
  readonly expose: boolean;

  constructor(
    code: KeyscopeErrorCode,
    message: string,
    options: { cause?: unknown; headers?: Readonly<Record<string, string>> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    const { status, title } = ERROR_TABLE[code];
    this.code = code;
    this.status = status;
    this.statusCode = status;
    this.title = title;
    this.expose = status < 500 || code === 'auth_unavailable';
    this.body = { type: problemType(code), title, status, detail: message, code };
    this.headers = options.headers ?? { 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store' };
  }
}

/** Turn a refused request into a `KeyscopeError`, for the adapters' "pass it to the framework" modes. */
export function toKeyscopeError(error: AuthError): KeyscopeError {
  return new KeyscopeError(error.code, error.detail, { headers: error.headers });
}
