/**
 * Reads through to a store on a cache miss: concurrent reads of one entry share one call, every
 * call is bounded by `timeoutMs`, and a read that began before an invalidation never fills the
 * cache with what it found (it may be the very record that was just revoked).
 */
export class SharedReads {
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private generation = 0;
  private readonly deadlines: Deadlines;

  constructor(timeoutMs: number) {
    this.deadlines = new Deadlines(timeoutMs);
  }

  /** Run `load` (or join the call already running for `key`); `remember` what it found unless invalidated meanwhile. */
  read<T>(key: string, load: () => Promise<T> | T, remember: (value: T) => void): Promise<T> {
    const pending = this.inFlight.get(key) as Promise<T> | undefined;
    if (pending) return pending;
    const started = this.generation;
    const promise: Promise<T> = this.deadlines.run(load).then(
      (value) => {
        if (this.inFlight.get(key) === promise) this.inFlight.delete(key);
        if (started === this.generation) remember(value);
        return value;
      },
      (error: unknown) => {
        if (this.inFlight.get(key) === promise) this.inFlight.delete(key);
        throw error;
      },
    );
    this.inFlight.set(key, promise);
    return promise;
  }

  /** Reads running now may still answer their callers, but fill nothing and are not joined again. */
  invalidate(): void {
    this.generation++;
    this.inFlight.clear();
  }
}

/** Milliseconds on a clock that never steps back (`Date.now` only where there is no `performance`). */
const monotonic: () => number = typeof performance === 'object' && typeof performance?.now === 'function' ? () => performance.now() : Date.now;

/** A call waiting in {@link Deadlines}, in the order the calls began. */
interface Waiting {
  deadline: number;
  /** Rejects the call; `undefined` once it has settled. */
  fail: ((error: Error) => void) | undefined;
  prev: Waiting | undefined;
  next: Waiting | undefined;
}

/**
 * Store calls bounded by one timeout, `ms`, that share one timer. Each call joins a list in the
 * order it began (so by deadline) and leaves it when it settles; the timer is set for the oldest
 * call only, and when it fires, fails what is due and is set for the next. A timer of its own per
 * call, set and then cleared, cost about 1.4 µs of a cache miss (Node re-arms its libuv timer
 * whenever the earliest deadline changes). The timer is unref'd: a call in flight is someone
 * else's I/O, which keeps the process alive while it matters. Deadlines are read on a monotonic
 * clock: the wall clock can step back (NTP, a resumed VM) and would leave a hung call waiting for
 * as long as the step.
 */
export class Deadlines {
  private first: Waiting | undefined;
  private last: Waiting | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The call the timer was set for: it has had its `ms` when the timer fires, whatever the clock says. */
  private armedFor: Waiting | undefined;

  constructor(private readonly ms: number) {}

  /** Run `read`; reject if it throws or takes longer than `ms`. */
  run<T>(read: () => Promise<T> | T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiting: Waiting = { deadline: monotonic() + this.ms, fail: reject, prev: this.last, next: undefined };
      if (this.last) this.last.next = waiting;
      else this.first = waiting;
      this.last = waiting;
      if (this.timer === undefined) this.arm();
      Promise.resolve()
        .then(read)
        .then(
          (value) => {
            this.leave(waiting);
            resolve(value);
          },
          (error: unknown) => {
            this.leave(waiting);
            reject(error);
          },
        );
    });
  }

  private arm(): void {
    const oldest = this.first;
    if (oldest === undefined) return;
    this.armedFor = oldest;
    // Rounded up: a timer may fire up to a millisecond early, and the call it was set for fails then.
    this.timer = setTimeout(this.expire, Math.min(this.ms, Math.max(0, Math.ceil(oldest.deadline - monotonic()))));
    this.timer.unref?.();
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    const armed = this.armedFor;
    this.armedFor = undefined;
    if (armed?.fail) this.timeOut(armed);
    const now = monotonic();
    while (this.first !== undefined && this.first.deadline <= now) this.timeOut(this.first);
    this.arm();
  };

  private timeOut(waiting: Waiting): void {
    const fail = waiting.fail!;
    this.leave(waiting);
    fail(new Error(`store call exceeded ${this.ms} ms`));
  }

  /** Take a call off the list (once: a call that timed out may settle later). */
  private leave(waiting: Waiting): void {
    if (waiting.fail === undefined) return;
    waiting.fail = undefined;
    const { prev, next } = waiting;
    if (prev) prev.next = next;
    else this.first = next;
    if (next) next.prev = prev;
    else this.last = prev;
    waiting.prev = waiting.next = undefined;
  }
}
