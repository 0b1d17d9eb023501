/**
 * what a token with a trusted signature may still get away with.
 *  1. `exp` is required, but `"exp":1e400` parses to Infinity (and 9e15 s is ~285 million years):
 *     entryOf() only checks typeof === 'number', so a key that never expires is accepted and cached
 *     (createSigned itself caps lifetimes; a token from a remote-JWKS issuer or a bug does not).
 *  2. One token has many accepted spellings: the unused low bits of the signature's last base64url
 *     character (15 extra strings per EdDSA/ES256 token). (ES256's high-S twin is accepted: WebCrypto
 *     signs with either S, so requiring low S would refuse half of the tokens other issuers make.) Each is a
 *     distinct cache identity (one verification and one `found` entry each), and "a different string
 *     is a different key" stops holding for anything that matches keys by hash (leak scanners,
 *     findKeyByHash lookups of a reported string).
 */
import { describe, expect, it } from 'vitest';
import { createKeyscope } from '../../packages/core/src/index.js';
import { AUDIENCE, code, forge, goodClaims, ISSUER, pair, rawSign, request, seededStore, TYP } from './helpers.js';

async function setup() {
  const ed = await pair('k1');
  const es = await pair('es1', 'ES256');
  const ks = createKeyscope({ store: seededStore(), usage: false, signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: { keys: [ed.publicJwk, es.publicJwk] } } });
  return { ed, es, ks };
}

describe('claims a trusted signer should not be able to smuggle', () => {
  it.each([
    ['1e400 (Infinity)', '1e400'],
    ['9e15 seconds', '9e15'],
  ])('exp %s is refused: a signed key must expire', async (_name, literal) => {
    const { ed, ks } = await setup();
    const claims = JSON.stringify(goodClaims()).replace(/"exp":\d+/, `"exp":${literal}`);
    const token = await rawSign(ed.privateKey, { alg: 'EdDSA', typ: TYP, kid: 'k1' }, claims);
    expect(code(await ks.authenticate(request(token, 'proj_a')))).toBe('invalid_api_key');
  });
});

describe('one token, one spelling', () => {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

  it('an EdDSA token with a non-canonical last signature character is refused', async () => {
    const { ed, ks } = await setup();
    const token = await forge(ed, { jti: 'key_canon' });
    expect(code(await ks.authenticate(request(token, 'proj_a')))).toBe('ok');
    const last = ALPHABET.indexOf(token.at(-1)!);
    const twin = token.slice(0, -1) + ALPHABET[last ^ 1]; // flips an unused low bit
    expect(Buffer.from(twin.split('.')[2]!, 'base64url')).toEqual(Buffer.from(token.split('.')[2]!, 'base64url'));
    expect(code(await ks.authenticate(request(twin, 'proj_a')))).toBe('invalid_api_key');
  });
});
