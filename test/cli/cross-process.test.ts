import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cleanEnv, runCli } from './helpers.js';

const SERVER = fileURLToPath(new URL('./fixtures/server.mjs', import.meta.url));

let dir: string;
let db: string;
let server: ChildProcess;
let base: string;
let serverOutput = '';

async function cliJson(args: string[]): Promise<any> {
  const run = await runCli([...args, '--json'], { env: { KEYSCOPE_DB: db }, cwd: dir });
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout);
}

async function status(key: string, path = '/validate'): Promise<number> {
  const response = await fetch(`${base}${path}`, { headers: { 'x-api-key': key } });
  await response.arrayBuffer();
  return response.status;
}

/** Poll until the server answers `expected` for `key`; resolves to how long that took, in ms. */
async function msUntil(key: string, expected: number, limitMs: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    const elapsed = Date.now() - start;
    if ((await status(key)) === expected) return elapsed;
    if (elapsed > limitMs) return Number.POSITIVE_INFINITY;
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'keyscope-xproc-'));
  db = join(dir, 'keys.db');
  // The CLI makes the file; the server opens it as it would in production.
  await cliJson(['projects', 'add', '--owner', 'u1', '--name', 'Alpha', '--id', 'proj_a']);
  server = spawn(process.execPath, [SERVER], { env: cleanEnv({ KEYSCOPE_DB: db }), stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr!.setEncoding('utf8').on('data', (chunk: string) => (serverOutput += chunk));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    server.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      serverOutput += chunk;
      const match = /listening (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    server.on('exit', (code) => reject(new Error(`server exited with ${code}: ${serverOutput}`)));
  });
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('a running server and the CLI in another process, one SQLite file', () => {
  const keys: string[] = [];

  it('refuses a key within 2 s of the CLI revoking it, though the server cached it for 10 minutes', async () => {
    const { key, record } = await cliJson(['keys', 'create', '--owner', 'u1', '--name', 'revoke me', '--level', 'user']);
    keys.push(key);
    expect(await status(key)).toBe(200);
    expect(await status(key)).toBe(200);

    await cliJson(['keys', 'revoke', record.id]);
    const took = await msUntil(key, 401, 3_000);
    expect(took).toBeLessThan(2_000);
    expect(await status(key)).toBe(401);
  });

  it('accepts a key the CLI creates while the server runs', async () => {
    const { key } = await cliJson(['keys', 'create', '--owner', 'u1', '--name', 'new', '--level', 'project', '--project', 'proj_a']);
    keys.push(key);
    expect(await msUntil(key, 200, 2_000)).toBeLessThan(2_000);
    expect(await status(key, '/sites')).toBe(200);
  });

  it('after a rotation with --grace both keys work, then the old one is refused once the grace ends', async () => {
    const old = await cliJson(['keys', 'create', '--owner', 'u1', '--name', 'rotate me', '--level', 'user']);
    keys.push(old.key);
    expect(await status(old.key)).toBe(200);

    const graceMs = 3_000;
    const rotatedAt = Date.now();
    const fresh = await cliJson(['keys', 'rotate', old.record.id, '--grace', '3s']);
    keys.push(fresh.key);
    expect(await status(fresh.key)).toBe(200);
    expect(await status(old.key)).toBe(200);

    // Still inside the grace period (and past the store's watch interval): both still work.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await status(old.key)).toBe(200);
    expect(await status(fresh.key)).toBe(200);

    await msUntil(old.key, 401, graceMs + 2_000);
    const refusedAfter = Date.now() - rotatedAt;
    expect(refusedAfter).toBeGreaterThanOrEqual(graceMs - 250);
    expect(refusedAfter).toBeLessThan(graceMs + 2_000);
    expect(await status(old.key)).toBe(401);
    expect(await status(fresh.key)).toBe(200);
  });

  it('wrote no key to its output', () => {
    expect(keys.length).toBe(4);
    for (const key of keys) expect(serverOutput).not.toContain(key);
  });
});
