import type { AuthContext, KeyscopeErrorCode } from '@keyscope/core';
import type { KeyName } from './fixture.js';

/** A header value: literal text, or one of the fixture's keys (never written into the table). */
export type HeaderValue = string | { key: KeyName };

export interface Case {
  name: string;
  method?: string;
  /** Sent exactly as written: no normalisation. */
  path: string;
  /** Sent in this order; a name listed twice is sent twice. */
  headers: ReadonlyArray<readonly [string, HeaderValue]>;
  expect: {
    /** One status, or the statuses allowed when frameworks legitimately differ (trick paths). */
    status: number | readonly number[];
    /** The refusal's `code` (for 401/403). */
    code?: KeyscopeErrorCode;
    /** The handler that ran (on 200). Absent: no handler may run. */
    route?: string;
    /** Fields of the `auth` the handler saw (`null`: it saw none). */
    auth?: Partial<AuthContext> | null;
    /**
     * Response headers (lowercase names) that must match; a limited key's rows list the
     * RateLimit fields. Every other row must carry no `ratelimit` or `ratelimit-policy`.
     */
    headers?: Readonly<Record<string, RegExp>>;
  };
  /** Only with opaque keys: a signed key carries no limits of its own. */
  opaqueOnly?: boolean;
  /** Cases sharing a tag must get byte-identical answers (status, headers, body). */
  identical?: string;
}

const key = (name: KeyName) => ({ key: name });
const K = (name: KeyName): readonly [string, HeaderValue] => ['X-API-Key', key(name)];
const P = (project: string): readonly [string, HeaderValue] => ['X-Project-ID', project];

const USER = { ownerId: 'usr_1', level: 'user', keyName: 'user key' } as const;
const PROJECT_KEY = { ownerId: 'usr_1', level: 'project', keyName: 'project key', projectId: 'proj_a' } as const;
const REFUSED = [403, 404] as const;

