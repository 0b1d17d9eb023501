import type { KeyscopeEvent } from '@keyscope/core';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** How loud each event is: a refusal is the client's mistake, a store error is ours. */
const LEVEL_OF: Record<KeyscopeEvent['type'], LogLevel> = {
  authenticated: 'debug',
  refused: 'info',
  throttle_tripped: 'warn',
  store_error: 'error',
  limit_error: 'error',
  usage_flush_failed: 'error',
  bus_error: 'error',
};

/** What of an error goes in a line: its kind and message, no stack. */
function describeError(error: unknown): { name: string; message: string; code?: string } {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const { code } = error as { code?: unknown };
  return { name: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) };
}

/**
 * keyscope's `onEvent` as JSON lines, one per event at or above `level`:
 * `{"time","level","msg":"keyscope refused","event":"refused","code","status","keyId"}`.
 * Events name a key by its id or display start only (core never hands over a key or a hash);
 * the event's key `level` becomes `keyLevel` so it does not clash with the log level.
 */
export function eventLogger(level: LogLevel, write: (line: string) => void = (line) => process.stdout.write(line)) {
  const threshold = LOG_LEVELS.indexOf(level);
  return function logEvent(event: KeyscopeEvent): void {
    const eventLevel = LEVEL_OF[event.type];
    if (LOG_LEVELS.indexOf(eventLevel) < threshold) return;
    const { type, ...fields } = event;
    const line: Record<string, unknown> = { time: new Date().toISOString(), level: eventLevel, msg: `keyscope ${type}`, event: type };
    for (const [name, value] of Object.entries(fields)) {
      if (name === 'level') line.keyLevel = value;
      else if (name === 'error') line.error = describeError(value);
      else line[name] = value;
    }
    write(`${JSON.stringify(line)}\n`);
  };
}
