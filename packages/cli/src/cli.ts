import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  createKeyscope,
  DEFAULT_KEY_PREFIX,
  generateKey,
  hasKeyShape,
  ID_PATTERN,
  isWellFormedKey,
  keyStart,
  withLineQuotas,
  type KeyLimitsInput,
  type KeyRecord,
  type Keyscope,
  type KeyscopeOptions,
  type KeyStore,
  type Project,
  type ProjectDirectory,
} from '@keyscope/core';
import { migrate as migratePostgres, PostgresStore } from '@keyscope/postgres';
import { SqliteStore } from '@keyscope/sqlite';
import { ConfigError, findConfig, loadConfig, type ConfigSource } from './config.js';
import { hasLimits, keyJson, keysTable, limitsText, listedKeyJson, looksLikeKey, projectsTable, redact, usageJson, when, table } from './format.js';
import { VERSION } from './version.js';

/** Where {@link main} reads and writes; `process` streams in the real binary. */
export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Read by `keys verify` and `keys import` when `KEYSCOPE_API_KEY` is not set. */
  stdin?: AsyncIterable<string | Uint8Array> & { isTTY?: boolean };
  /** Environment (`KEYSCOPE_CONFIG`, `KEYSCOPE_DB`, `DATABASE_URL`, `KEYSCOPE_API_KEY`). Default: none. */
  env?: Record<string, string | undefined>;
  /** Directory searched for `keyscope.config.*` and against which relative paths resolve. Default `process.cwd()`. */
  cwd?: string;
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
}

/** Exit codes: 0 success, 1 not found or refused, 2 bad usage or bad input. */
export const EXIT = Object.freeze({ ok: 0, notFound: 1, usage: 2 });

/** The `--help` text. */
export const USAGE = `Usage: keyscope <command> [options]

Commands:
  projects add   --owner <ownerId> --name <name> [--id <projectId>]
  projects list  --owner <ownerId>
  keys create    --owner <ownerId> --name <name> --level user|project [--project <id>]
                 [--expires-in 90d | --expires-at <ISO-8601>]
                 [--rate-limit <n>/<window>] [--quota <n> [--refill day|month]]
  keys import    --owner <ownerId> --name <name> --level user|project [--project <id>]
                 [--expires-in 90d | --expires-at <ISO-8601>]
                 [--rate-limit <n>/<window>] [--quota <n> [--refill day|month]]
                 (stores a key made elsewhere, read from KEYSCOPE_API_KEY or stdin)
  keys generate  print a new key for the configured prefix; stores nothing
  keys list      --owner <ownerId> | --all
  keys limits    <keyId> [--rate-limit <n>/<window> | --no-rate-limit]
                 [--quota <n> [--refill day|month] | --no-quota] [--remaining <n>]
                 (change a key's limits; --remaining alone refills or drains its quota)
  keys revoke    <keyId>
  keys rotate    <keyId> [--grace 24h]
  keys usage     <keyId>
  keys verify    [--project <id>] [--path <path>]
                 (the key is read from KEYSCOPE_API_KEY or stdin, never from the command line)
  db migrate     create or upgrade the PostgreSQL schema (--database-url or $DATABASE_URL,
                 or the config's store)

Options on every command:
  --config <file>  the app's keyscope config module: its createKeyscope options, store
                   included (default: $KEYSCOPE_CONFIG, else the first of keyscope.config.ts,
                   .mts, .js, .mjs, .cjs in the current directory)
  --db <file>      SQLite database when there is no config (default: $KEYSCOPE_DB, else
                   ./keyscope.db); refused beside a config, which names its own store
  --database-url <url>
                   PostgreSQL instead of SQLite when there is no config (default:
                   $DATABASE_URL); refused beside --db or a config
  --schema <name>  the PostgreSQL schema (default keyscope); only with a database URL
  --json           print one JSON document on stdout
  -h, --help       show this help
  --version        print the version

Durations: <n>s, <n>m, <n>h, <n>d, <n>w (7 days) or <n>y (365 days).
Rate limits: requests per window, like 100/min, 10/s, 5000/hour, 1000/day or 20/60s (a count
  before s, m/min, h/hour or d/day); from 1s to 366d.
Quotas: --quota <n> requests in all, or per UTC day or month with --refill; it starts full.
Exit codes: 0 success, 1 not found or verification refused, 2 bad usage or bad input.
`;

/** Bad usage or bad input: exit 2 with this one-line message. */
class UsageError extends Error {}

type Values = Record<string, string | boolean | undefined>;
type Options = NonNullable<ParseArgsConfig['options']>;

/** What a command works on: the keyscope, its store and project directory, and what they came from. */
interface Opened {
  ks: Keyscope;
  store: KeyStore;
  /** Where projects live: the config's `projects`, else the store. */
  projects: ProjectDirectory;
  /** The config's options (`undefined` without a config). */
  options: KeyscopeOptions | undefined;
  /** Where the store comes from, for messages: `the store in ./keyscope.config.ts`, `the SQLite store`. */
  from: string;
}

