import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createKeyscope, ID_PATTERN, type Keyscope } from '@keyscope/core';
import { SqliteStore } from '@keyscope/sqlite';
import { keyJson, keysTable, listedKeyJson, looksLikeKey, projectsTable, redact, usageJson, when, table } from './format.js';

/** Where {@link main} reads and writes; `process` streams in the real binary. */
export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Read by `keys verify` when `KEYSCOPE_API_KEY` is not set. */
  stdin?: AsyncIterable<string | Uint8Array> & { isTTY?: boolean };
  /** Environment (`KEYSCOPE_DB`, `KEYSCOPE_API_KEY`). Default: none. */
  env?: Record<string, string | undefined>;
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
                 [--expires-in 30d | --expires-at <ISO-8601>]
  keys list      --owner <ownerId>
  keys revoke    <keyId>
  keys rotate    <keyId> [--grace 24h]
  keys usage     <keyId>
  keys verify    [--project <id>] [--path /validate]
                 (the key is read from KEYSCOPE_API_KEY or stdin, never from the command line)

Options on every command:
  --db <file>    SQLite database (default: $KEYSCOPE_DB, else ./keyscope.db)
  --json         print one JSON document on stdout
  -h, --help     show this help

Durations: <n>s, <n>m, <n>h or <n>d.
Exit codes: 0 success, 1 not found or verification refused, 2 bad usage or bad input.
`;

/** Bad usage or bad input: exit 2 with this one-line message. */
class UsageError extends Error {}

type Values = Record<string, string | boolean | undefined>;
type Options = NonNullable<ParseArgsConfig['options']>;

interface Context {
  values: Values;
  args: string[];
  io: CliIO;
  env: Record<string, string | undefined>;
  now: () => number;
  json: boolean;
  /**
   * Open the store and a keyscope over it (without usage recording: the CLI is not traffic).
   * `read` opens read-only; `write` needs an existing file; `create` may create it.
   */
  open(mode: 'read' | 'write' | 'create'): { store: SqliteStore; ks: Keyscope };
  /** Write to stdout with anything shaped like a key redacted. */
  print(text: string): void;
  printJson(value: unknown): void;
  /** Write output that carries a new key (create, rotate), and nothing else unredacted. */
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
const GLOBAL_OPTIONS: Options = { db: text, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } };
const DURATION = /^(\d{1,9})(s|m|h|d)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(?:Z|([+-])(\d{2}):(\d{2})))?$/;
/** The last instant a JavaScript Date (and so a stored expiry) can hold. */
const MAX_TIME = 8.64e15;

const COMMANDS: Record<string, Command> = {
  'projects add': {
    options: { owner: text, name: text, id: text },
    required: ['owner', 'name'],
    async run(ctx) {
      const ownerId = identifier(ctx.values.owner, '--owner');
      const name = displayName(ctx.values.name as string, '--name');
      const id = ctx.values.id === undefined ? `proj_${randomBytes(8).toString('hex')}` : identifier(ctx.values.id, '--id');
      const { store } = ctx.open('create');
      // Adding must never hand an existing project (and its keys' reach) to another owner: the
      // insert itself refuses an existing id, so two concurrent adds cannot both pass a check.
      await store.createProject({ id, ownerId, name });
      const project = { id, ownerId, name };
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
      const { store } = ctx.open('read');
      const projects = await store.listProjects(ownerId);
      if (ctx.json) ctx.printJson(projects);
      else ctx.print(projects.length === 0 ? `No projects for owner ${ownerId}.\n` : projectsTable(projects));
      return EXIT.ok;
    },
  },

  'keys create': {
    options: { owner: text, name: text, level: text, project: text, 'expires-in': text, 'expires-at': text },
    required: ['owner', 'name', 'level'],
    async run(ctx) {
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
      const { ks } = ctx.open('create');
      const { key, record } = await ks.keys.create({
        ownerId: values.owner as string,
        name: values.name as string,
        level,
        projectId: (values.project as string | undefined) ?? null,
        expiresAt,
      });
      if (ctx.json) ctx.printKey(`${JSON.stringify({ key, record: keyJson(record) }, null, 2)}\n`);
      else {
        const scope = record.level === 'project' ? `project ${record.projectId}` : `every project of ${record.ownerId}`;
        ctx.printKey(
          `Created key ${record.id} "${record.name}" (${record.level} level: ${scope}; expires ${when(record.expiresAt, 'never')}).\n\n` +
            `  ${key}\n\n` +
            'Store it now: this key will not be shown again.\n',
        );
      }
      return EXIT.ok;
    },
  },

  'keys list': {
    options: { owner: text },
    required: ['owner'],
    async run(ctx) {
      const { ks } = ctx.open('read');
      const records = await ks.keys.list(ctx.values.owner as string);
      if (ctx.json) ctx.printJson(records.map((r) => listedKeyJson(r, ctx.now())));
      else ctx.print(records.length === 0 ? `No keys for owner ${ctx.values.owner}.\n` : keysTable(records, ctx.now()));
      return EXIT.ok;
    },
  },

  'keys revoke': {
    options: {},
    positionals: ['keyId'],
    async run(ctx) {
      const id = ctx.args[0]!;
      const { ks } = ctx.open('write');
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
      const { ks } = ctx.open('write');
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
      const { ks } = ctx.open('read');
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
      const path = (ctx.values.path as string | undefined) ?? '/validate';
      if (!path.startsWith('/')) throw new UsageError('--path must start with /');
      const key = await readKey(ctx);
      const { ks } = ctx.open('read');
      const project = ctx.values.project as string | undefined;
      const result = await ks.authenticate({
        headers: { 'x-api-key': key, ...(project === undefined ? {} : { 'x-project-id': project }) },
        method: 'GET',
        path,
      });
      if (result.ok) {
        const { auth } = result;
        if (ctx.json) ctx.printJson({ ok: true, status: 200, auth });
        else {
          ctx.print(
            `200 ok: key ${auth.keyId} "${auth.keyName}" of owner ${auth.ownerId}, ${auth.level} level, ` +
              `project ${auth.projectId ?? 'none (project-optional route)'}.\n`,
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
};

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
  let open: { store: SqliteStore; ks: Keyscope } | undefined;
  try {
    refuseKeyMaterial(argv);
    const [group, command] = commandWords(argv);
    if (group === undefined) {
      if (argv.includes('--help') || argv.includes('-h') || argv[0] === 'help') {
        io.stdout.write(USAGE);
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
    const args = positionals.slice(2);
    const expected = spec.positionals ?? [];
    if (name === 'keys verify' && args.length > 0) {
      throw new UsageError('keys verify takes no arguments: the key is read from KEYSCOPE_API_KEY or stdin, never from the command line');
    }
    if (args.length < expected.length) throw new UsageError(`${name} needs <${expected[args.length]}>`);
    if (args.length > expected.length) throw new UsageError(`${name} takes ${expected.length === 0 ? 'no arguments' : `one argument, <${expected[0]}>`}`);
    for (const option of spec.required ?? []) {
      if (values[option] === undefined) throw new UsageError(`${name} needs --${option}`);
    }

    const env = io.env ?? {};
    const now = io.now ?? Date.now;
    const json = values.json === true;
    const ctx: Context = {
      values,
      args,
      io,
      env,
      now,
      json,
      open(mode) {
        if (open) return open;
        const filename = (values.db as string | undefined) ?? (env.KEYSCOPE_DB || './keyscope.db');
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
        open = { store, ks: createKeyscope({ store, usage: false, now }) };
        return open;
      },
      print: (output) => void io.stdout.write(redact(output)),
      printJson: (value) => void io.stdout.write(redact(`${JSON.stringify(value, null, 2)}\n`)),
      printKey: (output) => void io.stdout.write(output),
    };
    return await spec.run(ctx);
  } catch (error) {
    if (error instanceof UsageError) return fail(EXIT.usage, error.message);
    const code = (error as { code?: unknown })?.code;
    const message = error instanceof Error ? error.message : String(error);
    if (code === 'invalid_argument') return fail(EXIT.usage, message);
    // not_found, and anything unexpected (a locked or broken file): not a usage problem.
    return fail(EXIT.notFound, message);
  } finally {
    if (open) {
      await open.ks.close().catch(() => {});
      open.store.close();
    }
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
      // Only --db takes a value among the options that may precede the command.
      if (arg === '--db') i++;
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

/** `<n>s|m|h|d` in milliseconds. */
function duration(value: string, option: string): number {
  const match = DURATION.exec(value);
  if (!match) throw new UsageError(`${option} must be a duration like 30s, 15m, 24h or 30d`);
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

/** The key for `keys verify`: `KEYSCOPE_API_KEY`, else stdin. Never argv: argv shows in `ps` and shell history. */
async function readKey(ctx: Context): Promise<string> {
  const fromEnv = ctx.env.KEYSCOPE_API_KEY;
  if (fromEnv) return fromEnv.trim();
  const stdin = ctx.io.stdin;
  if (!stdin || stdin.isTTY) throw new UsageError('no key to verify: set KEYSCOPE_API_KEY or pipe the key on stdin');
  let input = '';
  for await (const chunk of stdin) {
    input += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    // A key is 40-odd characters; a big input is not a key.
    if (input.length > 4_096) break;
  }
  const key = input.trim();
  if (key === '') throw new UsageError('no key to verify: set KEYSCOPE_API_KEY or pipe the key on stdin');
  return key;
}
