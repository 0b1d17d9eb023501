import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { createKeyscope, generateKey, MemoryStore, type AuthResult, type KeyscopeOptions, type SignedKeyOptions } from '../../packages/core/src/index.js';

export const ISSUER = 'https://api.example.test';
export const AUDIENCE = 'example-api';
export const TYP = 'keyscope+jwt';

export interface Pair {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export async function pair(kid: string, alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, privateKey, publicKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export function seededStore(): MemoryStore {
  const store = new MemoryStore();
  store.addProject({ id: 'proj_a', ownerId: 'usr_1', name: 'Alpha' });
  store.addProject({ id: 'proj_b', ownerId: 'usr_1', name: 'Beta' });
  store.addProject({ id: 'proj_c', ownerId: 'usr_2', name: 'Gamma' });
  return store;
}

export function keyscopeWith(store: MemoryStore, signer: Pair, extra: Partial<SignedKeyOptions> = {}, options: Partial<KeyscopeOptions> = {}) {
  return createKeyscope({
    store,
    usage: false,
    ...options,
    signedKeys: { issuer: ISSUER, audience: AUDIENCE, keys: { keys: [signer.publicJwk] }, signing: { key: signer.privateKey, kid: signer.kid }, ...extra },
  });
}

export const request = (key: string, projectId?: string, path = '/sites') => ({
  headers: { 'x-api-key': key, ...(projectId === undefined ? {} : { 'x-project-id': projectId }) },
  path,
});
export const code = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);

/** A token signed by `signer` with every claim right, unless `claims`/`header` say otherwise. */
export async function forge(signer: { privateKey: CryptoKey | Uint8Array; kid: string }, claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = { iss: ISSUER, aud: AUDIENCE, sub: 'usr_1', jti: 'key_forged', lvl: 'user', name: 'forged', iat: now, exp: now + 3600, ...claims };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: TYP, kid: signer.kid, ...header } as never).sign(signer.privateKey);
}

export const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** The exact answer to an unknown opaque key on `ks`. */
export async function opaqueUnknownOf(ks: ReturnType<typeof createKeyscope>): Promise<AuthResult> {
  return ks.authenticate(request(generateKey(), 'proj_a'));
}

export function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Sign exactly these header and payload texts (objects are JSON-encoded) with Ed25519 or ES256: any header trick, duplicate keys, anything. */
export async function rawSign(privateKey: CryptoKey, header: unknown, payload: unknown, alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<string> {
  const input = `${b64(header)}.${b64(payload)}`;
  const params = alg === 'EdDSA' ? { name: 'Ed25519' } : { name: 'ECDSA', hash: 'SHA-256' };
  const signature = await crypto.subtle.sign(params, privateKey as unknown as globalThis.CryptoKey, new TextEncoder().encode(input));
  return `${input}.${Buffer.from(signature).toString('base64url')}`;
}

export function goodClaims(extra: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return { iss: ISSUER, aud: AUDIENCE, sub: 'usr_1', jti: 'key_raw', lvl: 'user', name: 'raw', iat: now, exp: now + 3600, ...extra };
}
