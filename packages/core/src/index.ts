export { createKeyscope } from './keyscope.js';
export type { AuthInput, AuthResult, Keyscope, KeyscopeEvent, KeyscopeOptions, ProjectRequirement } from './keyscope.js';
export type { CreateKeyInput, CreateSignedKeyInput, ImportKeyInput, KeyAdmin, KeyInfo, KeyStatus, LevelQuotaDefaults, ListedKey, OwnerKeyAdmin } from './admin.js';
export { ID_PATTERN, keyStatus, withLineQuotas } from './admin.js';
export { openApiComponents } from './openapi.js';
export { SIGNED_KEY_TYPE } from './signed.js';
export type { SignedKeyAlgorithm, SignedKeyOptions } from './signed.js';
export type { KeyscopeOpenApi } from './openapi.js';
export { MemoryStore } from './memory-store.js';
export { AUTH_KEY_COLUMNS, authRecordFromRow, authRecordFromValues, dateFromEpoch, narrowsFindKeyByHash, recordFromRow } from './types.js';
export { wholeNumberOption } from './options.js';
export { finiteLimit, nextQuotaReset, quotaAt, quotaTime } from './limits.js';
export type { KeyLimitsInput, KeyLimitsUpdate, Quota, QuotaRefill, QuotaTake, RateLimit } from './limits.js';
export { emissionInterval, MemoryRateLimiter, limitHeaders, quotaRetryAfter } from './rate-limit.js';
export type { RateLimiter, RateVerdict } from './rate-limit.js';
export { MemoryThrottle, throttleClient } from './throttle.js';
export type { AttemptThrottle, ThrottleVerdict } from './throttle.js';
export { ERROR_TABLE, KeyscopeError, problemType, statusOf, toKeyscopeError } from './errors.js';
export type { AuthError, KeyscopeErrorCode, ProblemDetails } from './errors.js';
export {
  BASE62,
  DEFAULT_KEY_PREFIX,
  KEY_CHECKSUM_LENGTH,
  KEY_RANDOM_LENGTH,
  crc32,
  generateKey,
  generateKeyId,
  hashKey,
  hashKeyAsync,
  hasKeyShape,
  hasValidChecksum,
  isWellFormedKey,
  keyLength,
  keyStart,
} from './key-format.js';
export { readHeader } from './headers.js';
export type { HeaderSource } from './headers.js';
export type {
  AuthContext,
  AuthKeyRecord,
  AuthKeyRow,
  AuthKeyValues,
  KeyAdminStore,
  KeyDenial,
  KeyKind,
  KeyLevel,
  KeyRecord,
  KeyRow,
  KeyStore,
  NarrowRead,
  InvalidationBus,
  KeyUsage,
  Project,
  ProjectDirectory,
  StoreChange,
  UsageDay,
  UsageEntry,
} from './types.js';
export { checkAdapterOptions, checkOf, nodeHeaders, pathBelow, projectRuleOf, toError, withProjectRule } from './adapter.js';
export type { AdapterOptions } from './adapter.js';
