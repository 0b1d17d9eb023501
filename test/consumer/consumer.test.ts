/**
 * keyscope as a new user installs it (issue 10): every package packed with `pnpm pack`, installed
 * with plain npm into fresh projects outside the workspace next to the frameworks a user adds,
 * then small apps written from the READMEs are typechecked (`strict`, `skipLibCheck: false`) and
 * run as real processes answering real HTTP requests. The CLI runs from its installed tarball.
 *
 * Reads the built packages: build them first (`pnpm build`, as `pnpm test` does). Set
 * KEYSCOPE_CONSUMER_KEEP=1 to keep the temp projects for inspection (their path is printed).
 *
 * better-sqlite3 has no prebuilt binary reachable offline, and compiling it takes ~80 s. The
 * install uses the registry's better-sqlite3 at the workspace's version, and its own install
 * script (prebuild-install) finds the workspace's compiled binary as a "local prebuild", so
 * nothing in the workspace is linked or rebuilt. Without a workspace binary it compiles.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APPS, type AppName, type ConsumerApp } from './apps.js';

const root = join(import.meta.dirname, '../..');
const PNPM = ['-y', 'pnpm@12.4.2'];
/**
 * What a user adds next to keyscope, per project. Koa lives in a CommonJS project of its own:
 * @types/koa@2 does not typecheck beside Express 5, whose hoisted content-disposition@2 ships
 * its own typings without the `Options` that @types/koa@2 reads (TS2694; nothing of keyscope's).
 */
const MAIN_DEPENDENCIES = ['express@5', '@types/express@5', 'fastify@5', 'express-oauth2-jwt-bearer', 'typescript@5.9.3', '@types/node@20'];
const KOA_DEPENDENCIES = ['koa@2', '@koa/router', '@types/koa@2', 'typescript@5.9.3', '@types/node@20'];
const FETCH_DEPENDENCIES = ['typescript@5.9.3', '@types/node@20'];
const NPM_INSTALL = ['install', '--no-audit', '--no-fund', '--prefer-offline'];

interface Ran { cmd: string; code: number | null; stdout: string; stderr: string; ms: number }

/** Runs a command to completion; never rejects, so a failure can be reported with its output. */
function run(cmd: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Ran> {
  const started = Date.now();
  const shown = `${cmd} ${args.join(' ')}  (in ${options.cwd})`;
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: options.cwd, env: options.env ?? cleanEnv(), timeout: options.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ cmd: shown, code, stdout: String(stdout), stderr: String(stderr) + (err && code === null ? `\n${err.message}` : ''), ms: Date.now() - started });
    });
  });
}

