// The real Redis the Redis tests run against (REDIS_URL, default 127.0.0.1:6379). A server that
// cannot be reached fails the tests: .ci/run starts one, and a skip would hide a broken package.
import { randomBytes } from 'node:crypto';
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { MemoryStore, type AuthResult, type KeyAdminStore } from '@keyscope/core';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const target = new URL(REDIS_URL);
const targetPort = Number(target.port || 6379);
const targetHost = target.hostname;

/** A name no other test run uses: key prefixes, channels, connection names. */
export const unique = (what: string) => `keyscope-test:${what}:${randomBytes(6).toString('hex')}`;

const opened = new Set<Redis>();

/**
 * A connection, ready, that reconnects quickly (the outage tests wait for it). Errors are
 * collected, not printed; `close()` all at the end with {@link closeAll}.
 */
export async function connect(options: RedisOptions = {}, url = REDIS_URL): Promise<Redis & { errors: Error[] }> {
  const client = new Redis(url, { retryStrategy: () => 50, ...options }) as Redis & { errors: Error[] };
  client.errors = [];
  client.on('error', (error) => client.errors.push(error));
  opened.add(client);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Redis at ${url} is not reachable: start it (see .ci/run); the Redis tests need a real server`)), 5_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return client;
}

export function closeAll(): void {
  for (const client of opened) client.disconnect();
  opened.clear();
}

/** Delete every key under `prefix` (each test run uses its own). */
export async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  if (keys.length > 0) await client.del(...keys);
}

/** Wait until `check()` holds, polling every few ms; fails after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A TCP proxy to the Redis server on loopback, to take Redis away from one connection: `stop()`
 * closes it and its connections (connection refused), `stall()` keeps connections open but
 * forwards nothing (no answer), `start()` brings it back on the same port.
 */
export class RedisProxy {
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private stalled = false;
  /** Delay of what clients send to Redis (in order), e.g. to widen the time a SUBSCRIBE takes. */
  delayMs = 0;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.stalled = false;
    const server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(targetPort, targetHost);
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(from);
        from.on('data', (chunk) => {
          if (this.stalled) return;
          if (from === client && this.delayMs > 0) setTimeout(() => to.write(chunk), this.delayMs);
          else to.write(chunk);
        });
        from.on('error', () => to.destroy());
        from.on('close', () => {
          this.sockets.delete(from);
          to.destroy();
        });
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  stall(): void {
    this.stalled = true;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A store that reports nothing (a shared database without change notifications): only a bus tells an instance. */
export function silentStore(): KeyAdminStore & { addProject: MemoryStore['addProject'] } {
  const memory = new MemoryStore();
  const store = Object.create(memory) as KeyAdminStore & { addProject: MemoryStore['addProject'] };
  (store as { subscribe?: unknown }).subscribe = undefined;
  return store;
}

export const headers = (key: string) => ({ 'x-api-key': key });
export const code = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);
export const status = (result: AuthResult) => (result.ok ? 200 : result.error.status);
