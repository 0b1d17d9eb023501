import { createKeyscope, generateKey, hashKey, MemoryStore, nextQuotaReset, type KeyAdminStore, type Keyscope, type KeyStore, type SignedKeyOptions } from '@keyscope/core';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose';

/** Names the table uses in place of key material, replaced with real keys at send time. */
export type KeyName = 'user' | 'project' | 'otherUser' | 'unknown' | 'badChecksum' | 'expired' | 'revoked' | 'long' | 'storeDown' | 'limited' | 'limitedBadChecksum' | 'quota';
/** The limits of the fixture's limited keys (opaque keys only: a signed key has no limits of its own). */
export const RATE_LIMIT = { limit: 2, windowMs: 60_000 } as const;
export const QUOTA = { limit: 2, refill: 'day' } as const;
export const OWNER = 'usr_1';

export interface Fixture {
  /** What kind of keys `keys` holds. */
  kind: 'opaque' | 'signed';
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
  const limited = await admin.keys.create({ ownerId: OWNER, name: 'limited key', level: 'user', rateLimit: RATE_LIMIT });
  const quota = await admin.keys.create({ ownerId: OWNER, name: 'quota key', level: 'project', projectId: 'proj_a', quota: QUOTA });
  await admin.close();
  const last = user.key.at(-1) === 'A' ? 'B' : 'A';
  // Looking this key up fails, as a store that is down would: the core must answer 503.
  const storeDown = generateKey('ks');
  const failing: KeyStore & Pick<KeyAdminStore, 'consumeQuota'> = {
    findKeyByHash: (hash) => (hash === hashKey(storeDown) ? Promise.reject(new Error('store unreachable')) : store.findKeyByHash(hash)),
    ownsProject: (ownerId, projectId) => store.ownsProject(ownerId, projectId),
    listProjects: (ownerId) => store.listProjects(ownerId),
    consumeQuota: (keyId, at) => store.consumeQuota(keyId, at),
  };
  return {
    kind: 'opaque',
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
      limited: limited.key,
      limitedBadChecksum: limited.key.slice(0, -1) + (limited.key.at(-1) === 'A' ? 'B' : 'A'),
      quota: quota.key,
    },
    // Each app starts with the quota whole again (it lives in the shared store; the rate limit
    // is counted per keyscope instance, so each app has its own).
    keyscope: () => {
      void store.setKeyLimits(quota.record.id, { quota: { limit: QUOTA.limit, remaining: QUOTA.limit, refill: QUOTA.refill, resetAt: new Date(nextQuotaReset(QUOTA.refill, Date.now())) } });
      return createKeyscope({ store: failing, usage: false });
    },
  };
}

/**
 * The same people, projects and refused kinds as {@link createFixture}, with signed keys: the
 * unknown key is signed by a key not in the set, the bad-checksum one has a flipped signature
 * character, the expired one has an `exp` in the past, and the store-down one names a `kid`
 * whose key lookup fails (a key service that is down must answer 503).
 */
export async function createSignedFixture(): Promise<Fixture> {
  const store = new MemoryStore();
  store.addProject({ id: 'proj_a', ownerId: OWNER, name: 'Alpha' });
  store.addProject({ id: 'proj_b', ownerId: OWNER, name: 'Beta' });
  store.addProject({ id: 'proj_c', ownerId: 'usr_2', name: 'Gamma' });
  const signing = await generateKeyPair('EdDSA', { extractable: true });
  const publicJwk = { ...(await exportJWK(signing.publicKey)), kid: 'fixture-1', alg: 'EdDSA' };
  const local = createLocalJWKSet({ keys: [publicJwk] });
  const signedKeys = (): SignedKeyOptions => ({
    issuer: 'https://fixture.test',
    audience: 'fixture-api',
    keys: (header, token) => (header.kid === 'down' ? Promise.reject(new Error('key service unreachable')) : local(header, token)),
    signing: { key: signing.privateKey, kid: 'fixture-1' },
  });
  const admin = createKeyscope({ store, usage: false, signedKeys: signedKeys() });
  const hour = 3_600_000;
  const user = await admin.keys.createSigned({ ownerId: OWNER, name: 'user key', level: 'user', expiresIn: hour });
  const project = await admin.keys.createSigned({ ownerId: OWNER, name: 'project key', level: 'project', projectId: 'proj_a', expiresIn: hour });
  const otherUser = await admin.keys.createSigned({ ownerId: 'usr_2', name: 'other user key', level: 'user', expiresIn: hour });
  const revoked = await admin.keys.createSigned({ ownerId: OWNER, name: 'revoked key', level: 'user', expiresIn: hour });
  await admin.keys.revoke(revoked.record.id);
  await admin.close();
  const seconds = Math.floor(Date.now() / 1000);
  const claims = { sub: OWNER, lvl: 'user', name: 'user key', iss: 'https://fixture.test', aud: 'fixture-api' };
  const sign = (kid: string, key: CryptoKey | Parameters<SignJWT['sign']>[0], extra: Record<string, unknown>) =>
    new SignJWT({ ...claims, ...extra }).setProtectedHeader({ alg: 'EdDSA', typ: 'keyscope+jwt', kid }).sign(key);
  const stranger = await generateKeyPair('EdDSA');
  const flip = (token: string) => token.slice(0, -2) + (token.at(-2) === 'A' ? 'B' : 'A') + token.at(-1);
  return {
    kind: 'signed',
    store,
    keys: {
      user: user.key,
      project: project.key,
      otherUser: otherUser.key,
      unknown: await sign('stranger', stranger.privateKey, { jti: 'key_stranger', iat: seconds, exp: seconds + 3600 }),
      badChecksum: flip(user.key),
      expired: await sign('fixture-1', signing.privateKey, { jti: 'key_expired', iat: seconds - 7200, exp: seconds - 3600 }),
      revoked: revoked.key,
      long: `eyJ${'a'.repeat(4 * 1024)}.eyJ${'b'.repeat(4 * 1024)}.${'c'.repeat(86)}`,
      storeDown: await sign('down', signing.privateKey, { jti: 'key_down', iat: seconds, exp: seconds + 3600 }),
      // The limit rows are for opaque keys only (cases marked `opaqueOnly`).
      limited: user.key,
      limitedBadChecksum: flip(user.key),
      quota: project.key,
    },
    keyscope: () => createKeyscope({ store, usage: false, signedKeys: signedKeys() }),
  };
}
