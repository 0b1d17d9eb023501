import type { AuthContext, Keyscope } from '@keyscope/core';
import type { MonitoringData } from './data.js';
import { openApiDocument } from './openapi.js';

/**
 * One HTTP answer, written byte for byte by every server. The four frameworks share these
 * handlers and only translate, so status, headers and body are the same whichever runs.
 */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const PROBLEM_TYPE = 'application/problem+json';

function reply(status: number, type: string, value: unknown): Reply {
  const body = JSON.stringify(value);
  // Answers depend on the key that asked: no shared cache may keep them. Content-Length is
  // set here so that HEAD gets the same headers as GET whichever framework writes it.
  const headers = { 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)), 'Cache-Control': 'no-store' };
  return { status, headers, body };
}

const json = (status: number, value: unknown): Reply => reply(status, JSON_TYPE, value);
const problem = (status: number, title: string, detail: string): Reply =>
  reply(status, PROBLEM_TYPE, { type: 'about:blank', title, status, detail });

/** JSON 404 for a path no route matches. */
export const NOT_FOUND: Reply = problem(404, 'Not Found', 'No route matches this method and path.');
/** JSON 500 for an unexpected failure; the cause stays in the server log. */
export const INTERNAL_ERROR: Reply = problem(500, 'Internal Server Error', 'Something went wrong; retry later.');
const NO_SUCH_SITE = problem(404, 'Not Found', 'No such site in this project.');

/** The project a project-scoped handler acts on. keyscope guarantees it; a missing one is a wiring bug. */
function projectOf(auth: AuthContext | null | undefined): string {
  if (!auth?.projectId) throw new Error('a project-scoped route was reached without a project: check the route options');
  return auth.projectId;
}

function keyOf(auth: AuthContext | null | undefined): AuthContext {
  if (!auth) throw new Error('an authenticated route was reached without auth: check the route options');
  return auth;
}

export interface ApiDeps {
  /** Also where projects are read: `projectsFor` asks the project directory it was given. */
  keyscope: Keyscope;
  data: MonitoringData;
  /** Test-only: how long `GET /test/slow` waits. 0 means the route does not exist. */
  testDelayMs?: number;
}

/** The monitoring API's handlers: `auth` in, {@link Reply} out. No framework in sight. */
export function createApi({ keyscope, data, testDelayMs = 0 }: ApiDeps) {
  const openApi = json(200, openApiDocument()); // built once: it is the same for every request
  function validate(auth: AuthContext | null | undefined): Reply {
    const { keyId, keyName, level, projectId, ownerId } = keyOf(auth);
    return json(200, { valid: true, key: { id: keyId, name: keyName, level, projectId }, ownerId });
  }

  return {
    health(): Reply {
      return json(200, { status: 'ok' });
    },

    /** Public: the API described in OpenAPI 3.1. */
    openApi(): Reply {
      return openApi;
    },

    validate,

    /**
     * What the key may see: every project of its owner for a user key (X-Project-ID, checked by
     * keyscope, does not narrow it), its own project only for a project key.
     */
    async projects(auth: AuthContext | null | undefined): Promise<Reply> {
      const visible = (await keyscope.projectsFor(keyOf(auth))).sort((a, b) => a.id.localeCompare(b.id));
      return json(200, { projects: visible.map(({ id, name }) => ({ id, name })) });
    },

    sites(auth: AuthContext | null | undefined): Reply {
      const projectId = projectOf(auth);
      return json(200, { projectId, sites: data.sites(projectId).map(({ id, name, url }) => ({ id, name, url })) });
    },

    siteSummary(auth: AuthContext | null | undefined, siteId: string): Reply {
      const projectId = projectOf(auth);
      const site = data.site(projectId, siteId);
      if (!site) return NO_SUCH_SITE;
      return json(200, { projectId, site: { id: site.id, name: site.name, url: site.url }, summary: data.summary(site) });
    },

    monitoring(auth: AuthContext | null | undefined): Reply {
      const projectId = projectOf(auth);
      const sites = data.sites(projectId).map((site) => ({ id: site.id, name: site.name, ...data.summary(site) }));
      return json(200, { projectId, sites, recentChecks: data.recentChecks(projectId) });
    },

    /** The calling key's own usage, this request included. */
    async usage(auth: AuthContext | null | undefined): Promise<Reply> {
      const projectId = projectOf(auth);
      const { keyId, lastUsedAt, days } = await keyscope.keys.usage(keyOf(auth).keyId);
      return json(200, { projectId, keyId, lastUsedAt: lastUsedAt?.toISOString() ?? null, days });
    },

    /** Test-only (exists when KEYSCOPE_EXAMPLE_TEST_DELAY_MS is set): `/validate`, answered late. */
    slowRouteEnabled: testDelayMs > 0,
    async slow(auth: AuthContext | null | undefined): Promise<Reply> {
      // Lets a test send SIGTERM while this request is known to be in flight.
      console.log('test route: slow request started');
      await new Promise((resolve) => setTimeout(resolve, testDelayMs));
      return validate(auth);
    },
  };
}

export type Api = ReturnType<typeof createApi>;
