/**
 * One table (cases.ts), run unchanged over real HTTP against the same API built with every
 * adapter (apps.ts), once answering refusals itself and once handing them to the framework.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, HANDLED_BY, PROJECT_SCOPED, type Mode, type RunningApp } from './apps.js';
import { CASES, type Case } from './cases.js';
import { createFixture, createSignedFixture, type Fixture } from './fixture.js';
import { send, type RawResponse } from './http.js';

// The whole table runs twice: with opaque keys, and with signed keys in their place.
const FIXTURES: readonly Fixture[] = [await createFixture(), await createSignedFixture()];
const MODES: readonly Mode[] = ['respond', 'delegate'];
const combos = FIXTURES.flatMap((fixture) =>
  ADAPTERS.flatMap((adapter) =>
    MODES.map((mode) => ({ fixture, adapter, mode, title: `${fixture.kind} keys, ${adapter.name} (onError: ${mode === 'respond' ? 'respond' : adapter.delegate})` })),
  ),
);
// Headers that differ per response for reasons that have nothing to do with authentication.
const VOLATILE = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

function request(fixture: Fixture, app: RunningApp, c: Case): Promise<RawResponse> {
  const headers = c.headers.map(([name, value]) => [name, typeof value === 'string' ? value : fixture.keys[value.key]] as const);
  return send(app.port, c.method ?? 'GET', c.path, headers);
}

describe.each(combos)('$title', ({ fixture, adapter, mode }) => {
  const cases = CASES.filter((c) => !c.opaqueOnly || fixture.kind === 'opaque');
  let app: RunningApp;
  beforeAll(async () => {
    app = await adapter.start(fixture.keyscope(), mode);
  });
  afterAll(() => app?.close());

  it.each(cases)('$name: $path', async (c) => {
    const res = await request(fixture, app, c);
    const body = res.json as { route?: string; auth?: Record<string, unknown> | null; code?: string; handledBy?: string } | undefined;
    const statuses = typeof c.expect.status === 'number' ? [c.expect.status] : c.expect.status;
    expect(statuses, `status ${res.status}, body ${res.text.slice(0, 200)}`).toContain(res.status);

    // The one bug this whole suite exists for: a project-scoped handler running without a project.
    if (body?.route !== undefined && PROJECT_SCOPED.has(body.route)) expect(body.auth?.projectId ?? null).not.toBeNull();

    if (res.status === 200) {
      expect(c.expect.route, `a handler ran (${body?.route}) where none may`).toBeDefined();
      expect(body?.route).toBe(c.expect.route);
      if (c.expect.auth === null) expect(body?.auth).toBeNull();
      else if (c.expect.auth) expect(body?.auth).toMatchObject(c.expect.auth);
    }

    if ([401, 403, 429, 503].includes(res.status)) {
      // The adapters answer with the core's Content-Type exactly; a framework's error handler may add a charset.
      if (mode === 'respond') expect(res.headers['content-type']).toBe('application/problem+json');
      else expect(res.headers['content-type']).toMatch(/^application\/problem\+json\b/);
      expect(res.headers['cache-control']).toBe('no-store');
      if (res.status === 401) expect(res.headers['www-authenticate']).toMatch(/^ApiKey realm="api", header="X-API-Key"$/);
      else expect(res.headers['www-authenticate']).toBeUndefined();
      if (res.status === 429 || res.status === 503) expect(res.headers['retry-after']).toMatch(/^\d+$/);
      if (c.method !== 'HEAD') {
        expect(body?.route, 'no handler may run on a refusal').toBeUndefined();
        expect(body).toMatchObject({ status: res.status, type: `urn:keyscope:error:${body?.code}`, title: expect.any(String), detail: expect.any(String) });
        if (c.expect.code) expect(body?.code).toBe(c.expect.code);
        // respond: the adapter's own answer, exactly; delegate: the app's error handler wrote it.
        if (mode === 'respond') expect(Object.keys(body ?? {}).sort()).toEqual(['code', 'detail', 'status', 'title', 'type']);
        else expect(body?.handledBy).toBe(HANDLED_BY);
      }
    }

    // A limited key's RateLimit fields, on its 200s and 429s alike; on nobody else's answer.
    if (c.expect.headers) for (const [name, value] of Object.entries(c.expect.headers)) expect(res.headers[name], name).toMatch(value);
    else {
      expect(res.headers['ratelimit']).toBeUndefined();
      expect(res.headers['ratelimit-policy']).toBeUndefined();
    }

    // No key material anywhere in the answer.
    const answer = res.text + JSON.stringify(res.headers);
    for (const secret of Object.values(fixture.keys)) expect(answer.includes(secret)).toBe(false);
  });

  const groups = [...new Set(cases.flatMap((c) => (c.identical ? [c.identical] : [])))];
  it.each(groups)('refusals tagged "%s" are indistinguishable', async (tag) => {
    const members = cases.filter((c) => c.identical === tag);
    expect(members.length).toBeGreaterThan(1);
    const answers = [];
    for (const c of members) {
      const res = await request(fixture, app, c);
      const headers = Object.fromEntries(Object.entries(res.headers).filter(([name]) => !VOLATILE.has(name)));
      answers.push({ status: res.status, headers, text: res.text });
    }
    for (const other of answers.slice(1)) expect(other).toEqual(answers[0]);
  });
});

// Signed keys are an addition, not a branch: row by row, the same answer as opaque keys.
describe.each(ADAPTERS.flatMap((adapter) => MODES.map((mode) => ({ adapter, mode }))))('signed keys answer exactly as opaque keys: $adapter.name ($mode)', ({ adapter, mode }) => {
  const [opaque, signed] = FIXTURES as [Fixture, Fixture];
  let apps: [RunningApp, RunningApp];
  beforeAll(async () => {
    apps = [await adapter.start(opaque.keyscope(), mode), await adapter.start(signed.keyscope(), mode)];
  });
  afterAll(async () => {
    await apps?.[0]?.close();
    await apps?.[1]?.close();
  });

  it.each(CASES.filter((c) => !c.opaqueOnly))('$name: $path', async (c) => {
    const answers = [];
    for (const [i, fixture] of [opaque, signed].entries()) {
      const res = await request(fixture, apps[i]!, c);
      const headers = Object.fromEntries(Object.entries(res.headers).filter(([name]) => !VOLATILE.has(name) && name !== 'content-length' && name !== 'etag'));
      // Key ids differ between the two stores (and so do the body's length and ETag on a 200); nothing else may.
      const text = res.text.replace(/"keyId":"key_[A-Za-z0-9]+"/g, '"keyId":"…"');
      answers.push({ status: res.status, headers, text });
    }
    expect(answers[1]).toEqual(answers[0]);
  });
});
