import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { keyscope, protectedRoutes, type KeyscopeKoaOptions } from '@keyscope/koa';
import Router from '@koa/router';
import Koa from 'koa';
import { afterEach, describe, expect, it, vi } from 'vitest';
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

  describe('app-level keyscope after prefixed routers that matched nothing', () => {
    // A router leaves ctx.router set after a dispatch that matched nothing; its prefix is not
    // the path's mount point, so /sites/validate must not be read as the project-optional /validate.
    function appAfter(...earlier: Router[]) {
      const app = new Koa();
      const ran: string[] = [];
      for (const router of earlier) app.use(router.routes());
      app.use(keyscope(ks));
      const main = new Router();
      main.get('/sites/:siteId', (ctx) => void (ran.push('site'), (ctx.body = ctx.state.auth)));
      main.get('/api/:x/validate', (ctx) => void (ran.push('api'), (ctx.body = ctx.state.auth)));
      app.use(main.routes());
      return { app, ran };
    }
    const prefixed = (prefix: string, method: 'post' | 'get' = 'post') => {
      const router = new Router({ prefix });
      router[method]('/other', (ctx) => void (ctx.body = 'other'));
      return router;
    };
    const nested = () => {
      const parent = new Router({ prefix: '/api' });
      const child = new Router({ prefix: '/v1' });
      child.post('/validate', (ctx) => void (ctx.body = 'post'));
      parent.use(child.routes());
      return parent;
    };

    it.each([
      { name: 'one prefixed router', routers: () => [prefixed('/sites')], path: '/sites/validate' },
      { name: 'a prefixed router with a use-layer only', routers: () => [new Router({ prefix: '/sites' }).use((_ctx, next) => next())], path: '/sites/validate' },
      { name: 'two prefixed routers', routers: () => [prefixed('/x'), prefixed('/sites', 'get')], path: '/sites/validate' },
      { name: 'a nested router', routers: () => [nested()], path: '/api/v1/validate' },
      { name: 'a nested router, then a prefixed one', routers: () => [nested(), prefixed('/api/v1')], path: '/api/v1/validate' },
    ])('$name: $path needs a project', async ({ routers, path }) => {
      const { app, ran } = appAfter(...routers());
      const res = await call(app, path, { 'X-API-Key': userKey });
      expect(res.status, res.text).toBe(403);
      expect(JSON.parse(res.text).code).toBe('project_required');
      expect(ran).toEqual([]);
    });

    it('after a router whose matched route passed the request on', async () => {
      const logging = new Router({ prefix: '/sites' });
      logging.get('/validate', (_ctx, next) => next());
      const { app, ran } = appAfter(logging);
      const res = await call(app, '/sites/validate', { 'X-API-Key': userKey });
      expect(res.status).toBe(403);
      expect(ran).toEqual([]);
    });
  });

  describe('protectedRoutes(ks, router)', () => {
    it('authenticates exactly the requests a route of the router will answer', async () => {
      const app = new Koa();
      const api = new Router({ prefix: '/api/v1' });
      api.get('/validate', (ctx) => void (ctx.body = ctx.state.auth));
      api.get('/sites', (ctx) => void (ctx.body = ctx.state.auth));
      app.use(protectedRoutes(ks, api));
      app.use((ctx) => void (ctx.body = 'fell through'));
      expect((await call(app, '/api/v1/validate', { 'X-API-Key': userKey })).status).toBe(200);
      expect((await call(app, '/API/V1/validate', {})).status).toBe(401);
      expect(JSON.parse((await call(app, '/api/v1/sites', { 'X-API-Key': userKey })).text).code).toBe('project_required');
      // Not a route of this router: no key needed, the request goes on.
      expect((await call(app, '/api/v1/other', {})).text).toBe('fell through');
      expect((await call(app, '/health', {})).text).toBe('fell through');
    });

    it('covers nested routers, with the path relative to the outer prefix', async () => {
      const app = new Koa();
      const parent = new Router({ prefix: '/api' });
      const child = new Router({ prefix: '/v1' });
      child.get('/validate', (ctx) => void (ctx.body = ctx.state.auth));
      parent.get('/validate', (ctx) => void (ctx.body = ctx.state.auth));
      parent.use(child.routes());
      app.use(protectedRoutes(ks, parent));
      expect((await call(app, '/API/V1/VALIDATE', {})).status).toBe(401);
      expect((await call(app, '/api/validate', { 'X-API-Key': userKey })).status).toBe(200);
      expect((await call(app, '/api/v1/validate', { 'X-API-Key': userKey })).status).toBe(403);
    });

    it('honours the router host', async () => {
      const app = new Koa();
      const api = new Router({ host: 'api.example' });
      api.get('/validate', (ctx) => void (ctx.body = 'api'));
      app.use(protectedRoutes(ks, api));
      app.use((ctx) => void (ctx.body = 'elsewhere'));
      expect((await call(app, '/validate', {})).text).toBe('elsewhere');
    });

    it('rejects a non-router at setup', () => {
      expect(() => protectedRoutes(ks, {} as never)).toThrow(TypeError);
      expect(() => protectedRoutes(ks, new Router(), { onError: 'next' } as never)).toThrow(/options\.onError/);
    });
  });

  it('warns once when router.use(keyscope(ks)) sits on a prefixed, case-insensitive router', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const app = new Koa();
      const api = new Router({ prefix: '/api/v1' });
      api.use(keyscope(ks));
      api.get('/validate', (ctx) => void (ctx.body = ctx.state.auth));
      const open = new Router();
      open.use(keyscope(ks));
      open.get('/v', (ctx) => void (ctx.body = ctx.state.auth));
      app.use(api.routes()).use(open.routes());
      await call(app, '/api/v1/validate', { 'X-API-Key': userKey });
      await call(app, '/api/v1/validate', { 'X-API-Key': userKey });
      await call(app, '/v', { 'X-API-Key': userKey });
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(/protectedRoutes/);
    } finally {
      warn.mockRestore();
    }
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
  it('a path changed back by an earlier middleware during the store read does not change the answer', async () => {
    // A hand-written mount that strips /validate for what follows and restores it as soon as
    // next() returns, without awaiting it: the path keyscope saw is the stripped one.
    const app = new Koa();
    app.use((ctx, next) => {
      const prev = ctx.path;
      if (!prev.startsWith('/validate')) return next();
      ctx.path = prev.slice('/validate'.length) || '/';
      try {
        return next();
      } finally {
        ctx.path = prev;
      }
    });
    app.use(keyscope(ks));
    app.use((ctx) => void (ctx.body = ctx.state.auth));
    ks.invalidate();
    // First a cache miss (decided after the store read), then the same request from the cache.
    const miss = await call(app, '/validate', { 'X-API-Key': userKey });
    const hit = await call(app, '/validate', { 'X-API-Key': userKey });
    expect([miss.status, hit.status]).toEqual([403, 403]);
  });

  it('reads the path only when the core needs it: a request naming its project leaves it unread', async () => {
    const middleware = keyscope(ks);
    let reads = 0;
    const context = (headers: Record<string, string>) =>
      ({ req: { headers: { 'x-api-key': userKey, ...headers } }, method: 'GET', get path() { reads++; return '/validate'; }, state: {} }) as unknown as Koa.Context;
    const named = context({ 'x-project-id': 'proj_a' });
    await middleware(named, async () => {});
    expect(named.state.auth).toMatchObject({ projectId: 'proj_a' });
    expect(reads).toBe(0);
    // Without a project, /validate is project-optional: decided on the path, read once.
    const unnamed = context({});
    await middleware(unnamed, async () => {});
    expect(unnamed.state.auth).toMatchObject({ projectId: null });
    expect(reads).toBe(1);
  });

  it('a cached key goes on to next in the same turn, with no promise in between; a decision that throws is a rejected promise', async () => {
    const middleware = keyscope(ks, { project: 'optional' });
    // What the middleware reads of a context: the Node request's headers, method, path and state.
    const context = () => ({ req: { headers: { 'x-api-key': userKey } }, method: 'GET', path: '/anything', state: {} }) as unknown as Koa.Context;
    await middleware(context(), async () => {});
    const ctx = context();
    let went = false;
    void middleware(ctx, async () => void (went = true));
    expect(went).toBe(true);
    expect(ctx.state.auth).toMatchObject({ ownerId: 'usr_1', projectId: null });

    const broken = keyscope({ ...ks, authenticate: () => { throw new Error('route table broken'); } }, { project: 'optional' });
    let outcome: unknown;
    expect(() => (outcome = broken(context(), async () => {}))).not.toThrow();
    await expect(outcome).rejects.toThrow('route table broken');
  });
});
