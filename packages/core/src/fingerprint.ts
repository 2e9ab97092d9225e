import { canonicalHash, canonicalize, sha256 } from './canonical.js';
import { type RequestProfile, chatProfile } from './profile.js';
import { type Scope, type ScopeInput, resolveScope, scopeId } from './scope.js';

/**
 * Version of the key schema (canonical form + hash input). Bump it whenever the same request
 * would hash differently, so old entries become misses instead of wrong answers.
 * 2: the canonical form is hashed as WTF-8 bytes while it is encoded, after the scope id and the
 *    profile id (1 hashed text with surrogates as UTF-16LE, and no scope).
 */
export const KEY_SCHEMA_VERSION = 2;

export interface CacheKey {
  /** Key schema version the hash was computed with. */
  readonly schema: number;
  readonly scope: Scope;
  /** Injective text form of the scope (see `scopeId`). */
  readonly scopeId: string;
  /** Profile that produced the hash (`openai.chat`, `generic`, ...). */
  readonly profile: string;
  /** SHA-256 (base64url) of the scope id, the profile id and the canonical request: unique per entry within a schema. */
  readonly hash: string;
  /** `v<schema>:<scopeId>:<hash>`: unique across scopes and schema versions. */
  readonly id: string;
}

/** What the semantic layer compares: exact partition, similar text. */
export interface SemanticDescriptor {
  /** Hash of scope, profile and everything but the compared text. */
  readonly partition: string;
  /** The last user turn. */
  readonly text: string;
}

const ignoreSets = new WeakMap<RequestProfile, ReadonlySet<string>>();
function ignoreSet(profile: RequestProfile): ReadonlySet<string> {
  let set = ignoreSets.get(profile);
  if (!set) {
    set = new Set(profile.ignoredFields);
    ignoreSets.set(profile, set);
  }
  return set;
}

interface ScopePrefixes {
  readonly sid: string;
  /** `v<schema>:<scopeId>:` */
  readonly id: string;
  /** Per profile id: `<scopeId>\n<profile id>\n`, the hash input's prefix. */
  readonly hash: Map<string, string>;
}

/** Per scope object (scopes are immutable and reused across calls): strings built once. */
const prefixes = new WeakMap<Scope, ScopePrefixes>();
function prefixesOf(scope: Scope): ScopePrefixes {
  let p = prefixes.get(scope);
  if (!p) {
    const sid = scopeId(scope);
    p = { sid, id: 'v' + KEY_SCHEMA_VERSION + ':' + sid + ':', hash: new Map() };
    prefixes.set(scope, p);
  }
  return p;
}

export function makeKey(scope: Scope, profileId: string, hash: string): CacheKey {
  const p = prefixesOf(scope);
  return { schema: KEY_SCHEMA_VERSION, scope, scopeId: p.sid, profile: profileId, hash, id: p.id + hash };
}

/** What was computed from a sealed request, for the scope and profile it was computed with. */
interface Remembered<T> {
  readonly scope: Scope;
  readonly profile: RequestProfile;
  readonly value: T;
}

interface SealedMemo {
  key?: Remembered<CacheKey>;
  semantic?: Remembered<SemanticDescriptor | undefined>;
}

/** `compute()` for a request, kept in `slot` when the request is sealed (per scope and profile object). */
function remembered<K extends keyof SealedMemo>(
  request: unknown,
  slot: K,
  scope: Scope,
  profile: RequestProfile,
  compute: () => NonNullable<SealedMemo[K]>['value'],
): NonNullable<SealedMemo[K]>['value'] {
  const memo = typeof request === 'object' && request !== null ? sealedRequests.get(request) : undefined;
  const known = memo?.[slot];
  if (known !== undefined && known.scope === scope && known.profile === profile) return known.value;
  const value = compute();
  // Frozen once kept: every later lookup of the request hands out this same object.
  if (memo) memo[slot] = { scope, profile, value: typeof value === 'object' && value !== null ? Object.freeze(value) : value } as SealedMemo[K];
  return value;
}

/** Requests sealed by `sealRequest`: deep-frozen, so what is computed from them can be kept. */
const sealedRequests = new WeakMap<object, SealedMemo>();

/**
 * Deep-freezes a request made of plain objects, arrays and primitives (what `JSON.parse`
 * returns), so its key (per scope and profile) and its semantic descriptor are computed once,
 * however often the same object is looked up. For callers that keep one request object per
 * distinct request (the HTTP adapters keep one per request body they have seen). A request
 * holding anything else (a Date, a Map, a class instance, bytes, a getter) is returned unsealed
 * and unfrozen, and is fingerprinted on every call as before. Returns the request.
 */
export function sealRequest<T>(request: T): T {
  if (typeof request !== 'object' || request === null || sealedRequests.has(request)) return request;
  const nodes: object[] = [];
  if (!collectPlain(request, nodes, 0)) return request;
  for (const n of nodes) Object.freeze(n);
  sealedRequests.set(request, {});
  return request;
}

// Plain objects and arrays only, nested at most this deep (the canonical encoder's own limit is higher; deeper requests are simply not sealed).
const MAX_SEAL_DEPTH = 256;

function collectPlain(value: object, nodes: object[], depth: number): boolean {
  if (depth > MAX_SEAL_DEPTH) return false;
  if (!Array.isArray(value)) {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return false;
  }
  nodes.push(value);
  for (const k of Object.keys(value)) {
    // A getter could answer differently after sealing: only data properties. One descriptor per
    // key: Object.getOwnPropertyDescriptors builds an object of them all, which made sealing a
    // 0.9 KB chat request and its key request 2.7–3.7× slower (in-process, Node 20 and 24).
    const d = Object.getOwnPropertyDescriptor(value, k)!;
    if (!('value' in d)) return false;
    const v: unknown = d.value;
    if (typeof v === 'object' && v !== null && !collectPlain(v, nodes, depth + 1)) return false;
  }
  return true;
}

