import SwaggerParser from '@apidevtools/swagger-parser';
import { createKeyscope, MemoryStore } from '@keyscope/core';
import { createPortal } from '@keyscope/portal';
import { afterEach, describe, expect, it } from 'vitest';
import { DAY, ORIGIN, setup, urls } from './helpers.js';

let env: ReturnType<typeof setup>;
afterEach(async () => env?.ks.close());

async function createKey(fields: Record<string, string>, user = 'alice') {
  const response = await env.postForm('/portal/keys', { _token: await env.token(user), expiry: 'never', ...fields }, user);
  const page = await response.text();
  return { response, page, key: /id="new-key" readonly value="([^"]+)"/.exec(page)?.[1] };
}

describe('headers', () => {
  it('every response has the CSP without unsafe-inline, no-store, frame-ancestors none, no-referrer, nosniff', async () => {
    env = setup();
    const { key } = await createKey({ name: 'ci', level: 'user' });
    expect(key).toMatch(/^ks_/);
    const [id] = (await env.ks.keys.list('alice')).map((k) => k.id);
    const responses = [
      await env.get('/portal'),
      await env.get('/portal/help'),
      await env.get('/portal/assets/portal.css', null),
      await env.get('/portal/assets/portal.js', null),
      await env.get('/portal/api/openapi.json', null),
      await env.get('/portal', null),
      await env.get('/portal/api/keys', null),
      await env.get('/portal/api/keys'),
      await env.get(`/portal/keys/${id}/revoke`),
      await env.get('/portal/nothing'),
      (await createKey({ name: 'x', level: 'user' })).response,
    ];
    for (const response of responses) {
      const csp = response.headers.get('content-security-policy')!;
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('pages carry no inline script or style: one external script and one stylesheet', async () => {
    env = setup();
    await createKey({ name: 'ci', level: 'user' });
    const page = await (await env.get('/portal')).text();
    expect(page).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    const scripts = [...page.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
    expect(scripts).toEqual(['<script src="/portal/assets/portal.js" defer>']);
    expect(page).toContain('<link rel="stylesheet" href="/portal/assets/portal.css">');
    const js = await (await env.get('/portal/assets/portal.js', null)).text();
    expect(js.split('\n').length).toBeLessThan(300);
  });
});

describe('signing in', () => {
  it('sends pages to signInUrl, answers the JSON API 401, and 401 pages without signInUrl', async () => {
    env = setup();
    const page = await env.get('/portal', null);
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login');
    const api = await env.get('/portal/api/keys', null);
    expect(api.status).toBe(401);
    expect((await api.json()).code).toBe('not_signed_in');
    const bare = setup({ signInUrl: undefined });
    const answer = await bare.get('/portal', null);
    expect(answer.status).toBe(401);
    expect(answer.headers.get('content-type')).toMatch(/text\/html/);
    await bare.ks.close();
  });
});

describe('create', () => {
  it('validates on the server: messages next to the field, the entered values kept', async () => {
    env = setup();
    const token = await env.token();
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ name: '  ', level: 'user' }, 'key-name', /Enter a key name\./],
      [{ name: 'x'.repeat(65), level: 'user' }, 'key-name', /at most 64 characters \(it has 65\)/],
      [{ name: 'ok' }, 'level', /Choose a key level/],
      [{ name: 'ok', level: 'project', projectId: '' }, 'key-project', /Choose a project for a Project Level key\./],
      [{ name: 'ok', level: 'project', projectId: 'proj_b' }, 'key-project', /Choose one of your projects\./],
      [{ name: 'ok', level: 'project', projectId: 'proj_nope' }, 'key-project', /Choose one of your projects\./],
      [{ name: 'ok', level: 'user', expiry: '7' }, 'key-expiry', /Choose when the key expires/],
    ];
    for (const [fields, id, message] of cases) {
      const response = await env.postForm('/portal/keys', { _token: token, expiry: 'never', ...fields });
      expect(response.status).toBe(422);
      const page = await response.text();
      expect(page).toMatch(new RegExp(`<p class="error" id="${id}-error">[^<]*${message.source}`));
      expect(page).toContain(`aria-describedby="${id}-error"`);
      expect(page).not.toContain('id="new-key"');
    }
    const again = await (await env.postForm('/portal/keys', { _token: token, name: 'kept "name"', level: 'project', projectId: 'proj_b', expiry: '90' })).text();
    expect(again).toContain('value="kept &#34;name&#34;"');
    expect(again).toMatch(/value="project" checked/);
    expect(again).toMatch(/<option value="90" selected>/);
    expect(await env.ks.keys.list('alice')).toEqual([]);
  });

  it('a user-level form ignores the project dropdown; a project key is issued for the chosen project with the chosen expiry', async () => {
    env = setup();
    await createKey({ name: 'user', level: 'user', projectId: 'proj_a' });
    await createKey({ name: 'proj', level: 'project', projectId: 'proj_a2', expiry: '30' });
    const [user, proj] = await env.ks.keys.list('alice');
    expect(user).toMatchObject({ level: 'user', projectId: null, expiresAt: null });
    expect(proj).toMatchObject({ level: 'project', projectId: 'proj_a2' });
    expect(proj!.expiresAt!.getTime()).toBe(env.clock.now + 30 * DAY);
  });

  it('shows the key once: in the 200 answer to the POST only, never in a Location or any URL, never on reload', async () => {
    env = setup();
    const { response, page, key } = await createKey({ name: 'once', level: 'user' });
    expect(response.status).toBe(200);
    expect(response.headers.get('location')).toBeNull();
    expect(page).toMatch(/will not be shown again/);
    expect(page).toContain('data-copy="new-key"');
    for (const url of urls(page)) expect(url).not.toContain(key!);
    expect(page.match(new RegExp(key!, 'g'))).toHaveLength(1);
    for (const path of ['/portal', '/portal/help', '/portal/api/keys']) expect(await (await env.get(path)).text()).not.toContain(key!);
    const [record] = await env.ks.keys.list('alice');
    for (const path of [`/portal/keys/${record!.id}/rotate`, `/portal/keys/${record!.id}/revoke`, `/portal/api/keys/${record!.id}`]) {
      expect(await (await env.get(path)).text()).not.toContain(key!);
    }
  });
});

describe('a form sent twice (a reload of the page that answered it)', () => {
  it('makes no second key, for create and for rotate, and shows no key', async () => {
    env = setup();
    const page = await (await env.get('/portal')).text();
    const once = /name="_once" value="([^"]+)"/.exec(page)?.[1];
    expect(once).toMatch(/^[\w-]{16}$/);
    const fields = { _token: await env.token(), _once: once!, name: 'twice', level: 'user', expiry: 'never' };
    const first = await env.postForm('/portal/keys', fields);
    expect(first.status).toBe(200);
    const second = await env.postForm('/portal/keys', fields);
    expect(second.status).toBe(409);
    expect(await second.text()).not.toContain('id="new-key"');
    expect(await env.ks.keys.list('alice')).toHaveLength(1);

    const [key] = await env.ks.keys.list('alice');
    const rotatePage = await (await env.get(`/portal/keys/${key!.id}/rotate`)).text();
    const rotateOnce = /name="_once" value="([^"]+)"/.exec(rotatePage)?.[1];
    const rotation = { _token: await env.token(), _once: rotateOnce!, grace: '3600000' };
    expect((await env.postForm(`/portal/keys/${key!.id}/rotate`, rotation)).status).toBe(200);
    expect((await env.postForm(`/portal/keys/${key!.id}/rotate`, rotation)).status).toBe(409);
    expect(await env.ks.keys.list('alice')).toHaveLength(2);
    // Every page renders a new value.
    expect(/name="_once" value="([^"]+)"/.exec(await (await env.get('/portal')).text())?.[1]).not.toBe(once);
  });
});

