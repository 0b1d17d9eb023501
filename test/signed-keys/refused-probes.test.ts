/**
 * Probes that keyscope gets RIGHT today (they pass): kept as a record of what was tried.
 */
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyscope, type AuthResult } from '../../packages/core/src/index.js';
import { AUDIENCE, b64, code, forge, goodClaims, rawSign, ISSUER, keyscopeWith, opaqueUnknownOf, pair, request, seededStore, TYP, type Pair } from './helpers.js';

describe('probes: refused as an unknown key', () => {
  let ed: Pair;
  let es: Pair;
  let enc: Pair;
  let signOnly: Pair;
  let ks: ReturnType<typeof createKeyscope>;
  let unknown: AuthResult;
  const now = Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    ed = await pair('k1');
    es = await pair('es1', 'ES256');
    enc = await pair('enc1');
    signOnly = await pair('so1');
    const store = seededStore();
    ks = createKeyscope({
      store,
      usage: false,
      signedKeys: {
        issuer: ISSUER,
        audience: AUDIENCE,
        keys: {
          // Entries with use 'enc' or key_ops ['sign'] are refused at setup (jwk-set-entries.test.ts):
          // tokens signed by those keys name kids the set does not hold.
          keys: [ed.publicJwk, es.publicJwk],
        },
      },
    });
    unknown = await opaqueUnknownOf(ks);
  });
  afterAll(() => ks.close());

  const cases: Array<[string, () => Promise<string>]> = [
    ['EdDSA token naming an ES256 kid', () => forge(ed, {}, { kid: 'es1' })],
    ['ES256 token naming an EdDSA kid', () => forge(es, {}, { alg: 'ES256', kid: 'k1' })],
    ['alg Ed25519 (not pinned)', () => forge(ed, {}, { alg: 'Ed25519' })],
    ['signed by a JWK with use=enc', () => forge(enc)],
    ['signed by a JWK with key_ops=[sign]', () => forge(signOnly)],
    ['kid as a number', () => forge(ed, {}, { kid: 1 })],
    ['kid with a trailing space', () => forge(ed, {}, { kid: 'k1 ' })],
    ['unknown crit (valid signature)', () => rawSign(ed.privateKey, { alg: 'EdDSA', typ: TYP, kid: 'k1', crit: ['exp'], exp: 1 }, goodClaims())],
    ['crit not an array (valid signature)', () => rawSign(ed.privateKey, { alg: 'EdDSA', typ: TYP, kid: 'k1', crit: 'b64', b64: true }, goodClaims())],
    ['crit [b64] with b64 true (valid signature) is fine, but b64:false is refused', async () => {
      // b64:false: the signing input is header.<payload as is>; the payload text is a base64url string so it passes the shape check.
      const header = b64({ alg: 'EdDSA', typ: TYP, kid: 'k1', b64: false, crit: ['b64'] });
      const payload = b64(goodClaims());
      const sig = await crypto.subtle.sign({ name: 'Ed25519' }, ed.privateKey as never, new TextEncoder().encode(`${header}.${payload}`));
      return `${header}.${payload}.${Buffer.from(sig).toString('base64url')}`;
    }],
    ['alg none in a validly-signed header', () => rawSign(ed.privateKey, { alg: 'none', typ: TYP, kid: 'k1' }, goodClaims())],
    ['header with duplicate alg keys (EdDSA then none)', () => rawSign(ed.privateKey, '{"alg":"EdDSA","typ":"keyscope+jwt","kid":"k1","alg":"none"}', goodClaims())],
    ['payload BOM / leading whitespace', () => rawSign(ed.privateKey, { alg: 'EdDSA', typ: TYP, kid: 'k1' }, '\ufeff' + JSON.stringify(goodClaims()))],
    ['payload invalid UTF-8', async () => {
      const header = b64({ alg: 'EdDSA', typ: TYP, kid: 'k1' });
      const payload = Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]).toString('base64url');
      const sig = await crypto.subtle.sign({ name: 'Ed25519' }, ed.privateKey as never, new TextEncoder().encode(`${header}.${payload}`));
      return `${header}.${payload}.${Buffer.from(sig).toString('base64url')}`;
    }],
    ['exp as a string', () => forge(ed, { exp: String(now + 3600) as never })],
    ['exp negative', () => forge(ed, { exp: -1 })],
    ['nbf as a string', () => forge(ed, { nbf: 'soon' as never })],
    ['iat as a string', () => forge(ed, { iat: 'now' as never })],
    ['aud array without our audience', () => forge(ed, { aud: ['other-api'] })],
    ['iss array', () => forge(ed, { iss: [ISSUER] as never })],
    ['sub with a space', () => forge(ed, { sub: 'usr 1' })],
    ['sub as a number', () => forge(ed, { sub: 1 as never })],
    ['jti missing', () => forge(ed, { jti: undefined })],
    ['name empty', () => forge(ed, { name: '' })],
    ['lvl project, pid null', () => forge(ed, { lvl: 'project', pid: null as never })],
    ['lvl user, pid null', () => forge(ed, { pid: null as never })],
    ['lvl array', () => forge(ed, { lvl: ['user'] as never })],
    ['payload is a JSON array (signed)', async () => {
      return new CompactSign(new TextEncoder().encode('[1]')).setProtectedHeader({ alg: 'EdDSA', typ: TYP, kid: 'k1' }).sign(ed.privateKey).then((t) => t);
    }],
    ['four segments', async () => `${await forge(ed)}.AAAA`],
    ['two segments', async () => (await forge(ed)).split('.').slice(0, 2).join('.')],
    ['padding in a segment', async () => `${await forge(ed)}==`],
    ['non-ASCII in the payload segment', async () => { const [h, p, s] = (await forge(ed)).split('.'); return `${h}.${p}é.${s}`; }],
    ['header+payload of a good token, empty signature', async () => { const [h, p] = (await forge(ed)).split('.'); return `${h}.${p}.`; }],
    ['typ JWT with a good signature', () => forge(ed, {}, { typ: 'JWT' })],
    ['typ "keyscope+jwt; x"', () => forge(ed, {}, { typ: 'keyscope+jwt; x' })],
    ['header with a jwk (embedded key) of an attacker', async () => {
      const evil = await generateKeyPair('EdDSA', { extractable: true });
      return forge({ privateKey: evil.privateKey, kid: 'k1' }, {}, { jwk: await exportJWK(evil.publicKey) });
    }],
    ['header with jku pointing elsewhere', async () => {
      const evil = await generateKeyPair('EdDSA');
      return forge({ privateKey: evil.privateKey, kid: 'attacker' }, {}, { jku: 'https://evil.test/jwks.json' });
    }],
  ];

  it.each(cases)('%s', async (_name, make) => {
    const token = await make();
    const result = await ks.authenticate(request(token, 'proj_a'));
    expect(result).toEqual(unknown);
  });

  it('a project claim naming another owner\'s project is 403, as for opaque keys', async () => {
    const token = await forge(ed, { lvl: 'project', pid: 'proj_c' });
    expect(code(await ks.authenticate(request(token)))).toBe('project_forbidden');
    expect(code(await ks.authenticate(request(token, 'proj_c')))).toBe('project_forbidden');
  });

  it('normalized typ (application/keyscope+jwt, KEYSCOPE+JWT) is accepted: RFC 8725 normalisation, same type', async () => {
    expect(code(await ks.authenticate(request(await forge(ed, {}, { typ: 'application/keyscope+jwt' }), 'proj_a')))).toBe('ok');
  });

  it('a 2 KiB+1 token goes the opaque way and is refused without parsing', async () => {
    const token = `eyJ${'a'.repeat(1100)}.eyJ${'b'.repeat(900)}.${'c'.repeat(86)}`;
    expect(await ks.authenticate(request(token, 'proj_a'))).toEqual(unknown);
  });
});

