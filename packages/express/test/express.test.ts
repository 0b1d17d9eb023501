import type { AddressInfo } from 'node:net';
import { authOf, keyscope, type KeyscopeExpressOptions } from '@keyscope/express';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { ks, userKey } from '../../../test/support/adapter-fixture.js';


const servers: Array<{ close(): void }> = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));
async function call(app: express.Express, path: string, headers: Record<string, string>) {
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((resolve) => server.once('listening', resolve));
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('@keyscope/express', () => {
  it('per-route options win over the path list', async () => {
    const app = express();
    app.get('/custom', keyscope(ks, { project: 'optional' }), (req, res) => void res.json(req.auth));
    app.get('/validate', keyscope(ks, { project: 'required' }), (req, res) => void res.json(req.auth));
    const optional = await call(app, '/custom', { 'X-API-Key': userKey });
    expect(optional.status).toBe(200);
    expect(JSON.parse(optional.text)).toMatchObject({ ownerId: 'usr_1', projectId: null });
    const required = await call(app, '/validate', { 'X-API-Key': userKey });
    expect(required.status).toBe(403);
    expect(JSON.parse(required.text).code).toBe('project_required');
  });

  it("onError: 'next' keeps status and headers through Express's default error handler", async () => {
    const app = express();
    app.use(keyscope(ks, { onError: 'next' }));
    app.get('/sites', (_req, res) => void res.send('reached'));
    const res = await call(app, '/sites', {});
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('ApiKey');
    expect(res.text).not.toContain('reached');
  });

  it('rejects bad options at setup with a TypeError naming the option', () => {
    expect(() => keyscope(ks, { onError: 'throw' } as unknown as KeyscopeExpressOptions)).toThrow(/options\.onError/);
    expect(() => keyscope(ks, { project: 'sometimes' } as unknown as KeyscopeExpressOptions)).toThrow(TypeError);
    expect(() => keyscope({} as never)).toThrow(/createKeyscope/);
  });

  it("property: puts the caller under another name (req.auth can be another library's), and authOf(req) reads it whatever the name", async () => {
    const app = express();
    app.use((req, _res, next) => ((req as unknown as { auth: string }).auth = 'from another library', next()));
    app.get('/validate', keyscope(ks, { property: 'apiKey' }), (req, res) => {
      res.json({ auth: (req as unknown as { auth: unknown }).auth, apiKey: (req as unknown as { apiKey: unknown }).apiKey, authOf: authOf(req) });
    });
    app.get('/none', keyscope(ks, { property: false, project: 'optional' }), (req, res) => void res.json({ has: 'auth' in req && typeof (req as { auth?: unknown }).auth === 'object', authOf: authOf(req).keyId }));
    const res = await call(app, '/validate', { 'X-API-Key': userKey });
    const body = JSON.parse(res.text);
    expect(body.auth).toBe('from another library');
    expect(body.apiKey).toMatchObject({ ownerId: 'usr_1', projectId: null });
    expect(body.authOf).toEqual(body.apiKey);
    const none = JSON.parse((await call(app, '/none', { 'X-API-Key': userKey })).text);
    expect(none).toEqual({ has: false, authOf: body.apiKey.keyId });
  });

  it('authOf(req) throws on a request keyscope did not authenticate: a handler cannot run on a missing decision by mistake', async () => {
    const app = express();
    app.get('/open', (req, res) => {
      try {
        authOf(req);
        res.send('no throw');
      } catch (error) {
        res.status(500).send((error as Error).message);
      }
    });
    const res = await call(app, '/open', {});
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/has not authenticated this request/);
    expect(() => keyscope(ks, { property: '' })).toThrow(/options\.property/);
    expect(() => keyscope(ks, { property: '__proto__' })).toThrow(/options\.property/);
    expect(() => keyscope(ks, { property: 42 } as unknown as KeyscopeExpressOptions)).toThrow(/options\.property/);
  });

  it('adds nothing to req but its property (each property added to an Express req costs V8 a copy of its hidden class): the decision is kept in res.locals, also across a mounted sub-app', async () => {
    const app = express();
    const sub = express();
    let before: (string | symbol)[] = [];
    const ownKeys = (req: express.Request) => Reflect.ownKeys(req);
    app.use((req, _res, next) => ((before = ownKeys(req)), next()));
    app.use(keyscope(ks, { project: 'optional' }));
    const added = (req: express.Request) => ownKeys(req).filter((key) => !before.includes(key)).map(String);
    sub.get('/validate', keyscope(ks, { project: 'optional' }), (req, res) => {
      res.json({ added: added(req), authOf: authOf(req).keyId, locals: Object.getOwnPropertySymbols(res.locals).length });
    });
    // What Express itself adds on the way to a route (req.route), measured beside it.
    const control = express();
    control.get('/validate', (req, res) => void res.json({ added: added(req) }));
    const open = express();
    open.use((req, _res, next) => ((before = ownKeys(req)), next()));
    open.use('/sub', control);
    app.use('/sub', sub);
    const res = await call(app, '/sub/validate', { 'X-API-Key': userKey });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text);
    const express_ = JSON.parse((await call(open, '/sub/validate', {})).text).added as string[];
    expect(body.added.sort()).toEqual([...express_, 'auth'].sort());
    expect(body.authOf).toMatch(/^key_/);
    expect(body.locals).toBe(2);
  });

  it('called without Express (a request with no res.locals, as in a unit test): keeps the decision on req, and authOf reads it', async () => {
    const middleware = keyscope(ks, { project: 'optional' });
    const req = { headers: { 'x-api-key': userKey }, method: 'GET' } as unknown as express.Request;
    const nextCalls: unknown[][] = [];
    await new Promise<void>((resolve) => middleware(req, {} as express.Response, (...args: unknown[]) => (nextCalls.push(args), resolve())));
    expect(nextCalls).toEqual([[]]);
    expect(authOf(req)).toMatchObject({ ownerId: 'usr_1', projectId: null });
    expect((req as unknown as { auth: unknown }).auth).toBe(authOf(req));
  });

  it('does not mutate the options passed in', async () => {
    const options = Object.freeze({ project: 'optional', onError: 'respond' } as const);
    const before = structuredClone(options);
    const app = express();
    app.get('/validate', keyscope(ks, options), (req, res) => void res.json(req.auth));
    expect((await call(app, '/validate', { 'X-API-Key': userKey })).status).toBe(200);
    expect(options).toEqual(before);
  });
  it('a cached key goes on to the next handler in the same turn, with no promise in between; a decision that throws goes to next(err)', async () => {
    const middleware = keyscope(ks, { project: 'optional' });
    // What the middleware reads of a request: headers, method, and res.locals for the decision.
    const request = () => ({ headers: { 'x-api-key': userKey }, method: 'GET', res: { locals: {} } }) as unknown as express.Request;
    const response = {} as express.Response;
    // The first request reads the store: next comes later.
    await new Promise<void>((resolve) => middleware(request(), response, () => resolve()));
    const req = request();
    let went: unknown = 'not yet';
    middleware(req, response, (error?: unknown) => void (went = error));
    expect(went).toBeUndefined();
    expect(req.auth).toMatchObject({ ownerId: 'usr_1', projectId: null });

    const broken = keyscope({ ...ks, authenticate: () => { throw new Error('route table broken'); } }, { project: 'optional' });
    let failed: unknown;
    expect(() => broken(request(), response, (error?: unknown) => void (failed = error))).not.toThrow();
    expect(failed).toMatchObject({ message: 'route table broken' });
  });
});
