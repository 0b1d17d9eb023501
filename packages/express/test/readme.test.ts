import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { afterAll, expect, it } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const example = readFileSync(new URL('./readme-example.ts', import.meta.url), 'utf8');

it("the README's first ts block is readme-example.ts, verbatim", () => {
  expect(/```ts\n([\s\S]*?)```/.exec(readme)?.[1]).toBe(example);
});

process.env.PORT = '0';
const { ks, ...rest } = await import('./readme-example.js');
afterAll(async () => {
  await ks.close();
  await new Promise((done) => rest.server.close(done));
});

it('the README example answers as documented', async () => {
  const { key } = await ks.keys.create({ ownerId: 'user_1', name: 'readme', level: 'user' });
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const port = (rest.server.address() as AddressInfo).port;
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
    return { status: res.status, body: await res.json() };
  };
  expect(await get('/health')).toEqual({ status: 200, body: { ok: true } });
  const validate = await get('/api/v1/validate', { 'X-API-Key': key });
  expect(validate).toMatchObject({ status: 200, body: { valid: true, auth: { ownerId: 'user_1', level: 'user', projectId: null } } });
  expect(await get('/api/v1/sites', { 'X-API-Key': key })).toMatchObject({ status: 403, body: { code: 'project_required' } });
  expect(await get('/api/v1/sites', { 'X-API-Key': key, 'X-Project-ID': 'proj_a' })).toEqual({ status: 200, body: { projectId: 'proj_a' } });
  expect(await get('/api/v1/sites')).toMatchObject({ status: 401, body: { code: 'missing_api_key' } });
});