interface Context {
  /** The command, e.g. `keys list`. */
  name: string;
  values: Values;
  args: string[];
  io: CliIO;
  env: Record<string, string | undefined>;
  now: () => number;
  json: boolean;
  /** The config module in effect, if any (found, not yet loaded). */
  config: ConfigSource | undefined;
  /** The config's options, loaded once (`undefined` without a config). */
  options(): Promise<KeyscopeOptions | undefined>;
  /**
   * The store and a keyscope over it (without usage recording: the CLI is not traffic).
   * Without a config, `read` opens the SQLite file read-only, `write` needs an existing file,
   * `create` may create it. `admin`: the command administers keys, so the store must be able to.
   */
  open(mode: 'read' | 'write' | 'create', admin?: boolean): Promise<Opened>;
  /** Write to stdout with anything shaped like a key redacted. */
  print(text: string): void;
  printJson(value: unknown): void;
  /** Write output that carries a new key (create, rotate, generate), and nothing else unredacted. */
  printKey(text: string): void;
}

interface Command {
  options: Options;
  /** Names of the positional arguments it takes (each required). */
  positionals?: string[];
  required?: string[];
  run(ctx: Context): Promise<number>;
}

const text = { type: 'string' } as const;
const flag = { type: 'boolean' } as const;
const GLOBAL_OPTIONS: Options = {
  config: text,
  db: text,
  'database-url': text,
  schema: text,
  json: flag,
  help: { type: 'boolean', short: 'h' },
  version: flag,
};
/** Options that take a value and may come before the command words. */
const GLOBAL_VALUED = new Set(['--config', '--db', '--database-url', '--schema']);
const LIMIT_OPTIONS: Options = { 'rate-limit': text, quota: text, refill: text };
const SCOPE_OPTIONS: Options = { owner: text, name: text, level: text, project: text, 'expires-in': text, 'expires-at': text, ...LIMIT_OPTIONS };
const DURATION = /^(\d{1,9})(s|m|h|d|w|y)$/;
const DAY_MS = 86_400_000;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS, y: 365 * DAY_MS } as const;
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(?:Z|([+-])(\d{2}):(\d{2})))?$/;
// `<requests>/<window>`: a window is a unit with an optional count (`20/60s`, `100/5min`).
const RATE = /^([1-9]\d{0,9})\/([1-9]\d{0,9})?(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)$/;
const RATE_UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: DAY_MS };
// Core's bounds (keys.create / setLimits check them too); checked here so the message names the flag.
const MAX_RATE = 1_000_000_000;
const MIN_WINDOW_MS = 1_000;
const MAX_WINDOW_MS = 366 * DAY_MS;
const COUNT = /^(?:0|[1-9]\d{0,15})$/;
/** The last instant a JavaScript Date (and so a stored expiry) can hold. */
const MAX_TIME = 8.64e15;
/** What `keys.*` needs of a store (core's KeyAdminStore, less `recordUsage`: the CLI records none). */
const ADMIN_METHODS = ['createKey', 'getKey', 'listKeys', 'revokeKey', 'setKeyExpiry', 'getUsage'] as const;

