import { KeyscopeError } from './errors.js';
import { finiteLimit, quotaAt, quotaTime, type KeyLimitsUpdate, type Quota, type QuotaTake, type RateLimit } from './limits.js';
import type { KeyAdminStore, KeyDenial, KeyRecord, KeyUsage, Project, StoreChange, UsageEntry } from './types.js';

/**
 * A complete in-memory store: keys, projects and usage. For tests and single-process demos;
 * everything is lost when the process exits.
 *
 * @example
 * const store = new MemoryStore()
 * store.addProject({ id: 'proj_a', ownerId: 'u1', name: 'Alpha' })
 */
export class MemoryStore implements KeyAdminStore {
  private readonly keys = new Map<string, KeyRecord>();
  private readonly byHash = new Map<string, string>();
  private readonly projects = new Map<string, Project>();
  private readonly usage = new Map<string, Map<string, number>>();
  private readonly listeners = new Set<(change?: StoreChange) => void>();
  private readonly denials = new Map<string, KeyDenial>();

  /** Add a project, or replace the owner and name of the project with this id. */
  addProject(project: Project): void {
    for (const field of ['id', 'ownerId', 'name'] as const) {
      if (typeof project?.[field] !== 'string' || project[field] === '') {
        throw new KeyscopeError('invalid_argument', `project.${field} must be a non-empty string`);
      }
    }
    this.projects.set(project.id, { id: project.id, ownerId: project.ownerId, name: project.name });
    this.changed({ kind: 'project', projectId: project.id });
  }

  /** Delete a project; `false` if there was none. Its project-level keys stop working. */
  removeProject(id: string): boolean {
    const removed = this.projects.delete(id);
    if (removed) this.changed({ kind: 'project', projectId: id });
    return removed;
  }

  /** Be told of every key and project change made through this store. Returns the unsubscribe function. */
  subscribe(listener: (change?: StoreChange) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('subscribe(listener): listener must be a function');
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  async findKeyByHash(hash: string): Promise<KeyRecord | null> {
    const id = this.byHash.get(hash);
    return id === undefined ? null : copy(this.keys.get(id)!);
  }

  async ownsProject(ownerId: string, projectId: string): Promise<boolean> {
    return this.projects.get(projectId)?.ownerId === ownerId;
  }

  async listProjects(ownerId: string): Promise<Project[]> {
    return [...this.projects.values()].filter((p) => p.ownerId === ownerId).map((p) => ({ ...p }));
  }

  async createKey(record: KeyRecord): Promise<void> {
    if (this.keys.has(record.id) || this.byHash.has(record.hash)) {
      throw new KeyscopeError('invalid_argument', `a key with id ${record.id} or the same hash already exists`);
    }
    const rateLimit = record.rateLimit ?? null;
    const quota = record.quota ?? null;
    checkLimits({ rateLimit, quota });
    this.keys.set(record.id, copy({ ...record, rateLimit, quota }));
    this.byHash.set(record.hash, record.id);
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    const record = this.keys.get(id);
    return record ? copy(record) : null;
  }

  async listKeys(ownerId: string): Promise<KeyRecord[]> {
    return [...this.keys.values()]
      .filter((k) => k.ownerId === ownerId)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
      .map(copy);
  }

  async listAllKeys(): Promise<KeyRecord[]> {
    return [...this.keys.values()].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()).map(copy);
  }

  async revokeKey(id: string, at: Date): Promise<boolean> {
    const record = this.keys.get(id);
    if (!record) return false;
    if (record.revokedAt === null) {
      record.revokedAt = new Date(at);
      this.changed({ kind: 'key', keyId: id });
    }
    return true;
  }

  async setKeyExpiry(id: string, expiresAt: Date): Promise<boolean> {
    const record = this.keys.get(id);
    if (!record) return false;
    record.expiresAt = new Date(expiresAt);
    this.changed({ kind: 'key', keyId: id });
    return true;
  }

  /**
   * Take one unit of a key's quota at `at`, applying a refill that is due first. Atomic as far
   * as a process goes: nothing is awaited between the check and the write. Not a change to report.
   */
  async consumeQuota(keyId: string, at: Date): Promise<QuotaTake | null> {
    const now = quotaTime(at);
    const record = this.keys.get(keyId);
    if (!record?.quota) return null;
    const quota = quotaAt(record.quota, now);
    // Exhausted: nothing is written (a due refill of a zero quota included), as the SQL stores do.
    if (quota.remaining <= 0) return { granted: false, remaining: 0, limit: quota.limit, refill: quota.refill, resetAt: date(quota.resetAt) };
    record.quota = { ...quota, remaining: quota.remaining - 1, resetAt: date(quota.resetAt) };
    return { granted: true, remaining: record.quota.remaining, limit: quota.limit, refill: quota.refill, resetAt: date(quota.resetAt) };
  }

