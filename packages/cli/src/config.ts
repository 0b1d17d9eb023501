import { existsSync, statSync } from 'node:fs';
import { extname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { KeyscopeOptions } from '@keyscope/core';

/** The files `keyscope` looks for in its working directory when no config is named, in this order. */
export const CONFIG_FILES = Object.freeze([
  'keyscope.config.ts',
  'keyscope.config.mts',
  'keyscope.config.js',
  'keyscope.config.mjs',
  'keyscope.config.cjs',
]);

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts']);
const JAVASCRIPT = new Set(['.js', '.mjs', '.cjs']);

/** A config problem: the CLI exits 2 with this one-line message. */
export class ConfigError extends Error {}

/** Which config module a command uses, and how it was named (for messages). */
export interface ConfigSource {
  /** Absolute path. */
  file: string;
  /** How it was named: `--config <file>`, `KEYSCOPE_CONFIG`, or found in the working directory. */
  via: '--config' | 'KEYSCOPE_CONFIG' | 'found';
  /** The path as given, or `./<name>` when found. */
  shown: string;
}

/**
 * The config module in effect: `--config`, else `KEYSCOPE_CONFIG`, else the first of
 * {@link CONFIG_FILES} in `cwd`; `undefined` when there is none.
 */
export function findConfig(given: string | undefined, env: Record<string, string | undefined>, cwd: string): ConfigSource | undefined {
  const named = given !== undefined ? { path: given, via: '--config' as const } : env.KEYSCOPE_CONFIG ? { path: env.KEYSCOPE_CONFIG, via: 'KEYSCOPE_CONFIG' as const } : undefined;
  if (named) {
    if (named.path === '') throw new ConfigError(`${named.via} needs a file name`);
    const ext = extname(named.path);
    if (!TYPESCRIPT.has(ext) && !JAVASCRIPT.has(ext)) {
      throw new ConfigError(`${named.via} ${named.path}: a config must be a .ts, .mts, .cts, .js, .mjs or .cjs module`);
    }
    const file = isAbsolute(named.path) ? named.path : resolve(cwd, named.path);
    if (!existsSync(file) || !statSync(file).isFile()) throw new ConfigError(`no config file at ${named.path} (from ${named.via})`);
    return { file, via: named.via, shown: named.path };
  }
  for (const name of CONFIG_FILES) {
    const file = join(cwd, name);
    if (existsSync(file) && statSync(file).isFile()) return { file, via: 'found', shown: `./${name}` };
  }
  return undefined;
}

/**
 * Load a config module: its default export is the `createKeyscope` options (store included), a
 * function returning them, or a promise of them. TypeScript goes through jiti (Node 20 cannot run
 * it); JavaScript through Node's own `import()`, so it behaves exactly as it does in the server.
 */
export async function loadConfig(source: ConfigSource): Promise<KeyscopeOptions> {
  const { file, shown } = source;
  let exported: unknown;
  try {
    let namespace: Record<string, unknown>;
    if (TYPESCRIPT.has(extname(file))) {
      const { createJiti } = await import('jiti');
      // No cache files written next to the user's code or in node_modules: a config is small.
      namespace = (await createJiti(file, { fsCache: false, moduleCache: false, interopDefault: false }).import(file)) as Record<string, unknown>;
    } else {
      namespace = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    }
    if (namespace === null || typeof namespace !== 'object' || !('default' in namespace) || namespace.default === undefined) {
      throw new ConfigError(`${shown} has no default export: export default the createKeyscope options (or a function returning them)`);
    }
    exported = namespace.default;
    // A CommonJS build of `export default` puts it one level down.
    if (isObject(exported) && exported.__esModule === true && 'default' in exported) exported = exported.default;
    if (typeof exported === 'function') exported = await (exported as () => unknown)();
    else exported = await exported;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`cannot load ${shown}: ${firstLine(error)}`);
  }
  if (!isObject(exported)) {
    throw new ConfigError(`${shown} must export the createKeyscope options (an object with a store), got ${exported === null ? 'null' : typeof exported}`);
  }
  const store = exported.store;
  if (!isObject(store) || typeof store.findKeyByHash !== 'function') {
    throw new ConfigError(`${shown} must export the createKeyscope options with a store (a KeyStore such as SqliteStore or PostgresStore)`);
  }
  return exported as unknown as KeyscopeOptions;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object';
}

/**
 * An error as one line: its name, the first line of its message and, for a syntax error, where it
 * is (code frames and stacks dropped).
 */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}` : String(error);
  const lines = message.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  const first = lines[0] ?? 'unknown error';
  // jiti puts the place on a later line of the message; Node puts it on the first line of the stack.
  const place =
    lines.slice(1).find((line) => /^\S+:\d+:\d+$/.test(line)) ??
    (error instanceof SyntaxError ? /^(?:file:\/\/)?(\/\S+:\d+)$/.exec(error.stack?.split('\n')[0] ?? '')?.[1] : undefined);
  return place === undefined ? first : `${first} (at ${place})`;
}
