import { InvalidOptionError } from './errors.js';
import type { RequestProfile } from './profile.js';
import type { CallOptions, MultiLayerCacheOptions, StoreOptions, WrapOptions } from './types.js';

/** Every default of `MultiLayerCache`, in one place (the option JSDoc repeats them). */
export const CACHE_DEFAULTS = Object.freeze({
  defaultTtlMs: 3_600_000,
  budgetMs: 50,
  closeTimeoutMs: 5_000,
  policy: 'deterministic' as const,
  warnOnPolicySkip: true,
  coalesce: true,
  joinSimilarMaxWaitMs: 10_000,
  backfill: true,
  backfillSemanticHits: false,
  throwOnLayerError: false,
  watermarkRetentionMs: 86_400_000,
  maxWatermarks: 100_000,
});

/** The constructor's option names; `satisfies` makes a new option a compile error until listed. */
export const CACHE_OPTION_KEYS = {
  layers: true,
  defaultTtlMs: true,
  budgetMs: true,
  closeTimeoutMs: true,
  scope: true,
  profile: true,
  policy: true,
  warnOnPolicySkip: true,
  coalesce: true,
  joinSimilar: true,
  backfill: true,
  backfillSemanticHits: true,
  semanticThreshold: true,
  prices: true,
  throwOnLayerError: true,
  bus: true,
  coordinator: true,
  plugins: true,
  watermarkRetentionMs: true,
  maxWatermarks: true,
  now: true,
} as const satisfies Record<keyof MultiLayerCacheOptions, true>;

const CALL_OPTION_KEYS = {
  scope: true,
  profile: true,
  bypass: true,
  forceRefresh: true,
  noStore: true,
  ttlMs: true,
  tags: true,
  semantic: true,
} as const satisfies Record<keyof CallOptions, true>;

const STORE_OPTION_KEYS = { ...CALL_OPTION_KEYS, sinceEpoch: true, recordUsage: true } as const satisfies Record<keyof StoreOptions, true>;

const { profile: _profile, ...WRAP_CALL_KEYS } = CALL_OPTION_KEYS;
const WRAP_OPTION_KEYS = { ...WRAP_CALL_KEYS, name: true, key: true } as const satisfies Record<keyof WrapOptions<unknown[]>, true>;

const INVALIDATE_KEY_OPTION_KEYS = { scope: true, profile: true } as const satisfies Record<'scope' | 'profile', true>;
const SCOPE_ONLY_OPTION_KEYS = { scope: true } as const;

/** Which per-call option set an operation accepts. */
export type OptionSet = 'call' | 'store' | 'wrap' | 'invalidateKey' | 'scopeOnly';
const SETS: Record<OptionSet, Readonly<Record<string, true>>> = {
  call: CALL_OPTION_KEYS,
  store: STORE_OPTION_KEYS,
  wrap: WRAP_OPTION_KEYS,
  invalidateKey: INVALIDATE_KEY_OPTION_KEYS,
  scopeOnly: SCOPE_ONLY_OPTION_KEYS,
};

const PKG = '@strata-cache/core';

/**
 * Refuses option names that are not in `known` (a typo is an error, not a silently ignored
 * setting). Message: `<pkg>: unknown <where> option "<name>"`, naming the field.
 */
export function checkUnknownKeys(options: object, known: Readonly<Record<string, true>>, where: string, pkg: string = PKG): void {
  for (const k in options) {
    if (!Object.hasOwn(known, k)) throw new InvalidOptionError(`${pkg}: unknown ${where ? where + ' ' : ''}option "${k}"`, { field: k });
  }
}

export function checkPositiveMs(v: unknown, field: string, where = 'option'): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new InvalidOptionError(`${PKG}: ${where} "${field}" must be a positive finite number of milliseconds`, { field });
  }
}

