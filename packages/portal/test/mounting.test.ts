// The mounting lines of the README, run for real: Express, Koa and Fastify through
// @hono/node-server's getRequestListener (Node request ↔ Fetch Request), Hono natively.
import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { createKeyscope, MemoryStore } from '@keyscope/core';
import { createPortal } from '@keyscope/portal';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';

const store = new MemoryStore();
store.addProject({ id: 'proj_a', ownerId: 'alice', name: 'Alpha' });
const ks = createKeyscope({ store, usage: false });
// A stand-in for the app's session: the owner id in a header.
const portal = createPortal({ keyscope: ks, owner: (request) => request.headers.get('x-user'), secret: 'm'.repeat(32) });

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function listen(listener: RequestListener): Promise<string> {
  const server: Server = createServer(listener).listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Reads the page, posts the create form as a browser would, and reads the key shown once. */
async function roundTrip(origin: string) {
  const page = await fetch(`${origin}/portal`, { headers: { 'x-user': 'alice' } });
  expect(page.status).toBe(200);
  expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  const token = /name="_token" value="([^"]+)"/.exec(await page.text())![1]!;
  const created = await fetch(`${origin}/portal/keys`, {
    method: 'POST',
    headers: { 'x-user': 'alice', 'content-type': 'application/x-www-form-urlencoded', origin, 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ _token: token, name: 'mounted', level: 'project', projectId: 'proj_a', expiry: 'never' }),
    redirect: 'manual',
  });
  expect(created.status).toBe(200);
  expect(await created.text()).toMatch(/id="new-key" readonly value="ks_/);
  const api = await fetch(`${origin}/portal/api/keys`, {
    method: 'POST',
    headers: { 'x-user': 'alice', 'content-type': 'application/json', origin },
    body: JSON.stringify({ name: 'json', level: 'user' }),
  });
  expect(api.status).toBe(201);
  const css = await fetch(`${origin}/portal/assets/portal.css`);
  expect(css.headers.get('content-type')).toMatch(/text\/css/);
  expect((await fetch(`${origin}/elsewhere`)).status).toBe(404);
}

describe('mounting', () => {
  it('Express', async () => {
    const app = express();
    app.all('/portal{/*rest}', getRequestListener(portal));
    app.get('/elsewhere', (_req, res) => void res.status(404).end());
    await roundTrip(await listen(app));
  });

  it('Koa', async () => {
    const app = new Koa();
    const listener = getRequestListener(portal);
    app.use((ctx, next) => (/^\/portal(?:\/|$)/.test(ctx.path) ? ((ctx.respond = false), listener(ctx.req, ctx.res)) : next()));
    await roundTrip(await listen(app.callback()));
  });

  it('Fastify', async () => {
    const app = Fastify();
    const listener = getRequestListener(portal);
    app.addHook('onRequest', async (req, reply) => {
      if (/^\/portal(?:[/?]|$)/.test(req.url)) {
        reply.hijack();
        await listener(req.raw, reply.raw);
      }
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    await roundTrip(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
  });

  it('Hono, natively', async () => {
    const app = new Hono();
    app.all('/portal/*', (c) => portal(c.req.raw));
    const page = await app.request('/portal', { headers: { 'x-user': 'alice' } });
    expect(page.status).toBe(200);
    const help = await app.request('/portal/help', { headers: { 'x-user': 'alice' } });
    expect(await help.text()).toContain('X-Project-ID');
    const api = await app.request('/portal/api/keys', { method: 'POST', headers: { 'x-user': 'alice', 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' }, body: JSON.stringify({ name: 'hono', level: 'user' }) });
    expect(api.status).toBe(201);
    const cross = await app.request('/portal/api/keys', { method: 'POST', headers: { 'x-user': 'alice', 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' }, body: '{}' });
    expect(cross.status).toBe(403);
  });
});
