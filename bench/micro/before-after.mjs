// The warm path of a key without limits, this checkout's core against an earlier commit's, in
// one process and interleaved rounds: `node micro/before-after.mjs <git-ref> [ROUNDS] [ITERATIONS]`
// (run from bench/, or with `pnpm --filter @keyscope/bench exec`). The earlier core is read with
// `git show` and bundled with esbuild into a temporary directory; nothing in the worktree changes.
// Both run the same case: `await ks.authenticate()` on a cached user key naming an owned
// project, on a MemoryStore, usage on (the default), as micro/auth.mjs measures it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { interleaved } from './rounds.mjs';

const [ref, roundsArg, iterationsArg] = process.argv.slice(2).filter((arg) => arg !== '--json');
if (!ref) throw new Error('usage: node micro/before-after.mjs <git-ref> [ROUNDS] [ITERATIONS]');
const rounds = Number(roundsArg ?? 5);
const N = Number(iterationsArg ?? 300_000);
const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim();
const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: root, encoding: 'utf8' }).trim();

// The earlier core's sources, as they were at `ref`, bundled (lru-cache included; jose is only
// loaded for signed keys, which this case does not use).
const work = mkdtempSync(join(tmpdir(), 'keyscope-before-'));
const files = execFileSync('git', ['ls-tree', '-r', '--name-only', ref, 'packages/core/src'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
for (const file of files) {
  const target = join(work, file);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, execFileSync('git', ['show', `${ref}:${file}`], { cwd: root, maxBuffer: 1 << 26 }));
}
const bundle = (entry, outfile) =>
  build({ entryPoints: [entry], outfile, bundle: true, format: 'esm', platform: 'node', target: 'node20', external: ['jose'], nodePaths: [join(root, 'packages/core/node_modules')], logLevel: 'silent' });
await bundle(join(work, 'packages/core/src/index.ts'), join(work, 'before.mjs'));
// This checkout's core, bundled the same way, so the two differ by their sources alone.
await bundle(join(root, 'packages/core/src/index.ts'), join(work, 'after.mjs'));

async function warm(modulePath) {
  const { createKeyscope, MemoryStore } = await import(pathToFileURL(modulePath).href);
  const store = new MemoryStore();
  store.addProject({ id: 'proj_alpha', ownerId: 'u', name: 'Alpha' });
  const ks = createKeyscope({ store });
  const { key } = await ks.keys.create({ ownerId: 'u', name: 'k', level: 'user' });
  const input = { headers: Object.assign(Object.create(null), { host: '127.0.0.1:3000', 'user-agent': 'bench', accept: '*/*', 'x-api-key': key, 'x-project-id': 'proj_alpha' }), method: 'GET', path: '/sites' };
  if (!(await ks.authenticate(input)).ok) throw new Error(`bench key refused by ${modulePath}`);
  let sink;
  return {
    ks,
    run: async () => {
      const t = performance.now();
      for (let i = 0; i < N; i++) sink = await ks.authenticate(input);
      return ((performance.now() - t) / N) * 1e6;
    },
  };
}
const before = await warm(join(work, 'before.mjs'));
const after = await warm(join(work, 'after.mjs'));
const ns = await interleaved({ before: before.run, after: after.run }, rounds);
await Promise.all([before.ks.close(), after.ks.close()]);
rmSync(work, { recursive: true, force: true });
const result = { ref, commit, rounds, iterations: N, ns, ratio: ns.after / ns.before };
if (process.argv.includes('--json')) console.log(JSON.stringify(result));
else console.log(`await ks.authenticate(), cached key without limits: ${commit} ${ns.before.toFixed(0)} ns, this checkout ${ns.after.toFixed(0)} ns (${result.ratio.toFixed(2)}×, median of ${rounds} interleaved rounds)`);
