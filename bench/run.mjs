// `pnpm bench [--quick]`: HTTP throughput and server CPU per request of keyscope against bare
// frameworks, a no-op middleware, a hand-written check and the peers, plus the abuse and
// cold-path scenarios and the in-process micro benchmarks. Servers run in their own processes;
// this process is the load generator, so the CPU time read from each server's /proc/<pid>/stat
// is the server's alone. Rounds are interleaved (A B C A B C …) and only ratios from the same
// round are compared. A full run writes results/latest.*; --quick writes results/quick.* and
// --only (quick or not) results/partial.*, so neither ever replaces the committed full run.
import { fork, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { renderMarkdown, renderSvg } from './report.mjs';

const here = import.meta.dirname;
const quick = process.argv.includes('--quick');
// The cold path needs more keys than the server's cache holds: the quick run shrinks both.
// prewarm: requests each server answers once, before its first round. V8 compiles a server's
// hot paths over its first ~10,000 requests, on threads of the same process, so until then the
// CPU per request is up to several times the settled cost; a warm-up counted in seconds gives a
// slow server too few requests, the quick run's especially.
// scenarioRounds: the scenarios (see scenarios()) run in interleaved rounds of shorter windows
// rather than one long window each, so a target is the median of same-round ratios and one
// window caught by the machine's noise cannot decide it. Their warm-up can be short: the server
// has been through its prewarm and the rounds by then, and a scenario's own path is compiled
// within the first round's warm-up.
// rounds and duration: many short windows rather than a few long ones. On a shared machine a
// server's CPU per request can jump by half for a stretch of seconds; with 15 rounds of 3 s such
// a stretch spoils a few windows of each server, which the median of rounds leaves out, where
// with 5 rounds of 10 s it decided a median. The warm-up before each window only reconnects:
// the prewarm has compiled the server's paths.
const plan = quick
  ? { rounds: 1, prewarm: 10_000, warmup: 1, duration: 1, scenarioRounds: 1, scenarioWarmup: 1, scenarioDuration: 1, connections: 50, coldKeys: 3_000, cacheMax: 1_000, memoryKeys: 20_000, microRounds: 2 }
  : { rounds: 15, prewarm: 30_000, warmup: 1, duration: 3, scenarioRounds: 9, scenarioWarmup: 1, scenarioDuration: 2, connections: 50, coldKeys: 100_000, cacheMax: 10_000, memoryKeys: 100_000, microRounds: 5 };
// noop (a middleware that only calls next) is the control: what one layer costs, and how far
// two servers doing the same work differ in a round. On Fastify `hand` is a synchronous hook
// that calls done(), and `hand-async` the same check in an async hook (keyscope's shape).
const VARIANTS = {
  express: ['bare', 'noop', 'hand', 'keyscope', 'peer'],
  koa: ['bare', 'noop', 'hand', 'keyscope'],
  fastify: ['bare', 'noop', 'hand', 'hand-async', 'keyscope', 'peer'],
  hono: ['bare', 'noop', 'hand', 'keyscope'],
};
// `--only=fastify,koa` limits the frameworks (for profiling one; reports stay per framework);
// `store` in the list runs the SQLite-vs-PostgreSQL comparison, which otherwise runs only in
// full and quick runs.
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
if (only) for (const framework of Object.keys(VARIANTS)) if (!only.includes(framework)) delete VARIANTS[framework];
const runStore = !only || only.includes('store');
const PEERS = { express: 'passport-headerapikey', fastify: '@fastify/bearer-auth' };
// A partial run, quick or not, never replaces a complete quick run's files.
const outName = only ? 'partial' : quick ? 'quick' : 'latest';
// The store comparison runs on one framework: the store path is the same code under all four
// (the adapters call one authenticate()), and running it on the other three would add ~17 min to the
// full run. Fastify: the fastest server here, so the store's cost shows most.
const STORE_FRAMEWORK = 'fastify';
// A PostgreSQL server to create (and drop) a scratch schema in; never DATABASE_URL, so the
// benchmark cannot land in an app's database by accident.
const pgUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const pgSchema = `keyscope_bench_${process.pid}_${Date.now().toString(36)}`;
const redact = (url) => {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable BENCH_DATABASE_URL)';
  }
};

// A fresh clone after install has no dist/ yet: build once.
if (['core', 'sqlite', 'postgres', 'express', 'koa', 'fastify', 'fetch'].some((pkg) => !existsSync(join(here, `../packages/${pkg}/dist/index.js`)))) {
  console.error('building the packages first…');
  execFileSync('npx', ['-y', 'pnpm@12.4.2', 'build'], { cwd: join(here, '..'), stdio: ['ignore', 'ignore', 'inherit'] });
}
// Imported only now: they are the built packages.
const { createKeyscope, generateKey } = await import('@keyscope/core');
const { SqliteStore } = await import('@keyscope/sqlite');
const { PostgresStore } = await import('@keyscope/postgres');
const { default: pg } = await import('pg');

