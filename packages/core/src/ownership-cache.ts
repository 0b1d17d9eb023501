import { LRUCache } from 'lru-cache';
import { ID_PATTERN } from './key-format.js';
import { SharedReads } from './shared-reads.js';
import type { ProjectDirectory } from './types.js';

/**
 * "Does owner X own project Y?" answers, for user keys naming a project and for project keys
 * (whose project may have moved to another owner or been deleted). Owned answers live `ttlMs`;
 * "not owned" answers live `negativeTtlMs` in a separate, smaller LRU, so a caller probing
 * made-up project ids cannot push real answers out. Each answer holds its own deadline, read
 * against the clock the request already took (the LRUs only bound size).
 */
export class OwnershipCache {
  /**
   * Owner → (project → until when "owned" holds). Keyed by owner first so that a warm check is two
   * lookups of strings the request already has (the owner's id is the cached key's own string,
   * its hash computed once), with no "owner\nproject" string to build and hash per request.
   * The LRU bounds owners; each owner keeps at most `max` projects.
   */
  private readonly owned: LRUCache<string, Map<string, number>>;
  /** "owner\nproject" → until when "not owned" holds. */
  private readonly notOwned: LRUCache<string, number>;
  private readonly reads: SharedReads;

  constructor(
    private readonly projects: ProjectDirectory,
    private readonly limits: { max: number; ttlMs: number; negativeMax: number; negativeTtlMs: number },
    timeoutMs: number,
    private readonly now: () => number,
  ) {
    // An owner's answers leaving the cache (evicted, deleted, cleared) are emptied, so that a key
    // entry still holding them (see ownsFor) finds nothing there and asks the cache again.
    this.owned = new LRUCache({ max: limits.max, dispose: (projects) => projects.clear() });
    this.notOwned = new LRUCache({ max: limits.negativeMax });
    this.reads = new SharedReads(timeoutMs);
  }

  /**
   * Synchronous when cached (a warm request never yields); a promise on a miss, rejecting when
   * the directory fails or is too slow. A malformed project id is not owned, without a lookup.
   */
  owns(ownerId: string, projectId: string, now: number): boolean | Promise<boolean> {
    const projects = this.owned.get(ownerId);
    if (projects !== undefined) {
      const until = projects.get(projectId);
      if (until !== undefined) {
        if (until > now) return true;
        projects.delete(projectId);
      }
    }
    const cacheKey = `${ownerId}\n${projectId}`;
    if (fresh(this.notOwned, cacheKey, now)) return false;
    if (!ID_PATTERN.test(projectId)) return false;
    return this.reads.read<boolean>(
      cacheKey,
      async () => (await this.projects.ownsProject(ownerId, projectId)) === true,
      (owned) => {
        const at = this.now();
        if (owned) {
          if (this.limits.ttlMs > 0) this.remember(ownerId, projectId, at + this.limits.ttlMs);
        } else if (this.limits.negativeTtlMs > 0) {
          this.notOwned.set(cacheKey, at + this.limits.negativeTtlMs);
        }
      },
    );
  }

  /**
   * {@link owns} for a cached key: `holder.ownerAnswers` keeps the owner's "owned" answers (the
   * very map this cache holds, emptied when it leaves the cache, and edited by every
   * invalidation), so a project it confirmed is read there without looking the owner up again.
   */
  ownsFor(holder: { ownerId: string; ownerAnswers: Map<string, number> | null }, projectId: string, now: number): boolean | Promise<boolean> {
    const until = holder.ownerAnswers?.get(projectId);
    if (until !== undefined && until > now) return true;
    const owned = this.owns(holder.ownerId, projectId, now);
    if (owned === true) holder.ownerAnswers = this.owned.peek(holder.ownerId) ?? null;
    else if (owned !== false) {
      return owned.then((yes) => {
        if (yes) holder.ownerAnswers = this.owned.peek(holder.ownerId) ?? null;
        return yes;
      });
    }
    return owned;
  }

  private remember(ownerId: string, projectId: string, until: number): void {
    let projects = this.owned.get(ownerId);
    if (projects === undefined) this.owned.set(ownerId, (projects = new Map()));
    // One owner cannot hold more than `max` answers: past it, its answers start over.
    else if (projects.size >= this.limits.max && !projects.has(projectId)) projects.clear();
    projects.set(projectId, until);
  }

  /** Forget every answer about one project (it moved, or was created or deleted), or everything. */
  invalidate(projectId?: string): void {
    this.reads.invalidate();
    if (projectId === undefined) {
      this.owned.clear();
      this.notOwned.clear();
      return;
    }
    for (const projects of this.owned.values()) projects.delete(projectId);
    const suffix = `\n${projectId}`;
    const stale = [...this.notOwned.keys()].filter((cacheKey) => cacheKey.endsWith(suffix));
    for (const cacheKey of stale) this.notOwned.delete(cacheKey);
  }
}

/** Does `cache` hold an answer for `key` that is still good at `now`? A stale one is dropped. */
function fresh(cache: LRUCache<string, number>, key: string, now: number): boolean {
  const until = cache.get(key);
  if (until === undefined) return false;
  if (until > now) return true;
  cache.delete(key);
  return false;
}
