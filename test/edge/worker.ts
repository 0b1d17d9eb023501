/**
 * Runs inside an edge-like runtime (no `process`, `Buffer`, `require` or `node:*` modules; Web
 * Crypto only), bundled by the test beside it. Issues signed and opaque keys and answers requests
 * through `@keyscope/fetch`, reporting what it saw.
 */
import { createKeyscope, MemoryStore } from '@keyscope/core';
import { authenticateRequest } from '@keyscope/fetch';
import { exportJWK, generateKeyPair } from 'jose';

async function run() {
  const store = new MemoryStore();
  store.addProject({ id: 'proj_a', ownerId: 'usr_1', name: 'Alpha' });
  const { privateKey, publicKey } = await generateKeyPair('EdDSA');
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'edge-1' };
  const ks = createKeyscope({
    store,
    usage: false,
    signedKeys: { issuer: 'https://edge.test', audience: 'edge-api', keys: { keys: [publicJwk] }, signing: { key: privateKey, kid: 'edge-1' } },
  });
  const signed = await ks.keys.createSigned({ ownerId: 'usr_1', name: 'edge key', level: 'user', expiresIn: 3_600_000 });
  const opaque = await ks.keys.create({ ownerId: 'usr_1', name: 'opaque key', level: 'user' });
  const ask = async (key: string, project?: string) => {
    const headers: Record<string, string> = { 'x-api-key': key };
    if (project) headers['x-project-id'] = project;
    const result = await authenticateRequest(ks, new Request('https://edge.test/sites', { headers }));
    return result.ok ? { status: 200, auth: result.auth } : { status: result.response.status, body: await result.response.text() };
  };
  const tampered = signed.key.slice(0, -2) + (signed.key.at(-2) === 'A' ? 'B' : 'A') + signed.key.at(-1);
  const answers = {
    signed: await ask(signed.key, 'proj_a'),
    signedAgain: await ask(signed.key, 'proj_a'),
    signedNoProject: await ask(signed.key),
    tampered: await ask(tampered, 'proj_a'),
    opaque: await ask(opaque.key, 'proj_a'),
    unknownOpaque: await ask(opaque.key.slice(0, 3) + 'x'.repeat(opaque.key.length - 3), 'proj_a'),
    revoked: undefined as unknown,
  };
  await ks.keys.revoke(signed.record.id);
  answers.revoked = await ask(signed.key, 'proj_a');
  await ks.close();
  return JSON.stringify({ answers, keyId: signed.record.id });
}

(globalThis as { runEdgeSuite?: () => Promise<string> }).runEdgeSuite = run;
