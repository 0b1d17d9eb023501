/**
 * `pnpm start` as a newcomer meets it: the first start seeds and prints two keys and curl
 * lines; those lines get the statuses they claim; later starts reuse the file and say how to
 * make a key with the CLI, and that advice works.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { send } from '../conformance/http.js';
import { cliRaw, demoKeys, keyscopeLog, startServer, processScope, until, type CreatedKey, type ServerProcess } from './harness.js';

const HAS_CURL = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;
const KEY_PATTERN = /ks_[A-Za-z0-9]{20,}/;

interface CurlExample {
  claimed: number;
  why: string;
  line: string;
  args: string[];
}

/** Split a printed command line as a POSIX shell would. Only plain words and single quotes are expected. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const pattern = /'([^']*)'|([A-Za-z0-9_@%+=:,./-]+)|(\s+)/y;
  let word: string | undefined;
  let at = 0;
  for (let match = pattern.exec(line); match; match = pattern.exec(line)) {
    at = pattern.lastIndex;
    if (match[3] !== undefined) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + (match[1] ?? match[2]);
    }
  }
  if (at !== line.length) throw new Error(`not ready to paste (unexpected ${JSON.stringify(line[at])}): ${line}`);
  if (word !== undefined) words.push(word);
  return words;
}

/** Every `# <status>: <why>` line followed by a `curl` line. */
function curlExamples(output: string): CurlExample[] {
  const lines = output.split('\n').map((l) => l.trim());
  const examples: CurlExample[] = [];
  lines.forEach((line, i) => {
    const claim = /^# (\d{3}): (.+)$/.exec(line);
    const next = lines[i + 1] ?? '';
    if (claim && next.startsWith('curl ')) examples.push({ claimed: Number(claim[1]), why: claim[2]!, line: next, args: shellWords(next).slice(1) });
  });
  return examples;
}

/** Run a curl line's arguments with node:http: `-i` ignored, `-H 'Name: value'`, one URL. */
async function runWithNode(args: string[]): Promise<number> {
  const headers: [string, string][] = [];
  let url: URL | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-i') continue;
    if (arg === '-H') {
      const header = args[++i]!;
      const colon = header.indexOf(':');
      headers.push([header.slice(0, colon), header.slice(colon + 1).trim()]);
    } else if (/^https?:\/\//.test(arg) && !url) url = new URL(arg);
    else throw new Error(`unexpected curl argument ${arg}`);
  }
  if (!url) throw new Error('no URL in the curl line');
  expect(url.hostname).toBe('127.0.0.1');
  return (await send(Number(url.port), 'GET', url.pathname + url.search, headers)).status;
}

/** Run the line with the real curl; the status from the `-i` status line. */
function runWithCurl(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['--silent', '--show-error', '--max-time', '10', ...args], (error, stdout) => {
      if (error) return reject(error);
      const status = /^HTTP\/[\d.]+ (\d{3})/.exec(stdout)?.[1];
      if (!status) return reject(new Error(`no status line in curl output: ${stdout.slice(0, 200)}`));
      resolve(Number(status));
    });
  });
}

// Each test starts real processes; on a busy machine that takes longer than the default.
vi.setConfig({ testTimeout: 60_000 });

const { tmp, running } = processScope();

async function start(...args: Parameters<typeof startServer>): Promise<ServerProcess> {
  const server = await startServer(...args);
  running.push(server);
  return server;
}

