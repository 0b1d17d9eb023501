import { checkOf, type AuthContext, type AuthError, type Keyscope, type ProjectRequirement } from '@keyscope/core';

/** Options of {@link authenticateRequest}. */
export interface AuthenticateRequestOptions {
  /** Whether a user-level key needs `X-Project-ID` here; wins over `path`. */
  project?: ProjectRequirement;
  /** The path your router matched on. Default: `new URL(request.url).pathname`. */
  path?: string;
  /** The client address, for the core's failed-attempt throttle. */
  clientIp?: string;
}

/**
 * Outcome of {@link authenticateRequest}: the caller and the `headers` to set on your response
 * (a limited key's `RateLimit-Policy` and `RateLimit`; empty for others), or the refusal ready
 * to return.
 */
export type RequestAuthResult = { ok: true; auth: AuthContext; headers: Readonly<Record<string, string>> } | { ok: false; response: Response };

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Authenticate a Fetch-API `Request` (Next.js, Bun, Deno, Workers, ...).
 *
 * @example const r = await authenticateRequest(ks, request); if (!r.ok) return r.response; return Response.json(data, { headers: r.headers })
 */
export async function authenticateRequest(ks: Keyscope, request: Request, options: AuthenticateRequestOptions = {}): Promise<RequestAuthResult> {
  const path = options.path ?? new URL(request.url).pathname;
  const input = { headers: request.headers, method: request.method, path, project: options.project, request, clientIp: options.clientIp };
  // A cached key is decided without a promise to wait on (see checkOf).
  const checked = checkOf(ks)(input);
  const result = 'then' in checked ? await checked : checked;
  return result.ok ? { ok: true, auth: result.auth, headers: result.headers ?? NO_HEADERS } : { ok: false, response: problemResponse(result.error) };
}

/**
 * A refusal as a Fetch `Response`: the core's status, headers and problem document.
 *
 * @example if (!result.ok) return problemResponse(result.error)
 */
export function problemResponse(error: AuthError): Response {
  return new Response(error.text, { status: error.status, headers: error.headers });
}
