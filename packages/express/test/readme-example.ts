import express from 'express';
import { createKeyscope, MemoryStore } from '@keyscope/core';
import { keyscope } from '@keyscope/express';
import '@keyscope/express/augment'; // types req.auth (leave it out beside another req.auth: see authOf)

const store = new MemoryStore(); // in production: @keyscope/sqlite, or your own KeyStore
store.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
export const ks = createKeyscope({ store });

export const app = express();
app.get('/health', (_req, res) => { res.json({ ok: true }); }); // public: declared before the middleware

const api = express.Router();
api.use(keyscope(ks)); // below: a key is required; /validate and /projects need no X-Project-ID
api.get('/validate', (req, res) => { res.json({ valid: true, auth: req.auth }); });
api.get('/sites', (req, res) => { res.json({ projectId: req.auth!.projectId }); }); // never null here
app.use('/api/v1', api);

export const server = app.listen(Number(process.env.PORT ?? 3000));
