import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** The built binary: the README's test command builds every package before vitest runs. */
export const BIN = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

export function assertBuilt(): void {
  if (!existsSync(BIN)) {
    throw new Error(`${BIN} is missing: build first (npx -y pnpm@12.4.2 -r --filter "./packages/*" build)`);
  }
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** An environment without the caller's KEYSCOPE_* settings and DATABASE_URL (both choose a store), plus `extra`. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('KEYSCOPE_') && name !== 'DATABASE_URL') env[name] = value;
  return { ...env, ...extra };
}

/** Run `node bin.js ...args` in a child process; `input` goes to its stdin (closed either way). */
export function runCli(args: string[], options: { env?: Record<string, string>; input?: string; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: cleanEnv(options.env ?? {}),
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

type RunOptions = { env?: Record<string, string>; input?: string; cwd?: string };

/**
 * A test file's CLI runs: each in `base().cwd` with `base().env` under the caller's, its stderr
 * kept in `output`; `json` expects success and parses stdout, `fails` expects one clean line on
 * stderr (no stack) and nothing on stdout.
 */
export function cliSession(base: () => { cwd: string; env: Record<string, string> }) {
  const output: string[] = [];
  async function cli(args: string[], options: RunOptions = {}): Promise<Run> {
    const { cwd, env } = base();
    const run = await runCli(args, { cwd, ...options, env: { ...env, ...options.env } });
    output.push(run.stderr);
    return run;
  }
  async function json<T = any>(args: string[], options: RunOptions = {}): Promise<T> {
    const run = await cli([...args, '--json'], options);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    return JSON.parse(run.stdout) as T;
  }
  async function fails(code: 1 | 2, args: string[], options: RunOptions = {}): Promise<string> {
    const run = await cli(args, options);
    expect({ code: run.code, stdout: run.stdout }).toEqual({ code, stdout: '' });
    expect(run.stderr).toMatch(/^keyscope: [^\n]+\n$/);
    expect(run.stderr).not.toMatch(/node:internal|\(file:\/\/|\s{2,}at \S/);
    return run.stderr;
  }
  return { cli, json, fails, output };
}
