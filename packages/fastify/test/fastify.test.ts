import keyscopeDefault, { keyscope, type KeyscopeFastifyOptions } from '@keyscope/fastify';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { ks, userKey } from '../../../test/support/adapter-fixture.js';


describe('@keyscope/fastify', () => {
  it('is the default export too', () => {
    expect(keyscopeDefault).toBe(keyscope);
  });

  it('route config wins: { project } and false (public)', async () => {
    const app = Fastify();
    await app.register(keyscope, { keyscope: ks });
    app.get('/custom', { config: { keyscope: { project: 'optional' } } }, (request) => request.auth);
    app.get('/validate', { config: { keyscope: { project: 'required' } } }, (request) => request.auth);
    app.get('/health', { config: { keyscope: false } }, (request) => ({ auth: request.auth }));
    const optional = await app.inject({ url: '/custom', headers: { 'x-api-key': userKey } });
    expect(optional.statusCode).toBe(200);
    expect(optional.json()).toMatchObject({ ownerId: 'usr_1', projectId: null });
    const required = await app.inject({ url: '/validate', headers: { 'x-api-key': userKey } });
    expect(required.statusCode).toBe(403);
    expect(required.json().code).toBe('project_required');
    const health = await app.inject({ url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ auth: null });
  });

  it.each([true, 'optional', {}, { projects: 'optional' }, { project: 'maybe' }, { project: 'optional', extra: 1 }, null])(
    'a route whose config.keyscope is %j throws when it is added, not at request time',
    async (rule) => {
      const app = Fastify();
      await app.register(keyscope, { keyscope: ks });
      expect(() => app.get('/x', { config: { keyscope: rule as never } }, () => 'ok')).toThrow(/GET \/x: config\.keyscope must be false or \{ project/);
      // The good forms are accepted.
      app.get('/ok', { config: { keyscope: { project: 'optional' } } }, () => 'ok');
      app.get('/public', { config: { keyscope: false } }, () => 'ok');
      await app.ready();
    },
  );

  it('refuses in onRequest, before the body is parsed', async () => {
    const app = Fastify();
    await app.register(keyscope, { keyscope: ks });
    app.post('/sites', () => 'reached');
    const res = await app.inject({ method: 'POST', url: '/sites', headers: { 'content-type': 'application/json' }, payload: '{not json' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it("onError: 'throw' keeps status and headers through Fastify's default error handler", async () => {
    const app = Fastify();
    await app.register(keyscope, { keyscope: ks, onError: 'throw' });
    app.get('/sites', () => 'reached');
    const res = await app.inject({ url: '/sites' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toContain('ApiKey');
    expect(res.json()).toMatchObject({ statusCode: 401, code: 'missing_api_key' });
  });

  it('can be registered in several encapsulated contexts, each relative to its prefix', async () => {
    const app = Fastify();
    for (const prefix of ['/a', '/b']) {
      await app.register(
        async (scope) => {
          await scope.register(keyscope, { keyscope: ks });
          scope.get('/validate', (request) => request.auth);
        },
        { prefix },
      );
    }
    for (const url of ['/a/validate', '/b/validate']) {
      expect((await app.inject({ url, headers: { 'x-api-key': userKey } })).statusCode).toBe(200);
    }
  });

  it('rejects bad options at registration with a TypeError naming the option', async () => {
    await expect(Fastify().register(keyscope, {} as KeyscopeFastifyOptions).ready()).rejects.toThrow(/options\.keyscope/);
    await expect(Fastify().register(keyscope, { keyscope: ks, onError: 'next' } as unknown as KeyscopeFastifyOptions).ready()).rejects.toThrow(TypeError);
  });

  it('does not mutate the options passed in', async () => {
    const options = Object.freeze({ keyscope: ks, onError: 'respond' } as const);
    const app = Fastify();
    await app.register(keyscope, options);
    app.get('/validate', (request) => request.auth);
    expect((await app.inject({ url: '/validate', headers: { 'x-api-key': userKey } })).statusCode).toBe(200);
    expect(Object.keys(options)).toEqual(['keyscope', 'onError']);
    expect(options.keyscope).toBe(ks);
    expect(options.onError).toBe('respond');
  });
});
