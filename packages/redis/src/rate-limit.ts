import { createHash } from 'node:crypto';
import { emissionInterval, MemoryRateLimiter, wholeNumberOption, type RateLimit, type RateLimiter, type RateVerdict } from '@keyscope/core';
import { isRedisClient, outageReporter, type RedisClient } from './client.js';

export interface RedisRateLimiterOptions {
  /** Your ioredis client; the limiter sends one script call per counted request on it, nothing else. */
  client: RedisClient;
  /** Prefix of the state keys (`<prefix><key id>`). Default `'keyscope:rate:'`. */
  prefix?: string;
  /** How long a request waits for Redis before it is counted in memory instead. Default 500. */
  timeoutMs?: number;
  /** After Redis failed, how long to count in memory before asking it again. Default 1,000. */
  retryMs?: number;
  /** How many keys the in-memory fallback remembers. Default 100,000. */
  maxKeys?: number;
  /** Told once per outage (default: one `console.warn`); meanwhile requests are counted per process. */
  onError?: (error: unknown) => void;
}

// GCRA in one round trip, the same arithmetic as MemoryRateLimiter: the key holds its theoretical
// arrival time in whole microseconds, read against Redis' own clock (TIME), so the instances'
// clocks do not matter. A refused request writes nothing; an allowed one sets the new time with
// an expiry at the moment it stops mattering (the allowance is whole again), so idle keys vanish.
// Replies {allowed, remaining, resetSeconds, retryAfterSeconds}. Needs Redis 5 or later (a script
// that reads TIME before it writes is replicated by its effects, the default since 5).
const SCRIPT = `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = (tonumber(ARGV[2]) - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local ahead = tat - now
if ahead > burst then
  return {0, 0, math.ceil(ahead / 1000000), math.ceil((ahead - burst) / 1000000)}
end
ahead = ahead + interval
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(ahead / 1000))
return {1, tonumber(ARGV[2]) - math.ceil(ahead / interval), math.ceil(ahead / 1000000), 0}`;
const SHA = createHash('sha1').update(SCRIPT).digest('hex');

/**
 * A per-key rate limiter that counts on Redis, so that every instance shares one allowance per
 * key: GCRA with a burst of the whole limit, one atomic script call per request, timed by Redis'
 * clock. While Redis is unreachable or slower than `timeoutMs` it counts per process (a
 * `MemoryRateLimiter`), told once per outage to `onError`, and never fails a request.
 *
 * @example createKeyscope({ store, limits: { user: { rateLimit: { limit: 600, windowMs: 60_000 } }, limiter: createRedisRateLimiter({ client }) } })
 */
export function createRedisRateLimiter(options: RedisRateLimiterOptions): RateLimiter {
  if (options === null || typeof options !== 'object') throw new TypeError('createRedisRateLimiter(options): options must be an object');
  const { client, prefix = 'keyscope:rate:', onError } = options;
  if (!isRedisClient(client)) throw new TypeError('createRedisRateLimiter: options.client must be an ioredis client (new Redis(...))');
  const timeoutMs = wholeNumberOption(options.timeoutMs ?? 500, 'options.timeoutMs', 1);
  const retryMs = wholeNumberOption(options.retryMs ?? 1_000, 'options.retryMs', 1);
  const maxKeys = wholeNumberOption(options.maxKeys ?? 100_000, 'options.maxKeys', 1);
  if (typeof prefix !== 'string') throw new TypeError('createRedisRateLimiter: options.prefix must be a string');
  if (onError !== undefined && typeof onError !== 'function') throw new TypeError('createRedisRateLimiter: options.onError must be a function');

  const fallback = new MemoryRateLimiter({ maxKeys });
  const outage = outageReporter(onError, 'rate limiter; counting requests per process until it is back');
  let skipUntil = 0;

  function inMemory(keyId: string, limit: RateLimit, now: number, error: unknown): RateVerdict {
    outage.report(error);
    return fallback.take(keyId, limit, now);
  }

  async function run(key: string, interval: number, limit: number): Promise<unknown> {
    try {
      return await client.evalsha(SHA, 1, key, interval, limit);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return await client.eval(SCRIPT, 1, key, interval, limit);
    }
  }

  return {
    async take(keyId, limit, now) {
      if (client.status !== 'ready') return inMemory(keyId, limit, now, new Error(`the connection is ${client.status}`));
      // Real time, not the caller's clock: this is about the network.
      if (Date.now() < skipUntil) return inMemory(keyId, limit, now, new Error('Redis failed a moment ago'));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      // The same interval as MemoryRateLimiter's (whole microseconds, rounded up), so both count alike.
      const counted = run(prefix + keyId, emissionInterval(limit), limit.limit);
      counted.catch(() => {}); // after a timeout, its late failure is nobody's business
      let reply: unknown;
      try {
        reply = await Promise.race([counted, timeout]);
        if (!Array.isArray(reply) || reply.length !== 4) throw new Error(`unexpected reply from the rate-limit script: ${JSON.stringify(reply)}`);
      } catch (error) {
        skipUntil = Date.now() + retryMs;
        return inMemory(keyId, limit, now, error);
      } finally {
        clearTimeout(timer);
      }
      outage.recovered();
      const [allowed, remaining, resetSeconds, retryAfterSeconds] = reply.map(Number) as [number, number, number, number];
      return { allowed: allowed === 1, remaining, resetSeconds, retryAfterSeconds };
    },
  };
}
