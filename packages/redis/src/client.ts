/**
 * What this package needs of an ioredis client, and nothing more: an ioredis `Redis` (5.x or
 * 6.x) is one. Written out instead of imported so that the typings do not depend on ioredis's
 * own generics (a `Redis<'resp3'>` is accepted as well as a plain `Redis`).
 */
export interface RedisClient {
  /** `'ready'` while commands can be sent (ioredis's connection status). */
  readonly status: string;
  publish(channel: string, message: string): Promise<unknown>;
  evalsha(...args: [sha: string, numkeys: number, ...args: (string | number)[]]): Promise<unknown>;
  eval(...args: [script: string, numkeys: number, ...args: (string | number)[]]): Promise<unknown>;
  /** A new connection with the same options (the bus subscribes on one of its own). */
  duplicate(override?: { lazyConnect?: boolean; autoResubscribe?: boolean }): SubscriberConnection;
}

/** The connection the bus creates with `client.duplicate()`, subscribes on, and closes. */
export interface SubscriberConnection {
  readonly status: string;
  connect(): Promise<unknown>;
  subscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  disconnect(): void;
}

export function isRedisClient(value: unknown): value is RedisClient {
  if (value === null || typeof value !== 'object') return false;
  const client = value as Record<string, unknown>;
  return ['publish', 'evalsha', 'eval', 'duplicate'].every((method) => typeof client[method] === 'function') && typeof client.status === 'string';
}

/**
 * Tells of an outage once: the first error after Redis was last reachable goes to `onError`
 * (default: one `console.warn`), the rest until `recovered()` are not repeated.
 */
export function outageReporter(onError: ((error: unknown) => void) | undefined, what: string): { report(error: unknown): void; recovered(): void } {
  let down = false;
  return {
    report(error) {
      if (down) return;
      down = true;
      if (onError) {
        try {
          onError(error);
        } catch {
          // An onError that throws must not turn an outage into a failed request.
        }
      } else {
        console.warn(`keyscope: Redis is unreachable for the ${what} (${error instanceof Error ? error.message : String(error)})`);
      }
    },
    recovered() {
      down = false;
    },
  };
}