/** The environment without what a `pnpm test` run exports about the workspace package. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(npm_package_|npm_lifecycle_|npm_config_user_agent$|npm_execpath$|npm_node_execpath$|INIT_CWD$|PNPM_)/i.test(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

const describeRan = (r: Ran) => `$ ${r.cmd}\nexit ${r.code} after ${(r.ms / 1000).toFixed(1)} s\n--- stdout ---\n${r.stdout.trim()}\n--- stderr ---\n${r.stderr.trim()}`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// The temp projects

const KEEP = process.env.KEYSCOPE_CONSUMER_KEEP === '1';
const tmp = mkdtempSync(join(tmpdir(), 'keyscope-consumer-'));
const tarballDir = join(tmp, 'tarballs');
const projects = { main: join(tmp, 'main'), koa: join(tmp, 'koa-cjs'), fetch: join(tmp, 'fetch-only') } as const;
const timings: Record<string, string> = {};

interface Packed { name: string; tarball: string; files: string[]; json: Record<string, unknown> & { name: string } }
const packed = new Map<string, Packed>();
const workspacePackages = readdirSync(join(root, 'packages'))
  .filter((dir) => existsSync(join(root, 'packages', dir, 'package.json')))
  .map((dir) => ({ dir: join(root, 'packages', dir), json: JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as { name: string; exports: unknown } }));

function assertBuilt(): void {
  const missing = workspacePackages.filter(({ dir }) => !existsSync(join(dir, 'dist')));
  if (missing.length > 0) throw new Error(`no dist/ in ${missing.map((p) => p.json.name).join(', ')}: run \`npx -y pnpm@12.4.2 build\` first`);
  // Stale output is packed as it is; say so, because a colleague's edit may be unbuilt.
  const newest = (dir: string): number => readdirSync(dir, { withFileTypes: true })
    .reduce((m, e) => Math.max(m, e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs), 0);
  for (const { dir, json } of workspacePackages) {
    if (existsSync(join(dir, 'src')) && newest(join(dir, 'src')) > newest(join(dir, 'dist'))) {
      console.warn(`[consumer] ${json.name}: src/ is newer than dist/; packing the dist/ that is there (run the build for fresh output)`);
    }
  }
}

async function pack(): Promise<void> {
  mkdirSync(tarballDir, { recursive: true });
  // `pnpm pack` in each package directory (the recursive form runs exactly that), so
  // `workspace:^` dependencies become the real version ranges a registry would see.
  const r = await run('npx', [...PNPM, '-r', '--filter', './packages/*', 'pack', '--pack-destination', tarballDir], { cwd: root });
  timings['pnpm pack (7 packages)'] = seconds(r.ms);
  if (r.code !== 0) throw new Error(`pnpm pack failed\n${describeRan(r)}`);
  for (const file of readdirSync(tarballDir).filter((f) => f.endsWith('.tgz'))) {
    const tarball = join(tarballDir, file);
    const list = await run('tar', ['-tzf', tarball], { cwd: tmp });
    const json = await run('tar', ['-xzOf', tarball, 'package/package.json'], { cwd: tmp });
    if (list.code !== 0 || json.code !== 0) throw new Error(`cannot read ${file}\n${describeRan(list)}\n${describeRan(json)}`);
    const manifest = JSON.parse(json.stdout) as Packed['json'];
    packed.set(manifest.name, { name: manifest.name, tarball, files: list.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, '')), json: manifest });
  }
  const absent = workspacePackages.map((p) => p.json.name).filter((name) => !packed.has(name));
  if (absent.length > 0) throw new Error(`pnpm pack made no tarball for ${absent.join(', ')}; made: ${readdirSync(tarballDir).join(', ')}`);
}

/**
 * The workspace's compiled better-sqlite3 as a prebuild-install "local prebuild": a tarball named
 * like the GitHub release asset, holding build/Release/better_sqlite3.node. Returns the version
 * to pin (the binary matches only its own version) and the environment that points at it.
 */
async function localSqlitePrebuild(): Promise<{ version: string; env: Record<string, string> } | undefined> {
  let pkgDir: string;
  try {
    pkgDir = dirname(realpathSync(createRequire(join(root, 'packages/sqlite/package.json')).resolve('better-sqlite3/package.json')));
  } catch {
    return undefined;
  }
  const binary = join(pkgDir, 'build/Release/better_sqlite3.node');
  if (!existsSync(binary)) return undefined;
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const dir = join(tmp, 'prebuilds');
  mkdirSync(dir, { recursive: true });
  const asset = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const r = await run('tar', ['-czf', join(dir, asset), '-C', pkgDir, 'build/Release/better_sqlite3.node'], { cwd: tmp });
  if (r.code !== 0) return undefined;
  return { version, env: { npm_config_better_sqlite3_local_prebuilds: dir } };
}

async function install(): Promise<void> {
  const tarball = (name: string) => packed.get(name)!.tarball;
  const prebuild = await localSqlitePrebuild();
  const manifest = (name: string, type: 'module' | 'commonjs', extra: object = {}) => JSON.stringify({ name, private: true, type, ...extra }, null, 2);
  for (const dir of Object.values(projects)) mkdirSync(dir, { recursive: true });
  writeFileSync(join(projects.main, 'package.json'), manifest('keyscope-consumer', 'module', prebuild ? { overrides: { 'better-sqlite3': prebuild.version } } : {}));
  writeFileSync(join(projects.koa, 'package.json'), manifest('keyscope-consumer-koa', 'commonjs'));
  writeFileSync(join(projects.fetch, 'package.json'), manifest('keyscope-consumer-fetch', 'module'));

  const installs = {
    'main project (every tarball)': run('npm', [...NPM_INSTALL, ...[...packed.keys()].map(tarball), ...MAIN_DEPENDENCIES], { cwd: projects.main, env: cleanEnv(prebuild?.env) }),
    'Koa CommonJS project': run('npm', [...NPM_INSTALL, tarball('@keyscope/core'), tarball('@keyscope/koa'), ...KOA_DEPENDENCIES], { cwd: projects.koa }),
    'fetch-only project': run('npm', [...NPM_INSTALL, tarball('@keyscope/core'), tarball('@keyscope/fetch'), ...FETCH_DEPENDENCIES], { cwd: projects.fetch }),
  };
  for (const [what, pending] of Object.entries(installs)) {
    const r = await pending;
    timings[`npm install, ${what} (the three run concurrently)`] = seconds(r.ms);
    if (r.code !== 0) throw new Error(`npm install failed in the ${what}\n${describeRan(r)}`);
  }
  const compiled = existsSync(join(projects.main, 'node_modules/better-sqlite3/build/Makefile'));
  timings['better-sqlite3'] = prebuild && !compiled
    ? `${prebuild.version} from the registry, binary from the workspace build (local prebuild), not compiled`
    : 'compiled from source by node-gyp (no usable workspace binary)';
}

