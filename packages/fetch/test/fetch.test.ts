import { createKeyscope } from '@keyscope/core';
import { authenticateRequest } from '@keyscope/fetch';
import { keyscope, type KeyscopeHonoOptions } from '@keyscope/fetch/hono';
import { Hono } from 'hono';
import { describe, expect, it, vi } from 'vitest';
import { ks, store, userKey } from '../../../test/support/adapter-fixture.js';


describe('authenticateRequest', () => {
  it('returns the caller, or a ready Response', async () => {
    const ok = await authenticateRequest(ks, new Request('http://api.test/validate', { headers: { 'X-API-Key': userKey } }));
    // An unlimited key: no headers to set.
    expect(ok).toEqual({ ok: true, auth: expect.objectContaining({ ownerId: 'usr_1', projectId: null }), headers: {} });
    const refused = await authenticateRequest(ks, new Request('http://api.test/validate'));
    if (refused.ok) throw new Error('expected a refusal');
    expect(refused.response.status).toBe(401);
    expect(refused.response.headers.get('content-type')).toBe('application/problem+json');
    expect(refused.response.headers.get('www-authenticate')).toContain('ApiKey');
    expect(await refused.response.json()).toMatchObject({ code: 'missing_api_key', status: 401 });
  });

  it('decides on the normalised path the Request carries, or on options.path / options.project', async () => {
    const headers = { 'X-API-Key': userKey };
    // WHATWG URL parsing already turned this into /sites: the decision is made on /sites.
    const dotted = await authenticateRequest(ks, new Request('http://api.test/validate/%2e%2e/sites', { headers }));
    expect(dotted.ok).toBe(false);
    expect((await authenticateRequest(ks, new Request('http://api.test/anything', { headers }), { path: '/validate' })).ok).toBe(true);
    expect((await authenticateRequest(ks, new Request('http://api.test/validate', { headers }), { project: 'required' })).ok).toBe(false);
  });
});

describe('Hono middleware', () => {
  it('per-route options win over the path list', async () => {
    const app = new Hono();
    app.get('/custom', keyscope(ks, { project: 'optional' }), (c) => c.json(c.get('auth')));
    app.get('/validate', keyscope(ks, { project: 'required' }), (c) => c.json(c.get('auth')));
    const optional = await app.request('/custom', { headers: { 'X-API-Key': userKey } });
    expect(optional.status).toBe(200);
    expect(await optional.json()).toMatchObject({ ownerId: 'usr_1', projectId: null });
    const required = await app.request('/validate', { headers: { 'X-API-Key': userKey } });
    expect(required.status).toBe(403);
  });

  it('matches the path relative to basePath()', async () => {
    const app = new Hono().basePath('/api');
    app.use(keyscope(ks));
    app.get('/validate', (c) => c.json(c.get('auth')));
    app.get('/sites', (c) => c.json(c.get('auth')));
    expect((await app.request('/api/validate', { headers: { 'X-API-Key': userKey } })).status).toBe(200);
    expect((await app.request('/api/sites', { headers: { 'X-API-Key': userKey } })).status).toBe(403);
  });

  it("onError: 'throw' hands the KeyscopeError to app.onError with status and headers", async () => {
    const app = new Hono();
    app.use(keyscope(ks, { onError: 'throw' }));
    app.get('/sites', (c) => c.text('reached'));
    app.onError((err, c) => {
      const e = err as Error & { code?: string; status?: number; headers?: Record<string, string> };
      return c.json({ handled: e.code }, { status: e.status as 401, headers: e.headers });
    });
    const res = await app.request('/sites');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('ApiKey');
    expect(await res.json()).toEqual({ handled: 'missing_api_key' });
  });

  it('rejects bad options at setup with a TypeError naming the option', () => {
    expect(() => keyscope(ks, { onError: 'next' } as unknown as KeyscopeHonoOptions)).toThrow(/options\.onError/);
    expect(() => keyscope(ks, { project: 'sometimes' } as unknown as KeyscopeHonoOptions)).toThrow(TypeError);
    expect(() => keyscope(undefined as never)).toThrow(/createKeyscope/);
  });

  it('does not mutate the options passed in', async () => {
    const options = Object.freeze({ project: 'optional', onError: 'respond' } as const);
    const before = structuredClone(options);
    const app = new Hono();
    app.get('/x', keyscope(ks, options), (c) => c.json(c.get('auth')));
    expect((await app.request('/x', { headers: { 'X-API-Key': userKey } })).status).toBe(200);
    const request = Object.freeze({ project: 'optional', path: '/x' } as const);
    await authenticateRequest(ks, new Request('http://api.test/x', { headers: { 'X-API-Key': userKey } }), request);
    expect(options).toEqual(before);
    expect(request).toEqual({ project: 'optional', path: '/x' });
  });
});

