import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKey } from '@keyscope/core';
import { main, redact } from '../../packages/cli/src/index.js';

/** Run main() in-process with captured output. */
async function run(argv: string[], options: { env?: Record<string, string>; stdin?: string } = {}) {
  let stdout = '';
  let stderr = '';
  const stdin = options.stdin === undefined ? undefined : (async function* () { yield options.stdin!; })();
  const code = await main(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    ...(stdin ? { stdin } : {}),
    env: options.env ?? {},
    // Not the repository: a keyscope.config.* there would be loaded.
    cwd: tmpdir(),
  });
  return { code, stdout, stderr };
}

describe('main(argv, io) in-process', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keyscope-main-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates and verifies a key through the injected streams and environment', async () => {
    const env = { KEYSCOPE_DB: join(dir, 'k.db') };
    const created = await run(['keys', 'create', '--owner', 'u1', '--name', 'inproc', '--level', 'user', '--json'], { env });
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const { key } = JSON.parse(created.stdout);
    expect(await run(['keys', 'verify', '--json'], { env, stdin: `${key}\n` })).toMatchObject({ code: 0, stdout: expect.stringContaining('"ok": true') });
    expect(await run(['keys', 'verify'], { env: { ...env, KEYSCOPE_API_KEY: generateKey() } })).toMatchObject({ code: 1, stdout: expect.stringMatching(/^401 invalid_api_key/) });
    expect(await run(['keys', 'verify'], { env })).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(/no key to verify/) });
  });

  it('refuses a key pasted where an id belongs, without echoing it', async () => {
    const key = generateKey();
    const result = await run(['keys', 'revoke', key, '--db', ':memory:']);
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).not.toContain(key);
    expect(result.stderr).toMatch(/^keyscope: argument 3 looks like an API key \(not shown\)/);
  });
});

describe('redact', () => {
  it('hides keys of any prefix, mistyped ones too, and leaves key ids and other words alone', () => {
    const key = generateKey();
    const custom = generateKey('acme2');
    const typo = `${key.slice(0, -1)}${key.endsWith('x') ? 'y' : 'x'}`;
    expect(redact(`id "${key}", ${custom}; ${typo}.`)).toBe('id "[redacted key]", [redacted key]; [redacted key].');
    const id = 'key_8kQ2abcdefghijklmnop';
    expect(redact(`${id} proj_0123456789abcdef ks_4fQ9… user_1 2030-01-31T12:00:00Z`)).toBe(`${id} proj_0123456789abcdef ks_4fQ9… user_1 2030-01-31T12:00:00Z`);
  });

  // A key minus its last characters is the key: the tail is a checksum of the rest.
  const variants = (key: string, prefix: string) => {
    const body = key.slice(prefix.length + 1);
    return [
      ['the whole key', key],
      ...[1, 2, 3, 4, 5, 6].map((n) => [`the key minus ${n}`, key.slice(0, -n)]),
      ...[1, 3, 20].map((n) => [`the key plus ${n}`, key + 'Zq9'.repeat(7).slice(0, n)]),
      ['the key inside a word', `owner=x${key}y`],
      ['the key after a letter run', `ABC${key}`],
      ['the body without its prefix', body],
      ['the body minus 6 without its prefix', body.slice(0, -6)],
    ] as [string, string][];
  };
  for (const prefix of ['ks', 'acme2', 'a', 'abcdefghijklmnop']) {
    it.each(variants(generateKey(prefix), prefix))(`redacts %s (prefix ${prefix})`, (_case, text) => {
      const key = text;
      const out = redact(`before ${key} after`);
      expect(out).toMatch(/^before .*\[redacted key\].* after$/);
      // Nothing of the secret part survives.
      const secret = key.replace(/^.*?_/, '').replace(/[^0-9A-Za-z].*$/, '');
      expect(out).not.toContain(secret.slice(0, 12));
    });
  }
});