describe('probes: revocation paths that work', () => {
  it('revoke during the rotation grace period refuses the old token at once', async () => {
    const signer = await pair('k1');
    let clock = Date.now();
    const ks = keyscopeWith(seededStore(), signer, {}, { now: () => clock });
    const old = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'rot', level: 'user', expiresIn: 86_400_000 });
    await ks.keys.rotate(old.record.id, { gracePeriodMs: 3_600_000 });
    expect(code(await ks.authenticate(request(old.key, 'proj_a')))).toBe('ok');
    clock += 1000;
    await ks.keys.revoke(old.record.id);
    expect(code(await ks.authenticate(request(old.key, 'proj_a')))).toBe('invalid_api_key');
  });

  it('a bus change with no argument reloads the deny-list', async () => {
    const signer = await pair('k1');
    const store = seededStore();
    let hear: ((c?: unknown) => void) | undefined;
    const bus = { publish() {}, subscribe(l: (c?: unknown) => void) { hear = l; return () => {}; } };
    // An instance that does not hear the store (a different store object over the same data is modelled by unsubscribing).
    const ks = keyscopeWith(store, signer, { denyListMaxAgeMs: 3_600_000 }, { bus: bus as never });
    const key = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'b', level: 'user', expiresIn: 3_600_000 });
    expect(code(await ks.authenticate(request(key.key, 'proj_a')))).toBe('ok');
    // Deny directly in the store, bypassing this instance's own invalidation and the store listener.
    const listeners = (store as unknown as { listeners: Set<unknown> }).listeners;
    const saved = [...listeners];
    listeners.clear();
    await store.denyKey({ keyId: key.record.id, from: new Date(Date.now() - 1000), until: new Date(Date.now() + 3_600_000) });
    expect(code(await ks.authenticate(request(key.key, 'proj_a')))).toBe('ok'); // nothing heard yet: max-age bound
    hear!();
    expect(code(await ks.authenticate(request(key.key, 'proj_a')))).toBe('invalid_api_key');
    for (const l of saved) listeners.add(l);
  });
});
