// Each adapter's README opens with a copy-paste example. That example is
// packages/<name>/test/readme-example.ts, verbatim, and here it runs and answers as documented.
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { Keyscope } from '@keyscope/core';

type Get = (path: string, headers?: Record<string, string>) => Promise<Response>;
type Example = { ks: Keyscope; get: Get; healthPath: string; close(): Promise<void>; extra?: (key: string) => Promise<void> };

const overHttp = (server: Server): Get => (path, headers) =>
  fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, { headers });

// How to reach each example: the only thing that differs between the packages.
const examples: Record<string, () => Promise<Example>> = {
  express: async () => {
    const m = await import('../../packages/express/test/readme-example.js');
    return { ks: m.ks, get: overHttp(m.server), healthPath: '/health', close: () => new Promise((done) => m.server.close(() => done())) };
  },
  koa: async () => {
    const m = await import('../../packages/koa/test/readme-example.js');
    return { ks: m.ks, get: overHttp(m.server), healthPath: '/health', close: () => new Promise((done) => m.server.close(() => done())) };
  },
  fastify: async () => {
    const m = await import('../../packages/fastify/test/readme-example.js');
    return { ks: m.ks, get: overHttp(m.app.server), healthPath: '/api/v1/health', close: () => m.app.close() };
  },
  fetch: async () => {
    const m = await import('../../packages/fetch/test/readme-example.js');
    return {
      ks: m.ks,
      get: async (path, headers) => m.default.request(path, { headers }),
      healthPath: '/health',
      close: async () => {},
      // The plain Fetch handler shown beside the Hono app.
      extra: async (key) => {
        const ok = await m.GET(new Request('http://api.test/validate', { headers: { 'X-API-Key': key } }));
        expect(await ok.json()).toMatchObject({ valid: true, auth: { projectId: null } });
        expect((await m.GET(new Request('http://api.test/validate'))).status).toBe(401);
      },
    };
  },
};

process.env.PORT = '0';

describe.each(Object.keys(examples))('@keyscope/%s README', (name) => {
  const readme = readFileSync(new URL(`../../packages/${name}/README.md`, import.meta.url), 'utf8');
  const source = readFileSync(new URL(`../../packages/${name}/test/readme-example.ts`, import.meta.url), 'utf8');
  let example: Example;
  afterAll(() => example?.close());

  it("opens with readme-example.ts, verbatim, as its first ts block", () => {
    expect(/```ts\n([\s\S]*?)```/.exec(readme)?.[1]).toBe(source);
  });

  it('runs and answers as documented', async () => {
    example = await examples[name]!();
    const { key } = await example.ks.keys.create({ ownerId: 'user_1', name: 'readme', level: 'user' });
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const res = await example.get(path, headers);
      return { status: res.status, body: await res.json() };
    };
    expect(await get(example.healthPath)).toEqual({ status: 200, body: { ok: true } });
    expect(await get('/api/v1/validate', { 'X-API-Key': key })).toMatchObject({
      status: 200,
      body: { valid: true, auth: { ownerId: 'user_1', level: 'user', projectId: null } },
    });
    expect(await get('/api/v1/sites', { 'X-API-Key': key })).toMatchObject({ status: 403, body: { code: 'project_required' } });
    expect(await get('/api/v1/sites', { 'X-API-Key': key, 'X-Project-ID': 'proj_a' })).toEqual({ status: 200, body: { projectId: 'proj_a' } });
    expect(await get('/api/v1/sites')).toMatchObject({ status: 401, body: { code: 'missing_api_key' } });
    await example.extra?.(key);
  });
});
