/**
 * Was a hole: revoking a signed key writes a deny-list entry "from <the revoking process's now>",
 * and every instance compares it with its own clock. A revoking process whose clock runs ahead
 * (the CLI on an operator's laptop, another API instance) leaves the revoked token working on
 * every server until their clocks catch up. Opaque keys have no such window (revokedAt is a flag).
 */
import { describe, expect, it } from 'vitest';
import { code, keyscopeWith, pair, request, seededStore } from './helpers.js';

describe('revocation is not at the mercy of the revoking clock', () => {
  it('a key revoked from a process whose clock is 10 minutes ahead is refused at once everywhere', async () => {
    const signer = await pair('k1');
    const store = seededStore();
    const server = keyscopeWith(store, signer);
    const skewed = keyscopeWith(store, signer, {}, { now: () => Date.now() + 10 * 60_000 }); // e.g. `keyscope keys revoke` on a laptop
    const key = await server.keys.createSigned({ ownerId: 'usr_1', name: 'leaked', level: 'user', expiresIn: 3_600_000 });
    expect(code(await server.authenticate(request(key.key, 'proj_a')))).toBe('ok');

    await skewed.keys.revoke(key.record.id);
    expect((await server.keys.get(key.record.id))?.status).toBe('revoked');
    expect(code(await server.authenticate(request(key.key, 'proj_a')))).toBe('invalid_api_key');
    await server.close();
    await skewed.close();
  });

  it('the same for an opaque key (control: passes)', async () => {
    const signer = await pair('k1');
    const store = seededStore();
    const server = keyscopeWith(store, signer);
    const skewed = keyscopeWith(store, signer, {}, { now: () => Date.now() + 10 * 60_000 });
    const key = await server.keys.create({ ownerId: 'usr_1', name: 'leaked', level: 'user' });
    expect(code(await server.authenticate(request(key.key, 'proj_a')))).toBe('ok');
    await skewed.keys.revoke(key.record.id);
    expect(code(await server.authenticate(request(key.key, 'proj_a')))).toBe('invalid_api_key');
  });
});
