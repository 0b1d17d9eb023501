import type { KeyAdminStore, UsageEntry } from './types.js';

const DAY_MS = 86_400_000;

/**
 * Counts successful requests per key and UTC day in memory and writes them to the store in
 * batches, off the request path. A failed write is kept and retried with the next batch.
 */
export class UsageRecorder {
  // keyId → UTC day number → [count, last used at]
  private pending = new Map<string, Map<number, [number, number]>>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly store: Pick<KeyAdminStore, 'recordUsage'>,
    private readonly intervalMs: number,
  ) {}

  /** Count one request of `keyId` at `at` (epoch ms). O(1), no I/O. */
  record(keyId: string, at: number): void {
    if (this.closed) return;
    const day = Math.floor(at / DAY_MS);
    let days = this.pending.get(keyId);
    if (!days) this.pending.set(keyId, (days = new Map()));
    const slot = days.get(day);
    if (slot) {
      slot[0]++;
      if (at > slot[1]) slot[1] = at;
    } else {
      days.set(day, [1, at]);
    }
    if (!this.timer) {
      this.timer = setInterval(() => void this.flush().catch(() => {}), this.intervalMs);
      this.timer.unref?.();
    }
  }

  /** Write everything pending now. Resolves when the store has it; rejects if the write fails. */
  async flush(): Promise<void> {
    // One write at a time keeps counts from being added twice.
    while (this.flushing) await this.flushing.catch(() => {});
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const entries: UsageEntry[] = [];
    for (const [keyId, days] of batch) {
      for (const [day, [count, last]] of days) {
        entries.push({ keyId, day: new Date(day * DAY_MS).toISOString().slice(0, 10), count, lastUsedAt: new Date(last) });
      }
    }
    this.flushing = Promise.resolve()
      .then(() => this.store.recordUsage(entries))
      .catch((error: unknown) => {
        this.restore(batch);
        throw error;
      })
      .finally(() => {
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

  private restore(batch: Map<string, Map<number, [number, number]>>): void {
    for (const [keyId, days] of batch) {
      for (const [day, [count, last]] of days) {
        let current = this.pending.get(keyId);
        if (!current) this.pending.set(keyId, (current = new Map()));
        const slot = current.get(day);
        if (slot) {
          slot[0] += count;
          slot[1] = Math.max(slot[1], last);
        } else {
          current.set(day, [count, last]);
        }
      }
    }
  }
}
