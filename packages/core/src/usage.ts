import type { KeyAdminStore, UsageEntry } from './types.js';

/**
 * Counts successful requests per key in memory and writes them to the store in batches, off the
 * request path. The batch is stamped when it is written: `lastUsedAt` and the UTC day are
 * exact to within one flush interval, which keeps the clock off the request path. A failed
 * write is kept and sent again with the next batch.
 */
export class UsageRecorder {
  private pending = new Map<string, number>();
  private unsent: UsageEntry[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly store: Pick<KeyAdminStore, 'recordUsage'>,
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  /** Count one request of `keyId`. O(1), no I/O, no clock. */
  record(keyId: string): void {
    if (this.closed) return;
    this.pending.set(keyId, (this.pending.get(keyId) ?? 0) + 1);
    if (!this.timer) {
      this.timer = setInterval(() => void this.flush().catch(() => {}), this.intervalMs);
      this.timer.unref?.();
    }
  }

  /** Write everything pending now. Resolves when the store has it; rejects if the write fails. */
  async flush(): Promise<void> {
    // One write at a time keeps counts from being added twice.
    while (this.flushing) await this.flushing.catch(() => {});
    if (this.pending.size === 0 && this.unsent.length === 0) return;
    const at = this.now();
    const day = new Date(at).toISOString().slice(0, 10);
    const entries = this.unsent;
    for (const [keyId, count] of this.pending) entries.push({ keyId, day, count, lastUsedAt: new Date(at) });
    this.pending = new Map();
    this.unsent = [];
    this.flushing = Promise.resolve()
      .then(() => this.store.recordUsage(entries))
      .catch((error: unknown) => {
        this.unsent = entries.concat(this.unsent);
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
}
