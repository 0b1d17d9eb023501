/**
 * Shared by the scale tests: a fresh PostgreSQL database per test file on the real server
 * (127.0.0.1:5432), a unique Redis prefix, in-process key administration on that database, a
 * fault-injecting TCP proxy in front of PostgreSQL, and HTTP helpers bound to 127.0.0.1.
 *
 * A server that is not running is a failure, never a skip: `freshDatabase` throws.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { createKeyscope } from '@keyscope/core';
// Imported from the sources, as the other suites import the packages (tsconfig paths / aliases).
import { PostgresStore } from '../../packages/postgres/src/index.js';
import type pgTypes from 'pg';

// `pg` is a dependency of @keyscope/postgres, resolved from there (the root has no `pg` of its own).
const pg = createRequire(new URL('../../packages/postgres/package.json', import.meta.url))('pg') as typeof pgTypes;

export const PG_HOST = '127.0.0.1';
export const PG_PORT = 5432;
export const REDIS_URL = 'redis://127.0.0.1:6379';
const ADMIN_URL = `postgres://postgres@${PG_HOST}:${PG_PORT}/postgres`;

export function pgUrl(database: string, port = PG_PORT): string {
  return `postgres://postgres@${PG_HOST}:${port}/${database}`;
}

/** A unique name for this run: database, Redis prefix. */
export function runId(what: string): string {
  return `ks_scale_${what}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

/**
 * CREATE DATABASE for this test file; dropped (WITH (FORCE): the servers' connections go too)
 * after it. Throws when PostgreSQL is not reachable.
 */
export async function freshDatabase(what: string): Promise<{ name: string; url: string }> {
  const name = runId(what);
  const admin = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5_000 });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(`PostgreSQL is required at ${PG_HOST}:${PG_PORT} (start it: pg_ctlcluster … main start): ${(error as Error).message}`);
  }
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  afterAll(async () => {
    const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5_000 });
    await client.connect();
    try {
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    } finally {
      await client.end();
    }
  });
  return { name, url: pgUrl(name) };
}

/**
 * Key administration on the test's database, in-process, through the same store class the
 * servers use (no LISTEN: it reports only its own writes). The schema is migrated here.
 */
export async function adminOn(url: string) {
  const store = new PostgresStore({ connectionString: url, listen: false });
  await store.migrate();
  const ks = createKeyscope({ store, usage: false });
  afterAll(async () => {
    await ks.close();
    await store.close();
  });
  return { store, ks };
}

// ---------------------------------------------------------------------------------------------

export type ProxyMode = 'pass' | 'refuse' | 'stall' | 'down';

/**
 * A TCP proxy on 127.0.0.1 (a free port) to PostgreSQL, with faults:
 * - `pass`: forward both ways;
 * - `refuse`: new connections are accepted and closed at once (a server refusing);
 * - `stall`: new connections are accepted and nothing is forwarded; existing ones stop
 *   forwarding too (both sides paused, so nothing is lost or reordered: `pass` resumes them);
 * - `down`: nothing listens on the port (ECONNREFUSED: PostgreSQL unreachable), and the
 *   connections open when it went down are cut;
 * - `cut()`: destroys every connection open now (both sides), whatever the mode.
 */
export class FaultProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket | undefined }>();
  private current: ProxyMode = 'pass';
  /** Connections accepted in each mode, for the tests' own bookkeeping. */
  accepted = 0;
  port = 0;

  constructor(private readonly target = { host: PG_HOST, port: PG_PORT }) {}

  get mode(): ProxyMode {
    return this.current;
  }

  async start(): Promise<this> {
    await this.listen(0);
    return this;
  }

  private listen(port: number): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        this.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    client.on('error', () => {});
    if (this.current === 'refuse') {
      client.destroy();
      return;
    }
    const pair: { client: net.Socket; upstream: net.Socket | undefined } = { client, upstream: undefined };
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      pair.upstream?.destroy();
    };
    client.on('close', drop);
    if (this.current === 'stall') {
      // Accepted, never answered: the client's own timeouts must end it.
      client.pause();
      return;
    }
    this.connectUpstream(pair, drop);
  }

  private connectUpstream(pair: { client: net.Socket; upstream: net.Socket | undefined }, drop: () => void): void {
    const upstream = net.connect(this.target.port, this.target.host);
    pair.upstream = upstream;
    upstream.on('error', () => {});
    upstream.on('close', drop);
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
    if (this.current === 'stall') this.pausePair(pair);
  }

  private pausePair(pair: { client: net.Socket; upstream: net.Socket | undefined }): void {
    pair.client.pause();
    pair.upstream?.pause();
  }

  async set(mode: ProxyMode): Promise<void> {
    const previous = this.current;
    this.current = mode;
    if (mode === 'down' && previous !== 'down') {
      // A host that is gone: the port stops listening and nothing open survives.
      const server = this.server!;
      this.server = undefined;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      this.cut();
      await closed;
      return;
    }
    if (previous === 'down' && mode !== 'down') await this.listen(this.port);
    if (mode === 'stall') for (const pair of this.pairs) this.pausePair(pair);
    if (mode === 'pass') {
      for (const pair of this.pairs) {
        if (pair.upstream === undefined) {
          // Accepted during a stall: connect it now, as a healed network would.
          this.connectUpstream(pair, () => {
            this.pairs.delete(pair);
            pair.client.destroy();
            pair.upstream?.destroy();
          });
        }
        pair.client.resume();
        pair.upstream?.resume();
      }
    }
  }

  /** Destroy every connection open now. */
  cut(): number {
    const count = this.pairs.size;
    for (const pair of [...this.pairs]) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.pairs.clear();
    return count;
  }

  get open(): number {
    return this.pairs.size;
  }

  async close(): Promise<void> {
    this.cut();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
  ms: number;
}

const agentless = { agent: false as const };

/** GET `path` on 127.0.0.1:`port` with the key, a fresh connection each time (no pooling surprises), bounded. */
export function get(port: number, path: string, key?: string, options: { timeoutMs?: number; localAddress?: string } = {}): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...agentless,
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        headers: key === undefined ? {} : { 'X-API-Key': key },
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(body);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json, ms: performance.now() - started });
        });
      },
    );
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error(`no answer from :${port}${path} within ${options.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The p-th percentile (nearest rank) of `values`. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

// ---------------------------------------------------------------------------------------------


export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI, as `pnpm keyscope` runs it (needs `pnpm build`). */
const CLI_BIN = `${ROOT}packages/cli/dist/bin.js`;
export const EXAMPLE_CONFIG = 'examples/keyscope.config.ts';
const CLI_TIMEOUT_MS = 20_000;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** performance.now() when the process exited. */
  exitedAt: number;
}

/**
 * `keyscope <args>` from the repository root with only `env`'s KEYSCOPE_* / DATABASE_URL /
 * REDIS_URL variables (none inherited), killed after 20 s.
 */
export function keyscope(args: string[], env: Record<string, string>): Promise<CliRun> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(KEYSCOPE_|DATABASE_URL$|REDIS_URL$)/.test(name)));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      const exitedAt = performance.now();
      clearTimeout(timer);
      // The streams may still hold the last output: wait for them, keep the exit time.
      let pending = 2;
      const done = () => --pending === 0 && resolve({ code, stdout, stderr, exitedAt });
      if (child.stdout.readableEnded) done();
      else child.stdout.once('end', done);
      if (child.stderr.readableEnded) done();
      else child.stderr.once('end', done);
    });
  });
}

/** `keyscope <args> --json` through examples/keyscope.config.ts, expecting exit 0. */
export async function keyscopeJson<T>(args: string[], env: Record<string, string>): Promise<{ doc: T; exitedAt: number }> {
  const run = await keyscope([...args, '--config', EXAMPLE_CONFIG, '--json'], env);
  if (run.code !== 0) throw new Error(`keyscope ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return { doc: JSON.parse(run.stdout) as T, exitedAt: run.exitedAt };
}
