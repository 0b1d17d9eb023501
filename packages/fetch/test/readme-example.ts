import { Hono } from 'hono';
import { createKeyscope, MemoryStore } from '@keyscope/core';
import { authenticateRequest } from '@keyscope/fetch';
import { keyscope } from '@keyscope/fetch/hono';

const store = new MemoryStore(); // in production: @keyscope/sqlite, or your own KeyStore
store.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
export const ks = createKeyscope({ store });

// Hono: a sub-app with the middleware, mounted at /api/v1.
const api = new Hono();
api.use(keyscope(ks)); // below: a key is required; /validate and /projects need no X-Project-ID
api.get('/validate', (c) => c.json({ valid: true, auth: c.get('auth') }));
api.get('/sites', (c) => c.json({ projectId: c.get('auth').projectId })); // never null here

const app = new Hono();
app.get('/health', (c) => c.json({ ok: true })); // public: not under the middleware
app.route('/api/v1', api);
export default app; // Bun, Deno, Workers; on Node: serve(app) from @hono/node-server

// Any other Fetch runtime, e.g. a Next.js route handler:
export async function GET(request: Request): Promise<Response> {
  const result = await authenticateRequest(ks, request, { project: 'optional' });
  if (!result.ok) return result.response;
  return Response.json({ valid: true, auth: result.auth });
}
