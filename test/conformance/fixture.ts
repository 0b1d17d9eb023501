import { createKeyscope, generateKey, hashKey, MemoryStore, type Keyscope, type KeyStore } from '@keyscope/core';

/** Names the table uses in place of key material, replaced with real keys at send time. */
export type KeyName = 'user' | 'project' | 'otherUser' | 'unknown' | 'badChecksum' | 'expired' | 'revoked' | 'long' | 'storeDown';
export const OWNER = 'usr_1';

export interface Fixture {
  store: MemoryStore;
  keys: Record<KeyName, string>;
  /** A fresh authenticator over the shared store (one per app, so no cache is shared). */
  keyscope(): Keyscope;
}

/**
 * `usr_1` owns `proj_a` and `proj_b`, `usr_2` owns `proj_c`. Keys: a user key and a `proj_a`
 * key of `usr_1`, a user key of `usr_2`, and the refused kinds.
 */
export async function createFixture(): Promise<Fixture> {
  const store = new MemoryStore();
  store.addProject({ id: 'proj_a', ownerId: OWNER, name: 'Alpha' });
  store.addProject({ id: 'proj_b', ownerId: OWNER, name: 'Beta' });
  store.addProject({ id: 'proj_c', ownerId: 'usr_2', name: 'Gamma' });
  const admin = createKeyscope({ store, usage: false });
  const user = await admin.keys.create({ ownerId: OWNER, name: 'user key', level: 'user' });
  const project = await admin.keys.create({ ownerId: OWNER, name: 'project key', level: 'project', projectId: 'proj_a' });
  const otherUser = await admin.keys.create({ ownerId: 'usr_2', name: 'other user key', level: 'user' });
  const expired = await admin.keys.create({ ownerId: OWNER, name: 'expired key', level: 'user' });
  await store.setKeyExpiry(expired.record.id, new Date(Date.now() - 60_000));
  const revoked = await admin.keys.create({ ownerId: OWNER, name: 'revoked key', level: 'user' });
  await admin.keys.revoke(revoked.record.id);
  await admin.close();
  const last = user.key.at(-1) === 'A' ? 'B' : 'A';
  // Looking this key up fails, as a store that is down would: the core must answer 503.
  const storeDown = generateKey('ks');
  const failing: KeyStore = {
    findKeyByHash: (hash) => (hash === hashKey(storeDown) ? Promise.reject(new Error('store unreachable')) : store.findKeyByHash(hash)),
    ownsProject: (ownerId, projectId) => store.ownsProject(ownerId, projectId),
    listProjects: (ownerId) => store.listProjects(ownerId),
  };
  return {
    store,
    keys: {
      user: user.key,
      project: project.key,
      otherUser: otherUser.key,
      unknown: generateKey('ks'),
      badChecksum: user.key.slice(0, -1) + last,
      expired: expired.key,
      revoked: revoked.key,
      long: `ks_${'a'.repeat(8 * 1024)}`,
      storeDown,
    },
    keyscope: () => createKeyscope({ store: failing, usage: false }),
  };
}
