/**
 * What apps need around the pipeline: owner-scoped administration, the projects a request may
 * see, events for operators, imported keys, Authorization: Bearer, OpenAPI components and
 * refusals that explain themselves.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { describe, expect, it, vi } from 'vitest';
import { createKeyscope, generateKey, keyStatus, MemoryStore, openApiComponents, type AuthResult, type KeyscopeEvent } from '../src/index.js';
import { headers, setup } from './helpers.js';

const code = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);
const DAY = 86_400_000;

describe('owner-scoped administration (keys.forOwner)', () => {
  it("never reaches another owner's key: get is null, revoke/rotate/usage are not_found exactly as for an unknown id", async () => {
    const { ks, user } = await setup();
    const theirs = ks.keys.forOwner('other-user');
    expect(await theirs.get(user.record.id)).toBeNull();
    for (const attempt of [() => theirs.revoke(user.record.id), () => theirs.rotate(user.record.id), () => theirs.usage(user.record.id)]) {
      const error = await attempt().catch((e: unknown) => e);
      const unknown = await ks.keys.revoke('key_doesnotexist').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'not_found', status: 404 });
      expect((error as Error).message.replace(user.record.id, 'ID')).toBe((unknown as Error).message.replace('key_doesnotexist', 'ID'));
    }
    // Nothing happened to the key.
    expect((await ks.authenticate({ headers: headers(user.key), path: '/validate' })).ok).toBe(true);
    expect(await ks.keys.list('demo-user')).toHaveLength(2);
  });

  it('does everything for the owner itself: create, list with status, get, rotate, usage, revoke, projects', async () => {
    const { ks } = await setup();
    const mine = ks.keys.forOwner('demo-user');
    const created = await mine.create({ name: 'settings page key', level: 'project', projectId: 'proj_beta' });
    expect(created.record.ownerId).toBe('demo-user');
    await expect(mine.create({ name: 'x', level: 'project', projectId: 'proj_gamma' })).rejects.toMatchObject({ code: 'invalid_argument' });
    expect((await mine.get(created.record.id))?.status).toBe('active');
    const rotated = await mine.rotate(created.record.id, { gracePeriodMs: 60_000 });
    expect(rotated.record.projectId).toBe('proj_beta');
    expect((await mine.usage(rotated.record.id)).keyId).toBe(rotated.record.id);
    expect((await mine.revoke(rotated.record.id)).revokedAt).not.toBeNull();
    const listed = await mine.list();
    expect(listed.map((k) => k.status)).toEqual(['active', 'active', 'expiring', 'revoked']);
    expect(listed.every((k) => k.ownerId === 'demo-user' && !('hash' in k))).toBe(true);
    expect((await mine.projects()).map((p) => p.id)).toEqual(['proj_alpha', 'proj_beta']);
    expect(() => ks.keys.forOwner('bad owner')).toThrow(/ownerId/);
  });

  it('list gives each key its status: active, expiring (within a week), expired, revoked', async () => {
    let clock = Date.now();
    const { ks } = await setup({ now: () => clock });
    const mine = ks.keys.forOwner('demo-user');
    const soon = await mine.create({ name: 'soon', level: 'user', expiresAt: new Date(clock + 3 * DAY) });
    const later = await mine.create({ name: 'later', level: 'user', expiresAt: new Date(clock + 30 * DAY) });
    const revoked = await mine.create({ name: 'revoked', level: 'user' });
    await mine.revoke(revoked.record.id);
    const status = async () => Object.fromEntries((await mine.list()).map((k) => [k.name, k.status]));
    expect(await status()).toMatchObject({ soon: 'expiring', later: 'active', revoked: 'revoked', 'user key': 'active' });
    clock += 4 * DAY;
    expect(await status()).toMatchObject({ soon: 'expired', later: 'active' });
    clock += 24 * DAY;
    expect(await status()).toMatchObject({ later: 'expiring' });
    expect(keyStatus({ revokedAt: null, expiresAt: new Date(1_000) }, 999, 0)).toBe('active');
    expect(keyStatus({ revokedAt: null, expiresAt: new Date(1_000) }, 1_000)).toBe('expired');
  });
});

describe('projectsFor(auth): the projects a request may see', () => {
  it("a user key sees all of its owner's projects; a project key only its own", async () => {
    const { ks, user, project } = await setup();
    const userAuth = await ks.authenticate({ headers: headers(user.key), path: '/projects' });
    const projectAuth = await ks.authenticate({ headers: headers(project.key), path: '/projects' });
    if (!userAuth.ok || !projectAuth.ok) throw new Error('refused');
    expect((await ks.projectsFor(userAuth.auth)).map((p) => p.id)).toEqual(['proj_alpha', 'proj_beta']);
    expect((await ks.projectsFor(projectAuth.auth)).map((p) => p.id)).toEqual(['proj_alpha']);
    await expect(ks.projectsFor(undefined as never)).rejects.toThrow(TypeError);
  });
});

describe('onEvent', () => {
  it('tells authenticated, refused (with code), store errors and throttle trips, never the key or its hash', async () => {
    const events: KeyscopeEvent[] = [];
    const { ks, store, user, project } = await setup({ onEvent: (e) => events.push(e), throttle: { maxFailures: 2, windowMs: 60_000 } });
    const unknown = generateKey();
    await ks.authenticate({ headers: headers(user.key, 'proj_alpha'), path: '/sites' });
    await ks.authenticate({ headers: headers(project.key, 'proj_beta'), path: '/sites' });
    await ks.authenticate({ headers: headers(unknown), path: '/validate', clientIp: '10.0.0.1' });
    await ks.authenticate({ headers: headers('garbage'), path: '/validate', clientIp: '10.0.0.1' });
    await ks.keys.revoke(user.record.id);
    await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    await ks.authenticate({ headers: {}, path: '/validate' });
    store.mode = 'throw';
    await ks.authenticate({ headers: headers(generateKey()), path: '/validate' });
    expect(events).toEqual([
      { type: 'authenticated', keyId: user.record.id, ownerId: 'demo-user', level: 'user', projectId: 'proj_alpha' },
      { type: 'refused', code: 'project_forbidden', status: 403, keyId: project.record.id },
      { type: 'refused', code: 'invalid_api_key', status: 401, keyStart: unknown.slice(0, 7) },
      { type: 'throttle_tripped', client: '10.0.0.1', retryAfterSeconds: 60 },
      { type: 'refused', code: 'invalid_api_key', status: 401 },
      { type: 'refused', code: 'invalid_api_key', status: 401, keyId: user.record.id },
      { type: 'refused', code: 'missing_api_key', status: 401 },
      { type: 'store_error', operation: 'findKeyByHash', error: expect.any(Error) },
      { type: 'refused', code: 'auth_unavailable', status: 503 },
    ]);
    const text = JSON.stringify(events);
    for (const secret of [user.key, project.key, unknown]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain((await import('../src/index.js')).hashKey(secret));
    }
  });

  it('is checked at setup', () => {
    expect(() => createKeyscope({ store: new MemoryStore(), onEvent: 'log' as never })).toThrow(/options\.onEvent/);
  });

  it('a hook that throws changes no decision', async () => {
    const { ks, user } = await setup({
      onEvent: () => {
        throw new Error('logger down');
      },
    });
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate' }))).toBe('ok');
    expect(code(await ks.authenticate({ headers: headers(generateKey()), path: '/validate' }))).toBe('invalid_api_key');
  });

  it('tells a failed usage flush, with the backlog, and what a full backlog dropped', async () => {
    const events: KeyscopeEvent[] = [];
    const store = new MemoryStore();
    const ks = createKeyscope({ store, onEvent: (e) => events.push(e), usage: { flushIntervalMs: 10, maxBacklog: 1 } });
    const a = await ks.keys.create({ ownerId: 'o', name: 'a', level: 'user' });
    const b = await ks.keys.create({ ownerId: 'o', name: 'b', level: 'user' });
    store.recordUsage = () => Promise.reject(new Error('disk full'));
    await ks.authenticate({ headers: headers(a.key), path: '/validate' });
    await ks.authenticate({ headers: headers(b.key), path: '/validate' });
    await vi.waitFor(() => expect(events.some((e) => e.type === 'usage_flush_failed')).toBe(true), { timeout: 2_000 });
    const failed = events.find((e) => e.type === 'usage_flush_failed')!;
    expect(failed).toMatchObject({ type: 'usage_flush_failed', error: expect.objectContaining({ message: 'disk full' }), backlog: 1, dropped: 1 });
    expect(JSON.stringify(failed)).not.toContain(a.key);
    expect(() => createKeyscope({ store, usage: { maxBacklog: 0 } })).toThrow(/options\.usage\.maxBacklog/);
    delete (store as Partial<MemoryStore>).recordUsage;
    await ks.close();
  });
});

describe('imported keys (keys.import)', () => {
  it('stores a keyscope-shaped key made elsewhere, which then authenticates', async () => {
    const { ks } = await setup();
    const key = generateKey();
    const { record } = await ks.keys.import({ key, ownerId: 'demo-user', name: 'from env', level: 'project', projectId: 'proj_alpha' });
    expect(record).toMatchObject({ start: key.slice(0, 7), level: 'project' });
    expect(JSON.stringify(record)).not.toContain(key);
    expect(code(await ks.authenticate({ headers: headers(key), path: '/sites' }))).toBe('ok');
    await expect(ks.keys.import({ key, ownerId: 'demo-user', name: 'twice', level: 'user' })).rejects.toMatchObject({ code: 'invalid_argument' });
  });

  it('refuses a key of another shape unless importedKeys is on; then it authenticates, at the cost of a store read per unknown key', async () => {
    const legacy = 'legacy-Secret.0123456789abcdefXYZ';
    const { ks } = await setup();
    await expect(ks.keys.import({ key: legacy, ownerId: 'demo-user', name: 'legacy', level: 'user' })).rejects.toThrow(/importedKeys/);

    const open = await setup({ importedKeys: true });
    const { record } = await open.ks.keys.import({ key: legacy, ownerId: 'demo-user', name: 'legacy', level: 'user' });
    expect(record.start).toBe('lega');
    expect(code(await open.ks.authenticate({ headers: headers(legacy), path: '/validate' }))).toBe('ok');
    const before = open.store.findCalls;
    expect(code(await open.ks.authenticate({ headers: headers('legacy-Secret.0123456789abcdefXY0'), path: '/validate' }))).toBe('invalid_api_key');
    expect(open.store.findCalls).toBe(before + 1);
    // Out of bounds or with spaces: refused offline, and not importable.
    for (const bad of ['short-key-123', 'has a space in it 0123456789', 'x'.repeat(257)]) {
      await expect(open.ks.keys.import({ key: bad, ownerId: 'demo-user', name: 'bad', level: 'user' })).rejects.toMatchObject({ code: 'invalid_argument' });
      const calls = open.store.findCalls;
      expect(code(await open.ks.authenticate({ headers: headers(bad), path: '/validate' }))).toBe('invalid_api_key');
      expect(open.store.findCalls).toBe(calls);
    }
    // Keys of keyscope's own shape still get the offline checksum check, and cannot be imported mistyped.
    const good = generateKey();
    const typo = good.slice(0, -1) + (good.endsWith('0') ? '1' : '0');
    const calls = open.store.findCalls;
    expect(code(await open.ks.authenticate({ headers: headers(typo), path: '/validate' }))).toBe('invalid_api_key');
    expect(open.store.findCalls).toBe(calls);
    await expect(open.ks.keys.import({ key: typo, ownerId: 'demo-user', name: 'typo', level: 'user' })).rejects.toThrow(/checksum/);
  });

  it('importedKeys bounds are checked at setup', () => {
    expect(() => createKeyscope({ store: new MemoryStore(), importedKeys: { minLength: 8 } })).toThrow(RangeError);
    expect(() => createKeyscope({ store: new MemoryStore(), importedKeys: { minLength: 40, maxLength: 30 } })).toThrow(/maxLength/);
  });
});

describe('Authorization: Bearer (opt-in)', () => {
  it('is ignored unless enabled', async () => {
    const { ks, user } = await setup();
    expect(code(await ks.authenticate({ headers: { authorization: `Bearer ${user.key}` }, path: '/validate' }))).toBe('missing_api_key');
  });

  it('carries the key when enabled; both headers with the same key are fine, with different keys refused', async () => {
    const { ks, user, project } = await setup({ bearer: true });
    const auth = (h: Record<string, string | string[]>) => ks.authenticate({ headers: h, path: '/validate' }).then(code);
    expect(await auth({ authorization: `Bearer ${user.key}` })).toBe('ok');
    expect(await auth({ authorization: `bearer   ${user.key}` })).toBe('ok');
    expect(await auth({ authorization: `Bearer ${user.key}`, 'x-api-key': user.key })).toBe('ok');
    expect(await auth({ authorization: `Bearer ${project.key}`, 'x-api-key': user.key })).toBe('invalid_api_key');
    expect(await auth({ authorization: 'Bearer ' })).toBe('invalid_api_key');
    expect(await auth({ authorization: `Bearer ${user.key} extra` })).toBe('invalid_api_key');
    expect(await auth({ authorization: [`Bearer ${user.key}`, `Bearer ${user.key}`] })).toBe('invalid_api_key');
    // Another scheme is not ours: as if absent.
    expect(await auth({ authorization: 'Basic dXNlcjpwYXNz' })).toBe('missing_api_key');
    expect(await auth({ authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': user.key })).toBe('ok');
    const refused = await ks.authenticate({ headers: {}, path: '/validate' });
    expect(!refused.ok && refused.error.headers['WWW-Authenticate']).toBe('ApiKey realm="api", header="X-API-Key", Bearer realm="api"');
  });
});

describe('refusals that explain themselves', () => {
  it('project_required names the header and the routes that need none', async () => {
    const { ks, user } = await setup({ projectHeader: 'X-Tenant', projectOptionalPaths: ['/whoami'] });
    const result = await ks.authenticate({ headers: headers(user.key), path: '/sites' });
    expect(!result.ok && result.error.detail).toBe("This route acts on a project: with a user-level key, send the project's id in the X-Tenant header (only /whoami works without it).");
  });
});

describe('OpenAPI components', () => {
  it('describe the key scheme, the project header and the refusals in a valid OpenAPI 3.1 document', async () => {
    const c = openApiComponents();
    expect(c.securitySchemes.apiKey).toEqual({ type: 'apiKey', in: 'header', name: 'X-API-Key', description: expect.any(String) });
    expect(c.parameters.ProjectId).toMatchObject({ name: 'X-Project-ID', in: 'header', required: false });
    const doc = {
      openapi: '3.1.0',
      info: { title: 'test', version: '1' },
      security: c.security,
      components: { securitySchemes: c.securitySchemes, parameters: c.parameters, schemas: c.schemas, responses: c.responses },
      paths: {
        '/sites': {
          get: {
            parameters: [{ $ref: '#/components/parameters/ProjectId' }],
            responses: {
              '200': { description: 'ok' },
              '401': { $ref: '#/components/responses/Unauthorized' },
              '403': { $ref: '#/components/responses/Forbidden' },
              '429': { $ref: '#/components/responses/TooManyRequests' },
              '503': { $ref: '#/components/responses/Unavailable' },
            },
          },
        },
      },
    };
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
    const broken = structuredClone(doc) as unknown as { components: { securitySchemes: { apiKey: { in: string } } } };
    broken.components.securitySchemes.apiKey.in = 'body';
    await expect(SwaggerParser.validate(broken as never)).rejects.toThrow();
    const custom = openApiComponents({ header: 'X-Key', projectHeader: 'X-Tenant', bearer: true });
    expect(custom.securitySchemes).toMatchObject({ apiKey: { name: 'X-Key' }, bearer: { type: 'http', scheme: 'bearer' } });
    expect(custom.parameters.ProjectId).toMatchObject({ name: 'X-Tenant' });
    expect(custom.security).toEqual([{ apiKey: [] }, { bearer: [] }]);
  });
});

describe('the throttle warning and events cost nothing when unused', () => {
  it('no console output and no event machinery without throttle and onEvent', async () => {
    const warn = vi.spyOn(console, 'warn');
    const { ks } = await setup();
    await ks.authenticate({ headers: headers('garbage'), path: '/validate' });
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
  });
});
