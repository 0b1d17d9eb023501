import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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

/** An environment without the caller's KEYSCOPE_* settings, plus `extra`. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('KEYSCOPE_')) env[name] = value;
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
