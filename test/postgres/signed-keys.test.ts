/**
 * Signed keys on PostgreSQL, across instances: a signed key revoked through one instance (its own
 * store object) is refused by another instance on another store object, which hears the deny-list
 * write through LISTEN/NOTIFY, and by a CLI-like third store writing the denial alone.
 */
import { createKeyscope, type AuthResult } from '@keyscope/core';
import { exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { migratedSchemaPerTest, until } from './helpers.js';

const fixture = migratedSchemaPerTest();
const code = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);
const request = (key: string) => ({ headers: { 'x-api-key': key, 'x-project-id': 'proj_a' }, path: '/sites' });

describe('signed keys on PostgreSQL', () => {
  it('a revocation on one instance reaches another instance through LISTEN/NOTIFY, with no request reading the store', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA');
    const publicJwk = { ...(await exportJWK(publicKey)), kid: 'pg-1' };
    const signedKeys = { issuer: 'https://pg.test', audience: 'pg-api', keys: { keys: [publicJwk] }, signing: { key: privateKey, kid: 'pg-1' } };
    const storeA = fixture.open();
    const storeB = fixture.open();
    await storeA.addProject({ id: 'proj_a', ownerId: 'usr_1', name: 'Alpha' });
    const a = createKeyscope({ store: storeA, usage: false, signedKeys });
    // B verifies only: it holds no signing key, and its deny-list is trusted for an hour unless told.
    const b = createKeyscope({ store: storeB, usage: false, signedKeys: { ...signedKeys, signing: undefined, denyListMaxAgeMs: 3_600_000 } });
    const { key, record } = await a.keys.createSigned({ ownerId: 'usr_1', name: 'edge', level: 'user', expiresIn: 3_600_000 });
    const other = await a.keys.createSigned({ ownerId: 'usr_1', name: 'other', level: 'user', expiresIn: 3_600_000 });
    expect(code(await b.authenticate(request(key)))).toBe('ok');
    expect(code(await b.authenticate(request(other.key)))).toBe('ok');

    // Warm on B: no store read per request.
    let reads = 0;
    const find = storeB.findKeyByHash.bind(storeB);
    storeB.findKeyByHash = (hash) => (reads++, find(hash));
    for (let i = 0; i < 5; i++) expect(code(await b.authenticate(request(key)))).toBe('ok');
    expect(reads).toBe(0);

    await a.keys.revoke(record.id);
    expect(code(await a.authenticate(request(key)))).toBe('invalid_api_key');
    await until(async () => code(await b.authenticate(request(key))) === 'invalid_api_key', 5_000, 'instance B to refuse the revoked signed key');
    expect(code(await b.authenticate(request(other.key)))).toBe('ok');

    // A denial written by a third store object alone (the CLI revoking) reaches B too.
    const cli = createKeyscope({ store: fixture.open(), usage: false });
    await cli.keys.revoke(other.record.id);
    await until(async () => code(await b.authenticate(request(other.key))) === 'invalid_api_key', 5_000, 'instance B to refuse a key the CLI revoked');
    for (const ks of [a, b, cli]) await ks.close();
  });
});
