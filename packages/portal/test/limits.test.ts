import { createKeyscope, MemoryStore } from '@keyscope/core';
import { createPortal } from '@keyscope/portal';
import { afterEach, describe, expect, it } from 'vitest';
import { ORIGIN, setup } from './helpers.js';

let env: ReturnType<typeof setup>;
afterEach(async () => env?.ks.close());

const NEXT_DAY = '2026-06-16T00:00:00.000Z'; // the clock is 2026-06-15T12:00:00Z
const NEXT_MONTH = '2026-07-01T00:00:00.000Z';

/** The create form's fields with no limits; `fields` on top. */
async function createForm(fields: Record<string, string>, user = 'alice') {
  return env.postForm('/portal/keys', { _token: await env.token(user), name: 'k', level: 'user', expiry: 'never', rateLimit: '', rateWindow: '60000', quota: '', quotaRefill: 'day', ...fields }, user);
}

/** The Limits page's form of `id`, as the page draws it, with `fields` on top. */
async function limitsForm(id: string, fields: Record<string, string>, user = 'alice', headers: Record<string, string> = {}) {
  const page = await (await env.get(`/portal/keys/${id}/limits`, user)).text();
  const value = (name: string) => new RegExp(`name="${name}"[^>]*value="([^"]*)"`).exec(page)?.[1] ?? '';
  const selected = (name: string) => new RegExp(`name="${name}"[\\s\\S]*?<option value="([^"]*)" selected>`).exec(page)?.[1] ?? '';
  const drawn = { rateLimit: value('rateLimit'), rateWindow: selected('rateWindow'), quota: value('quota'), quotaRefill: selected('quotaRefill'), remaining: value('remaining') };
  return env.postForm(`/portal/keys/${id}/limits`, { _token: await env.token(user), ...drawn, ...fields }, user, headers);
}

function row(page: string, id: string): string {
  return new RegExp(`<tr data-key-id="${id}"[\\s\\S]*?</tr>`).exec(page)![0];
}

