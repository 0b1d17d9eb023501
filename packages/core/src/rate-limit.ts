import { LRUCache } from 'lru-cache';
import { nextQuotaReset, type QuotaRefill, type QuotaTake, type RateLimit } from './limits.js';
import { wholeNumberOption } from './options.js';

/** What counting one request against a key's rate limit decided. */
export interface RateVerdict {
  /** Whether the request is within the limit (it was counted) or must wait (it was not). */
  allowed: boolean;
  /** Requests the key may still make at once after this one. */
  remaining: number;
  /** Seconds until the key's allowance is whole again (`RateLimit`'s `t`). */
  resetSeconds: number;
  /** When refused: seconds until one more request is allowed (`Retry-After`); else 0. */
  retryAfterSeconds: number;
}

/**
 * Counts requests per key against the key's rate limit. The in-memory limiter counts per
 * process; `@keyscope/redis`'s counts once for every instance.
 */
export interface RateLimiter {
  /** Count one request of `keyId` at `now` (epoch ms) against `limit`, and say whether it may pass. */
  take(keyId: string, limit: RateLimit, now: number): RateVerdict | Promise<RateVerdict>;
}

/**
 * The default rate limiter: GCRA (the generic cell rate algorithm) per key, with a burst of the
 * whole limit. A key may make `limit` requests at once, then one more every `windowMs / limit`;
 * a refused request counts for nothing. Each key is one number (its theoretical arrival time)
 * in an LRU of `maxKeys` keys (default 100,000; a key pushed out starts afresh). Synchronous.
 * What a key owes is time, so when its limit changes the time owed is read against the new
 * limit: lowered, the key waits until it fits; raised, it gets the new pace at once and the new
 * burst as the owed time runs out.
 *
 * @example const verdict = new MemoryRateLimiter().take(keyId, { limit: 20, windowMs: 60_000 }, Date.now())
 */
export class MemoryRateLimiter implements RateLimiter {
  /** Theoretical arrival time per key, in whole microseconds since the epoch. */
  private readonly arrivals: LRUCache<string, number>;

  constructor(options: { maxKeys?: number } = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('MemoryRateLimiter(options): options must be an object');
    this.arrivals = new LRUCache({ max: wholeNumberOption(options.maxKeys ?? 100_000, 'options.maxKeys', 1) });
  }

  take(keyId: string, limit: RateLimit, now: number): RateVerdict {
    const interval = emissionInterval(limit);
    const at = Math.floor(now * 1000);
    const stored = this.arrivals.get(keyId);
    const tat = stored === undefined || stored < at ? at : stored;
    const ahead = tat - at;
    // Ahead of `now` by at most (limit - 1) intervals: the request fits in the burst.
    if (ahead > (limit.limit - 1) * interval) return refused(ahead, interval, limit.limit);
    this.arrivals.set(keyId, tat + interval);
    return allowed(ahead + interval, interval, limit.limit);
  }
}

/**
 * Microseconds between two cells: whole numbers keep the count exact (three per second pass
 * three at once, not two, as float milliseconds would risk). Rounded up, so the long-run rate
 * never exceeds the limit: above about 10,000 a second the rounding allows slightly fewer
 * (600,000 a second counts as 500,000), never more. `@keyscope/redis` counts with the same.
 *
 * @example emissionInterval({ limit: 7, windowMs: 60_000 }) === 8_571_429
 */
export function emissionInterval(limit: RateLimit): number {
  return Math.max(1, Math.ceil((limit.windowMs * 1000) / limit.limit));
}

/** `ahead`: how far the key's arrival time now is past `now` (µs), this request included. */
function allowed(ahead: number, interval: number, limit: number): RateVerdict {
  return { allowed: true, remaining: Math.max(0, limit - Math.ceil(ahead / interval)), resetSeconds: Math.ceil(ahead / 1e6), retryAfterSeconds: 0 };
}

/** `ahead`: as for {@link allowed}, without this request (which was not counted). */
function refused(ahead: number, interval: number, limit: number): RateVerdict {
  const wait = ahead - (limit - 1) * interval;
  return { allowed: false, remaining: 0, resetSeconds: Math.ceil(ahead / 1e6), retryAfterSeconds: Math.max(1, Math.ceil(wait / 1e6)) };
}

