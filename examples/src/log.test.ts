import { describe, expect, it } from 'vitest';
import { eventLogger, type LogLevel } from './log.js';

function logged(level: LogLevel, ...events: Parameters<ReturnType<typeof eventLogger>>[0][]): Array<Record<string, unknown>> {
  const lines: string[] = [];
  const log = eventLogger(level, (line) => lines.push(line));
  for (const event of events) log(event);
  expect(lines.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n'))).toBe(true);
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('eventLogger', () => {
  const authenticated = { type: 'authenticated', keyId: 'key_1', ownerId: 'u1', level: 'project', projectId: 'proj_a' } as const;

  it('writes authenticated requests only at debug, with the key level as keyLevel', () => {
    expect(logged('info', authenticated)).toEqual([]);
    expect(logged('debug', authenticated)).toEqual([
      { time: expect.any(String), level: 'debug', msg: 'keyscope authenticated', event: 'authenticated', keyId: 'key_1', ownerId: 'u1', keyLevel: 'project', projectId: 'proj_a' },
    ]);
  });

  it('writes store errors and failed usage writes at error, with the error\'s name, message and code but no stack', () => {
    const busy = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    const [store, usage] = logged(
      'error',
      { type: 'store_error', operation: 'findKeyByHash', error: new TypeError('connection lost') },
      { type: 'usage_flush_failed', error: busy, backlog: 3, dropped: 0 },
    );
    expect(store).toMatchObject({ level: 'error', event: 'store_error', operation: 'findKeyByHash', error: { name: 'TypeError', message: 'connection lost' } });
    expect(usage).toMatchObject({ level: 'error', event: 'usage_flush_failed', backlog: 3, dropped: 0, error: { name: 'Error', message: 'database is locked', code: 'SQLITE_BUSY' } });
    expect(JSON.stringify([store, usage])).not.toContain('stack');
  });

  it('writes refusals at info and a tripped throttle at warn, and drops what is below the level', () => {
    const refused = { type: 'refused', code: 'invalid_api_key', status: 401, keyStart: 'ks_abcd' } as const;
    const tripped = { type: 'throttle_tripped', client: '203.0.113.7', retryAfterSeconds: 60 } as const;
    expect(logged('info', refused, tripped).map((line) => [line.level, line.event])).toEqual([['info', 'refused'], ['warn', 'throttle_tripped']]);
    expect(logged('warn', refused, tripped).map((line) => line.event)).toEqual(['throttle_tripped']);
  });
});