describe('creating a key with limits', () => {
  it('the form offers a rate limit (number and period) and a quota (number and refill), both optional', async () => {
    env = setup({ editLimits: true });
    const page = await (await env.get('/portal')).text();
    expect(page).toContain('<label for="key-rate">Rate limit</label>');
    expect(page).toMatch(/<input type="number" id="key-rate" name="rateLimit" min="1" max="1000000000" step="1" inputmode="numeric" placeholder="No limit" value="">/);
    expect(page).toContain('<select id="key-rate-window" name="rateWindow" aria-label="Rate limit period">');
    for (const [ms, label] of [[1000, 'per second'], [60000, 'per minute'], [3600000, 'per hour'], [86400000, 'per day']]) expect(page).toMatch(new RegExp(`<option value="${ms}"( selected)?>${label}</option>`));
    expect(page).toContain('<option value="60000" selected>per minute</option>');
    expect(page).toContain('<label for="key-quota">Quota</label>');
    expect(page).toContain('<select id="key-quota-refill" name="quotaRefill" aria-label="Quota period">');
    for (const [value, label] of [['day', 'per day'], ['month', 'per month'], ['never', 'in total']]) expect(page).toMatch(new RegExp(`<option value="${value}"( selected)?>${label}</option>`));
    expect(page).not.toMatch(/<input[^>]*name="rateLimit"[^>]*required/);
  });

  it('stores the rate limit and the quota; empty fields mean none', async () => {
    env = setup({ editLimits: true });
    const made = await createForm({ name: 'limited', rateLimit: '100', rateWindow: '60000', quota: '50', quotaRefill: 'day' });
    expect(made.status).toBe(200);
    expect(await made.text()).toContain('id="new-key"');
    await createForm({ name: 'monthly', quota: '10000', quotaRefill: 'month', rateLimit: '10', rateWindow: '1000' });
    await createForm({ name: 'total', quota: '1000', quotaRefill: 'never' });
    await createForm({ name: 'plain' });
    const keys = await env.ks.keys.list('alice');
    expect(keys.map((k) => [k.name, k.rateLimit, k.quota])).toEqual([
      ['limited', { limit: 100, windowMs: 60_000 }, { limit: 50, remaining: 50, refill: 'day', resetAt: new Date(NEXT_DAY) }],
      ['monthly', { limit: 10, windowMs: 1_000 }, { limit: 10000, remaining: 10000, refill: 'month', resetAt: new Date(NEXT_MONTH) }],
      ['total', null, { limit: 1000, remaining: 1000, refill: null, resetAt: null }],
      ['plain', null, null],
    ]);
  });

  it('an empty quota field leaves the level’s default quota to apply', async () => {
    const store = new MemoryStore();
    const ks = createKeyscope({ store, usage: false, now: () => Date.parse('2026-06-15T12:00:00Z'), limits: { user: { quota: { limit: 500, refill: 'month' } } } });
    const portal = createPortal({ keyscope: ks, owner: () => 'alice', secret: 's'.repeat(32) });
    const page = await (await portal(new Request(`${ORIGIN}/portal`))).text();
    const token = /name="_token" value="([^"]+)"/.exec(page)![1]!;
    const fields = { _token: token, name: 'defaulted', level: 'user', expiry: 'never', rateLimit: '', rateWindow: '60000', quota: '', quotaRefill: 'day' };
    const made = await portal(new Request(`${ORIGIN}/portal/keys`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN }, body: new URLSearchParams(fields) }));
    expect(made.status).toBe(200);
    expect((await ks.keys.list('alice'))[0]!.quota).toMatchObject({ limit: 500, remaining: 500, refill: 'month' });
    await ks.close();
  });

  it('refuses bad limits next to the field, keeps what was typed, and creates nothing', async () => {
    env = setup({ editLimits: true });
    const rate = /Enter the rate limit as a whole number of requests from 1 to 1,000,000,000, or leave it empty\./;
    const quota = /Enter the quota as a whole number of requests \(1 or more\), or leave it empty\./;
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ rateLimit: 'abc' }, 'key-rate', rate],
      [{ rateLimit: '0' }, 'key-rate', rate],
      [{ rateLimit: '1.5' }, 'key-rate', rate],
      [{ rateLimit: '-3' }, 'key-rate', rate],
      [{ rateLimit: '1e3' }, 'key-rate', rate],
      [{ rateLimit: '2000000000' }, 'key-rate', rate],
      [{ rateLimit: '10', rateWindow: '90000' }, 'key-rate', /Choose the rate limit&#39;s period\./],
      [{ rateLimit: '10', rateWindow: 'minute' }, 'key-rate', /Choose the rate limit&#39;s period\./],
      [{ quota: '0' }, 'key-quota', quota],
      [{ quota: 'lots' }, 'key-quota', quota],
      [{ quota: '99999999999999999999' }, 'key-quota', quota],
      [{ quota: '10', quotaRefill: 'week' }, 'key-quota', /Choose the quota&#39;s period: per day, per month or in total\./],
    ];
    for (const [fields, id, message] of cases) {
      const response = await createForm(fields);
      expect(response.status, JSON.stringify(fields)).toBe(422);
      const page = await response.text();
      expect(page, JSON.stringify(fields)).toMatch(new RegExp(`<p class="error" id="${id}-error">${message.source}</p>`));
      expect(page).toContain(`aria-describedby="${id}-error"`);
      expect(page).not.toContain('id="new-key"');
    }
    const kept = await (await createForm({ name: 'kept', rateLimit: '"><b>', rateWindow: '3600000', quota: '7', quotaRefill: 'month' })).text();
    expect(kept).toContain('value="&#34;&#62;&#60;b&#62;"');
    expect(kept).not.toContain('<b>');
    expect(kept).toContain('<option value="3600000" selected>per hour</option>');
    expect(kept).toContain('value="7"');
    expect(kept).toContain('<option value="month" selected>per month</option>');
    expect(await env.ks.keys.list('alice')).toEqual([]);
  });
});

