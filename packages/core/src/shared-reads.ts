/**
 * Reads through to a store on a cache miss: concurrent reads of one entry share one call, every
 * call is bounded by `timeoutMs`, and a read that began before an invalidation never fills the
 * cache with what it found (it may be the very record that was just revoked).
 */
export class SharedReads {
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private generation = 0;

  constructor(private readonly timeoutMs: number) {}

  /** Run `load` (or join the call already running for `key`); `remember` what it found unless invalidated meanwhile. */
  read<T>(key: string, load: () => Promise<T> | T, remember: (value: T) => void): Promise<T> {
    const pending = this.inFlight.get(key) as Promise<T> | undefined;
    if (pending) return pending;
    const started = this.generation;
    const promise = withTimeout(load, this.timeoutMs)
      .then((value) => {
        if (started === this.generation) remember(value);
        return value;
      })
      .finally(() => {
        if (this.inFlight.get(key) === promise) this.inFlight.delete(key);
      });
    this.inFlight.set(key, promise);
    return promise;
  }

  /** Reads running now may still answer their callers, but fill nothing and are not joined again. */
  invalidate(): void {
    this.generation++;
    this.inFlight.clear();
  }
}

/** Run a store call; reject if it throws or takes longer than `ms`. */
export function withTimeout<T>(read: () => Promise<T> | T, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`store call exceeded ${ms} ms`)), ms);
    Promise.resolve()
      .then(read)
      .then(resolve, reject)
      .finally(() => clearTimeout(timer));
  });
}
