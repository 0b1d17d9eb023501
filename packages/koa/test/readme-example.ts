import Koa from 'koa';
import Router from '@koa/router';
import { createKeyscope, MemoryStore } from '@keyscope/core';
import { protectedRoutes } from '@keyscope/koa';

const store = new MemoryStore(); // in production: @keyscope/sqlite, or your own KeyStore
store.addProject({ id: 'proj_a', ownerId: 'user_1', name: 'Alpha' });
export const ks = createKeyscope({ store });

const open = new Router();
open.get('/health', (ctx) => { ctx.body = { ok: true }; }); // public: no keyscope on this router

const api = new Router({ prefix: '/api/v1' }); // every route: a key; /validate and /projects need no X-Project-ID
api.get('/validate', (ctx) => { ctx.body = { valid: true, auth: ctx.state.auth }; });
api.get('/sites', (ctx) => { ctx.body = { projectId: ctx.state.auth!.projectId }; }); // never null here

export const app = new Koa().use(open.routes()).use(protectedRoutes(ks, api)); // in place of api.routes()
export const server = app.listen(Number(process.env.PORT ?? 3000));
