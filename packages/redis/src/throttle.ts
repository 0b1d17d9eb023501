import { createHash } from 'node:crypto';
import { MemoryThrottle, wholeNumberOption, type AttemptThrottle, type ThrottleVerdict } from '@keyscope/core';
import { LRUCache } from 'lru-cache';
import { isRedisClient, outageReporter, type RedisClient } from './client.js';

export interface RedisThrottleOptions {
  /** Your ioredis client; the throttle sends one script call per failed attempt on it, nothing else. */
  client: RedisClient;
  /** Failures per client and window, across every instance; the one that reaches it trips the client. */
  maxFailures: number;
  /** The window, from a client's first failure (fixed, like `MemoryThrottle`'s). */
  windowMs: number;
  /** Prefix of the counter keys (`<prefix><client address or /64>`). Default `'keyscope:throttle:'`. */
  prefix?: string;
  /** How many clients this instance remembers (tripped clients; the fallback's counters). Default 10,000. */
  maxClients?: number;
  /** How long a failure waits for Redis before it is counted in memory instead. Default 500. */
  timeoutMs?: number;
  /** After Redis failed, how long to count in memory before asking it again. Default 1,000. */
  retryMs?: number;
  /** Told once per outage (default: one `console.warn`); meanwhile failures are counted per process. */
  onError?: (error: unknown) => void;
}

// One round trip: count, start the window on the first failure, say how much of it is left.
// (`PEXPIRE … NX` would need Redis 7; the script works on any Redis with Lua.)
const SCRIPT = `local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`;
const SHA = createHash('sha1').update(SCRIPT).digest('hex');

/**
 * A failed-attempt throttle that counts on Redis, so that every instance sees one count per
 * client: `maxFailures` in total, wherever they land, then 429 on any instance. A successful
 * request costs no Redis command. While Redis is unreachable it counts per process (a
 * `MemoryThrottle`), told once to `onError`, and never fails a request.
 *
 * @example createKeyscope({ store, throttle: createRedisThrottle({ client, maxFailures: 10, windowMs: 60_000 }) })
 */
export function createRedisThrottle(options: RedisThrottleOptions): AttemptThrottle {
  if (options === null || typeof options !== 'object') throw new TypeError('createRedisThrottle(options): options must be an object');
  const { client, prefix = 'keyscope:throttle:', onError } = options;
  if (!isRedisClient(client)) throw new TypeError('createRedisThrottle: options.client must be an ioredis client (new Redis(...))');
  const maxFailures = wholeNumberOption(options.maxFailures, 'options.maxFailures', 1);
  const windowMs = wholeNumberOption(options.windowMs, 'options.windowMs', 1);
  const maxClients = wholeNumberOption(options.maxClients ?? 10_000, 'options.maxClients', 1);
  const timeoutMs = wholeNumberOption(options.timeoutMs ?? 500, 'options.timeoutMs', 1);
  const retryMs = wholeNumberOption(options.retryMs ?? 1_000, 'options.retryMs', 1);
  if (typeof prefix !== 'string') throw new TypeError('createRedisThrottle: options.prefix must be a string');
  if (onError !== undefined && typeof onError !== 'function') throw new TypeError('createRedisThrottle: options.onError must be a function');

  const fallback = new MemoryThrottle({ maxFailures, windowMs, maxClients });
  /** Clients this instance saw tripped or over, and when their window ends. */
  const blocked = new LRUCache<string, number>({ max: maxClients });
  const outage = outageReporter(onError, 'failed-attempt throttle; counting failures per process until it is back');
  let skipUntil = 0;

  function inMemory(client: string, now: number, error: unknown): ThrottleVerdict {
    outage.report(error);
    return fallback.fail(client, now);
  }

  async function count(key: string): Promise<[number, number]> {
    try {
      return (await client.evalsha(SHA, 1, key, windowMs)) as [number, number];
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return (await client.eval(SCRIPT, 1, key, windowMs)) as [number, number];
    }
  }

  return {
    retryAfter(client, now) {
      const until = blocked.get(client);
      if (until !== undefined && until > now) return Math.ceil((until - now) / 1000);
      return fallback.retryAfter(client, now);
    },
    async fail(address, now) {
      if (client.status !== 'ready') return inMemory(address, now, new Error(`the connection is ${client.status}`));
      // Real time, not the core's clock: this is about the network.
      if (Date.now() < skipUntil) return inMemory(address, now, new Error('Redis failed a moment ago'));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      const counted = count(prefix + address);
      counted.catch(() => {}); // after a timeout, its late failure is nobody's business
      let reply: [number, number];
      try {
        reply = await Promise.race([counted, timeout]);
      } catch (error) {
        skipUntil = Date.now() + retryMs;
        return inMemory(address, now, error);
      } finally {
        clearTimeout(timer);
      }
      outage.recovered();
      const [n, ttl] = reply.map(Number) as [number, number];
      const state = n < maxFailures ? 'counted' : n === maxFailures ? 'tripped' : 'over';
      if (state === 'counted') return { state, retryAfterSeconds: 0 };
      blocked.set(address, now + ttl);
      return { state, retryAfterSeconds: Math.max(1, Math.ceil(ttl / 1000)) };
    },
  };
}
