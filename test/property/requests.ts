/**
 * Generated HTTP requests, kept symbolic (a key is named, never written out) so that a seed
 * reproduces the same request on any run and a counterexample carries no key material, and the
 * model of what each request may get.
 */
import fc from 'fast-check';
import type { KeyName } from '../conformance/fixture.js';

// --- header values --------------------------------------------------------------------------

/** How a fixture key is bent before it is sent. */
export const KEY_VARIANTS = [
  'exact', // the key
  'padded', // surrounded by spaces and tabs, which HTTP strips: still the key
  'minus1', // last character dropped
  'plus1', // one character appended
  'flipCase', // one random character's case flipped
  'upperPrefix', // KS_ instead of ks_
  'twice', // "key, key" in one line, as a proxy joining two headers would write it
  'bearer', // "Bearer key"
  'quoted', // "\"key\""
  'ctl', // a control character appended (not sendable by Node's client)
  'unicode', // a non-ASCII character appended
] as const;
export type KeyVariant = (typeof KEY_VARIANTS)[number];

export type Value =
  | { t: 'key'; key: KeyName; variant: KeyVariant; at: number }
  | { t: 'project'; id: string }
  | { t: 'text'; s: string }
  | { t: 'big'; size: number; ch: string };

const KEY_NAMES: readonly KeyName[] = ['user', 'project', 'otherUser', 'unknown', 'badChecksum', 'expired', 'revoked', 'long', 'storeDown'];

/** Characters a header value may hold on the wire: anything but CR and LF (which would end the line). */
const wireText = fc.string({ unit: 'binary', maxLength: 24 }).map((s) => s.replace(/[\r\n]/g, ''));

const keyValue: fc.Arbitrary<Value> = fc.record({
  t: fc.constant('key' as const),
  key: fc.constantFrom(...KEY_NAMES),
  variant: fc.oneof({ weight: 4, arbitrary: fc.constant<KeyVariant>('exact') }, { weight: 6, arbitrary: fc.constantFrom(...KEY_VARIANTS) }),
  at: fc.nat(),
});

const bigValue: fc.Arbitrary<Value> = fc.record({
  t: fc.constant('big' as const),
  size: fc.constantFrom(8 * 1024, 16 * 1024),
  ch: fc.constantFrom('a', '0', 'é', '\t'),
});

/** Project ids worth naming: owned by usr_1 (a, b), by usr_2 (c), unknown, and malformed ones. */
export const PROJECT_TEXTS = [
  'proj_a', 'proj_b', 'proj_c', 'proj_zzz', '', ' ', ' proj_a ', '\tproj_a', 'PROJ_A', 'Proj_a', 'proj_a, proj_b', 'proj_a,proj_a',
  '../proj_a', 'proj_a/..', 'proj a', 'proj_a\x00', 'proj_a\x7f', 'prój_a', 'proj_a%00', 'proj%5Fa', '"proj_a"', 'null', 'undefined',
  'p'.repeat(128), 'p'.repeat(129), 'proj_a'.padEnd(4096, 'x'),
] as const;

const projectValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ t: fc.constant('project' as const), id: fc.constantFrom(...PROJECT_TEXTS) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('text' as const), s: wireText }) },
  { weight: 1, arbitrary: bigValue },
);

// --- header lines ---------------------------------------------------------------------------

/** Spellings of the key header: the real one in several cases, and near misses that are other headers. */
export const KEY_HEADER_NAMES = ['X-API-Key', 'x-api-key', 'X-API-KEY', 'x-Api-kEY', 'X_API_KEY', 'X-API-Keys', 'API-Key'] as const;
export const PROJECT_HEADER_NAMES = ['X-Project-ID', 'x-project-id', 'X-PROJECT-ID', 'X_Project_ID', 'X-Project'] as const;

export type Line = { name: string; value: Value };

