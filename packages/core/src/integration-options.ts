import { InvalidOptionError } from './errors.js';

/*
 * Option checks of the packages that put a MultiLayerCache in front of a client or a framework
 * (@strata-cache/http and the provider adapters on it, ai-sdk, langchain, invalidation): one rule
 * and one wording per option, whichever package the user configures. Messages start with the
 * package's name and name the field (`InvalidOptionError.field`).
 */

/** The methods every integration calls on its cache. Checked by shape, so a cache from another copy of core passes. */
const CACHE_METHODS = ['getOrLoad', 'lookup', 'store'] as const;

/** `cache` is a MultiLayerCache (by shape: `getOrLoad`, `lookup`, `store`, plus `methods`). */
export function checkCacheOption(pkg: string, cache: unknown, methods: readonly string[] = []): void {
  const c = cache as Record<string, unknown> | null | undefined;
  if (typeof c !== 'object' || c === null || [...CACHE_METHODS, ...methods].some((m) => typeof c[m] !== 'function')) {
    throw new InvalidOptionError(`${pkg}: option "cache" must be a MultiLayerCache from @strata-cache/core`, { field: 'cache' });
  }
}

/** A positive, finite number of milliseconds. */
export function checkTtlOption(pkg: string, value: unknown, field = 'ttlMs'): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(`${pkg}: option "${field}" must be a positive number of ms`, { field });
  }
}

/** An array of non-empty strings (tags, header names, field names, model families). */
export function checkStringListOption(pkg: string, value: unknown, field: string): void {
  if (!Array.isArray(value) || value.some((x) => typeof x !== 'string' || x === '')) {
    throw new InvalidOptionError(`${pkg}: option "${field}" must be an array of non-empty strings`, { field });
  }
}

/** `true`, `false` or `{ threshold }` with a cosine similarity in (-1, 1]. */
export function checkSemanticOption(pkg: string, value: unknown, field = 'semantic'): void {
  if (typeof value === 'boolean') return;
  const t = (value as { threshold?: unknown } | null)?.threshold;
  if (typeof value !== 'object' || value === null || (t !== undefined && (typeof t !== 'number' || !(t > -1 && t <= 1)))) {
    throw new InvalidOptionError(`${pkg}: option "${field}" must be a boolean or { threshold } with a cosine similarity in (-1, 1]`, { field });
  }
}

export interface IntegrationOptionsCheck {
  /** What takes the options, for the message when they are not an object (`strataCache`, `withCache`). */
  readonly takenBy: string;
  /** Every option name the integration accepts; any other is refused, naming these. */
  readonly known: readonly string[];
  /** Cache methods the integration calls beyond `getOrLoad`, `lookup` and `store`. */
  readonly cacheMethods?: readonly string[] | undefined;
}

/**
 * The options every integration shares: an object with a `cache`, no unknown names, and — when
 * given — `scope` (a tenant string, a scope object or a function of the request), `ttlMs` and
 * `tags`. The integration checks its own options after this.
 */
export function checkIntegrationOptions(pkg: string, options: unknown, check: IntegrationOptionsCheck): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError(`${pkg}: ${check.takenBy} needs an options object with "cache"`, { field: 'options' });
  }
  for (const k of Object.keys(options)) {
    if (!check.known.includes(k)) throw new InvalidOptionError(`${pkg}: unknown option "${k}" (known: ${check.known.join(', ')})`, { field: k });
  }
  const o = options as { cache?: unknown; scope?: unknown; ttlMs?: unknown; tags?: unknown };
  checkCacheOption(pkg, o.cache, check.cacheMethods);
  const s = o.scope;
  if (s !== undefined && typeof s !== 'function' && typeof s !== 'string' && (typeof s !== 'object' || s === null)) {
    throw new InvalidOptionError(`${pkg}: option "scope" must be a tenant string, a scope object or a function`, { field: 'scope' });
  }
  if (o.ttlMs !== undefined) checkTtlOption(pkg, o.ttlMs);
  if (o.tags !== undefined) checkStringListOption(pkg, o.tags, 'tags');
}
