import { openApiComponents } from '@keyscope/core';

/**
 * The example API as an OpenAPI 3.1 document, served at `GET /openapi.json` by every server.
 * keyscope's components give the security scheme, the X-Project-ID parameter and the refusals;
 * this file adds the routes and their bodies. A route added to the servers belongs here too
 * (test/e2e/api.test.ts compares the two).
 */
export function openApiDocument(): object {
  const keyscope = openApiComponents();
  const ref = (kind: 'schemas' | 'responses' | 'parameters', name: string) => ({ $ref: `#/components/${kind}/${name}` });
  const refusals = {
    401: ref('responses', 'Unauthorized'),
    403: ref('responses', 'Forbidden'),
    429: ref('responses', 'TooManyRequests'),
    503: ref('responses', 'Unavailable'),
  };
  const ok = (description: string, schema: string) => ({ description, content: { 'application/json': { schema: ref('schemas', schema) } } });

  /** An operation behind keyscope. X-Project-ID is read on every one of them (and checked when sent). */
  const keyed = (summary: string, description: string, schema: string, extra: { parameters?: object[]; responses?: object } = {}) => ({
    get: {
      summary,
      description,
      parameters: [ref('parameters', 'ProjectId'), ...(extra.parameters ?? [])],
      responses: { 200: ok(summary, schema), ...extra.responses, ...refusals },
    },
  });
  const projectScoped = 'Project-scoped: a user-level key must name one of its owner\'s projects in X-Project-ID; a project-level key acts on its own project.';
  const projectOptional = 'Project-optional: a user-level key may omit X-Project-ID; if sent, it must name a project of the key\'s owner.';
  const string = { type: 'string' };
  const nullable = (type: string) => ({ type: [type, 'null'] });
  const object = (properties: Record<string, object>) => ({ type: 'object', required: Object.keys(properties), properties });
  const summaryFields = {
    status: { type: 'string', enum: ['up', 'down', 'unknown'] },
    checks: { type: 'integer' },
    uptimePercent: nullable('number'),
    averageResponseMs: nullable('integer'),
    lastCheckedAt: { type: ['string', 'null'], format: 'date-time' },
  };

  return {
    openapi: '3.1.0',
    info: {
      title: 'keyscope example monitoring API',
      version: '1.0.0',
      description: 'Owners have projects; projects have sites and uptime checks. Send an API key in X-API-Key.',
    },
    security: keyscope.security,
    paths: {
      '/health': { get: { summary: 'Liveness', security: [], responses: { 200: ok('The server is up', 'Health') } } },
      '/openapi.json': {
        get: { summary: 'This document', security: [], responses: { 200: { description: 'The OpenAPI document', content: { 'application/json': { schema: { type: 'object' } } } } } },
      },
      '/validate': keyed('The key and its owner', projectOptional, 'Validation'),
      '/projects': keyed(
        'The projects the key may see',
        `${projectOptional} A user-level key sees every project of its owner, a project-level key its own.`,
        'ProjectList',
      ),
      '/sites': keyed('The project\'s sites', projectScoped, 'SiteList'),
      '/sites/{siteId}/summary': keyed('A site\'s uptime summary', projectScoped, 'SiteSummary', {
        parameters: [{ name: 'siteId', in: 'path', required: true, schema: string }],
        responses: { 404: ref('responses', 'NotFound') },
      }),
      '/monitoring': keyed('The project\'s sites with their summaries, and its recent checks', projectScoped, 'Monitoring'),
      '/usage': keyed('The calling key\'s own usage by day, this request included', projectScoped, 'Usage'),
    },
    components: {
      securitySchemes: keyscope.securitySchemes,
      parameters: keyscope.parameters,
      responses: {
        ...keyscope.responses,
        NotFound: {
          description: 'No such site in this project (a site of another project included).',
          content: { 'application/problem+json': { schema: object({ type: string, title: string, status: { type: 'integer' }, detail: string }) } },
        },
      },
      schemas: {
        ...keyscope.schemas,
        Health: object({ status: { const: 'ok' } }),
        Validation: object({
          valid: { const: true },
          key: object({ id: string, name: string, level: { type: 'string', enum: ['user', 'project'] }, projectId: nullable('string') }),
          ownerId: string,
        }),
        ProjectList: object({ projects: { type: 'array', items: object({ id: string, name: string }) } }),
        Site: object({ id: string, name: string, url: { type: 'string', format: 'uri' } }),
        SiteList: object({ projectId: string, sites: { type: 'array', items: ref('schemas', 'Site') } }),
        SiteSummary: object({ projectId: string, site: ref('schemas', 'Site'), summary: object(summaryFields) }),
        Monitoring: object({
          projectId: string,
          sites: { type: 'array', items: object({ id: string, name: string, ...summaryFields }) },
          recentChecks: {
            type: 'array',
            items: object({
              id: { type: 'integer' },
              siteId: string,
              checkedAt: { type: 'string', format: 'date-time' },
              status: { type: 'string', enum: ['up', 'down'] },
              httpStatus: { type: 'integer' },
              responseMs: { type: 'integer' },
            }),
          },
        }),
        Usage: object({
          projectId: string,
          keyId: string,
          lastUsedAt: { type: ['string', 'null'], format: 'date-time' },
          days: { type: 'array', items: object({ day: { type: 'string', format: 'date' }, count: { type: 'integer' } }) },
        }),
      },
    },
  };
}
