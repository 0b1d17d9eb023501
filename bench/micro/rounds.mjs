// Shared by the micro benchmarks: run every case once per round, interleaved, so that a noisy
// moment hits all of them alike; round 0 only warms the JIT. Resolves to each case's median ns.
export async function interleaved(cases, rounds) {
  const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  for (let round = 0; round < rounds + 1; round++) {
    for (const [name, run] of Object.entries(cases)) {
      const ns = await run();
      if (round > 0) samples[name].push(ns);
    }
  }
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}
