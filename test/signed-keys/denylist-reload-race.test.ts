/**
 * Was a hole: a deny-list load that began before a revocation, and resolves after a later load,
 * overwrites the fresh list with its stale snapshot; the fresh load already marked the list
 * fresh, so the revoked token is accepted until denyListMaxAgeMs (default = cache TTL) passes.
 */
import { describe, expect, it } from 'vitest';
import type { KeyDenial } from '../../packages/core/src/index.js';
import { code, deferred, keyscopeWith, pair, request, seededStore } from './helpers.js';

describe('deny-list reload race', () => {
  it('a slow deny-list load from before a revocation does not resurrect the revoked key', async () => {
    const signer = await pair('k1');
    const store = seededStore();
    const realList = store.listKeyDenials.bind(store);
    // The first load is slow (a busy pool, a slow replica): it takes its snapshot now, answers later.
    let calls = 0;
    const slow = deferred<void>();
    store.listKeyDenials = async (at: Date): Promise<KeyDenial[]> => {
      calls++;
      if (calls === 1) {
        const snapshot = await realList(at); // taken before the revocation
        await slow.promise;
        return snapshot;
      }
      return realList(at);
    };
    const ks = keyscopeWith(store, signer);
    const key = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'victim', level: 'user', expiresIn: 3_600_000 });

    // Request 1 verifies the token and starts deny-list load #1 (slow).
    const first = ks.authenticate(request(key.key, 'proj_a'));
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toBe(1);

    // The key is revoked: the store holds the denial, the instance hears it.
    await ks.keys.revoke(key.record.id);

    // Request 2 starts load #2, which sees the denial: refused, and the list is now "fresh".
    expect(code(await ks.authenticate(request(key.key, 'proj_a')))).toBe('invalid_api_key');

    // Load #1 finally answers with its pre-revocation snapshot.
    slow.resolve();
    await first;

    // Every later request: the revoked key must stay refused.
    expect(code(await ks.authenticate(request(key.key, 'proj_a')))).toBe('invalid_api_key');
    await ks.close();
  });
});