describe('CSRF', () => {
  const fields = async () => ({ _token: await env.token(), name: 'x', level: 'user', expiry: 'never' });

  it('refuses a cross-site Sec-Fetch-Site, a foreign Origin, a missing, bad or other owner’s form token', async () => {
    env = setup();
    const refusals = [
      await env.postForm('/portal/keys', await fields(), 'alice', { 'sec-fetch-site': 'cross-site' }),
      await env.postForm('/portal/keys', await fields(), 'alice', { 'sec-fetch-site': 'same-site' }),
      await env.postForm('/portal/keys', await fields(), 'alice', { origin: 'https://evil.test' }),
      await env.postForm('/portal/keys', { ...(await fields()), _token: '' }),
      await env.postForm('/portal/keys', { name: 'x', level: 'user' }),
      await env.postForm('/portal/keys', { ...(await fields()), _token: 'A'.repeat(43) }),
      await env.postForm('/portal/keys', { ...(await fields()), _token: await env.token('bob') }),
    ];
    for (const response of refusals) {
      expect(response.status).toBe(403);
      expect(await response.text()).not.toContain('id="new-key"');
    }
    expect(await env.ks.keys.list('alice')).toEqual([]);
  });

  it("accepts a browser's own form post with Origin: null (no-referrer) when Sec-Fetch-Site says same-origin", async () => {
    env = setup();
    const response = await env.postForm('/portal/keys', await fields(), 'alice', { origin: 'null', 'sec-fetch-site': 'same-origin' });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('id="new-key"');
    const crossSite = await env.postForm('/portal/keys', await fields(), 'alice', { origin: 'null', 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    // Origin: null without Fetch Metadata (a sandboxed frame, an old browser) is refused.
    const bare = await env.portal(
      new Request('https://api.example.test/portal/keys', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'null', 'x-user': 'alice' },
        body: new URLSearchParams(await fields()),
      }),
    );
    expect(bare.status).toBe(403);
    expect(await env.ks.keys.list('alice')).toHaveLength(1);
  });

  it('a token from another portal secret does not work', async () => {
    env = setup();
    const other = setup({ secret: 't'.repeat(32) });
    const response = await env.postForm('/portal/keys', { _token: await other.token(), name: 'x', level: 'user' });
    expect(response.status).toBe(403);
    await other.ks.close();
  });

  it('accepts requests without Fetch Metadata or Origin (old browsers) when the token is right', async () => {
    env = setup();
    const request = new Request(`${ORIGIN}/portal/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-user': 'alice' },
      body: new URLSearchParams(await fields()),
    });
    expect((await env.portal(request)).status).toBe(200);
  });

  it('the JSON API needs application/json and same-origin requests', async () => {
    env = setup();
    const body = { name: 'x', level: 'user' };
    expect((await env.postJson('/portal/api/keys', body, 'alice', { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await env.postJson('/portal/api/keys', body, 'alice', { origin: 'https://evil.test' })).status).toBe(403);
    expect((await env.postJson('/portal/api/keys', body, 'alice', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await env.postJson('/portal/api/keys', body, 'alice', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect(await env.ks.keys.list('alice')).toEqual([]);
    expect((await env.postJson('/portal/api/keys', body)).status).toBe(201);
  });

  it('trusts the configured public origin behind a proxy', async () => {
    env = setup({ origin: 'https://keys.example.com' });
    const fieldsNow = await fields();
    expect((await env.postForm('/portal/keys', fieldsNow, 'alice', { origin: ORIGIN })).status).toBe(403);
    expect((await env.postForm('/portal/keys', fieldsNow, 'alice', { origin: 'https://keys.example.com' })).status).toBe(200);
  });
});

describe('another owner', () => {
  it('is 404 on every key route, pages and API, and the key stays untouched', async () => {
    env = setup();
    const { record } = await env.ks.keys.create({ ownerId: 'bob', name: 'bobs', level: 'user' });
    const id = record.id;
    const token = await env.token('alice');
    const answers = [
      await env.get(`/portal/keys/${id}/revoke`),
      await env.get(`/portal/keys/${id}/rotate`),
      await env.postForm(`/portal/keys/${id}/revoke`, { _token: token }),
      await env.postForm(`/portal/keys/${id}/rotate`, { _token: token, grace: '0' }),
      await env.get(`/portal/api/keys/${id}`),
      await env.get(`/portal/api/keys/${id}/usage`),
      await env.postJson(`/portal/api/keys/${id}/revoke`, {}),
      await env.postJson(`/portal/api/keys/${id}/rotate`, { gracePeriodMs: 0 }),
    ];
    for (const answer of answers) expect(answer.status).toBe(404);
    expect(await env.ks.keys.get(id)).toMatchObject({ status: 'active', revokedAt: null });
    expect(await env.ks.keys.list('bob')).toHaveLength(1);
    expect(await (await env.get('/portal')).text()).not.toContain(id);
    expect((await (await env.get('/portal/api/keys')).json()).keys).toEqual([]);
  });

  it('cannot name another owner’s project: a field error, and only one’s own projects are listed', async () => {
    env = setup();
    const api = await env.postJson('/portal/api/keys', { name: 'x', level: 'project', projectId: 'proj_b' });
    expect(api.status).toBe(422);
    expect((await api.json()).errors).toEqual({ projectId: 'Choose one of your projects.' });
    expect(await (await env.get('/portal/api/projects')).json()).toEqual({ projects: [{ id: 'proj_a', name: 'Alpha' }, { id: 'proj_a2', name: 'Alpha Two' }] });
    const page = await (await env.get('/portal')).text();
    expect(page).not.toContain('proj_b');
    expect(await (await env.get('/portal/help')).text()).not.toContain('proj_b');
  });
});

describe('escaping', () => {
  it('escapes a key name with <script> and quotes everywhere it appears', async () => {
    env = setup();
    const name = `<script>alert("x")</script>'&`;
    const { page } = await createKey({ name, level: 'user' });
    const [record] = await env.ks.keys.list('alice');
    const pages = [page, await (await env.get('/portal')).text(), await (await env.get(`/portal/keys/${record!.id}/revoke`)).text(), await (await env.get(`/portal/keys/${record!.id}/rotate`)).text()];
    for (const html of pages) {
      expect(html).not.toContain('<script>alert');
      expect(html).not.toContain(`"x"`);
      expect(html).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#39;&#38;');
    }
    const invalid = await (await env.postForm('/portal/keys', { _token: await env.token(), name: `"><img src=x onerror=alert(1)>`, level: 'project', projectId: 'nope' })).text();
    expect(invalid).not.toContain('<img src=x');
    expect(invalid).toContain('value="&#34;&#62;&#60;img src=x onerror=alert(1)&#62;"');
  });
});

describe('the key table', () => {
  it('shows each status, with its badge, and marks rotation due on active keys older than rotationDueDays', async () => {
    env = setup();
    const { ks, clock } = env;
    const old = await ks.keys.create({ ownerId: 'alice', name: 'old', level: 'user' });
    const oldRevoked = await ks.keys.create({ ownerId: 'alice', name: 'old-revoked', level: 'user' });
    await ks.keys.revoke(oldRevoked.record.id);
    clock.now += 80 * DAY;
    const expiring = await ks.keys.create({ ownerId: 'alice', name: 'expiring', level: 'user', expiresAt: new Date(clock.now + 15 * DAY) });
    const expired = await ks.keys.create({ ownerId: 'alice', name: 'expired', level: 'user', expiresAt: new Date(clock.now + 5 * DAY) });
    const fresh = await ks.keys.create({ ownerId: 'alice', name: 'fresh', level: 'project', projectId: 'proj_a' });
    clock.now += 10 * DAY; // old is 90 days old now
    const page = await (await env.get('/portal')).text();
    const row = (id: string) => new RegExp(`<tr data-key-id="${id}"[\\s\\S]*?</tr>`).exec(page)![0];
    const expectations: [string, string, string, boolean][] = [
      [old.record.id, 'active', 'Active', true],
      [oldRevoked.record.id, 'revoked', 'Revoked', false],
      [expiring.record.id, 'expiring', 'Expiring soon', false],
      [expired.record.id, 'expired', 'Expired', false],
      [fresh.record.id, 'active', 'Active', false],
    ];
    for (const [id, status, label, due] of expectations) {
      const tr = row(id);
      expect(tr).toContain(`data-status="${status}"`);
      expect(tr).toContain(`<span class="badge badge-${status}" data-status-badge>${label}</span>`);
      expect(tr.includes('data-rotation-due')).toBe(due);
      expect(tr.includes('/revoke"')).toBe(status === 'active' || status === 'expiring');
    }
    expect(row(fresh.record.id)).toContain('Alpha <code>proj_a</code>');
    expect(row(fresh.record.id)).toContain(`<code>${fresh.record.start}…</code>`);
    // Newest first.
    expect(page.indexOf(fresh.record.id)).toBeLessThan(page.indexOf(old.record.id));
    const api = (await (await env.get('/portal/api/keys')).json()).keys;
    expect(api.map((k: { status: string; rotationDue: boolean }) => [k.status, k.rotationDue])).toEqual([
      ['active', true],
      ['revoked', false],
      ['expiring', false],
      ['expired', false],
      ['active', false],
    ]);
    const never = setup({ rotationDueDays: false });
    await never.ks.keys.create({ ownerId: 'alice', name: 'old', level: 'user' });
    never.clock.now += 1000 * DAY;
    expect(await (await never.get('/portal')).text()).not.toContain('data-rotation-due');
    await never.ks.close();
  });

  it('draws 30 days of requests per day as an inline SVG sparkline', async () => {
    env = setup();
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'used', level: 'user' });
    const day = (back: number) => new Date(env.clock.now - back * DAY).toISOString().slice(0, 10);
    await env.store.recordUsage([
      { keyId: record.id, day: day(0), count: 7, lastUsedAt: new Date(env.clock.now) },
      { keyId: record.id, day: day(2), count: 3, lastUsedAt: new Date(env.clock.now - 2 * DAY) },
      { keyId: record.id, day: day(29), count: 1, lastUsedAt: new Date(env.clock.now - 29 * DAY) },
      { keyId: record.id, day: day(30), count: 50, lastUsedAt: new Date(env.clock.now - 30 * DAY) },
    ]);
    const expected = Array(30).fill(0);
    expected[29] = 7;
    expected[27] = 3;
    expected[0] = 1;
    const page = await (await env.get('/portal')).text();
    const svg = /<svg class="spark"[\s\S]*?<\/svg>/.exec(page)![0];
    expect(svg).toContain(`data-counts="${expected.join(',')}"`);
    expect(svg).toContain('aria-label="11 requests in the last 30 days, at most 7 a day"');
    expect(svg).toMatch(/<polyline [^>]*points="(?:[\d.]+,[\d.]+ ){29}[\d.]+,[\d.]+"/);
    // The highest day touches the top, an empty day the bottom.
    expect(svg).toContain('118.0,2.0"');
    expect(svg).toContain('2.0,22.6 6.0,26.0');
    const usage = await (await env.get(`/portal/api/keys/${record.id}/usage`)).json();
    expect(usage.last30Days).toEqual(expected);
    expect(usage.days).toHaveLength(4);
  });
});

