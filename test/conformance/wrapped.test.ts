/**
 * A Keyscope wrapped to add a rule of its own (`{ ...ks, authenticate: withMyRule }`) decides every
 * request through every adapter: adapters take the same-turn `check` only while `authenticate` is
 * the one it decides for, so the wrapper is never skipped, for a cached key either.
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runInNewContext } from 'node:vm';
import { createKeyscope, MemoryStore, type AuthInput, type AuthResult, type Keyscope } from '@keyscope/core';
import { keyscope as expressKeyscope } from '@keyscope/express';
import { keyscope as fastifyKeyscope } from '@keyscope/fastify';
import { authenticateRequest } from '@keyscope/fetch';
import { keyscope as koaKeyscope } from '@keyscope/koa';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type RunningApp } from './apps.js';
import { send } from './http.js';

const store = new MemoryStore();
store.addProject({ id: 'proj_a', ownerId: 'usr_1', name: 'Alpha' });
const ks = createKeyscope({ store, usage: false });
const allowed = (await ks.keys.create({ ownerId: 'usr_1', name: 'allowed', level: 'user' })).key;
const blockedKey = await ks.keys.create({ ownerId: 'usr_1', name: 'blocked during an incident', level: 'user' });
const refusal = (await ks.authenticate({ headers: {} })) as Extract<AuthResult, { ok: false }>;

/** The operator's rule on top of keyscope: one key is blocked; every call is counted. */
let calls = 0;
const guarded: Keyscope = {
  ...ks,
  async authenticate(input: AuthInput) {
    calls++;
    const result = await ks.authenticate(input);
    return result.ok && result.auth.keyId === blockedKey.record.id ? refusal : result;
  },
};

describe.each(ADAPTERS)('$name: a wrapper that replaces authenticate decides every request', (adapter) => {
  let app: RunningApp;
  beforeAll(async () => void (app = await adapter.start(guarded, 'respond')));
  afterAll(() => app.close());

  it('refuses the key its rule blocks, cached or not, and is asked for every request', async () => {
    calls = 0;
    for (let round = 0; round < 2; round++) {
      expect((await send(app.port, 'GET', '/validate', [['X-API-Key', blockedKey.key]])).status).toBe(401);
      expect((await send(app.port, 'GET', '/validate', [['X-API-Key', allowed]])).status).toBe(200);
    }
    expect(calls).toBe(4);
  });
});

it('authenticateRequest (Fetch API): the wrapper decides too', async () => {
  const ask = (key: string) => authenticateRequest(guarded, new Request('http://api.test/validate', { headers: { 'x-api-key': key } }));
  for (let round = 0; round < 2; round++) {
    expect((await ask(blockedKey.key)).ok).toBe(false);
    expect((await ask(allowed)).ok).toBe(true);
  }
});

/** The same rule, put on a copy of ks after an app was built with it. */
function blockLater(target: Keyscope): void {
  const original = target.authenticate;
  target.authenticate = async (input: AuthInput) => {
    const result = await original(input);
    return result.ok && result.auth.keyId === blockedKey.record.id ? refusal : result;
  };
}

describe.each(ADAPTERS)('$name: a rule put on authenticate after the app was built', (adapter) => {
  const target: Keyscope = { ...ks };
  let app: RunningApp;
  beforeAll(async () => void (app = await adapter.start(target, 'respond')));
  afterAll(() => app.close());

  it('decides from the next request on, for a cached key too', async () => {
    expect((await send(app.port, 'GET', '/validate', [['X-API-Key', blockedKey.key]])).status).toBe(200);
    blockLater(target);
    expect((await send(app.port, 'GET', '/validate', [['X-API-Key', blockedKey.key]])).status).toBe(401);
  });
});

/** The rule on the same-turn path instead: `{ ...ks, check }`. */
const onCheck = (result: AuthResult): AuthResult => (result.ok && result.auth.keyId === blockedKey.record.id ? refusal : result);
const guardedCheck: Keyscope = {
  ...ks,
  check(input: AuthInput) {
    const result = ks.check(input);
    return 'then' in result ? result.then(onCheck) : onCheck(result);
  },
};