export const CASES: readonly Case[] = [
  // Step 1 and 2 of the pipeline: the key itself.
  { name: 'no key on a project-optional route', path: '/validate', headers: [], expect: { status: 401, code: 'missing_api_key' } },
  { name: 'no key on a project-scoped route', path: '/sites', headers: [P('proj_a')], expect: { status: 401, code: 'missing_api_key' } },
  { name: 'malformed key', path: '/validate', headers: [['X-API-Key', 'not-a-key']], expect: { status: 401, code: 'invalid_api_key' }, identical: 'bad key' },
  { name: 'empty key', path: '/validate', headers: [['X-API-Key', '']], expect: { status: 401, code: 'invalid_api_key' }, identical: 'bad key' },
  { name: 'key with a wrong checksum', path: '/validate', headers: [K('badChecksum')], expect: { status: 401, code: 'invalid_api_key' }, identical: 'bad key' },
  { name: 'unknown key', path: '/validate', headers: [K('unknown')], expect: { status: 401, code: 'invalid_api_key' }, identical: 'bad key' },
  { name: 'expired key', path: '/validate', headers: [K('expired')], expect: { status: 401, code: 'invalid_api_key' }, identical: 'bad key' },
  { name: 'revoked key', path: '/validate', headers: [K('revoked')], expect: { status: 401, code: 'invalid_api_key' }, identical: 'bad key' },
  { name: '8 KiB key', path: '/validate', headers: [K('long')], expect: { status: 401, code: 'invalid_api_key' }, identical: 'bad key' },
  { name: 'revoked key with a project on a scoped route', path: '/sites', headers: [K('revoked'), P('proj_a')], expect: { status: 401, code: 'invalid_api_key' } },
  { name: 'key store unreachable', path: '/sites', headers: [K('storeDown'), P('proj_a')], expect: { status: 503, code: 'auth_unavailable' } },
  { name: 'header name in lowercase', path: '/validate', headers: [['x-api-key', key('user')]], expect: { status: 200, route: 'validate', auth: { ...USER, projectId: null } } },
  { name: 'header name in uppercase', path: '/validate', headers: [['X-API-KEY', key('user')]], expect: { status: 200, route: 'validate', auth: { ...USER, projectId: null } } },
  { name: 'two X-API-Key headers, same key', path: '/validate', headers: [K('user'), K('user')], expect: { status: 401, code: 'invalid_api_key' } },
  { name: 'two X-API-Key headers, different keys', path: '/sites', headers: [K('project'), K('user'), P('proj_a')], expect: { status: 401, code: 'invalid_api_key' } },

  // Step 3: the project table of DESIGN.md, row by row.
  { name: 'project key, no project header', path: '/sites', headers: [K('project')], expect: { status: 200, route: 'sites', auth: PROJECT_KEY } },
  { name: 'project key, its own project', path: '/sites/s1/summary', headers: [K('project'), P('proj_a')], expect: { status: 200, route: 'site-summary', auth: PROJECT_KEY } },
  { name: 'project key, another project of the owner', path: '/sites', headers: [K('project'), P('proj_b')], expect: { status: 403, code: 'project_forbidden' } },
  { name: 'project key, a malformed project', path: '/sites', headers: [K('project'), P('proj a/..')], expect: { status: 403, code: 'project_forbidden' } },
  { name: 'project key on a project-optional route', path: '/validate', headers: [K('project')], expect: { status: 200, route: 'validate', auth: PROJECT_KEY } },
  { name: 'project key on a project-optional route, another project', path: '/validate', headers: [K('project'), P('proj_b')], expect: { status: 403, code: 'project_forbidden' } },
  { name: 'user key, /validate, no project', path: '/validate', headers: [K('user')], expect: { status: 200, route: 'validate', auth: { ...USER, projectId: null } } },
  { name: 'user key, /projects, no project', path: '/projects', headers: [K('user')], expect: { status: 200, route: 'projects', auth: { ...USER, projectId: null } } },
  { name: 'user key, /validate, an owned project', path: '/validate', headers: [K('user'), P('proj_b')], expect: { status: 200, route: 'validate', auth: { ...USER, projectId: 'proj_b' } } },
  { name: 'user key, /validate, a project of another owner', path: '/validate', headers: [K('user'), P('proj_c')], expect: { status: 403, code: 'project_forbidden' }, identical: 'not yours' },
  { name: 'user key, /validate, an unknown project', path: '/validate', headers: [K('user'), P('proj_zzz')], expect: { status: 403, code: 'project_forbidden' }, identical: 'not yours' },
  { name: 'user key, scoped route, no project', path: '/sites', headers: [K('user')], expect: { status: 403, code: 'project_required' } },
  { name: 'user key, scoped route with a parameter, no project', path: '/sites/s1/summary', headers: [K('user')], expect: { status: 403, code: 'project_required' } },
  { name: 'user key, scoped route, an owned project', path: '/sites', headers: [K('user'), P('proj_a')], expect: { status: 200, route: 'sites', auth: { ...USER, projectId: 'proj_a' } } },
  { name: 'user key, scoped route with a parameter, an owned project', path: '/sites/s1/summary', headers: [K('user'), P('proj_b')], expect: { status: 200, route: 'site-summary', auth: { ...USER, projectId: 'proj_b' } } },
  { name: 'user key, scoped route, a project of another owner', path: '/sites', headers: [K('user'), P('proj_c')], expect: { status: 403, code: 'project_forbidden' }, identical: 'not yours' },
  { name: 'user key, scoped route, an unknown project', path: '/sites', headers: [K('user'), P('proj_zzz')], expect: { status: 403, code: 'project_forbidden' }, identical: 'not yours' },
  { name: 'user key, scoped route, a malformed project', path: '/sites', headers: [K('user'), P('../proj_a')], expect: { status: 403, code: 'project_forbidden' }, identical: 'not yours' },
  { name: 'another owner\'s user key, scoped route, usr_1\'s project', path: '/sites', headers: [K('otherUser'), P('proj_a')], expect: { status: 403, code: 'project_forbidden' }, identical: 'not yours' },
  { name: 'user key, two X-Project-ID headers', path: '/sites', headers: [K('user'), P('proj_a'), P('proj_a')], expect: { status: 403, code: 'project_forbidden' } },
  { name: 'project key, two X-Project-ID headers', path: '/sites', headers: [K('project'), P('proj_a'), P('proj_b')], expect: { status: 403, code: 'project_forbidden' } },
  { name: 'project header name in lowercase', path: '/sites', headers: [K('user'), ['x-project-id', 'proj_a']], expect: { status: 200, route: 'sites', auth: { ...USER, projectId: 'proj_a' } } },
  { name: 'HEAD on a scoped route, no project', method: 'HEAD', path: '/sites', headers: [K('user')], expect: { status: 403 } },

  // Trick paths: a user key without a project never reaches a project-scoped handler.
  // Routers that match in any case, or with a trailing slash, run the /validate route here: decided on the matched route, that is project-optional.
  { name: 'trick path /VALIDATE (the /validate route to a case-insensitive router)', path: '/VALIDATE', headers: [K('user')], expect: { status: [200, 403, 404], route: 'validate', auth: { ...USER, projectId: null } } },
  { name: 'trick path /validate/ (the /validate route to a non-strict router)', path: '/validate/', headers: [K('user')], expect: { status: [200, 403, 404], route: 'validate', auth: { ...USER, projectId: null } } },
  { name: 'trick path //validate', path: '//validate', headers: [K('user')], expect: { status: REFUSED } },
  { name: 'trick path /validate/../sites', path: '/validate/../sites', headers: [K('user')], expect: { status: REFUSED } },
  { name: 'trick path /validate/%2e%2e/sites', path: '/validate/%2e%2e/sites', headers: [K('user')], expect: { status: REFUSED } },
  { name: 'trick path /validate%2F..%2Fsites', path: '/validate%2F..%2Fsites', headers: [K('user')], expect: { status: REFUSED } },
  { name: 'trick path /projects%2e', path: '/projects%2e', headers: [K('user')], expect: { status: REFUSED } },
  { name: 'trick path /sites?x=/validate', path: '/sites?x=/validate', headers: [K('user')], expect: { status: 403, code: 'project_required' } },
  { name: 'trick path /sites#/validate', path: '/sites#/validate', headers: [K('user')], expect: { status: REFUSED } },
  { name: 'trick path /api/v1/validate/../sites', path: '/api/v1/validate/../sites', headers: [K('user')], expect: { status: REFUSED } },
  { name: 'trick path /api/v1//validate', path: '/api/v1//validate', headers: [K('user')], expect: { status: REFUSED } },
  { name: 'trick path /sites/%2e%2e/validate (a real route once resolved)', path: '/sites/%2e%2e/validate', headers: [K('user')], expect: { status: [200, 403, 404], route: 'validate', auth: { ...USER, projectId: null } } },
  { name: 'trick path /api/v1/../../validate (a real route once resolved)', path: '/api/v1/../../validate', headers: [K('user')], expect: { status: [200, 403, 404], route: 'validate', auth: { ...USER, projectId: null } } },

  // A public route.
  { name: 'public route without a key', path: '/health', headers: [], expect: { status: 200, route: 'health', auth: null } },
  { name: 'public route with a bad key', path: '/health', headers: [['X-API-Key', 'not-a-key']], expect: { status: 200, route: 'health', auth: null } },

  // A route group mounted at /api/v1: project-optional by the mount-relative path.
  { name: 'group: /api/v1/validate, user key, no project', path: '/api/v1/validate', headers: [K('user')], expect: { status: 200, route: 'v1:validate', auth: { ...USER, projectId: null } } },
  { name: 'group: /api/v1/projects, user key, no project', path: '/api/v1/projects', headers: [K('user')], expect: { status: 200, route: 'v1:projects', auth: { ...USER, projectId: null } } },
  { name: 'group: scoped route, user key, no project', path: '/api/v1/sites', headers: [K('user')], expect: { status: 403, code: 'project_required' } },
  { name: 'group: scoped route with a parameter, user key, owned project', path: '/api/v1/sites/s9/summary', headers: [K('user'), P('proj_a')], expect: { status: 200, route: 'v1:site-summary', auth: { ...USER, projectId: 'proj_a' } } },
  { name: 'group: scoped route, project key', path: '/api/v1/sites', headers: [K('project')], expect: { status: 200, route: 'v1:sites', auth: PROJECT_KEY } },
  { name: 'group: no key', path: '/api/v1/validate', headers: [], expect: { status: 401, code: 'missing_api_key' } },
  { name: 'group: revoked key', path: '/api/v1/validate', headers: [K('revoked')], expect: { status: 401, code: 'invalid_api_key' } },
  { name: 'group: the prefix in another case, no key', path: '/API/V1/validate', headers: [], expect: { status: [401, 404] } },
  { name: 'group: the prefix in another case, scoped route, user key', path: '/Api/v1/sites', headers: [K('user')], expect: { status: REFUSED } },
  // A router that matches in any case runs the /validate route here: deciding on the matched route, that is project-optional.
  // Step 4: a key's limits, after the key and project checks. The rows run in this order on one app.
  ...limitRows(),

  { name: 'group: trick path /api/v1/VALIDATE (the /validate route to a case-insensitive router)', path: '/api/v1/VALIDATE', headers: [K('user')], expect: { status: [200, 403, 404], route: 'v1:validate', auth: { ...USER, projectId: null } } },
];

