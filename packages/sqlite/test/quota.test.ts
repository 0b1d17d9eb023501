import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KeyRecord, Quota } from '@keyscope/core';
import type Database from 'better-sqlite3';
import { SqliteStore } from '@keyscope/sqlite';
import { keyRecord } from '../../../test/stores/store-conformance.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CONSUMER = fileURLToPath(new URL('./fixtures/consume-quota.mts', import.meta.url));
const SOURCES = fileURLToPath(new URL('./fixtures/sources.tsconfig.json', import.meta.url));

let dir: string;
let filename: string;
const open: SqliteStore[] = [];
function store(): SqliteStore {
  const s = new SqliteStore({ filename });
  open.push(s);
  return s;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyscope-quota-'));
  filename = join(dir, 'keys.db');
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A key with `quota` (default: `limit` units that never refill), created through `s`. */
async function keyWithQuota(s: SqliteStore, limit: number, quota: Partial<Quota> = {}): Promise<KeyRecord> {
  const { key: _key, ...record } = keyRecord({ name: 'metered', ownerId: 'u1', quota: { limit, remaining: limit, refill: null, resetAt: null, ...quota } });
  await s.createKey(record);
  return record;
}

/** Each unit handed out once: the remaining counts granted are exactly limit - 1 down to 0. */
function expectEachUnitOnce(remainders: number[], limit: number): void {
  expect(remainders).toHaveLength(limit);
  expect([...remainders].sort((a, b) => a - b)).toEqual(Array.from({ length: limit }, (_, i) => i));
}

/** Another process with its own store on the file, taking `count` units from the start time it is given. */
function consumer(keyId: string, count: number) {
  const child = spawn(process.execPath, ['--import', 'tsx/esm', CONSUMER, filename, keyId, String(count)], {
    cwd: ROOT,
    env: { ...process.env, TSX_TSCONFIG_PATH: SOURCES },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8');
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      if (out.startsWith('ready\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`consumer exited with ${code} before it was ready`)));
  });
  const done = new Promise<number[]>((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.split('\n')[1]!) as number[]) : reject(new Error(`consumer exited with ${code}`))));
  });
  return { ready, go: (startAt: number) => child.stdin!.write(`${startAt}\n`), done };
}

describe('consumeQuota on one file shared by several stores', () => {
  it('three store objects, 150 concurrent takes of a quota of 50: exactly 50 granted, each unit once', async () => {
    const stores = [store(), store(), store()];
    const record = await keyWithQuota(stores[0]!, 50);
    const now = new Date();
    const takes = await Promise.all(Array.from({ length: 150 }, (_, i) => stores[i % 3]!.consumeQuota(record.id, now)));
    const granted = takes.filter((t) => t!.granted);
    expectEachUnitOnce(granted.map((t) => t!.remaining), 50);
    expect(takes.filter((t) => !t!.granted)).toEqual(Array(100).fill({ granted: false, remaining: 0, limit: 50, refill: null, resetAt: null }));
    for (const s of stores) expect((await s.getKey(record.id))!.quota!.remaining).toBe(0);
  });

  const yesterday = () => new Date(Date.now() - 86_400_000);
  it.each([
    ['a quota of 50', {}],
    ['a used-up daily quota of 50 whose refill is due (applied once)', { remaining: 0, refill: 'day', resetAt: yesterday() }],
  ] as [string, Partial<Quota>][])('three processes taking 50 units each of %s at once: exactly 50 granted, each unit once', async (_, quota) => {
    const s = store();
    const record = await keyWithQuota(s, 50, quota);
    const consumers = [consumer(record.id, 50), consumer(record.id, 50), consumer(record.id, 50)];
    await Promise.all(consumers.map((c) => c.ready));
    const startAt = Date.now() + 100;
    for (const c of consumers) c.go(startAt);
    const granted = await Promise.all(consumers.map((c) => c.done));
    console.log(`units granted per process: ${granted.map((g) => g.length).join(', ')}`);
    expectEachUnitOnce(granted.flat(), 50);
    expect((await s.getKey(record.id))!.quota!.remaining).toBe(0);
  }, 30_000);
});

describe('consumeQuota and durability', () => {
  it('takes units without waiting for an fsync, and leaves the connection at synchronous = FULL for every other write', async () => {
    const s = store();
    const synchronous = () => (s as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true });
    const FULL = 2;
    expect(synchronous()).toBe(FULL);
    const record = await keyWithQuota(s, 1);
    expect(await s.consumeQuota(record.id, new Date())).toMatchObject({ granted: true });
    expect(synchronous()).toBe(FULL);
    expect(await s.consumeQuota(record.id, new Date())).toMatchObject({ granted: false });
    expect(await s.consumeQuota('key_missing', new Date())).toBeNull();
    expect(synchronous()).toBe(FULL);
  });
});
