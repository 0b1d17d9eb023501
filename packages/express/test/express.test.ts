import type { AddressInfo } from 'node:net';
import { keyscope, type KeyscopeExpressOptions } from '@keyscope/express';
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

  it('does not mutate the options passed in', async () => {
    const options = Object.freeze({ project: 'optional', onError: 'respond' } as const);
    const before = structuredClone(options);
    const app = express();
    app.get('/validate', keyscope(ks, options), (req, res) => void res.json(req.auth));
    expect((await call(app, '/validate', { 'X-API-Key': userKey })).status).toBe(200);
    expect(options).toEqual(before);
  });
});
