/**
 * Runs the example API and the keyscope CLI as real processes, the way a user does: the
 * example's entry point and the CLI's bin, through tsx with examples/tsconfig.json mapping
 * `@keyscope/*` to the packages' sources (what `pnpm start` does), each on its own temp DB.
 *
 * The CLI loads examples/keyscope.config.ts with jiti, as it loads any app's config; jiti does not
 * read tsconfig paths, so that module's `@keyscope/sqlite` is the built package (`pnpm build`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = path.join(ROOT, 'examples/src/main.ts');
const CLI = path.join(ROOT, 'packages/cli/src/bin.ts');
const TSCONFIG = path.join(ROOT, 'examples/tsconfig.json');
export const FRAMEWORKS = ['express', 'koa', 'fastify', 'hono'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

const STARTUP_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;

function nodeEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  // No inherited KEYSCOPE_* or FRAMEWORK settings: each test says what it runs.
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(KEYSCOPE_|FRAMEWORK$|PORT$|HOST$)/.test(name)));
  return { ...base, TSX_TSCONFIG_PATH: TSCONFIG, ...extra };
}

/** A temp directory, removed by the returned function. */
export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'keyscope-e2e-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A temp dir and a list of started servers for one test file; both are cleaned up after it. */
export function processScope(): { tmp: ReturnType<typeof tempDir>; running: ServerProcess[] } {
  const tmp = tempDir();
  const running: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(running.map((server) => server.stop('SIGKILL')));
    tmp.remove();
  });
  return { tmp, running };
}

export interface ServerProcess {
  /** The framework it reports in its "listening on" line. */
  framework: Framework;
  port: number;
  /** Everything printed so far. */
  output(): string;
  /** Send a signal and wait for the exit code (`null` if a signal ended it). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Start `examples/src/main.ts` on a free port (PORT=0) and wait for its "listening on" line.
 * Without a framework, FRAMEWORK is left unset (the default).
 */
export async function startServer(framework: Framework | undefined, db: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: ROOT,
    env: nodeEnv({ ...(framework ? { FRAMEWORK: framework } : {}), PORT: '0', KEYSCOPE_DB: db, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const listening = await new Promise<{ framework: Framework; port: number }>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${framework ?? 'default'} server did not start within ${STARTUP_TIMEOUT_MS} ms:\n${text}`)), STARTUP_TIMEOUT_MS);
    const onData = () => {
      const match = /\((\w+)\) listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
      if (match) done(() => resolve({ framework: match[1] as Framework, port: Number(match[2]) }));
    };
    const onExit = (code: number | null) => fail(new Error(`${framework ?? 'default'} server exited with ${code} before listening:\n${text}`));
    const done = (then: () => void) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      then();
    };
    const fail = (error: Error) => done(() => {
      child.kill('SIGKILL');
      reject(error);
    });
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });

  return {
    ...listening,
    output: () => text,
    exited,
    stop: (signal = 'SIGTERM') => stopChild(child, exited, signal),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the `keyscope` CLI against `db`. */
export function cli(db: string, args: string[]): Promise<CliResult> {
  return cliRaw([...args, '--db', db]);
}

/**
 * Run the `keyscope` CLI with exactly these arguments, from the repository root (where `pnpm
 * keyscope` runs), with only the `KEYSCOPE_*` variables in `env` set.
 */
export function cliRaw(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      cwd: ROOT,
      env: nodeEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), STARTUP_TIMEOUT_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Split a printed command line as a POSIX shell would. Only plain words and single quotes are expected. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  const pattern = /'([^']*)'|([A-Za-z0-9_@%+=:,./-]+)|(\s+)/y;
  let word: string | undefined;
  let at = 0;
  for (let match = pattern.exec(line); match; match = pattern.exec(line)) {
    at = pattern.lastIndex;
    if (match[3] !== undefined) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + (match[1] ?? match[2]);
    }
  }
  if (at !== line.length) throw new Error(`not ready to paste (unexpected ${JSON.stringify(line[at])}): ${line}`);
  if (word !== undefined) words.push(word);
  return words;
}

/** A CLI line as the example prints it, `[NAME=value …] pnpm keyscope <args>`: its variables and the CLI's arguments. */
export function printedCli(line: string): { env: Record<string, string>; args: string[] } {
  const words = shellWords(line);
  const env: Record<string, string> = {};
  while (/^[A-Z_][A-Z0-9_]*=/.test(words[0] ?? '')) {
    const word = words.shift()!;
    env[word.slice(0, word.indexOf('='))] = word.slice(word.indexOf('=') + 1);
  }
  if (words[0] !== 'pnpm' || words[1] !== 'keyscope') throw new Error(`not a pnpm keyscope line: ${line}`);
  return { env, args: words.slice(2) };
}

/** Every `pnpm keyscope` line in a server's output, in order, trimmed. */
export function printedCliLines(output: string): string[] {
  return output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^(?:[A-Z_][A-Z0-9_]*=\S+ )*pnpm keyscope /.test(line));
}

/** Run a printed CLI line as printed (plus `extra` arguments), from the repository root. */
export function runPrintedCli(line: string, extra: string[] = []): Promise<CliResult> {
  const { env, args } = printedCli(line);
  return cliRaw([...args, ...extra], env);
}

/** `keyscope <args> --json`, expecting success; the parsed document. */
export async function cliJson<T>(db: string, args: string[]): Promise<T> {
  const result = await cli(db, [...args, '--json']);
  if (result.code !== 0) throw new Error(`keyscope ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

export interface CreatedKey {
  key: string;
  record: { id: string; name: string; ownerId: string; level: 'user' | 'project'; projectId: string | null };
}

/** Wait until `condition()` holds, checking every 25 ms, at most `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The two keys the first start prints. */
export function demoKeys(output: string): { user: string; project: string } {
  const user = /user-level key[^:]*:\s+(ks_\S+)/.exec(output)?.[1];
  const project = /project-level key[^:]*:\s+(ks_\S+)/.exec(output)?.[1];
  if (!user || !project) throw new Error(`no demo keys in the output:\n${output}`);
  return { user, project };
}

/** The keyscope lines of a server's output: one JSON object per line, `msg` "keyscope <event>". */
export function keyscopeLog(output: string): Array<Record<string, unknown>> {
  return output.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    const parsed = JSON.parse(line) as Record<string, unknown>;
    return typeof parsed.msg === 'string' && parsed.msg.startsWith('keyscope ') ? [parsed] : [];
  });
}
