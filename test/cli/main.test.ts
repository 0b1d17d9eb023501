import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKey } from '@keyscope/core';
import { main, redact } from '../../packages/cli/src/index.js';

/** Run main() in-process with captured output. */
async function run(argv: string[], options: { env?: Record<string, string>; stdin?: string } = {}) {
  let stdout = '';
  let stderr = '';
  const stdin = options.stdin === undefined ? undefined : (async function* () { yield options.stdin!; })();
  const code = await main(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    ...(stdin ? { stdin } : {}),
    env: options.env ?? {},
  });
  return { code, stdout, stderr };
}

describe('main(argv, io) in-process', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keyscope-main-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates and verifies a key through the injected streams and environment', async () => {
    const env = { KEYSCOPE_DB: join(dir, 'k.db') };
    const created = await run(['keys', 'create', '--owner', 'u1', '--name', 'inproc', '--level', 'user', '--json'], { env });
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const { key } = JSON.parse(created.stdout);
    expect(await run(['keys', 'verify', '--json'], { env, stdin: `${key}\n` })).toMatchObject({ code: 0, stdout: expect.stringContaining('"ok": true') });
    expect(await run(['keys', 'verify'], { env: { ...env, KEYSCOPE_API_KEY: generateKey() } })).toMatchObject({ code: 1, stdout: expect.stringMatching(/^401 invalid_api_key/) });
    expect(await run(['keys', 'verify'], { env })).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(/no key to verify/) });
  });

  it('redacts a key pasted where an id belongs', async () => {
    const key = generateKey();
    const result = await run(['keys', 'revoke', key, '--db', ':memory:']);
    expect(result.code).toBe(1);
    expect(result.stderr).not.toContain(key);
    expect(result.stderr).toContain('[redacted key]');
  });
});

describe('redact', () => {
  it('hides keys of any prefix, mistyped ones too, and leaves key ids and other words alone', () => {
    const key = generateKey();
    const custom = generateKey('acme2');
    const typo = `${key.slice(0, -1)}${key.endsWith('x') ? 'y' : 'x'}`;
    expect(redact(`id "${key}", ${custom}; ${typo}.`)).toBe('id "[redacted key]", [redacted key]; [redacted key].');
    const id = 'key_8kQ2abcdefghijklmnop';
    const longer = `${key}Z`;
    expect(redact(`${id} ${longer} ${key.slice(0, -1)}`)).toBe(`${id} ${longer} ${key.slice(0, -1)}`);
  });
});
