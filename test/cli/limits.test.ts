import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyscope, generateKey, type AuthResult } from '@keyscope/core';
import { SqliteStore } from '@keyscope/sqlite';
import { assertBuilt, cliSession } from './helpers.js';

let dir: string;
let db: string;
const keys: string[] = [];

const { cli, json, fails, output } = cliSession(() => ({ cwd: dir, env: { KEYSCOPE_DB: db } }));

/** The next 00:00 UTC and 1st of the month after now, as ISO strings (a test run spanning midnight may see either side). */
function nextResets(): { day: string[]; month: string[] } {
  const at = (ms: number) => {
    const d = new Date(ms);
    return {
      day: new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)).toISOString(),
      month: new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).toISOString(),
    };
  };
  const [now, soon] = [at(Date.now()), at(Date.now() + 60_000)];
  return { day: [now.day, soon.day], month: [now.month, soon.month] };
}

async function create(owner: string, name: string, ...flags: string[]) {
  const made = await json(['keys', 'create', '--owner', owner, '--name', name, '--level', 'user', ...flags]);
  keys.push(made.key);
  return made.record as { id: string };
}

async function listed(owner: string): Promise<any[]> {
  return json(['keys', 'list', '--owner', owner]);
}

beforeAll(() => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'keyscope-limits-'));
  db = join(dir, 'keys.db');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('keys create with limits', () => {
  it('stores a rate limit and a daily quota, shown in keys list, its table and --json', async () => {
    const human = await cli(['keys', 'create', '--owner', 'u1', '--name', 'limited', '--level', 'user', '--rate-limit', '100/min', '--quota', '50', '--refill', 'day']);
    expect(human.code).toBe(0);
    keys.push(/^\s+(ks_\S+)$/m.exec(human.stdout)![1]!);
    expect(human.stdout).toMatch(/^Limits: rate limit 100\/min; quota 50 of 50 left, refilled each day \(next \d{4}-\d{2}-\d{2}T00:00:00Z\)\.$/m);
    expect(human.stdout).toContain('will not be shown again');

    const [record] = await listed('u1');
    expect(record.rateLimit).toEqual({ limit: 100, windowMs: 60_000 });
    expect(record.quota).toEqual({ limit: 50, remaining: 50, refill: 'day', resetAt: expect.any(String) });
    expect(nextResets().day).toContain(record.quota.resetAt);

    const table = await cli(['keys', 'list', '--owner', 'u1']);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+LEVEL\s+PROJECT\s+START\s+STATUS\s+CREATED\s+EXPIRES\s+LAST USED\s+LIMITS\n/);
    expect(table.stdout.split('\n')[1]).toMatch(/\blimited\b.*\s{2}100\/min, quota 50\/50 \(day\)$/);
  });

  it('reads every window form, and prints each as --rate-limit takes it', async () => {
    const forms: [string, number, string][] = [
      ['10/s', 1_000, '10/s'],
      ['10/sec', 1_000, '10/s'],
      ['20/60s', 60_000, '20/min'],
      ['20/90s', 90_000, '20/90s'],
      ['100/m', 60_000, '100/min'],
      ['100/5min', 300_000, '100/5min'],
      ['100/minutes', 60_000, '100/min'],
      ['5000/hour', 3_600_000, '5000/hour'],
      ['5000/2h', 7_200_000, '5000/2h'],
      ['1000/day', 86_400_000, '1000/day'],
      ['1000/366d', 366 * 86_400_000, '1000/366d'],
    ];
    for (const [given] of forms) await create('forms', given, `--rate-limit=${given}`);
    const records = await listed('forms');
    expect(records.map((r) => [r.name, r.rateLimit, r.quota])).toEqual(forms.map(([given, windowMs]) => [given, { limit: Number(given.split('/')[0]), windowMs }, null]));
    const lines = (await cli(['keys', 'list', '--owner', 'forms'])).stdout.trim().split('\n').slice(1);
    expect(lines.map((line) => line.split(/\s{2,}/).at(-1))).toEqual(forms.map(([, , shown]) => shown));
  });

  it('a quota without --refill never refills; a monthly one resets on the 1st', async () => {
    await create('quotas', 'total', '--quota', '1000');
    await create('quotas', 'monthly', '--quota', '10000', '--refill', 'month');
    const [total, monthly] = await listed('quotas');
    expect(total).toMatchObject({ rateLimit: null, quota: { limit: 1000, remaining: 1000, refill: null, resetAt: null } });
    expect(monthly).toMatchObject({ rateLimit: null, quota: { limit: 10000, remaining: 10000, refill: 'month' } });
    expect(nextResets().month).toContain(monthly.quota.resetAt);
    const table = (await cli(['keys', 'list', '--owner', 'quotas'])).stdout;
    expect(table).toMatch(/\btotal\b.*\squota 1000\/1000\n/);
    expect(table).toMatch(/\bmonthly\b.*\squota 10000\/10000 \(month\)\n/);
  });

  it('a key without limits lists rateLimit and quota as null, and a list without limits has no LIMITS column', async () => {
    await create('plain', 'plain');
    expect(await listed('plain')).toEqual([expect.objectContaining({ name: 'plain', rateLimit: null, quota: null })]);
    const table = await cli(['keys', 'list', '--owner', 'plain']);
    expect(table.stdout).toMatch(/LAST USED\n/);
    expect(table.stdout).not.toContain('LIMITS');
    // Beside a key with limits, one without shows a dash.
    await create('plain', 'limited', '--rate-limit', '10/s');
    const mixed = (await cli(['keys', 'list', '--owner', 'plain'])).stdout.split('\n');
    expect(mixed[1]).toMatch(/\bplain\b.*\s-$/);
    expect(mixed[2]).toMatch(/\blimited\b.*\s10\/s$/);
  });

  it('keys import takes the same flags', async () => {
    const key = generateKey();
    keys.push(key);
    const { record } = await json(['keys', 'import', '--owner', 'imports', '--name', 'legacy', '--level', 'user', '--rate-limit', '5/s', '--quota', '20', '--refill', 'month'], {
      env: { KEYSCOPE_API_KEY: key },
    });
    expect(await listed('imports')).toEqual([expect.objectContaining({ id: record.id, rateLimit: { limit: 5, windowMs: 1_000 }, quota: expect.objectContaining({ limit: 20, remaining: 20, refill: 'month' }) })]);
    const human = await cli(['keys', 'import', '--owner', 'imports', '--name', 'piped', '--level', 'user', '--quota', '3'], { input: generateKey() });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^Limits: no rate limit of its own; quota 3 of 3 left, never refilled\.$/m);
  });

  it('keys rotate carries the limits to the new key, and its --json record is unchanged', async () => {
    const old = await create('rotate', 'rotating', '--rate-limit', '100/min', '--quota', '50', '--refill', 'day');
    const rotated = await json(['keys', 'rotate', old.id]);
    keys.push(rotated.key);
    expect(Object.keys(rotated.record).sort()).toEqual(['createdAt', 'expiresAt', 'id', 'kind', 'level', 'name', 'ownerId', 'projectId', 'start']);
    const fresh = (await listed('rotate')).find((k) => k.id === rotated.record.id);
    expect(fresh).toMatchObject({ rateLimit: { limit: 100, windowMs: 60_000 }, quota: { limit: 50, remaining: 50, refill: 'day' } });
  });
});

