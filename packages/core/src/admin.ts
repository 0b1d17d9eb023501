import { KeyscopeError } from './errors.js';
import { digestKey, generateKey, generateKeyId, hasKeyShape, ID_PATTERN, isWellFormedKey, keyStart, MAX_TIME } from './key-format.js';
import { MAX_QUOTA, nextQuotaReset, quotaAt, RATE_LIMIT_BOUNDS, type KeyLimitsInput, type KeyLimitsUpdate, type Quota, type RateLimit } from './limits.js';
import type { SignedKeys } from './signed.js';
import type { KeyAdminStore, KeyLevel, KeyRecord, KeyStore, KeyUsage, Project, ProjectDirectory } from './types.js';

export { ID_PATTERN } from './key-format.js';
const ADMIN_METHODS = ['createKey', 'getKey', 'listKeys', 'revokeKey', 'setKeyExpiry', 'getUsage'] as const;

/** A key record as the admin API returns it: everything but the hash. */
export type KeyInfo = Omit<KeyRecord, 'hash'>;

/** A key's state at a moment: `expiring` is active but expires within a week. */
export type KeyStatus = 'active' | 'expiring' | 'expired' | 'revoked';

/** A key as `list` returns it: the record and its status now. */
export type ListedKey = KeyInfo & { status: KeyStatus };

const WEEK_MS = 7 * 86_400_000;
/** How long a deny-list entry outlives its token's `exp`: servers whose clocks run behind still refuse it. */
const DENIAL_MARGIN_MS = 3_600_000;
/** The display start of a signed key: the beginning of its token. */
const SIGNED_START_LENGTH = 10;

/**
 * A key's status at `now` (epoch ms): `revoked`, `expired`, `expiring` (expires within
 * `soonMs`, default 7 days) or `active`.
 *
 * @example keyStatus(record, Date.now()) === 'active'
 */
export function keyStatus(record: Pick<KeyRecord, 'revokedAt' | 'expiresAt'>, now: number, soonMs = WEEK_MS): KeyStatus {
  if (record.revokedAt !== null) return 'revoked';
  if (record.expiresAt === null) return 'active';
  const left = record.expiresAt.getTime() - now;
  return left <= 0 ? 'expired' : left <= soonMs ? 'expiring' : 'active';
}

/** Input of `keys.create`. */
export interface CreateKeyInput extends KeyLimitsInput {
  ownerId: string;
  name: string;
  level: KeyLevel;
  projectId?: string | null;
  expiresAt?: Date | null;
}

/** Input of `keys.createSigned`: a signed key must expire. */
export interface CreateSignedKeyInput {
  ownerId: string;
  name: string;
  level: KeyLevel;
  projectId?: string | null;
  /** Lifetime in milliseconds (its `exp`); whole seconds are kept. @example 30 * 86_400_000 */
  expiresIn: number;
}

/** Limits each new key of a level gets unless `keys.create` gives its own (see `createKeyscope({ limits })`). */
export interface LevelQuotaDefaults {
  user?: { limit: number; refill?: 'day' | 'month' | null };
  project?: { limit: number; refill?: 'day' | 'month' | null };
}

/** Input of `keys.import`: a key made elsewhere, and what it may reach. */
export interface ImportKeyInput extends CreateKeyInput {
  /** The key itself. Only its SHA-256 is stored. */
  key: string;
}

/**
 * Key administration on behalf of one owner, for a "your API keys" page: a key of any other
 * owner is `not_found` (`get` answers `null`), exactly like a key that does not exist.
 */
