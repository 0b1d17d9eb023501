/**
 * A URL that cannot be percent-decoded, or a body that cannot be parsed, is the client's
 * mistake: every example server answers it with the framework's 4xx (never a 500), as JSON, and
 * logs no stack trace for it.
 */
import { request } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { send } from '../conformance/http.js';
import { demoKeys, FRAMEWORKS, processScope, startServer, type ServerProcess } from './harness.js';

vi.setConfig({ testTimeout: 30_000 });

const PATHS = ['/sites/%FF/summary', '/sites/%/summary', '/sites/%E0%A4%A/summary', '/%', '/validate%FF', '/sites/s1%E0%A4%A'];
const { tmp, running } = processScope();

/** One request with a body, exactly as given. */
function sendBody(port: number, method: string, url: string, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: url, headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const BODIES = [
  { name: 'malformed JSON', type: 'application/json', body: '{"not json' },
  { name: 'an unknown media type', type: 'application/x-unknown', body: 'abc' },
];

describe.each(FRAMEWORKS)('%s example server', (framework) => {
  let server: ServerProcess;
  let keys: { user: string; project: string };
  beforeAll(async () => {
    server = await startServer(framework, path.join(tmp.dir, `${framework}.db`));
    running.push(server);
    keys = demoKeys(server.output());
  });
  afterAll(() => server?.stop());

  const probes = PATHS.flatMap((p) => [
    { path: p, key: 'no' as const },
    { path: p, key: 'a project' as const },
  ]);
  it.each(probes)('$path with $key key: a 4xx, no stack in the log', async ({ path: url, key }) => {
    const before = server.output().length;
    const headers: Array<[string, string]> = key === 'no' ? [] : [['X-API-Key', keys.project]];
    const res = await send(server.port, 'GET', url, headers);
    expect(res.status, res.text).toBeGreaterThanOrEqual(400);
    expect(res.status, res.text).toBeLessThan(500);
    expect(res.headers['content-type']).toMatch(/json/);
    expect(res.text).not.toMatch(/\bat \S+ \(|URIError|stack/);
    // The server logs asynchronously: give it a moment before reading what it printed.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const logged = server.output().slice(before);
    expect(logged, logged).not.toMatch(/\n\s+at |URIError|request failed/);
  });

  it.each(BODIES.flatMap((b) => ['GET', 'POST', 'DELETE'].map((method) => ({ ...b, method }))))('$method /validate with $name: no 500, no stack in the log', async ({ method, type, body }) => {
    const before = server.output().length;
    const res = await sendBody(server.port, method, '/validate', { 'X-API-Key': keys.project, 'Content-Type': type }, body);
    expect(res.status, res.text).toBeLessThan(500);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.output().slice(before)).not.toMatch(/\n\s+at |request failed/);
  });
});
