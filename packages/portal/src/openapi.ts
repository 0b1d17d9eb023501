import { ID_PATTERN } from '@keyscope/core';

/** The OpenAPI 3.1 document of the portal's JSON API (served at `{basePath}/api/openapi.json`). */
export function portalOpenApi(base: string, graces: { label: string; ms: number }[], expiryDays: number[], editLimits: boolean): object {
  const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });
  const keyId = { name: 'id', in: 'path', required: true, description: 'The key id (not secret).', schema: { type: 'string' } };
  const jsonBody = (schema: object, required: boolean) => ({ required, content: { 'application/json': { schema } } });
  const ok = (description: string, schema: object) => ({ description, content: { 'application/json': { schema } } });
  const common = { 401: { $ref: '#/components/responses/NotSignedIn' } };
  const post = { 403: { $ref: '#/components/responses/CrossSite' }, 415: problem('The body is not `application/json`.') };
  return {
    openapi: '3.1.0',
    info: {
      title: 'keyscope portal API',
      version: '1.0.0',
      description:
        "The signed-in owner's API keys. Authentication is the host application's own session (usually a SameSite cookie); every route acts only on the signed-in owner's keys and projects, and another owner's key is 404. State-changing requests must be same-origin (`Sec-Fetch-Site` and `Origin` are checked when present) and send `Content-Type: application/json`. Every response has `Cache-Control: no-store`.",
    },
    paths: {
      [`${base}/api/keys`]: {
        get: { operationId: 'listKeys', summary: 'Your keys, newest last, with status and rotation mark', responses: { 200: ok('Your keys', { type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: { $ref: '#/components/schemas/Key' } } } }), ...common } },
        post: {
          operationId: 'createKey',
          summary: 'Create a key; the response is the only place the key ever appears',
          requestBody: jsonBody({ $ref: '#/components/schemas/CreateKey' }, true),
          responses: { 201: ok('The key (shown once) and its record', { $ref: '#/components/schemas/IssuedKey' }), 422: problem('A field is invalid: see `errors`.'), ...common, ...post },
        },
      },
      [`${base}/api/keys/{id}`]: {
        get: { operationId: 'getKey', summary: 'One of your keys', parameters: [keyId], responses: { 200: ok('The key', { $ref: '#/components/schemas/Key' }), 404: problem('No such key of yours.'), ...common } },
      },
      [`${base}/api/keys/{id}/revoke`]: {
        post: { operationId: 'revokeKey', summary: 'Revoke one of your keys (idempotent)', parameters: [keyId], responses: { 200: ok('The revoked key', { $ref: '#/components/schemas/Key' }), 404: problem('No such key of yours.'), ...common, ...post } },
      },
      [`${base}/api/keys/{id}/rotate`]: {
        post: {
          operationId: 'rotateKey',
          summary: 'Replace one of your keys with a new one; the old one works for the grace period',
          parameters: [keyId],
          requestBody: jsonBody({ type: 'object', properties: { gracePeriodMs: { type: 'integer', enum: graces.map((g) => g.ms), default: 0, description: graces.map((g) => `${g.ms}: ${g.label}`).join('; ') } } }, false),
          responses: {
            200: ok('The new key (shown once), its record, and the old key', { allOf: [{ $ref: '#/components/schemas/IssuedKey' }, { type: 'object', required: ['previous'], properties: { previous: { oneOf: [{ $ref: '#/components/schemas/Key' }, { type: 'null' }] } } }] }),
            404: problem('No such key of yours.'),
            409: problem('The key is revoked or expired, or its project is no longer yours.'),
            422: problem('Not an offered grace period.'),
            ...common,
            ...post,
          },
        },
      },
      ...(editLimits
        ? {
            [`${base}/api/keys/{id}/limits`]: {
              post: {
                operationId: 'setKeyLimits',
                summary: "Change one of your keys' rate limit or quota: a field left out stays as it is, null removes it",
                parameters: [keyId],
                requestBody: jsonBody({ $ref: '#/components/schemas/Limits' }, true),
                responses: {
                  200: ok('The key with its new limits', { $ref: '#/components/schemas/Key' }),
                  404: problem('No such key of yours.'),
                  409: problem('A signed key carries no limits of its own.'),
                  422: problem('A limit is invalid: see `errors`.'),
                  ...common,
                  ...post,
                },
              },
            },
          }
        : {}),
      [`${base}/api/keys/{id}/usage`]: {
        get: {
          operationId: 'keyUsage',
          summary: "One of your keys' requests per UTC day",
          parameters: [keyId],
          responses: {
            200: ok('Usage', {
              type: 'object',
              required: ['keyId', 'lastUsedAt', 'days', 'last30Days'],
              properties: {
                keyId: { type: 'string' },
                lastUsedAt: { type: ['string', 'null'], format: 'date-time' },
                days: { type: 'array', items: { type: 'object', required: ['day', 'count'], properties: { day: { type: 'string', format: 'date' }, count: { type: 'integer', minimum: 0 } } } },
                last30Days: { type: 'array', minItems: 30, maxItems: 30, items: { type: 'integer', minimum: 0 }, description: 'Requests per day for the 30 UTC days ending today, oldest first.' },
              },
            }),
            404: problem('No such key of yours.'),
            ...common,
          },
        },
      },
      [`${base}/api/projects`]: {
        get: {
          operationId: 'listProjects',
          summary: 'Your projects (what a project-level key may be issued for)',
          responses: { 200: ok('Your projects', { type: 'object', required: ['projects'], properties: { projects: { type: 'array', items: { type: 'object', required: ['id', 'name'], properties: { id: { type: 'string' }, name: { type: 'string' } } } } } }), ...common },
        },
      },
    },
    components: {
      schemas: {
        Key: {
          type: 'object',
          required: ['id', 'name', 'level', 'projectId', 'start', 'createdAt', 'lastUsedAt', 'expiresAt', 'revokedAt', 'status', 'rotationDue', 'rateLimit', 'quota'],
          properties: {
            id: { type: 'string' },
            name: { type: 'string' },
            level: { type: 'string', enum: ['user', 'project'] },
            projectId: { type: ['string', 'null'] },
            start: { type: 'string', description: 'The non-secret beginning of the key, e.g. `ks_4fQ9`.' },
            createdAt: { type: 'string', format: 'date-time' },
            lastUsedAt: { type: ['string', 'null'], format: 'date-time' },
            expiresAt: { type: ['string', 'null'], format: 'date-time' },
            revokedAt: { type: ['string', 'null'], format: 'date-time' },
            status: { type: 'string', enum: ['active', 'expiring', 'expired', 'revoked'], description: '`expiring`: active, expires within 7 days.' },
            rotationDue: { type: 'boolean', description: 'Active and older than the portal\'s rotation period.' },
            rateLimit: { oneOf: [{ $ref: '#/components/schemas/RateLimit' }, { type: 'null' }], description: 'The key\'s own rate limit; `null`: none of its own.' },
            quota: {
              oneOf: [
                {
                  type: 'object',
                  required: ['limit', 'remaining', 'refill', 'resetAt'],
                  properties: {
                    limit: { type: 'integer', minimum: 1 },
                    remaining: { type: 'integer', minimum: 0, description: 'What the next request would find: a refill that is due is counted as done.' },
                    refill: { type: ['string', 'null'], enum: ['day', 'month', null], description: 'Refilled at 00:00 UTC each day, on the 1st of each month, or never (`null`).' },
                    resetAt: { type: ['string', 'null'], format: 'date-time', description: 'The next refill; `null` when it never refills.' },
                  },
                },
                { type: 'null' },
              ],
              description: 'The key\'s quota; `null`: unlimited.',
            },
          },
        },
        RateLimit: {
          type: 'object',
          required: ['limit', 'windowMs'],
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 1_000_000_000, description: 'Requests per window.' },
            windowMs: { type: 'integer', minimum: 1000, maximum: 366 * 86_400_000, description: 'The window in milliseconds, e.g. 60000 for a minute.' },
          },
        },
        Limits: {
          type: 'object',
          properties: {
            rateLimit: { oneOf: [{ $ref: '#/components/schemas/RateLimit' }, { type: 'null' }], description: 'Left out: as it is; `null`: none of its own.' },
            quota: {
              oneOf: [
                {
                  type: 'object',
                  required: ['limit'],
                  properties: {
                    limit: { type: 'integer', minimum: 1 },
                    refill: { type: ['string', 'null'], enum: ['day', 'month', null], default: null },
                    remaining: { type: 'integer', minimum: 0, description: 'At most `limit`. Default: `limit` (a new quota starts full).' },
                  },
                },
                { type: 'null' },
              ],
              description: 'Left out: as it is; `null`: no quota. A quota given replaces the one the key has.',
            },
          },
        },
        CreateKey: {
          type: 'object',
          required: ['name', 'level'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 64 },
            level: { type: 'string', enum: ['user', 'project'] },
            projectId: { type: 'string', pattern: ID_PATTERN.source, description: 'Required for a project-level key; one of your projects. Leave out for a user-level key.' },
            expiresInDays: { oneOf: [{ type: 'integer', enum: expiryDays }, { type: 'null' }], default: null },
            ...(editLimits
              ? {
                  rateLimit: { oneOf: [{ $ref: '#/components/schemas/RateLimit' }, { type: 'null' }], default: null },
                  quota: { $ref: '#/components/schemas/Limits/properties/quota', description: 'Left out: the default quota of keys of its level, if the API sets one.' },
                }
              : {}),
          },
        },
        IssuedKey: {
          type: 'object',
          required: ['key', 'record'],
          properties: { key: { type: 'string', description: 'The API key itself. It is never shown again.' }, record: { $ref: '#/components/schemas/Key' } },
        },
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail', 'code'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            code: { type: 'string' },
            errors: { type: 'object', additionalProperties: { type: 'string' }, description: 'Field → message, for `invalid_input`.' },
          },
        },
      },
      responses: {
        NotSignedIn: problem('Nobody is signed in (the host application\'s session).'),
        CrossSite: problem('Refused as cross-site: `Sec-Fetch-Site` other than `same-origin`, or a foreign `Origin`.'),
      },
    },
  };
}
