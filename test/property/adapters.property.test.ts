/**
 * Generated requests, over real HTTP (raw sockets, bytes exactly as generated), against the
 * conformance API built with every adapter in both error modes. Whatever the headers and the
 * request target:
 *  1. a protected handler runs only with one valid, unrevoked, unexpired key, and sees its owner;
 *  2. a project-scoped handler never sees `projectId: null`, and the project it sees is the key
 *     owner's (the key's own, for a project-level key);
 *  3. nothing answers 500, hangs or throws;
 *  4. every refusal is the core's (401/403/503, with the code the request earns, and in respond
 *     mode exactly the core's body and headers), or a framework's 400/404 where no handler ran.
 * Reproduce a failure with the seed it prints: KEYSCOPE_PROPERTY_SEED=<seed>.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey, type AuthError, type KeyscopeErrorCode } from '@keyscope/core';
import { ADAPTERS, HANDLED_BY, PROJECT_SCOPED, type Mode, type RunningApp } from '../conformance/apps.js';
import { createFixture, OWNER, type Fixture, type KeyName } from '../conformance/fixture.js';
import { NoAnswer, rawRequest, type RawAnswer } from './raw-http.js';
import { keyState, projectOutcome, render, request, type GenRequest, type KeyBook, type Rendered } from './requests.js';

const SEED = Number(process.env.KEYSCOPE_PROPERTY_SEED ?? 20_250_611);
const RUNS = Number(process.env.KEYSCOPE_PROPERTY_RUNS ?? 300);
const MODES: readonly Mode[] = ['respond', 'delegate'];
/** Handlers a user key may reach without naming a project. */
const PROJECT_OPTIONAL = new Set(['validate', 'projects', 'v1:validate', 'v1:projects']);
const PUBLIC = new Set(['health']);

const fixture: Fixture = await createFixture();
const book: KeyBook = await keyBook(fixture);
const refusals = await referenceRefusals(fixture);

async function keyBook(f: Fixture): Promise<KeyBook> {
  const valid: KeyBook['valid'] = {};
  for (const name of ['user', 'project', 'otherUser'] as const) {
    const record = await f.store.findKeyByHash(hashKey(f.keys[name]));
    if (!record) throw new Error(`fixture key ${name} is not in the store`);
    valid[name] = { keyId: record.id, keyName: record.name, ownerId: record.ownerId, level: record.level, projectId: record.projectId };
  }
  return { keys: f.keys, valid, owned: { [OWNER]: ['proj_a', 'proj_b'], usr_2: ['proj_c'] } };
}

/** The core's own refusal for each code, asked of a fresh authenticator. */
async function referenceRefusals(f: Fixture): Promise<Map<KeyscopeErrorCode, AuthError>> {
  const ks = f.keyscope();
  const out = new Map<KeyscopeErrorCode, AuthError>();
  const inputs = [
    { headers: {} },
    { headers: { 'x-api-key': 'nope' } },
    { headers: { 'x-api-key': f.keys.user }, path: '/sites' },
    { headers: { 'x-api-key': f.keys.user, 'x-project-id': 'proj_c' }, path: '/sites' },
    { headers: { 'x-api-key': f.keys.storeDown }, path: '/sites' },
  ];
  for (const input of inputs) {
    const result = await ks.authenticate(input);
    if (result.ok) throw new Error('reference refusal came back ok');
    out.set(result.error.code, result.error);
  }
  await ks.close();
  return out;
}

/** The codes a refusal of this request may carry; empty when the core must not refuse it. */
function allowedCodes(r: Rendered): Set<KeyscopeErrorCode> {
  const state = keyState(r, book);
  if (state.s === 'missing') return new Set(['missing_api_key']);
  if (state.s === 'invalid') return new Set(['invalid_api_key']);
  if (state.s === 'down') return new Set(['auth_unavailable']);
  const key = book.valid[state.name]!;
  const outcome = projectOutcome(r, key, book);
  if (!outcome.ok) return new Set([outcome.code]);
  // A user key naming no project is refused wherever the route is not project-optional.
  return outcome.projectId === null && key.level === 'user' ? new Set(['project_required']) : new Set();
}

function header(answer: RawAnswer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value.join('\n') : value;
}

