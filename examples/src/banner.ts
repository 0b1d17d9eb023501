import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { databaseFile, type StoreLocation } from '../keyscope.config.js';
import type { DemoKeys } from './seed.js';

/** A host to put in a URL: wildcard addresses are reached on loopback, IPv6 goes in brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** A path as a shell word, relative to `from` when inside it. */
function shellPath(file: string, from = process.cwd()): string {
  const relative = path.relative(from, file);
  const shown = relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
  return /^[\w./-]+$/.test(shown) ? shown : `'${shown.replace(/'/g, `'\\''`)}'`;
}

/** One curl example: the status it gets, why, and the command. */
interface Example {
  status: number;
  why: string;
  path: string;
  key?: string;
  project?: string;
}

/**
 * What the first start prints: both demo keys, once, curl lines that show each answer, and how
 * to reach the keys with the CLI. Every example is a `# <status>: <why>` line followed by its
 * `curl` line.
 */
export function seededBanner(keys: DemoKeys, base: string, db: string, store?: StoreLocation): string {
  const { userKey: user, projectKey: project } = keys;
  const examples: Example[] = [
    { status: 200, why: 'any valid key may call /validate without X-Project-ID', path: '/validate', key: user },
    { status: 200, why: "a user key lists every project of demo-user", path: '/projects', key: user },
    { status: 200, why: 'a project key lists its one project', path: '/projects', key: project },
    { status: 403, why: 'a user key must name the project (project_required)', path: '/sites', key: user },
    { status: 200, why: 'a user key with a project of its owner', path: '/sites', key: user, project: 'proj_alpha' },
    { status: 403, why: 'proj_gamma belongs to other-user (project_forbidden)', path: '/sites', key: user, project: 'proj_gamma' },
    { status: 200, why: 'a project key needs no X-Project-ID', path: '/sites', key: project },
    { status: 200, why: 'a project key naming its own project', path: '/sites', key: project, project: 'proj_alpha' },
    { status: 403, why: 'a project key naming another project (project_forbidden)', path: '/sites', key: project, project: 'proj_beta' },
    { status: 401, why: 'no key (missing_api_key)', path: '/validate' },
    { status: 401, why: 'a wrong key (invalid_api_key)', path: '/validate', key: 'ks_not-a-real-key' },
  ];
  const lines = examples.flatMap((e) => [`  # ${e.status}: ${e.why}`, `  ${curl(base, e)}`, '']);
  return [
    '',
    'Seeded demo data: demo-user owns proj_alpha and proj_beta, other-user owns proj_gamma.',
    'Two keys for demo-user. They are shown this once and cannot be recovered; copy them now:',
    '',
    `  user-level key (every project of demo-user):  ${user}`,
    `  project-level key (proj_alpha only):          ${project}`,
    '',
    'Try them:',
    '',
    ...lines,
    ...cliIntro(store),
    `  ${cliCommand(db, 'keys list --owner demo-user', store)}`,
    '',
  ].join('\n');
}

function curl(base: string, e: Example): string {
  const parts = ['curl', '-i'];
  if (e.key !== undefined) parts.push('-H', `'X-API-Key: ${e.key}'`);
  if (e.project !== undefined) parts.push('-H', `'X-Project-ID: ${e.project}'`);
  parts.push(`${base}${e.path}`);
  return parts.join(' ');
}

/** Where `pnpm keyscope` runs (the root package's script), whatever directory the server runs in. */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The module holding the keyscope options this server uses; the CLI loads it with `--config`. */
const CONFIG_FILE = fileURLToPath(new URL('../keyscope.config.ts', import.meta.url));

/**
 * A CLI command on this server's keys, to run from the repository root: `--config` names
 * keyscope.config.ts, which finds the database as the server did (`KEYSCOPE_DB`, else
 * `.keyscope/example.db` in the current directory), so `KEYSCOPE_DB=…` is added only when the
 * server's file is not the one the CLI would find there by default.
 */
export function cliCommand(db: string, args: string, store?: StoreLocation): string {
  let env: string;
  if (store?.kind === 'postgres') {
    // The keys are in PostgreSQL: the CLI needs the server's DATABASE_URL, not its SQLite file.
    // A URL with a password is not printed; cliIntro asks for the variable to be exported instead.
    env = hasPassword(store.url) ? '' : `DATABASE_URL=${shellWord(store.url)} `;
  } else {
    env = db === databaseFile({}, REPO_ROOT) ? '' : `KEYSCOPE_DB=${shellPath(db, REPO_ROOT)} `;
  }
  const [group, command, ...rest] = args.split(' ');
  return [`${env}pnpm keyscope ${group} ${command}`, '--config', shellPath(CONFIG_FILE, REPO_ROOT), ...rest].join(' ');
}

/** The CLI, and where it finds this server's options; printed by every start. */
function cliIntro(store?: StoreLocation): string[] {
  return [
    'Manage keys with the CLI from the repository root (run `pnpm build` once first). It loads',
    `${shellPath(CONFIG_FILE, REPO_ROOT)}, the keyscope options this server uses, so the two agree on`,
    'the database, key prefix, headers and project-optional paths:',
    ...(store?.kind === 'postgres' && hasPassword(store.url)
      ? ['(with the same DATABASE_URL as this server exported in that shell; its password is not printed)']
      : []),
    '',
  ];
}

/** A word the shell reads back as `value`. */
function shellWord(value: string): string {
  return /^[\w./:@%+=,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return true; // unparsable: print nothing of it
  }
}

/** A connection URL fit to print: the password (and any query string) left out. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    parsed.search = '';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** What the server runs on, for the lines printed at every start. */
export interface Backends {
  store: StoreLocation;
  /** PostgreSQL only: the schema and what the start-up migration did. */
  migration?: { schema: string; from: number; to: number };
  /** Redis for the bus and the throttle, when REDIS_URL is set. */
  redis?: { url: string; channel: string };
  maxFailures: number;
}

/** Which store, which change channels and which throttle this server uses: two lines. */
export function backendsBanner(b: Backends): string {
  let store: string;
  let changes: string;
  if (b.store.kind === 'postgres') {
    const m = b.migration;
    const schema = m ? `, schema ${m.schema} ${m.from === m.to ? `(version ${m.to}, up to date)` : `(migrated from version ${m.from} to ${m.to})`}` : '';
    store = `PostgreSQL ${redactUrl(b.store.url)}${schema}`;
    changes = 'PostgreSQL LISTEN/NOTIFY';
  } else {
    store = `SQLite ${shellPath(b.store.file)}`;
    changes = 'SQLite change polling (every 500 ms)';
  }
  const bus = b.redis ? `Redis bus ${redactUrl(b.redis.url)} (channel ${b.redis.channel})` : 'no bus (set REDIS_URL for the Redis bus)';
  const throttle = b.redis
    ? `shared on Redis, ${b.maxFailures} failures per client per minute across all servers`
    : `in this process, ${b.maxFailures} failures per client per minute`;
  return [`keyscope store: ${store}`, `keyscope changes: ${changes} + ${bus}; failed-attempt throttle: ${throttle}`].join('\n');
}

/** What later starts print: the keys are in the file (hashed), so say how to make another. */
export function reuseBanner(db: string, seeded: boolean, store?: StoreLocation): string {
  return [
    '',
    store?.kind === 'postgres'
      ? `Using the keys and projects in PostgreSQL${seeded ? ' (its demo keys were printed on its first start only)' : ''}, the monitoring data in ${shellPath(db)}.`
      : `Using the existing database ${shellPath(db)}${seeded ? ' (its demo keys were printed on its first start only)' : ''}.`,
    ...cliIntro(store),
    ...(seeded ? [] : [`  ${cliCommand(db, 'projects add --owner demo-user --name Alpha --id proj_alpha', store)}`]),
    `  ${cliCommand(db, 'keys create --owner demo-user --name my-key --level user', store)}`,
    `  ${cliCommand(db, 'keys create --owner demo-user --name my-alpha-key --level project --project proj_alpha', store)}`,
    `  ${cliCommand(db, 'keys list --owner demo-user', store)}`,
    '',
  ].join('\n');
}

export function baseUrl(host: string, port: number): string {
  return `http://${urlHost(host)}:${port}`;
}
