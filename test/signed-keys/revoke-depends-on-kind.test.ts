/**
 * Was a hole: revoke/rotate only deny-list a key whose stored record says kind === 'signed'. The
 * KeyRow contract makes `kind` optional ("a store without the column leaves it out (opaque)",
 * recordFromRow maps a missing kind to 'opaque'), so on a store that implements denyKey and
 * listKeyDenials but does not round-trip `kind`, keys.revoke() of a signed key reports success,
 * the record shows "revoked", and the token keeps working until its exp.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, recordFromRow, type KeyRecord } from '../../packages/core/src/index.js';
import { code, keyscopeWith, pair, request } from './helpers.js';

/** A store written against the KeyRow contract without the optional `kind` column. */
class RowStore extends MemoryStore {
  private toRow(record: KeyRecord) {
    return {
      id: record.id, name: record.name, owner_id: record.ownerId, level: record.level, project_id: record.projectId, hash: record.hash, start: record.start,
      created_at: record.createdAt.getTime(), expires_at: record.expiresAt?.getTime() ?? null, revoked_at: record.revokedAt?.getTime() ?? null, last_used_at: record.lastUsedAt?.getTime() ?? null,
    };
  }
  override async getKey(id: string) {
    const record = await super.getKey(id);
    return record && recordFromRow(this.toRow(record));
  }
  override async findKeyByHash(hash: string) {
    const record = await super.findKeyByHash(hash);
    return record && recordFromRow(this.toRow(record));
  }
}

describe('revoking a signed key does not hinge on the optional kind column', () => {
  it('keys.revoke() of a signed key refuses its token, whatever the store says of kind', async () => {
    const signer = await pair('k1');
    const store = new RowStore();
    store.addProject({ id: 'proj_a', ownerId: 'usr_1', name: 'Alpha' });
    const ks = keyscopeWith(store, signer);
    const key = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'leaked', level: 'user', expiresIn: 3_600_000 });
    expect(code(await ks.authenticate(request(key.key, 'proj_a')))).toBe('ok');
    const revoked = await ks.keys.revoke(key.record.id);
    expect(revoked.revokedAt).not.toBeNull();
    expect(code(await ks.authenticate(request(key.key, 'proj_a')))).toBe('invalid_api_key');
  });

  it('keys.rotate() (grace 0) of a signed key refuses the old token', async () => {
    const signer = await pair('k1');
    const store = new RowStore();
    store.addProject({ id: 'proj_a', ownerId: 'usr_1', name: 'Alpha' });
    const ks = keyscopeWith(store, signer);
    const key = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'rot', level: 'user', expiresIn: 3_600_000 });
    await ks.keys.rotate(key.record.id).catch(() => undefined);
    expect(code(await ks.authenticate(request(key.key, 'proj_a')))).toBe('invalid_api_key');
  });
});
