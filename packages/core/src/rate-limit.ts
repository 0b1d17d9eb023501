import type { RateLimit } from './limits.js';

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
