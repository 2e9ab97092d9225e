import { type CallOptions, type MultiLayerCache, type ScopeInput, sealRequest } from '@strata-cache/core';
import { type Control, readControl, withoutControl } from './control.js';
import { type ReadRequest, readRequest, requestMethod, requestUrl } from './request-body.js';
import { propertyOrder } from './schema-order.js';
import { cachedProfile } from './stream-forms.js';
import type { EndpointSpec, FetchLike, ReplayPacing, ScopeOption } from './types.js';

/** Everything the caching fetch of one client knows. */
export interface CachingFetchConfig {
  readonly packageName: string;
  readonly cache: MultiLayerCache;
  readonly scope: ScopeOption | undefined;
  readonly endpoints: readonly EndpointSpec[];
  /** Request headers that change the answer (API version, beta flags); lower-case. */
  readonly keyHeaders: readonly string[];
  /** Query parameters that change the answer (Azure's `api-version`). @default [] */
  readonly keyQuery?: readonly string[] | undefined;
  /** Response header the SDK reads into `_request_id`. */
  readonly requestIdHeader: string;
  readonly upstream: FetchLike;
  readonly pacing: ReplayPacing;
  readonly ttlMs: number | undefined;
  readonly tags: readonly string[];
}

/** One request through the caching fetch, built once and handed to the JSON or the stream path. */
export interface HttpCall {
  readonly config: CachingFetchConfig;
  readonly spec: EndpointSpec;
  /** What is fingerprinted: the key body plus `strata_http` (server, mode, key headers). */
  readonly keyRequest: Record<string, unknown>;
  /** The key request of the same call in its non-stream form. */
  readonly jsonKeyRequest: Record<string, unknown>;
  readonly stream: boolean;
  readonly options: CallOptions;
  /** What goes upstream: the URL and the init without control headers. */
  readonly url: string;
  readonly init: RequestInit;
  readonly signal: AbortSignal | undefined;
}

/** A request the caching fetch passes through, and why (counted when `reason` is set). */
export interface PassThrough {
  readonly reason?: string;
  readonly input: string | URL | Request;
  readonly init: RequestInit | undefined;
}

/**
 * Builds the call for a request, or says how to pass it through. Requests that are not a POST
 * to a cached endpoint pass through without a reason (they were never candidates).
 */
export function prepareCall(
  config: CachingFetchConfig,
  input: string | URL | Request,
  init: RequestInit | undefined,
  parsed?: Record<string, unknown>,
  kept?: KeptRequests,
): HttpCall | PassThrough | Promise<HttpCall | PassThrough> {
  if (requestMethod(input, init) !== 'POST') return passThrough(input, init);
  const url = requestUrl(input);
  const spec = url && config.endpoints.find((e) => url.pathname.endsWith(e.path));
  if (!url || !spec) return passThrough(input, init);
  const read = readRequest(url, input, init);
  // `parsed` stands for the body only when the body is the string it was parsed from.
  const known = parsed !== undefined && typeof init?.body === 'string' ? parsed : undefined;
  return read instanceof Promise
    ? read.then((r) => fromRead(config, spec, input, init, r, known, kept))
    : fromRead(config, spec, input, init, read, known, kept);
}

/** What a request's key is made of: the same for every request with the same body, URL and key headers. */
interface KeyParts {
  readonly spec: EndpointSpec;
  readonly keyRequest: Record<string, unknown>;
  readonly jsonKeyRequest: Record<string, unknown>;
  readonly stream: boolean;
  /** The parsed body (the scope function and the call options read it). */
  readonly body: Record<string, unknown>;
}

// A body longer than this many characters is not kept (each is parsed and fingerprinted per call, as before).
const MAX_KEPT_TEXT = 64 * 1024;

interface Kept {
  readonly id: KeptId;
  /** Undefined while the body has been seen once: nothing is built or kept for it yet. */
  parts: KeyParts | undefined;
  readonly table: KeptRequests;
  /** What it counts against the process's budget. */
  weight: number;
}

/** What `KeptRequests.find` says of a body seen once before, whose parts are not kept yet. */
export const SEEN_ONCE = Symbol('seen once');

/** Where a request's kept parts are, or would be. */
export interface KeptId {
  readonly url: string;
  /** The key headers' values, length-prefixed (no value can shift the next). */
  readonly headers: string;
  readonly text: string;
  /** What the table finds the text by (see `lookupKey`). */
  readonly lookup: number;
}

