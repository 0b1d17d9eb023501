// In-process micro benchmarks: authenticate() on a cache hit against the hand-written check,
// measured side by side in interleaved rounds, and the memory that N cached keys cost.
// `node --expose-gc micro/auth.mjs [ROUNDS] [KEYS] [ITERATIONS]` prints a table; with `--json`, JSON (run.mjs).
import { measure } from 'mitata';
import { createKeyscope, MemoryStore } from '@keyscope/core';
import { createHandCheck } from '../hand-check.mjs';
import { interleaved } from './rounds.mjs';

const json = process.argv.includes('--json');
const [roundsArg, keysArg, iterationsArg] = process.argv.slice(2).filter((arg) => arg !== '--json');
const rounds = Number(roundsArg ?? 5);
const memoryKeys = Number(keysArg ?? 100_000);
const N = Number(iterationsArg ?? 500_000); // iterations per timed loop

const store = new MemoryStore();
store.addProject({ id: 'proj_alpha', ownerId: 'u', name: 'Alpha' });
const ks = createKeyscope({ store });
const { key } = await ks.keys.create({ ownerId: 'u', name: 'k', level: 'user' });
// Node's IncomingHttpHeaders as a server sees them: a null-prototype object, lowercase names.
const headers = Object.assign(Object.create(null), { host: '127.0.0.1:3000', 'user-agent': 'bench', accept: '*/*', 'x-api-key': key, 'x-project-id': 'proj_alpha' });
const input = { headers, method: 'GET', path: '/sites' };
if (!(await ks.authenticate(input)).ok) throw new Error('bench key refused');

const handCheck = createHandCheck([key], 'u', 'proj_alpha');

// The call alone (for authenticate(), the synchronous work and its settled promise) measured
// by mitata, and the call awaited as a middleware does, in a plain timed loop (mitata's async
// harness adds its own await to every iteration). Interleaved rounds, median.
let sink;
const loopAwait = async (fn) => { const t = performance.now(); for (let i = 0; i < N; i++) sink = await fn(); return ((performance.now() - t) / N) * 1e6; };
const cases = {
  hand: async () => (await measure(() => handCheck(headers))).avg,
  authenticate: async () => (await measure(() => ks.authenticate(input))).avg,
  handAwaited: () => loopAwait(() => handCheck(headers)),
  authenticateAwaited: () => loopAwait(() => ks.authenticate(input)),
};
const ns = await interleaved(cases, rounds);
await ks.close();

// Memory: N keys resolved once each, so all N sit in the cache.
const big = new MemoryStore();
const filler = createKeyscope({ store: big, usage: false, cache: { max: memoryKeys } });
const issued = [];
for (let i = 0; i < memoryKeys; i++) issued.push((await filler.keys.create({ ownerId: 'u', name: `k${i}`, level: 'user' })).key);
// Held globally so nothing measured is collected as dead once the loop ends.
globalThis.benchHeld = { big, filler, issued };
const settle = () => { globalThis.gc?.(); globalThis.gc?.(); return process.memoryUsage(); };
const before = settle();
for (const k of issued) await filler.authenticate({ headers: { 'x-api-key': k }, path: '/validate' });
const after = settle();
const memory = { keys: memoryKeys, rssMB: (after.rss - before.rss) / 2 ** 20, heapMB: (after.heapUsed - before.heapUsed) / 2 ** 20, gcExposed: typeof globalThis.gc === 'function' };

const result = { rounds, ns, ratio: { authenticateToHand: ns.authenticate / ns.hand, awaitedToAwaited: ns.authenticateAwaited / ns.handAwaited }, memory };
if (json) console.log(JSON.stringify(result));
else {
  console.table(ns);
  console.log(`both awaited: authenticate / hand-written = ${result.ratio.awaitedToAwaited.toFixed(2)} (target ≤ 1.2); the bare calls: ${result.ratio.authenticateToHand.toFixed(2)}`);
  console.log(`${memoryKeys.toLocaleString()} cached keys: +${memory.heapMB.toFixed(1)} MB heap (target ≤ 20 MB), +${memory.rssMB.toFixed(1)} MB RSS`);
}
