/**
 * Was a hole: resolveSignedOptions only checks that each local JWK has a kty and a kid and no `d`.
 * An entry jose can never import (a wrong-length `x`, key_ops that a public key cannot have)
 * is accepted at setup; then any unauthenticated token naming its kid (no valid signature
 * needed: the import runs before the signature check) gets 503 + store_error instead of the
 * 401 of an unknown key: a remote 503 oracle/alarm trigger, and bad configuration found at
 * request time, not at setup (DESIGN: "Bad configuration throws TypeError/RangeError at setup").
 * Entries that jose silently never matches (use: 'enc', an alg other than the token's, a
 * secret `oct` key) are accepted at setup too, so every real token of that kid is a 401.
 */
import { describe, expect, it } from 'vitest';
import { createKeyscope, type KeyscopeEvent, type SignedKeyOptions } from '../../packages/core/src/index.js';
import { AUDIENCE, forge, ISSUER, opaqueUnknownOf, pair, request, seededStore } from './helpers.js';

describe('local JWK set entries are checked at setup', () => {
  it('an entry jose cannot import: setup throws, or a token naming it is the plain 401', async () => {
    const good = await pair('k1');
    const attacker = await pair('x');
    const broken = { kty: 'OKP', crv: 'Ed25519', x: 'AAAA', kid: 'broken' };
    const events: KeyscopeEvent[] = [];
    let ks: ReturnType<typeof createKeyscope>;
    try {
      ks = createKeyscope({ store: seededStore(), usage: false, onEvent: (e) => events.push(e), signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: { keys: [good.publicJwk, broken] } } });
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError); // refused at setup: fine
      return;
    }
    const unknown = await opaqueUnknownOf(ks);
    const result = await ks.authenticate(request(await forge(attacker, {}, { kid: 'broken' }), 'proj_a'));
    expect(result).toEqual(unknown);
    expect(events.filter((e) => e.type === 'store_error')).toEqual([]);
  });

  const unusable: Array<[string, (jwk: Record<string, unknown>) => Record<string, unknown>]> = [
    ["use: 'enc'", (jwk) => ({ ...jwk, use: 'enc' })],
    ["alg: 'ES256' on an Ed25519 key", (jwk) => ({ ...jwk, alg: 'ES256' })],
    ["alg: 'Ed25519' (the fully-specified name)", (jwk) => ({ ...jwk, alg: 'Ed25519' })],
    ["key_ops: ['sign'] on a public key", (jwk) => ({ ...jwk, use: undefined, key_ops: ['sign'] })],
  ];
  it.each(unusable)('an entry that can never verify (%s) is refused at setup', async (_name, change) => {
    const signer = await pair('k1');
    const make = () => createKeyscope({ store: seededStore(), signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: { keys: [change({ ...signer.publicJwk })] } } as SignedKeyOptions });
    expect(make).toThrow(TypeError);
  });

  it('a secret (oct) key in the public set is refused at setup, like a private key', () => {
    const make = () => createKeyscope({ store: seededStore(), signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: { keys: [{ kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0', kid: 'hmac' }] } } });
    expect(make).toThrow(TypeError);
  });
});