/** `joinSimilar` as the wait in ms it allows (0: off). */
export function resolveJoinSimilar(v: unknown): number {
  if (v === undefined) return CACHE_DEFAULTS.joinSimilarMaxWaitMs;
  if (v === false) return 0;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InvalidOptionError(`${PKG}: option "joinSimilar" must be false or { maxWaitMs }`, { field: 'joinSimilar' });
  }
  checkUnknownKeys(v, { maxWaitMs: true }, 'joinSimilar');
  const ms = (v as { maxWaitMs?: unknown }).maxWaitMs ?? CACHE_DEFAULTS.joinSimilarMaxWaitMs;
  checkPositiveMs(ms, 'joinSimilar.maxWaitMs');
  return ms as number;
}

function checkBoolean(v: unknown, field: string, where: string): void {
  if (v !== undefined && typeof v !== 'boolean') throw new InvalidOptionError(`${PKG}: ${where} option "${field}" must be a boolean`, { field });
}

export function checkThreshold(v: unknown, field: string): void {
  if (typeof v !== 'number' || !(v > -1 && v <= 1)) {
    throw new InvalidOptionError(`${PKG}: option "${field}" is a cosine similarity in (-1, 1]`, { field });
  }
}

export function checkProfile(p: unknown, field: string): asserts p is RequestProfile {
  const r = p as RequestProfile;
  if (typeof r !== 'object' || r === null || typeof r.id !== 'string' || !Array.isArray(r.ignoredFields)) {
    throw new InvalidOptionError(`${PKG}: option "${field}" must be a request profile ({ id, ignoredFields, ... }; see defineProfile)`, { field });
  }
}

/**
 * Validates the options of one call the way the constructor validates its own: an unknown key
 * (a typo such as `ttl`), a TTL that is not a positive finite number, tags that are not an array
 * of non-empty strings... each an InvalidOptionError naming the field. Scopes are checked when
 * they are resolved.
 */
export function validateCallOptions(options: unknown, set: OptionSet, operation: string): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError(`${PKG}: ${operation}() options must be an object`, { field: 'options' });
  }
  checkUnknownKeys(options, SETS[set], `${operation}()`);
  const o = options as StoreOptions & WrapOptions<unknown[]>;
  const where = `${operation}()`;
  if (o.ttlMs !== undefined) checkPositiveMs(o.ttlMs, 'ttlMs', `${where} option`);
  if (o.tags !== undefined) {
    if (!Array.isArray(o.tags) || o.tags.some((t) => typeof t !== 'string' || t === '')) {
      throw new InvalidOptionError(`${PKG}: ${where} option "tags" must be an array of non-empty strings`, { field: 'tags' });
    }
  }
  checkBoolean(o.bypass, 'bypass', where);
  checkBoolean(o.forceRefresh, 'forceRefresh', where);
  checkBoolean(o.noStore, 'noStore', where);
  checkBoolean(o.recordUsage, 'recordUsage', where);
  if (o.profile !== undefined) checkProfile(o.profile, 'profile');
  if (o.semantic !== undefined && typeof o.semantic !== 'boolean') {
    if (typeof o.semantic !== 'object' || o.semantic === null) {
      throw new InvalidOptionError(`${PKG}: ${where} option "semantic" must be a boolean or { threshold }`, { field: 'semantic' });
    }
    checkUnknownKeys(o.semantic, { threshold: true }, `${where} "semantic"`);
    if (o.semantic.threshold !== undefined) checkThreshold(o.semantic.threshold, 'semantic.threshold');
  }
  if (o.sinceEpoch !== undefined && !(Number.isSafeInteger(o.sinceEpoch) && o.sinceEpoch >= 0)) {
    throw new InvalidOptionError(`${PKG}: ${where} option "sinceEpoch" must be an epoch read from currentEpoch`, { field: 'sinceEpoch' });
  }
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name === '')) {
    throw new InvalidOptionError(`${PKG}: ${where} option "name" must be a non-empty string`, { field: 'name' });
  }
  if (o.key !== undefined && typeof o.key !== 'function') {
    throw new InvalidOptionError(`${PKG}: ${where} option "key" must be a function of the arguments`, { field: 'key' });
  }
}
