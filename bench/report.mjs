// Turns bench/results/latest.json into the Markdown table and the SVG chart the README shows.
// Every ratio is computed within one round (same machine state), then the median is taken.

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const verdict = (ok) => (ok ? 'met' : '**missed**');

/** Per framework and variant: median req/s, spread, latency and same-round ratios. */
export function summarize(result) {
  const rows = [];
  for (const [framework, { rounds }] of Object.entries(result.http)) {
    for (const variant of Object.keys(rounds[0])) {
      const rps = rounds.map((r) => r[variant].rps);
      rows.push({
        framework,
        variant,
        rps: median(rps),
        min: Math.min(...rps),
        max: Math.max(...rps),
        p50: median(rounds.map((r) => r[variant].p50)),
        p99: median(rounds.map((r) => r[variant].p99)),
        toBare: median(rounds.map((r) => r[variant].rps / r.bare.rps)),
        toHand: median(rounds.map((r) => r[variant].rps / r.hand.rps)),
      });
    }
  }
  return rows;
}

const LABELS = { bare: 'bare', noop: 'no-op middleware', hand: 'hand-written check', 'hand-async': 'hand-written check', keyscope: 'keyscope' };
const label = (result, framework, variant) => {
  if (variant === 'peer') return result.peers[framework];
  // Fastify: say which hook style each reference uses.
  if (framework === 'fastify' && variant === 'noop') return 'no-op onRequest hook (done)';
  if (framework === 'fastify' && variant === 'hand') return 'hand-written check, sync hook (done)';
  if (variant === 'hand-async') return 'hand-written check, async hook';
  return LABELS[variant] ?? variant;
};