describe('keys limits', () => {
  it('sets, changes and removes a rate limit and a quota, printing the limits after each change', async () => {
    const { id } = await create('admin', 'changing');
    const set = await cli(['keys', 'limits', id, '--rate-limit', '100/min']);
    expect(set).toMatchObject({ code: 0, stderr: '' });
    expect(set.stdout).toBe(`Key ${id} "changing": rate limit 100/min; no quota.\n`);

    // A quota added; the rate limit, left out, stays.
    const quota = await json(['keys', 'limits', id, '--quota', '50', '--refill', 'day']);
    expect(quota).toMatchObject({ id, name: 'changing', status: 'active', rateLimit: { limit: 100, windowMs: 60_000 }, quota: { limit: 50, remaining: 50, refill: 'day' } });
    expect(nextResets().day).toContain(quota.quota.resetAt);

    // --remaining alone: the same quota with that much left.
    const drained = await cli(['keys', 'limits', id, '--remaining', '37']);
    expect(drained.stdout).toMatch(new RegExp(`^Key ${id} "changing": rate limit 100/min; quota 37 of 50 left, refilled each day \\(next \\S+Z\\)\\.\\n$`));
    expect((await listed('admin'))[0]).toMatchObject({ quota: { limit: 50, remaining: 37, refill: 'day' } });
    expect((await cli(['keys', 'list', '--owner', 'admin'])).stdout).toContain('100/min, quota 37/50 (day)');

    // A new quota replaces the old one: full unless --remaining, never refilled unless --refill.
    expect(await json(['keys', 'limits', id, '--quota', '200', '--remaining', '0', '--rate-limit', '5/s'])).toMatchObject({
      rateLimit: { limit: 5, windowMs: 1_000 },
      quota: { limit: 200, remaining: 0, refill: null, resetAt: null },
    });

    const noRate = await cli(['keys', 'limits', id, '--no-rate-limit']);
    expect(noRate.stdout).toBe(`Key ${id} "changing": no rate limit of its own; quota 0 of 200 left, never refilled.\n`);
    const none = await json(['keys', 'limits', id, '--no-quota']);
    expect(none).toMatchObject({ id, rateLimit: null, quota: null });
    expect((await listed('admin'))[0]).toMatchObject({ rateLimit: null, quota: null });
    expect((await cli(['keys', 'list', '--owner', 'admin'])).stdout).not.toContain('LIMITS');
  });

  it('changes both at once, and removes both at once', async () => {
    const { id } = await create('admin-both', 'both');
    await json(['keys', 'limits', id, '--rate-limit', '10/s', '--quota', '5', '--refill', 'month']);
    expect((await listed('admin-both'))[0]).toMatchObject({ rateLimit: { limit: 10, windowMs: 1_000 }, quota: { limit: 5, remaining: 5, refill: 'month' } });
    await json(['keys', 'limits', id, '--no-rate-limit', '--no-quota']);
    expect((await listed('admin-both'))[0]).toMatchObject({ rateLimit: null, quota: null });
  });
});

