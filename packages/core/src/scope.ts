import { InvalidRequestError } from './errors.js';

/** Where an entry lives. Entries in different scopes can never read each other. */
export interface Scope {
  /** Hard isolation boundary (a customer, an app). */
  readonly tenant: string;
  /** A sub-space inside the tenant (a bot, a feature). @default "default" */
  readonly namespace: string;
  /** Bumping the version makes every older entry of the scope unreachable at once. @default 0 */
  readonly version: number;
}

/** A tenant id, or a partial scope. */
export type ScopeInput = string | { tenant: string; namespace?: string | undefined; version?: number | undefined };

export const DEFAULT_TENANT = 'default';
export const DEFAULT_NAMESPACE = 'default';
const MAX_PART = 256;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function checkPart(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PART || LONE_SURROGATE.test(value)) {
    throw new InvalidRequestError(`scope.${field} must be a non-empty, well-formed string of at most ${MAX_PART} characters`, { field: `scope.${field}` });
  }
  return value;
}

export function resolveScope(input: ScopeInput | undefined, fallback?: Scope): Scope {
  if (input === undefined) return fallback ?? { tenant: DEFAULT_TENANT, namespace: DEFAULT_NAMESPACE, version: 0 };
  if (typeof input === 'string') return { tenant: checkPart(input, 'tenant'), namespace: DEFAULT_NAMESPACE, version: 0 };
  if (typeof input !== 'object' || input === null) {
    throw new InvalidRequestError('scope must be a tenant id string or { tenant, namespace?, version? }', { field: 'scope' });
  }
  const version = input.version ?? 0;
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new InvalidRequestError('scope.version must be a non-negative integer', { field: 'scope.version' });
  }
  return {
    tenant: checkPart(input.tenant, 'tenant'),
    namespace: input.namespace === undefined ? DEFAULT_NAMESPACE : checkPart(input.namespace, 'namespace'),
    version,
  };
}

/**
 * Injective text id of a scope: each part is percent-encoded, so ':' '/' '{' '}' and '*'
 * never appear raw and one scope id can never be a prefix-trick of another.
 * Form: `<tenant>/<namespace>/v<version>`.
 */
export function scopeId(scope: Scope): string {
  return encodeURIComponent(scope.tenant) + '/' + encodeURIComponent(scope.namespace) + '/v' + scope.version;
}

/** Scope id without the version: identifies the tenant+namespace across versions. */
export function scopeBaseId(scope: Pick<Scope, 'tenant' | 'namespace'>): string {
  return encodeURIComponent(scope.tenant) + '/' + encodeURIComponent(scope.namespace);
}

export function parseScopeId(id: string): Scope {
  const m = /^([^/]+)\/([^/]+)\/v(\d+)$/.exec(id);
  if (!m) throw new InvalidRequestError(`not a scope id: ${JSON.stringify(id)}`, { field: 'scope' });
  return { tenant: decodeURIComponent(m[1]!), namespace: decodeURIComponent(m[2]!), version: Number(m[3]) };
}

export function sameScopeBase(a: Pick<Scope, 'tenant' | 'namespace'>, b: Pick<Scope, 'tenant' | 'namespace'>): boolean {
  return a.tenant === b.tenant && a.namespace === b.namespace;
}