const keyLine: fc.Arbitrary<Line> = fc.record({
  name: fc.oneof({ weight: 5, arbitrary: fc.constant('X-API-Key') }, { weight: 3, arbitrary: fc.constantFrom(...KEY_HEADER_NAMES) }),
  value: fc.oneof({ weight: 16, arbitrary: keyValue }, { weight: 4, arbitrary: fc.record({ t: fc.constant('text' as const), s: wireText }) }, { weight: 1, arbitrary: bigValue }),
});
const projectLine: fc.Arbitrary<Line> = fc.record({
  name: fc.oneof({ weight: 5, arbitrary: fc.constant('X-Project-ID') }, { weight: 2, arbitrary: fc.constantFrom(...PROJECT_HEADER_NAMES) }),
  value: projectValue,
});
/** Other headers a client might add, some carrying a key where keyscope must not look. */
const otherLine: fc.Arbitrary<Line> = fc.oneof(
  fc.constant<Line>({ name: 'Authorization', value: { t: 'key', key: 'user', variant: 'bearer', at: 0 } }),
  fc.constant<Line>({ name: 'X-Forwarded-For', value: { t: 'text', s: '203.0.113.9' } }),
  fc.constant<Line>({ name: 'X-Original-URL', value: { t: 'text', s: '/validate' } }),
  fc.constant<Line>({ name: 'X-Rewrite-URL', value: { t: 'text', s: '/api/v1/validate' } }),
  fc.constant<Line>({ name: 'X-HTTP-Method-Override', value: { t: 'text', s: 'GET' } }),
  fc.constant<Line>({ name: 'Cookie', value: { t: 'key', key: 'user', variant: 'exact', at: 0 } }),
);

/** The key header spelled as HTTP allows (any case), carrying a key that authenticates. */
const goodKeyLine: fc.Arbitrary<Line> = fc.record({
  name: fc.constantFrom('X-API-Key', 'x-api-key', 'X-API-KEY'),
  value: fc.record({
    t: fc.constant('key' as const),
    key: fc.constantFrom<KeyName>('user', 'user', 'project', 'project', 'otherUser'),
    variant: fc.constantFrom<KeyVariant>('exact', 'exact', 'padded'),
    at: fc.constant(0),
  }),
});
const goodProjectLine: fc.Arbitrary<Line> = fc.record({
  name: fc.constantFrom('X-Project-ID', 'x-project-id'),
  value: fc.record({ t: fc.constant('project' as const), id: fc.constantFrom('proj_a', 'proj_a', 'proj_a', 'proj_b', 'proj_c', 'proj_zzz') }),
});

// Most requests carry one good key and at most one plain project header, so that handlers
// run often enough for properties 1 and 2 to bite; the rest are anything.
export const lines: fc.Arbitrary<Line[]> = fc
  .tuple(
    fc.oneof({ weight: 2, arbitrary: goodKeyLine.map((line) => [line]) }, { weight: 1, arbitrary: fc.array(keyLine, { maxLength: 3 }) }),
    fc.oneof({ weight: 1, arbitrary: fc.constant<Line[]>([]) }, { weight: 2, arbitrary: goodProjectLine.map((line) => [line]) }, { weight: 1, arbitrary: fc.array(projectLine, { maxLength: 3 }) }),
    fc.array(otherLine, { maxLength: 2 }),
    fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
  )
  .map(([keys, projects, others, order]) => {
    // Interleave the three kinds in a generated order, keeping each kind's own order.
    const all = [...keys, ...projects, ...others];
    return all
      .map((line, i) => ({ line, rank: order[i % order.length]! + i / 100 }))
      .sort((a, b) => a.rank - b.rank)
      .map(({ line }) => line);
  });

// --- request targets ------------------------------------------------------------------------

export const PREFIXES = ['', '/api/v1', '/API/V1', '/Api/v1', '/api/V1', '/api%2Fv1', '/api%2fv1', '/%61pi/v1', '/api/v1/.', '/api/../api/v1'] as const;
export const ROUTE_PATHS = ['/validate', '/projects', '/sites', '/sites/s1/summary', '/health', '/', '/sites/s1', '/validate/sites', '/nope'] as const;
const SEGMENTS = ['..', '.', '%2e%2e', '%2E%2E', '%2e.', '%252e%252e', '..%2f', '..%2F', '%2e%2e%2f', 'x/..', 'validate/..', 'sites/..', 'api/v1/..', ';', ';x=1', '..;', 'validate;', '\\..'] as const;
const RAW_INSERTS = ['é', '%', '%zz', '%00', ';', '\\', '%5c', '%20', '+', '*'] as const;

