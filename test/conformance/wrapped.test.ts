/**
 * A Keyscope wrapped to add a rule of its own (`{ ...ks, authenticate: withMyRule }`) decides every
 * request through every adapter: adapters take the same-turn `check` only while `authenticate` is
 * the one it decides for, so the wrapper is never skipped, for a cached key either.
 */
import { createKeyscope, MemoryStore, type AuthInput, type AuthResult, type Keyscope } from '@keyscope/core';
import { authenticateRequest } from '@keyscope/fetch';
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
