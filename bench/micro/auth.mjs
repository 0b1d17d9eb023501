import { createHash } from 'node:crypto';
import * as crypto from 'node:crypto';
import { bench, run, summary } from 'mitata';
import { createKeyscope, MemoryStore } from '@keyscope/core';

const store = new MemoryStore();
store.addProject({ id: 'proj_alpha', ownerId: 'u', name: 'a' });
const ks = createKeyscope({ store, usage: false });
const { key } = await ks.keys.create({ ownerId: 'u', name: 'k', level: 'user' });
const headers = { 'x-api-key': key, 'x-project-id': 'proj_alpha', host: 'x', accept: '*/*' };
const input = { headers, path: '/sites' };
await ks.authenticate(input);
const map = new Map([[crypto.hash('sha256', key, 'hex'), { owner: 'u', projects: new Set(['proj_alpha']) }]]);
function hand(h) {
  const k = h['x-api-key'];
  if (typeof k !== 'string') return null;
  const rec = map.get(crypto.hash('sha256', k, 'hex'));
  if (!rec) return null;
  const p = h['x-project-id'];
  return rec.projects.has(p) ? { owner: rec.owner, projectId: p } : null;
}
summary(() => {
  bench('hand-written', () => hand(headers));
  bench('keyscope authenticate (await)', async () => await ks.authenticate(input));
});
await run();
