import type { InvalidationBus, StoreChange } from '@keyscope/core';
import { isRedisClient, outageReporter, type RedisClient, type SubscriberConnection } from './client.js';

export interface RedisBusOptions {
  /** Your ioredis client: it publishes; the bus subscribes on a `duplicate()` of it, which it opens and closes. */
  client: RedisClient;
  /** The pub/sub channel every instance of one deployment shares. Default `'keyscope:changes'`. */
  channel?: string;
  /**
   * Told once per outage of the subscriber connection (default: one `console.warn`). Requests
   * go on meanwhile: the cache TTL bounds how stale a decision can get.
   */
  onError?: (error: unknown) => void;
}

/** An {@link InvalidationBus} on Redis pub/sub; `close()` ends the connection the bus opened. */
export interface RedisBus extends InvalidationBus {
  close(): Promise<void>;
}

/**
 * Carries revocations, rotations and project changes between keyscope instances over Redis
 * pub/sub. After its subscriber connection comes back (it may have missed messages), every
 * listener is called with no argument, and keyscope drops its caches.
 *
 * @example createKeyscope({ store, bus: createRedisBus({ client: new Redis(process.env.REDIS_URL) }) })
 */
export function createRedisBus(options: RedisBusOptions): RedisBus {
  if (options === null || typeof options !== 'object') throw new TypeError('createRedisBus(options): options must be an object');
  const { client, channel = 'keyscope:changes', onError } = options;
  if (!isRedisClient(client)) throw new TypeError('createRedisBus: options.client must be an ioredis client (new Redis(...))');
  if (typeof channel !== 'string' || channel === '') throw new TypeError('createRedisBus: options.channel must be a non-empty string');
  if (onError !== undefined && typeof onError !== 'function') throw new TypeError('createRedisBus: options.onError must be a function');

  const listeners = new Set<(change?: StoreChange) => void>();
  const outage = outageReporter(onError, 'invalidation bus; caches expire by their TTL until it is back');
  let subscriber: SubscriberConnection | undefined;
  let closed = false;

  function tell(change?: StoreChange): void {
    for (const listener of [...listeners]) {
      try {
        listener(change);
      } catch {
        // One listener's failure does not keep the others from hearing.
      }
    }
  }

  /** Opened on the first subscribe: an instance that only publishes (a CLI) needs no second connection. */
  function open(): void {
    // Resubscribing is ours, not ioredis's: the listeners may only be told "anything may have
    // changed" once the subscription is back, or a change published in between would be missed.
    const sub = client.duplicate({ lazyConnect: true, autoResubscribe: false });
    subscriber = sub;
    sub.on('error', (error) => outage.report(error));
    sub.on('close', () => {
      if (!closed) outage.report(new Error('the subscriber connection closed'));
    });
    sub.on('message', (from, message) => {
      if (from !== channel) return;
      const change = parse(message);
      if (change) tell(change);
    });
    sub.on('ready', () => {
      sub.subscribe(channel).then(
        () => {
          if (closed) return;
          outage.recovered();
          tell();
        },
        (error: unknown) => outage.report(error),
      );
    });
    sub.connect().catch((error: unknown) => outage.report(error));
  }

  return {
    publish(change) {
      return client.publish(channel, JSON.stringify(change)).then(() => undefined);
    },
    subscribe(listener) {
      if (closed) throw new Error('createRedisBus: subscribe() after close()');
      listeners.add(listener);
      if (!subscriber) open();
      return () => void listeners.delete(listener);
    },
    async close() {
      closed = true;
      listeners.clear();
      subscriber?.disconnect();
    },
  };
}

/** A change as another instance published it, or `undefined` for anything else on the channel. */
function parse(message: string): StoreChange | undefined {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const { kind, keyId, projectId } = value as Record<string, unknown>;
  if (kind === 'key' && typeof keyId === 'string' && keyId !== '') return { kind, keyId };
  if (kind === 'project' && typeof projectId === 'string' && projectId !== '') return { kind, projectId };
  return undefined;
}