const COMMANDS: Record<string, Command> = {
  'projects add': {
    options: { owner: text, name: text, id: text },
    required: ['owner', 'name'],
    async run(ctx) {
      const ownerId = identifier(ctx.values.owner, '--owner');
      const name = displayName(ctx.values.name as string, '--name');
      const id = ctx.values.id === undefined ? `proj_${randomBytes(8).toString('hex')}` : identifier(ctx.values.id, '--id');
      const { projects, options, from } = await ctx.open('create');
      const project = { id, ownerId, name };
      const directory = projects as ProjectDirectory & {
        createProject?: (project: Project) => unknown;
        addProject?: (project: Project) => unknown;
        getProject?: (id: string) => unknown;
      };
      // Adding must never hand an existing project (and its keys' reach) to another owner: the
      // insert itself refuses an existing id, so two concurrent adds cannot both pass a check.
      if (typeof directory.createProject === 'function') await directory.createProject(project);
      else if (typeof directory.addProject === 'function' && typeof directory.getProject === 'function') {
        // addProject replaces an existing project's owner: check first (not atomic, unlike createProject).
        if ((await directory.getProject(id)) != null) throw new UsageError(`project ${id} already exists`);
        await directory.addProject(project);
      } else if (options?.projects !== undefined && options.projects !== options.store) {
        throw new UsageError(
          `projects live in your app's own directory (the projects option of ${ctx.config!.shown}), which has no createProject: add them in your app`,
        );
      } else {
        throw new UsageError(`${from} has no createProject (nor addProject with getProject): add projects where your app keeps them`);
      }
      if (ctx.json) ctx.printJson(project);
      else ctx.print(`Added project ${id} (${name}) for owner ${ownerId}.\n`);
      return EXIT.ok;
    },
  },

  'projects list': {
    options: { owner: text },
    required: ['owner'],
    async run(ctx) {
      const ownerId = identifier(ctx.values.owner, '--owner');
      // The projects the server sees: the config's project directory, else the store's.
      const { projects: directory } = await ctx.open('read');
      const projects = (await directory.listProjects(ownerId)).map((p) => ({ id: p.id, ownerId: p.ownerId, name: p.name }));
      if (ctx.json) ctx.printJson(projects);
      else ctx.print(projects.length === 0 ? `No projects for owner ${ownerId}.\n` : projectsTable(projects));
      return EXIT.ok;
    },
  },

  'keys create': {
    options: SCOPE_OPTIONS,
    required: ['owner', 'name', 'level'],
    async run(ctx) {
      const scope = keyScope(ctx);
      const opened = await ctx.open('create', true);
      if (scope.quota) needsQuotas(opened, ctx.name);
      const { key, record } = await opened.ks.keys.create(scope);
      if (ctx.json) ctx.printKey(`${JSON.stringify({ key, record: keyJson(record) }, null, 2)}\n`);
      else {
        ctx.printKey(
          `Created key ${record.id} "${record.name}" (${describeScope(record)}; expires ${when(record.expiresAt, 'never')}).\n` +
            (hasLimits(record) ? `Limits: ${limitsText(record, ctx.now())}.\n` : '') +
            '\n' +
            `  ${key}\n\n` +
            'Store it now: this key will not be shown again.\n',
        );
      }
      return EXIT.ok;
    },
  },

  'keys import': {
    options: SCOPE_OPTIONS,
    required: ['owner', 'name', 'level'],
    async run(ctx) {
      const scope = keyScope(ctx);
      const key = await readKey(ctx, 'import');
      const options = await ctx.options();
      const prefix = options?.keyPrefix ?? DEFAULT_KEY_PREFIX;
      if (!isWellFormedKey(key, prefix)) {
        if (hasKeyShape(key, prefix)) throw new UsageError(`the key has the shape of a ${prefix}_ key but a wrong checksum: it was mistyped or truncated`);
        if (!options?.importedKeys) {
          throw new UsageError(
            `the key is not a keyscope key with prefix "${prefix}"; to import keys made elsewhere, set importedKeys: true in ` +
              `${ctx.config ? ctx.config.shown : 'a keyscope.config.* module'}, the config your server uses too (it must accept them)`,
          );
        }
      }
      const opened = await ctx.open('create', true);
      if (scope.quota) needsQuotas(opened, ctx.name);
      const { record } = await opened.ks.keys.import({ ...scope, key });
      if (ctx.json) ctx.printJson({ record: keyJson(record) });
      else {
        ctx.print(
          `Imported key ${record.id} "${record.name}" (${describeScope(record)}; starts ${record.start}…; expires ${when(record.expiresAt, 'never')}).\n` +
            (hasLimits(record) ? `Limits: ${limitsText(record, ctx.now())}.\n` : ''),
        );
      }
      return EXIT.ok;
    },
  },

  'keys generate': {
    options: {},
    async run(ctx) {
      // The prefix is the config's (loading it checks every option), else the default; no store is read.
      const prefix = ctx.config ? ((await ctx.open('read')).options?.keyPrefix ?? DEFAULT_KEY_PREFIX) : DEFAULT_KEY_PREFIX;
      const key = generateKey(prefix);
      ctx.printKey(ctx.json ? `${JSON.stringify({ key, start: keyStart(key) }, null, 2)}\n` : `${key}\n`);
      return EXIT.ok;
    },
  },

  'keys list': {
    options: { owner: text, all: flag },
    async run(ctx) {
      const { owner, all } = ctx.values;
      if ((owner === undefined) === (all !== true)) throw new UsageError('keys list needs --owner <ownerId> or --all (one of them)');
      // --all needs only the store's listAllKeys; an owner's list goes through key administration.
      const { ks, store, from } = await ctx.open('read', all !== true);
      const now = ctx.now();
      let records: KeyRecord[] | Awaited<ReturnType<Keyscope['keys']['list']>>;
      if (all) {
        const listAllKeys = (store as { listAllKeys?: () => Promise<KeyRecord[]> }).listAllKeys;
        if (typeof listAllKeys !== 'function') {
          throw new UsageError(`keys list --all needs a store with listAllKeys() (every owner's keys), and ${from} has none: list one owner with --owner`);
        }
        // A rotated key draws on its line's first key's quota: show that one's count, as keys.list does.
        records = withLineQuotas(await listAllKeys.call(store));
      } else {
        records = await ks.keys.list(owner as string);
      }
      if (ctx.json) ctx.printJson(records.map((r) => listedKeyJson(r, now)));
      else if (records.length === 0) ctx.print(all ? 'No keys.\n' : `No keys for owner ${owner}.\n`);
      else ctx.print(keysTable(records, now, { owner: all === true }));
      return EXIT.ok;
    },
  },

  'keys limits': {
    options: { ...LIMIT_OPTIONS, 'no-rate-limit': flag, 'no-quota': flag, remaining: text },
    positionals: ['keyId'],
    async run(ctx) {
      const id = ctx.args[0]!;
      const { values } = ctx;
      if (values['rate-limit'] !== undefined && values['no-rate-limit']) throw new UsageError('give --rate-limit or --no-rate-limit, not both');
      if (values.quota !== undefined && values['no-quota']) throw new UsageError('give --quota or --no-quota, not both');
      if (values['no-quota'] && values.remaining !== undefined) throw new UsageError('--remaining sets what is left of a quota: it cannot go with --no-quota');
      const given = limitOptions(values);
      const remaining = values.remaining === undefined ? undefined : count(values.remaining as string, '--remaining', 0);
      if (values['rate-limit'] === undefined && !values['no-rate-limit'] && values.quota === undefined && !values['no-quota'] && remaining === undefined) {
        throw new UsageError('keys limits needs a change: --rate-limit <n>/<window>, --no-rate-limit, --quota <n>, --no-quota or --remaining <n>');
      }
      const opened = await ctx.open('write', true);
      if (typeof (opened.store as { setKeyLimits?: unknown }).setKeyLimits !== 'function') {
        throw new UsageError(`keys limits needs a store with setKeyLimits, and ${opened.from} has none`);
      }
      const { ks } = opened;
      const limits: KeyLimitsInput = {};
      if (values['no-rate-limit']) limits.rateLimit = null;
      else if (given.rateLimit) limits.rateLimit = given.rateLimit;
      if (values['no-quota']) limits.quota = null;
      else if (given.quota) limits.quota = { ...given.quota, ...(remaining === undefined ? {} : { remaining }) };
      else if (remaining !== undefined) {
        // --remaining alone: the key's quota as it is, with that much left.
        const current = await ks.keys.get(id);
        if (current === null) throw new Error(`No key with id ${JSON.stringify(id)}`);
        if (current.quota == null) throw new UsageError(`key ${id} has no quota: set one with --quota <n> [--refill day|month]`);
        limits.quota = { limit: current.quota.limit, refill: current.quota.refill, remaining };
      }
      if (limits.quota != null) {
        if ((limits.quota.remaining ?? 0) > limits.quota.limit) throw new UsageError(`--remaining must be at most the quota's limit (${limits.quota.limit})`);
        needsQuotas(opened, ctx.name);
      }
      const record = await ks.keys.setLimits(id, limits);
      if (ctx.json) ctx.printJson(listedKeyJson(record, ctx.now()));
      else ctx.print(`Key ${id} "${record.name}": ${limitsText(record, ctx.now())}.\n`);
      return EXIT.ok;
    },
  },

  'keys revoke': {
    options: {},
    positionals: ['keyId'],
    async run(ctx) {
      const id = ctx.args[0]!;
      const { ks } = await ctx.open('write', true);
      const before = await ks.keys.get(id);
      const record = await ks.keys.revoke(id);
      if (ctx.json) ctx.printJson(listedKeyJson(record, ctx.now()));
      else if (before?.revokedAt) ctx.print(`Key ${id} was already revoked at ${when(record.revokedAt)}.\n`);
      else ctx.print(`Revoked key ${id} "${record.name}" at ${when(record.revokedAt)}.\n`);
      return EXIT.ok;
    },
  },

  'keys rotate': {
    options: { grace: text },
    positionals: ['keyId'],
    async run(ctx) {
      const id = ctx.args[0]!;
      const gracePeriodMs = ctx.values.grace === undefined ? 0 : duration(ctx.values.grace as string, '--grace');
      // A grace past the last representable date would store no expiry: the old key would never stop.
      later(ctx.now(), gracePeriodMs, '--grace');
      const { ks } = await ctx.open('write', true);
      const { key, record } = await ks.keys.rotate(id, { gracePeriodMs });
      if (ctx.json) {
        ctx.printKey(`${JSON.stringify({ key, record: keyJson(record) }, null, 2)}\n`);
        return EXIT.ok;
      }
      const old = await ks.keys.get(id);
      const until = old?.revokedAt ?? old?.expiresAt ?? null;
      ctx.printKey(
        `Rotated key ${id} to ${record.id} "${record.name}".\n\n` +
          `  ${key}\n\n` +
          'Store it now: this key will not be shown again.\n' +
          (gracePeriodMs === 0 || until === null
            ? `The old key ${id} no longer works.\n`
            : `The old key ${id} keeps working until ${when(until)}.\n`),
      );
      return EXIT.ok;
    },
  },

  'keys usage': {
    options: {},
    positionals: ['keyId'],
    async run(ctx) {
      const { ks } = await ctx.open('read', true);
      const usage = usageJson(await ks.keys.usage(ctx.args[0]!));
      if (ctx.json) ctx.printJson(usage);
      else {
        ctx.print(`Key ${usage.keyId}: ${usage.total} requests, last used ${usage.lastUsedAt === null ? 'never' : when(new Date(usage.lastUsedAt))}.\n`);
        if (usage.days.length > 0) ctx.print(table(['DAY (UTC)', 'REQUESTS'], usage.days.map((d) => [d.day, String(d.count)])));
      }
      return EXIT.ok;
    },
  },

  'keys verify': {
    options: { project: text, path: text },
    async run(ctx) {
      const given = ctx.values.path as string | undefined;
      if (given !== undefined && !given.startsWith('/')) throw new UsageError('--path must start with /');
      const key = await readKey(ctx, 'verify');
      const { ks, options } = await ctx.open('read');
      // The server's own header names and project-optional paths; by default the first of those paths.
      const path = given ?? options?.projectOptionalPaths?.[0] ?? '/validate';
      const keyHeader = (options?.header ?? 'x-api-key').toLowerCase();
      const projectHeader = (options?.projectHeader ?? 'x-project-id').toLowerCase();
      const project = ctx.values.project as string | undefined;
      const result = await ks.authenticate({
        headers: { [keyHeader]: key, ...(project === undefined ? {} : { [projectHeader]: project }) },
        method: 'GET',
        path,
      });
      if (result.ok) {
        const { auth } = result;
        if (ctx.json) ctx.printJson({ ok: true, status: 200, auth });
        else {
          ctx.print(
            `200 ok: key ${auth.keyId} "${auth.keyName}" of owner ${auth.ownerId}, ${auth.level} level, ` +
              `project ${auth.projectId ?? `none (${path} is project-optional)`}.\n`,
          );
        }
        return EXIT.ok;
      }
      const { status, code, detail } = result.error;
      if (ctx.json) ctx.printJson({ ok: false, status, code, detail });
      else ctx.print(`${status} ${code}: ${detail}\n`);
      return EXIT.notFound;
    },
  },

  'db migrate': {
    options: {},
    async run(ctx) {
      let result: { schema: string; from: number; to: number };
      const target = databaseTarget(ctx.values, ctx.env, ctx.config !== undefined);
      if (target?.kind === 'sqlite') throw new UsageError('db migrate is for PostgreSQL (--database-url or DATABASE_URL); a SQLite file is created and upgraded when a writing command opens it');
      if (target?.kind === 'postgres') {
        try {
          result = await migratePostgres({ connectionString: target.url, schema: target.schema });
        } catch (error) {
          throw postgresError(error, target.url);
        }
      } else if (ctx.config) {
        const { store } = (await ctx.options())!;
        const migrateStore = (store as { migrate?: () => Promise<{ schema: string; from: number; to: number }> }).migrate;
        if (typeof migrateStore !== 'function') throw new UsageError(`the store in ${ctx.config.shown} has no migrate(): db migrate is for a PostgresStore`);
        result = await migrateStore.call(store);
      } else {
        throw new UsageError('db migrate needs a PostgreSQL database: pass --database-url <url> or set DATABASE_URL');
      }
      if (ctx.json) ctx.printJson(result);
      else if (result.from === result.to) ctx.print(`Schema ${result.schema} is up to date (version ${result.to}).\n`);
      else ctx.print(`Migrated schema ${result.schema} from version ${result.from} to ${result.to}.\n`);
      return EXIT.ok;
    },
  },
};