describe.each(ADAPTERS)('$name: a wrapper that replaces check decides every request', (adapter) => {
  let app: RunningApp;
  beforeAll(async () => void (app = await adapter.start(guardedCheck, 'respond')));
  afterAll(() => app.close());

  it('refuses the key its rule blocks, cached or not', async () => {
    for (let round = 0; round < 2; round++) {
      expect((await send(app.port, 'GET', '/validate', [['X-API-Key', blockedKey.key]])).status).toBe(401);
      expect((await send(app.port, 'GET', '/validate', [['X-API-Key', allowed]])).status).toBe(200);
    }
  });
});

it('authenticateRequest (Fetch API): a rule on check, or put on authenticate later, decides too', async () => {
  const ask = (target: Keyscope) => authenticateRequest(target, new Request('http://api.test/validate', { headers: { 'x-api-key': blockedKey.key } }));
  expect((await ask(guardedCheck)).ok).toBe(false);
  const target: Keyscope = { ...ks };
  expect((await ask(target)).ok).toBe(true);
  blockLater(target);
  expect((await ask(target)).ok).toBe(false);
});

describe.each(ADAPTERS)('$name: a decision that throws a value that is not an Error', (adapter) => {
  // A custom shared throttle that throws undefined: frameworks read a falsy error as "go on".
  const throwing = createKeyscope({
    store,
    usage: false,
    throttle: {
      retryAfter() {
        throw undefined;
      },
      fail: () => ({ state: 'counted', retryAfterSeconds: 0 }),
    },
  });
  let app: RunningApp;
  beforeAll(async () => void (app = await adapter.start(throwing, 'respond')));
  afterAll(() => app.close());

  it('is an error (500), never a pass to the handler', async () => {
    // A well-formed key the store does not know: the throttle is asked before the store.
    const unknown = (await createKeyscope({ store: new MemoryStore(), usage: false }).keys.create({ ownerId: 'x', name: 'elsewhere', level: 'user' })).key;
    const response = await send(app.port, 'GET', '/validate', [['X-API-Key', unknown]]);
    expect(response.text).not.toContain('"route"');
    // Hono's adapter has no client address here, so its throttle is not asked: the key is just unknown.
    expect(response.status).toBe(adapter.name === 'hono' ? 401 : 500);
  });
});

describe('a value a wrapper throws on purpose reaches the framework as it was', () => {
  const throwing = (value: unknown): Keyscope => ({
    ...ks,
    async authenticate() {
      throw value;
    },
  });
  // Each framework's own default error handling, as an app without an error handler has it.
  const statusOf = async (listener: RequestListener) => {
    const server = createServer(listener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      return (await send((server.address() as AddressInfo).port, 'GET', '/validate', [['X-API-Key', allowed]])).status;
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  };

  it('express: an object with status 403 is answered 403 by Express (not turned into a 500)', async () => {
    const app = express();
    app.use(expressKeyscope(throwing({ status: 403, message: 'blocked by policy' })));
    app.get('/validate', (_req, res) => void res.end('handler'));
    expect(await statusOf(app)).toBe(403);
  });

  it('fastify: an object with statusCode 403 is answered 403', async () => {
    const app = Fastify();
    await app.register(fastifyKeyscope, { keyscope: throwing({ statusCode: 403, message: 'blocked by policy' }) });
    app.get('/validate', () => 'handler');
    const response = await app.inject({ method: 'GET', url: '/validate', headers: { 'x-api-key': allowed } });
    await app.close();
    expect(response.statusCode).toBe(403);
  });

  it('koa: an Error from another realm with status 403 is answered 403', async () => {
    const foreign = runInNewContext('Object.assign(new Error("blocked by policy"), { status: 403, expose: true })') as Error;
    const app = new Koa();
    app.silent = true;
    app.use(koaKeyscope(throwing(foreign)));
    app.use((ctx) => void (ctx.body = 'handler'));
    expect(await statusOf(app.callback())).toBe(403);
  });

  it('authenticateRequest: a thrown Response rejects with that Response', async () => {
    const blocked = new Response('blocked by policy', { status: 451 });
    await expect(authenticateRequest(throwing(blocked), new Request('http://api.test/validate'))).rejects.toBe(blocked);
  });
});