export interface OwnerKeyAdmin {
  readonly ownerId: string;
  /** Issue a key for this owner. @example await mine.create({ name: 'ci', level: 'project', projectId: 'proj_a' }) */
  create(input: Omit<CreateKeyInput, 'ownerId'>): Promise<{ key: string; record: KeyInfo }>;
  /** Issue a signed key for this owner. @example await mine.createSigned({ name: 'edge', level: 'user', expiresIn: 86_400_000 }) */
  createSigned(input: Omit<CreateSignedKeyInput, 'ownerId'>): Promise<{ key: string; record: KeyInfo }>;
  /** This owner's keys, oldest first, each with its status. */
  list(): Promise<ListedKey[]>;
  /** One of this owner's keys, or `null`. */
  get(id: string): Promise<ListedKey | null>;
  /** Revoke one of this owner's keys. Throws `not_found` for any other. */
  revoke(id: string): Promise<KeyInfo>;
  /** Rotate one of this owner's keys. Throws `not_found` for any other. */
  rotate(id: string, options?: { gracePeriodMs?: number }): Promise<{ key: string; record: KeyInfo }>;
  /** Usage of one of this owner's keys. Throws `not_found` for any other. */
  usage(id: string): Promise<KeyUsage>;
  /** Change the limits of one of this owner's keys. Throws `not_found` for any other. */
  setLimits(id: string, limits: KeyLimitsInput): Promise<KeyInfo>;
  /** This owner's projects (what a project-level key may be issued for). */
  projects(): Promise<Project[]>;
}

/** Issue, list, revoke and rotate keys. The plaintext key exists only in `create`/`rotate` results. */
export interface KeyAdmin {
  /** Issue a key. @example const { key } = await ks.keys.create({ ownerId: 'u1', name: 'ci', level: 'user' }) */
  create(input: CreateKeyInput): Promise<{ key: string; record: KeyInfo }>;
  /**
   * Issue a signed key (needs `signedKeys.signing`): a JWS carrying its scope, checked with no
   * store read per new key. Its record (without the token) is stored like any key, for lists,
   * usage and revocation.
   * @example const { key } = await ks.keys.createSigned({ ownerId: 'u1', name: 'edge', level: 'user', expiresIn: 86_400_000 })
   */
  createSigned(input: CreateSignedKeyInput): Promise<{ key: string; record: KeyInfo }>;
  /**
   * Store a key made elsewhere (a legacy system's, an environment's service key): only its hash
   * is kept. A key without keyscope's shape needs `importedKeys` in `createKeyscope`.
   * @example await ks.keys.import({ key: process.env.SERVICE_KEY!, ownerId: 'ops', name: 'service', level: 'user' })
   */
  import(input: ImportKeyInput): Promise<{ record: KeyInfo }>;
  /** Every key of an owner, revoked and expired ones included, each with its status. */
  list(ownerId: string): Promise<ListedKey[]>;
  /**
   * The same administration scoped to one owner: another owner's key is not found.
   * @example const mine = ks.keys.forOwner(session.userId); await mine.revoke(req.params.id)
   */
  forOwner(ownerId: string): OwnerKeyAdmin;
  /** One key with its status, or `null`. */
  get(id: string): Promise<ListedKey | null>;
  /** Revoke a key; refused from the next request on. Throws `not_found`. */
  revoke(id: string): Promise<KeyInfo>;
  /** A new key with the same name and scope; the old one works `gracePeriodMs` more (default 0). */
  rotate(id: string, options?: { gracePeriodMs?: number }): Promise<{ key: string; record: KeyInfo }>;
  /** A key's usage (pending usage is flushed first). Throws `not_found`. */
  usage(id: string): Promise<KeyUsage>;
  /**
   * Change a key's rate limit or quota: a field left out stays, `null` removes it; applies from
   * the next request on every instance. Throws `not_found`; `invalid_argument` for a signed key.
   * @example await ks.keys.setLimits(id, { rateLimit: { limit: 100, windowMs: 60_000 }, quota: { limit: 10_000, refill: 'month' } })
   */
  setLimits(id: string, limits: KeyLimitsInput): Promise<KeyInfo>;
}


/**
 * The admin API over a store (what `keyscope.keys` is).
 * @example const admin = createKeyAdmin({ store, projects: store, prefix: 'ks', now: Date.now, invalidate() {}, flushUsage() {} })
 */