/** A limited key's rows: 2 requests a minute, and a quota of 2 a day (fixture.ts). */
function limitRows(): Case[] {
  const LIMITED = { ownerId: 'usr_1', level: 'user', keyName: 'limited key' } as const;
  const QUOTA_KEY = { ownerId: 'usr_1', level: 'project', keyName: 'quota key', projectId: 'proj_a' } as const;
  const rate = (r: number) => ({ 'ratelimit-policy': /^"rate";q=2;w=60$/, ratelimit: new RegExp(`^"rate";r=${r};t=([1-9]|[1-5][0-9]|60)$`) });
  const quota = (r: number) => ({ 'ratelimit-policy': /^"quota";q=2;w=86400$/, ratelimit: new RegExp(`^"quota";r=${r};t=[1-9][0-9]*$`) });
  return [
    { name: 'rate-limited key, first request', path: '/validate', headers: [K('limited')], expect: { status: 200, route: 'validate', auth: { ...LIMITED, projectId: null }, headers: rate(1) }, opaqueOnly: true },
    // Refused before the limit is counted: no allowance spent, and the refusal says nothing of it.
    { name: 'rate-limited key, a project of another owner', path: '/sites', headers: [K('limited'), P('proj_c')], expect: { status: 403, code: 'project_forbidden' }, identical: 'not yours', opaqueOnly: true },
    { name: 'rate-limited key, a wrong checksum', path: '/validate', headers: [K('limitedBadChecksum')], expect: { status: 401, code: 'invalid_api_key' }, identical: 'bad key', opaqueOnly: true },
    { name: 'rate-limited key, second request', path: '/sites', headers: [K('limited'), P('proj_a')], expect: { status: 200, route: 'sites', auth: { ...LIMITED, projectId: 'proj_a' }, headers: rate(0) }, opaqueOnly: true },
    { name: 'rate-limited key, over its limit', path: '/validate', headers: [K('limited')], expect: { status: 429, code: 'rate_limited', headers: { ...rate(0), 'retry-after': /^([1-9]|[12][0-9]|30)$/ } }, opaqueOnly: true },
    { name: 'rate-limited key, over its limit, on a scoped route', path: '/sites/s1/summary', headers: [K('limited'), P('proj_b')], expect: { status: 429, code: 'rate_limited', headers: rate(0) }, opaqueOnly: true },
    { name: 'quota key, first request', path: '/sites', headers: [K('quota')], expect: { status: 200, route: 'sites', auth: QUOTA_KEY, headers: quota(1) }, opaqueOnly: true },
    { name: 'quota key, another project', path: '/sites', headers: [K('quota'), P('proj_b')], expect: { status: 403, code: 'project_forbidden' }, opaqueOnly: true },
    { name: 'quota key, second request', path: '/validate', headers: [K('quota')], expect: { status: 200, route: 'validate', auth: QUOTA_KEY, headers: quota(0) }, opaqueOnly: true },
    { name: 'quota key, used up', path: '/sites', headers: [K('quota')], expect: { status: 429, code: 'quota_exhausted', headers: { ...quota(0), 'retry-after': /^[1-9][0-9]*$/ } }, opaqueOnly: true },
    { name: 'quota key, used up, group route', path: '/api/v1/sites', headers: [K('quota')], expect: { status: 429, code: 'quota_exhausted', headers: quota(0) }, opaqueOnly: true },
  ];
}
