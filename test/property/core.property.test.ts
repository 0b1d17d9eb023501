/**
 * `ks.authenticate` with generated header sources (Node's parsed headers, plain objects in any
 * casing, accessor properties, Fetch `Headers`, `get()` objects, getter functions returning
 * strings, arrays or null) and generated paths and route rules. Its answer must be exactly the
 * one the contract gives: the header source read as documented in core's `HeaderSource`, the key
 * checked, the project table of DESIGN.md applied, every refusal the core's own object.
 * Reproduce a failure with the seed it prints: KEYSCOPE_PROPERTY_SEED=<seed>.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashKey, type AuthError, type AuthInput, type AuthResult, type HeaderSource, type KeyscopeErrorCode } from '@keyscope/core';
import { createFixture, OWNER, type KeyName } from '../conformance/fixture.js';
import { KEY_VARIANTS, PROJECT_TEXTS, renderValue, type KeyBook, type KeyVariant, type Value } from './requests.js';

const SEED = Number(process.env.KEYSCOPE_PROPERTY_SEED ?? 20_250_611);
const RUNS = Number(process.env.KEYSCOPE_PROPERTY_CORE_RUNS ?? 2_000);
const OPTIONAL_PATHS = new Set(['/validate', '/projects']);

const fixture = await createFixture();
const ks = fixture.keyscope();
const book: KeyBook = {
  keys: fixture.keys,
  valid: {},
  owned: { [OWNER]: ['proj_a', 'proj_b'], usr_2: ['proj_c'] },
};
for (const name of ['user', 'project', 'otherUser'] as const) {
  const record = (await fixture.store.findKeyByHash(hashKey(fixture.keys[name])))!;
  book.valid[name] = { keyId: record.id, keyName: record.name, ownerId: record.ownerId, level: record.level, projectId: record.projectId };
}

const refusals = new Map<KeyscopeErrorCode, AuthError>();
for (const input of [
  { headers: {} },
  { headers: { 'x-api-key': 'nope' } },
  { headers: { 'x-api-key': fixture.keys.user }, path: '/sites' },
  { headers: { 'x-api-key': fixture.keys.user, 'x-project-id': 'proj_c' } },
  { headers: { 'x-api-key': fixture.keys.storeDown } },
]) {
  const result = await fixture.keyscope().authenticate(input);
  if (!result.ok) refusals.set(result.error.code, result.error);
}

// --- generated header sources ---------------------------------------------------------------

type Shape = 'node' | 'nodeDistinct' | 'plain' | 'accessor' | 'headers' | 'getMethod' | 'getter';
const SHAPES: readonly Shape[] = ['node', 'nodeDistinct', 'plain', 'accessor', 'headers', 'getMethod', 'getter'];

/** One header as a runtime may hold it: one value, or several (Node's headersDistinct, a getter). */
interface Entry {
  name: string;
  values: Value[];
}

const keyValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('key' as const), key: fc.constantFrom<KeyName>('user', 'project', 'otherUser'), variant: fc.constant<KeyVariant>('exact'), at: fc.constant(0) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('key' as const),
      key: fc.constantFrom<KeyName>('user', 'project', 'otherUser', 'unknown', 'badChecksum', 'expired', 'revoked', 'long', 'storeDown'),
      variant: fc.constantFrom(...KEY_VARIANTS),
      at: fc.nat(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('text' as const), s: fc.string({ unit: 'binary', maxLength: 48 }) }) },
);
const projectValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('project' as const), id: fc.constantFrom('proj_a', 'proj_b', 'proj_c', 'proj_zzz') }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('project' as const), id: fc.constantFrom(...PROJECT_TEXTS) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('text' as const), s: fc.string({ unit: 'binary', maxLength: 48 }) }) },
);

const casing = (base: string) => fc.constantFrom(base, base.toLowerCase(), base.toUpperCase(), base.toLowerCase().replace(/^x/, 'X'));
const entries = (name: string, value: fc.Arbitrary<Value>): fc.Arbitrary<Entry[]> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ name: fc.constant(name.toLowerCase()), values: fc.array(value, { minLength: 1, maxLength: 1 }) }).map((e) => [e]) },
    { weight: 2, arbitrary: fc.array(fc.record({ name: casing(name), values: fc.array(value, { minLength: 1, maxLength: 2 }) }), { maxLength: 3 }) },
  );

const input = fc.record({
  shape: fc.constantFrom(...SHAPES),
  key: entries('X-API-Key', keyValue),
  project: fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 3, arbitrary: entries('X-Project-ID', projectValue) }),
  noise: fc.array(fc.record({ name: fc.constantFrom('Authorization', 'X-Api-Key-2', 'x_api_key', 'cookie'), values: fc.array(keyValue, { minLength: 1, maxLength: 1 }) }), { maxLength: 2 }),
  path: fc.option(
    fc.oneof(
      fc.constantFrom('/validate', '/projects', '/sites', '/VALIDATE', '/validate/', '//validate', '/validate?x=1', '/validate#x', '/validate/../sites', '/sites?/validate', '/validate%2F', '/projects?', '?/validate', ''),
      fc.string({ maxLength: 24 }),
    ),
    { nil: undefined },
  ),
  rule: fc.constantFrom(undefined, undefined, 'optional' as const, 'required' as const),
});
type Generated = typeof input extends fc.Arbitrary<infer T> ? T : never;