export type Mutation =
  | { m: 'flipCase'; i: number }
  | { m: 'encode'; i: number; upper: boolean }
  | { m: 'doubleEncode'; i: number }
  | { m: 'doubleSlash'; i: number }
  | { m: 'segment'; i: number; seg: string }
  | { m: 'insert'; i: number; text: string }
  | { m: 'trailingSlash' };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ m: fc.constant('flipCase' as const), i: fc.nat() }),
  fc.record({ m: fc.constant('encode' as const), i: fc.nat(), upper: fc.boolean() }),
  fc.record({ m: fc.constant('doubleEncode' as const), i: fc.nat() }),
  fc.record({ m: fc.constant('doubleSlash' as const), i: fc.nat() }),
  fc.record({ m: fc.constant('segment' as const), i: fc.nat(), seg: fc.constantFrom(...SEGMENTS) }),
  fc.record({ m: fc.constant('insert' as const), i: fc.nat(), text: fc.constantFrom(...RAW_INSERTS) }),
  fc.constant<Mutation>({ m: 'trailingSlash' }),
);

export interface Target {
  absolute: boolean;
  prefix: string;
  route: string;
  mutations: Mutation[];
  query: string;
  fragment: string;
}

export const target: fc.Arbitrary<Target> = fc.record({
  absolute: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  prefix: fc.oneof({ weight: 3, arbitrary: fc.constantFrom('', '/api/v1') }, { weight: 2, arbitrary: fc.constantFrom(...PREFIXES) }),
  route: fc.constantFrom(...ROUTE_PATHS),
  mutations: fc.oneof({ weight: 3, arbitrary: fc.constant<Mutation[]>([]) }, { weight: 2, arbitrary: fc.array(mutation, { maxLength: 3 }) }),
  query: fc.constantFrom('', '', '', '?x=1', '?x=/validate', '?', '?/validate', '?project=proj_a', '?..'),
  fragment: fc.constantFrom('', '', '', '#/validate', '#', '#x'),
});

function slashes(path: string): number[] {
  const at: number[] = [];
  for (let i = 0; i < path.length; i++) if (path[i] === '/') at.push(i);
  return at;
}

function applyMutation(path: string, mu: Mutation): string {
  switch (mu.m) {
    case 'flipCase': {
      const letters = [...path].flatMap((c, i) => (/[a-z]/i.test(c) ? [i] : []));
      if (letters.length === 0) return path;
      const i = letters[mu.i % letters.length]!;
      const c = path[i]!;
      return path.slice(0, i) + (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) + path.slice(i + 1);
    }
    case 'encode':
    case 'doubleEncode': {
      if (path.length === 0) return path;
      const i = mu.i % path.length;
      const hex = path.charCodeAt(i).toString(16).padStart(2, '0');
      const code = mu.m === 'encode' ? `%${mu.upper ? hex.toUpperCase() : hex}` : `%25${hex}`;
      return path.slice(0, i) + code + path.slice(i + 1);
    }
    case 'doubleSlash': {
      const at = slashes(path);
      if (at.length === 0) return path;
      const i = at[mu.i % at.length]!;
      return `${path.slice(0, i)}/${path.slice(i)}`;
    }
    case 'segment': {
      const at = slashes(path);
      if (at.length === 0) return path;
      const i = at[mu.i % at.length]!;
      return `${path.slice(0, i)}/${mu.seg}${path.slice(i)}`;
    }
    case 'insert': {
      const i = path.length === 0 ? 0 : mu.i % (path.length + 1);
      return path.slice(0, i) + mu.text + path.slice(i);
    }
    case 'trailingSlash':
      return `${path}/`;
  }
}

export function renderTarget(t: Target, port: number): string {
  let path = t.prefix + (t.prefix !== '' && t.route === '/' ? '' : t.route);
  for (const mu of t.mutations) path = applyMutation(path, mu);
  if (!path.startsWith('/')) path = `/${path}`;
  return (t.absolute ? `http://127.0.0.1:${port}` : '') + path + t.query + t.fragment;
}

// --- whole requests -------------------------------------------------------------------------

export interface GenRequest {
  method: string;
  target: Target;
  lines: Line[];
}

export const request: fc.Arbitrary<GenRequest> = fc.record({
  method: fc.oneof({ weight: 10, arbitrary: fc.constant('GET') }, { weight: 1, arbitrary: fc.constantFrom('POST', 'OPTIONS', 'DELETE') }),
  target: target,
  lines: lines,
});

/** Keys by name, and what each one is. */
export interface KeyBook {
  keys: Record<KeyName, string>;
  /** The keys that authenticate, with what the handler must see. */
  valid: Partial<Record<KeyName, { keyId: string; keyName: string; ownerId: string; level: 'user' | 'project'; projectId: string | null }>>;
  /** Projects each owner owns. */
  owned: Record<string, readonly string[]>;
}

