import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { keyscope, type KeyscopeKoaOptions } from '@keyscope/koa';
import Router from '@koa/router';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { ks, userKey } from '../../../test/support/adapter-fixture.js';


const servers: Array<{ close(): void }> = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));
async function call(app: Koa, path: string, headers: Record<string, string>) {
  const server = createServer(app.callback()).listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((resolve) => server.once('listening', resolve));
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('@keyscope/koa', () => {
  it('per-route options with @koa/router win over the path list', async () => {
    const app = new Koa();
    const router = new Router();
    router.get('/custom', keyscope(ks, { project: 'optional' }), (ctx) => void (ctx.body = ctx.state.auth));
    router.get('/validate', keyscope(ks, { project: 'required' }), (ctx) => void (ctx.body = ctx.state.auth));
    app.use(router.routes());
    const optional = await call(app, '/custom', { 'X-API-Key': userKey });
    expect(optional.status).toBe(200);
    expect(JSON.parse(optional.text)).toMatchObject({ ownerId: 'usr_1', projectId: null });
    const required = await call(app, '/validate', { 'X-API-Key': userKey });
    expect(required.status).toBe(403);
    expect(JSON.parse(required.text).code).toBe('project_required');
  });

  it('matches the path relative to a nested router prefix', async () => {
    const app = new Koa();
    const api = new Router({ prefix: '/api' });
    api.use(keyscope(ks));
    api.get('/validate', (ctx) => void (ctx.body = ctx.state.auth));
    api.get('/sites', (ctx) => void (ctx.body = ctx.state.auth));
    app.use(api.routes());
    expect((await call(app, '/api/validate', { 'X-API-Key': userKey })).status).toBe(200);
    expect((await call(app, '/api/sites', { 'X-API-Key': userKey })).status).toBe(403);
  });

  it("onError: 'throw' keeps status and headers through Koa's default error handling", async () => {
    const app = new Koa();
    app.silent = true;
    app.use(keyscope(ks, { onError: 'throw' }));
    app.use((ctx) => void (ctx.body = 'reached'));
    const res = await call(app, '/sites', {});
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('ApiKey');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.text).not.toContain('reached');
  });

  it('rejects bad options at setup with a TypeError naming the option', () => {
    expect(() => keyscope(ks, { onError: 'next' } as unknown as KeyscopeKoaOptions)).toThrow(/options\.onError/);
    expect(() => keyscope(ks, { project: 'sometimes' } as unknown as KeyscopeKoaOptions)).toThrow(TypeError);
    expect(() => keyscope(null as never)).toThrow(/createKeyscope/);
  });

  it('does not mutate the options passed in', async () => {
    const options = Object.freeze({ project: 'optional', onError: 'respond' } as const);
    const before = structuredClone(options);
    const app = new Koa();
    app.use(keyscope(ks, options));
    app.use((ctx) => void (ctx.body = ctx.state.auth));
    expect((await call(app, '/anything', { 'X-API-Key': userKey })).status).toBe(200);
    expect(options).toEqual(before);
  });
});