describe('the key table', () => {
  it('shows each key’s rate limit and what is left of its quota, with the period', async () => {
    env = setup({ editLimits: true });
    const { ks } = env;
    const both = await ks.keys.create({ ownerId: 'alice', name: 'both', level: 'user', rateLimit: { limit: 100, windowMs: 60_000 }, quota: { limit: 50, remaining: 37, refill: 'day' } });
    const monthly = await ks.keys.create({ ownerId: 'alice', name: 'monthly', level: 'user', quota: { limit: 10_000, refill: 'month' } });
    const total = await ks.keys.create({ ownerId: 'alice', name: 'total', level: 'user', quota: { limit: 1000, remaining: 0 }, rateLimit: { limit: 20, windowMs: 90_000 } });
    const plain = await ks.keys.create({ ownerId: 'alice', name: 'plain', level: 'user' });
    const page = await (await env.get('/portal')).text();
    expect(page).toContain('<th scope="col">Limits</th>');
    expect(row(page, both.record.id)).toContain(
      `<td class="limits"><span class="limit" data-rate-limit>100 per minute</span><span class="limit" data-quota title="Starts again 2026-06-16 00:00 UTC">37 of 50 left today</span>` +
        `<a class="limit-edit" href="/portal/keys/${both.record.id}/limits">Change<span class="sr-only"> the limits of both</span></a></td>`,
    );
    expect(row(page, monthly.record.id)).toContain('<span class="limit" data-quota title="Starts again 2026-07-01 00:00 UTC">10,000 of 10,000 left this month</span>');
    expect(row(page, total.record.id)).toContain('<span class="limit" data-rate-limit>20 per 90 seconds</span><span class="limit" data-quota>0 of 1,000 left in total</span>');
    expect(row(page, plain.record.id)).toContain(`<td class="limits"><span class="muted">None</span> <a class="limit-edit" href="/portal/keys/${plain.record.id}/limits">Set<span class="sr-only"> the limits of plain</span></a></td>`);
    for (const { record } of [both, monthly, total, plain]) expect(row(page, record.id)).toContain(`href="/portal/keys/${record.id}/limits"`);

    // What the next request would find: a daily quota whose refill is due shows full.
    env.clock.now = Date.parse('2026-06-16T00:00:01Z');
    expect(row(await (await env.get('/portal')).text(), both.record.id)).toContain('50 of 50 left today');

    const api = (await (await env.get('/portal/api/keys')).json()).keys;
    expect(api.find((k: { id: string }) => k.id === both.record.id)).toMatchObject({
      rateLimit: { limit: 100, windowMs: 60_000 },
      quota: { limit: 50, remaining: 50, refill: 'day', resetAt: '2026-06-17T00:00:00.000Z' },
    });
    expect(api.find((k: { id: string }) => k.id === plain.record.id)).toMatchObject({ rateLimit: null, quota: null });
  });

  it('offers no Limits action for a revoked key', async () => {
    env = setup({ editLimits: true });
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'gone', level: 'user', quota: { limit: 5 } });
    await env.ks.keys.revoke(record.id);
    const tr = row(await (await env.get('/portal')).text(), record.id);
    expect(tr).toContain('5 of 5 left in total');
    expect(tr).not.toContain('/limits"');
  });
});