describe('revoke', () => {
  it('a confirmation page without JS, then a POST that revokes and redirects with no key material', async () => {
    env = setup();
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'bye', level: 'user' });
    const confirm = await (await env.get(`/portal/keys/${record.id}/revoke`)).text();
    expect(confirm).toContain(`<form method="post" action="/portal/keys/${record.id}/revoke">`);
    expect(confirm).toMatch(/name="_token" value="[^"]+"/);
    const table = await (await env.get('/portal')).text();
    expect(table).toMatch(/data-confirm="Revoke the key “bye”/);
    const done = await env.postForm(`/portal/keys/${record.id}/revoke`, { _token: await env.token() });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/portal?notice=revoked');
    expect(await env.ks.keys.get(record.id)).toMatchObject({ status: 'revoked' });
    expect(await (await env.get('/portal?notice=revoked')).text()).toContain('The key was revoked.');
  });

  it('the API revokes one of your keys', async () => {
    env = setup();
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'bye', level: 'user' });
    const answer = await env.postJson(`/portal/api/keys/${record.id}/revoke`, undefined);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ id: record.id, status: 'revoked' });
  });
});

describe('rotate', () => {
  it('offers the grace periods, shows the new key once and states the old key’s grace period', async () => {
    env = setup();
    const { key: oldKey, record } = await env.ks.keys.create({ ownerId: 'alice', name: 'ci', level: 'project', projectId: 'proj_a' });
    const form = await (await env.get(`/portal/keys/${record.id}/rotate`)).text();
    expect(form).toMatch(/name="grace" value="0" checked/);
    expect(form).toContain('value="3600000"');
    expect(form).toContain('value="86400000"');
    const response = await env.postForm(`/portal/keys/${record.id}/rotate`, { _token: await env.token(), grace: '3600000' });
    expect(response.status).toBe(200);
    expect(response.headers.get('location')).toBeNull();
    const page = await response.text();
    const newKey = /id="new-key" readonly value="([^"]+)"/.exec(page)![1]!;
    expect(newKey).not.toBe(oldKey);
    expect(page).toMatch(/will not be shown again/);
    const until = new Date(env.clock.now + 3_600_000).toISOString().replace('T', ' ').slice(0, 16);
    expect(page).toContain(`keeps working until ${until} UTC (1 hour)`);
    expect((await env.ks.keys.get(record.id))!.expiresAt!.getTime()).toBe(env.clock.now + 3_600_000);
    for (const url of urls(page)) expect(url).not.toContain(newKey);
  });

  it('no grace revokes the old key at once; an unoffered grace is a field error; a revoked key cannot be rotated', async () => {
    env = setup();
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'ci', level: 'user' });
    const bad = await env.postForm(`/portal/keys/${record.id}/rotate`, { _token: await env.token(), grace: '999' });
    expect(bad.status).toBe(422);
    expect(await bad.text()).toContain('<p class="error" id="grace-error">Choose how long the old key keeps working.</p>');
    const now = await (await env.postForm(`/portal/keys/${record.id}/rotate`, { _token: await env.token(), grace: '0' })).text();
    expect(now).toContain('is revoked and stops working now');
    expect(await env.ks.keys.get(record.id)).toMatchObject({ status: 'revoked' });
    const again = await env.postForm(`/portal/keys/${record.id}/rotate`, { _token: await env.token(), grace: '0' });
    expect(again.status).toBe(422);
    expect(await again.text()).not.toContain('id="new-key"');
    const api = await env.postJson(`/portal/api/keys/${record.id}/rotate`, { gracePeriodMs: 0 });
    expect(api.status).toBe(409);
  });

  it('the API rotates with an offered grace period and returns the old key’s new expiry', async () => {
    env = setup();
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'ci', level: 'user' });
    expect((await env.postJson(`/portal/api/keys/${record.id}/rotate`, { gracePeriodMs: 5 })).status).toBe(422);
    const answer = await env.postJson(`/portal/api/keys/${record.id}/rotate`, { gracePeriodMs: 86_400_000 });
    expect(answer.status).toBe(201 - 1);
    const body = await answer.json();
    expect(body.key).toMatch(/^ks_/);
    expect(body.record).toMatchObject({ name: 'ci', level: 'user', status: 'active' });
    expect(body.previous).toMatchObject({ id: record.id, expiresAt: new Date(env.clock.now + DAY).toISOString() });
  });
});