export function renderMarkdown(result) {
  const rows = summarize(result);
  const out = [];
  out.push(`# keyscope benchmark — ${result.date.slice(0, 10)}${result.quick ? ' (quick run: indicative only)' : ''}`);
  out.push('');
  out.push(`Node ${result.machine.node}, ${result.machine.cpus} CPUs; ${result.plan.rounds} interleaved round(s) of ${result.plan.duration} s after ${result.plan.warmup} s warm-up, ${result.plan.connections} connections, pipelining 1, loopback. Every server gets the same valid key, the 500th of the 1,000 the hand-written check and the peers hold. Ratios are taken within a round, then the median.`);
  out.push('');
  out.push('| framework | server | req/s (median) | spread | p50 ms | p99 ms | ÷ bare | ÷ hand-written |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    out.push(`| ${r.framework} | ${label(result, r.framework, r.variant)} | ${fmt(r.rps)} | ${fmt(r.min)}–${fmt(r.max)} | ${r.p50} | ${r.p99} | ${fmt(r.toBare, 2)} | ${fmt(r.toHand, 2)} |`);
  }
  out.push('');
  out.push('## Targets');
  out.push('');
  out.push('| target | measured | |');
  out.push('|---|---:|---|');
  for (const r of rows.filter((x) => x.variant === 'keyscope')) {
    out.push(`| ${r.framework}: keyscope ÷ hand-written ≥ 0.97 | ${fmt(r.toHand, 2)} | ${verdict(r.toHand >= 0.97)} |`);
    out.push(`| ${r.framework}: keyscope ÷ bare ≥ 0.90 | ${fmt(r.toBare, 2)} | ${verdict(r.toBare >= 0.9)} |`);
  }
  const { micro } = result;
  out.push(`| authenticate() cache hit ≤ 1.5 × hand-written ns/op, both awaited as a middleware does | ${fmt(micro.ratio.awaitedToAwaited, 2)} × (${fmt(micro.ns.authenticateAwaited)} ns vs ${fmt(micro.ns.handAwaited)} ns) | ${verdict(micro.ratio.awaitedToAwaited <= 1.5)} |`);
  out.push(`| the same, the bare call against the synchronous check | ${fmt(micro.ratio.authenticateToHand, 2)} × (${fmt(micro.ns.authenticate)} ns vs ${fmt(micro.ns.hand)} ns) | ${verdict(micro.ratio.authenticateToHand <= 1.5)} |`);
  out.push(`| ${fmt(micro.memory.keys)} cached keys ≤ 64 MB RSS | +${fmt(micro.memory.rssMB, 1)} MB RSS (+${fmt(micro.memory.heapMB, 1)} MB heap) | ${verdict(micro.memory.rssMB <= 64)} |`);
  for (const [framework, { scenarios }] of Object.entries(result.http)) {
    if (!scenarios) continue;
    const flood = scenarios.badChecksum.rps / scenarios.valid.rps;
    out.push(`| ${framework}: bad-checksum flood, 0 store calls and ≥ 0.95 of valid-key req/s | ${scenarios.badChecksum.storeCalls} calls, ${fmt(flood, 2)} | ${verdict(scenarios.badChecksum.storeCalls === 0 && flood >= 0.95)} |`);
    out.push(`| ${framework}: 200 concurrent first requests for one key, 1 store call | ${scenarios.concurrentFirst.storeCalls} call(s), ${scenarios.concurrentFirst.ok}/200 ok | ${verdict(scenarios.concurrentFirst.storeCalls === 1 && scenarios.concurrentFirst.ok === 200)} |`);
  }
  out.push('');
  out.push('## Scenarios beyond the warm path (keyscope server)');
  out.push('');
  out.push('| framework | scenario | req/s | ÷ valid key | p99 ms | store calls |');
  out.push('|---|---|---:|---:|---:|---:|');
  const names = { valid: 'valid key, cache warm', badChecksum: 'flood of bad-checksum keys', unknown: 'flood of 1,000 unknown well-formed keys', cold: `a different valid key per request (${fmt(result.plan.coldKeys - 1001)} keys in SQLite, cache of ${fmt(result.plan.cacheMax)})` };
  for (const [framework, { scenarios }] of Object.entries(result.http)) {
    if (!scenarios) continue;
    for (const [key, name] of Object.entries(names)) {
      const s = scenarios[key];
      out.push(`| ${framework} | ${name} | ${fmt(s.rps)} | ${fmt(s.rps / scenarios.valid.rps, 2)} | ${s.p99} | ${fmt(s.storeCalls)} |`);
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
  out.push('');
  return out.join('\n');
}

/** Per store and path: medians of req/s, latency and store calls, and same-round ratios. */
export function summarizeStore(store) {
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
      `${store.postgres.skipped ? '' : 'Both stores hold the same keys. '}${pgNote} Ratios are taken within a round, then the median. Store calls are \`findKeyByHash\` calls during the measured ${plan.duration} s; they can exceed the completed requests by the ${plan.connections} still in flight when the clock stops.`,
  );
  out.push('');
  out.push('| store | path | req/s (median) | spread | ÷ warm (same store) | ÷ SQLite (same path) | p50 ms | p99 ms | store calls / requests |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  const names = { sqlite: 'SQLite', postgres: 'PostgreSQL' };
  for (const r of summarizeStore(store)) {
    const bad = r.bad ? ` (**${fmt(r.bad)} non-2xx/errors**)` : '';
    out.push(`| ${names[r.store] ?? r.store} | ${r.path} | ${fmt(r.rps)}${bad} | ${fmt(r.min)}–${fmt(r.max)} | ${fmt(r.toWarm, 2)} | ${fmt(r.toSqlite, 2)} | ${r.p50} | ${r.p99} | ${fmt(r.storeCalls)} / ${fmt(r.total)} |`);
  }
  if (store.postgres.skipped) out.push(`| PostgreSQL | warm, cold | not measured | | | | | | |`);
  return out;
}

/** A horizontal bar chart of every server's req/s as a fraction of the bare framework. */
export function renderSvg(result) {
  const rows = summarize(result).filter((r) => r.variant !== 'bare');
  const colors = { noop: '#d1d5db', hand: '#9ca3af', 'hand-async': '#6b7280', keyscope: '#2563eb', peer: '#f59e0b' };
  const barH = 18;
  const gap = 6;
  const left = 260;
  const width = 760;
  const scale = (width - left - 60) / 1.0;
  const height = 40 + rows.length * (barH + gap) + 30;
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="600">Throughput as a fraction of the bare framework (same round, median)</text>`,
  ];
  const axisY = 36 + rows.length * (barH + gap) + 4;
  for (const tick of [0, 0.25, 0.5, 0.75, 0.9, 1]) {
    const x = left + tick * scale;
    parts.push(`<line x1="${x}" y1="32" x2="${x}" y2="${axisY}" stroke="${tick === 0.9 ? '#dc2626' : '#e5e7eb'}" stroke-dasharray="${tick === 0.9 ? '4 3' : ''}"/>`);
    parts.push(`<text x="${x}" y="${axisY + 14}" text-anchor="middle" fill="#6b7280">${tick}</text>`);
  }
  rows.forEach((r, i) => {
    const y = 36 + i * (barH + gap);
    const w = Math.max(1, Math.min(1.1, r.toBare) * scale);
    parts.push(`<text x="${left - 8}" y="${y + 13}" text-anchor="end">${esc(`${r.framework} · ${label(result, r.framework, r.variant)}`)}</text>`);
    parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${colors[r.variant]}"/>`);
    parts.push(`<text x="${(left + w + 4).toFixed(1)}" y="${y + 13}">${r.toBare.toFixed(2)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
