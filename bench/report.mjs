// Turns a run's JSON (bench/results/latest.json) into the Markdown tables and the SVG chart the
// README shows. Every ratio and difference is computed within one round (same machine state),
// then the median is taken.

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const verdict = (ok) => (ok ? 'met' : '**missed**');

/** The q-quantile of a list, interpolated between neighbours (q = 0.5: the median). */
const quantile = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  return low + 1 < sorted.length ? sorted[low] + (sorted[low + 1] - sorted[low]) * (at - low) : sorted[low];
};
/** min, median and max of a list, and its quartiles (q1, q3: the middle half of the rounds lies between). */
const spread = (values) => ({ median: median(values), min: Math.min(...values), max: Math.max(...values), q1: quantile(values, 0.25), q3: quantile(values, 0.75) });
const signed = (n, digits = 1) => `${n < 0 ? '−' : '+'}${fmt(Math.abs(n), digits)}`;
const dash = '—';
/** A spread as `median (min–max)`, or the one value when the rounds agree (or there was one). */
const ranged = (s, digits = 2) => (s.min === s.max ? fmt(s.median, digits) : `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`);
// Runs before the scenarios had rounds stored one window per scenario: read that as one round.
const scenarioRounds = (scenarios) => scenarios.rounds ?? [scenarios];
/** The valid-key window a scenario's ratio is taken against: the one paired with it, else (older runs) the round's. */
const validFor = (round, name) => round[name].pairedValid ?? round.valid;

/**
 * Per framework and variant: the server's CPU µs per request and req/s (median and spread of
 * rounds), the CPU it adds to bare and to the hand-written check and the req/s ratios, each
 * taken within a round before the median.
 */
export function summarize(result) {
  const tickUs = 1e6 / (result.cpu?.clockTicks ?? 100);
  const rows = [];
  for (const [framework, { rounds }] of Object.entries(result.http)) {
    const cpuMeasured = rounds.every((r) => Object.values(r).every((m) => m.cpuUs != null));
    for (const variant of Object.keys(rounds[0])) {
      const of = (f) => spread(rounds.map(f));
      const added = (reference) => (cpuMeasured && rounds[0][reference] ? of((r) => r[variant].cpuUs - r[reference].cpuUs) : null);
      rows.push({
        framework,
        variant,
        rps: of((r) => r[variant].rps),
        p50: median(rounds.map((r) => r[variant].p50)),
        p99: median(rounds.map((r) => r[variant].p99)),
        toBare: median(rounds.map((r) => r[variant].rps / r.bare.rps)),
        toHand: median(rounds.map((r) => r[variant].rps / r.hand.rps)),
        cpu: cpuMeasured ? of((r) => r[variant].cpuUs) : null,
        addedToBare: added('bare'),
        addedToHand: added('hand'),
        addedToHandAsync: added('hand-async'),
        cpuToBare: cpuMeasured ? median(rounds.map((r) => r[variant].cpuUs / r.bare.cpuUs)) : null,
        // What the req/s ratio would be if the server alone limited throughput: the
        // reference's µs ÷ this server's µs.
        cpuBoundToBare: cpuMeasured ? median(rounds.map((r) => r.bare.cpuUs / r[variant].cpuUs)) : null,
        cpuBoundToHand: cpuMeasured ? median(rounds.map((r) => r.hand.cpuUs / r[variant].cpuUs)) : null,
        // One clock tick over the window's requests: the coarsest step a reading can take.
        resolution: Math.max(...rounds.map((r) => tickUs / r[variant].total)),
        otherCores: rounds.every((r) => r[variant].otherCores != null) ? rounds.map((r) => r[variant].otherCores) : null,
      });
    }
  }
  return rows;
}