describe('redaction of signed keys (JWS)', () => {
  // A real-looking token: header, claims and an 86-character signature with '-' and '_' in it.
  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signature = 'Ab-cD_efGh'.repeat(8) + 'Zz_9-Q';
  const token = `${b64({ alg: 'EdDSA', kid: 'k1', typ: 'keyscope+jwt' })}.${b64({ sub: 'usr_1', jti: 'key_x', lvl: 'user', exp: 2e9 })}.${signature}`;
  it.each([
    ['the whole token', token],
    ['the token minus its last 10', token.slice(0, -10)],
    ['header and claims only', token.slice(0, token.lastIndexOf('.'))],
    ['the signature alone', signature],
    ['the token inside a word', `id=${token};`],
  ])('redacts %s', (_case, text) => {
    const out = redact(`before ${text} after`);
    expect(out).toMatch(/^before .*\[redacted key\].* after$/);
    expect(out).not.toContain(signature.slice(0, 12));
    expect(out).not.toContain(token.slice(0, 20));
  });
  it('leaves ids, UUIDs and hex alone', () => {
    const plain = 'key_8kQ2abcdefghijABCDEFGH 3f2a9c1e-0b7d-4e8a-9c3f-2a1b0c9d8e7f ' + 'ab12'.repeat(16);
    expect(redact(plain)).toBe(plain);
  });
});