/** Writes an app and its tsconfig: strict, skipLibCheck false, Node 20 settings. */
function writeApp(app: ConsumerApp): string {
  const project = projects[app.project];
  const dir = dirname(app.source).slice('src/'.length);
  mkdirSync(join(project, dirname(app.source)), { recursive: true });
  writeFileSync(join(project, app.source), app.code);
  const tsconfig = `tsconfig.${dir}.json`;
  writeFileSync(join(project, tsconfig), JSON.stringify({
    compilerOptions: {
      strict: true,
      skipLibCheck: false,
      target: 'ES2022',
      lib: ['ES2023'],
      module: 'nodenext',
      moduleResolution: 'nodenext',
      // Only what the app imports, so one app's typings cannot break another's typecheck.
      types: ['node'],
      rootDir: `src/${dir}`,
      outDir: `out/${dir}`,
    },
    files: [app.source],
  }, null, 2));
  return tsconfig;
}

const tsc = (app: ConsumerApp, args: string[]) =>
  run(process.execPath, [join(projects[app.project], 'node_modules/typescript/bin/tsc'), '-p', writeApp(app), '--pretty', 'false', ...args], { cwd: projects[app.project] });

// ---------------------------------------------------------------------------------------------
// Running an app

interface Started { child: ChildProcess; base: string; keys: { user: string; project: string }; output: () => string }
const children = new Set<ChildProcess>();