export function renderValue(v: Value, book: KeyBook): string {
  switch (v.t) {
    case 'project':
      return v.id;
    case 'text':
      return v.s;
    case 'big':
      return v.ch.repeat(v.size);
    case 'key': {
      const key = book.keys[v.key];
      const i = v.at % key.length;
      switch (v.variant) {
        case 'exact':
          return key;
        case 'padded':
          return ` \t${key} \t`;
        case 'minus1':
          return key.slice(0, -1);
        case 'plus1':
          return `${key}A`;
        case 'flipCase': {
          const c = key[i]!;
          const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
          // A digit or '_' has no case: change it to another character instead.
          return key.slice(0, i) + (flipped === c ? (c === '0' ? '1' : '0') : flipped) + key.slice(i + 1);
        }
        case 'upperPrefix':
          return key.replace(/^ks_/, 'KS_');
        case 'twice':
          return `${key}, ${key}`;
        case 'bearer':
          return `Bearer ${key}`;
        case 'quoted':
          return `"${key}"`;
        case 'ctl':
          return `${key}\x01`;
        case 'unicode':
          return `${key}é`;
      }
    }
  }
}

/** The request's bytes, and what the server's HTTP parser will make of its headers. */
export interface Rendered {
  head: Buffer;
  target: string;
  /** Lines whose name is the key header (case-insensitively), their values as the server reads them. */
  keyValues: string[];
  projectValues: string[];
  /** The request breaks HTTP itself (control characters in a value or the target): the server may answer 400 or close. */
  malformed: boolean;
  /** Over Node's 16 KiB header limit: 431, or a closed connection. */
  oversize: boolean;
}

const CTL = /[\x00-\x08\x0a-\x1f\x7f]/;

export function render(req: GenRequest, book: KeyBook, port: number): Rendered {
  const target = renderTarget(req.target, port);
  const texts = req.lines.map((line) => ({ name: line.name, value: renderValue(line.value, book) }));
  let head = `${req.method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`;
  for (const { name, value } of texts) head += `${name}: ${value}\r\n`;
  head += '\r\n';
  const bytes = Buffer.from(head, 'utf8');
  // Node reads header bytes as latin1 and strips surrounding spaces and tabs.
  const asRead = (value: string) => Buffer.from(value, 'utf8').toString('latin1').replace(/^[ \t]+|[ \t]+$/g, '');
  const values = (header: string) => texts.filter(({ name }) => name.toLowerCase() === header).map(({ value }) => asRead(value));
  return {
    head: bytes,
    target,
    keyValues: values('x-api-key'),
    projectValues: values('x-project-id'),
    malformed: texts.some(({ value }) => CTL.test(value)) || /[\x00-\x20\x7f]/.test(target),
    oversize: bytes.length > 16 * 1024 - 1024,
  };
}

/** What the key header amounts to: absent, one known key, the key whose lookup fails, or anything else. */
export type KeyState = { s: 'missing' } | { s: 'invalid' } | { s: 'down' } | { s: 'valid'; name: KeyName };

export function keyState(r: Rendered, book: KeyBook): KeyState {
  if (r.keyValues.length === 0) return { s: 'missing' };
  if (r.keyValues.length > 1) return { s: 'invalid' };
  const value = r.keyValues[0]!;
  if (value === book.keys.storeDown) return { s: 'down' };
  for (const name of Object.keys(book.valid) as KeyName[]) if (book.keys[name] === value) return { s: 'valid', name };
  return { s: 'invalid' };
}

/**
 * For a valid key: the project the handler must see (a string, or null where a user key sends
 * none), or the refusal the core must give, following the table of DESIGN.md.
 */
export function projectOutcome(r: Rendered, key: NonNullable<KeyBook['valid'][KeyName]>, book: KeyBook):
  | { ok: true; projectId: string | null }
  | { ok: false; code: 'project_required' | 'project_forbidden' } {
  const values = r.projectValues;
  if (values.length > 1) return { ok: false, code: 'project_forbidden' };
  const requested = values[0];
  if (key.level === 'project') {
    return requested === undefined || requested === key.projectId ? { ok: true, projectId: key.projectId } : { ok: false, code: 'project_forbidden' };
  }
  if (requested === undefined) return { ok: true, projectId: null }; // only where the route is project-optional
  return (book.owned[key.ownerId] ?? []).includes(requested) ? { ok: true, projectId: requested } : { ok: false, code: 'project_forbidden' };
}
