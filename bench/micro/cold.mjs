// In-process cold path: every request carries another of N valid keys in a SQLite store, with a
// key cache far smaller than N, so nearly every request is a cache miss. Measured side by side in
// interleaved rounds: the store's own read a miss makes (findKeyForAuth) on those keys' hashes,
// its full findKeyByHash for reference, and authenticate().
// `node micro/cold.mjs [ROUNDS] [KEYS]` prints a table; with `--json`, JSON (run.mjs).
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createKeyscope, generateKey, generateKeyId, hashKey, keyStart } from '@keyscope/core';
import { SqliteStore } from '@keyscope/sqlite';
import { interleaved } from './rounds.mjs';

const json = process.argv.includes('--json');
const [roundsArg, keysArg] = process.argv.slice(2).filter((arg) => arg !== '--json');
const rounds = Number(roundsArg ?? 5);
const KEYS = Number(keysArg ?? 100_000);
// A tenth of the keys (10,000 for 100,000, as the cache's default): nearly every request misses.
const CACHE = Math.max(100, Math.floor(KEYS / 10));
const N = Number(process.env.COLD_N ?? 20_000); // requests per timed loop

const file = join(tmpdir(), `keyscope-cold-${process.pid}.db`);
const store = new SqliteStore({ filename: file });
await store.addProject({ id: 'proj_alpha', ownerId: 'u', name: 'Alpha' });
// Seeded in one transaction (keys.create commits one key at a time, durably: minutes for 100,000).
const keys = Array.from({ length: KEYS }, () => generateKey());
const hashes = keys.map((key) => hashKey(key));
const seed = new Database(file);
const insert = seed.prepare('INSERT INTO keys (id, name, owner_id, level, project_id, hash, start, created_at, expires_at, revoked_at, last_used_at, kind) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, NULL, NULL, NULL, ?)');
seed.transaction(() => keys.forEach((key, i) => insert.run(generateKeyId(), `k${i}`, 'u', 'user', hashes[i], keyStart(key), Date.now(), 'opaque')))();
seed.close();

// One authenticator per round, so each starts cold; user keys with a project, as an API sees them.
const fresh = () => createKeyscope({ store, usage: false, cache: { max: CACHE } });
const inputs = keys.map((key) => ({ headers: Object.assign(Object.create(null), { 'x-api-key': key, 'x-project-id': 'proj_alpha' }), path: '/sites' }));

let sink;
let offset = 0;
const next = () => (offset = (offset + 7919) % KEYS); // a stride through all keys: the cache never holds the next one
const cases = {
  findKeyForAuth: async () => {
    const t = performance.now();
    for (let i = 0; i < N; i++) sink = await store.findKeyForAuth(hashes[next()]);
    return ((performance.now() - t) / N) * 1e6;
  },
  findKeyByHash: async () => {
    const t = performance.now();
    for (let i = 0; i < N; i++) sink = await store.findKeyByHash(hashes[next()]);
    return ((performance.now() - t) / N) * 1e6;
  },
  authenticate: async () => {
    const ks = fresh();
    const t = performance.now();
    for (let i = 0; i < N; i++) {
      sink = await ks.authenticate(inputs[next()]);
      if (!sink.ok) throw new Error(`refused: ${sink.error.code}`);
    }
    const ns = ((performance.now() - t) / N) * 1e6;
    await ks.close();
    return ns;
  },
  warm: async () => {
    const ks = fresh();
    const input = inputs[0];
    await ks.authenticate(input);
    const t = performance.now();
    for (let i = 0; i < N; i++) sink = await ks.authenticate(input);
    const ns = ((performance.now() - t) / N) * 1e6;
    await ks.close();
    return ns;
  },
};
const ns = await interleaved(cases, rounds);
store.close();
for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });

const result = { rounds, keys: KEYS, cache: CACHE, ns, ratio: { missToRead: ns.authenticate / ns.findKeyForAuth, missToFind: ns.authenticate / ns.findKeyByHash, warmToMiss: ns.authenticate / ns.warm } };
if (json) console.log(JSON.stringify(result));
else {
  console.table(Object.fromEntries(Object.entries(ns).map(([name, value]) => [name, { 'ns/op': Math.round(value) }])));
  console.log(`a miss through authenticate() ÷ the store read it makes (findKeyForAuth) = ${result.ratio.missToRead.toFixed(2)} (target ≤ 2); ÷ the full findKeyByHash = ${result.ratio.missToFind.toFixed(2)}`);
}