function check(req: GenRequest, r: Rendered, answer: RawAnswer, mode: Mode): void {
  const where = `${req.method} ${JSON.stringify(r.target)} → ${answer.status} ${answer.text.slice(0, 300)}`;
  // No key material in any answer, whatever it is.
  const everything = answer.text + JSON.stringify(answer.headers);
  for (const [name, key] of Object.entries(book.keys)) expect(everything.includes(key), `${where}: the ${name} key is in the answer`).toBe(false);

  let body: { route?: unknown; auth?: Record<string, unknown> | null; code?: unknown } | undefined;
  try {
    body = JSON.parse(answer.text);
  } catch {
    body = undefined;
  }
  const route = typeof body?.route === 'string' ? body.route : undefined;

  // (3) no 500 (or any 5xx but the core's 503), and an answer at all unless HTTP itself was broken.
  expect(answer.status >= 500 && answer.status !== 503, `${where}: server error`).toBe(false);
  if (answer.status === 0) expect(r.malformed || r.oversize, `${where}: connection closed without an answer`).toBe(true);
  if (answer.status === 431) expect(r.oversize, `${where}: 431 for a small request`).toBe(true);

  // (1) and (2): a handler that ran.
  if (route !== undefined) {
    expect(answer.status, `${where}: a handler answered`).toBe(200);
    if (!PUBLIC.has(route)) {
      const state = keyState(r, book);
      expect(state.s, `${where}: handler ${route} ran without a valid key`).toBe('valid');
      if (state.s !== 'valid') return;
      const key = book.valid[state.name]!;
      const auth = body?.auth;
      expect(auth, `${where}: handler ${route} ran without auth`).toBeTruthy();
      expect(auth).toMatchObject({ keyId: key.keyId, keyName: key.keyName, ownerId: key.ownerId, level: key.level });
      if (PROJECT_SCOPED.has(route)) expect(auth?.projectId ?? null, `${where}: project-scoped handler ${route} ran without a project`).not.toBeNull();
      const outcome = projectOutcome(r, key, book);
      expect(outcome, `${where}: the core must have refused this project header`).toMatchObject({ ok: true });
      if (outcome.ok) {
        if (outcome.projectId === null) {
          expect(PROJECT_OPTIONAL.has(route), `${where}: user key without a project reached ${route}`).toBe(true);
          expect(auth?.projectId).toBeNull();
        } else {
          expect(auth?.projectId).toBe(outcome.projectId);
          expect(book.owned[key.ownerId]).toContain(auth?.projectId);
        }
      }
    }
    return;
  }

  // (4) refusals, and framework answers where no handler ran.
  if (answer.status === 200 || answer.status === 204) {
    // Only a framework's automatic OPTIONS answer may succeed without a handler.
    expect(req.method, `${where}: success without a handler`).toBe('OPTIONS');
    return;
  }
  if ([0, 400, 404, 431].includes(answer.status)) return;
  expect([401, 403, 503], `${where}: unexpected status`).toContain(answer.status);

  const code = body?.code as KeyscopeErrorCode | undefined;
  const allowed = allowedCodes(r);
  expect(allowed.has(code!), `${where}: refused with ${String(code)}, expected one of [${[...allowed].join(', ')}]`).toBe(true);
  const reference = refusals.get(code!)!;
  expect(answer.status).toBe(reference.status);
  expect(header(answer, 'cache-control'), where).toBe('no-store');
  expect(header(answer, 'www-authenticate'), where).toBe(reference.headers['WWW-Authenticate']);
  expect(header(answer, 'retry-after'), where).toBe(reference.headers['Retry-After']);
  if (mode === 'respond') {
    expect(header(answer, 'content-type'), where).toBe('application/problem+json');
    expect(answer.text, where).toBe(JSON.stringify(reference.body));
  } else {
    expect(header(answer, 'content-type'), where).toMatch(/^application\/problem\+json\b/);
    expect(body, where).toEqual({ ...reference.body, handledBy: HANDLED_BY });
  }
}

const combos = ADAPTERS.flatMap((adapter) => MODES.map((mode) => ({ adapter, mode, title: `${adapter.name} (onError: ${mode === 'respond' ? 'respond' : adapter.delegate})` })));

describe.each(combos)('$title: generated requests', ({ adapter, mode }) => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await adapter.start(fixture.keyscope(), mode);
  });
  afterAll(() => app?.close());

  it(`keeps properties 1-4 over ${RUNS} requests (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(request, async (req) => {
        const r = render(req, book, app.port);
        let answer: RawAnswer;
        try {
          answer = await rawRequest(app.port, r.head);
        } catch (error) {
          if (error instanceof NoAnswer) throw new Error(`${req.method} ${JSON.stringify(r.target)}: ${error.message}`);
          throw error;
        }
        check(req, r, answer, mode);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: false, interruptAfterTimeLimit: 25_000, markInterruptAsFailure: false },
    );
  }, 60_000);
});
