/**
 * Signed keys on a runtime without Node APIs: the core, the Fetch adapter and jose bundled for
 * the browser platform (a static `node:*` import fails the bundle) and run in an edge-like VM
 * (`@edge-runtime/vm`: Web APIs and Web Crypto, no `process`, `Buffer` or `require`).
 */
import { fileURLToPath } from 'node:url';
import { EdgeVM } from '@edge-runtime/vm';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

describe('signed keys on an edge runtime (Web Crypto only)', () => {
  let vm: EdgeVM;
  let bundle: string;

  beforeAll(async () => {
    const result = await build({
      entryPoints: [fileURLToPath(new URL('./worker.ts', import.meta.url))],
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'browser',
      target: 'es2022',
      conditions: ['worker', 'browser'],
      alias: { '@keyscope/core': root('packages/core/src/index.ts'), '@keyscope/fetch': root('packages/fetch/src/index.ts') },
      logLevel: 'silent',
    });
    bundle = result.outputFiles[0]!.text;
    vm = new EdgeVM();
  }, 60_000);

  it('the VM has no Node APIs, and the bundle names none', () => {
    expect(vm.evaluate('[typeof process, typeof Buffer, typeof require, typeof crypto.subtle]')).toEqual(['undefined', 'undefined', 'undefined', 'object']);
    expect(bundle).not.toMatch(/\brequire\(["']node:|from ["']node:/);
  });

  it('issues, verifies, refuses and revokes signed keys (and serves opaque ones) through @keyscope/fetch', async () => {
    vm.evaluate(bundle);
    const { answers, keyId } = JSON.parse(await vm.evaluate<Promise<string>>('runEdgeSuite()'));
    const user = { keyId, keyName: 'edge key', ownerId: 'usr_1', level: 'user' };
    expect(answers.signed).toEqual({ status: 200, auth: { ...user, projectId: 'proj_a' } });
    expect(answers.signedAgain).toEqual(answers.signed);
    expect(answers.signedNoProject).toMatchObject({ status: 403, body: expect.stringContaining('"code":"project_required"') });
    expect(answers.opaque).toMatchObject({ status: 200, auth: { keyName: 'opaque key', projectId: 'proj_a' } });
    // Forged, unknown and revoked: the one 401 body.
    expect(answers.tampered).toMatchObject({ status: 401, body: expect.stringContaining('"code":"invalid_api_key"') });
    expect(answers.unknownOpaque).toEqual(answers.tampered);
    expect(answers.revoked).toEqual(answers.tampered);
  });
});
