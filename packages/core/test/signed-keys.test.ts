/**
 * Signed keys: JWS tokens verified with jose beside opaque keys, under the same project rule and
 * the same answers. Every forged or unusable token must get the exact 401 an unknown opaque key
 * gets; a key source that fails must get 503, never 401 and never a pass.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactEncrypt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyscope, generateKey, MemoryStore, type AuthResult, type KeyscopeEvent, type KeyscopeOptions, type SignedKeyOptions } from '../src/index.js';
import { deferred } from './helpers.js';

const ISSUER = 'https://api.example.test';
const AUDIENCE = 'example-api';
const TYP = 'keyscope+jwt';

interface Pair {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function pair(kid: string, alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function seededStore(): MemoryStore {
  const store = new MemoryStore();
  store.addProject({ id: 'proj_a', ownerId: 'usr_1', name: 'Alpha' });
  store.addProject({ id: 'proj_b', ownerId: 'usr_1', name: 'Beta' });
  store.addProject({ id: 'proj_c', ownerId: 'usr_2', name: 'Gamma' });
  return store;
}

function keyscopeWith(store: MemoryStore, signer: Pair, extra: Partial<SignedKeyOptions> = {}, options: Partial<KeyscopeOptions> = {}) {
  return createKeyscope({
    store,
    usage: false,
    ...options,
    signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: { keys: [signer.publicJwk] }, signing: { key: signer.privateKey, kid: signer.kid }, ...extra },
  });
}

const request = (key: string, projectId?: string, path = '/sites') => ({
  headers: { 'x-api-key': key, ...(projectId === undefined ? {} : { 'x-project-id': projectId }) },
  path,
});
const code = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);

/** A token signed by `signer` with every claim right, unless `claims`/`header` say otherwise. */
async function forge(signer: { privateKey: CryptoKey | Uint8Array; kid: string }, claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = { iss: ISSUER, aud: AUDIENCE, sub: 'usr_1', jti: 'key_forged', lvl: 'user', name: 'forged', iat: now, exp: now + 3600, ...claims };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: TYP, kid: signer.kid, ...header } as never).sign(signer.privateKey);
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('signed keys', () => {
  let signer: Pair;
  let store: MemoryStore;
  let ks: ReturnType<typeof keyscopeWith>;
  let user: { key: string; record: { id: string } };
  let project: { key: string; record: { id: string } };
  let opaqueUnknown: AuthResult;

  beforeAll(async () => {
    signer = await pair('k1');
    store = seededStore();
    ks = keyscopeWith(store, signer);
    user = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'edge', level: 'user', expiresIn: 3_600_000 });
    project = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'edge project', level: 'project', projectId: 'proj_a', expiresIn: 3_600_000 });
    opaqueUnknown = await ks.authenticate(request(generateKey()));
  });
  afterAll(() => ks.close());

  it('issues a compact JWS with its own typ, kid, and a record without the token', async () => {
    const [header, payload, signature] = user.key.split('.');
    expect(signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toEqual({ alg: 'EdDSA', kid: 'k1', typ: TYP });
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    expect(claims).toMatchObject({ iss: ISSUER, aud: AUDIENCE, sub: 'usr_1', jti: user.record.id, lvl: 'user', name: 'edge' });
    expect(claims.exp - claims.iat).toBe(3600);
    const listed = await ks.keys.get(user.record.id);
    expect(listed).toMatchObject({ kind: 'signed', level: 'user', ownerId: 'usr_1', status: 'expiring', expiresAt: new Date(claims.exp * 1000) });
    expect(JSON.stringify(await ks.keys.list('usr_1'))).not.toContain(user.key);
  });

  it('follows the same project rule as opaque keys', async () => {
    expect(await ks.authenticate(request(user.key, 'proj_b'))).toEqual({
      ok: true,
      auth: { keyId: user.record.id, keyName: 'edge', ownerId: 'usr_1', level: 'user', projectId: 'proj_b' },
    });
    expect(code(await ks.authenticate(request(user.key)))).toBe('project_required');
    expect(code(await ks.authenticate(request(user.key, undefined, '/validate')))).toBe('ok');
    expect(code(await ks.authenticate(request(user.key, 'proj_c')))).toBe('project_forbidden');
    expect(await ks.authenticate(request(project.key))).toMatchObject({ ok: true, auth: { level: 'project', projectId: 'proj_a' } });
    expect(code(await ks.authenticate(request(project.key, 'proj_b')))).toBe('project_forbidden');
  });

  it('accepts opaque keys on the same instance', async () => {
    const opaque = await ks.keys.create({ ownerId: 'usr_1', name: 'opaque', level: 'user' });
    expect(code(await ks.authenticate(request(opaque.key, 'proj_a')))).toBe('ok');
  });

  it('signs with ES256 too', async () => {
    const es = await pair('es1', 'ES256');
    const esKs = createKeyscope({
      store: seededStore(),
      usage: false,
      signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: { keys: [es.publicJwk] }, signing: { key: es.privateKey, kid: 'es1', alg: 'ES256' } },
    });
    const { key } = await esKs.keys.createSigned({ ownerId: 'usr_1', name: 'es', level: 'user', expiresIn: 60_000 });
    expect(JSON.parse(Buffer.from(key.split('.')[0]!, 'base64url').toString()).alg).toBe('ES256');
    expect(code(await esKs.authenticate(request(key, 'proj_a')))).toBe('ok');
    // An instance that pins EdDSA only refuses it, even when its key lookup hands over the P-256 key.
    const { importJWK } = await import('jose');
    const esPublic = await importJWK(es.publicJwk, 'ES256');
    const edOnly = createKeyscope({ store: seededStore(), usage: false, signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: async () => esPublic, algorithms: ['EdDSA'] } });
    expect(code(await edOnly.authenticate(request(key, 'proj_a')))).toBe('invalid_api_key');
  });

  describe('every one of these is the exact 401 of an unknown opaque key', () => {
    const cases: Array<[string, () => Promise<string>]> = [
      ['alg: none (no signature)', async () => `${b64({ alg: 'none', typ: TYP, kid: 'k1' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'usr_1', jti: 'key_x', lvl: 'user', name: 'x', exp: 9e9 })}.`],
      ['alg: none with a signature part', async () => `${b64({ alg: 'none', typ: TYP, kid: 'k1' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'usr_1', jti: 'key_x', lvl: 'user', name: 'x', exp: 9e9 })}.AAAA`],
      ['HS256 signed with the public key (algorithm confusion)', async () => forge({ privateKey: new TextEncoder().encode(JSON.stringify(signer.publicJwk)), kid: 'k1' }, {}, { alg: 'HS256' })],
      ['HS256 signed with the raw public key bytes', async () => forge({ privateKey: Buffer.from(signer.publicJwk.x!, 'base64url'), kid: 'k1' }, {}, { alg: 'HS256' })],
      ['a wrong typ', async () => forge(signer, {}, { typ: 'JWT' })],
      ['no typ', async () => forge(signer, {}, { typ: undefined })],
      ['a wrong iss', async () => forge(signer, { iss: 'https://evil.test' })],
      ['a wrong aud', async () => forge(signer, { aud: 'another-api' })],
      ['no exp', async () => forge(signer, { exp: undefined })],
      ['an exp in the past', async () => forge(signer, { exp: Math.floor(Date.now() / 1000) - 60 })],
      ['an nbf in the future', async () => forge(signer, { nbf: Math.floor(Date.now() / 1000) + 600 })],
      ['an unknown kid', async () => forge({ ...(await pair('k-unknown')) })],
      ['a known kid, signed by another key', async () => forge({ privateKey: (await pair('k1')).privateKey, kid: 'k1' })],
      ['a tampered payload', async () => {
        const [header, , signature] = user.key.split('.');
        const claims = JSON.parse(Buffer.from(user.key.split('.')[1]!, 'base64url').toString());
        return `${header}.${b64({ ...claims, sub: 'usr_2' })}.${signature}`;
      }],
      ['a JWE instead of a JWS', async () => {
        const { publicKey } = await generateKeyPair('ECDH-ES', { extractable: true });
        return new CompactEncrypt(new TextEncoder().encode(JSON.stringify({ sub: 'usr_1' }))).setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', typ: TYP, kid: 'k1' }).encrypt(publicKey);
      }],
      ['a 16 KiB token', async () => `eyJ${'a'.repeat(8 * 1024)}.eyJ${'b'.repeat(8 * 1024)}.${'c'.repeat(86)}`],
      ['claims that describe no key (bad level)', async () => forge(signer, { lvl: 'admin' })],
      ['a user-level token naming a project', async () => forge(signer, { pid: 'proj_a' })],
      ['a project-level token without a project', async () => forge(signer, { lvl: 'project' })],
    ];

    it.each(cases)('%s', async (_name, make) => {
      const token = await make();
      const result = await ks.authenticate(request(token, 'proj_a'));
      expect(result).toEqual(opaqueUnknown);
      expect(result.ok ? '' : result.error.text).toBe(opaqueUnknown.ok ? 'no' : opaqueUnknown.error.text);
    });
  });

  it('refuses a revoked key from the next request on, on this instance and on a second one', async () => {
    const other = keyscopeWith(store, signer);
    const key = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'to revoke', level: 'user', expiresIn: 3_600_000 });
    expect(code(await ks.authenticate(request(key.key, 'proj_a')))).toBe('ok');
    expect(code(await other.authenticate(request(key.key, 'proj_a')))).toBe('ok');
    await ks.keys.revoke(key.record.id);
    expect(await ks.authenticate(request(key.key, 'proj_a'))).toEqual(opaqueUnknown);
    expect(await other.authenticate(request(key.key, 'proj_a'))).toEqual(opaqueUnknown);
    expect(await store.listKeyDenials(new Date())).toContainEqual(expect.objectContaining({ keyId: key.record.id }));
    // Others are untouched.
    expect(code(await other.authenticate(request(user.key, 'proj_a')))).toBe('ok');
    await other.close();
  });

  it('rotates: the new key works at once, the old one until the grace period ends', async () => {
    let clock = Date.now();
    const rotating = keyscopeWith(seededStore(), signer, {}, { now: () => clock });
    const old = await rotating.keys.createSigned({ ownerId: 'usr_1', name: 'rotating', level: 'project', projectId: 'proj_b', expiresIn: 86_400_000 });
    const next = await rotating.keys.rotate(old.record.id, { gracePeriodMs: 60_000 });
    expect(next.record).toMatchObject({ kind: 'signed', name: 'rotating', level: 'project', projectId: 'proj_b' });
    expect(code(await rotating.authenticate(request(next.key)))).toBe('ok');
    expect(code(await rotating.authenticate(request(old.key)))).toBe('ok');
    clock += 61_000;
    expect(code(await rotating.authenticate(request(old.key)))).toBe('invalid_api_key');
    expect(code(await rotating.authenticate(request(next.key)))).toBe('ok');
  });

  it('keeps a verified token: a warm signed key runs no verification and no store read', async () => {
    let lookups = 0;
    const local = { keys: [signer.publicJwk] };
    const { createLocalJWKSet } = await import('jose');
    const set = createLocalJWKSet(local);
    const counting = createKeyscope({
      store,
      usage: false,
      signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: (header, token) => (lookups++, set(header, token)) },
    });
    let reads = 0;
    const find = store.findKeyByHash.bind(store);
    store.findKeyByHash = (hash) => (reads++, find(hash));
    try {
      for (let i = 0; i < 5; i++) expect(code(await counting.authenticate(request(user.key, 'proj_a')))).toBe('ok');
      expect(lookups).toBe(1);
      expect(reads).toBe(0);
      // Five concurrent first requests with another token: one verification.
      const fresh = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'fresh', level: 'user', expiresIn: 60_000 });
      const results = await Promise.all(Array.from({ length: 5 }, () => counting.authenticate(request(fresh.key, 'proj_a'))));
      expect(results.map(code)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
      expect(lookups).toBe(2);
    } finally {
      store.findKeyByHash = find;
    }
  });

  it('never answers from the cache for a token that only shares a cached token\'s signature', async () => {
    expect(code(await ks.authenticate(request(user.key, 'proj_a')))).toBe('ok');
    const [header, payload, signature] = user.key.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const otherHeader = b64({ ...JSON.parse(Buffer.from(header, 'base64url').toString()), kid: 'k1 ' });
    for (const forged of [`${otherHeader}.${payload}.${signature}`, `${header}.${b64({ ...claims, name: 'renamed' })}.${signature}`, `${header}.${b64({ ...claims, sub: 'usr_2' })}.${signature}`]) {
      expect(await ks.authenticate(request(forged, 'proj_a'))).toEqual(opaqueUnknown);
      // And a refused look-alike cached as refused does not refuse the real token.
      expect(code(await ks.authenticate(request(user.key, 'proj_a')))).toBe('ok');
    }
  });

  it('never shares a verification in flight with a token that only shares its signature', async () => {
    const fresh = keyscopeWith(seededStore(), signer);
    const key = await fresh.keys.createSigned({ ownerId: 'usr_1', name: 'concurrent', level: 'user', expiresIn: 60_000 });
    const [header, payload, signature] = key.key.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = `${header}.${b64({ ...claims, sub: 'usr_2' })}.${signature}`;
    const [real, fake, fakeFirst] = await Promise.all([
      fresh.authenticate(request(key.key, 'proj_a')),
      fresh.authenticate(request(forged, 'proj_c')),
      fresh.authenticate(request(forged, 'proj_c')),
    ]);
    expect(code(real)).toBe('ok');
    expect(code(fake)).toBe('invalid_api_key');
    expect(code(fakeFirst)).toBe('invalid_api_key');
    // In the other order too: the forged token first, then the real one while it is verified.
    const again = keyscopeWith(seededStore(), signer);
    const results = await Promise.all([again.authenticate(request(forged, 'proj_c')), again.authenticate(request(key.key, 'proj_a'))]);
    expect(results.map(code)).toEqual(['invalid_api_key', 'ok']);
  });

  it('caches a verified token no longer than its exp', async () => {
    let clock = Date.now();
    const short = keyscopeWith(seededStore(), signer, {}, { now: () => clock, cache: { ttlMs: 600_000 } });
    const key = await short.keys.createSigned({ ownerId: 'usr_1', name: 'short', level: 'user', expiresIn: 10_000 });
    expect(code(await short.authenticate(request(key.key, 'proj_a')))).toBe('ok');
    clock += 11_000;
    expect(code(await short.authenticate(request(key.key, 'proj_a')))).toBe('invalid_api_key');
  });

  describe('a key source or deny-list that fails is a 503, never a 401 and never a pass', () => {
    it('a lookup function that throws', async () => {
      const events: KeyscopeEvent[] = [];
      const failing = createKeyscope({
        store,
        usage: false,
        onEvent: (e) => events.push(e),
        signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: () => Promise.reject(new Error('key service down')) },
      });
      expect(await failing.authenticate(request(user.key, 'proj_a'))).toMatchObject({ ok: false, error: { code: 'auth_unavailable', status: 503 } });
      expect(events).toContainEqual(expect.objectContaining({ type: 'store_error', operation: 'verifySignedKey' }));
      expect(JSON.stringify(events.map((e) => ({ ...e, error: String((e as { error?: unknown }).error) })))).not.toContain(user.key);
    });

    it('a remote JWKS that cannot be reached', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const { port } = closed.address() as AddressInfo;
      await new Promise((resolve) => closed.close(resolve));
      const unreachable = createKeyscope({ store, usage: false, signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: `http://127.0.0.1:${port}/jwks.json` } });
      expect(code(await unreachable.authenticate(request(user.key, 'proj_a')))).toBe('auth_unavailable');
    });

    it('a deny-list the store cannot load', async () => {
      const down = seededStore();
      const events: KeyscopeEvent[] = [];
      const failing = keyscopeWith(down, signer, {}, { onEvent: (e) => events.push(e) });
      down.listKeyDenials = () => Promise.reject(new Error('store unreachable'));
      expect(code(await failing.authenticate(request(user.key, 'proj_a')))).toBe('auth_unavailable');
      expect(events).toContainEqual(expect.objectContaining({ type: 'store_error', operation: 'listKeyDenials' }));
    });
  });

  it('refuses bad configuration at setup', async () => {
    const base = { issuer: ISSUER, audience: AUDIENCE, keys: { keys: [signer.publicJwk] } };
    const make = (signedKeys: unknown, s: object = store) => () => createKeyscope({ store: s as MemoryStore, signedKeys: signedKeys as SignedKeyOptions });
    expect(make({ ...base, issuer: '' })).toThrow(/issuer/);
    expect(make({ ...base, algorithms: ['HS256'] })).toThrow(/algorithms/);
    expect(make({ ...base, algorithms: [] })).toThrow(/algorithms/);
    expect(make({ ...base, keys: { keys: [{ ...(await exportJWK(signer.privateKey)), kid: 'k1' }] } })).toThrow(/private or secret key/);
    expect(make({ ...base, keys: { keys: [{ ...signer.publicJwk, kid: undefined }] } })).toThrow(/kid/);
    expect(make({ ...base, keys: 'http://keys.example.com/jwks.json' })).toThrow(/https/);
    expect(make({ ...base, keys: 'not a url' })).toThrow(/JWK set/);
    expect(make({ ...base, signing: { key: signer.publicJwk, kid: 'k1' } })).toThrow(/private/);
    expect(make({ ...base, maxLength: 10 })).toThrow(RangeError);
    expect(make({ ...base, algorithms: 'EdDSA' })).toThrow(/algorithms/);
    expect(make({ ...base, signing: { key: signer.privateKey, kid: 'not-in-the-set' } })).toThrow(/signing\.kid "not-in-the-set" is not in/);
    expect(make(base, { findKeyByHash: store.findKeyByHash, ownsProject: store.ownsProject, listProjects: store.listProjects })).toThrow(/listKeyDenials/);
    expect(make({ ...base, keys: 'https://keys.example.com/jwks.json' })).not.toThrow();
  });

  it('refuses bad input to createSigned, and signing without a signing key', async () => {
    const err = (promise: Promise<unknown>) => promise.then(() => 'resolved', (e: { code?: string; message: string }) => `${e.code}: ${e.message}`);
    expect(await err(ks.keys.createSigned({ ownerId: 'usr_1', name: 'x', level: 'user' } as never))).toMatch(/invalid_argument: expiresIn/);
    expect(await err(ks.keys.createSigned({ ownerId: 'usr_1', name: 'x', level: 'user', expiresIn: 10 }))).toMatch(/at least 1000/);
    expect(await err(ks.keys.createSigned({ ownerId: 'usr_1', name: 'x', level: 'project', projectId: 'proj_c', expiresIn: 60_000 }))).toMatch(/not a project of owner/);
    expect(await err(ks.keys.createSigned(null as never))).toMatch(/must be an object/);
    const verifyOnly = createKeyscope({ store, signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: { keys: [signer.publicJwk] } } });
    expect(await err(verifyOnly.keys.createSigned({ ownerId: 'usr_1', name: 'x', level: 'user', expiresIn: 60_000 }))).toMatch(/invalid_argument: issuing a signed key needs signedKeys with signing/);
    const opaqueOnly = createKeyscope({ store });
    expect(await err(opaqueOnly.keys.createSigned({ ownerId: 'usr_1', name: 'x', level: 'user', expiresIn: 60_000 }))).toMatch(/invalid_argument: issuing a signed key needs signedKeys/);
    // Revoking a signed key needs no signing key: the deny-list is in the store.
    const key = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'revoked elsewhere', level: 'user', expiresIn: 60_000 });
    await verifyOnly.keys.revoke(key.record.id);
    expect(code(await ks.authenticate(request(key.key, 'proj_a')))).toBe('invalid_api_key');
  });
});