const work = mkdtempSync(join(tmpdir(), 'keyscope-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const log = (...args) => console.error(...args);

// Server CPU time: utime + stime (fields 14 and 15) of /proc/<pid>/stat, every thread of the
// server process (GC and libuv's pool included), in clock ticks of 1/CLK_TCK s. Read from
// outside at the edges of each measured window, so the server does no extra work and the load
// generator (this process) is not counted. A tick is 10 ms at the usual CLK_TCK of 100: a
// window must hold many ticks, and the report gives the resolution per request.
const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
const hasProc = existsSync('/proc/self/stat');
if (!hasProc) log('no /proc on this system: server CPU time is not measured, only req/s');
function cpuTicks(pid) {
  if (!hasProc) return NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2, the command name in parentheses, may hold spaces: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}
// The whole machine's busy ticks (/proc/stat: user, nice, system, irq, softirq, steal), so a
// window can say how much CPU went to processes that are neither the server nor this one: the
// noise that CPU per request is meant to see through, and does only in part.
function machineBusyTicks() {
  if (!hasProc) return NaN;
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].split(/\s+/).slice(1).map(Number);
  return user + nice + system + irq + softirq + steal;
}
const reason = (error) => error?.message || error?.code || error?.errors?.map((e) => e.message).join('; ') || String(error);

// --- PostgreSQL: is it there? (said now, so a missing server is no surprise at the end) ---
async function probePostgres() {
  const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query('SHOW server_version');
    return { ok: true, version: rows[0].server_version };
  } catch (error) {
    return { ok: false, reason: reason(error) };
  } finally {
    await client.end().catch(() => {});
  }
}
const postgres = runStore ? await probePostgres() : { ok: false, reason: 'not requested (--only without store)' };
if (runStore) {
  log(
    postgres.ok
      ? `PostgreSQL ${postgres.version} at ${redact(pgUrl)}: the store comparison will use scratch schema ${pgSchema}`
      : `PostgreSQL UNREACHABLE at ${redact(pgUrl)} (${postgres.reason}): the PostgreSQL store row is skipped, everything else runs. Set BENCH_DATABASE_URL to point elsewhere.`,
  );
}

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
// The same records go into PostgreSQL, so both stores answer for the same keys.
const records = await store.listAllKeys();
store.close();
const keysFile = join(work, 'keys.json');
// The hand-written check and the peers get a Map of 1,000 keys, as in the reference numbers.
writeFileSync(keysFile, JSON.stringify({ owner, projectId, plaintext: plaintext.slice(0, 1000) }));
// The 500th of the 1,000: @fastify/bearer-auth compares the key with its keys in turn, so the
// first would flatter it. The Map lookups (keyscope, hand-written, passport) do not care.
const validKey = plaintext[499];
// The cold path's keys: all but the 1,000 the hand-written check holds and the last (kept for
// the 200 concurrent first requests).
const coldSet = plaintext.slice(1000, -1);
const headersFor = (key) => ({ 'x-api-key': key, 'x-project-id': projectId, authorization: `Bearer ${key}` });