describe('changing a key’s limits', () => {
  it('the Limits page shows the key’s limits in the form', async () => {
    env = setup({ editLimits: true });
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'ci', level: 'user', rateLimit: { limit: 20, windowMs: 90_000 }, quota: { limit: 50, remaining: 37, refill: 'day' } });
    const response = await env.get(`/portal/keys/${record.id}/limits`);
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain('<h1>Key limits</h1>');
    expect(page).toContain(`<form method="post" action="/portal/keys/${record.id}/limits">`);
    expect(page).toMatch(/name="_token" value="[^"]+"/);
    expect(page).toMatch(/id="key-rate" name="rateLimit"[^>]*value="20"/);
    // A window set elsewhere (90 s) is offered, and chosen.
    expect(page).toContain('<option value="90000" selected>per 90 seconds</option>');
    expect(page).toMatch(/id="key-quota" name="quota"[^>]*value="50"/);
    expect(page).toContain('<option value="day" selected>per day</option>');
    expect(page).toMatch(/id="key-remaining" name="remaining"[^>]*placeholder="37 \(as it is\)" value=""/);
    expect(page).toContain('Now 37 of 50.');
  });

  it('saves a change, then shows the keys page with a notice; what is not changed stays', async () => {
    env = setup({ editLimits: true });
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'ci', level: 'user', quota: { limit: 50, refill: 'day' } });
    // Requests have used some of the quota: sending its fields back unchanged must not refill it.
    await env.store.consumeQuota(record.id, new Date(env.clock.now));
    await env.store.consumeQuota(record.id, new Date(env.clock.now));
    const saved = await limitsForm(record.id, { rateLimit: '100', rateWindow: '60000' });
    expect(saved.status).toBe(303);
    expect(saved.headers.get('location')).toBe('/portal?notice=limits');
    expect(await env.ks.keys.get(record.id)).toMatchObject({ rateLimit: { limit: 100, windowMs: 60_000 }, quota: { limit: 50, remaining: 48, refill: 'day' } });
    const page = await (await env.get('/portal?notice=limits')).text();
    expect(page).toContain('<p class="notice" role="status">The key&#39;s limits were saved.</p>');
    // The notice is one of the portal's own words, whatever the URL says.
    for (const notice of ['constructor', 'toString', '<b>']) expect(await (await env.get(`/portal?notice=${encodeURIComponent(notice)}`)).text()).not.toContain('class="notice"');
    expect(row(page, record.id)).toContain('100 per minute');
    expect(row(page, record.id)).toContain('48 of 50 left today');

    // A new "left" count; then a changed quota, which starts full; then another period.
    await limitsForm(record.id, { remaining: '10' });
    expect((await env.ks.keys.get(record.id))!.quota).toMatchObject({ limit: 50, remaining: 10, refill: 'day' });
    await limitsForm(record.id, { quota: '80' });
    expect((await env.ks.keys.get(record.id))!.quota).toMatchObject({ limit: 80, remaining: 80, refill: 'day' });
    await limitsForm(record.id, { quotaRefill: 'month', remaining: '0' });
    expect((await env.ks.keys.get(record.id))!.quota).toEqual({ limit: 80, remaining: 0, refill: 'month', resetAt: new Date(NEXT_MONTH) });
    expect((await env.ks.keys.get(record.id))!.rateLimit).toEqual({ limit: 100, windowMs: 60_000 });
  });

  it('adds limits to a key without any, and removes them with empty fields', async () => {
    env = setup({ editLimits: true });
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'ci', level: 'user' });
    expect((await limitsForm(record.id, { rateLimit: '5', rateWindow: '1000', quota: '1000', quotaRefill: 'never', remaining: '900' })).status).toBe(303);
    expect(await env.ks.keys.get(record.id)).toMatchObject({ rateLimit: { limit: 5, windowMs: 1_000 }, quota: { limit: 1000, remaining: 900, refill: null, resetAt: null } });
    expect((await limitsForm(record.id, { rateLimit: '' })).status).toBe(303);
    expect(await env.ks.keys.get(record.id)).toMatchObject({ rateLimit: null, quota: { limit: 1000, remaining: 900 } });
    expect((await limitsForm(record.id, { quota: '' })).status).toBe(303);
    expect(await env.ks.keys.get(record.id)).toMatchObject({ rateLimit: null, quota: null });
    expect(row(await (await env.get('/portal')).text(), record.id)).toContain('<span class="muted">None</span>');
  });

  it('refuses bad input next to the field, keeps what was typed, and changes nothing', async () => {
    env = setup({ editLimits: true });
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'ci', level: 'user', rateLimit: { limit: 100, windowMs: 60_000 }, quota: { limit: 50, remaining: 37, refill: 'day' } });
    const before = await env.ks.keys.get(record.id);
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ rateLimit: 'fast' }, 'key-rate', /Enter the rate limit as a whole number/],
      [{ rateLimit: '0' }, 'key-rate', /Enter the rate limit as a whole number/],
      [{ rateWindow: '5000' }, 'key-rate', /Choose the rate limit&#39;s period\./],
      [{ quota: '-1' }, 'key-quota', /Enter the quota as a whole number/],
      [{ quotaRefill: 'year' }, 'key-quota', /Choose the quota&#39;s period/],
      [{ remaining: '51' }, 'key-remaining', /Enter what is left as a whole number from 0 to the quota \(50\), or leave it empty\./],
      [{ quota: '20', remaining: '30' }, 'key-remaining', /from 0 to the quota \(20\)/],
      [{ remaining: 'all' }, 'key-remaining', /Enter what is left as a whole number/],
      [{ quota: '', remaining: '5' }, 'key-remaining', /Set a quota to say how much of it is left\./],
    ];
    for (const [fields, id, message] of cases) {
      const response = await limitsForm(record.id, fields);
      expect(response.status, JSON.stringify(fields)).toBe(422);
      const page = await response.text();
      expect(page, JSON.stringify(fields)).toMatch(new RegExp(`<p class="error" id="${id}-error">[^<]*${message.source}`));
      expect(page).toContain(`aria-describedby="${id}-error"`);
    }
    const kept = await (await limitsForm(record.id, { rateLimit: '<i>', remaining: '"x' })).text();
    expect(kept).toContain('value="&#60;i&#62;"');
    expect(kept).toContain('value="&#34;x"');
    expect(await env.ks.keys.get(record.id)).toEqual(before);
  });

  it('is refused without the form token, from another site, or with another owner’s token', async () => {
    env = setup({ editLimits: true });
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'ci', level: 'user', quota: { limit: 50 } });
    const path = `/portal/keys/${record.id}/limits`;
    const fields = { rateLimit: '1', rateWindow: '1000', quota: '', quotaRefill: 'day', remaining: '' };
    const refusals = [
      await env.postForm(path, fields),
      await env.postForm(path, { ...fields, _token: '' }),
      await env.postForm(path, { ...fields, _token: 'A'.repeat(43) }),
      await env.postForm(path, { ...fields, _token: await env.token('bob') }),
      await env.postForm(path, { ...fields, _token: await env.token() }, 'alice', { 'sec-fetch-site': 'cross-site' }),
      await env.postForm(path, { ...fields, _token: await env.token() }, 'alice', { origin: 'https://evil.test' }),
      await env.postJson(`/portal/api/keys/${record.id}/limits`, { quota: null }, 'alice', { 'sec-fetch-site': 'cross-site' }),
      await env.postJson(`/portal/api/keys/${record.id}/limits`, { quota: null }, 'alice', { origin: 'https://evil.test' }),
    ];
    for (const response of refusals) expect(response.status).toBe(403);
    expect((await env.postJson(`/portal/api/keys/${record.id}/limits`, { quota: null }, 'alice', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await env.postForm(path, fields, null)).status).toBe(401);
    expect(await env.ks.keys.get(record.id)).toMatchObject({ rateLimit: null, quota: { limit: 50, remaining: 50 } });
  });

  it('another owner’s key is not found, on the page, the form and the API, and stays as it was', async () => {
    env = setup({ editLimits: true });
    const { record } = await env.ks.keys.create({ ownerId: 'bob', name: 'bobs', level: 'user', quota: { limit: 50 } });
    const token = await env.token('alice');
    const answers = [
      await env.get(`/portal/keys/${record.id}/limits`),
      await env.postForm(`/portal/keys/${record.id}/limits`, { _token: token, rateLimit: '', rateWindow: '60000', quota: '', quotaRefill: 'day', remaining: '' }),
      await env.postJson(`/portal/api/keys/${record.id}/limits`, { quota: null, rateLimit: null }),
      await env.get('/portal/keys/key_doesnotexist/limits'),
    ];
    for (const answer of answers) expect(answer.status).toBe(404);
    expect(await answers[0]!.text()).not.toContain('bobs');
    expect(await env.ks.keys.get(record.id)).toMatchObject({ rateLimit: null, quota: { limit: 50, remaining: 50 } });
  });

  it('a signed key carries no limits of its own: the page says so and changes nothing', async () => {
    env = setup({ editLimits: true });
    await env.store.createKey({
      id: 'key_signed0000000000000',
      name: 'edge',
      ownerId: 'alice',
      level: 'user',
      projectId: null,
      hash: 'a'.repeat(64),
      start: 'eyJhbGciOi',
      kind: 'signed',
      createdAt: new Date(env.clock.now),
      expiresAt: new Date(env.clock.now + 86_400_000 * 30),
      revokedAt: null,
      lastUsedAt: null,
    });
    expect(row(await (await env.get('/portal')).text(), 'key_signed0000000000000')).not.toContain('/limits"');
    const page = await (await env.get('/portal/keys/key_signed0000000000000/limits')).text();
    expect(page).toContain('is a signed key: it carries no limits of its own.');
    expect(page).not.toContain('<form method="post"');
    const post = await env.postForm('/portal/keys/key_signed0000000000000/limits', { _token: await env.token(), rateLimit: '5', rateWindow: '1000', quota: '', quotaRefill: 'day' });
    expect(post.status).toBe(409);
    const api = await env.postJson('/portal/api/keys/key_signed0000000000000/limits', { rateLimit: { limit: 5, windowMs: 1000 } });
    expect(api.status).toBe(409);
    expect((await api.json()).code).toBe('not_limitable');
    expect(await env.ks.keys.get('key_signed0000000000000')).toMatchObject({ rateLimit: null });
  });

  it('keeps the security headers and escapes the key name on the Limits page', async () => {
    env = setup({ editLimits: true });
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: `<script>alert("x")</script>`, level: 'user' });
    const response = await env.get(`/portal/keys/${record.id}/limits`);
    expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(response.headers.get('content-security-policy')).not.toMatch(/unsafe-inline/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    const page = await response.text();
    expect(page).not.toContain('<script>alert');
    expect(page).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;');
    expect(page).not.toMatch(/\sstyle=|\son[a-z]+=/i);
    const saved = await limitsForm(record.id, { quota: '5' });
    expect(saved.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(saved.headers.get('location')).toBe('/portal?notice=limits');
  });
});