describe('a running server on the same file', () => {
  it('applies limits set by the CLI process from the next requests on, to a key it has cached', async () => {
    const store = new SqliteStore({ filename: db, watchIntervalMs: 20 });
    const server = createKeyscope({ store, usage: false });
    try {
      const { key, record } = await server.keys.create({ ownerId: 'live', name: 'live', level: 'user' });
      keys.push(key);
      const request = { headers: { 'x-api-key': key }, path: '/validate' };
      const code = (r: AuthResult) => (r.ok ? 'ok' : r.error.code);
      // Cached without limits: only the store's change report can give it some.
      expect(code(await server.authenticate(request))).toBe('ok');
      expect((await cli(['keys', 'limits', record.id, '--quota', '2'])).code).toBe(0);
      const deadline = Date.now() + 5_000;
      let first = await server.authenticate(request);
      while (first.ok && first.headers === undefined && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        first = await server.authenticate(request);
      }
      expect(first.ok && first.headers).toEqual({ 'RateLimit-Policy': '"quota";q=2', RateLimit: '"quota";r=1' });
      expect(code(await server.authenticate(request))).toBe('ok');
      expect(code(await server.authenticate(request))).toBe('quota_exhausted');
      // And removed the same way.
      expect((await cli(['keys', 'limits', record.id, '--no-quota'])).code).toBe(0);
      // Until the server hears of it, its cached entry still has a quota, which the store no
      // longer counts: ok, with empty RateLimit headers. Waiting for 'ok' alone raced that report.
      const until = Date.now() + 5_000;
      let after = await server.authenticate(request);
      while (!(after.ok && after.headers === undefined) && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        after = await server.authenticate(request);
      }
      expect(after).toEqual({ ok: true, auth: expect.objectContaining({ keyId: record.id }) });
    } finally {
      await server.close();
      store.close();
    }
  });
});