const LABELS = {
  bare: 'bare',
  noop: 'no-op middleware',
  hand: 'hand-written check',
  'hand-async': 'hand-written check',
  keyscope: 'keyscope',
};
export const label = (result, framework, variant) => {
  if (variant === 'peer') return result.peers[framework];
  // Fastify: say which hook style each reference uses.
  if (framework === 'fastify' && variant === 'noop') return 'no-op onRequest hook (done)';
  if (framework === 'fastify' && variant === 'hand') return 'hand-written check, sync hook (done)';
  if (variant === 'hand-async') return 'hand-written check, async hook';
  return LABELS[variant] ?? variant;
};

export function renderMarkdown(result) {
  const rows = summarize(result);
  // No HTTP rows (--only=store): CPU is still read, for the store table.
  const cpuMeasured = rows.length === 0 ? result.cpu?.measured === true : rows.every((r) => r.cpu);
  const out = [];
  out.push(`# keyscope benchmark — ${result.date.slice(0, 10)}${result.quick ? ' (quick run: indicative only)' : ''}`);
  out.push('');
  out.push(`Node ${result.machine.node}, ${result.machine.cpus} CPUs; ${result.plan.rounds} interleaved round(s) of ${result.plan.duration} s after ${result.plan.warmup} s warm-up, each round starting one server later, ${result.plan.connections} connections, pipelining 1, loopback. Every server gets the same valid key, the 500th of the 1,000 the hand-written check and the peers hold.`);
  out.push('');
  if (cpuMeasured && rows.length > 0) {
    const tick = 1000 / result.cpu.clockTicks;
    const coarsest = rows.reduce((a, b) => (b.resolution > a.resolution ? b : a));
    out.push(
      `**CPU µs/req** is the server process's CPU time (user + system, all its threads) during the measured window, read from \`/proc/<pid>/stat\`, ÷ the responses received; the load generator runs in another process and is not counted. ` +
        `Median of rounds, and the range. **+ µs** is the difference to the reference within each round, then the median (the range of rounds in brackets); ratios likewise. ` +
        `The clock counts in ticks of ${fmt(tick)} ms (CLK_TCK ${result.cpu.clockTicks}), and a window's reading can be off by up to one tick: ` +
        `at most ${fmt(coarsest.resolution, 2)} µs/req here (${coarsest.framework} ${label(result, coarsest.framework, coarsest.variant)}, the window with the fewest requests). ` +
        `The no-op middleware is the noise control: its + µs over bare is what one layer costs plus how far two servers doing the same work differ, so smaller differences are not resolved. ` +
        `CPU per request is not immune to other work on the machine either: see *Background* below the table.`,
    );
  } else {
    out.push('Server CPU time was not measured (no /proc on this system): req/s only.');
  }
  out.push('');
  out.push('| framework | server | CPU µs/req | range | + µs vs bare | CPU ÷ bare | + µs vs hand-written | req/s | range | req/s ÷ bare | req/s ÷ hand-written | p50 / p99 ms |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const delta = (d) => (d ? `${signed(d.median)} (${signed(d.min)} to ${signed(d.max)})` : dash);
  for (const r of rows) {
    const cpu = r.cpu ? [fmt(r.cpu.median, 1), `${fmt(r.cpu.min, 1)}–${fmt(r.cpu.max, 1)}`] : [dash, dash];
    out.push(
      `| ${r.framework} | ${label(result, r.framework, r.variant)} | ${cpu[0]} | ${cpu[1]} | ${r.variant === 'bare' ? dash : delta(r.addedToBare)} | ${r.cpu ? fmt(r.cpuToBare, 2) : dash} | ${r.variant === 'hand' || r.variant === 'bare' ? dash : delta(r.addedToHand)} | ` +
        `${fmt(r.rps.median)} | ${fmt(r.rps.min)}–${fmt(r.rps.max)} | ${fmt(r.toBare, 2)} | ${fmt(r.toHand, 2)} | ${r.p50} / ${r.p99} |`,
    );
  }
  if (rows.every((r) => r.otherCores)) {
    const background = Object.keys(result.http).map((framework) => {
      const cores = spread(rows.filter((r) => r.framework === framework).flatMap((r) => r.otherCores));
      return { framework, ...cores };
    });
    const busy = background.some((b) => b.median > 0.25);
    out.push('');
    out.push(
      `Background: cores kept busy by other processes (neither the server nor the load generator) during the measured windows, of ${result.machine.cpus}: ` +
        background.map((b) => `${b.framework} median ${fmt(b.median, 2)} (${fmt(b.min, 2)}–${fmt(b.max, 2)})`).join('; ') +
        (busy ? '. **The machine was busy: other work on the same cores inflates CPU per request too, unevenly, so differences here are unreliable.**' : '.'),
    );
  }
  for (const r of rows.filter((x) => x.variant === 'keyscope' && x.addedToHandAsync)) {
    out.push('');
    out.push(`${r.framework}: keyscope's plugin hook calls done() like the synchronous hook (a cached key is decided in the same turn); against the synchronous hand-written hook keyscope adds ${delta(r.addedToHand)} µs/req, against the same check in an async hook ${delta(r.addedToHandAsync)}.`);
  }
  out.push('');
  out.push('## Targets');
  out.push('');
  if (cpuMeasured) {
    out.push('The throughput targets are judged on CPU per request: the reference\'s µs ÷ keyscope\'s (the req/s ratio a server limited by nothing but its own CPU would show, median of the same-round ratios); the measured req/s ratio is beside it. The flood and cold-path targets likewise: valid-key µs ÷ the scenario\'s, taken within each scenario round (within its pair of windows, where the run paired them), then the median, the range of rounds in brackets.');
    out.push('');
  }
  out.push('| target | measured | |');
  out.push('|---|---:|---|');
  const throughput = (cpuRatio, rpsRatio, min) =>
    cpuMeasured ? [`${fmt(cpuRatio, 2)} by CPU (${fmt(rpsRatio, 2)} by req/s)`, verdict(cpuRatio >= min)] : [`${fmt(rpsRatio, 2)} by req/s`, verdict(rpsRatio >= min)];
  for (const r of rows.filter((x) => x.variant === 'keyscope')) {
    const hand = rows.find((x) => x.framework === r.framework && x.variant === 'hand');
    const control = rows.find((x) => x.framework === r.framework && x.variant === 'noop');
    if (cpuMeasured && hand && control) {
      // keyscope's added CPU against the hand-written check's, both over bare; a difference the
      // no-op control's spread of rounds cannot tell from noise counts as met. The spread is the
      // control's interquartile range: the middle half of its rounds, so that one window a
      // noisy moment caught (which the full range would count) cannot widen it.
      const allowed = 1.2 * Math.max(hand.addedToBare.median, 0);
      const noise = control.addedToBare.q3 - control.addedToBare.q1;
      const met = r.addedToBare.median <= allowed || r.addedToBare.median - hand.addedToBare.median <= noise;
      out.push(
        `| ${r.framework}: keyscope's added CPU ≤ 1.2 × the hand-written check's (or within the no-op control's interquartile range) | ` +
          `${delta(r.addedToBare)} vs ${delta(hand.addedToBare)} µs/req (control's interquartile range ${fmt(noise, 1)} µs) | ${verdict(met)} |`,
      );
    } else {
      out.push(`| ${r.framework}: keyscope ÷ hand-written ≥ 0.97 | ${throughput(r.cpuBoundToHand, r.toHand, 0.97).join(' | ')} |`);
    }
  }
  const { micro } = result;
  out.push(`| authenticate() cache hit ≤ 1.2 × hand-written ns/op, both awaited as a middleware does | ${fmt(micro.ratio.awaitedToAwaited, 2)} × (${fmt(micro.ns.authenticateAwaited)} ns vs ${fmt(micro.ns.handAwaited)} ns) | ${verdict(micro.ratio.awaitedToAwaited <= 1.2)} |`);
  out.push(`| the same, the bare call against the synchronous check (for reference) | ${fmt(micro.ratio.authenticateToHand, 2)} × (${fmt(micro.ns.authenticate)} ns vs ${fmt(micro.ns.hand)} ns) | |`);
  out.push(`| ${fmt(micro.memory.keys)} cached keys ≤ 20 MB of heap | +${fmt(micro.memory.heapMB, 1)} MB heap (+${fmt(micro.memory.rssMB, 1)} MB RSS) | ${verdict(micro.memory.heapMB <= 20)} |`);
  const { signed: signedKeys, cold } = result;
  if (cold) out.push(`| a cache miss through authenticate() ≤ 2 × the bare SQLite read it makes, findKeyForAuth (${fmt(cold.keys)} keys, cache of ${fmt(cold.cache)}) | ${fmt(cold.ratio.missToRead, 2)} × (${fmt(cold.ns.authenticate)} ns vs ${fmt(cold.ns.findKeyForAuth)} ns) | ${verdict(cold.ratio.missToRead <= 2)} |`);
  const { limits, beforeAfter } = result;
  if (beforeAfter) out.push(`| a key without limits, warm: no slower than before limits (commit ${beforeAfter.commit}, the same call in one process) | ${fmt(beforeAfter.ratio, 2)} × (${fmt(beforeAfter.ns.after)} ns vs ${fmt(beforeAfter.ns.before)} ns) | ${verdict(beforeAfter.ratio <= 1.05)} |`);
  if (signedKeys) out.push(`| signed key, warm ≤ 1.2 × an opaque key, warm (both awaited) | ${fmt(signedKeys.ratio.warmSignedToOpaque, 2)} × (${fmt(signedKeys.ns.warmSigned)} ns vs ${fmt(signedKeys.ns.warmOpaque)} ns) | ${verdict(signedKeys.ratio.warmSignedToOpaque <= 1.2)} |`);
  for (const [framework, { scenarios }] of Object.entries(result.http)) {
    if (!scenarios) continue;
    const rounds = scenarioRounds(scenarios);
    // Valid key ÷ scenario within each round, by CPU (µs the other way round) and by req/s.
    const toValid = (name) => ({
      cpu: cpuMeasured && rounds.every((r) => validFor(r, name).cpuUs != null && r[name].cpuUs != null) ? spread(rounds.map((r) => validFor(r, name).cpuUs / r[name].cpuUs)) : null,
      rps: spread(rounds.map((r) => r[name].rps / validFor(r, name).rps)),
    });
    const judged = ({ cpu, rps }, min) => (cpu ? [`${ranged(cpu)} by CPU; ${ranged(rps)} by req/s`, cpu.median >= min] : [`${ranged(rps)} by req/s`, rps.median >= min]);
    const floodCalls = rounds.map((r) => r.badChecksum.storeCalls);
    const noCalls = floodCalls.every((c) => c === 0);
    const [flood, floodMet] = judged(toValid('badChecksum'), 0.95);
    const calls = noCalls ? (rounds.length > 1 ? `0 calls in each of ${rounds.length} rounds` : '0 calls') : `calls by round: ${floodCalls.map((c) => fmt(c)).join(', ')}`;
    out.push(`| ${framework}: bad-checksum flood, 0 store calls and ≥ 0.95 of valid-key throughput | ${calls}; ${flood} | ${verdict(noCalls && floodMet)} |`);
    if (rounds[0].cold) {
      const [coldToWarm, coldMet] = judged(toValid('cold'), 0.7);
      // What a miss costing nothing but the store's own read (in-process, micro/cold.mjs) would give:
      // the most this target can show on this store, whatever keyscope does.
      const validUs = rounds.every((r) => r.valid.cpuUs != null) ? median(rounds.map((r) => r.valid.cpuUs)) : null;
      const bound = cpuMeasured && cold && validUs != null ? `; a miss costing only SQLite's own read (${fmt(cold.ns.findKeyForAuth / 1000, 1)} µs) would give ${fmt(validUs / (validUs + cold.ns.findKeyForAuth / 1000), 2)}` : '';
      out.push(`| ${framework}: cold path (a different key per request) ≥ 0.7 of the warm path | ${coldToWarm}${bound} | ${verdict(coldMet)} |`);
    }
    out.push(`| ${framework}: 200 concurrent first requests for one key, 1 store call | ${scenarios.concurrentFirst.storeCalls} call(s), ${scenarios.concurrentFirst.ok}/200 ok | ${verdict(scenarios.concurrentFirst.storeCalls === 1 && scenarios.concurrentFirst.ok === 200)} |`);
  }
  out.push('');
  out.push('## Scenarios beyond the warm path (keyscope server)');
  out.push('');
  const withScenarios = Object.values(result.http).filter((h) => h.scenarios);
  const scenarioCount = Math.max(0, ...withScenarios.map((h) => scenarioRounds(h.scenarios).length));
  // Runs before the scenarios had rounds used the rounds' window.
  const [scenarioWarmup, scenarioDuration] = [result.plan.scenarioWarmup ?? result.plan.warmup, result.plan.scenarioDuration ?? result.plan.duration];
  out.push(
    scenarioCount > 1
      ? `After the rounds, on the same server: ${scenarioCount} interleaved rounds of the four scenarios, each a window of ${scenarioDuration} s after ${scenarioWarmup} s warm-up, every round starting one scenario later (the unknown-key flood warms up on other unknown keys; the cold path walks its keys in one cycle through all rounds). ` +
          (withScenarios.some((h) => scenarioRounds(h.scenarios)[0].badChecksum?.pairedValid)
            ? 'Each scenario window has a valid-key window of its own right beside it (which comes first alternates by round), and its ratio is taken within that pair; the valid-key row is each round\'s first valid window. '
            : 'Ratios to the valid key are taken within a round. ') +
          'Each cell is the median of rounds, the range in brackets; CPU µs/req as above.'
      : `After the rounds, on the same server: one window each, ${scenarioDuration} s after ${scenarioWarmup} s warm-up (the unknown-key flood warms up on other unknown keys; a run that pairs windows gives each scenario a valid-key window of its own beside it); CPU µs/req as above.`,
  );
  out.push('');
  out.push('| framework | scenario | CPU µs/req | CPU ÷ valid key | req/s | ÷ valid key | p99 ms (median) | store calls |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|');
  const names = { valid: 'valid key, cache warm', badChecksum: 'flood of bad-checksum keys', unknown: 'flood of 1,000 unknown well-formed keys', cold: `a different valid key per request (${fmt(result.plan.coldKeys - 1001)} keys in SQLite, cache of ${fmt(result.plan.cacheMax)})` };
  for (const [framework, { scenarios }] of Object.entries(result.http)) {
    if (!scenarios) continue;
    const rounds = scenarioRounds(scenarios);
    for (const [key, name] of Object.entries(names)) {
      const of = (f) => spread(rounds.map(f));
      const cpu = rounds.every((r) => r[key].cpuUs != null && validFor(r, key).cpuUs != null) ? [ranged(of((r) => r[key].cpuUs), 1), ranged(of((r) => r[key].cpuUs / validFor(r, key).cpuUs))] : [dash, dash];
      out.push(
        `| ${framework} | ${name} | ${cpu.join(' | ')} | ${ranged(of((r) => r[key].rps), 0)} | ${ranged(of((r) => r[key].rps / validFor(r, key).rps))} | ${median(rounds.map((r) => r[key].p99))} | ${ranged(of((r) => r[key].storeCalls), 0)} |`,
      );
    }
  }
  if (result.store) out.push(...renderStore(result));
  out.push('');
  out.push('## In-process (ns per call, median of rounds)');
  out.push('');
  out.push('| call | ns/op |');
  out.push('|---|---:|');
  out.push(`| hand-written check (sha256 + Map + project Set), called | ${fmt(micro.ns.hand)} |`);
  out.push(`| \`ks.authenticate()\`, cache hit, user key + X-Project-ID, called | ${fmt(micro.ns.authenticate)} |`);
  out.push(`| hand-written check, awaited | ${fmt(micro.ns.handAwaited)} |`);
  out.push(`| \`await ks.authenticate()\` | ${fmt(micro.ns.authenticateAwaited)} |`);
  if (cold) {
    out.push(`| SQLite \`findKeyForAuth\` (the read a miss makes), ${fmt(cold.keys)} keys, a different key each call | ${fmt(cold.ns.findKeyForAuth)} |`);
    out.push(`| SQLite \`findKeyByHash\` (the whole record), ${fmt(cold.keys)} keys, a different key each call | ${fmt(cold.ns.findKeyByHash)} |`);
    out.push(`| \`await ks.authenticate()\`, a cache miss each call (same keys, cache of ${fmt(cold.cache)}) | ${fmt(cold.ns.authenticate)} |`);
  }
  if (limits) {
    out.push('');
    out.push('### Per-key limits');
    out.push('');
    out.push(`Each call awaited; limits high enough never to refuse. Round trips one at a time (the latency a request adds) and ${limits.inFlight} in flight (what each costs a busy server).`);
    out.push('');
    out.push('| call | ns/op |');
    out.push('|---|---:|');
    out.push(`| \`await ks.authenticate()\`, a key without limits (MemoryStore) | ${fmt(limits.ns.unlimited)} |`);
    out.push(`| the same key with a rate limit, counted in memory | ${fmt(limits.ns.rateMemory)} |`);
    if (limits.redis.skipped) out.push(`| the same, counted on Redis | not measured (${limits.redis.skipped}) |`);
    else {
      out.push(`| the same, counted on Redis, one at a time | ${fmt(limits.ns.rateRedis)} |`);
      out.push(`| the same, counted on Redis, ${limits.inFlight} in flight | ${fmt(limits.ns.rateRedisConcurrent)} |`);
    }
    out.push(`| a key without limits on SQLite | ${fmt(limits.ns.sqliteUnlimited)} |`);
    out.push(`| a key with a quota on SQLite (one atomic UPDATE per request) | ${fmt(limits.ns.quotaSqlite)} |`);
  }
  if (signedKeys) {
    out.push('');
    out.push('### Signed keys');
    out.push('');
    out.push(`Tokens of ${signedKeys.tokenLength.EdDSA} (EdDSA) and ${signedKeys.tokenLength.ES256} (ES256) characters. Cold: no verified-token cache, so every call verifies the signature.`);
    out.push('');
    out.push('| call | ns/op |');
    out.push('|---|---:|');
    out.push(`| \`await ks.authenticate()\`, opaque key, warm | ${fmt(signedKeys.ns.warmOpaque)} |`);
    out.push(`| \`await ks.authenticate()\`, signed key, warm | ${fmt(signedKeys.ns.warmSigned)} |`);
    out.push(`| \`await ks.authenticate()\`, EdDSA signed key, cold | ${fmt(signedKeys.ns.coldEdDSA)} |`);
    out.push(`| jose \`jwtVerify\` alone, the same EdDSA token | ${fmt(signedKeys.ns.joseEdDSA)} |`);
    out.push(`| \`await ks.authenticate()\`, ES256 signed key, cold | ${fmt(signedKeys.ns.coldES256)} |`);
    out.push(`| jose \`jwtVerify\` alone, the same ES256 token | ${fmt(signedKeys.ns.joseES256)} |`);
  }
  out.push('');
  return out.join('\n');
}

/** Per store and path: medians of req/s, latency and store calls, and same-round ratios. */
export function summarizeStore(store, result) {
  const rows = [];
  const stores = Object.keys(store.rounds[0] ?? {});
  for (const name of stores) {
    for (const path of ['warm', 'cold']) {
      const runs = store.rounds.map((r) => r[name][path]);
      const rps = runs.map((m) => m.rps);
      rows.push({
        store: name,
        path,
        rps: median(rps),
        min: Math.min(...rps),
        max: Math.max(...rps),
        p50: median(runs.map((m) => m.p50)),
        p99: median(runs.map((m) => m.p99)),
        cpu: runs.every((m) => m.cpuUs != null) ? spread(runs.map((m) => m.cpuUs)) : null,
        // Everything else the machine did per request: for PostgreSQL, mostly the database.
        otherUs: runs.every((m) => m.otherTicks != null) ? median(runs.map((m) => (m.otherTicks * 1e6) / (result.cpu?.clockTicks ?? 100) / m.total)) : null,
        storeCalls: median(runs.map((m) => m.storeCalls)),
        total: median(runs.map((m) => m.total)),
        bad: runs.reduce((sum, m) => sum + m.non2xx + m.errors, 0),
        toWarm: median(store.rounds.map((r) => r[name][path].rps / r[name].warm.rps)),
        toSqlite: median(store.rounds.map((r) => r[name][path].rps / r.sqlite[path].rps)),
      });
    }
  }
  return rows;
}

function renderStore(result) {
  const { store, plan } = result;
  const out = ['', '## Store: SQLite vs PostgreSQL', ''];
  const pgNote = store.postgres.skipped
    ? `PostgreSQL was **not measured**: ${store.postgres.skipped}.`
    : `PostgreSQL ${store.postgres.version} on the same machine (${store.postgres.url}, a scratch schema created, migrated and dropped by the run; ${fmt(store.postgres.keys)} keys copied in ${fmt(store.postgres.insertMs / 1000, 1)} s), the store's defaults (a pool of 10, LISTEN on).`;
  out.push(
    `The keyscope server on ${store.framework}, once per store, in ${plan.rounds} interleaved round(s) of ${plan.duration} s after ${plan.warmup} s warm-up. ` +
      `*Warm*: one valid key (a cache hit). *Cold*: a different valid key per request, cycling through ${fmt(store.coldKeys)} keys, more than the cache of ${fmt(store.cacheMax)}, so nearly every request reads the store. ` +
      `${store.rounds[0]?.['sqlite-no-usage'] ? '*SQLite, usage off* is the same SQLite server with `usage: false`: beside the default, it shows what recording usage (a row per key and UTC day, written once a second) costs each path. ' : ''}` +
      `${store.postgres.skipped ? '' : 'Both stores hold the same keys. '}${pgNote} Ratios are taken within a round, then the median. Store calls are the key reads a cache miss makes (\`findKeyForAuth\`, on both stores) during the measured ${plan.duration} s; they can exceed the completed requests by the ${plan.connections} still in flight when the clock stops. ` +
      `Server CPU µs/req is the keyscope server process's alone; *other CPU µs/req* is what every other process on the machine (the load generator aside) used per request meanwhile: on PostgreSQL mostly the database, plus whatever else was running.`,
  );
  out.push('');
  out.push('| store | path | server CPU µs/req | range | other CPU µs/req | req/s (median) | spread | ÷ warm (same store) | ÷ SQLite (same path) | p50 ms | p99 ms | store calls / requests |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const names = { sqlite: 'SQLite', 'sqlite-no-usage': 'SQLite, usage off', postgres: 'PostgreSQL' };
  for (const r of summarizeStore(store, result)) {
    const bad = r.bad ? ` (**${fmt(r.bad)} non-2xx/errors**)` : '';
    const cpu = r.cpu ? [fmt(r.cpu.median, 1), `${fmt(r.cpu.min, 1)}–${fmt(r.cpu.max, 1)}`, r.otherUs == null ? dash : fmt(r.otherUs, 1)] : [dash, dash, dash];
    out.push(`| ${names[r.store] ?? r.store} | ${r.path} | ${cpu.join(' | ')} | ${fmt(r.rps)}${bad} | ${fmt(r.min)}–${fmt(r.max)} | ${fmt(r.toWarm, 2)} | ${fmt(r.toSqlite, 2)} | ${r.p50} | ${r.p99} | ${fmt(r.storeCalls)} / ${fmt(r.total)} |`);
  }
  if (store.postgres.skipped) out.push(`| PostgreSQL | warm, cold | not measured | | | | | | | | | |`);
  return out;
}

/**
 * A horizontal bar chart: the server CPU each non-bare server adds per request over the bare
 * framework (median of rounds, whiskers from the lowest to the highest round). Without CPU
 * readings (no /proc), req/s as a fraction of bare instead.
 */
export function renderSvg(result) {
  const rows = summarize(result).filter((r) => r.variant !== 'bare');
  const cpu = rows.every((r) => r.addedToBare);
  const bars = rows.map((r) =>
    cpu ? { r, value: r.addedToBare.median, low: r.addedToBare.min, high: r.addedToBare.max, text: signed(r.addedToBare.median) } : { r, value: r.toBare, text: r.toBare.toFixed(2) },
  );
  const title = cpu
    ? 'Server CPU added per request over the bare framework, µs (median of rounds; whiskers: lowest to highest round)'
    : 'Throughput as a fraction of the bare framework (same round, median)';
  const colors = { noop: '#d1d5db', hand: '#9ca3af', 'hand-async': '#6b7280', keyscope: '#2563eb', peer: '#f59e0b' };
  const barH = 18;
  const gap = 6;
  const left = 330;
  const width = 860;
  const lo = cpu ? Math.min(0, ...bars.map((b) => b.low)) : 0;
  const hi = cpu ? Math.max(1, ...bars.map((b) => b.high)) : 1;
  const scale = (width - left - 70) / (hi - lo);
  const x = (v) => left + (v - lo) * scale;
  const height = 40 + bars.length * (barH + gap) + 30;
  const esc = (t) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="600">${esc(title)}</text>`,
  ];
  const axisY = 36 + bars.length * (barH + gap) + 4;
  // About five round ticks across the range (µs), or the old fractions for req/s.
  const step = cpu ? [0.5, 1, 2, 5, 10, 20, 50, 100].find((s) => (hi - lo) / s <= 6) ?? 200 : 0;
  const ticks = cpu ? Array.from({ length: Math.floor(hi / step) - Math.ceil(lo / step) + 1 }, (_, i) => (Math.ceil(lo / step) + i) * step) : [0, 0.25, 0.5, 0.75, 0.9, 1];
  for (const tick of ticks) {
    const marked = cpu ? tick === 0 : tick === 0.9;
    parts.push(`<line x1="${x(tick).toFixed(1)}" y1="32" x2="${x(tick).toFixed(1)}" y2="${axisY}" stroke="${marked ? '#374151' : '#e5e7eb'}"${!cpu && marked ? ' stroke-dasharray="4 3"' : ''}/>`);
    parts.push(`<text x="${x(tick).toFixed(1)}" y="${axisY + 14}" text-anchor="middle" fill="#6b7280">${tick}</text>`);
  }
  bars.forEach(({ r, value, low, high, text }, i) => {
    const y = 36 + i * (barH + gap);
    const from = Math.min(x(0), x(value));
    const w = Math.max(1, Math.abs(x(value) - x(0)));
    parts.push(`<text x="${left - 8}" y="${y + 13}" text-anchor="end">${esc(`${r.framework} · ${label(result, r.framework, r.variant)}`)}</text>`);
    parts.push(`<rect x="${from.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${colors[r.variant]}"/>`);
    if (low !== undefined) parts.push(`<line x1="${x(low).toFixed(1)}" y1="${y + barH / 2}" x2="${x(high).toFixed(1)}" y2="${y + barH / 2}" stroke="#111827"/>`);
    parts.push(`<text x="${(Math.max(x(value), high === undefined ? 0 : x(high), x(0)) + 4).toFixed(1)}" y="${y + 13}">${text}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