describe('JSON API', () => {
  it('creates, lists and reads keys; validates with field errors', async () => {
    env = setup();
    const created = await env.postJson('/portal/api/keys', { name: 'api', level: 'project', projectId: 'proj_a', expiresInDays: 90 });
    expect(created.status).toBe(201);
    const { key, record } = await created.json();
    expect(key).toMatch(/^ks_/);
    expect(record).toMatchObject({ name: 'api', level: 'project', projectId: 'proj_a', status: 'active', rotationDue: false, expiresAt: new Date(env.clock.now + 90 * DAY).toISOString() });
    expect((await (await env.get('/portal/api/keys')).json()).keys).toEqual([record]);
    expect(await (await env.get(`/portal/api/keys/${record.id}`)).json()).toEqual(record);
    const invalid = await env.postJson('/portal/api/keys', { name: '', level: 'user', projectId: 'proj_a', expiresInDays: 7 });
    expect(invalid.status).toBe(422);
    expect(invalid.headers.get('content-type')).toBe('application/problem+json');
    expect(Object.keys((await invalid.json()).errors).sort()).toEqual(['expiresInDays', 'name', 'projectId']);
    expect((await env.postJson('/portal/api/keys', '[]')).status).toBe(400);
    const garbled = await env.portal(new Request(`${ORIGIN}/portal/api/keys`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-user': 'alice' }, body: '{' }));
    expect(garbled.status).toBe(400);
    const big = await env.postJson('/portal/api/keys', { name: 'x'.repeat(20_000), level: 'user' });
    expect(big.status).toBe(413);
    expect((await env.get('/portal/api/keys/nope')).status).toBe(404);
    expect((await env.get('/portal/api/keys/%E0%A4%A')).status).toBe(404);
    const del = await env.portal(new Request(`${ORIGIN}/portal/api/keys`, { method: 'DELETE', headers: { 'x-user': 'alice' } }));
    expect(del.status).toBe(405);
  });

  it('serves a valid OpenAPI 3.1 document describing every route', async () => {
    env = setup();
    const doc = await (await env.get('/portal/api/openapi.json', null)).json();
    expect(doc.openapi).toBe('3.1.0');
    await SwaggerParser.validate(structuredClone(doc));
    expect(Object.keys(doc.paths).sort()).toEqual(
      ['/portal/api/keys', '/portal/api/keys/{id}', '/portal/api/keys/{id}/revoke', '/portal/api/keys/{id}/rotate', '/portal/api/keys/{id}/usage', '/portal/api/projects'].sort(),
    );
    // With editLimits, the limits route too.
    const withLimits = setup({ editLimits: true });
    const full = await (await withLimits.get('/portal/api/openapi.json', null)).json();
    await SwaggerParser.validate(structuredClone(full));
    expect(Object.keys(full.paths)).toContain('/portal/api/keys/{id}/limits');
    await withLimits.ks.close();
  });
});

describe('pages', () => {
  it('the create form has the reference fields, labels and the owner’s projects', async () => {
    env = setup();
    const page = await (await env.get('/portal')).text();
    expect(page).toContain('<label for="key-name">Key Name</label>');
    expect(page).toContain('placeholder="example-api-key"');
    expect(page).toMatch(/required maxlength="64"/);
    expect(page).toContain('<legend>Key Level</legend>');
    expect(page).toContain('<strong>User Level</strong><small>Access all your projects</small>');
    expect(page).toContain('<strong>Project Level</strong><small>Access one specific project</small>');
    expect(page).toContain('<label for="key-project">Project</label>');
    expect(page).toContain('<option value="proj_a">Alpha (proj_a)</option>');
    expect(page).toContain('<option value="never">Never</option>');
    for (const d of [30, 90, 365]) expect(page).toContain(`<option value="${d}">In ${d} days</option>`);
    expect(page).toContain('No keys yet.');
  });

  it('the help page explains X-API-Key, the X-Project-ID rule, 401/403 and the security advice', async () => {
    env = setup({ apiUrl: 'https://api.acme.test/' });
    const page = await (await env.get('/portal/help')).text();
    expect(page).toContain('curl -H "X-API-Key: $API_KEY" https://api.acme.test/validate');
    expect(page).toMatch(/X-Project-ID<\/code> header, except for the <code>\/validate<\/code> and <code>\/projects<\/code>/);
    expect(page).toContain('401 Unauthorized');
    expect(page).toContain('403 Forbidden');
    for (const advice of ['Keep keys private', 'Use environment variables', 'Rotate regularly', 'Monitor usage']) expect(page).toContain(advice);
  });

  it('leaves paths outside basePath alone and serves a root basePath', async () => {
    env = setup({ basePath: '/account/keys/' });
    expect((await env.get('/portal')).status).toBe(404);
    expect((await env.get('/account/keys')).status).toBe(200);
    expect((await env.get('/account/keysx')).status).toBe(404);
    const root = setup({ basePath: '/' });
    const page = await (await root.get('/')).text();
    expect(page).toContain('href="/assets/portal.css"');
    expect((await root.get('/help')).status).toBe(200);
    await root.ks.close();
  });
});

describe('options', () => {
  const ks = createKeyscope({ store: new MemoryStore() });
  const owner = () => null;
  it.each([
    [{}, /options.keyscope/],
    [{ keyscope: ks }, /options.owner/],
    [{ keyscope: ks, owner, basePath: 'portal' }, /options.basePath/],
    [{ keyscope: ks, owner, basePath: '/a b' }, /options.basePath/],
    [{ keyscope: ks, owner, rotationDueDays: 0 }, /options.rotationDueDays/],
    [{ keyscope: ks, owner, graceOptions: [] }, /options.graceOptions/],
    [{ keyscope: ks, owner, graceOptions: [{ label: 'x', ms: -1 }] }, /options.graceOptions/],
    [{ keyscope: ks, owner, expiryDays: [0] }, /options.expiryDays/],
    [{ keyscope: ks, owner, secret: 'short' }, /options.secret/],
    [{ keyscope: ks, owner, origin: 'https://a.test/path' }, /options.origin/],
  ])('rejects bad options when createPortal runs (%#)', (options, message) => {
    expect(() => createPortal(options as never)).toThrow(message);
  });

  it('does not modify the options it is given', () => {
    const options = { keyscope: ks, owner, basePath: '/keys/', graceOptions: [{ label: '1 hour', ms: 3_600_000 }], expiryDays: [7], origin: ['https://a.test'] };
    const copy = structuredClone({ ...options, keyscope: null, owner: null });
    createPortal(Object.freeze(options));
    expect({ ...options, keyscope: null, owner: null }).toEqual(copy);
  });
});
