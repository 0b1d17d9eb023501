import { LRUCache } from 'lru-cache';

/**
 * What counting one failure decided: `counted` (under the limit: 401), `tripped` (this failure
 * reached the limit: 401, and the client waits from now on), `over` (beyond the limit: 429).
 */
export interface ThrottleVerdict {
  state: 'counted' | 'tripped' | 'over';
  /** Seconds until the client may try again (0 when `counted`). */
  retryAfterSeconds: number;
}

/**
 * Counts failed attempts per client and says when a client must wait. The in-memory
 * {@link MemoryThrottle} counts per process; a shared implementation (one counter for many
 * instances, e.g. on Redis) can be passed as `createKeyscope({ throttle })` instead.
 */
export interface AttemptThrottle {
  /**
   * Seconds `client` must wait from what this instance knows now, or 0. Synchronous: asked
   * before a store lookup, so a throttled client costs no store read.
   */
  retryAfter(client: string, now: number): number;
  /** Count one failed attempt of `client` (a shared throttle: one round trip) and say what it decided. */
  fail(client: string, now: number): ThrottleVerdict | Promise<ThrottleVerdict>;
}

/**
 * The default throttle: at most `maxFailures` failures per client in a fixed window of
 * `windowMs`, in an LRU of `maxClients` clients.
 *
 * @example const throttle = new MemoryThrottle({ maxFailures: 10, windowMs: 60_000, maxClients: 10_000 })
 */
export class MemoryThrottle implements AttemptThrottle {
  private readonly clients: LRUCache<string, { count: number; resetAt: number }>;

  constructor(private readonly limits: { maxFailures: number; windowMs: number; maxClients: number }) {
    this.clients = new LRUCache({ max: limits.maxClients });
  }

  retryAfter(client: string, now: number): number {
    const entry = this.clients.get(client);
    if (!entry || entry.resetAt <= now || entry.count < this.limits.maxFailures) return 0;
    return Math.ceil((entry.resetAt - now) / 1000);
  }

  fail(client: string, now: number): ThrottleVerdict {
    let entry = this.clients.get(client);
    if (!entry || entry.resetAt <= now) this.clients.set(client, (entry = { count: 1, resetAt: now + this.limits.windowMs }));
    else entry.count++;
    const { maxFailures } = this.limits;
    const state = entry.count < maxFailures ? 'counted' : entry.count === maxFailures ? 'tripped' : 'over';
    return { state, retryAfterSeconds: state === 'counted' ? 0 : Math.ceil((entry.resetAt - now) / 1000) };
  }
}

/**
 * The unit a throttle counts: an IPv4 address as it is; an IPv6 address by its /64 network (one
 * subscriber usually holds a whole /64, so counting single addresses would let an attacker reset
 * the count for free); an IPv4-mapped IPv6 address as the IPv4 address.
 *
 * @example throttleClient('2001:db8:1:2:aaaa::1') === '2001:db8:1:2::/64'
 */
export function throttleClient(address: string): string {
  if (!address.includes(':')) return address;
  const zone = address.indexOf('%');
  const groups = hextets((zone === -1 ? address : address.slice(0, zone)).toLowerCase());
  if (!groups) return address;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, or `undefined` if it is not one. */
function hextets(address: string): number[] | undefined {
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const parts = halves.map((half) => (half === '' ? [] : half.split(':')));
  // A dotted IPv4 tail (`::ffff:192.0.2.1`) stands for the last two groups.
  const last = parts[parts.length - 1]!;
  const dotted = last.length > 0 && last[last.length - 1]!.includes('.') ? last.pop()!.split('.') : undefined;
  if (dotted) {
    if (dotted.length !== 4 || !dotted.every((o) => /^\d{1,3}$/.test(o) && Number(o) < 256)) return undefined;
    const [a, b, c, d] = dotted.map(Number) as [number, number, number, number];
    last.push(((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
  }
  const given = parts.flat();
  if (!given.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  const zeros = 8 - given.length;
  if (halves.length === 1 ? zeros !== 0 : zeros < 1) return undefined;
  const groups = halves.length === 1 ? given : [...parts[0]!, ...Array<string>(zeros).fill('0'), ...parts[1]!];
  return groups.map((g) => parseInt(g, 16));
}
