import { describe, expect, it } from 'vitest';
import { ERROR_TABLE, generateKey, statusOf, type AuthResult, type KeyscopeErrorCode } from '../src/index.js';
import { headers, setup } from './helpers.js';

function expectError(result: AuthResult, code: KeyscopeErrorCode) {
  if (result.ok) throw new Error(`expected ${code}, got success ${JSON.stringify(result.auth)}`);
  expect(result.error.code).toBe(code);
  expect(result.error.status).toBe(statusOf(code));
  return result.error;
}

function expectAuth(result: AuthResult) {
  if (!result.ok) throw new Error(`expected success, got ${result.error.code}`);
  return result.auth;
}

describe('the project table', () => {
  it('project key, no X-Project-ID: its own project', async () => {
    const { ks, project } = await setup();
    const auth = expectAuth(await ks.authenticate({ headers: headers(project.key), path: '/sites' }));
    expect(auth).toEqual({ keyId: project.record.id, keyName: 'alpha key', ownerId: 'demo-user', level: 'project', projectId: 'proj_alpha' });
  });

  it('project key, the same X-Project-ID: ok', async () => {
    const { ks, project } = await setup();
    expect(expectAuth(await ks.authenticate({ headers: headers(project.key, 'proj_alpha'), path: '/sites' })).projectId).toBe('proj_alpha');
  });

  it.each(['proj_beta', 'proj_gamma', 'nope', 'bad id!', ''])('project key, X-Project-ID %j: 403 project_forbidden', async (other) => {
    const { ks, project } = await setup();
    expectError(await ks.authenticate({ headers: headers(project.key, other), path: '/sites' }), 'project_forbidden');
  });

  it('project key on a project-optional route is still scoped to its project', async () => {
    const { ks, project } = await setup();
    expect(expectAuth(await ks.authenticate({ headers: headers(project.key), path: '/validate' })).projectId).toBe('proj_alpha');
    expectError(await ks.authenticate({ headers: headers(project.key, 'proj_beta'), path: '/projects' }), 'project_forbidden');
  });

  it.each(['/validate', '/projects', '/validate?verbose=1'])('user key, no X-Project-ID on %s: project null', async (path) => {
    const { ks, user } = await setup();
    const auth = expectAuth(await ks.authenticate({ headers: headers(user.key), path }));
    expect(auth).toMatchObject({ level: 'user', ownerId: 'demo-user', projectId: null });
  });

  it('user key on a project-optional route with an owned project: that project', async () => {
    const { ks, user } = await setup();
    expect(expectAuth(await ks.authenticate({ headers: headers(user.key, 'proj_beta'), path: '/validate' })).projectId).toBe('proj_beta');
  });

  it('user key on a project-optional route with a project it does not own: 403', async () => {
    const { ks, user } = await setup();
    expectError(await ks.authenticate({ headers: headers(user.key, 'proj_gamma'), path: '/projects' }), 'project_forbidden');
  });

  it('user key, any other route, no X-Project-ID: 403 project_required', async () => {
    const { ks, user } = await setup();
    expectError(await ks.authenticate({ headers: headers(user.key), path: '/sites' }), 'project_required');
  });

  it('user key, any other route, owned project: that project', async () => {
    const { ks, user } = await setup();
    const auth = expectAuth(await ks.authenticate({ headers: headers(user.key, 'proj_alpha'), path: '/sites/s1/summary' }));
    expect(auth).toEqual({ keyId: user.record.id, keyName: 'user key', ownerId: 'demo-user', level: 'user', projectId: 'proj_alpha' });
  });

  it('user key: not owned, unknown and malformed projects are indistinguishable 403s', async () => {
    const { ks, user } = await setup();
    const errors = [];
    for (const projectId of ['proj_gamma', 'proj_nope', '../proj_alpha', 'a'.repeat(200), 'proj_alpha, proj_beta']) {
      errors.push(expectError(await ks.authenticate({ headers: headers(user.key, projectId), path: '/sites' }), 'project_forbidden'));
    }
    for (const error of errors) expect(error).toEqual(errors[0]);
  });

  it('a malformed project id is refused without a directory lookup', async () => {
    const { ks, store, user } = await setup();
    await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    for (const projectId of ['../proj_alpha', 'a b', 'x'.repeat(129), 'proj\u0000']) {
      expectError(await ks.authenticate({ headers: headers(user.key, projectId), path: '/sites' }), 'project_forbidden');
    }
    expect(store.ownsCalls).toBe(0);
  });

  it('a single X-Project-ID given as a one-element array is that value (Node headersDistinct)', async () => {
    const { ks, user, project } = await setup();
    const asArray = { 'x-api-key': [user.key], 'x-project-id': ['proj_beta'] };
    expect(expectAuth(await ks.authenticate({ headers: asArray, path: '/sites' })).projectId).toBe('proj_beta');
    expect(expectAuth(await ks.authenticate({ headers: { 'x-api-key': [project.key], 'x-project-id': ['proj_alpha'] }, path: '/sites' })).projectId).toBe('proj_alpha');
  });

  it('two X-Project-ID values are refused even when one is owned', async () => {
    const { ks, user, project } = await setup();
    const two = { 'x-api-key': user.key, 'x-project-id': ['proj_alpha', 'proj_alpha'] };
    expectError(await ks.authenticate({ headers: two, path: '/sites' }), 'project_forbidden');
    const twoForProjectKey = { 'x-api-key': project.key, 'x-project-id': ['proj_alpha', 'proj_alpha'] };
    expectError(await ks.authenticate({ headers: twoForProjectKey, path: '/sites' }), 'project_forbidden');
  });

  it('route requirement from the adapter wins over the path', async () => {
    const { ks, user } = await setup();
    expect(expectAuth(await ks.authenticate({ headers: headers(user.key), path: '/sites', project: 'optional' })).projectId).toBeNull();
    expectError(await ks.authenticate({ headers: headers(user.key), path: '/validate', project: 'required' }), 'project_required');
  });

  it('without path or route requirement a project is required (fails closed)', async () => {
    const { ks, user } = await setup();
    expectError(await ks.authenticate({ headers: headers(user.key) }), 'project_required');
  });

  it.each(['/VALIDATE', '/validate/', '//validate', '/validate/../sites', '/validate%2F..%2Fsites', '/projects%2e', '/sites?x=/validate', '/api/validate', '/validate.json'])(
    'trick path %s never counts as project-optional',
    async (path) => {
      const { ks, user } = await setup();
      expectError(await ks.authenticate({ headers: headers(user.key), path }), 'project_required');
    },
  );

  it('projectOptionalPaths replaces the default list', async () => {
    const { ks, user } = await setup({ projectOptionalPaths: ['/me'] });
    expect(expectAuth(await ks.authenticate({ headers: headers(user.key), path: '/me' })).projectId).toBeNull();
    expectError(await ks.authenticate({ headers: headers(user.key), path: '/validate' }), 'project_required');
  });
});