/** Characters of a body its lookup key samples, spread evenly over it (see `lookupKey`). */
const SAMPLED_CHARS = 128;
/** Characters at the end of a body its lookup key takes whole (where a chat's newest turn is). */
const TAIL_CHARS = 32;
/**
 * Bodies one lookup key holds at most. Past that, a body whose samples coincide with theirs is not
 * kept (it is parsed and fingerprinted on every call, as a body seen for the first time is).
 */
export const MAX_SAME_LOOKUP = 8;

/**
 * What a body is found by: a 32-bit hash of its length, 128 characters spread evenly over it and
 * its last 32 characters — not of every character. A body just received carries no hash of
 * itself, and hashing all of it per call (its SHA-256, or the engine's own string hash when the
 * text is the Map key) took 1–3.5 µs for a 0.9 KB body in a loaded server; this takes a small
 * fixed time at any length. Bodies that differ only between the samples share a key: the text is
 * always compared in full before kept parts are used, and a key holds at most `MAX_SAME_LOOKUP`
 * bodies (so bodies made to collide cost at most that many comparisons).
 */
export function lookupKey(text: string): number {
  const n = text.length;
  let h = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b);
  if (n <= SAMPLED_CHARS + TAIL_CHARS) {
    for (let i = 0; i < n; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  } else {
    const step = (n - TAIL_CHARS) / SAMPLED_CHARS;
    for (let i = 0; i < SAMPLED_CHARS; i++) h = Math.imul(h ^ text.charCodeAt(Math.floor(i * step)), 0x01000193);
    for (let i = n - TAIL_CHARS; i < n; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  // Final mix (MurmurHash3's), so nearby inputs spread over the Map's buckets.
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/**
 * The key parts of request bodies a caching fetch has seen, by URL, key headers and body text:
 * a byte-identical request (a support bot's repeated question, an SDK's retry) skips parsing,
 * building its key request and fingerprinting — its key request is sealed (`sealRequest`), so
 * core hashes it once per scope. A body is kept from its second sight: the first is only noted
 * (most bodies are never sent again, and parsing a copy of each and sealing it cost a miss more
 * than the keeping saved). Found by the body text (by a hash of its length and a sample of
 * its characters, see `lookupKey`, then compared in full), then by URL and key headers. Each caching fetch has its own
 * table (a tenant's requests never find another's), all share one budget of the process: at most
 * `maxEntries` entries and `maxChars` characters (each entry counts three times its body's
 * length, for the parsed body and the key request it keeps besides the text); the oldest entry of
 * the process goes first.
 */
export class KeptRequests {
  /** By `lookupKey` of the body text. */
  private readonly byText = new Map<number, Kept[]>();

  constructor(private readonly budget: KeptBudget = PROCESS_BUDGET) {}

  get size(): number {
    let n = 0;
    for (const same of this.byText.values()) n += same.length;
    return n;
  }

  /** A request's identity, or undefined for a body too long to keep. */
  idOf(config: CachingFetchConfig, request: ReadRequest): KeptId | undefined {
    if (request.text.length > MAX_KEPT_TEXT) return undefined;
    let headers = '';
    for (const name of config.keyHeaders) {
      const v = request.headers.get(name);
      headers += v === null ? '-' : `${v.length}:${v}`;
    }
    return { url: request.url.href, headers, text: request.text, lookup: lookupKey(request.text) };
  }

  /** The kept parts of a request, `SEEN_ONCE` for a body noted once (see `note`), or undefined. */
  find(id: KeptId): KeyParts | typeof SEEN_ONCE | undefined {
    const k = this.entry(id);
    return k === undefined ? undefined : (k.parts ?? SEEN_ONCE);
  }

  /** The kept parts of a request, or undefined. */
  get(id: KeptId): KeyParts | undefined {
    return this.entry(id)?.parts;
  }

  /** Notes a body seen for the first time: it counts its text against the budget, nothing is kept. */
  note(id: KeptId): void {
    this.add(id, undefined);
  }

  /** Keeps a request's parts (a body noted before becomes kept, and the newest of the budget). */
  keep(id: KeptId, parts: KeyParts): void {
    const k = this.entry(id);
    if (k === undefined) this.add(id, parts);
    else if (k.parts === undefined) {
      k.parts = parts;
      this.budget.reweigh(k, keptWeight(id, parts));
    }
  }

  private entry(id: KeptId): Kept | undefined {
    const same = this.byText.get(id.lookup);
    if (same === undefined) return undefined;
    for (const k of same) if (sameRequest(k.id, id)) return k;
    return undefined;
  }

  private add(id: KeptId, parts: KeyParts | undefined): void {
    let same = this.byText.get(id.lookup);
    if (same === undefined) this.byText.set(id.lookup, (same = []));
    else if (same.length >= MAX_SAME_LOOKUP || same.some((k) => sameRequest(k.id, id))) return;
    const k: Kept = { id, parts, table: this, weight: keptWeight(id, parts) };
    same.push(k);
    this.budget.add(k);
  }

  /** Called by the budget when `k` is dropped. */
  forget(k: Kept): void {
    const same = this.byText.get(k.id.lookup);
    if (same === undefined) return;
    const i = same.indexOf(k);
    if (i >= 0) same.splice(i, 1);
    if (same.length === 0) this.byText.delete(k.id.lookup);
  }
}

/** A body noted once counts its text; a kept one three times its text (the parsed body and key requests it keeps besides). */
function keptWeight(id: KeptId, parts: KeyParts | undefined): number {
  return (parts === undefined ? 1 : 3) * id.text.length + id.url.length + id.headers.length;
}

/** The same body text, URL and key headers (the lookup key follows from the text). */
function sameRequest(a: KeptId, b: KeptId): boolean {
  return a.text === b.text && a.url === b.url && a.headers === b.headers;
}

/** What all kept requests of a process may hold; the oldest entry goes first. */
export class KeptBudget {
  private readonly order = new Set<Kept>();
  private chars = 0;

  constructor(
    readonly maxEntries = 4096,
    readonly maxChars = 16 * 1024 * 1024,
  ) {}

  get entries(): number {
    return this.order.size;
  }

  add(k: Kept): void {
    this.order.add(k);
    this.chars += k.weight;
    this.fit();
  }

  /** `k` weighs `weight` now, and is the newest entry. */
  reweigh(k: Kept, weight: number): void {
    if (!this.order.delete(k)) return;
    this.chars += weight - k.weight;
    k.weight = weight;
    this.order.add(k);
    this.fit();
  }

  private fit(): void {
    while (this.order.size > this.maxEntries || this.chars > this.maxChars) {
      const oldest = this.order.values().next().value as Kept;
      this.order.delete(oldest);
      this.chars -= oldest.weight;
      oldest.table.forget(oldest);
    }
  }
}

const PROCESS_BUDGET = new KeptBudget();

function fromRead(
  config: CachingFetchConfig,
  spec: EndpointSpec,
  input: string | URL | Request,
  init: RequestInit | undefined,
  read: Awaited<ReturnType<typeof readRequest>>,
  parsed: Record<string, unknown> | undefined,
  kept: KeptRequests | undefined,
): HttpCall | PassThrough {
  if (!('request' in read)) return passThrough(input, read.replay ?? init, read.reason);
  const { request } = read;
  const id = kept?.idOf(config, request);
  let seenOnce = false;
  if (id !== undefined) {
    const known = kept!.find(id);
    if (known === SEEN_ONCE) seenOnce = true;
    else if (known !== undefined) return finishCall(config, known, request);
  }
  // A body seen for the first time is used as it is (the caller's parse when there is one). Parts
  // that are kept (from a body's second sight) are sealed (deep-frozen): they get a parse of their
  // own, never the caller's object.
  let body: unknown = seenOnce ? undefined : parsed;
  if (body === undefined) {
    try {
      body = JSON.parse(request.text);
    } catch {
      body = undefined;
    }
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return passThrough(request.url.href, request.init, 'body-not-json');
  const b = body as Record<string, unknown>;
  const stream = b['stream'] === true;
  if (stream && !spec.streams) return passThrough(request.url.href, request.init, 'stream-not-cached');
  const why = spec.uncachedReason?.(b);
  if (why !== undefined) return passThrough(request.url.href, request.init, why);
  const parts = keyParts(config, spec, request, b, stream);
  if (id === undefined) return finishCall(config, parts, request);
  if (!seenOnce) kept!.note(id);
  else if (Object.isFrozen(sealRequest(parts.body))) {
    // Kept, so read-only from now on: the body a scope function is handed, and the key requests.
    // The body first: the key requests hold parts of it, so when it cannot be sealed (nested too
    // deep) nothing is frozen and nothing is kept.
    sealRequest(parts.keyRequest);
    sealRequest(parts.jsonKeyRequest);
    if (Object.isFrozen(parts.keyRequest) && Object.isFrozen(parts.jsonKeyRequest)) kept!.keep(id, parts);
  }
  return finishCall(config, parts, request);
}

function keyParts(config: CachingFetchConfig, spec: EndpointSpec, request: ReadRequest, b: Record<string, unknown>, stream: boolean): KeyParts {
  const { url, headers } = request;
  // What shapes the answer besides the body: which server (a local model behind an
  // OpenAI-compatible baseURL is not api.openai.com), API version headers and parameters, and
  // the wire form of the answer (JSON vs SSE, with or without a usage chunk). Never auth headers.
  const http: Record<string, unknown> = { endpoint: url.origin + url.pathname, mode: stream ? 'sse' : 'json' };
  const keyHeaders = pick(config.keyHeaders, (name) => headers.get(name));
  if (keyHeaders) http['headers'] = keyHeaders;
  const keyQuery = config.keyQuery?.length && url.search !== '' ? pick(config.keyQuery, (name) => url.searchParams.get(name)) : undefined;
  if (keyQuery) http['query'] = keyQuery;
  const order = spec.schemas ? propertyOrder(spec.schemas(b)) : undefined;
  if (order) http['propertyOrder'] = order;
  const jsonHttp = stream ? { ...http, mode: 'json' } : http;
  if (stream && b['stream_options'] !== undefined) http['streamOptions'] = b['stream_options'];
  const keyBody = spec.keyBody ? spec.keyBody(b) : b;
  const keyRequest = { ...keyBody, strata_http: http };
  const jsonKeyRequest = stream ? { ...keyBody, strata_http: jsonHttp } : keyRequest;
  return { spec, keyRequest, jsonKeyRequest, stream, body: b };
}

/** The call for one request: its key parts, and what is its own (control headers, options, what goes upstream). */
function finishCall(config: CachingFetchConfig, parts: KeyParts, request: ReadRequest): HttpCall {
  const { url, headers } = request;
  const control = readControl(config.packageName, headers);
  // Control headers never leave; `headers` are the request's own, already parsed.
  const stripped = withoutControl(headers, request.init.headers ?? []);
  const upstreamInit = stripped ? { ...request.init, headers: stripped } : request.init;
  return {
    config,
    spec: parts.spec,
    keyRequest: parts.keyRequest,
    jsonKeyRequest: parts.jsonKeyRequest,
    stream: parts.stream,
    options: callOptions(config, parts.spec, parts.body, url.pathname, control),
    url: url.href,
    init: upstreamInit,
    signal: upstreamInit.signal ?? undefined,
  };
}

function pick(names: readonly string[], get: (name: string) => string | null): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const name of names) {
    const v = get(name);
    if (v !== null) (out ??= {})[name] = v;
  }
  return out;
}

function callOptions(config: CachingFetchConfig, spec: EndpointSpec, body: Record<string, unknown>, path: string, control: Control): CallOptions {
  let scope: ScopeInput | undefined = typeof config.scope === 'function' ? config.scope({ body, path }) : config.scope;
  if (control.tenant !== undefined || control.namespace !== undefined) {
    const base = config.cache.resolveScope(scope);
    scope = { tenant: control.tenant ?? base.tenant, namespace: control.namespace ?? base.namespace };
  }
  const tags = control.tags ? [...config.tags, ...control.tags] : config.tags;
  const ttlMs = control.ttlMs ?? config.ttlMs;
  // Set field by field (no spread of a small object per option: this runs on every hit).
  const options: CallOptions = { profile: cachedProfile(config, spec) };
  if (scope !== undefined) options.scope = scope;
  if (control.mode === 'bypass') options.bypass = true;
  else if (control.mode === 'refresh') options.forceRefresh = true;
  else if (control.mode === 'no-store') options.noStore = true;
  if (ttlMs !== undefined) options.ttlMs = ttlMs;
  if (tags.length > 0) options.tags = tags;
  if (control.semantic === false) options.semantic = false;
  return options;
}

function passThrough(input: string | URL | Request, init: RequestInit | undefined, reason?: string): PassThrough {
  return reason === undefined ? { input, init } : { input, init, reason };
}

export function isCall(x: HttpCall | PassThrough): x is HttpCall {
  return 'spec' in x;
}
