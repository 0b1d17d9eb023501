import { describe, expect, it } from 'vitest';
import { OwnershipCache } from '../src/ownership-cache.js';
import type { ProjectDirectory } from '../src/types.js';

/** A directory that counts its calls: `u1` owns p0…p9, `u2` owns q0. */
function directory() {
  const owners = new Map<string, string>([...Array.from({ length: 10 }, (_, i) => [`p${i}`, 'u1'] as [string, string]), ['q0', 'u2']]);
  const calls: string[] = [];
  const dir: ProjectDirectory = {
    ownsProject: (ownerId, projectId) => (calls.push(`${ownerId}/${projectId}`), owners.get(projectId) === ownerId),
    listProjects: () => [],
  };
  return { dir, calls, owners };
}

const limits = { max: 3, ttlMs: 60_000, negativeMax: 3, negativeTtlMs: 5_000 };

describe('OwnershipCache (owner first, then project)', () => {
  it('answers from the cache without a directory call until the deadline', async () => {
    const { dir, calls } = directory();
    let clock = 0;
    const cache = new OwnershipCache(dir, limits, 1_000, () => clock);
    expect(await cache.owns('u1', 'p0', clock)).toBe(true);
    expect(cache.owns('u1', 'p0', clock)).toBe(true);
    expect(cache.owns('u1', 'p0', 59_999)).toBe(true);
    expect(calls).toEqual(['u1/p0']);
    clock = 60_000;
    expect(await cache.owns('u1', 'p0', clock)).toBe(true);
    expect(calls).toEqual(['u1/p0', 'u1/p0']);
  });

  it('keeps owners apart: one owner\'s answer is never another\'s', async () => {
    const { dir } = directory();
    const cache = new OwnershipCache(dir, limits, 1_000, () => 0);
    expect(await cache.owns('u1', 'p0', 0)).toBe(true);
    expect(await cache.owns('u2', 'p0', 0)).toBe(false);
    expect(cache.owns('u2', 'p0', 0)).toBe(false);
    expect(cache.owns('u1', 'p0', 0)).toBe(true);
  });

  it('one owner holds at most `max` answers: past it they start over, and every answer stays right', async () => {
    const { dir, calls } = directory();
    const cache = new OwnershipCache(dir, limits, 1_000, () => 0);
    for (let round = 0; round < 2; round++) for (let i = 0; i < 10; i++) expect(await cache.owns('u1', `p${i}`, 0)).toBe(true);
    // Bounded: never more than `max` remembered for u1, so the second round asks again.
    expect(calls.length).toBeGreaterThan(10);
    expect(await cache.owns('u1', 'q0', 0)).toBe(false);
  });

  it('invalidate(projectId) drops that project for every owner; invalidate() drops everything', async () => {
    const { dir, calls, owners } = directory();
    const cache = new OwnershipCache(dir, limits, 1_000, () => 0);
    expect(await cache.owns('u1', 'p1', 0)).toBe(true);
    expect(await cache.owns('u2', 'p1', 0)).toBe(false);
    owners.set('p1', 'u2');
    cache.invalidate('p1');
    expect(await cache.owns('u1', 'p1', 0)).toBe(false);
    expect(await cache.owns('u2', 'p1', 0)).toBe(true);
    expect(calls.filter((c) => c.endsWith('/p1'))).toHaveLength(4);
    expect(await cache.owns('u1', 'p2', 0)).toBe(true);
    cache.invalidate();
    expect(await cache.owns('u1', 'p2', 0)).toBe(true);
    expect(calls.filter((c) => c === 'u1/p2')).toHaveLength(2);
  });
  describe('ownsFor: a key entry holding its owner\'s answers', () => {
    const holder = (ownerId: string) => ({ ownerId, ownerAnswers: null as Map<string, number> | null });

    it('reads a confirmed project from the answers it holds, without the directory, until the deadline', async () => {
      const { dir, calls } = directory();
      const cache = new OwnershipCache(dir, limits, 1_000, () => 0);
      const key = holder('u1');
      expect(await cache.ownsFor(key, 'p0', 0)).toBe(true);
      expect(key.ownerAnswers?.get('p0')).toBe(60_000);
      expect(cache.ownsFor(key, 'p0', 59_999)).toBe(true);
      expect(calls).toEqual(['u1/p0']);
      expect(await cache.ownsFor(key, 'p0', 60_000)).toBe(true);
      expect(calls).toEqual(['u1/p0', 'u1/p0']);
      // Not owned is never read from what it holds.
      expect(await cache.ownsFor(key, 'q0', 0)).toBe(false);
    });

    it('sees invalidate(projectId) and invalidate() at once', async () => {
      const { dir, owners } = directory();
      const cache = new OwnershipCache(dir, limits, 1_000, () => 0);
      const key = holder('u1');
      expect(await cache.ownsFor(key, 'p1', 0)).toBe(true);
      expect(await cache.ownsFor(key, 'p2', 0)).toBe(true);
      owners.set('p1', 'u2');
      cache.invalidate('p1');
      expect(await cache.ownsFor(key, 'p1', 0)).toBe(false);
      owners.set('p2', 'u2');
      cache.invalidate();
      expect(await cache.ownsFor(key, 'p2', 0)).toBe(false);
    });

    it("an owner's answers pushed out of the cache are emptied: an invalidation while they were out still counts", async () => {
      const { dir, owners } = directory();
      const cache = new OwnershipCache(dir, { ...limits, max: 1 }, 1_000, () => 0);
      const key = holder('u1');
      expect(await cache.ownsFor(key, 'p1', 0)).toBe(true);
      // u2 takes the only place: u1's answers leave the cache (the key still holds them).
      expect(await cache.ownsFor(holder('u2'), 'q0', 0)).toBe(true);
      owners.set('p1', 'u2');
      cache.invalidate('p1');
      expect(await cache.ownsFor(key, 'p1', 0)).toBe(false);
    });
  });
});