/** Commands that read a key from KEYSCOPE_API_KEY or stdin and take no arguments. */
const READS_KEY = new Set(['keys verify', 'keys import']);

/**
 * Run the CLI on `argv` (without the node and script paths); resolves to the exit code.
 * Never throws: every failure is a message on `io.stderr` and a non-zero code.
 *
 * @example process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env })
 */
export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const fail = (code: number, message: string) => {
    io.stderr.write(`keyscope: ${redact(message).replace(/\s*\n\s*/g, ' ')}\n`);
    return code;
  };
  let opened: Opened | undefined;
  /** The config's options once loaded: its store is closed after the command, whatever happened. */
  let loaded: Promise<KeyscopeOptions | undefined> | undefined;
  try {
    refuseKeyMaterial(argv);
    const [group, command] = commandWords(argv);
    if (group === undefined) {
      if (argv.includes('--help') || argv.includes('-h') || argv[0] === 'help') {
        io.stdout.write(USAGE);
        return EXIT.ok;
      }
      if (argv.includes('--version')) {
        io.stdout.write(`${VERSION}\n`);
        return EXIT.ok;
      }
      throw new UsageError("missing command; run 'keyscope --help' for usage");
    }
    const name = `${group} ${command ?? ''}`.trim();
    const spec = COMMANDS[name];
    if (!spec) throw new UsageError(`unknown command '${name}'; run 'keyscope --help' for usage`);

    const { values, positionals } = parse(argv, spec.options);
    if (values.help) {
      io.stdout.write(USAGE);
      return EXIT.ok;
    }
    if (values.version) {
      io.stdout.write(`${VERSION}\n`);
      return EXIT.ok;
    }
    const args = positionals.slice(2);
    const expected = spec.positionals ?? [];
    if (READS_KEY.has(name) && args.length > 0) {
      throw new UsageError(`${name} takes no arguments: the key is read from KEYSCOPE_API_KEY or stdin, never from the command line`);
    }
    if (args.length < expected.length) throw new UsageError(`${name} needs <${expected[args.length]}>`);
    if (args.length > expected.length) throw new UsageError(`${name} takes ${expected.length === 0 ? 'no arguments' : `one argument, <${expected[0]}>`}`);
    for (const option of spec.required ?? []) {
      if (values[option] === undefined) throw new UsageError(`${name} needs --${option}`);
    }

    const env = io.env ?? {};
    const cwd = io.cwd ?? process.cwd();
    const json = values.json === true;
    const config = findConfig(values.config as string | undefined, env, cwd);
    for (const option of ['database-url', 'schema'] as const) {
      if (config && values[option] !== undefined) {
        throw new UsageError(`--${option} cannot be used with a config (${config.shown}): the config names the store; drop --${option}`);
      }
    }
    if (config && values.db !== undefined) {
      throw new UsageError(
        config.via === '--config'
          ? '--db and --config both name the store: a config uses its own store; drop --db'
          : config.via === 'KEYSCOPE_CONFIG'
            ? `--db cannot be used with KEYSCOPE_CONFIG (${config.shown}): the config names the store; drop --db or unset KEYSCOPE_CONFIG`
            : `--db cannot be used with ${config.shown}, found in this directory: the config names the store; drop --db or run from another directory`,
      );
    }
    const options = () => (loaded ??= config ? loadConfig(config) : Promise.resolve(undefined));
    const now = io.now ?? Date.now;
    const ctx: Context = {
      name,
      values,
      args,
      io,
      env,
      now,
      json,
      config,
      options,
      async open(mode, admin = false) {
        opened ??= config ? await openConfig(config, (await options())!, now) : await openDatabase(databaseTarget(values, env, false)!, mode, now);
        if (admin) {
          const missing = ADMIN_METHODS.filter((method) => typeof (opened!.store as unknown as Record<string, unknown>)[method] !== 'function');
          if (missing.length > 0) {
            throw new UsageError(`${name} needs key administration, but ${opened.from} has no ${missing.join(', ')} (a read-only KeyStore can only verify keys)`);
          }
        }
        return opened;
      },
      print: (output) => void io.stdout.write(redact(output)),
      printJson: (value) => void io.stdout.write(redact(`${JSON.stringify(value, null, 2)}\n`)),
      printKey: (output) => void io.stdout.write(output),
    };
    return await spec.run(ctx);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) return fail(EXIT.usage, error.message);
    const code = (error as { code?: unknown })?.code;
    const message = error instanceof Error ? error.message : String(error);
    if (code === 'invalid_argument') return fail(EXIT.usage, message);
    // A PostgreSQL schema that is missing, older or newer, or of something else: bad input, like a non-keyscope SQLite file.
    if (typeof code === 'string' && code.startsWith('postgres_')) return fail(EXIT.usage, message);
    // not_found, and anything unexpected (a locked or broken file): not a usage problem.
    return fail(EXIT.notFound, message);
  } finally {
    await opened?.ks.close().catch(() => {});
    // The store is the CLI's (with --db) or was made by the config module for this run: close it.
    const store = opened?.store ?? (await loaded?.catch(() => undefined))?.store;
    await Promise.resolve()
      .then(() => (store as { close?: () => unknown } | undefined)?.close?.())
      .catch(() => {});
  }
}