function start(app: ConsumerApp, env: Record<string, string>): Promise<Started> {
  const cwd = projects[app.project];
  const child = spawn(process.execPath, [app.output], { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stdout = '';
  let stderr = '';
  const output = () => `--- app stdout ---\n${stdout.replace(/READY .*/, 'READY …').trim()}\n--- app stderr ---\n${stderr.trim()}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${app.title}: no READY line within 20 s\n${output()}`)); }, 20_000);
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk; });
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk;
      const line = /^READY (.*)$/m.exec(stdout);
      if (!line) return;
      clearTimeout(timer);
      const { port, keys } = JSON.parse(line[1]!) as { port: number; keys: Started['keys'] };
      resolve({ child, base: `http://127.0.0.1:${port}`, keys, output });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${app.title}: exited (code ${code}, signal ${signal}) before it was ready\n${output()}`));
    });
  });
}

/** SIGTERM, then the exit code; SIGKILL and `null` if it does not exit within 5 s. */
function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(null); }, 5_000);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
    child.kill('SIGTERM');
  });
}

interface Expectation { title: string; path: string; headers?: Record<string, string>; status: number; check?: (body: unknown, res: Response) => string | undefined }

/** Sends every request and returns one line per mismatch (empty when all are as expected). */
async function mismatches(base: string, expectations: Expectation[]): Promise<string[]> {
  const problems: string[] = [];
  for (const e of expectations) {
    let res: Response;
    try {
      res = await fetch(base + e.path, { headers: e.headers, signal: AbortSignal.timeout(10_000) });
    } catch (err) {
      problems.push(`${e.title}: GET ${e.path} failed: ${String(err)}`);
      continue;
    }
    const text = await res.text();
    let body: unknown = text;
    try { body = JSON.parse(text); } catch { /* not JSON: kept as text */ }
    const wrong = res.status !== e.status ? `status ${res.status}, expected ${e.status}` : e.check?.(body, res);
    if (wrong) problems.push(`${e.title}: GET ${e.path} → ${wrong}; body ${text.slice(0, 300)}`);
  }
  return problems;
}

const field = (body: unknown, ...path: string[]): unknown => path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), body);
const expectField = (name: string, expected: unknown, ...path: string[]) => (body: unknown) =>
  field(body, ...path) === expected ? undefined : `${name} ${JSON.stringify(field(body, ...path))}, expected ${JSON.stringify(expected)}`;

/** The contract every app must keep: a valid key → 200, no key → 401, user key without project → 403. */
function keyscopeExpectations(prefix: string, keys: Started['keys']): Expectation[] {
  const user = { 'X-API-Key': keys.user };
  return [
    { title: 'public route', path: '/health', status: 200 },
    { title: 'user key + X-Project-ID', path: `${prefix}/sites`, headers: { ...user, 'X-Project-ID': 'proj_a' }, status: 200, check: expectField('projectId', 'proj_a', 'projectId') },
    { title: 'project key', path: `${prefix}/sites`, headers: { 'X-API-Key': keys.project }, status: 200, check: expectField('projectId', 'proj_a', 'projectId') },
    { title: 'user key on project-optional /validate', path: `${prefix}/validate`, headers: user, status: 200, check: expectField('auth.projectId', null, 'auth', 'projectId') },
    {
      title: 'no key', path: `${prefix}/sites`, status: 401,
      check: (body, res) => expectField('code', 'missing_api_key', 'code')(body)
        ?? (res.headers.get('content-type')?.startsWith('application/problem+json') ? undefined : `content-type ${res.headers.get('content-type')}`)
        ?? (res.headers.get('www-authenticate') ? undefined : 'no WWW-Authenticate'),
    },
    { title: 'user key, project-scoped route, no X-Project-ID', path: `${prefix}/sites`, headers: user, status: 403, check: expectField('code', 'project_required', 'code') },
  ];
}

/** Builds, starts, queries and stops one app; returns its problems (empty: all good). */
async function runApp(app: ConsumerApp, env: Record<string, string> = {}, extra: (keys: Started['keys']) => Expectation[] = () => []): Promise<string[]> {
  const emit = await tsc(app, ['--noCheck']);
  if (emit.code !== 0 || !existsSync(join(projects[app.project], app.output))) return [`emitting JavaScript failed\n${describeRan(emit)}`];
  const started = await start(app, env);
  const problems = await mismatches(started.base, [...keyscopeExpectations(app.prefix, started.keys), ...extra(started.keys)]);
  const code = await stop(started.child);
  if (code !== 0) problems.push(code === null ? 'still running 5 s after SIGTERM (something keeps the event loop alive)' : `exit code ${code} after SIGTERM`);
  if (problems.length > 0) problems.push(started.output());
  return problems;
}

// ---------------------------------------------------------------------------------------------

const summary = new Map<string, { typecheck?: string; run?: string }>();
const note = (title: string, part: 'typecheck' | 'run', verdict: string) => summary.set(title, { ...summary.get(title), [part]: verdict });

beforeAll(async () => {
  assertBuilt();
  await pack();
  await install();
  console.log(`[consumer] temp projects in ${tmp}`);
}, 360_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  const rows = [...summary].map(([title, v]) => `  ${title.padEnd(46)} typecheck: ${(v.typecheck ?? '—').padEnd(6)} run: ${v.run ?? '—'}`);
  console.log(['[consumer] timings:', ...Object.entries(timings).map(([k, v]) => `  ${k}: ${v}`), '[consumer] results:', ...rows].join('\n'));
  if (KEEP) console.log(`[consumer] kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
});

describe('the tarballs pnpm pack makes', () => {
  it.each(workspacePackages.map((p) => p.json.name))('%s: real dependency versions and every file its package.json names', (name) => {
    const p = packed.get(name);
    expect(p, `no tarball for ${name}`).toBeDefined();
    const { json, files } = p!;
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'] as const) {
      const deps = (json[field] ?? {}) as Record<string, string>;
      expect(Object.entries(deps).filter(([, range]) => range.startsWith('workspace:')), `${name} ${field}`).toEqual([]);
    }
    // Every path the manifest points at: main/module/types, the exports map, bins.
    const referenced = new Set<string>();
    const collect = (v: unknown): void => {
      if (typeof v === 'string') { if (v.startsWith('./')) referenced.add(v.slice(2)); }
      else if (v && typeof v === 'object') Object.values(v).forEach(collect);
    };
    collect([json.main, json.module, json.types, json.exports, json.bin].map((v) => (typeof v === 'string' && !v.startsWith('./') ? `./${v}` : v)));
    expect([...referenced].filter((f) => f !== 'package.json' && !files.includes(f)), `${name}: files named in package.json but not in the tarball`).toEqual([]);
    expect(files, `${name}: README.md`).toContain('README.md');
  });

  it('every tarball carries a LICENSE file (the manifests say MIT, whose terms require the text)', () => {
    const without = [...packed.values()].filter((p) => !p.files.some((f) => /^(LICEN[CS]E|COPYING)(\.|$)/i.test(f))).map((p) => `${p.name} (license: ${String(p.json.license)})`);
    expect(without, 'tarballs without a LICENSE file').toEqual([]);
  });

  it('installs without hono in the fetch-only project (an optional peer)', () => {
    expect(existsSync(join(projects.fetch, 'node_modules/hono')), 'node_modules/hono exists in the fetch-only project').toBe(false);
  });
});