/** A store's `QuotaTake`, and how the quota refills when the caller knows it. */
type QuotaState = QuotaTake & { refill?: QuotaRefill | null };

const DAY_SECONDS = 86_400;

/**
 * The `RateLimit-Policy` and `RateLimit` response fields of draft-ietf-httpapi-ratelimit-headers-11
 * (23 May 2026, §3 and §4): structured-field lists of one item per policy, named by a string,
 * `"rate"` for the rate limit and `"quota"` for the quota.
 *
 * - `"rate"`: `q` the limit, `w` the window in seconds (rounded up when it is not whole: `w` has
 *   no fractions, and a longer window never invites more than the limit); `r` the remaining
 *   requests, `t` the seconds until the allowance is whole again. On a refused request `t` is the
 *   `Retry-After` instead (`r=0` until then), since the draft (§6) says `Retry-After` should not
 *   end before the effective window does.
 * - `"quota"`: `q` the limit, `w` the refill period: 86400 for a daily quota, the length of the
 *   current calendar month (28 to 31 days, ending at `resetAt`) for a monthly one, left out for a
 *   quota that never refills. Without `refill`, the period is told from `resetAt` (the next
 *   midnight, or the 1st of next month), and `w` is left out on the last day of a month, where it
 *   could be either. `r` the units left, `t` the seconds until `resetAt`, left out when the quota
 *   never refills.
 *
 * Either may be `undefined` (that policy is left out); with neither, no fields at all.
 *
 * @example limitHeaders({ limit: { limit: 20, windowMs: 60_000 }, verdict }, take, Date.now())
 * // { 'RateLimit-Policy': '"rate";q=20;w=60, "quota";q=1000;w=86400', RateLimit: '"rate";r=19;t=3, "quota";r=999;t=36000' }
 */
export function limitHeaders(
  rate: { limit: RateLimit; verdict: RateVerdict } | undefined,
  quota: (QuotaTake & { refill?: QuotaRefill | null }) | undefined,
  now: number,
): Record<string, string> {
  let policy = '';
  let state = '';
  if (rate !== undefined) {
    const { limit, verdict } = rate;
    policy = `"rate";q=${limit.limit};w=${Math.max(1, Math.ceil(limit.windowMs / 1000))}`;
    state = `"rate";r=${verdict.remaining};t=${verdict.allowed ? verdict.resetSeconds : verdict.retryAfterSeconds}`;
  }
  if (quota !== undefined) {
    const window = quotaWindowSeconds(quota, now);
    const separator = policy === '' ? '' : ', ';
    policy += `${separator}"quota";q=${quota.limit}${window === undefined ? '' : `;w=${window}`}`;
    state += `${separator}"quota";r=${quota.remaining}${quota.resetAt === null ? '' : `;t=${secondsUntil(quota.resetAt.getTime(), now)}`}`;
  }
  return policy === '' ? {} : { 'RateLimit-Policy': policy, RateLimit: state };
}

/**
 * `Retry-After` seconds for a used-up quota: until it refills (at least 1), or `undefined` when
 * it never does (waiting will not help).
 *
 * @example quotaRetryAfter({ granted: false, remaining: 0, limit: 100, resetAt: new Date(now + 90_500) }, now) === 91
 */
export function quotaRetryAfter(quota: QuotaTake, now: number): number | undefined {
  return quota.resetAt === null ? undefined : Math.max(1, secondsUntil(quota.resetAt.getTime(), now));
}

function secondsUntil(at: number, now: number): number {
  return Math.max(0, Math.ceil((at - now) / 1000));
}

function quotaWindowSeconds(quota: QuotaState, now: number): number | undefined {
  if (quota.resetAt === null || quota.refill === null) return undefined;
  const resetAt = quota.resetAt.getTime();
  let refill = quota.refill;
  if (refill === undefined) {
    const daily = resetAt === nextQuotaReset('day', now);
    const monthly = resetAt === nextQuotaReset('month', now);
    if (daily === monthly) return undefined; // the last day of a month (either), or neither
    refill = daily ? 'day' : 'month';
  }
  if (refill === 'day') return DAY_SECONDS;
  const end = new Date(resetAt);
  return (resetAt - Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 1, 1)) / 1000;
}