describe('the JSON API', () => {
  it('creates a key with limits and changes them: a field left out stays, null removes it', async () => {
    env = setup({ editLimits: true });
    const created = await env.postJson('/portal/api/keys', { name: 'api', level: 'user', rateLimit: { limit: 100, windowMs: 60_000 }, quota: { limit: 50, refill: 'day' } });
    expect(created.status).toBe(201);
    const { record } = await created.json();
    expect(record).toMatchObject({ rateLimit: { limit: 100, windowMs: 60_000 }, quota: { limit: 50, remaining: 50, refill: 'day', resetAt: NEXT_DAY } });

    const changed = await env.postJson(`/portal/api/keys/${record.id}/limits`, { quota: { limit: 50, refill: 'day', remaining: 7 } });
    expect(changed.status).toBe(200);
    expect(await changed.json()).toMatchObject({ id: record.id, rateLimit: { limit: 100, windowMs: 60_000 }, quota: { limit: 50, remaining: 7, refill: 'day' } });
    const removed = await env.postJson(`/portal/api/keys/${record.id}/limits`, { rateLimit: null });
    expect(await removed.json()).toMatchObject({ rateLimit: null, quota: { remaining: 7 } });
    expect(await (await env.get(`/portal/api/keys/${record.id}`)).json()).toMatchObject({ rateLimit: null, quota: { limit: 50, remaining: 7 } });
  });

  it('answers bad limits with 422 and field errors, changing nothing', async () => {
    env = setup({ editLimits: true });
    const bad = await env.postJson('/portal/api/keys', { name: 'api', level: 'user', rateLimit: { limit: 0, windowMs: 60_000 }, quota: { limit: 10, refill: 'week' } });
    expect(bad.status).toBe(422);
    expect(Object.keys((await bad.json()).errors).sort()).toEqual(['quota', 'rateLimit']);
    expect(await env.ks.keys.list('alice')).toEqual([]);
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'k', level: 'user' });
    const cases: [unknown, string][] = [
      [{ rateLimit: { limit: 10, windowMs: 500 } }, 'rateLimit'],
      [{ rateLimit: { limit: '10', windowMs: 1000 } }, 'rateLimit'],
      [{ rateLimit: 'fast' }, 'rateLimit'],
      [{ quota: { limit: 10, remaining: 11 } }, 'quota.remaining'],
      [{ quota: { limit: 1.5 } }, 'quota'],
    ];
    for (const [body, field] of cases) {
      const answer = await env.postJson(`/portal/api/keys/${record.id}/limits`, body);
      expect(answer.status, JSON.stringify(body)).toBe(422);
      expect(Object.keys((await answer.json()).errors)).toEqual([field]);
    }
    expect(await env.ks.keys.get(record.id)).toMatchObject({ rateLimit: null, quota: null });
  });
});

