/**
 * Was a hole: with `keys` as a key lookup function, any unauthenticated garbage token makes the
 * verification throw a plain TypeError inside jose (after the lookup returned), which signed.ts
 * classifies as "key source failing": 503 + a store_error event, never counted by the throttle,
 * never negatively cached. The same token with an opaque shape is a 401.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeyscope, type AuthResult, type KeyscopeEvent } from '../../packages/core/src/index.js';
import { AUDIENCE, code, forge, goodClaims, ISSUER, opaqueUnknownOf, pair, rawSign, request, seededStore, TYP, type Pair } from './helpers.js';

describe('a key lookup function: forged tokens must be 401, not 503', () => {
  let ed: Pair;
  let es: Pair;
  let attacker: Pair;
  beforeAll(async () => {
    ed = await pair('k1');
    es = await pair('es1', 'ES256');
    attacker = await pair('whatever');
  });

  // The lookup most apps write: a map from kid to the public CryptoKey.
  function build(events: KeyscopeEvent[] = [], extra: object = {}) {
    const byKid = new Map([
      ['k1', ed.publicKey],
      ['es1', es.publicKey],
    ]);
    return createKeyscope({
      store: seededStore(),
      usage: false,
      onEvent: (e) => events.push(e),
      ...extra,
      signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: async (header) => byKid.get(header.kid!) as never },
    });
  }

  it('sanity: a good token works', async () => {
    const ks = build();
    expect(code(await ks.authenticate(request(await forge(ed), 'proj_a')))).toBe('ok');
  });

  const cases: Array<[string, () => Promise<string>]> = [
    ['an unknown kid (lookup returns undefined)', () => forge(attacker, {}, { kid: 'nope' })],
    ['alg ES256 naming an EdDSA kid (key/alg mismatch)', () => rawSign(es.privateKey, { alg: 'ES256', typ: TYP, kid: 'k1' }, goodClaims(), 'ES256')],
    ['alg EdDSA naming an ES256 kid (key/alg mismatch)', () => forge(attacker, {}, { kid: 'es1' })],
    ['no kid at all', () => forge(attacker, {}, { kid: undefined })],
  ];

  it.each(cases)('%s: the exact 401 of an unknown opaque key, no store_error event', async (_name, make) => {
    const events: KeyscopeEvent[] = [];
    const ks = build(events);
    const unknown: AuthResult = await opaqueUnknownOf(ks);
    events.length = 0;
    const result = await ks.authenticate(request(await make(), 'proj_a'));
    expect(result).toEqual(unknown);
    expect(events.filter((e) => e.type === 'store_error')).toEqual([]);
  });

  it('the failed-attempt throttle counts such tokens (an attacker is not let to spray unthrottled)', async () => {
    const ks = build([], { throttle: { maxFailures: 3, windowMs: 60_000 } });
    const results: string[] = [];
    for (let i = 0; i < 6; i++) {
      const token = await forge(attacker, { jti: `key_${i}` }, { kid: `spray-${i}` });
      results.push(code(await ks.authenticate({ ...request(token, 'proj_a'), clientIp: '203.0.113.9' })));
    }
    expect(results).toContain('too_many_attempts');
  });
});