describe('a remote JWKS, rotated mid-test', () => {
  let server: Server;
  let served: JWK[] = [];
  let fetches = 0;
  let url: string;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: served }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('accepts the new kid at once, the old one until it is removed, then refuses it', async () => {
    const oldKey = await pair('2026-old');
    const newKey = await pair('2026-new');
    served = [oldKey.publicJwk];
    const store = seededStore();
    // No verified-token cache, and a short JWKS cache: every request asks the key set.
    const ks = createKeyscope({
      store,
      usage: false,
      cache: { ttlMs: 0, negativeTtlMs: 0 },
      signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: url, remote: { cooldownMs: 0, cacheMaxAgeMs: 100 } },
    });
    const oldToken = await forge(oldKey, { jti: 'key_old' });
    const newToken = await forge(newKey, { jti: 'key_new' });
    expect(code(await ks.authenticate(request(oldToken, 'proj_a')))).toBe('ok');
    expect(code(await ks.authenticate(request(newToken, 'proj_a')))).toBe('invalid_api_key');

    served = [oldKey.publicJwk, newKey.publicJwk];
    const before = fetches;
    // An unknown kid makes jose fetch the set again (no cooldown here).
    expect(code(await ks.authenticate(request(newToken, 'proj_a')))).toBe('ok');
    expect(fetches).toBeGreaterThan(before);
    expect(code(await ks.authenticate(request(oldToken, 'proj_a')))).toBe('ok');

    served = [newKey.publicJwk];
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(code(await ks.authenticate(request(oldToken, 'proj_a')))).toBe('invalid_api_key');
    expect(code(await ks.authenticate(request(newToken, 'proj_a')))).toBe('ok');
  });
});

describe('signed keys: a decision waiting on the deny-list', () => {
  it('sees the request as it arrived, whatever changes while the deny-list loads', async () => {
    const store = seededStore();
    const ks = keyscopeWith(store, await pair('k-arrived'));
    const { key, record } = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'arrived', level: 'user', expiresIn: 3_600_000 });
    let path = '/sites';
    const input = { headers: { 'x-api-key': key }, path: () => path };
    expect(code(await ks.authenticate(input))).toBe('project_required');
    // A change somewhere: the deny-list is reloaded before the next decision, which waits for it.
    ks.invalidate(record.id);
    const load = deferred();
    const list = store.listKeyDenials.bind(store);
    store.listKeyDenials = async (at) => {
      await load.promise;
      return list(at);
    };
    const pending = ks.check(input);
    expect('then' in pending).toBe(true);
    path = '/validate';
    load.resolve();
    expect(code(await pending)).toBe('project_required');
    await ks.close();
  });
});

