import { describe, expect, it } from 'vitest';
import { AUTH_KEY_COLUMNS, authRecordFromRow, authRecordFromValues, type AuthKeyRow, type AuthKeyValues } from '../src/index.js';

const base: AuthKeyRow = {
  id: 'key_a',
  name: 'ci',
  owner_id: 'u1',
  level: 'user',
  project_id: null,
  expires_at: null,
  revoked_at: null,
  rate_limit: null,
  rate_window_ms: null,
  quota_limit: null,
  quota_remaining: null,
  quota_refill: null,
  quota_reset_at: null,
  limits_from: null,
};

const rows: [string, AuthKeyRow][] = [
  ['a plain user key', base],
  ['a project key, expiring and revoked', { ...base, level: 'project', project_id: 'proj_a', expires_at: 1_800_000_000_000, revoked_at: 1_700_000_000_000 }],
  ['a rate limit', { ...base, rate_limit: 10, rate_window_ms: 60_000 }],
  ['half a rate limit (none)', { ...base, rate_limit: 10 }],
  ['a monthly quota', { ...base, quota_limit: 100, quota_remaining: 7, quota_refill: 'month', quota_reset_at: 1_800_000_000_000 }],
  ['a quota that never refills, remaining unknown', { ...base, quota_limit: 5 }],
  ['a refill the row does not know', { ...base, quota_limit: 5, quota_remaining: 5, quota_refill: 'week' as 'day' }],
  ['a rotated key', { ...base, limits_from: 'key_first' }],
  ['columns a store leaves out', { id: 'key_b', name: 'old', owner_id: 'u2', level: 'user', project_id: null, expires_at: null, revoked_at: null } as AuthKeyRow],
];

describe('authRecordFromValues (a row read as an array)', () => {
  it.each(rows)('reads %s as authRecordFromRow reads the same row as an object', (_, row) => {
    // The array a driver gives for `SELECT <AUTH_KEY_COLUMNS>, hash`: the hash after them is ignored.
    const values = [...AUTH_KEY_COLUMNS.map((column) => row[column]), 'ab'.repeat(32)] as unknown as AuthKeyValues;
    const record = authRecordFromValues(values);
    expect(record).toEqual(authRecordFromRow(row));
    expect(record).not.toBe(authRecordFromValues(values));
  });

  it('answers null for no row, like authRecordFromRow', () => {
    expect(authRecordFromValues(undefined)).toBeNull();
    expect(authRecordFromValues(null)).toBeNull();
  });

  it('names every column of an AuthKeyRow once', () => {
    expect([...AUTH_KEY_COLUMNS].sort()).toEqual(Object.keys(base).sort());
  });
});
