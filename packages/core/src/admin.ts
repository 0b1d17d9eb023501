import { KeyscopeError } from './errors.js';
import { generateKey, generateKeyId, hashKey, keyStart } from './key-format.js';
import type { KeyAdminStore, KeyLevel, KeyRecord, KeyStore, KeyUsage, ProjectDirectory } from './types.js';

/** Project and owner ids: 1-128 characters of letters, digits, `.`, `_`, `:` or `-`. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
/** The latest instant a JavaScript Date can hold. */
const MAX_TIME = 8.64e15;
const ADMIN_METHODS = ['createKey', 'getKey', 'listKeys', 'revokeKey', 'setKeyExpiry', 'getUsage'] as const;

/** A key record as the admin API returns it: everything but the hash. */
export type KeyInfo = Omit<KeyRecord, 'hash'>;

/** Input of `keys.create`. */
export interface CreateKeyInput {
  ownerId: string;
  name: string;
  level: KeyLevel;
  projectId?: string | null;
  expiresAt?: Date | null;
}

/** Issue, list, revoke and rotate keys. The plaintext key exists only in `create`/`rotate` results. */
export interface KeyAdmin {
  /** Issue a key. @example const { key } = await ks.keys.create({ ownerId: 'u1', name: 'ci', level: 'user' }) */
  create(input: CreateKeyInput): Promise<{ key: string; record: KeyInfo }>;
  /** Every key of an owner, revoked and expired ones included. */
  list(ownerId: string): Promise<KeyInfo[]>;
  /** One key, or `null`. */
  get(id: string): Promise<KeyInfo | null>;
  /** Revoke a key; refused from the next request on. Throws `not_found`. */
  revoke(id: string): Promise<KeyInfo>;
  /** A new key with the same name and scope; the old one works `gracePeriodMs` more (default 0). */
  rotate(id: string, options?: { gracePeriodMs?: number }): Promise<{ key: string; record: KeyInfo }>;
  /** A key's usage (pending usage is flushed first). Throws `not_found`. */
  usage(id: string): Promise<KeyUsage>;
}


/**
 * The admin API over a store (what `keyscope.keys` is).
 * @example const admin = createKeyAdmin({ store, projects: store, prefix: 'ks', now: Date.now, invalidate() {}, flushUsage() {} })
 */