const runtimeChecks: Partial<Record<AppName, { env?: () => Record<string, string>; extra?: (keys: Started['keys']) => Expectation[] }>> = {
  express: { env: () => ({ KEYSCOPE_DB: join(projects.main, 'express.db') }) },
  expressAuth0: (() => {
    const secret = randomBytes(32).toString('hex');
    const jwt = (claims: Record<string, unknown>) => {
      const part = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
      return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
    };
    const now = Math.floor(Date.now() / 1000);
    const token = jwt({ iss: 'https://issuer.consumer.test/', aud: 'keyscope-consumer', sub: 'auth0|consumer', iat: now, exp: now + 3600 });
    return {
      env: () => ({ OAUTH_SECRET: secret }),
      extra: (keys): Expectation[] => [
        { title: 'OAuth route with a valid JWT', path: '/oauth/me', headers: { Authorization: `Bearer ${token}` }, status: 200, check: expectField('sub', 'auth0|consumer', 'sub') },
        { title: 'OAuth route without a token', path: '/oauth/me', status: 401 },
        { title: 'OAuth route with only an API key', path: '/oauth/me', headers: { 'X-API-Key': keys.user }, status: 401 },
        { title: 'keyscope route with only a JWT', path: '/keys/validate', headers: { Authorization: `Bearer ${token}` }, status: 401 },
      ],
    };
  })(),
};

describe.each(Object.entries(APPS) as [AppName, ConsumerApp][])('%s app', (name, app) => {
  it(`${app.title}: typechecks (tsc --noEmit, strict, skipLibCheck false)`, async () => {
    const r = await tsc(app, ['--noEmit']);
    note(app.title, 'typecheck', r.code === 0 ? 'ok' : 'FAILED');
    expect(r.code, `tsc failed for ${app.title} (${app.source}):\n${r.stdout.trim()}${r.stderr.trim() ? `\n${r.stderr.trim()}` : ''}`).toBe(0);
  }, 120_000);

  it(`${app.title}: runs, and answers 200 / 401 / 403 over HTTP`, async () => {
    const checks = runtimeChecks[name];
    const problems = await runApp(app, checks?.env?.() ?? {}, checks?.extra);
    note(app.title, 'run', problems.length === 0 ? 'ok' : 'FAILED');
    expect(problems, `${app.title} (${app.output}):\n${problems.join('\n')}`).toEqual([]);
  }, 120_000);
});

describe('the keyscope CLI from its tarball', () => {
  it('npx keyscope --help runs, and the CLI issues and verifies a key on a SQLite file', async () => {
    const cwd = projects.main;
    const help = await run('npx', ['keyscope', '--help'], { cwd, timeoutMs: 60_000 });
    expect(help.code, describeRan(help)).toBe(0);
    expect(help.stdout, describeRan(help)).toMatch(/keys create/);

    const db = join(cwd, 'cli.db');
    const cli = (args: string[], env: Record<string, string> = {}) => run('npx', ['keyscope', ...args, '--db', db, '--json'], { cwd, env: cleanEnv(env), timeoutMs: 60_000 });
    const project = await cli(['projects', 'add', '--owner', 'user_1', '--name', 'Alpha', '--id', 'proj_a']);
    expect(project.code, describeRan(project)).toBe(0);
    const created = await cli(['keys', 'create', '--owner', 'user_1', '--name', 'ci', '--level', 'project', '--project', 'proj_a']);
    expect(created.code, describeRan(created)).toBe(0);
    const { key } = JSON.parse(created.stdout) as { key: string };
    const verified = await cli(['keys', 'verify', '--path', '/sites'], { KEYSCOPE_API_KEY: key });
    expect(verified.code, describeRan(verified)).toBe(0);
    expect(JSON.parse(verified.stdout), describeRan(verified)).toMatchObject({ ok: true, status: 200, auth: { level: 'project', projectId: 'proj_a' } });
  }, 120_000);
});