describe('refusals', () => {
  it('every error code maps to its documented status', () => {
    expect(Object.fromEntries(Object.entries(ERROR_TABLE).map(([code, { status }]) => [code, status]))).toEqual({
      missing_api_key: 401,
      invalid_api_key: 401,
      project_required: 403,
      project_forbidden: 403,
      too_many_attempts: 429,
      rate_limited: 429,
      quota_exhausted: 429,
      auth_unavailable: 503,
      invalid_argument: 400,
      not_found: 404,
    });
  });

  it('missing key: 401 missing_api_key with a challenge naming the header', async () => {
    const { ks } = await setup();
    const error = expectError(await ks.authenticate({ headers: {}, path: '/sites' }), 'missing_api_key');
    expect(error.headers).toEqual({
      'Content-Type': 'application/problem+json',
      'Cache-Control': 'no-store',
      'WWW-Authenticate': 'ApiKey realm="api", header="X-API-Key"',
    });
    expect(error.body).toEqual({
      type: 'urn:keyscope:error:missing_api_key',
      title: 'Invalid API key',
      status: 401,
      detail: 'Send your API key in the X-API-Key header.',
      code: 'missing_api_key',
    });
  });

  it('403s carry no challenge but are problem+json and no-store', async () => {
    const { ks, user } = await setup();
    const error = expectError(await ks.authenticate({ headers: headers(user.key), path: '/sites' }), 'project_required');
    expect(error.headers).toEqual({ 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store' });
    expect(error.body).toMatchObject({ title: 'Insufficient permissions', status: 403, code: 'project_required' });
  });

  it('no key material appears in any error', async () => {
    const { ks, user, store } = await setup();
    const results = [
      await ks.authenticate({ headers: headers(user.key + 'x'), path: '/sites' }),
      await ks.authenticate({ headers: headers(user.key), path: '/sites' }),
      await ks.authenticate({ headers: headers(user.key, 'proj_gamma'), path: '/sites' }),
    ];
    store.mode = 'throw';
    ks.invalidate();
    results.push(await ks.authenticate({ headers: headers(user.key), path: '/validate' }));
    for (const result of results) {
      const text = JSON.stringify(result);
      expect(text).not.toContain(user.key.slice(3, 20));
      expect(text).not.toContain(user.record.id);
    }
  });

  it('every refusal carries its body serialized once, as text, the same string each time', async () => {
    const { ks, user } = await setup();
    const first = await ks.authenticate({ headers: headers(user.key), path: '/sites' });
    const second = await ks.authenticate({ headers: headers(user.key), path: '/sites' });
    if (first.ok || second.ok) throw new Error('expected refusals');
    expect(first.error.text).toBe(JSON.stringify(first.error.body));
    expect(second.error).toBe(first.error);
    const missing = await ks.authenticate({ headers: {}, path: '/sites' });
    expect(!missing.ok && JSON.parse(missing.error.text)).toEqual(!missing.ok && missing.error.body);
  });

  it('unknown, expired and revoked keys get the very same answer', async () => {
    let clock = Date.now();
    const { ks, user } = await setup({ now: () => clock });
    const expiring = await ks.keys.create({ ownerId: 'demo-user', name: 'short', level: 'user', expiresAt: new Date(clock + 1000) });
    const unknown = await ks.authenticate({ headers: headers(generateKey()), path: '/validate' });
    await ks.keys.revoke(user.record.id);
    const revoked = await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    clock += 1000;
    const expired = await ks.authenticate({ headers: headers(expiring.key), path: '/validate' });
    const error = expectError(unknown, 'invalid_api_key');
    expect(error.headers['WWW-Authenticate']).toBe('ApiKey realm="api", header="X-API-Key"');
    expect(revoked).toEqual(unknown);
    expect(expired).toEqual(unknown);
  });

  it.each([
    ['malformed', 'not-a-key'],
    ['empty', ''],
    ['bad checksum', 'CHECKSUM'],
    ['8 KiB', 'k'.repeat(8192)],
    ['wrong prefix', 'xx_' + 'a'.repeat(36)],
  ])('%s key: 401 invalid_api_key without a store call', async (_, value) => {
    const { ks, store, user } = await setup();
    const key = value === 'CHECKSUM' ? user.key.slice(0, -1) + (user.key.endsWith('a') ? 'b' : 'a') : value;
    expectError(await ks.authenticate({ headers: headers(key), path: '/validate' }), 'invalid_api_key');
    expect(store.findCalls).toBe(0);
  });

  it('two X-API-Key values: 401 invalid_api_key without a store call, even if both are the valid key', async () => {
    const { ks, store, user } = await setup();
    expectError(await ks.authenticate({ headers: { 'x-api-key': [user.key, user.key] }, path: '/validate' }), 'invalid_api_key');
    // Node joins a repeated custom header with ", "; so does Fetch's Headers.
    expectError(await ks.authenticate({ headers: { 'x-api-key': `${user.key}, ${user.key}` }, path: '/validate' }), 'invalid_api_key');
    const fetchHeaders = new Headers();
    fetchHeaders.append('X-API-Key', user.key);
    fetchHeaders.append('X-API-Key', user.key);
    expectError(await ks.authenticate({ headers: fetchHeaders, path: '/validate' }), 'invalid_api_key');
    expect(store.findCalls).toBe(0);
  });

  it('missing key makes no store call', async () => {
    const { ks, store } = await setup();
    expectError(await ks.authenticate({ headers: { 'x-project-id': 'proj_alpha' }, path: '/sites' }), 'missing_api_key');
    expect(store.findCalls + store.ownsCalls).toBe(0);
  });
});

describe('headers in every shape', () => {
  it('reads Node headers, Fetch Headers, a getter and any casing of a plain object', async () => {
    const { ks, user } = await setup();
    const shapes = [
      { 'x-api-key': user.key, 'x-project-id': 'proj_alpha' },
      { 'X-API-KEY': user.key, 'X-Project-Id': 'proj_alpha' },
      new Headers({ 'X-Api-Key': user.key, 'X-PROJECT-ID': 'proj_alpha' }),
      (name: string) => ({ 'x-api-key': user.key, 'x-project-id': 'proj_alpha' })[name],
    ];
    for (const shape of shapes) {
      expect(expectAuth(await ks.authenticate({ headers: shape, path: '/sites' })).projectId).toBe('proj_alpha');
    }
  });

  it("reads Node's own header object (null prototype, lowercase names) directly", async () => {
    const { ks, user } = await setup();
    const node = Object.assign(Object.create(null), { 'x-api-key': user.key, 'x-project-id': 'proj_alpha' });
    expect(expectAuth(await ks.authenticate({ headers: node, path: '/sites' })).projectId).toBe('proj_alpha');
    // Node never produces mixed case; such an object is not searched.
    const odd = Object.assign(Object.create(null), { 'X-API-Key': user.key });
    expectError(await ks.authenticate({ headers: odd, path: '/validate' }), 'missing_api_key');
  });

  it('two casings of the key header in one plain object count as two values', async () => {
    const { ks, user } = await setup();
    expectError(await ks.authenticate({ headers: { 'X-API-Key': user.key, 'X-Api-Key': user.key }, path: '/validate' }), 'invalid_api_key');
    // The lowercase spelling is one casing among others, not a value that hides the rest.
    expectError(await ks.authenticate({ headers: { 'x-api-key': user.key, 'X-API-Key': '' }, path: '/validate' }), 'invalid_api_key');
    expectError(await ks.authenticate({ headers: { 'x-api-key': user.key, 'X-API-KEY': user.key }, path: '/validate' }), 'invalid_api_key');
    const twoProjects = await ks.authenticate({ headers: { 'x-api-key': user.key, 'x-project-id': 'proj_alpha', 'X-Project-ID': 'proj_beta' }, path: '/sites' });
    expectError(twoProjects, 'project_forbidden');
  });

  it('custom header names are honoured and named in the challenge', async () => {
    const { ks, user } = await setup({ header: 'Authorization-Key', projectHeader: 'X-Tenant' });
    expect(expectAuth(await ks.authenticate({ headers: { 'authorization-key': user.key, 'x-tenant': 'proj_beta' }, path: '/x' })).projectId).toBe('proj_beta');
    const missing = expectError(await ks.authenticate({ headers: { 'x-api-key': user.key }, path: '/x' }), 'missing_api_key');
    expect(missing.headers['WWW-Authenticate']).toContain('header="Authorization-Key"');
    const required = expectError(await ks.authenticate({ headers: { 'authorization-key': user.key }, path: '/x' }), 'project_required');
    expect(required.detail).toContain('X-Tenant');
  });
});