/** A keyscope over a config's options, with what decides a key's validity and scope kept as configured. */
async function openConfig(source: ConfigSource, options: KeyscopeOptions, now: () => number): Promise<Opened> {
  let ks: Keyscope;
  try {
    // Not traffic: no usage recorded, no failed-attempt throttle (there is no client address), no
    // events. The clock is the CLI's, as for the expiries it computes.
    ks = createKeyscope({ ...options, usage: false, throttle: false, onEvent: undefined, now });
  } catch (error) {
    throw new ConfigError(`${source.shown}: ${(error as Error).message}`);
  }
  return { ks, store: options.store, projects: options.projects ?? options.store, options, from: `the store in ${source.shown}` };
}

type DatabaseTarget = { kind: 'sqlite'; filename: string } | { kind: 'postgres'; url: string; schema: string | undefined };

/**
 * The database named on the command line or in the environment, when there is no config:
 * `--db` (SQLite) or `--database-url` (PostgreSQL), else `KEYSCOPE_DB` or `DATABASE_URL`, else
 * `./keyscope.db`. Both flags, or both variables without a flag, are a usage error: which one was
 * meant is not for the CLI to guess. With a config, `undefined` (the config names the store).
 */
function databaseTarget(values: Values, env: Record<string, string | undefined>, hasConfig: boolean): DatabaseTarget | undefined {
  if (hasConfig) return undefined;
  const db = values.db as string | undefined;
  const url = values['database-url'] as string | undefined;
  const schema = values.schema as string | undefined;
  if (db !== undefined && url !== undefined) throw new UsageError('--db (SQLite) and --database-url (PostgreSQL) both name the store: give one');
  let target: DatabaseTarget;
  if (url !== undefined) target = { kind: 'postgres', url, schema };
  else if (db !== undefined) target = { kind: 'sqlite', filename: db };
  else if (env.DATABASE_URL && env.KEYSCOPE_DB) {
    throw new UsageError('both KEYSCOPE_DB (SQLite) and DATABASE_URL (PostgreSQL) are set: pass --db <file> or --database-url <url> to say which store');
  } else if (env.DATABASE_URL) target = { kind: 'postgres', url: env.DATABASE_URL, schema };
  else target = { kind: 'sqlite', filename: env.KEYSCOPE_DB || './keyscope.db' };
  if (target.kind === 'postgres' && target.url === '') throw new UsageError('--database-url needs a postgres:// URL');
  if (target.kind === 'sqlite' && schema !== undefined) throw new UsageError('--schema is for PostgreSQL: use it with --database-url or DATABASE_URL');
  return target;
}

