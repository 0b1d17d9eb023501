/**
 * `pnpm start` as a newcomer meets it: the first start seeds and prints two keys and curl
 * lines; those lines get the statuses they claim; every start prints CLI lines that load
 * examples/keyscope.config.ts, the options the server uses, and those lines work against it.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { send } from '../conformance/http.js';
import {
  cliRaw,
  demoKeys,
  keyscopeLog,
  printedCli,
  printedCliLines,
  processScope,
  runPrintedCli,
  shellWords,
  startServer,
  until,
  type CliResult,
  type CreatedKey,
  type ServerProcess,
} from './harness.js';

const HAS_CURL = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;
const KEY_PATTERN = /ks_[A-Za-z0-9]{20,}/;
/** The config every printed CLI line names, as printed (relative to the repository root). */
const CONFIG = 'examples/keyscope.config.ts';
/**
 * How soon a running server refuses a key the CLI revoked: the SQLite store looks for other
 * processes' writes every 500 ms (packages/sqlite README); 2 s, as its own tests allow, for a
 * busy machine. Measured from the CLI's exit, after the revocation committed.
 */
const REVOKE_BOUND_MS = 2_000;

interface ListedKey {
  id: string;
  name: string;
  ownerId: string;
  level: 'user' | 'project';
  projectId: string | null;
  status: string;
}