  /** Change a key's rate limit and quota (`undefined` leaves one, `null` removes it); `false` if unknown. */
  async setKeyLimits(keyId: string, limits: KeyLimitsUpdate): Promise<boolean> {
    const record = this.keys.get(keyId);
    if (!record) return false;
    checkLimits(limits);
    if (limits.rateLimit !== undefined) record.rateLimit = copyRateLimit(limits.rateLimit);
    if (limits.quota !== undefined) record.quota = copyQuota(limits.quota);
    this.changed({ kind: 'key', keyId });
    return true;
  }

  async denyKey(denial: KeyDenial): Promise<void> {
    const earlier = this.denials.get(denial.keyId);
    const from = earlier && earlier.from < denial.from ? earlier.from : denial.from;
    const until = earlier && earlier.until > denial.until ? earlier.until : denial.until;
    this.denials.set(denial.keyId, { keyId: denial.keyId, from: new Date(from), until: new Date(until) });
    // Entries whose token has expired anyway refuse nothing more.
    for (const [id, entry] of this.denials) if (entry.until.getTime() <= Date.now()) this.denials.delete(id);
    this.changed({ kind: 'key', keyId: denial.keyId });
  }

  async listKeyDenials(at: Date): Promise<KeyDenial[]> {
    return [...this.denials.values()]
      .filter((entry) => entry.until > at)
      .map((entry) => ({ keyId: entry.keyId, from: new Date(entry.from), until: new Date(entry.until) }));
  }

  async recordUsage(entries: UsageEntry[]): Promise<void> {
    for (const entry of entries) {
      const record = this.keys.get(entry.keyId);
      if (!record) continue;
      if (!record.lastUsedAt || record.lastUsedAt < entry.lastUsedAt) record.lastUsedAt = new Date(entry.lastUsedAt);
      let days = this.usage.get(entry.keyId);
      if (!days) this.usage.set(entry.keyId, (days = new Map()));
      days.set(entry.day, (days.get(entry.day) ?? 0) + entry.count);
    }
  }

  private changed(change: StoreChange): void {
    notify(this.listeners, change);
  }

  async getUsage(id: string): Promise<KeyUsage | null> {
    const record = this.keys.get(id);
    if (!record) return null;
    const days = [...(this.usage.get(id) ?? new Map<string, number>())]
      .map(([day, count]) => ({ day, count }))
      .sort((a, b) => a.day.localeCompare(b.day));
    return { keyId: id, lastUsedAt: record.lastUsedAt && new Date(record.lastUsedAt), days };
  }
}

/** Tell every subscriber; one listener's failure must not keep the others stale. */
function notify(listeners: Iterable<(change?: StoreChange) => void>, change: StoreChange): void {
  for (const listener of [...listeners]) {
    try {
      listener(change);
    } catch {
      // ignored: see above
    }
  }
}

/** Records leave the store as copies: a caller holding one never sees later changes. */
function copy(record: KeyRecord): KeyRecord {
  return {
    ...record,
    createdAt: new Date(record.createdAt),
    expiresAt: date(record.expiresAt),
    revokedAt: date(record.revokedAt),
    lastUsedAt: date(record.lastUsedAt),
    rateLimit: copyRateLimit(record.rateLimit ?? null),
    quota: copyQuota(record.quota ?? null),
    limitsFrom: record.limitsFrom ?? null,
  };
}

function date(value: Date | null): Date | null {
  return value === null ? null : new Date(value);
}

function copyRateLimit(rateLimit: RateLimit | null): RateLimit | null {
  return rateLimit === null ? null : { limit: rateLimit.limit, windowMs: rateLimit.windowMs };
}

function copyQuota(quota: Quota | null): Quota | null {
  return quota === null ? null : { limit: quota.limit, remaining: quota.remaining, refill: quota.refill, resetAt: date(quota.resetAt) };
}

/**
 * The admin layer checks limits; this only keeps NaN and Infinity out of the store, where a
 * comparison with them would quietly grant or refuse every request.
 */
function checkLimits({ rateLimit, quota }: KeyLimitsUpdate): void {
  const fields: [string, number][] = [];
  if (rateLimit) fields.push(['rateLimit.limit', rateLimit.limit], ['rateLimit.windowMs', rateLimit.windowMs]);
  if (quota) fields.push(['quota.limit', quota.limit], ['quota.remaining', quota.remaining], ['quota.resetAt', quota.resetAt?.getTime() ?? 0]);
  for (const [name, value] of fields) finiteLimit(value, name);
}