/** A database URL for messages: no user or password. */
function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return 'the database URL';
  }
}

/** A PostgreSQL failure as the CLI reports it: a database that is not ready is bad input (exit 2), a connection failure is not. */
function postgresError(error: unknown, url: string): Error {
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof TypeError) return new UsageError(message);
  if (typeof code === 'string' && code.startsWith('postgres_')) return new UsageError(message);
  const reason = message || (typeof code === 'string' ? code : 'connection failed');
  return new Error(`cannot use PostgreSQL at ${shownUrl(url)}: ${reason}`);
}

/** The store named by {@link databaseTarget}: a PostgresStore, or the SQLite file. */
async function openDatabase(target: DatabaseTarget, mode: 'read' | 'write' | 'create', now: () => number): Promise<Opened> {
  if (target.kind === 'postgres') {
    let store: PostgresStore;
    try {
      // The CLI hears no changes (its one command does not cache); servers hear its writes by NOTIFY.
      store = new PostgresStore({ connectionString: target.url, schema: target.schema, listen: false });
    } catch (error) {
      throw postgresError(error, target.url);
    }
    try {
      // Never migrates: an unmigrated database is refused, naming `keyscope db migrate`.
      await store.ready();
    } catch (error) {
      await store.close().catch(() => {});
      throw postgresError(error, target.url);
    }
    return { ks: createKeyscope({ store, usage: false, now }), store, projects: store, options: undefined, from: `the PostgreSQL store (schema ${store.schema})` };
  }
  const { filename } = target;
  if (filename === '') throw new UsageError('--db needs a file name');
  // Only the commands that create may create: the others never leave an empty database
  // behind in the wrong directory (read-only opens refuse a missing file themselves).
  if (mode === 'write' && filename !== ':memory:' && !existsSync(filename)) {
    throw new UsageError(`no keyscope database at ${filename}; pass --db <file> or set KEYSCOPE_DB`);
  }
  let store: SqliteStore;
  try {
    // Reading commands open read-only: no WAL switch, no migration, nothing written.
    store = new SqliteStore({ filename, readonly: mode === 'read' && filename !== ':memory:' });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'sqlite_file_missing') throw new UsageError(`no keyscope database at ${filename}; pass --db <file> or set KEYSCOPE_DB`);
    if (code === 'sqlite_not_keyscope') throw new UsageError(`${(error as Error).message}; pass the keyscope database with --db <file>`);
    throw new UsageError(`cannot open ${filename}: ${(error as Error).message}`);
  }
  return { ks: createKeyscope({ store, usage: false, now }), store, projects: store, options: undefined, from: `the SQLite store ${filename}` };
}

