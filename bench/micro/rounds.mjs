// Shared by the micro benchmarks: run every case once per round, interleaved, so that a noisy
// moment hits all of them alike; round 0 only warms the JIT. Each round starts one case later,
// so that none always pays for what the one before it left behind (garbage to collect).
// Resolves to each case's median ns.
export async function interleaved(cases, rounds) {
  const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  const entries = Object.entries(cases);
  for (let round = 0; round < rounds + 1; round++) {
    for (let i = 0; i < entries.length; i++) {
      const [name, run] = entries[(i + round) % entries.length];
      const ns = await run();
      if (round > 0) samples[name].push(ns);
    }
  }
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}