describe('the first start on an empty database', () => {
  const db = path.join(tmp.dir, 'seeded.db');

  it('seeds, prints two working keys and curl lines that get the statuses they claim', async () => {
    const server = await start(undefined, db);
    expect(server.framework).toBe('fastify'); // the default
    const output = server.output();
    const keys = demoKeys(output);
    expect(keys.user).not.toBe(keys.project);

    const validate = async (key: string) => (await send(server.port, 'GET', '/validate', [['X-API-Key', key]])).json;
    expect(await validate(keys.user)).toMatchObject({ valid: true, key: { level: 'user', projectId: null }, ownerId: 'demo-user' });
    expect(await validate(keys.project)).toMatchObject({ valid: true, key: { level: 'project', projectId: 'proj_alpha' }, ownerId: 'demo-user' });

    const examples = curlExamples(output);
    // /validate, /projects and /sites, with and without X-Project-ID, and 200, 401 and 403 all shown.
    for (const route of ['/validate', '/projects', '/sites']) expect(examples.some((e) => e.line.endsWith(route))).toBe(true);
    expect(examples.some((e) => e.line.endsWith('/sites') && e.line.includes('X-Project-ID'))).toBe(true);
    expect(examples.some((e) => e.line.endsWith('/sites') && !e.line.includes('X-Project-ID'))).toBe(true);
    expect(new Set(examples.map((e) => e.claimed))).toEqual(new Set([200, 401, 403]));
    // Both keys appear in the lines, and no other real key does.
    expect(examples.some((e) => e.line.includes(keys.user)) && examples.some((e) => e.line.includes(keys.project))).toBe(true);

    for (const example of examples) {
      expect(await runWithNode(example.args), `${example.why}: ${example.line}`).toBe(example.claimed);
      if (HAS_CURL) expect(await runWithCurl(example.args), `curl: ${example.why}`).toBe(example.claimed);
    }

    // The demo data answers the way the README describes it.
    const user = ['X-API-Key', keys.user] as const;
    const projects = await send(server.port, 'GET', '/projects', [user]);
    expect(projects.json).toEqual({ projects: [{ id: 'proj_alpha', name: 'Alpha' }, { id: 'proj_beta', name: 'Beta' }] });
    const sites = (await send(server.port, 'GET', '/sites', [user, ['X-Project-ID', 'proj_alpha']])).json as { sites: unknown[] };
    expect(sites.sites).toHaveLength(2);
    const beta = (await send(server.port, 'GET', '/monitoring', [user, ['X-Project-ID', 'proj_beta']])).json as { sites: { status: string }[] };
    expect(beta.sites).toEqual([expect.objectContaining({ id: 'site_beta_shop', status: 'down' })]);
    const gamma = await send(server.port, 'GET', '/sites/site_gamma_blog/summary', [user, ['X-Project-ID', 'proj_alpha']]);
    expect(gamma.status).toBe(404);

    // The printed OpenAPI address answers without a key.
    const openApi = /OpenAPI 3\.1 description \(no key needed\): (http:\S+)/.exec(server.output())?.[1];
    expect(openApi, server.output()).toBe(`http://127.0.0.1:${server.port}/openapi.json`);
    expect((await send(server.port, 'GET', '/openapi.json', [])).status).toBe(200);

    // The keys were printed once, before "listening on"; nothing logged since repeats them.
    expect(server.output().slice(output.indexOf('listening on'))).not.toMatch(KEY_PATTERN);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('later starts reuse the database, print no key, and say how to make one with the CLI', async () => {
    const server = await start('koa', db);
    const output = server.output();
    expect(output).not.toMatch(KEY_PATTERN);
    expect(output).not.toContain('Seeded demo data');

    // Run the printed CLI line (the user-level one) as printed, then use the key it makes.
    const line = output.split('\n').map((l) => l.trim()).find((l) => l.startsWith('pnpm keyscope keys create') && l.includes('--level user'));
    expect(line, output).toBeDefined();
    const args = shellWords(line!).slice(2);
    expect(args).toContain('--db');
    const made = await cliRaw([...args, '--json']);
    expect(made.code, made.stderr).toBe(0);
    const { key, record } = JSON.parse(made.stdout) as CreatedKey;
    expect(record).toMatchObject({ ownerId: 'demo-user', level: 'user' });
    const res = await send(server.port, 'GET', '/sites', [['X-API-Key', key], ['X-Project-ID', 'proj_beta']]);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ projectId: 'proj_beta', sites: [{ id: 'site_beta_shop' }] });
    expect(await server.stop('SIGTERM')).toBe(0);
  });
});

describe('KEYSCOPE_SEED=off', () => {
  it('starts on an empty database without demo data or keys and says how to add both', async () => {
    const server = await start('express', path.join(tmp.dir, 'empty.db'), { KEYSCOPE_SEED: 'off' });
    const output = server.output();
    expect(output).not.toMatch(KEY_PATTERN);
    expect(output).toContain('pnpm keyscope projects add');
    expect(output).toContain('pnpm keyscope keys create');
    expect((await send(server.port, 'GET', '/health', [])).status).toBe(200);
    expect((await send(server.port, 'GET', '/validate', [])).status).toBe(401);
    expect(await server.stop('SIGTERM')).toBe(0);
  });
});

describe('configuration', () => {
  it('KEYSCOPE_LOG_LEVEL=debug adds a line per authenticated request, with the key id and never the key', async () => {
    const server = await start('hono', path.join(tmp.dir, 'debug.db'), { KEYSCOPE_LOG_LEVEL: 'debug' });
    const keys = demoKeys(server.output());
    const res = await send(server.port, 'GET', '/sites', [['X-API-Key', keys.project]]);
    expect(res.status).toBe(200);
    const keyId = ((await send(server.port, 'GET', '/validate', [['X-API-Key', keys.project]])).json as { key: { id: string } }).key.id;
    const authenticated = () => keyscopeLog(server.output()).filter((line) => line.event === 'authenticated');
    await until(() => authenticated().length === 2, 5_000, 'two authenticated lines');
    expect(authenticated()[0]).toMatchObject({ level: 'debug', keyId, ownerId: 'demo-user', keyLevel: 'project', projectId: 'proj_alpha' });
    expect(server.output().slice(server.output().indexOf('listening on'))).not.toMatch(KEY_PATTERN);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('refuses an unknown KEYSCOPE_LOG_LEVEL', async () => {
    await expect(startServer(undefined, path.join(tmp.dir, 'loud.db'), { KEYSCOPE_LOG_LEVEL: 'loud' })).rejects.toThrow(/KEYSCOPE_LOG_LEVEL must be one of debug, info, warn, error/);
  });

  it('refuses an unknown FRAMEWORK before opening anything', async () => {
    const db = path.join(tmp.dir, 'bad', 'bad.db');
    await expect(startServer('nope' as never, db)).rejects.toThrow(/FRAMEWORK must be one of express, koa, fastify, hono/);
    expect(existsSync(db)).toBe(false);
  });
});
