import { databaseFile, storeLocation, type StoreLocation } from '../keyscope.config.js';
import { LOG_LEVELS, type LogLevel } from './log.js';

export const FRAMEWORKS = ['express', 'koa', 'fastify', 'hono'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/**
 * How the example server runs, read once from the environment. What keyscope itself needs (the
 * store, key prefix, headers) is in keyscope.config.ts, shared with the CLI.
 */
export interface Config {
  framework: Framework;
  port: number;
  host: string;
  /** SQLite file holding the monitoring data, and keyscope's tables unless `DATABASE_URL` is set (`databaseFile` in keyscope.config.ts). */
  db: string;
  /** Where keyscope's keys and projects live: `DATABASE_URL` (PostgreSQL), else the SQLite file `db`. */
  store: StoreLocation;
  /** `REDIS_URL`: the invalidation bus and the failed-attempt throttle shared through Redis; unset, neither. */
  redisUrl: string | undefined;
  /** Prefix of the Redis throttle keys and of the bus channel (`<prefix>throttle:…`, `<prefix>changes`). */
  redisPrefix: string;
  /** How long a valid key stays cached: with every change channel down, how long a revoked key may still pass. */
  cacheTtlMs: number;
  /** A store call slower than this answers 503 `auth_unavailable`. */
  storeTimeoutMs: number;
  seed: boolean;
  /** Failed key attempts allowed per client address per minute before 429. */
  maxFailures: number;
  /** The quietest keyscope event logged: `debug` adds a line per authenticated request. */
  logLevel: LogLevel;
  /** Test-only: how long `GET /test/slow` waits; 0 (the default) means that route does not exist. */
  testDelayMs: number;
}

/** Parse the environment; a bad value throws with the variable's name, before anything starts. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const framework = (env.FRAMEWORK || 'fastify').toLowerCase();
  if (!(FRAMEWORKS as readonly string[]).includes(framework)) {
    throw new TypeError(`FRAMEWORK must be one of ${FRAMEWORKS.join(', ')}, got ${JSON.stringify(env.FRAMEWORK)}`);
  }
  const port = wholeNumber(env, 'PORT', 3000, 0);
  if (port > 65535) throw new RangeError(`PORT must be 0-65535, got ${JSON.stringify(env.PORT)}`);
  const maxFailures = wholeNumber(env, 'KEYSCOPE_THROTTLE_MAX_FAILURES', 10, 1);
  const testDelayMs = wholeNumber(env, 'KEYSCOPE_EXAMPLE_TEST_DELAY_MS', 0, 0);
  const cacheTtlMs = wholeNumber(env, 'KEYSCOPE_CACHE_TTL_MS', 60_000, 1);
  const storeTimeoutMs = wholeNumber(env, 'KEYSCOPE_STORE_TIMEOUT_MS', 2_000, 1);
  const redisUrl = env.REDIS_URL || undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) throw new TypeError('REDIS_URL must be a redis:// or rediss:// URL');
  const logLevel = (env.KEYSCOPE_LOG_LEVEL || 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new TypeError(`KEYSCOPE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(env.KEYSCOPE_LOG_LEVEL)}`);
  }
  return {
    framework: framework as Framework,
    port,
    host: env.HOST || '127.0.0.1',
    db: databaseFile(env),
    store: storeLocation(env),
    redisUrl,
    redisPrefix: env.KEYSCOPE_REDIS_PREFIX || 'keyscope:',
    cacheTtlMs,
    storeTimeoutMs,
    seed: (env.KEYSCOPE_SEED || 'on').toLowerCase() !== 'off',
    maxFailures,
    logLevel: logLevel as LogLevel,
    testDelayMs,
  };
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const value = Number(env[name] || fallback);
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${name} must be a whole number ≥ ${min}, got ${JSON.stringify(env[name])}`);
  return value;
}
