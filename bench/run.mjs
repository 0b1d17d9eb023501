// `pnpm bench [--quick]`: HTTP throughput of keyscope against bare frameworks, a hand-written
// check and the peers, plus the abuse and cold-path scenarios and the in-process micro
// benchmarks. Servers run in their own processes; this process is the load generator.
// Rounds are interleaved (A B C A B C …) and only ratios from the same round are compared.
import { fork, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { renderMarkdown, renderSvg } from './report.mjs';

const here = import.meta.dirname;
const quick = process.argv.includes('--quick');
// The cold path needs more keys than the server's cache holds: the quick run shrinks both.
const plan = quick
  ? { rounds: 1, warmup: 1, duration: 1, connections: 50, coldKeys: 3_000, cacheMax: 1_000, memoryKeys: 20_000, microRounds: 2 }
  : { rounds: 5, warmup: 3, duration: 10, connections: 50, coldKeys: 100_000, cacheMax: 10_000, memoryKeys: 100_000, microRounds: 5 };
const VARIANTS = {
  express: ['bare', 'hand', 'keyscope', 'peer'],
  koa: ['bare', 'hand', 'keyscope'],
  fastify: ['bare', 'hand', 'keyscope', 'peer'],
  hono: ['bare', 'hand', 'keyscope'],
};
// `--only fastify,koa` limits the frameworks (for profiling one; reports stay per framework).
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
if (only) for (const framework of Object.keys(VARIANTS)) if (!only.includes(framework)) delete VARIANTS[framework];
const PEERS = { express: 'passport-headerapikey', fastify: '@fastify/bearer-auth' };

// A fresh clone after install has no dist/ yet: build once.
if (['core', 'sqlite', 'express', 'koa', 'fastify', 'fetch'].some((pkg) => !existsSync(join(here, `../packages/${pkg}/dist/index.js`)))) {
  console.error('building the packages first…');
  execFileSync('npx', ['-y', 'pnpm@12.4.2', 'build'], { cwd: join(here, '..'), stdio: ['ignore', 'ignore', 'inherit'] });
}
// Imported only now: they are the built packages.
const { createKeyscope, generateKey } = await import('@keyscope/core');
const { SqliteStore } = await import('@keyscope/sqlite');

const work = mkdtempSync(join(tmpdir(), 'keyscope-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const log = (...args) => console.error(...args);

// --- fixtures: one SQLite file with the bench owner's keys --------------------------------
log(`preparing ${plan.coldKeys.toLocaleString()} keys in SQLite…`);
const db = join(work, 'bench.db');
const owner = 'bench-user';
const projectId = 'proj_bench';
const store = new SqliteStore({ filename: db });
await store.addProject({ id: projectId, ownerId: owner, name: 'Bench' });
const admin = createKeyscope({ store, usage: false });
const plaintext = [];
for (let i = 0; i < plan.coldKeys; i++) {
  plaintext.push((await admin.keys.create({ ownerId: owner, name: `bench ${i}`, level: 'user' })).key);
}
await admin.close();
store.close();
const keysFile = join(work, 'keys.json');
// The hand-written check and the peers get a Map of 1,000 keys, as in the reference numbers.
writeFileSync(keysFile, JSON.stringify({ owner, projectId, plaintext: plaintext.slice(0, 1000) }));
const validKey = plaintext[0];
const headersFor = (key) => ({ 'x-api-key': key, 'x-project-id': projectId, authorization: `Bearer ${key}` });

// --- servers ------------------------------------------------------------------------------
function startServer(framework, variant) {
  return new Promise((resolve, reject) => {
    const child = fork(join(here, 'servers/server.mjs'), {
      env: { ...process.env, FRAMEWORK: framework, VARIANT: variant, BENCH_DB: db, BENCH_KEYS: keysFile, BENCH_CACHE_MAX: String(plan.cacheMax), NODE_ENV: 'production' },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${framework}/${variant} exited with ${code}`)));
    child.once('message', ({ port }) => {
      const ask = (message) =>
        new Promise((done) => {
          child.once('message', done);
          child.send(message);
        });
      resolve({ framework, variant, port, child, stats: () => ask('stats'), reset: () => child.send('reset') });
    });
  });
}

function stop(server) {
  server.child.removeAllListeners('exit');
  return new Promise((resolve) => {
    server.child.once('exit', resolve);
    server.child.send('stop');
  });
}

function load(port, { duration, headers, requests, connections = plan.connections }) {
  return autocannon({ url: `http://127.0.0.1:${port}/sites`, connections, pipelining: 1, duration, headers, requests });
}

async function measure(server, options) {
  await load(server.port, { ...options, duration: plan.warmup });
  const r = await load(server.port, { ...options, duration: plan.duration });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors, total: r.requests.total };
}

const cycling = (keys) => {
  let i = 0;
  return [{ method: 'GET', path: '/sites', setupRequest: (req) => ({ ...req, headers: { ...req.headers, ...headersFor(keys[i++ % keys.length]) } }) }];
};

// --- HTTP: interleaved rounds per framework -----------------------------------------------
const http = {};
for (const [framework, variants] of Object.entries(VARIANTS)) {
  const servers = await Promise.all(variants.map((variant) => startServer(framework, variant)));
  http[framework] = { rounds: [] };
  for (let round = 0; round < plan.rounds; round++) {
    const results = {};
    for (const server of servers) {
      results[server.variant] = await measure(server, { headers: headersFor(validKey) });
      log(`${framework.padEnd(8)} round ${round + 1}/${plan.rounds} ${server.variant.padEnd(9)} ${Math.round(results[server.variant].rps).toLocaleString().padStart(7)} req/s`);
      if (results[server.variant].non2xx > 0) throw new Error(`${framework}/${server.variant} answered ${results[server.variant].non2xx} non-2xx`);
    }
    http[framework].rounds.push(results);
  }

  // Scenarios beyond the warm path, on the same keyscope server.
  const ks = servers.find((s) => s.variant === 'keyscope');
  if (framework === 'fastify' || !quick) {
    http[framework].scenarios = await scenarios(ks);
  }
  await Promise.all(servers.map(stop));
}

async function scenarios(server) {
  const out = {};
  const badChecksum = validKey.slice(0, -1) + (validKey.endsWith('A') ? 'B' : 'A');
  const unknown = Array.from({ length: 1000 }, () => generateKey());
  const sequence = [
    ['valid', { headers: headersFor(validKey) }],
    ['badChecksum', { headers: headersFor(badChecksum) }],
    ['unknown', { requests: cycling(unknown) }],
    ['cold', { requests: cycling(plaintext.slice(1000, -1)) }],
  ];
  for (const [name, options] of sequence) {
    server.reset();
    const r = await load(server.port, { ...options, duration: plan.duration });
    const { storeCalls } = await server.stats();
    out[name] = { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total, non2xx: r.non2xx, storeCalls };
    log(`${server.framework.padEnd(8)} scenario ${name.padEnd(12)} ${Math.round(out[name].rps).toLocaleString().padStart(7)} req/s, ${storeCalls} store calls`);
  }
  // 200 concurrent first requests for one key the server has never seen (kept out of the cold set).
  server.reset();
  const fresh = plaintext[plaintext.length - 1];
  const agent = new Agent({ maxSockets: 200 });
  const statuses = await Promise.all(
    Array.from({ length: 200 }, () => new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: '/sites', agent, headers: headersFor(fresh) }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end();
    })),
  );
  agent.destroy();
  out.concurrentFirst = { requests: 200, ok: statuses.filter((s) => s === 200).length, storeCalls: (await server.stats()).storeCalls };
  log(`${server.framework.padEnd(8)} scenario 200 concurrent first requests: ${out.concurrentFirst.ok} ok, ${out.concurrentFirst.storeCalls} store call(s)`);
  return out;
}

// --- micro, in a fresh process ------------------------------------------------------------
log('micro benchmarks…');
const micro = JSON.parse(
  execFileSync(process.execPath, ['--expose-gc', join(here, 'micro/auth.mjs'), '--json', String(plan.microRounds), String(plan.memoryKeys), quick ? '100000' : '500000'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }),
);

// --- report -------------------------------------------------------------------------------
const result = {
  date: new Date().toISOString(),
  quick,
  machine: { cpus: cpus().length, node: process.version },
  plan,
  peers: PEERS,
  http,
  micro,
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results/latest.json'), JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(here, 'results/latest.md'), renderMarkdown(result));
writeFileSync(join(here, 'results/ratios.svg'), renderSvg(result));
console.log(renderMarkdown(result));
log('wrote bench/results/latest.json, latest.md and ratios.svg');
