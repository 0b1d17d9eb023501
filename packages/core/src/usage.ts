import type { KeyAdminStore, UsageEntry } from './types.js';

/** Default cap on unsent usage: key-day entries kept while the store refuses writes. */
export const USAGE_BACKLOG_LIMIT = 100_000;
/** Default largest batch handed to `recordUsage` in one call. */
export const USAGE_BATCH_LIMIT = 1_000;

/** Limits for {@link UsageRecorder}. */
export interface UsageRecorderOptions {
  /**
   * Most key-day entries kept unsent while writes fail. Default {@link USAGE_BACKLOG_LIMIT}
   * (about 10 MB at worst). Past it, the oldest days are dropped first and their requests
   * are added to `dropped`.
   */
  maxBacklog?: number;
  /** Most entries per `recordUsage` call; a larger backlog goes in several calls. Default {@link USAGE_BATCH_LIMIT}. */
  maxBatch?: number;
  /** Told when a timed flush fails (the counts are kept for the next one). Must not throw. */
  onError?: (error: unknown) => void;
}

/** Unsent counts of one key on one UTC day. */
interface Slot {
  keyId: string;
  day: string;
  count: number;
  lastUsedAt: number;
}

/**
 * Counts successful requests per key in memory and writes them to the store in batches, off the
 * request path. The batch is stamped when it is written: `lastUsedAt` and the UTC day are
 * exact to within one flush interval, which keeps the clock off the request path.
 *
 * A failed write is kept and sent again with the next flush, merged by key and UTC day (counts
 * add up, the latest `lastUsedAt` wins), so an outage grows the backlog by distinct key-days,
 * not by retries. The backlog is capped at `maxBacklog` key-days; past it the oldest days are
 * dropped and their requests counted in {@link UsageRecorder.dropped}.
 */
export class UsageRecorder {
  private pending = new Map<string, number>();
  /** Unsent counts: day → key → slot. Few days, so dropping the oldest is cheap. */
  private readonly backlog = new Map<string, Map<string, Slot>>();
  private size = 0;
  private droppedRequests = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private readonly maxBacklog: number;
  private readonly maxBatch: number;

  constructor(
    private readonly store: Pick<KeyAdminStore, 'recordUsage'>,
    private readonly intervalMs: number,
    private readonly now: () => number,
    options: UsageRecorderOptions = {},
  ) {
    this.maxBacklog = positive(options.maxBacklog ?? USAGE_BACKLOG_LIMIT, 'maxBacklog');
    this.maxBatch = positive(options.maxBatch ?? USAGE_BATCH_LIMIT, 'maxBatch');
    this.onError = options.onError;
  }

  private readonly onError: ((error: unknown) => void) | undefined;

  /** Requests dropped because the backlog was full while the store refused writes. */
  get dropped(): number {
    return this.droppedRequests;
  }

  /** Unsent key-day entries waiting for the next flush. */
  get backlogSize(): number {
    return this.size;
  }

  /** Count one request of `keyId`. O(1), no I/O, no clock. */
  record(keyId: string): void {
    if (this.closed) return;
    this.pending.set(keyId, (this.pending.get(keyId) ?? 0) + 1);
    if (!this.timer) {
      this.timer = setInterval(() => void this.flush().catch((error: unknown) => this.onError?.(error)), this.intervalMs);
      this.timer.unref?.();
    }
  }

  /**
   * Write everything pending now, in batches of at most `maxBatch` entries. Resolves when the
   * store has it all; rejects with the first failed write, keeping what was not written.
   */
  async flush(): Promise<void> {
    // One write at a time keeps counts from being added twice.
    while (this.flushing) await this.flushing.catch(() => {});
    if (this.pending.size > 0) {
      const at = this.now();
      const day = new Date(at).toISOString().slice(0, 10);
      for (const [keyId, count] of this.pending) this.add({ keyId, day, count, lastUsedAt: at });
      this.pending = new Map();
      this.trim();
    }
    if (this.size === 0) return;
    this.flushing = this.drain().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Stop the timer and write what is pending. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    this.closed = true;
  }

  private async drain(): Promise<void> {
    // A tick first: the caller's synchronous work (and a request's response) goes before I/O.
    await undefined;
    // The whole backlog in primary-key order (oldest day first, then key id), cut into batches.
    // Batches of keys spread at random over the table would each rewrite most of the store's
    // usage pages (SQLite writes a page to its journal once per commit that touches it): in
    // order, a flush writes each page about once, however many batches it takes, and two
    // instances flushing at once lock rows in the same order. Nothing adds to the backlog while
    // this runs (flush waits for it), so the order stays whole until a batch fails.
    const order = this.inKeyOrder();
    for (let start = 0; start < order.length; start += this.maxBatch) {
      const batch = order.slice(start, start + this.maxBatch);
      for (const slot of batch) this.remove(slot);
      try {
        await this.store.recordUsage(batch.map(({ keyId, day, count, lastUsedAt }) => ({ keyId, day, count, lastUsedAt: new Date(lastUsedAt) })));
      } catch (error) {
        // Nothing of a failed batch was written (a store writes a batch atomically): keep it.
        for (const slot of batch) this.add(slot);
        this.trim();
        throw error;
      }
      // Let requests run between batches of a large backlog.
      if (start + this.maxBatch < order.length) await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  /** Merge one key-day's counts into the backlog. */
  private add(slot: Slot): void {
    let day = this.backlog.get(slot.day);
    if (!day) this.backlog.set(slot.day, (day = new Map()));
    const held = day.get(slot.keyId);
    if (held) {
      held.count += slot.count;
      held.lastUsedAt = Math.max(held.lastUsedAt, slot.lastUsedAt);
    } else {
      day.set(slot.keyId, { ...slot });
      this.size++;
    }
  }

  /** Every backlog entry, oldest day first, then by key id (code-unit order: SQLite's for ids). */
  private inKeyOrder(): Slot[] {
    const out: Slot[] = [];
    for (const day of this.sortedDays()) {
      const slots = [...this.backlog.get(day)!.values()];
      slots.sort((a, b) => (a.keyId < b.keyId ? -1 : 1));
      for (const slot of slots) out.push(slot);
    }
    return out;
  }

  /** Take one entry out of the backlog (being sent). */
  private remove(slot: Slot): void {
    const slots = this.backlog.get(slot.day)!;
    slots.delete(slot.keyId);
    this.size--;
    if (slots.size === 0) this.backlog.delete(slot.day);
  }

  /** Drop the oldest days' entries (within a day, the earliest added) until the cap holds. */
  private trim(): void {
    if (this.size <= this.maxBacklog) return;
    for (const day of this.sortedDays()) {
      const slots = this.backlog.get(day)!;
      for (const [keyId, slot] of slots) {
        if (this.size <= this.maxBacklog) return;
        this.droppedRequests += slot.count;
        slots.delete(keyId);
        this.size--;
      }
      this.backlog.delete(day);
    }
  }

  private sortedDays(): string[] {
    return [...this.backlog.keys()].sort();
  }
}

function positive(value: number, option: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${option} must be a whole number ≥ 1, got ${value}`);
  return value;
}