export function createKeyAdmin(deps: {
  store: KeyStore;
  projects: ProjectDirectory;
  prefix: string;
  now: () => number;
  invalidate: (keyId?: string) => void;
  flushUsage: () => Promise<void> | void;
}): KeyAdmin {
  const invalid = (message: string) => new KeyscopeError('invalid_argument', message);
  const notFound = (id: string) => new KeyscopeError('not_found', `No key with id ${JSON.stringify(id)}`);
  // A read-only KeyStore can authenticate; only administration needs the write path.
  const store = (): KeyAdminStore => {
    const missing = ADMIN_METHODS.find((m) => typeof (deps.store as Partial<KeyAdminStore>)[m] !== 'function');
    if (missing) throw new TypeError(`options.store does not implement ${missing}: key administration needs a KeyAdminStore`);
    return deps.store as KeyAdminStore;
  };

  async function issue(fields: Omit<KeyRecord, 'id' | 'hash' | 'start' | 'createdAt' | 'revokedAt' | 'lastUsedAt'>) {
    const key = generateKey(deps.prefix);
    const record: KeyRecord = {
      id: generateKeyId(),
      ...fields,
      hash: hashKey(key),
      start: keyStart(key),
      createdAt: new Date(deps.now()),
      revokedAt: null,
      lastUsedAt: null,
    };
    await store().createKey(record);
    return { key, record: publicRecord(record) };
  }

  async function existing(id: string): Promise<KeyRecord> {
    if (typeof id !== 'string' || id === '') throw invalid('key id must be a non-empty string');
    const record = await store().getKey(id);
    if (!record) throw notFound(id);
    return record;
  }

  return {
    async create(input) {
      if (input === null || typeof input !== 'object') throw invalid('keys.create(input): input must be an object');
      const ownerId = identifier(input.ownerId, 'ownerId');
      const name = keyName(input.name);
      if (input.level !== 'user' && input.level !== 'project') {
        throw invalid(`level must be 'user' or 'project', got ${JSON.stringify(input.level)}`);
      }
      let projectId: string | null = null;
      if (input.level === 'project') {
        if (input.projectId == null || input.projectId === '') throw invalid('a project-level key needs a projectId');
        projectId = identifier(input.projectId, 'projectId');
        if (!(await deps.projects.ownsProject(ownerId, projectId))) {
          throw invalid(`project ${JSON.stringify(projectId)} is not a project of owner ${JSON.stringify(ownerId)}`);
        }
      } else if (input.projectId != null) {
        throw invalid('a user-level key reaches every project of its owner: leave projectId out');
      }
      const expiresAt = input.expiresAt ?? null;
      if (expiresAt !== null) {
        if (!(expiresAt instanceof Date) || Number.isNaN(expiresAt.getTime())) throw invalid('expiresAt must be a valid Date');
        if (expiresAt.getTime() <= deps.now()) throw invalid('expiresAt is in the past');
      }
      return issue({ name, ownerId, level: input.level, projectId, expiresAt });
    },
    async list(ownerId) {
      const records = await store().listKeys(identifier(ownerId, 'ownerId'));
      return records.map(publicRecord);
    },
    async get(id) {
      if (typeof id !== 'string' || id === '') throw invalid('key id must be a non-empty string');
      const record = await store().getKey(id);
      return record ? publicRecord(record) : null;
    },
    async revoke(id) {
      const record = await existing(id);
      if (record.revokedAt === null) {
        await store().revokeKey(id, new Date(deps.now()));
        deps.invalidate(id);
      }
      return publicRecord((await store().getKey(id)) ?? record);
    },
    async rotate(id, options = {}) {
      const grace = options.gracePeriodMs ?? 0;
      if (!Number.isSafeInteger(grace) || grace < 0) throw invalid('gracePeriodMs must be a whole number of milliseconds ≥ 0');
      const old = await existing(id);
      const at = deps.now();
      // A grace period past the last representable Date would store no expiry at all.
      if (at + grace > MAX_TIME) throw invalid(`gracePeriodMs ${grace} ends after the latest date a key can expire (${new Date(MAX_TIME).toISOString()})`);
      if (old.revokedAt !== null) throw invalid(`key ${id} is revoked; create a new key instead`);
      if (old.expiresAt !== null && old.expiresAt.getTime() <= at) throw invalid(`key ${id} has expired; create a new key instead`);
      // A project key whose owner no longer owns its project is refused by every request; so is its rotation.
      if (old.level === 'project' && !(await deps.projects.ownsProject(old.ownerId, old.projectId!))) {
        throw invalid(`key ${id} belongs to project ${JSON.stringify(old.projectId)}, which its owner no longer owns; create a new key instead`);
      }
      // The new key keeps the old one's lifetime, if it had one.
      const lifetime = old.expiresAt === null ? null : old.expiresAt.getTime() - old.createdAt.getTime();
      // Issue first: if anything fails after this, the caller still holds a working key.
      const issued = await issue({
        name: old.name,
        ownerId: old.ownerId,
        level: old.level,
        projectId: old.projectId,
        expiresAt: lifetime === null ? null : new Date(at + lifetime),
      });
      if (grace === 0) await store().revokeKey(id, new Date(at));
      else if (old.expiresAt === null || old.expiresAt.getTime() > at + grace) await store().setKeyExpiry(id, new Date(at + grace));
      deps.invalidate(id);
      return issued;
    },
    async usage(id) {
      await existing(id);
      await deps.flushUsage();
      const usage = await store().getUsage(id);
      if (!usage) throw notFound(id);
      return usage;
    },
  };
}

/** The admin view of a record: everything but the hash. */
function publicRecord(record: KeyRecord): KeyInfo {
  const { hash: _hash, ...rest } = record;
  return rest;
}

function identifier(value: unknown, field: string): string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw new KeyscopeError('invalid_argument', `${field} must be 1-128 characters of letters, digits, '.', '_', ':' or '-', got ${JSON.stringify(value)}`);
  }
  return value;
}

function keyName(value: unknown): string {
  if (typeof value !== 'string') throw new KeyscopeError('invalid_argument', 'name must be a string');
  const name = value.trim();
  if (name.length === 0) throw new KeyscopeError('invalid_argument', 'name must not be empty');
  if (name.length > 64) throw new KeyscopeError('invalid_argument', `name must be at most 64 characters, got ${name.length}`);
  if (/[\x00-\x1f\x7f]/.test(name)) throw new KeyscopeError('invalid_argument', 'name must not contain control characters');
  return name;
}