describe('editLimits: false (the default)', () => {
  it('shows limits but offers no way to change them: no fields, no Limits page or route, form fields and API fields refused or ignored', async () => {
    // Left out: limits are the operator's policy unless the portal is told otherwise.
    env = setup();
    const { record } = await env.ks.keys.create({ ownerId: 'alice', name: 'set-for-you', level: 'user', quota: { limit: 50, refill: 'month' } });
    const page = await (await env.get('/portal')).text();
    expect(page).not.toContain('name="rateLimit"');
    expect(page).not.toContain('name="quota"');
    expect(row(page, record.id)).toContain('50 of 50 left this month');
    expect(row(page, record.id)).not.toContain('/limits"');
    expect((await env.get(`/portal/keys/${record.id}/limits`)).status).toBe(404);
    expect((await limitsForm(record.id, { quota: '' })).status).toBe(404);
    expect((await env.postJson(`/portal/api/keys/${record.id}/limits`, { quota: null })).status).toBe(404);
    const api = await env.postJson('/portal/api/keys', { name: 'x', level: 'user', quota: null });
    expect(api.status).toBe(422);
    expect((await api.json()).errors).toEqual({ quota: "Your keys' limits are set for you: leave this out." });
    // A crafted form with limit fields makes a key without them.
    expect((await createForm({ name: 'crafted', rateLimit: '1000000', rateWindow: '1000' })).status).toBe(200);
    expect((await env.ks.keys.list('alice')).find((k) => k.name === 'crafted')).toMatchObject({ rateLimit: null, quota: null });
    const doc = await (await env.get('/portal/api/openapi.json', null)).json();
    expect(Object.keys(doc.paths)).not.toContain('/portal/api/keys/{id}/limits');
    expect(() => createPortal({ keyscope: env.ks, owner: () => null, editLimits: 'no' as unknown as boolean })).toThrow(/options\.editLimits must be a boolean/);
  });
});
