/**
 * With a remote JWKS (default options), once the JWKS endpoint is down and 30 s have passed
 * since the last *successful* fetch, every token naming a kid not in the cached set makes jose refetch
 * (its cooldown counts from the last success, not the last attempt), and the failed refetch is a 503.
 * An attacker sending made-up kids (no valid signature needed) turns each request into an outbound
 * JWKS fetch (up to timeoutMs each) and a 503 + store_error instead of the 401 of an unknown key,
 * and the failed-attempt throttle never sees them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createKeyscope, type AuthResult } from '../../packages/core/src/index.js';
import { AUDIENCE, code, forge, ISSUER, opaqueUnknownOf, pair, request, seededStore, type Pair } from './helpers.js';

describe('a remote JWKS that goes down', () => {
  let server: Server;
  let url: string;
  let fetches = 0;
  let up = true;
  let signer: Pair;
  let attacker: Pair;

  beforeAll(async () => {
    signer = await pair('k1');
    attacker = await pair('x');
    server = createServer((_req, res) => {
      fetches++;
      if (!up) return void res.writeHead(503).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [signer.publicJwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));
  afterEach(() => vi.useRealTimers());

  it('made-up kids during the outage: the plain 401, and not one JWKS fetch per request', async () => {
    const ks = createKeyscope({ store: seededStore(), usage: false, signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: url } });
    const unknown: AuthResult = await opaqueUnknownOf(ks);
    expect(code(await ks.authenticate(request(await forge(signer), 'proj_a')))).toBe('ok');
    expect(fetches).toBe(1);

    up = false;
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 31_000); // past the default 30 s cooldown, well within the 10 min cache

    const before = fetches;
    const results: AuthResult[] = [];
    for (let i = 0; i < 10; i++) results.push(await ks.authenticate(request(await forge(attacker, { jti: `key_${i}` }, { kid: `made-up-${i}` }), 'proj_a')));
    expect(fetches - before).toBeLessThanOrEqual(1);
    // The first made-up kid could have been a signing key just rotated in: with the JWKS down, that
    // one is told to come back (503). For the cooldown after that failure, a kid the last good copy
    // does not hold is refused at once, as jose's own cooldown does after a successful fetch.
    expect(results[0]!.ok ? 'ok' : results[0]!.error.code).toMatch(/^(auth_unavailable|invalid_api_key)$/);
    for (const result of results.slice(1)) expect(result).toEqual(unknown);
    await ks.close();
  });
});
