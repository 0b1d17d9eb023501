/**
 * The CLI revokes signed keys with no signing key of its own: `keys revoke <id>` puts the key on
 * the store's deny-list, and a server on the same SQLite file refuses the token (its watcher hears
 * the write), while `keys list` marks the key as signed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyscope, type AuthResult } from '@keyscope/core';
import { SqliteStore } from '@keyscope/sqlite';
import { exportJWK, generateKeyPair } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../packages/cli/src/index.js';

async function run(argv: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env, cwd: tmpdir() });
  return { code, stdout, stderr };
}
const code = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);

describe('keyscope keys revoke, on a signed key', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keyscope-signed-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('denies it in the store: a running server on the same file refuses the token, and lists say signed', async () => {
    const db = join(dir, 'k.db');
    const { privateKey, publicKey } = await generateKeyPair('EdDSA');
    const publicJwk = { ...(await exportJWK(publicKey)), kid: 'cli-1' };
    const store = new SqliteStore({ filename: db, watchIntervalMs: 20 });
    await store.addProject({ id: 'proj_a', ownerId: 'u1', name: 'Alpha' });
    // The server trusts its deny-list for an hour unless it hears of a change.
    const server = createKeyscope({
      store,
      usage: false,
      signedKeys: { issuer: 'https://cli.test', audience: 'cli-api', keys: { keys: [publicJwk] }, signing: { key: privateKey, kid: 'cli-1' }, denyListMaxAgeMs: 3_600_000 },
    });
    const { key, record } = await server.keys.createSigned({ ownerId: 'u1', name: 'edge', level: 'user', expiresIn: 3_600_000 });
    const request = { headers: { 'x-api-key': key, 'x-project-id': 'proj_a' }, path: '/sites' };
    expect(code(await server.authenticate(request))).toBe('ok');

    const env = { KEYSCOPE_DB: db };
    const listed = await run(['keys', 'list', '--owner', 'u1', '--json'], env);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: record.id, kind: 'signed', status: 'expiring' })]);
    expect((await run(['keys', 'list', '--owner', 'u1'], env)).stdout).toMatch(/user \(signed\)/);

    const revoked = await run(['keys', 'revoke', record.id], env);
    expect(revoked).toMatchObject({ code: 0, stderr: '' });
    expect(revoked.stdout + revoked.stderr).not.toContain(key);
    const deadline = Date.now() + 5_000;
    while (code(await server.authenticate(request)) === 'ok' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(code(await server.authenticate(request))).toBe('invalid_api_key');
    await server.close();
    store.close();
  });
});
