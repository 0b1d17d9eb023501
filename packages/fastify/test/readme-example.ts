import Fastify from 'fastify';
import { createKeyscope, MemoryStore } from '@keyscope/core';
import keyscope from '@keyscope/fastify';

const store = new MemoryStore(); // in production: @keyscope/sqlite, or your own KeyStore
store.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
export const ks = createKeyscope({ store });

export const app = Fastify();
await app.register(async (api) => {
  await api.register(keyscope, { keyscope: ks }); // routes match relative to the /api/v1 prefix
  api.get('/health', { config: { keyscope: false } }, async () => ({ ok: true })); // public
  api.get('/validate', async (request) => ({ valid: true, auth: request.auth })); // no X-Project-ID needed
  api.get('/sites', async (request) => ({ projectId: request.auth!.projectId })); // never null here
}, { prefix: '/api/v1' });

await app.listen({ port: Number(process.env.PORT ?? 3000) });
