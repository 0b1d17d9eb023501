import { keyStatus, quotaAt, type KeyInfo, type KeyStatus, type KeyUsage, type Project, type Quota, type RateLimit } from '@keyscope/core';

/** The `--json` shape of a key in `keys create` / `keys rotate`. */
export interface KeyJson {
  id: string;
  name: string;
  ownerId: string;
  level: 'user' | 'project';
  projectId: string | null;
  start: string;
  /** `signed` for a signed key (a JWS), `opaque` for any other. */
  kind: 'opaque' | 'signed';
  createdAt: string;
  expiresAt: string | null;
}

/** The `--json` shape of a key in `keys list`, `keys revoke`, `keys limits`: never the plaintext, never the hash. */
export interface ListedKeyJson extends KeyJson {
  revokedAt: string | null;
  lastUsedAt: string | null;
  /** At the time of listing: `expiring` is active but expires within 7 days. */
  status: KeyStatus;
  /** The key's own rate limit, as core returns it; `null`: none (its level's default, if any, applies). */
  rateLimit: RateLimit | null;
  /** The key's quota as a request would find it now (a refill that is due shown as done); `null`: unlimited. */
  quota: { limit: number; remaining: number; refill: 'day' | 'month' | null; resetAt: string | null } | null;
}

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

/** A key as `keys create` / `keys rotate --json` print it. */
export function keyJson(record: KeyInfo): KeyJson {
  return {
    id: record.id,
    name: record.name,
    ownerId: record.ownerId,
    level: record.level,
    projectId: record.projectId,
    start: record.start,
    kind: record.kind === 'signed' ? 'signed' : 'opaque',
    createdAt: record.createdAt.toISOString(),
    expiresAt: iso(record.expiresAt),
  };
}

/** A key as `keys list --json` prints it, with its status and quota at `now` (core's {@link keyStatus}, {@link quotaAt}). */
export function listedKeyJson(record: KeyInfo, now: number): ListedKeyJson {
  const rate = record.rateLimit ?? null;
  const quota = quotaNow(record, now);
  return {
    ...keyJson(record),
    revokedAt: iso(record.revokedAt),
    lastUsedAt: iso(record.lastUsedAt),
    status: keyStatus(record, now),
    rateLimit: rate === null ? null : { limit: rate.limit, windowMs: rate.windowMs },
    quota: quota === null ? null : { limit: quota.limit, remaining: quota.remaining, refill: quota.refill, resetAt: iso(quota.resetAt) },
  };
}

/**
 * A key's quota as the next request would find it. `keys list --all` reads records straight
 * from the store, where a refill that is due is not applied yet; `quotaAt` leaves others as they are.
 */
function quotaNow(record: KeyInfo, now: number): Quota | null {
  return record.quota == null ? null : quotaAt(record.quota, now);
}

// Largest unit first, so 60 000 ms reads `/min` rather than `/60s`; each form is one
// `--rate-limit` accepts, so what is printed can be typed back.
const RATE_UNITS = [
  [86_400_000, 'day', 'd'],
  [3_600_000, 'hour', 'h'],
  [60_000, 'min', 'min'],
  [1_000, 's', 's'],
] as const;

/**
 * A rate limit the way `--rate-limit` takes it.
 *
 * @example rateText({ limit: 100, windowMs: 60_000 }) === '100/min'
 * @example rateText({ limit: 20, windowMs: 90_000 }) === '20/90s'
 */
export function rateText(rate: RateLimit): string {
  for (const [ms, one, short] of RATE_UNITS) {
    if (rate.windowMs % ms === 0) {
      const count = rate.windowMs / ms;
      return count === 1 ? `${rate.limit}/${one}` : `${rate.limit}/${count}${short}`;
    }
  }
  // Set from code with a window of no whole seconds: the CLI cannot type it back, but shows it.
  return `${rate.limit}/${rate.windowMs}ms`;
}

/** A key's limits in a table cell: `100/min, quota 37/50 (day)`, or `-` for none. */
export function limitsCell(record: KeyInfo, now: number): string {
  const quota = quotaNow(record, now);
  const parts = [
    ...(record.rateLimit ? [rateText(record.rateLimit)] : []),
    ...(quota ? [`quota ${quota.remaining}/${quota.limit}${quota.refill ? ` (${quota.refill})` : ''}`] : []),
  ];
  return parts.length === 0 ? '-' : parts.join(', ');
}