/**
 * The exact cache key of a request: SHA-256 of the scope id, the profile id and the canonical
 * form of the answer-changing fields. The hash alone identifies the entry within a key schema
 * (two scopes never share one), so an in-process layer can index by it. A request sealed by
 * `sealRequest` is hashed once per scope and profile.
 */
export function computeKey(request: unknown, scope: Scope, profile: RequestProfile = chatProfile): CacheKey {
  // Most requests are not sealed (a fresh object per call): hash at once, no closure.
  if (typeof request !== 'object' || request === null || !sealedRequests.has(request)) return hashKey(request, scope, profile);
  return remembered(request, 'key', scope, profile, () => hashKey(request, scope, profile));
}

function hashKey(request: unknown, scope: Scope, profile: RequestProfile): CacheKey {
  const p = prefixesOf(scope);
  let prefix = p.hash.get(profile.id);
  if (prefix === undefined) {
    prefix = p.sid + '\n' + profile.id + '\n';
    if (p.hash.size < 64) p.hash.set(profile.id, prefix);
  }
  const hash = canonicalHash(request, ignoreSet(profile), prefix);
  return { schema: KEY_SCHEMA_VERSION, scope, scopeId: p.sid, profile: profile.id, hash, id: p.id + hash };
}

/** Semantic descriptor of a request, or undefined when it cannot be matched by similarity. */
export function computeSemantic(request: unknown, scope: Scope, profile: RequestProfile = chatProfile): SemanticDescriptor | undefined {
  return remembered(request, 'semantic', scope, profile, () => describeSemantic(request, scope, profile));
}

function describeSemantic(request: unknown, scope: Scope, profile: RequestProfile): SemanticDescriptor | undefined {
  const split = profile.semanticSplit?.(request);
  if (!split) return undefined;
  const canonical = canonicalize(split.context, ignoreSet(profile), 'partition\n' + scopeId(scope) + '\n' + profile.id + '\n');
  return { partition: sha256(canonical), text: split.text };
}

export interface FingerprintOptions {
  scope?: ScopeInput;
  /** @default chatProfile */
  profile?: RequestProfile;
}

export function fingerprint(request: unknown, options: FingerprintOptions = {}): CacheKey {
  return computeKey(request, resolveScope(options.scope), options.profile ?? chatProfile);
}

export interface FieldDifference {
  /** JSON-path-like location: `$.messages[1].content`. */
  readonly path: string;
  readonly kind: 'changed' | 'added' | 'removed';
  readonly a: unknown;
  readonly b: unknown;
}

export interface KeyExplanation {
  /** True when both requests map to the same key. */
  readonly sameKey: boolean;
  /** Differences in fields that change the answer: these make the requests miss each other. */
  readonly differences: readonly FieldDifference[];
  /** Differences in ignored fields: they do not affect the key. */
  readonly ignoredDifferences: readonly FieldDifference[];
  /** Present when the scopes differ (scopes never share entries). */
  readonly scope?: { a: string; b: string };
}

/** Names the fields that make two requests miss each other (and the ignored ones that do not). */
export function explainKeyDifference(
  a: unknown,
  b: unknown,
  options: { profile?: RequestProfile; scopeA?: ScopeInput; scopeB?: ScopeInput } = {},
): KeyExplanation {
  const profile = options.profile ?? chatProfile;
  const sa = resolveScope(options.scopeA);
  const sb = resolveScope(options.scopeB ?? options.scopeA);
  const ignored = ignoreSet(profile);
  const differences: FieldDifference[] = [];
  const ignoredDifferences: FieldDifference[] = [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) diff(a[k], b[k], '$.' + k, ignored.has(k) ? ignoredDifferences : differences);
  } else {
    diff(a, b, '$', differences);
  }
  const sameKey = computeKey(a, sa, profile).id === computeKey(b, sb, profile).id;
  const explanation: KeyExplanation = { sameKey, differences, ignoredDifferences };
  const ia = scopeId(sa);
  const ib = scopeId(sb);
  return ia === ib ? explanation : { ...explanation, scope: { a: ia, b: ib } };
}

function diff(a: unknown, b: unknown, path: string, out: FieldDifference[]): void {
  if (a === undefined && b === undefined) return;
  if (a === undefined) return void out.push({ path, kind: 'added', a, b });
  if (b === undefined) return void out.push({ path, kind: 'removed', a, b });
  if (Array.isArray(a) && Array.isArray(b)) {
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) diff(a[i], b[i], `${path}[${i}]`, out);
    return;
  }
  const objA = typeof a === 'object' && a !== null && !Array.isArray(a) && !(a instanceof Date) && !ArrayBuffer.isView(a);
  const objB = typeof b === 'object' && b !== null && !Array.isArray(b) && !(b instanceof Date) && !ArrayBuffer.isView(b);
  if (objA && objB) {
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(ra), ...Object.keys(rb)])].sort()) diff(ra[k], rb[k], `${path}.${k}`, out);
    return;
  }
  let same: boolean;
  try {
    same = canonicalize(a) === canonicalize(b);
  } catch {
    same = Object.is(a, b);
  }
  if (!same) out.push({ path, kind: 'changed', a, b });
}
