import { ERROR_TABLE, type KeyscopeErrorCode } from './errors.js';
import { ID_PATTERN } from './admin.js';

/** The OpenAPI 3.1 pieces that describe keyscope, to put under `components`. */
export interface KeyscopeOpenApi {
  securitySchemes: Record<string, object>;
  parameters: { ProjectId: object };
  schemas: { Problem: object };
  responses: Record<'Unauthorized' | 'Forbidden' | 'TooManyRequests' | 'Unavailable', object>;
  /** The `security` requirement for operations that need a key, e.g. `[{ apiKey: [] }]`. */
  security: Record<string, string[]>[];
}

/**
 * OpenAPI 3.1 components for an API behind keyscope: the `apiKey` security scheme (in the key
 * header, and `bearer` when enabled), the `X-Project-ID` header parameter, and the problem+json
 * refusals. Pass the same header options as `createKeyscope`.
 *
 * @example
 * const ks = openApiComponents()
 * const doc = { openapi: '3.1.0', components: { securitySchemes: ks.securitySchemes, parameters: ks.parameters, schemas: ks.schemas, responses: ks.responses }, security: ks.security, paths }
 * // an operation that acts on a project: parameters: [{ $ref: '#/components/parameters/ProjectId' }]
 */
export function openApiComponents(options: { header?: string; projectHeader?: string; bearer?: boolean } = {}): KeyscopeOpenApi {
  const header = options.header ?? 'X-API-Key';
  const projectHeader = options.projectHeader ?? 'X-Project-ID';
  const securitySchemes: Record<string, object> = {
    apiKey: { type: 'apiKey', in: 'header', name: header, description: 'A keyscope API key, user-level or project-level.' },
  };
  if (options.bearer) securitySchemes.bearer = { type: 'http', scheme: 'bearer', description: `The same API key, sent as a bearer token instead of ${header}.` };
  const problem = (codes: KeyscopeErrorCode[], description: string, headers?: object) => ({
    description,
    ...(headers ? { headers } : {}),
    content: {
      'application/problem+json': {
        schema: { $ref: '#/components/schemas/Problem' },
        example: { type: `urn:keyscope:error:${codes[0]}`, title: ERROR_TABLE[codes[0]!].title, status: ERROR_TABLE[codes[0]!].status, detail: '…', code: codes[0] },
      },
    },
  });
  const retryAfter = { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer', minimum: 0 } } };
  return {
    securitySchemes,
    parameters: {
      ProjectId: {
        name: projectHeader,
        in: 'header',
        required: false,
        description:
          'The project this request acts on. Required with a user-level key except on project-optional routes; a project-level key may omit it (it acts on its own project) and may name no other.',
        schema: { type: 'string', pattern: ID_PATTERN.source },
      },
    },
    schemas: {
      Problem: {
        type: 'object',
        description: 'An RFC 9457 problem document.',
        required: ['type', 'title', 'status', 'detail', 'code'],
        properties: {
          type: { type: 'string' },
          title: { type: 'string' },
          status: { type: 'integer' },
          detail: { type: 'string' },
          code: { type: 'string', enum: Object.keys(ERROR_TABLE) },
        },
      },
    },
    responses: {
      Unauthorized: problem(['invalid_api_key', 'missing_api_key'], 'The API key is missing, incorrect, expired or revoked.', {
        'WWW-Authenticate': { description: 'The challenge naming the key header.', schema: { type: 'string' } },
      }),
      Forbidden: problem(['project_forbidden', 'project_required'], 'The key has no access to the requested project, or a user-level key named none.'),
      TooManyRequests: problem(['too_many_attempts', 'rate_limited', 'quota_exhausted'], "Too many failed attempts from this client, or the key's rate limit or quota is reached.", {
        ...retryAfter,
        'RateLimit-Policy': { description: "A limited key's policies (IETF RateLimit header fields draft): \"rate\" and/or \"quota\".", schema: { type: 'string' } },
        RateLimit: { description: 'What is left of each policy now (r) and when it resets (t, seconds).', schema: { type: 'string' } },
      }),
      Unavailable: problem(['auth_unavailable'], 'Authentication is temporarily unavailable.', retryAfter),
    },
    security: options.bearer ? [{ apiKey: [] }, { bearer: [] }] : [{ apiKey: [] }],
  };
}