/** `user level: every project of <owner>` or `project level: project <id>`. */
function describeScope(record: { level: string; projectId: string | null; ownerId: string }): string {
  return `${record.level} level: ${record.level === 'project' ? `project ${record.projectId}` : `every project of ${record.ownerId}`}`;
}

/** The checked scope and expiry of a new key (`keys create`, `keys import`). */
function keyScope(ctx: Context) {
  const { values } = ctx;
  const level = values.level;
  if (level !== 'user' && level !== 'project') throw new UsageError('--level must be user or project');
  if (level === 'project' && values.project === undefined) throw new UsageError('a project-level key needs --project <id>');
  if (values['expires-in'] !== undefined && values['expires-at'] !== undefined) {
    throw new UsageError('give --expires-in or --expires-at, not both');
  }
  let expiresAt: Date | null = null;
  if (values['expires-in'] !== undefined) expiresAt = new Date(later(ctx.now(), duration(values['expires-in'] as string, '--expires-in'), '--expires-in'));
  if (values['expires-at'] !== undefined) expiresAt = instant(values['expires-at'] as string, '--expires-at');
  return {
    ownerId: values.owner as string,
    name: values.name as string,
    level,
    projectId: (values.project as string | undefined) ?? null,
    expiresAt,
    // Left out when not given, so the config's per-level quota defaults still apply.
    ...limitOptions(values),
  } as const;
}

/** `--rate-limit`, `--quota` and `--refill`, checked; a field is absent when its flag is. */
function limitOptions(values: Values): Pick<KeyLimitsInput, 'rateLimit'> & { quota?: { limit: number; refill: 'day' | 'month' | null } } {
  const out: ReturnType<typeof limitOptions> = {};
  if (values['rate-limit'] !== undefined) out.rateLimit = rateLimit(values['rate-limit'] as string);
  const refill = values.refill as string | undefined;
  if (refill !== undefined && refill !== 'day' && refill !== 'month') throw new UsageError('--refill must be day or month');
  if (values.quota === undefined) {
    if (refill !== undefined) throw new UsageError('--refill says when a quota starts again: give it with --quota <n>');
  } else {
    out.quota = { limit: count(values.quota as string, '--quota', 1), refill: refill ?? null };
  }
  return out;
}

/**
 * `<requests>/<window>`: `100/min`, `10/s`, `5000/hour`, `20/60s`. Strict: no spaces, signs,
 * decimals or leading zeros, and only these units.
 */
function rateLimit(value: string): { limit: number; windowMs: number } {
  const match = RATE.exec(value);
  if (!match) {
    throw new UsageError('--rate-limit must be <requests>/<window>, like 100/min, 10/s, 5000/hour, 1000/day or 20/60s');
  }
  const limit = Number(match[1]);
  const windowMs = Number(match[2] ?? 1) * RATE_UNIT_MS[match[3]![0]!]!;
  if (limit > MAX_RATE) throw new UsageError(`--rate-limit allows at most ${MAX_RATE} requests per window`);
  if (windowMs < MIN_WINDOW_MS || windowMs > MAX_WINDOW_MS) throw new UsageError('--rate-limit needs a window from 1s to 366d');
  return { limit, windowMs };
}

