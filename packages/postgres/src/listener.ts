import pg from 'pg';
import type { ClientConfig, Notification } from 'pg';
import type { StoreChange } from '@keyscope/core';

export interface ListenerOptions {
  /** Connection settings of the listening session (its own connection, never the pool's). */
  client: ClientConfig;
  channel: string;
  /** This store's writes carry this origin; their notifications are skipped (already reported). */
  origin: string;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  heartbeatMs: number;
  /** A change (or, with no argument, "anything may have changed": after a reconnect). */
  onChange(change?: StoreChange): void;
  onError(error: unknown): void;
}

/**
 * One LISTEN session on its own connection: a transaction-mode pooler (PgBouncer's default
 * mode) would hand the session to others and the LISTEN would be lost. After the connection
 * drops it reconnects with a growing, jittered delay and reports "anything may have changed",
 * since notifications sent meanwhile are gone.
 */
export class ChangeListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private failures = 0;
  /** Set once a session was live or an attempt failed: from then on, a new session may have missed changes. */
  private mayHaveMissed = false;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: ListenerOptions) {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.heartbeat) clearInterval(this.heartbeat);
    const client = this.client;
    this.client = undefined;
    try {
      client?.end().catch(() => {});
    } catch {
      // never connected: nothing to end
    }
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client(this.options.client);
    this.client = client;
    const dropped = (error?: unknown) => this.dropped(client, error);
    client.on('error', dropped);
    client.on('end', () => dropped());
    client.on('notification', (message) => this.notification(message));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.options.channel}"`);
    } catch (error) {
      dropped(error);
      return;
    }
    if (this.client !== client) return;
    this.failures = 0;
    if (this.mayHaveMissed) this.options.onChange();
    this.mayHaveMissed = true;
    // A connection that died without a FIN (a pulled cable, a NAT timeout) is found by this ping.
    this.heartbeat = setInterval(() => {
      client.query('SELECT 1').catch((error: unknown) => dropped(error));
    }, this.options.heartbeatMs);
    this.heartbeat.unref?.();
  }

  private dropped(client: pg.Client, error?: unknown): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    this.mayHaveMissed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    if (error !== undefined) this.options.onError(error);
    client.removeAllListeners('notification');
    // Keep an 'error' listener: a late socket error on a dropped client must not crash the process.
    try {
      client.end().catch(() => {});
    } catch {
      // never connected: nothing to end
    }
    const { reconnectMinMs: min, reconnectMaxMs: max } = this.options;
    const delay = Math.min(max, min * 2 ** this.failures++);
    this.retry = setTimeout(() => void this.connect(), delay / 2 + Math.random() * (delay / 2));
    this.retry.unref?.();
  }

  private notification(message: Notification): void {
    if (message.channel !== this.options.channel) return;
    let change: StoreChange | undefined;
    try {
      const payload = JSON.parse(message.payload ?? '') as Record<string, unknown>;
      if (payload.origin === this.options.origin) return;
      if (payload.kind === 'key' && typeof payload.keyId === 'string') change = { kind: 'key', keyId: payload.keyId };
      else if (payload.kind === 'project' && typeof payload.projectId === 'string') change = { kind: 'project', projectId: payload.projectId };
    } catch {
      // Not ours to parse (someone else's NOTIFY on the channel): say anything may have changed.
    }
    this.options.onChange(change);
  }
}