/**
 * A key's limits in a sentence, for `keys create` and `keys limits`:
 * `rate limit 100/min; quota 37 of 50 left, refilled each day (next 2026-06-16T00:00:00Z)`.
 */
export function limitsText(record: KeyInfo, now: number): string {
  const quota = quotaNow(record, now);
  const rate = record.rateLimit ? `rate limit ${rateText(record.rateLimit)}` : 'no rate limit of its own';
  const quotaPart =
    quota === null
      ? 'no quota'
      : `quota ${quota.remaining} of ${quota.limit} left, ` +
        (quota.refill === null ? 'never refilled' : `refilled each ${quota.refill} (next ${when(quota.resetAt)})`);
  return `${rate}; ${quotaPart}`;
}

/** Has the key a rate limit or a quota of its own? */
export function hasLimits(record: KeyInfo): boolean {
  return record.rateLimit != null || record.quota != null;
}

/** A key's usage as `keys usage --json` prints it. */
export function usageJson(usage: KeyUsage) {
  return {
    keyId: usage.keyId,
    lastUsedAt: iso(usage.lastUsedAt),
    total: usage.days.reduce((sum, d) => sum + d.count, 0),
    days: usage.days.map((d) => ({ day: d.day, count: d.count })),
  };
}

/** A date for people: ISO 8601 to the second, or a dash. */
export function when(date: Date | null, none = '-'): string {
  return date === null ? none : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Left-aligned columns under an upper-case header. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/**
 * The `keys list` table; with `owner`, an OWNER column (`keys list --all`). A LIMITS column comes
 * last when any listed key has a rate limit or a quota: a list without limits reads as before.
 */
export function keysTable(records: readonly KeyInfo[], now: number, columns: { owner?: boolean } = {}): string {
  const owner = columns.owner === true;
  const limits = records.some(hasLimits);
  return table(
    ['ID', ...(owner ? ['OWNER'] : []), 'NAME', 'LEVEL', 'PROJECT', 'START', 'STATUS', 'CREATED', 'EXPIRES', 'LAST USED', ...(limits ? ['LIMITS'] : [])],
    records.map((r) => [
      r.id,
      ...(owner ? [r.ownerId] : []),
      r.name,
      r.kind === 'signed' ? `${r.level} (signed)` : r.level,
      r.projectId ?? '-',
      `${r.start}…`,
      keyStatus(r, now),
      when(r.createdAt),
      when(r.expiresAt),
      when(r.lastUsedAt, 'never'),
      ...(limits ? [limitsCell(r, now)] : []),
    ]),
  );
}

/** The `projects list` table. */
export function projectsTable(projects: readonly Project[]): string {
  return table(['ID', 'NAME'], projects.map((p) => [p.id, p.name]));
}

/** How many base62 characters after `<prefix>_` make text key material (key ids have 20). */
export const REDACT_MIN_BODY = 24;

// `<prefix>_` and a long base62 run: a key, a key with characters added, or most of one. A key
// missing its last characters is as good as whole (the tail is a checksum of the rest), so the
// length is only a floor, set above the 20 characters of a key id.
const PREFIXED = new RegExp(`[a-z][a-z0-9]{0,15}_[0-9A-Za-z]{${REDACT_MIN_BODY},}`, 'g');
// A key's body without its prefix: a long base62 run in both cases (ids, hex and words are not).
const BARE = /[0-9A-Za-z]{30,}/g;
// A signed key (a JWS: `eyJ…` segments joined by dots), or a long base64url run such as its
// signature alone.
const SIGNED = /eyJ[0-9A-Za-z_-]{8,}(?:\.[0-9A-Za-z_-]*){0,4}/g;
const BASE64URL = /[0-9A-Za-z_-]{40,}/g;

/**
 * Hide anything shaped like a key or most of one, checksum or not, whatever surrounds it.
 * Messages can echo what the user typed (a key pasted where an id belongs); output and logs
 * must never carry one.
 *
 * @example redact(`owner ${key.slice(0, -1)}`) === 'owner [redacted key]'
 */
export function redact(text: string): string {
  return text
    .replace(SIGNED, '[redacted key]')
    .replace(PREFIXED, '[redacted key]')
    .replace(BARE, (run) => (/[a-z]/.test(run) && /[A-Z]/.test(run) ? '[redacted key]' : run))
    .replace(BASE64URL, (run) => (/[a-z]/.test(run) && /[A-Z]/.test(run) ? '[redacted key]' : run));
}

/** Does `text` hold something {@link redact} would hide? */
export function looksLikeKey(text: string): boolean {
  return redact(text) !== text;
}