export function createKeyAdmin(deps: {
  store: KeyStore;
  projects: ProjectDirectory;
  prefix: string;
  /** Length bounds of keys without keyscope's shape that `import` accepts; `false`: none. */
  importedKeys?: false | { minLength: number; maxLength: number };
  /** Signs signed keys (`createSigned`, and `rotate` of a signed key). */
  signed?: SignedKeys;
  /** The quota a new key of each level gets when `create` gives none. */
  quotaDefaults?: LevelQuotaDefaults;
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

  type Fields = Omit<KeyRecord, 'id' | 'hash' | 'start' | 'createdAt' | 'revokedAt' | 'lastUsedAt' | 'kind'>;

  async function issue(fields: Fields, given?: string) {
    const key = given ?? generateKey(deps.prefix);
    // A foreign key's start is shown too: its first four characters only.
    const start = given === undefined || isWellFormedKey(key, deps.prefix) ? keyStart(key) : key.slice(0, 4);
    return persist(key, { id: generateKeyId(), ...fields, start, createdAt: new Date(deps.now()), kind: 'opaque' });
  }

  /** A signed key: its token names its record's id (`jti`); only the token's hash is stored. */
  async function issueSigned(fields: Fields & { expiresAt: Date }) {
    const signer = deps.signed;
    if (!signer?.canSign) throw invalid('issuing a signed key needs signedKeys with signing (a private key and its kid) in createKeyscope');
    const id = generateKeyId();
    const issuedAt = deps.now();
    const key = await signer.sign({ keyId: id, ownerId: fields.ownerId, name: fields.name, level: fields.level, projectId: fields.projectId, issuedAt, expiresAt: fields.expiresAt.getTime() });
    // `exp` holds whole seconds: the record says what the token says.
    const expiresAt = new Date(Math.floor(fields.expiresAt.getTime() / 1000) * 1000);
    return persist(key, { id, ...fields, expiresAt, start: key.slice(0, SIGNED_START_LENGTH), createdAt: new Date(issuedAt), kind: 'signed' });
  }

  /** Store a new key's record (its hash, never the key) and hand back the key and the public record. */
  async function persist(key: string, fields: Omit<KeyRecord, 'hash' | 'revokedAt' | 'lastUsedAt'>) {
    const record: KeyRecord = { ...fields, hash: await digestKey(key), revokedAt: null, lastUsedAt: null };
    await store().createKey(record);
    return { key, record: publicRecord(record) };
  }

  /**
   * Put a key on the deny-list from `from` until its token expires (and an hour more, for clocks
   * that run behind). Signed keys need it; any other key with an expiry goes on it too when the
   * store keeps one, so a store that loses a record's kind cannot leave a revoked token working.
   */
  async function deny(record: KeyRecord, from: number) {
    if (record.expiresAt === null || record.expiresAt.getTime() <= deps.now()) return;
    const target = store();
    if (typeof target.denyKey !== 'function') {
      if (record.kind === 'signed') throw new TypeError('options.store does not implement denyKey: revoking a signed key needs the deny-list');
      return;
    }
    await target.denyKey({ keyId: record.id, from: new Date(from), until: new Date(record.expiresAt.getTime() + DENIAL_MARGIN_MS) });
  }

  async function existing(id: string): Promise<KeyRecord> {
    if (typeof id !== 'string' || id === '') throw invalid('key id must be a non-empty string');
    const record = await store().getKey(id);
    if (!record) throw notFound(id);
    return record;
  }

  /** The checked fields of a new key (create and import). */
  async function scope(input: CreateKeyInput, what: string) {
    if (input === null || typeof input !== 'object') throw invalid(`keys.${what}(input): input must be an object`);
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
    const limits = checkLimits(input, deps.now());
    const fallback = deps.quotaDefaults?.[input.level];
    const quota = limits.quota !== undefined ? limits.quota : fallback ? newQuota(fallback.limit, fallback.limit, fallback.refill ?? null, deps.now()) : null;
    if (quota !== null && typeof (deps.store as Partial<KeyAdminStore>).consumeQuota !== 'function') {
      throw new TypeError('options.store does not implement consumeQuota: a key with a quota needs a store that counts it');
    }
    return { name, ownerId, level: input.level, projectId, expiresAt, rateLimit: limits.rateLimit ?? null, quota };
  }

  /** A key of `ownerId`, or `not_found` (the same error as for a key that does not exist). */
  async function owned(ownerId: string, id: string): Promise<KeyRecord> {
    const record = await existing(id);
    if (record.ownerId !== ownerId) throw notFound(id);
    return record;
  }

  const admin: KeyAdmin = {
    async create(input) {
      return issue(await scope(input, 'create'));
    },
    async createSigned(input) {
      if (input === null || typeof input !== 'object') throw invalid('keys.createSigned(input): input must be an object');
      if ((input as KeyLimitsInput).rateLimit != null || (input as KeyLimitsInput).quota != null) {
        throw invalid("a signed key carries no limits of its own (it is checked without its record): its level's default rate limit applies");
      }
      const fields = await scope({ ...input, rateLimit: undefined, quota: null, expiresAt: null }, 'createSigned');
      const lifetime: unknown = input.expiresIn;
      if (typeof lifetime !== 'number' || !Number.isSafeInteger(lifetime) || lifetime < 1000) {
        throw invalid(`expiresIn must be a whole number of milliseconds, at least 1000 (a signed key must expire), got ${JSON.stringify(lifetime)}`);
      }
      const expiresAt = deps.now() + lifetime;
      if (expiresAt > MAX_TIME) throw invalid(`expiresIn ${lifetime} ends after the latest date a key can expire (${new Date(MAX_TIME).toISOString()})`);
      return issueSigned({ ...fields, expiresAt: new Date(expiresAt) });
    },
    async import(input) {
      const fields = await scope(input, 'import');
      const key: unknown = input.key;
      if (typeof key !== 'string' || !isWellFormedKey(key, deps.prefix)) {
        const bounds = deps.importedKeys;
        if (!bounds) {
          throw invalid(`key is not a keyscope key with prefix ${JSON.stringify(deps.prefix)}; to accept keys made elsewhere, set importedKeys in createKeyscope`);
        }
        if (typeof key === 'string' && hasKeyShape(key, deps.prefix)) throw invalid('key has the shape of a keyscope key but a wrong checksum: it was mistyped or truncated');
        if (typeof key !== 'string' || !isForeignKey(key, bounds)) {
          throw invalid(`key must be ${bounds.minLength}-${bounds.maxLength} printable ASCII characters without spaces`);
        }
      }
      const { record } = await issue(fields, key as string);
      return { record };
    },
    async list(ownerId) {
      const records = withLineQuotas(await store().listKeys(identifier(ownerId, 'ownerId')));
      const at = deps.now();
      return records.map((record) => listed(record, at));
    },
    forOwner(ownerId) {
      identifier(ownerId, 'ownerId');
      return Object.freeze({
        ownerId,
        create: (input) => admin.create({ ...input, ownerId }),
        createSigned: (input) => admin.createSigned({ ...input, ownerId }),
        list: () => admin.list(ownerId),
        async get(id) {
          const record = await admin.get(id);
          return record && record.ownerId === ownerId ? record : null;
        },
        revoke: async (id) => admin.revoke((await owned(ownerId, id)).id),
        rotate: async (id, options) => admin.rotate((await owned(ownerId, id)).id, options),
        usage: async (id) => admin.usage((await owned(ownerId, id)).id),
        setLimits: async (id, limits) => admin.setLimits((await owned(ownerId, id)).id, limits),
        projects: async () => deps.projects.listProjects(ownerId),
      } satisfies OwnerKeyAdmin);
    },
    async get(id) {
      if (typeof id !== 'string' || id === '') throw invalid('key id must be a non-empty string');
      const record = await store().getKey(id);
      if (!record) return null;
      const first = record.limitsFrom && record.quota ? await store().getKey(record.limitsFrom) : undefined;
      return listed(withLineQuota(record, first ?? undefined), deps.now());
    },
    async revoke(id) {
      const record = await existing(id);
      if (record.revokedAt === null) {
        const at = deps.now();
        // A signed key is checked without its record: the deny-list is what refuses it, from the
        // start of time, so that no server's clock can read the revocation as not yet begun.
        await deny(record, 0);
        await store().revokeKey(id, new Date(at));
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
      // The new key keeps the old one's lifetime, if it had one, and its kind.
      const lifetime = old.expiresAt === null ? null : old.expiresAt.getTime() - old.createdAt.getTime();
      // Limits go with the key, and so do their counts: the new key draws on the same quota and
      // shares the same rate-limit count as the old one (its line's first key keeps them), so
      // neither a rotation nor its grace period ever starts a fresh allowance.
      const line = old.limitsFrom ?? old.id;
      // The new key's copy of the quota is its definition; the count is the line's (shown as it stands).
      const counted = old.quota && old.limitsFrom ? ((await store().getKey(line))?.quota ?? old.quota) : old.quota;
      const quota = counted ? quotaAt(counted, at) : null;
      const fields = { name: old.name, ownerId: old.ownerId, level: old.level, projectId: old.projectId, rateLimit: old.rateLimit ?? null, quota, limitsFrom: line };
      if (old.kind === 'signed' && typeof (store() as Partial<KeyAdminStore>).denyKey !== 'function') {
        throw new TypeError('options.store does not implement denyKey: rotating a signed key needs the deny-list');
      }
      // Issue first: if anything fails after this, the caller still holds a working key.
      const issued =
        old.kind === 'signed'
          ? await issueSigned({ ...fields, expiresAt: new Date(at + lifetime!) })
          : await issue({ ...fields, expiresAt: lifetime === null ? null : new Date(at + lifetime) });
      if (grace === 0) {
        await deny(old, 0);
        await store().revokeKey(id, new Date(at));
      } else if (old.expiresAt === null || old.expiresAt.getTime() > at + grace) {
        await deny(old, at + grace);
        await store().setKeyExpiry(id, new Date(at + grace));
      }
      deps.invalidate(id);
      return issued;
    },
    async setLimits(id, input) {
      const record = await existing(id);
      if (record.kind === 'signed') throw invalid(`key ${id} is a signed key: it carries no limits of its own (its level's default rate limit applies)`);
      const update: KeyLimitsUpdate = checkLimits(input, deps.now(), 'keys.setLimits(id, limits)');
      const target = store();
      if (typeof target.setKeyLimits !== 'function') throw new TypeError('options.store does not implement setKeyLimits: changing limits needs it');
      if (update.quota != null && typeof target.consumeQuota !== 'function') throw new TypeError('options.store does not implement consumeQuota: a key with a quota needs a store that counts it');
      // A rotated key and the keys it replaced count as one: their limits change together (the
      // line's first key holds the quota's count), so an old key in its grace period is never
      // left with other limits than its successor.
      const line = record.limitsFrom ?? record.id;
      const members = (await target.listKeys(record.ownerId)).filter((k) => k.id === line || k.limitsFrom === line);
      if (!members.some((k) => k.id === id)) members.push(record);
      for (const member of members) {
        if (!(await target.setKeyLimits(member.id, update))) {
          if (member.id === id) throw notFound(id);
        }
        deps.invalidate(member.id);
      }
      return (await admin.get(id)) ?? publicRecord(record);
    },
    async usage(id) {
      await existing(id);
      await deps.flushUsage();
      const usage = await store().getUsage(id);
      if (!usage) throw notFound(id);
      return usage;
    },
  };
  return admin;
}

/** A key without keyscope's shape that `importedKeys` accepts: printable ASCII, no spaces, within bounds. */
export function isForeignKey(key: string, bounds: { minLength: number; maxLength: number }): boolean {
  return key.length >= bounds.minLength && key.length <= bounds.maxLength && /^[\x21-\x7e]+$/.test(key);
}

function listed(record: KeyRecord, now: number): ListedKey {
  const info = publicRecord(record);
  // What the next request would find: a refill that is due shows as done.
  if (info.quota != null) info.quota = quotaAt(info.quota, now);
  return { ...info, status: keyStatus(record, now) };
}

/**
 * A rotated key's quota as its requests find it: counted on its line's first key, so that key's
 * remaining units are shown (the rotated key's own copy is only its definition).
 */
function withLineQuota(record: KeyRecord, first: KeyRecord | undefined): KeyRecord {
  if (!record.quota || !first?.quota || first.id === record.id) return record;
  return { ...record, quota: first.quota };
}

/**
 * Records as lists show them: each rotated key with its line's quota count, found among the
 * same records (a line never leaves its owner). For lists read straight from a store.
 *
 * @example const shown = withLineQuotas(await store.listAllKeys())
 */
export function withLineQuotas<R extends KeyRecord>(records: R[]): R[] {
  const byId = new Map(records.map((record) => [record.id, record]));
  return records.map((record) => (record.limitsFrom ? (withLineQuota(record, byId.get(record.limitsFrom)) as R) : record));
}

/** A quota starting now: `remaining` of `limit`, refilled at the next UTC day or month when `refill` says so. */
function newQuota(limit: number, remaining: number, refill: 'day' | 'month' | null, now: number): Quota {
  return { limit, remaining, refill, resetAt: refill === null ? null : new Date(nextQuotaReset(refill, now)) };
}


/**
 * The limits in `input`, checked: `undefined` where a field is left out, `null` where it is
 * removed. Throws `invalid_argument` naming the field.
 */
export function checkLimits(input: KeyLimitsInput, now: number, what = 'limits'): KeyLimitsUpdate {
  if (input === null || typeof input !== 'object') throw new KeyscopeError('invalid_argument', `${what} must be an object`);
  const out: KeyLimitsUpdate = {};
  const whole = (value: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new KeyscopeError('invalid_argument', `${field} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const { rateLimit, quota } = input;
  if (rateLimit === null) out.rateLimit = null;
  else if (rateLimit !== undefined) {
    if (typeof rateLimit !== 'object') throw new KeyscopeError('invalid_argument', 'rateLimit must be { limit, windowMs } or null');
    out.rateLimit = {
      limit: whole(rateLimit.limit, 'rateLimit.limit', 1, RATE_LIMIT_BOUNDS.maxLimit),
      windowMs: whole(rateLimit.windowMs, 'rateLimit.windowMs', RATE_LIMIT_BOUNDS.minWindowMs, RATE_LIMIT_BOUNDS.maxWindowMs),
    } satisfies RateLimit;
  }
  if (quota === null) out.quota = null;
  else if (quota !== undefined) {
    if (typeof quota !== 'object') throw new KeyscopeError('invalid_argument', "quota must be { limit, remaining?, refill?: 'day' | 'month' | null } or null");
    const limit = whole(quota.limit, 'quota.limit', 1, MAX_QUOTA);
    // More left than the limit would say r > q, and give a never-refilling quota more than it says.
    const remaining = quota.remaining === undefined ? limit : whole(quota.remaining, 'quota.remaining', 0, limit);
    const refill = quota.refill ?? null;
    if (refill !== null && refill !== 'day' && refill !== 'month') throw new KeyscopeError('invalid_argument', `quota.refill must be 'day', 'month' or null, got ${JSON.stringify(refill)}`);
    out.quota = newQuota(limit, remaining, refill, now);
  }
  return out;
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