describe('Hono middleware clientIp', () => {
  it("feeds the core's failed-attempt throttle", async () => {
    const throttled = createKeyscope({ store, usage: false, throttle: { maxFailures: 2, windowMs: 60_000 } });
    const app = new Hono();
    app.use(keyscope(throttled, { clientIp: (c) => c.req.header('x-test-client') }));
    app.get('/validate', (c) => c.json(c.get('auth')));
    const from = (client: string) => app.request('/validate', { headers: { 'X-API-Key': 'ks_wrong', 'x-test-client': client } });
    expect((await from('a')).status).toBe(401);
    expect((await from('a')).status).toBe(401);
    expect((await from('a')).status).toBe(429);
    expect((await from('b')).status).toBe(401);
    expect(() => keyscope(ks, { clientIp: 'a' } as unknown as KeyscopeHonoOptions)).toThrow(/options\.clientIp/);
  });

  it('warns at setup when the throttle is on but no clientIp is given, and only then', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const throttled = createKeyscope({ store, usage: false, throttle: { maxFailures: 2, windowMs: 60_000 } });
      keyscope(throttled);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(/clientIp/);
      keyscope(throttled, { clientIp: () => '10.0.0.1' });
      keyscope(ks);
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('a key with limits', () => {
  it('authenticateRequest hands its RateLimit fields to the caller, and its 429 is a ready Response', async () => {
    const { key } = await ks.keys.create({ ownerId: 'usr_1', name: 'limited', level: 'user', rateLimit: { limit: 1, windowMs: 60_000 } });
    const request = () => new Request('http://api.test/validate', { headers: { 'X-API-Key': key } });
    const ok = await authenticateRequest(ks, request());
    if (!ok.ok) throw new Error('expected the first request to pass');
    expect(ok.headers).toEqual({ 'RateLimit-Policy': '"rate";q=1;w=60', RateLimit: expect.stringMatching(/^"rate";r=0;t=(59|60)$/) });
    const over = await authenticateRequest(ks, request());
    if (over.ok) throw new Error('expected the second request to be refused');
    expect(over.response.status).toBe(429);
    expect(over.response.headers.get('retry-after')).toMatch(/^(59|60)$/);
    expect(over.response.headers.get('ratelimit')).toMatch(/^"rate";r=0;t=/);
    expect(await over.response.json()).toMatchObject({ code: 'rate_limited', status: 429 });
  });

  it('the Hono middleware sets them on whatever response the handler makes', async () => {
    const { key } = await ks.keys.create({ ownerId: 'usr_1', name: 'limited hono', level: 'user', rateLimit: { limit: 10, windowMs: 60_000 } });
    const app = new Hono();
    app.use(keyscope(ks, { project: 'optional' }));
    app.get('/json', (c) => c.json({ ok: true }));
    app.get('/raw', () => new Response('raw', { headers: { 'X-Own': 'kept' } }));
    for (const path of ['/json', '/raw']) {
      const res = await app.request(path, { headers: { 'X-API-Key': key } });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('ratelimit-policy'), path).toBe('"rate";q=10;w=60');
      expect(res.headers.get('ratelimit'), path).toMatch(/^"rate";r=\d;t=\d+$/);
    }
    expect((await app.request('/raw', { headers: { 'X-API-Key': key } })).headers.get('x-own')).toBe('kept');
    // An unlimited key's responses carry none.
    expect((await app.request('/json', { headers: { 'X-API-Key': userKey } })).headers.get('ratelimit')).toBeNull();
  });
});