function ok(result: CliResult, what: string): string {
  expect(result.code, `${what}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

/** Each printed CLI line names the example's config and, for a database other than the default, KEYSCOPE_DB; never --db. */
function expectConfigLines(lines: string[], db: string): void {
  for (const line of lines) {
    const { env, args } = printedCli(line);
    expect(env, line).toEqual({ KEYSCOPE_DB: db });
    expect(args[args.indexOf('--config') + 1], line).toBe(CONFIG);
    expect(args, line).not.toContain('--db');
  }
}

/** Revoke `keyId` through the config and wait for the server to refuse `key`; the milliseconds it took after the CLI exited. */
async function revokeAndWait(server: ServerProcess, db: string, keyId: string, key: string): Promise<number> {
  ok(await cliRaw(['keys', 'revoke', keyId, '--config', CONFIG], { KEYSCOPE_DB: db }), 'keys revoke');
  const revokedAt = Date.now();
  for (;;) {
    const { status } = await send(server.port, 'GET', '/validate', [['X-API-Key', key]]);
    const elapsed = Date.now() - revokedAt;
    if (status === 401) return elapsed;
    expect(status).toBe(200);
    if (elapsed > REVOKE_BOUND_MS) throw new Error(`the revoked key still worked ${elapsed} ms after keys revoke exited`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

interface CurlExample {
  claimed: number;
  why: string;
  line: string;
  args: string[];
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

    // The CLI line it prints goes through examples/keyscope.config.ts and lists both demo keys.
    const cliLines = printedCliLines(output);
    expect(cliLines.map((l) => printedCli(l).args.slice(0, 2).join(' ')), output).toEqual(['keys list']);
    expectConfigLines(cliLines, db);
    const listed = JSON.parse(ok(await runPrintedCli(cliLines[0]!, ['--json']), cliLines[0]!)) as ListedKey[];
    expect(listed.map((k) => [k.name, k.level, k.projectId, k.status]).sort()).toEqual([
      ['demo alpha key', 'project', 'proj_alpha', 'active'],
      ['demo user key', 'user', null, 'active'],
    ]);

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

  it('later starts print CLI lines through examples/keyscope.config.ts whose keys work at once, and a revocation reaches the server', async () => {
    const server = await start('koa', db);
    const output = server.output();
    expect(output).not.toMatch(KEY_PATTERN);
    expect(output).not.toContain('Seeded demo data');

    // Every printed CLI line, run as printed (--json added to read the result).
    const lines = printedCliLines(output);
    expect(lines.map((l) => printedCli(l).args.slice(0, 2).join(' ')), output).toEqual(['keys create', 'keys create', 'keys list']);
    expectConfigLines(lines, db);
    const user = JSON.parse(ok(await runPrintedCli(lines[0]!, ['--json']), lines[0]!)) as CreatedKey;
    expect(user.record).toMatchObject({ ownerId: 'demo-user', name: 'my-key', level: 'user', projectId: null });
    const alpha = JSON.parse(ok(await runPrintedCli(lines[1]!, ['--json']), lines[1]!)) as CreatedKey;
    expect(alpha.record).toMatchObject({ ownerId: 'demo-user', name: 'my-alpha-key', level: 'project', projectId: 'proj_alpha' });

    // Both work against the running server at once.
    const beta = await send(server.port, 'GET', '/sites', [['X-API-Key', user.key], ['X-Project-ID', 'proj_beta']]);
    expect(beta.status).toBe(200);
    expect(beta.json).toMatchObject({ projectId: 'proj_beta', sites: [{ id: 'site_beta_shop' }] });
    const own = await send(server.port, 'GET', '/sites', [['X-API-Key', alpha.key]]);
    expect(own.status).toBe(200);
    expect(own.json).toMatchObject({ projectId: 'proj_alpha' });

    const listed = JSON.parse(ok(await runPrintedCli(lines[2]!, ['--json']), lines[2]!)) as ListedKey[];
    expect(listed.map((k) => k.name).sort()).toEqual(['demo alpha key', 'demo user key', 'my-alpha-key', 'my-key']);

    // Revoked through the same config: refused by the running server (its cache is not waited out).
    const elapsed = await revokeAndWait(server, db, user.record.id, user.key);
    expect(elapsed).toBeLessThanOrEqual(REVOKE_BOUND_MS);
    expect((await send(server.port, 'GET', '/sites', [['X-API-Key', alpha.key]])).status).toBe(200);

    // KEYSCOPE_CONFIG names the same module, as the README says.
    const viaEnv = await cliRaw(['keys', 'list', '--owner', 'demo-user', '--json'], { KEYSCOPE_DB: db, KEYSCOPE_CONFIG: CONFIG });
    const statuses = Object.fromEntries((JSON.parse(ok(viaEnv, 'keys list with KEYSCOPE_CONFIG')) as ListedKey[]).map((k) => [k.name, k.status]));
    expect(statuses).toMatchObject({ 'my-key': 'revoked', 'my-alpha-key': 'active' });
    expect(await server.stop('SIGTERM')).toBe(0);
  });
});

describe('KEYSCOPE_SEED=off', () => {
  it('starts on an empty database without demo data or keys, and the printed CLI lines add both', async () => {
    const db = path.join(tmp.dir, 'empty.db');
    const server = await start('express', db, { KEYSCOPE_SEED: 'off' });
    const output = server.output();
    expect(output).not.toMatch(KEY_PATTERN);
    expect((await send(server.port, 'GET', '/health', [])).status).toBe(200);
    expect((await send(server.port, 'GET', '/validate', [])).status).toBe(401);

    const lines = printedCliLines(output);
    expect(lines.map((l) => printedCli(l).args.slice(0, 2).join(' ')), output).toEqual(['projects add', 'keys create', 'keys create', 'keys list']);
    expectConfigLines(lines, db);
    ok(await runPrintedCli(lines[0]!), lines[0]!);
    const user = JSON.parse(ok(await runPrintedCli(lines[1]!, ['--json']), lines[1]!)) as CreatedKey;
    const alpha = JSON.parse(ok(await runPrintedCli(lines[2]!, ['--json']), lines[2]!)) as CreatedKey;
    expect(await send(server.port, 'GET', '/projects', [['X-API-Key', user.key]])).toMatchObject({ status: 200, json: { projects: [{ id: 'proj_alpha', name: 'Alpha' }] } });
    expect((await send(server.port, 'GET', '/sites', [['X-API-Key', alpha.key]])).json).toEqual({ projectId: 'proj_alpha', sites: [] });
    expect((await send(server.port, 'GET', '/sites', [['X-API-Key', user.key], ['X-Project-ID', 'proj_alpha']])).status).toBe(200);
    const listed = JSON.parse(ok(await runPrintedCli(lines[3]!, ['--json']), lines[3]!)) as ListedKey[];
    expect(listed.map((k) => k.name).sort()).toEqual(['my-alpha-key', 'my-key']);

    const elapsed = await revokeAndWait(server, db, alpha.record.id, alpha.key);
    expect(elapsed).toBeLessThanOrEqual(REVOKE_BOUND_MS);
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
