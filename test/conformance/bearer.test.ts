/**
 * `bearer: true` through every adapter: the key in `Authorization: Bearer`, alone or beside the
 * same key in X-API-Key; two different keys, or two Authorization headers, refused. Node keeps
 * only the first of several Authorization headers, so the Node adapters must look at all of them.
 */
import { createKeyscope } from '@keyscope/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type RunningApp } from './apps.js';
import { createFixture } from './fixture.js';
import { send } from './http.js';

const fixture = await createFixture();
const { user, project } = fixture.keys;

const CASES: { name: string; headers: [string, string][]; status: number; code?: string }[] = [
  { name: 'the key in Authorization: Bearer', headers: [['Authorization', `Bearer ${user}`]], status: 200 },
  { name: 'the same key in both headers', headers: [['Authorization', `Bearer ${user}`], ['X-API-Key', user]], status: 200 },
  { name: 'different keys in the two headers', headers: [['Authorization', `Bearer ${project}`], ['X-API-Key', user]], status: 401, code: 'invalid_api_key' },
  { name: 'two Authorization headers with different keys', headers: [['Authorization', `Bearer ${user}`], ['Authorization', `Bearer ${project}`]], status: 401, code: 'invalid_api_key' },
  { name: 'two Authorization headers with the same key', headers: [['Authorization', `Bearer ${user}`], ['Authorization', `Bearer ${user}`]], status: 401, code: 'invalid_api_key' },
  { name: 'another scheme only', headers: [['Authorization', 'Basic dXNlcjpwYXNz']], status: 401, code: 'missing_api_key' },
];

describe.each(ADAPTERS)('$name with bearer: true', (adapter) => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await adapter.start(createKeyscope({ store: fixture.store, usage: false, bearer: true }), 'respond');
  });
  afterAll(() => app?.close());

  it.each(CASES)('$name → $status', async (c) => {
    const res = await send(app.port, 'GET', '/validate', c.headers);
    expect(res.status, res.text).toBe(c.status);
    if (c.code) expect((res.json as { code: string }).code).toBe(c.code);
    if (c.status === 401) expect(res.headers['www-authenticate']).toBe('ApiKey realm="api", header="X-API-Key", Bearer realm="api"');
    for (const secret of [user, project]) expect(res.text.includes(secret)).toBe(false);
  });
});