// --- servers ------------------------------------------------------------------------------
function startServer(framework, variant, env = {}, label = env.BENCH_STORE ?? 'sqlite') {
  return new Promise((resolve, reject) => {
    const child = fork(join(here, 'servers/server.mjs'), {
      env: { ...process.env, FRAMEWORK: framework, VARIANT: variant, BENCH_DB: db, BENCH_KEYS: keysFile, BENCH_CACHE_MAX: String(plan.cacheMax), NODE_ENV: 'production', ...env },
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
      resolve({ framework, variant, store: label, port, child, stats: () => ask('stats'), reset: () => child.send('reset') });
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

/**
 * One measured window: autocannon's numbers, the server's CPU time per answered request, and
 * the cores that other processes kept busy meanwhile (otherCores).
 */
async function measured(server, options, duration = plan.duration) {
  const started = performance.now();
  const before = [cpuTicks(server.child.pid), cpuTicks(process.pid), machineBusyTicks()];
  const r = await load(server.port, { ...options, duration });
  const [ticks, own, machine] = [cpuTicks(server.child.pid), cpuTicks(process.pid), machineBusyTicks()].map((t, i) => t - before[i]);
  const seconds = (performance.now() - started) / 1000;
  const total = r.requests.total;
  const cpu = Number.isFinite(ticks);
  return {
    rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors, total,
    cpuTicks: cpu ? ticks : null,
    cpuUs: cpu && total > 0 ? (ticks * 1e6) / clockTicks / total : null,
    otherTicks: cpu ? Math.max(0, machine - ticks - own) : null,
    otherCores: cpu ? Math.max(0, machine - ticks - own) / clockTicks / seconds : null,
  };
}

async function measure(server, options) {
  await load(server.port, { ...options, duration: plan.warmup });
  return measured(server, options);
}

/** Before a server's first round: plan.prewarm requests, so the JIT has settled (see plan). */
function prewarm(server, options) {
  return autocannon({ url: `http://127.0.0.1:${server.port}/sites`, connections: plan.connections, pipelining: 1, amount: plan.prewarm, ...options });
}

const perRequest = (m) => (m.cpuUs == null ? '' : `, ${m.cpuUs.toFixed(1).padStart(6)} µs CPU/req`);

const cycling = (keys) => {
  let i = 0;
  return [{ method: 'GET', path: '/sites', setupRequest: (req) => ({ ...req, headers: { ...req.headers, ...headersFor(keys[i++ % keys.length]) } }) }];
};

// --- HTTP: interleaved rounds per framework -----------------------------------------------
const http = {};
for (const [framework, variants] of Object.entries(VARIANTS)) {
  const servers = await Promise.all(variants.map((variant) => startServer(framework, variant)));
  for (const server of servers) await prewarm(server, { headers: headersFor(validKey) });
  http[framework] = { rounds: [] };
  for (let round = 0; round < plan.rounds; round++) {
    const results = {};
    // Each round starts one server later, so no server always runs in the same place or right
    // after the same other: two copies of one Express server in the same rounds differed by a
    // median of 13 % (the later one costlier), which a fixed order would charge to a variant.
    const order = servers.map((_, i) => servers[(i + round) % servers.length]);
    for (const server of order) {
      results[server.variant] = await measure(server, { headers: headersFor(validKey) });
      log(`${framework.padEnd(8)} round ${round + 1}/${plan.rounds} ${server.variant.padEnd(10)} ${Math.round(results[server.variant].rps).toLocaleString().padStart(7)} req/s${perRequest(results[server.variant])}`);
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
  const badChecksum = validKey.slice(0, -1) + (validKey.endsWith('A') ? 'B' : 'A');
  const unknown = Array.from({ length: 1000 }, () => generateKey());
  const unknownForWarmup = Array.from({ length: 1000 }, () => generateKey());
  // One unbroken cycle through all warm-ups and windows of all rounds: a key comes back only
  // after all the others.
  const cold = { requests: cycling(coldSet) };
  // Each window is warmed up like the rounds, so it does not pay for compiling its path.
  const sequence = [
    ['valid', { headers: headersFor(validKey) }],
    ['badChecksum', { headers: headersFor(badChecksum) }],
    // Warmed on other unknown keys, which push the measured ones out of the negative cache (as
    // large as either set): each measured one still costs its store call, in every round.
    ['unknown', { requests: cycling(unknown) }, { requests: cycling(unknownForWarmup) }],
    ['cold', cold],
  ];
  const rounds = [];
  const [valid, ...others] = sequence;
  const window = async (round, [name, options, warmup = options]) => {
    await load(server.port, { ...warmup, duration: plan.scenarioWarmup });
    server.reset();
    const m = await measured(server, options, plan.scenarioDuration);
    const { storeCalls } = await server.stats();
    log(`${server.framework.padEnd(8)} scenario round ${round + 1}/${plan.scenarioRounds} ${name.padEnd(12)} ${Math.round(m.rps).toLocaleString().padStart(7)} req/s${perRequest(m)}, ${storeCalls} store calls`);
    return { ...m, storeCalls };
  };
  for (let round = 0; round < plan.scenarioRounds; round++) {
    // Every scenario window is paired with a valid-key window right beside it, and its ratio is
    // taken within the pair: the machine's slow stretches last seconds, so two adjacent windows
    // share one far more often than two windows a minute apart do. Which comes first alternates
    // by round, and each round starts one scenario later, so none always follows the same other
    // (what a window leaves behind, garbage to collect or a cache the cold path has churned, lands
    // on a different one each round).
    const results = {};
    for (let i = 0; i < others.length; i++) {
      const scenario = others[(i + round) % others.length];
      const pair = round % 2 === 0 ? [valid, scenario] : [scenario, valid];
      const [first, second] = [await window(round, pair[0]), await window(round, pair[1])];
      const [validWindow, scenarioWindow] = round % 2 === 0 ? [first, second] : [second, first];
      results[scenario[0]] = { ...scenarioWindow, pairedValid: validWindow };
      // The valid-key row: the round's first valid window.
      results.valid ??= validWindow;
    }
    rounds.push(results);
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
  const concurrentFirst = { requests: 200, ok: statuses.filter((s) => s === 200).length, storeCalls: (await server.stats()).storeCalls };
  log(`${server.framework.padEnd(8)} scenario 200 concurrent first requests: ${concurrentFirst.ok} ok, ${concurrentFirst.storeCalls} store call(s)`);
  return { rounds, concurrentFirst };
}

// --- store: the same keyscope server on SQLite and on PostgreSQL, side by side --------------
// A scratch schema, migrated by the store, the project added by the store, the keys copied in
// with one multi-row INSERT per 20,000 (the store's createKey, one round trip per key, would
// take minutes for the full run's 100,000).
async function preparePostgres() {
  const started = Date.now();
  const setup = new PostgresStore({ connectionString: pgUrl, schema: pgSchema, listen: false });
  const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  const drop = async () => {
    const c = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 5000 });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`);
      log(`dropped PostgreSQL schema ${pgSchema}`);
    } catch (error) {
      log(`could not drop PostgreSQL schema ${pgSchema} (${reason(error)}): drop it by hand`);
    } finally {
      await c.end().catch(() => {});
    }
  };
  try {
    await setup.migrate();
    await setup.addProject({ id: projectId, ownerId: owner, name: 'Bench' });
    await client.connect();
    const iso = (d) => (d ? d.toISOString() : null);
    for (let i = 0; i < records.length; i += 20_000) {
      const chunk = records.slice(i, i + 20_000);
      const column = (f) => chunk.map(f);
      await client.query(
        `INSERT INTO "${pgSchema}".keys (id, name, owner_id, level, project_id, hash, start, created_at, expires_at, revoked_at, last_used_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                              $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[])`,
        [
          column((r) => r.id), column((r) => r.name), column((r) => r.ownerId), column((r) => r.level), column((r) => r.projectId ?? null),
          column((r) => r.hash), column((r) => r.start), column((r) => iso(r.createdAt)), column((r) => iso(r.expiresAt)),
          column((r) => iso(r.revokedAt)), column((r) => iso(r.lastUsedAt)),
        ],
      );
    }
    await client.query(`ANALYZE "${pgSchema}".keys`);
    // Through the store, as the server will read it: the copy must be what the store expects.
    const first = await setup.findKeyByHash(records[0].hash);
    if (first?.id !== records[0].id) throw new Error(`the copied key ${records[0].id} does not read back through PostgresStore`);
  } catch (error) {
    await drop();
    throw error;
  } finally {
    await client.end().catch(() => {});
    await setup.close();
  }
  const insertMs = Date.now() - started;
  log(`PostgreSQL: schema ${pgSchema} migrated, ${records.length.toLocaleString()} keys copied in ${(insertMs / 1000).toFixed(1)} s`);
  return { drop, insertMs };
}

async function storeComparison() {
  const out = {
    framework: STORE_FRAMEWORK,
    coldKeys: coldSet.length,
    cacheMax: plan.cacheMax,
    postgres: { url: redact(pgUrl), schema: pgSchema, version: postgres.version, keys: records.length },
    rounds: [],
  };
  let prepared;
  if (postgres.ok) {
    try {
      prepared = await preparePostgres();
      out.postgres.insertMs = prepared.insertMs;
    } catch (error) {
      out.postgres.skipped = `setup failed: ${reason(error)}`;
      log(`PostgreSQL store row skipped: ${out.postgres.skipped}`);
    }
  } else {
    out.postgres.skipped = `unreachable: ${postgres.reason}`;
  }
  // Ctrl-C mid-run: still drop the scratch schema (the servers get the signal too).
  const onSigint = async () => {
    await prepared?.drop();
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    // SQLite twice: as configured by default, and with usage not recorded, which tells how much
    // of the cold path is the usage rows a flush writes (one per key and day).
    const servers = [
      await startServer(STORE_FRAMEWORK, 'keyscope', { BENCH_STORE: 'sqlite' }),
      await startServer(STORE_FRAMEWORK, 'keyscope', { BENCH_STORE: 'sqlite', BENCH_USAGE: 'off' }, 'sqlite-no-usage'),
    ];
    if (prepared) {
      try {
        servers.push(await startServer(STORE_FRAMEWORK, 'keyscope', { BENCH_STORE: 'postgres', BENCH_DATABASE_URL: pgUrl, BENCH_PG_SCHEMA: pgSchema }));
      } catch (error) {
        out.postgres.skipped = `server failed to start: ${reason(error)}`;
        log(`PostgreSQL store row skipped: ${out.postgres.skipped}`);
      }
    }
    // Each server walks the cold keys in its own unbroken cycle, warm-ups and rounds included, so
    // a key comes back to it only after all the others: more than its cache holds, always a miss.
    for (const server of servers) await prewarm(server, { headers: headersFor(validKey) });
    const cold = new Map(servers.map((server) => [server, { requests: cycling(coldSet) }]));
    const paths = [
      ['warm', () => ({ headers: headersFor(validKey) })],
      ['cold', (server) => cold.get(server)],
    ];
    for (let round = 0; round < plan.rounds; round++) {
      const results = Object.fromEntries(servers.map((s) => [s.store, {}]));
      // Each round starts one server later: none always follows another.
      const order = servers.map((_, i) => servers[(i + round) % servers.length]);
      for (const [path, optionsFor] of paths) {
        for (const server of order) {
          const options = optionsFor(server);
          // Warm-up (the pool connected, statements prepared, the JIT warm), then counted afresh.
          await load(server.port, { ...options, duration: plan.warmup });
          server.reset();
          const m = await measured(server, options);
          m.storeCalls = (await server.stats()).storeCalls;
          results[server.store][path] = m;
          const trouble = m.non2xx || m.errors ? ` — ${m.non2xx} non-2xx, ${m.errors} errors: the number is not a valid measurement` : '';
          log(`store    round ${round + 1}/${plan.rounds} ${server.store.padEnd(8)} ${path} ${Math.round(m.rps).toLocaleString().padStart(7)} req/s${perRequest(m)}, ${m.storeCalls.toLocaleString()} store calls / ${m.total.toLocaleString()} requests${trouble}`);
        }
      }
      out.rounds.push(results);
    }
    await Promise.all(servers.map(stop));
  } finally {
    process.off('SIGINT', onSigint);
    await prepared?.drop();
  }
  return out;
}

const storeResult = runStore ? await storeComparison() : undefined;

// --- micro, in a fresh process ------------------------------------------------------------
log('micro benchmarks…');
const micro = JSON.parse(
  execFileSync(process.execPath, ['--expose-gc', join(here, 'micro/auth.mjs'), '--json', String(plan.microRounds), String(plan.memoryKeys), quick ? '100000' : '500000'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }),
);

// Signed keys (warm against opaque, cold verification against jose's own) and the cold path
// (a miss through authenticate() against the store's bare findKeyByHash), each in a fresh process.
const microJson = (file, args) =>
  JSON.parse(execFileSync(process.execPath, ['--expose-gc', join(here, file), '--json', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
log('micro: signed keys…');
const signed = microJson('micro/signed.mjs', [String(plan.microRounds)]);
log('micro: cold path…');
const cold = microJson('micro/cold.mjs', [String(plan.microRounds), String(plan.coldKeys)]);
log('micro: per-key limits…');
const limits = microJson('micro/limits.mjs', [String(plan.microRounds), quick ? '50000' : '200000']);
// `--before=<git ref>`: the warm path of a key without limits, this checkout's core against that
// commit's, side by side in one process (micro/before-after.mjs).
const beforeRef = process.argv.find((a) => a.startsWith('--before='))?.slice(9);
let beforeAfter;
if (beforeRef) {
  log(`micro: the warm path against ${beforeRef}…`);
  beforeAfter = microJson('micro/before-after.mjs', [beforeRef, String(plan.microRounds), quick ? '100000' : '300000']);
}

// --- report -------------------------------------------------------------------------------
const result = {
  date: new Date().toISOString(),
  quick,
  machine: { cpus: cpus().length, node: process.version },
  cpu: { measured: hasProc, clockTicks, source: '/proc/<pid>/stat utime+stime of each server process' },
  plan,
  peers: PEERS,
  http,
  ...(storeResult && { store: storeResult }),
  micro,
  signed,
  cold,
  limits,
  ...(beforeAfter && { beforeAfter }),
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, `results/${outName}.json`), JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(here, `results/${outName}.md`), renderMarkdown(result));
// The chart is the README's: only a full run draws it.
if (outName === 'latest') writeFileSync(join(here, 'results/ratios.svg'), renderSvg(result));
console.log(renderMarkdown(result));
if (storeResult?.postgres.skipped) log(`note: the PostgreSQL store row was not measured (${storeResult.postgres.skipped})`);
log(`wrote bench/results/${outName}.json and ${outName}.md${outName === 'latest' ? ' and ratios.svg' : ''}`);