describe('arguments that look like key material are refused, never echoed', () => {
  const key = generateKey();
  const custom = generateKey('acme2');
  const cases: [string, string][] = [
    ['a key', key],
    ['a key minus 1', key.slice(0, -1)],
    ['a key minus 6', key.slice(0, -6)],
    ['a key plus 2', `${key}ab`],
    ['a custom-prefix key minus 3', custom.slice(0, -3)],
  ];
  it.each(cases)('keys list --owner <%s> exits 2 with neither stream carrying it', async (_case, value) => {
    const dir = mkdtempSync(join(tmpdir(), 'keyscope-main-'));
    try {
      const db = join(dir, 'k.db');
      expect((await run(['projects', 'add', '--owner', 'u1', '--name', 'A', '--db', db])).code).toBe(0);
      for (const argv of [
        ['keys', 'list', '--owner', value, '--db', db],
        ['keys', 'list', `--owner=${value}`, '--db', db],
        ['projects', 'list', '--owner', value, '--db', db],
        ['projects', 'add', '--owner', 'u1', '--name', value, '--db', db],
        ['keys', 'create', '--owner', 'u1', '--name', 'k', '--level', 'user', '--project', value, '--db', db],
        ['keys', 'usage', value, '--db', db],
        ['keys', 'rotate', value, '--db', db],
        [value, '--db', db],
      ]) {
        const result = await run(argv);
        expect(result.code).toBe(2);
        expect(result.stdout).toBe('');
        expect(result.stderr).toMatch(/looks like an API key/);
        for (const piece of [value, value.slice(3, 20), value.slice(-12)]) {
          expect(result.stdout + result.stderr).not.toContain(piece);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dates and durations', () => {
  let dir: string;
  let db: string;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyscope-main-'));
    db = join(dir, 'k.db');
    expect((await run(['projects', 'add', '--owner', 'u1', '--name', 'A', '--db', db])).code).toBe(0);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const count = async () => JSON.parse((await run(['keys', 'list', '--owner', 'u1', '--json', '--db', db])).stdout).length;

  it.each([
    '2030-02-31',
    '2030-02-30',
    '2030-02-29',
    '2100-02-29',
    '2030-04-31',
    '2030-06-31',
    '2030-09-31',
    '2030-11-31',
    '2030-01-32',
    '2030-01-00',
    '2030-00-10',
    '2030-13-01',
    '2030-01-31T25:00Z',
    '2030-01-31T24:00Z',
    '2030-01-31T24:00:00Z',
    '2030-01-31T12:60Z',
    '2030-01-31T12:00:60Z',
    '2030-01-31T12:00:00+24:00',
    '2030-01-31T12:00:00+02:60',
    '2030-02-31T12:00:00Z',
    '2030-01-31T12:00',
    '2030-1-31',
    '+002030-01-31',
  ])('--expires-at %s is refused with exit 2 and creates nothing', async (value) => {
    const result = await run(['keys', 'create', '--owner', 'u1', '--name', 'k', '--level', 'user', '--expires-at', value, '--db', db]);
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(/--expires-at/);
    expect(await count()).toBe(0);
  });

  it.each([
    ['2032-02-29', '2032-02-29T00:00:00.000Z'],
    ['2400-02-29', '2400-02-29T00:00:00.000Z'],
    ['2030-12-31T23:59:59.999Z', '2030-12-31T23:59:59.999Z'],
    ['2030-01-31T12:00:00.5Z', '2030-01-31T12:00:00.500Z'],
    ['2030-03-01T01:30:00+02:00', '2030-02-28T23:30:00.000Z'],
    ['2030-01-31T12:00-09:30', '2030-01-31T21:30:00.000Z'],
  ])('--expires-at %s is the instant %s', async (value, iso) => {
    const result = await run(['keys', 'create', '--owner', 'u1', '--name', 'k', '--level', 'user', '--expires-at', value, '--json', '--db', db]);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout).record.expiresAt).toBe(iso);
  });

  it('refuses durations that end past the last representable date, for --expires-in and --grace', async () => {
    for (const value of ['100000000d', '999999999d']) {
      const created = await run(['keys', 'create', '--owner', 'u1', '--name', 'k', '--level', 'user', '--expires-in', value, '--db', db]);
      expect(created).toMatchObject({ code: 2, stdout: '' });
      expect(created.stderr).toMatch(/--expires-in .*too far/);
    }
    expect(await count()).toBe(0);
    const { record } = JSON.parse((await run(['keys', 'create', '--owner', 'u1', '--name', 'k', '--level', 'user', '--json', '--db', db])).stdout);
    for (const value of ['100000000d', '999999999d']) {
      const rotated = await run(['keys', 'rotate', record.id, '--grace', value, '--db', db]);
      expect(rotated).toMatchObject({ code: 2, stdout: '' });
      expect(rotated.stderr).toMatch(/--grace .*too far/);
    }
    // The old key was not rotated: still the only key, active, without an expiry.
    const listed = JSON.parse((await run(['keys', 'list', '--owner', 'u1', '--json', '--db', db])).stdout);
    expect(listed).toEqual([expect.objectContaining({ id: record.id, status: 'active', expiresAt: null, revokedAt: null })]);
    // The longest grace that still has a date works, and says until when.
    const long = await run(['keys', 'rotate', record.id, '--grace', '999999999h', '--db', db]);
    expect(long.code).toBe(0);
    expect(long.stdout).toMatch(/keeps working until \+?\d{5,6}-/);
  });
});

describe('projects add, concurrently', () => {
  it('never re-owns a project: of two adds of one id, one exits 2 with "already exists"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyscope-main-'));
    try {
      const db = join(dir, 'k.db');
      for (const id of ['proj_r1', 'proj_r2', 'proj_r3']) {
        const results = await Promise.all(
          ['alice', 'mallory'].map((owner) => run(['projects', 'add', '--owner', owner, '--name', 'Race', '--id', id, '--json', '--db', db])),
        );
        expect(results.map((r) => r.code).sort()).toEqual([0, 2]);
        const winner = JSON.parse(results.find((r) => r.code === 0)!.stdout).ownerId;
        expect(results.find((r) => r.code === 2)!.stderr).toMatch(new RegExp(`project ${id} already exists`));
        const owners = await Promise.all(['alice', 'mallory'].map(async (owner) => JSON.parse((await run(['projects', 'list', '--owner', owner, '--json', '--db', db])).stdout).map((p: { id: string }) => p.id)));
        // Only the winner owns it.
        expect(owners[0].includes(id)).toBe(winner === 'alice');
        expect(owners[1].includes(id)).toBe(winner === 'mallory');
      }
      expect(existsSync(db)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