describe('a rotated key', () => {
  it('lists show the count of the quota it shares with the key it replaced, with --owner and with --all', async () => {
    const old = await create('line', 'line', '--quota', '5');
    const rotated = await json(['keys', 'rotate', old.id, '--grace', '1h']);
    keys.push(rotated.key);
    const store = new SqliteStore({ filename: db });
    const server = createKeyscope({ store, usage: false });
    try {
      for (let i = 0; i < 2; i++) expect((await server.authenticate({ headers: { 'x-api-key': rotated.key }, path: '/validate' })).ok).toBe(true);
    } finally {
      await server.close();
      store.close();
    }
    const remaining = (records: any[]) => records.filter((k) => k.ownerId === 'line').map((k) => k.quota.remaining);
    expect(remaining(await listed('line'))).toEqual([3, 3]);
    expect(remaining(await json(['keys', 'list', '--all']))).toEqual([3, 3]);
  });
});

describe('bad input: a clear one-line error, exit 2, nothing changed', () => {
  const badRates = ['100', '100/', '/min', 'min', '0/min', '100/0s', '1.5/s', '-1/s', '+1/s', '1e3/min', '0100/min', '100/01min', '100/ms', '100/500ms', '100/week', '100/month', '100/y', '100 /min', '100/min ', '100/MIN', '100/1.5h', '100/400d', '100/min/s', '2000000000/s', ''];
  const badQuotas = ['0', '-5', '1.5', 'abc', '1e3', '+5', '050', ' 5', '99999999999999999', ''];

  it('keys create refuses each malformed --rate-limit, --quota and --refill and creates nothing', async () => {
    const base = ['keys', 'create', '--owner', 'bad', '--name', 'x', '--level', 'user'];
    // `--flag=value`, so a value starting with '-' is a value; refused before the store is opened,
    // so these runs can go side by side.
    const rates = await Promise.all(badRates.map((value) => fails(2, [...base, `--rate-limit=${value}`])));
    rates.forEach((message, i) => {
      expect(message, JSON.stringify(badRates[i])).toMatch(/--rate-limit (must be <requests>\/<window>, like 100\/min|needs a window from 1s to 366d|allows at most 1000000000 requests per window)/);
    });
    const quotas = await Promise.all(badQuotas.map((value) => fails(2, [...base, `--quota=${value}`])));
    quotas.forEach((message, i) => expect(message, JSON.stringify(badQuotas[i])).toMatch(/--quota must be a whole number of at least 1/));
    expect(await fails(2, [...base, '--rate-limit', '100/400d'])).toMatch(/--rate-limit needs a window from 1s to 366d/);
    expect(await fails(2, [...base, '--rate-limit', '2000000000/s'])).toMatch(/--rate-limit allows at most 1000000000 requests per window/);
    expect(await fails(2, [...base, '--quota', '10', '--refill', 'week'])).toMatch(/--refill must be day or month/);
    expect(await fails(2, [...base, '--quota', '10', '--refill', 'DAY'])).toMatch(/--refill must be day or month/);
    expect(await fails(2, [...base, '--refill', 'day'])).toMatch(/--refill says when a quota starts again: give it with --quota <n>/);
    expect(await fails(2, [...base, '--rate-limit'])).toMatch(/--rate-limit needs a value/);
    expect(await fails(2, [...base, '--remaining', '5'])).toMatch(/unknown option --remaining/);
    expect(await fails(2, [...base, '--no-quota'])).toMatch(/unknown option --no-quota/);
    expect(await json(['keys', 'list', '--owner', 'bad'])).toEqual([]);
  }, 60_000);

  it('keys import refuses them the same way, before reading the store', async () => {
    const key = generateKey();
    const base = ['keys', 'import', '--owner', 'bad-import', '--name', 'x', '--level', 'user'];
    expect(await fails(2, [...base, '--rate-limit', '10/fortnight'], { env: { KEYSCOPE_API_KEY: key } })).toMatch(/--rate-limit must be/);
    expect(await fails(2, [...base, '--refill', 'month'], { env: { KEYSCOPE_API_KEY: key } })).toMatch(/--refill says when/);
    expect(await json(['keys', 'list', '--owner', 'bad-import'])).toEqual([]);
  });

  it('keys limits refuses no change, contradictions, bad values and an unknown key, leaving the key as it was', async () => {
    const { id } = await create('bad-limits', 'kept', '--rate-limit', '100/min', '--quota', '50', '--refill', 'day');
    const { id: noQuota } = await create('bad-limits', 'no-quota');
    const before = await listed('bad-limits');
    const cases: [string[], RegExp][] = [
      [[id], /keys limits needs a change: --rate-limit <n>\/<window>, --no-rate-limit, --quota <n>, --no-quota or --remaining <n>/],
      [[id, '--rate-limit', '10/s', '--no-rate-limit'], /give --rate-limit or --no-rate-limit, not both/],
      [[id, '--quota', '10', '--no-quota'], /give --quota or --no-quota, not both/],
      [[id, '--no-quota', '--remaining', '3'], /--remaining sets what is left of a quota: it cannot go with --no-quota/],
      [[id, '--refill', 'month'], /--refill says when a quota starts again: give it with --quota <n>/],
      [[id, '--quota', '10', '--refill', 'year'], /--refill must be day or month/],
      [[id, '--rate-limit', '10/fortnight'], /--rate-limit must be <requests>\/<window>/],
      [[id, '--rate-limit', '10/0.5s'], /--rate-limit must be <requests>\/<window>/],
      [[id, '--quota', '0'], /--quota must be a whole number of at least 1/],
      [[id, '--remaining=-1'], /--remaining must be a whole number \(0 or more\)/],
      [[id, '--remaining', 'lots'], /--remaining must be a whole number \(0 or more\)/],
      [[id, '--remaining', '51'], /--remaining must be at most the quota's limit \(50\)/],
      [[id, '--quota', '10', '--remaining', '11'], /--remaining must be at most the quota's limit \(10\)/],
      [[noQuota, '--remaining', '5'], new RegExp(`key ${noQuota} has no quota: set one with --quota <n> \\[--refill day\\|month\\]`)],
      [[id, '--no-rate-limit=yes'], /--no-rate-limit takes no value/],
      [[], /keys limits needs <keyId>/],
      [[id, id], /keys limits takes one argument, <keyId>/],
    ];
    for (const [args, message] of cases) expect(await fails(2, ['keys', 'limits', ...args]), args.join(' ')).toMatch(message);
    for (const args of [['--rate-limit', '10/s'], ['--no-quota'], ['--remaining', '1']]) {
      expect(await fails(1, ['keys', 'limits', 'key_doesnotexist', ...args])).toMatch(/No key with id "key_doesnotexist"/);
    }
    expect(await listed('bad-limits')).toEqual(before);
  }, 60_000);

  it('refuses a key pasted where the key id belongs, without echoing it', async () => {
    const key = generateKey();
    const message = await fails(2, ['keys', 'limits', key, '--rate-limit', '10/s']);
    expect(message).toMatch(/argument 3 looks like an API key \(not shown\)/);
    expect(message).not.toContain(key);
  });

  it('a missing database is not created by keys limits', async () => {
    expect(await fails(2, ['keys', 'limits', 'key_x', '--no-quota', '--db', join(dir, 'missing.db')])).toMatch(/no keyscope database at/);
  });
});

it('documents the flags in --help', async () => {
  const help = (await cli(['--help'])).stdout;
  for (const words of ['keys limits', '--rate-limit <n>/<window>', '--no-rate-limit', '--quota <n> [--refill day|month]', '--no-quota', '--remaining <n>', '100/min', '20/60s']) {
    expect(help).toContain(words);
  }
});

it('wrote no key to stderr', () => {
  for (const text of output) for (const key of keys) expect(text).not.toContain(key);
});