/** The header source of the generated shape, and the value of each header as documented for that shape. */
function build(g: Generated): { headers: HeaderSource; view: (name: string) => string | string[] | undefined } {
  const all: { name: string; values: string[] }[] = [...g.key, ...g.project, ...g.noise].map((e) => ({ name: e.name, values: e.values.map((v) => renderValue(v, book)) }));
  const lines = (name: string) => all.filter((e) => e.name.toLowerCase() === name);
  const flat = (name: string) => lines(name).flatMap((e) => e.values);
  switch (g.shape) {
    case 'node':
    case 'nodeDistinct': {
      // What Node's http parser gives: lowercase names, a null prototype; repeated lines joined
      // with ", " (headers) or kept apart (headersDistinct).
      const headers = Object.create(null) as Record<string, string | string[]>;
      for (const e of all) {
        const name = e.name.toLowerCase();
        const prior = headers[name];
        if (g.shape === 'node') headers[name] = [...(prior === undefined ? [] : [prior as string]), ...e.values].join(', ');
        else headers[name] = [...((prior as string[] | undefined) ?? []), ...e.values];
      }
      return { headers, view: (name) => headers[name] };
    }
    case 'plain':
    case 'accessor': {
      // Any casing is found; several values across casings are a duplicate.
      const headers: Record<string, string | string[]> = {};
      for (const e of all) {
        const prior = headers[e.name];
        const values = [...(prior === undefined ? [] : Array.isArray(prior) ? prior : [prior]), ...e.values];
        const value = values.length === 1 ? values[0]! : values;
        if (g.shape === 'plain') headers[e.name] = value;
        else Object.defineProperty(headers, e.name, { get: () => value, enumerable: true, configurable: true });
      }
      return {
        headers,
        view: (name) => {
          const values = flat(name);
          return values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
        },
      };
    }
    case 'headers': {
      const headers = new Headers();
      for (const e of all) for (const v of e.values) {
        try {
          headers.append(e.name, v);
        } catch {
          // Not a value Fetch can carry (NUL, CR, LF): a runtime would never hand it over.
        }
      }
      return { headers, view: (name) => headers.get(name) ?? undefined };
    }
    case 'getMethod': {
      const get = (name: string) => (flat(name).length === 0 ? null : flat(name).join(', '));
      return { headers: { get }, view: (name) => get(name) ?? undefined };
    }
    case 'getter': {
      const get = (name: string) => (lines(name).length === 0 ? null : flat(name).length === 1 ? flat(name)[0]! : flat(name));
      return { headers: get, view: (name) => get(name) ?? undefined };
    }
  }
}

/** What the contract says `authenticate` answers. */
function expected(g: Generated, view: (name: string) => string | string[] | undefined): AuthResult {
  const refuse = (code: KeyscopeErrorCode): AuthResult => ({ ok: false, error: refusals.get(code)! });
  const raw = view('x-api-key');
  if (raw === undefined) return refuse('missing_api_key');
  const key = typeof raw === 'string' ? raw : raw.length === 1 ? raw[0] : undefined;
  if (key === fixture.keys.storeDown) return refuse('auth_unavailable');
  const name = (Object.keys(book.valid) as KeyName[]).find((n) => fixture.keys[n] === key);
  if (name === undefined) return refuse('invalid_api_key');
  const record = book.valid[name]!;
  const header = view('x-project-id');
  const requested = typeof header === 'string' ? header : header?.length === 1 ? header[0] : header;
  let projectId: string | null;
  if (record.level === 'project') {
    if (requested !== undefined && requested !== record.projectId) return refuse('project_forbidden');
    projectId = record.projectId;
  } else if (requested === undefined) {
    const optional = g.rule !== undefined ? g.rule === 'optional' : g.path !== undefined && OPTIONAL_PATHS.has(g.path.split('?')[0]!);
    if (!optional) return refuse('project_required');
    projectId = null;
  } else {
    if (typeof requested !== 'string' || !book.owned[record.ownerId]!.includes(requested)) return refuse('project_forbidden');
    projectId = requested;
  }
  const { keyId, keyName, ownerId, level } = record;
  return { ok: true, auth: { keyId, keyName, ownerId, level, projectId } };
}

describe('ks.authenticate over generated header sources and paths', () => {
  it(`answers as the contract says over ${RUNS} inputs (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(input, async (g) => {
        const { headers, view } = build(g);
        const request: AuthInput = { headers, method: 'GET', path: g.path, project: g.rule, clientIp: '198.51.100.7' };
        const result = await ks.authenticate(request); // never rejects: a rejection fails the property
        expect(result).toEqual(expected(g, view));
        const text = JSON.stringify(result);
        for (const [name, key] of Object.entries(fixture.keys)) expect(text.includes(key), `the ${name} key is in the result`).toBe(false);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  }, 60_000);
});
