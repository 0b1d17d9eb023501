import { KeyscopeError } from './errors.js';

/**
 * Per-key rate limits and quotas: the shapes stores keep and limiters count, and the UTC
 * calendar a quota refills on. Counting lives in `rate-limit.ts` (requests per window) and in
 * the stores (`consumeQuota`, durable).
 */

/** A rate limit's bounds, for a key's own and a level's default: up to 1e9 requests per 1 s to 366 days. */
export const RATE_LIMIT_BOUNDS = { maxLimit: 1_000_000_000, minWindowMs: 1_000, maxWindowMs: 366 * 86_400_000 } as const;
/** The largest quota: the RateLimit fields are structured-field integers, at most 15 digits (RFC 8941). */
export const MAX_QUOTA = 999_999_999_999_999;

/** At most `limit` requests per `windowMs`, counted per key (GCRA: the window refills evenly). */
export interface RateLimit {
  limit: number;
  windowMs: number;
}

/** When a quota starts again: at 00:00 UTC each day, or on the 1st of each month. */
export type QuotaRefill = 'day' | 'month';

/**
 * A key's quota as a store keeps it: `remaining` of `limit` requests, in all (`refill: null`)
 * or until `resetAt`, when `remaining` becomes `limit` again (applied by the store on the first
 * request after it).
 */
export interface Quota {
  limit: number;
  remaining: number;
  refill: QuotaRefill | null;
  /** The next refill (epoch-based `Date`); `null` when the quota never refills. */
  resetAt: Date | null;
}

/** What one atomic `consumeQuota` answered. */
export interface QuotaTake {
  /** Whether this request got one of the remaining units (`false`: the quota is used up). */
  granted: boolean;
  /** Units left after this request. */
  remaining: number;
  limit: number;
  /** How the quota refills (`null`: never). */
  refill: QuotaRefill | null;
  /** The next refill, or `null` when the quota never refills. */
  resetAt: Date | null;
}

/**
 * A key's limits as set by `keys.create` or `keys.setLimits`: a field left out stays as it is,
 * `null` removes it. A quota's `remaining` defaults to its `limit`.
 */
export interface KeyLimitsInput {
  rateLimit?: RateLimit | null;
  quota?: { limit: number; remaining?: number; refill?: QuotaRefill | null } | null;
}

/** What a store writes for `setKeyLimits`: `undefined` leaves a field, `null` removes it. */
export interface KeyLimitsUpdate {
  rateLimit?: RateLimit | null;
  quota?: Quota | null;
}

/**
 * The first refill moment after `at` (epoch ms): the next 00:00 UTC, or the 1st of next month.
 *
 * @example nextQuotaReset('day', Date.UTC(2026, 10, 30, 15)) === Date.UTC(2026, 11, 1)
 */
export function nextQuotaReset(refill: QuotaRefill, at: number): number {
  const d = new Date(at);
  return refill === 'day'
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/**
 * A quota as it stands at `at`: a refill that is due is applied (what the store does on the next
 * request), so lists show what a request would find.
 *
 * @example quotaAt({ limit: 50, remaining: 0, refill: 'day', resetAt: yesterday }, Date.now()).remaining === 50
 */
export function quotaAt(quota: Quota, at: number): Quota {
  if (quota.refill === null || quota.resetAt === null || quota.resetAt.getTime() > at) return quota;
  return { limit: quota.limit, remaining: quota.limit, refill: quota.refill, resetAt: new Date(nextQuotaReset(quota.refill, at)) };
}

/**
 * For stores: a limit's number as it may be written, `invalid_argument` unless finite (NaN would
 * turn every comparison with it into a grant or a refusal). The admin API checks limits fully;
 * this keeps a direct store caller from writing nonsense.
 *
 * @example rate_limit: finiteLimit(rateLimit.limit, 'rateLimit.limit')
 */
export function finiteLimit(value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new KeyscopeError('invalid_argument', `${name} must be a finite number, got ${String(value)}`);
  return value;
}

/**
 * For stores: `consumeQuota`'s `at` as epoch ms, `invalid_argument` unless a valid `Date`.
 *
 * @example const now = quotaTime(at)
 */
export function quotaTime(at: Date): number {
  const time = at instanceof Date ? at.getTime() : NaN;
  if (Number.isNaN(time)) throw new KeyscopeError('invalid_argument', `consumeQuota(keyId, at): at must be a valid Date, got ${String(at)}`);
  return time;
}