/** A whole number of requests, at least `min`, written plainly (`50`, not `5e1`, `+50` or `050`). */
function count(value: string, option: string, min: number): number {
  const n = COUNT.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${option} must be a whole number${min > 0 ? ` of at least ${min}` : ' (0 or more)'}`);
  return n;
}

/** A key with a quota is counted by the store: refuse, with exit 2, a store that cannot. */
function needsQuotas(opened: Opened, command: string): void {
  if (typeof (opened.store as { consumeQuota?: unknown }).consumeQuota !== 'function') {
    throw new UsageError(`${command} --quota needs a store that counts quotas (consumeQuota), and ${opened.from} has none`);
  }
}

/**
 * Refuse any argument that looks like a key or most of one, naming where it was and never
 * echoing it: a key pasted where an id belongs must not reach stdout, stderr or the store.
 */
function refuseKeyMaterial(argv: readonly string[]): void {
  argv.forEach((arg, i) => {
    if (!looksLikeKey(arg)) return;
    const previous = argv[i - 1];
    // A database URL may carry a long random password: not a key (and never printed: messages show the host only).
    if (previous === '--database-url' || arg.startsWith('--database-url=')) return;
    const where = /^--?[A-Za-z][\w-]*=/.test(arg)
      ? arg.slice(0, arg.indexOf('='))
      : previous !== undefined && /^--?[A-Za-z][\w-]*$/.test(previous)
        ? previous
        : `argument ${i + 1}`;
    throw new UsageError(
      `${where} looks like an API key (not shown); pass an id there. keys verify reads a key from KEYSCOPE_API_KEY or stdin, never from the command line`,
    );
  });
}

/** The first two words that are not options or option values: the command. */
function commandWords(argv: readonly string[]): (string | undefined)[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    if (arg.startsWith('-')) {
      // Of the options that may precede the command, these take a value: --config, --db, --database-url, --schema.
      if (GLOBAL_VALUED.has(arg)) i++;
      continue;
    }
    words.push(arg);
  }
  return [words[0], words[1]];
}

function parse(argv: readonly string[], options: Options): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
    return { values: values as Values, positionals };
  } catch (error) {
    // parseArgs quotes what it rejects; say it in our words so nothing typed is echoed whole.
    const message = (error as Error).message;
    const option = /'(--?[A-Za-z][\w-]*)/.exec(message)?.[1];
    switch ((error as { code?: string }).code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new UsageError(`unknown option${option ? ` ${option}` : ''}; run 'keyscope --help' for usage`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        if (/does not take/.test(message)) throw new UsageError(`${option ?? 'a flag'} takes no value`);
        throw new UsageError(`${option ?? 'an option'} needs a value`);
      default:
        throw new UsageError('could not read the command line; run \'keyscope --help\' for usage');
    }
  }
}

function identifier(value: unknown, option: string): string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw new UsageError(`${option} must be 1-128 characters of letters, digits, '.', '_', ':' or '-'`);
  }
  return value;
}

function displayName(value: string, option: string): string {
  const name = value.trim();
  if (name.length === 0) throw new UsageError(`${option} must not be empty`);
  if (name.length > 64) throw new UsageError(`${option} must be at most 64 characters, got ${name.length}`);
  if (/[\x00-\x1f\x7f]/.test(name)) throw new UsageError(`${option} must not contain control characters`);
  return name;
}

/** `<n>s|m|h|d|w|y` in milliseconds (`w` 7 days, `y` 365 days). */
function duration(value: string, option: string): number {
  const match = DURATION.exec(value);
  if (!match) throw new UsageError(`${option} must be a duration like 30s, 15m, 24h, 30d, 2w or 1y`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** `now + ms` in epoch ms, refusing an instant past the last date a Date (and the store) can hold. */
function later(now: number, ms: number, option: string): number {
  const at = now + ms;
  if (at > MAX_TIME) throw new UsageError(`${option} is too far in the future: it would end after the last date that can be stored (+275760-09-13)`);
  return at;
}

/**
 * An ISO-8601 date (UTC midnight) or date-time with a zone; a time without a zone is ambiguous.
 * Every field is checked: `Date` would roll 2030-02-31 over to March 3 and accept 24:00.
 */
function instant(value: string, option: string): Date {
  const match = ISO_8601.exec(value);
  if (!match) {
    throw new UsageError(`${option} must be an ISO-8601 date or date-time with a zone, like 2030-01-31 or 2030-01-31T12:00:00Z`);
  }
  const [year, month, day, hour = 0, minute = 0, second = 0] = match.slice(1, 7).map((part) => (part === undefined ? undefined : Number(part))) as number[];
  const ms = match[7] === undefined ? 0 : Number(match[7].padEnd(3, '0'));
  const sign = match[8] === '-' ? -1 : 1;
  const [offsetHours, offsetMinutes] = [Number(match[9] ?? 0), Number(match[10] ?? 0)];
  if (month! < 1 || month! > 12 || day! < 1 || day! > daysIn(year!, month!)) {
    throw new UsageError(`${option} ${value} is not a real date`);
  }
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) {
    throw new UsageError(`${option} ${value} is not a real time (hours 00-23, minutes and seconds 00-59)`);
  }
  const date = new Date(0);
  date.setUTCFullYear(year!, month! - 1, day!);
  date.setUTCHours(hour, minute, second, ms);
  return new Date(date.getTime() - sign * (offsetHours * 60 + offsetMinutes) * 60_000);
}

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** The key for `keys verify` / `keys import`: `KEYSCOPE_API_KEY`, else stdin. Never argv: argv shows in `ps` and shell history. */
async function readKey(ctx: Context, purpose: 'verify' | 'import'): Promise<string> {
  const fromEnv = ctx.env.KEYSCOPE_API_KEY;
  if (fromEnv) return fromEnv.trim();
  const stdin = ctx.io.stdin;
  if (!stdin || stdin.isTTY) throw new UsageError(`no key to ${purpose}: set KEYSCOPE_API_KEY or pipe the key on stdin`);
  let input = '';
  for await (const chunk of stdin) {
    input += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    // A key is 40-odd characters; a big input is not a key.
    if (input.length > 4_096) break;
  }
  const key = input.trim();
  if (key === '') throw new UsageError(`no key to ${purpose}: set KEYSCOPE_API_KEY or pipe the key on stdin`);
  return key;
}
