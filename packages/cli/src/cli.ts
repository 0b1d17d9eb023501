import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createKeyscope, ID_PATTERN, type Keyscope } from '@keyscope/core';
import { SqliteStore } from '@keyscope/sqlite';
import { keyJson, keysTable, listedKeyJson, projectsTable, redact, usageJson, when, table } from './format.js';

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
  /** Open the store and a keyscope over it (without usage recording: the CLI is not traffic). */
  open(options?: { create?: boolean }): { store: SqliteStore; ks: Keyscope };
  print(text: string): void;
  printJson(value: unknown): void;
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
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

const COMMANDS: Record<string, Command> = {
  'projects add': {
    options: { owner: text, name: text, id: text },
    required: ['owner', 'name'],
    async run(ctx) {
      const ownerId = identifier(ctx.values.owner, '--owner');
      const name = displayName(ctx.values.name as string, '--name');
      const id = ctx.values.id === undefined ? `proj_${randomBytes(8).toString('hex')}` : identifier(ctx.values.id, '--id');
      const { store } = ctx.open({ create: true });
      // Adding must never hand an existing project (and its keys' reach) to another owner.
      if (await store.getProject(id)) throw new UsageError(`project ${id} already exists`);
      await store.addProject({ id, ownerId, name });
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
      const { store } = ctx.open();
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
      if (values['expires-in'] !== undefined) expiresAt = new Date(ctx.now() + duration(values['expires-in'] as string, '--expires-in'));
      if (values['expires-at'] !== undefined) expiresAt = instant(values['expires-at'] as string, '--expires-at');
      const { ks } = ctx.open({ create: true });
      const { key, record } = await ks.keys.create({
        ownerId: values.owner as string,
        name: values.name as string,
        level,
        projectId: (values.project as string | undefined) ?? null,
        expiresAt,
      });
      if (ctx.json) ctx.printJson({ key, record: keyJson(record) });
      else {
        const scope = record.level === 'project' ? `project ${record.projectId}` : `every project of ${record.ownerId}`;
        ctx.print(
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
      const { ks } = ctx.open();
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
      const { ks } = ctx.open();
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
      const { ks } = ctx.open();
      const { key, record } = await ks.keys.rotate(id, { gracePeriodMs });
      if (ctx.json) {
        ctx.printJson({ key, record: keyJson(record) });
        return EXIT.ok;
      }
      const old = await ks.keys.get(id);
      const until = old?.revokedAt ?? old?.expiresAt ?? null;
      ctx.print(
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
      const { ks } = ctx.open();
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
      const { ks } = ctx.open();
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
      open(options = {}) {
        if (open) return open;
        const filename = (values.db as string | undefined) ?? (env.KEYSCOPE_DB || './keyscope.db');
        if (filename === '') throw new UsageError('--db needs a file name');
        // Reading commands never leave an empty database behind in the wrong directory.
        if (!options.create && filename !== ':memory:' && !existsSync(filename)) {
          throw new UsageError(`no keyscope database at ${filename}; pass --db <file> or set KEYSCOPE_DB`);
        }
        let store: SqliteStore;
        try {
          store = new SqliteStore({ filename });
        } catch (error) {
          throw new UsageError(`cannot open ${filename}: ${(error as Error).message}`);
        }
        open = { store, ks: createKeyscope({ store, usage: false, now }) };
        return open;
      },
      print: (output) => void io.stdout.write(output),
      printJson: (value) => void io.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
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

/** An ISO-8601 date (UTC midnight) or date-time with a zone; a time without a zone is ambiguous. */
function instant(value: string, option: string): Date {
  const date = new Date(value);
  if (!ISO_8601.test(value) || Number.isNaN(date.getTime())) {
    throw new UsageError(`${option} must be an ISO-8601 date or date-time with a zone, like 2030-01-31 or 2030-01-31T12:00:00Z`);
  }
  return date;
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
