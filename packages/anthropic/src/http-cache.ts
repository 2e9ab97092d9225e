// A caching `fetch` for JSON-over-HTTP LLM APIs. Shared verbatim by @strata-cache/openai and
// @strata-cache/anthropic (a test keeps the two copies identical): each adapter supplies the
// provider's endpoints, their request profiles and how to read usage off its responses.
//
// Why a fetch and not method wrappers: the SDKs parse and type whatever fetch returns, so
// replaying the provider's own response body (or its SSE events) keeps every SDK method, helper
// and stream class working unchanged, with the SDK's own types.
import {
  type CallOptions,
  type CacheEntry,
  type LookupHit,
  type MultiLayerCache,
  type RequestProfile,
  type ScopeInput,
  type TokenUsage,
  InvalidOptionError,
  loaded,
} from '@strata-cache/core';

/** A fetch function as the SDKs call it. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** One recorded server-sent event. `t` is ms since the response started (for paced replay). */
export interface RecordedEvent {
  event?: string;
  data: string;
  t: number;
}

/** What a provider adapter tells the caching fetch about one endpoint. */
export interface EndpointSpec {
  /** The request path ends with this (`/chat/completions`). */
  readonly path: string;
  readonly profile: RequestProfile;
  /** Whether `stream: true` requests to this endpoint are cached (SSE). */
  readonly streams: boolean;
  /** The request as it is fingerprinted (e.g. without prompt-cache markers); the body sent is unchanged. @default the body */
  keyBody?(body: Record<string, unknown>): Record<string, unknown>;
  /** False: pass the request through uncached (e.g. a background job). */
  acceptRequest?(body: Record<string, unknown>): boolean;
  /** False: hand the JSON answer over but do not store it (e.g. a failed or queued response). */
  acceptBody?(body: any): boolean;
  /** Usage of a JSON response body. */
  usage(body: any): TokenUsage | undefined;
  /**
   * True when `fromEvents(...).value` is exactly the body a non-streaming request would have
   * returned: a completed stream is then also stored in its non-stream form, so a later
   * non-streaming request is a hit. (Never the other way round: a replayed stream would have
   * to invent its chunking.)
   */
  readonly streamValueIsJsonBody?: boolean;
  /** Usage, model and the assembled provider-native value of a completed stream. */
  fromEvents(events: readonly RecordedEvent[]): { usage?: TokenUsage; model?: string; value: unknown };
  /** True when the events end the way a normally completed stream ends (and carry no error). */
  complete(events: readonly RecordedEvent[]): boolean;
}

/** Hit information, read back with `getCacheInfo`. */
export interface CacheInfo {
  /** True when the response was served from the cache (no upstream call). */
  readonly hit: boolean;
  /** Layer that answered a hit. */
  readonly layer?: string;
  /** Age of the entry that answered, ms. */
  readonly ageMs?: number;
  /** Cosine similarity, for semantic hits. */
  readonly similarity?: number;
  /** Hash part of the entry's cache key (never contains request content). */
  readonly key?: string;
}

/** Per-request cache control, sent as request headers (removed before the request leaves). */
export interface RequestCacheControl {
  /** Skip the cache: no read, no write. */
  bypass?: boolean;
  /** Skip the read, call the provider, store the fresh answer. */
  forceRefresh?: boolean;
  /** Read, but do not store the answer. */
  noStore?: boolean;
  /** TTL of the stored entry, ms. */
  ttlMs?: number;
  /** Tags of the stored entry (for invalidation). Must not contain commas. */
  tags?: readonly string[];
  /** Tenant for this request (overrides the client's scope). */
  tenant?: string;
  /** Namespace for this request (overrides the client's scope). */
  namespace?: string;
  /** `false` skips semantic layers for this request. */
  semantic?: boolean;
}

/** Context handed to a `scope` function. */
export interface ScopeContext {
  /** The JSON request body. */
  readonly body: Record<string, unknown>;
  /** Request path, e.g. `/v1/chat/completions`. */
  readonly path: string;
}

export interface ReplayPacing {
  /**
   * `none`: replay as fast as the consumer reads. `recorded`: keep the original gaps between
   * events (capped by `maxGapMs`). A number: that many ms between events.
   */
  readonly mode: 'none' | 'recorded' | number;
  readonly maxGapMs: number;
}

export interface CachingFetchConfig {
  readonly packageName: string;
  readonly cache: MultiLayerCache;
  readonly scope: ScopeInput | ((ctx: ScopeContext) => ScopeInput | undefined) | undefined;
  readonly endpoints: readonly EndpointSpec[];
  /** Request headers that change the answer (API version, beta flags); lower-case. */
  readonly keyHeaders: readonly string[];
  /** Response header the SDK reads into `_request_id`. */
  readonly requestIdHeader: string;
  readonly upstream: FetchLike;
  readonly pacing: ReplayPacing;
  readonly ttlMs: number | undefined;
  readonly tags: readonly string[];
}

const CONTROL_PREFIX = 'x-strata-';
const HIT_PREFIX = 'strata-hit.';
const STATUS_HEADER = 'x-strata-cache';
const enc = new TextEncoder();

/** Headers to pass as the SDK's per-request `headers` option: `create(body, { headers: cacheControl({ forceRefresh: true }) })`. */
export function cacheControl(control: RequestCacheControl): Record<string, string> {
  const h: Record<string, string> = {};
  const mode = control.bypass ? 'bypass' : control.forceRefresh ? 'refresh' : control.noStore ? 'no-store' : undefined;
  if (mode) h['x-strata-cache-mode'] = mode;
  if (control.ttlMs !== undefined) h['x-strata-ttl-ms'] = String(control.ttlMs);
  if (control.tags?.length) h['x-strata-tags'] = control.tags.map(encodeURIComponent).join(',');
  if (control.tenant !== undefined) h['x-strata-tenant'] = encodeURIComponent(control.tenant);
  if (control.namespace !== undefined) h['x-strata-namespace'] = encodeURIComponent(control.namespace);
  if (control.semantic === false) h['x-strata-semantic'] = 'off';
  return h;
}

/**
 * Cache information of an SDK result: the parsed object (reads its `_request_id`), the
 * `{ data, response }` of `.withResponse()`, a `Response`, `Headers`, or a stream object with
 * `request_id`. Undefined when the value was not served by a Strata caching client.
 */
export function getCacheInfo(value: unknown): CacheInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof Headers !== 'undefined' && value instanceof Headers) return fromHeaders(value);
  if (typeof Response !== 'undefined' && value instanceof Response) return fromHeaders(value.headers);
  if (v['response'] instanceof Response) return fromHeaders(v['response'].headers);
  for (const field of ['_request_id', 'request_id']) {
    let id: unknown;
    try {
      id = v[field];
    } catch {
      id = undefined;
    }
    if (typeof id === 'string') return decodeHitId(id);
  }
  return undefined;
}

function fromHeaders(h: Headers): CacheInfo | undefined {
  const status = h.get(STATUS_HEADER);
  if (status === 'hit') {
    for (const name of ['x-request-id', 'request-id']) {
      const info = decodeHitId(h.get(name) ?? '');
      if (info) return info;
    }
    return { hit: true };
  }
  return status === 'miss' ? { hit: false } : undefined;
}

function encodeHitId(hit: LookupHit): string {
  const info: Record<string, unknown> = { l: hit.layer, a: Math.max(0, Math.round(hit.ageMs)), k: hit.key.hash };
  if (hit.similarity !== undefined) info['s'] = hit.similarity;
  return HIT_PREFIX + Buffer.from(JSON.stringify(info)).toString('base64url');
}

function decodeHitId(id: string): CacheInfo | undefined {
  if (!id.startsWith(HIT_PREFIX)) return undefined;
  try {
    const o = JSON.parse(Buffer.from(id.slice(HIT_PREFIX.length), 'base64url').toString('utf8')) as Record<string, unknown>;
    return {
      hit: true,
      ...(typeof o['l'] === 'string' ? { layer: o['l'] } : {}),
      ...(typeof o['a'] === 'number' ? { ageMs: o['a'] } : {}),
      ...(typeof o['s'] === 'number' ? { similarity: o['s'] } : {}),
      ...(typeof o['k'] === 'string' ? { key: o['k'] } : {}),
    };
  } catch {
    return undefined;
  }
}

/** An upstream answer that must reach the caller unchanged and never be stored. */
class PassThrough {
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly headers: Headers,
    readonly body: ArrayBuffer,
  ) {}
  toResponse(): Response {
    return new Response(this.status === 204 || this.status === 304 ? null : this.body.slice(0), { status: this.status, statusText: this.statusText, headers: this.headers });
  }
}

interface Prepared {
  readonly spec: EndpointSpec;
  readonly keyRequest: Record<string, unknown>;
  /** The key request of the same call in its non-stream form. */
  readonly jsonKeyRequest: Record<string, unknown>;
  readonly stream: boolean;
  readonly call: CallOptions;
  readonly init: RequestInit;
  readonly url: string;
}

/** Builds the caching fetch. */
export function createCachingFetch(config: CachingFetchConfig): FetchLike {
  const { cache, upstream } = config;

  return async function strataFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    // Request objects carry their body in a stream; the SDKs never pass one, so do not cache them.
    if (typeof input !== 'string' && !(input instanceof URL)) return upstream(input, init);
    const prepared = prepare(config, String(input), init);
    if (!prepared) return upstream(input, init === undefined ? init : stripControl(init));
    if (prepared.stream) return fetchStream(config, prepared);
    const signal = prepared.init.signal ?? undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        return await untilAborted(fetchJson(config, prepared), signal);
      } catch (error) {
        // Identical concurrent misses share one upstream call, made with the first caller's
        // signal. If that caller gave up, the others were not aborted: they try again.
        if (attempt < 3 && isAbortError(error) && !signal?.aborted) continue;
        throw error;
      }
    }
  };

  async function fetchJson(cfg: CachingFetchConfig, p: Prepared): Promise<Response> {
    let missHeaders: Headers | undefined;
    let missBytes: ArrayBuffer | undefined;
    try {
      const r = await cache.getOrLoad<unknown>(
        p.keyRequest,
        async () => {
          const res = await upstream(p.url, p.init);
          if (res.status !== 200) throw new PassThrough(res.status, res.statusText, res.headers, await res.arrayBuffer());
          const buf = await res.arrayBuffer();
          let body: unknown;
          try {
            body = isJsonType(res.headers.get('content-type')) ? JSON.parse(new TextDecoder().decode(buf)) : undefined;
          } catch {
            body = undefined;
          }
          // Not a JSON object after all (a proxy page, an empty body): hand it over untouched, keep nothing.
          if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new PassThrough(res.status, res.statusText, res.headers, buf);
          if (p.spec.acceptBody && !p.spec.acceptBody(body)) throw new PassThrough(res.status, res.statusText, res.headers, buf);
          missHeaders = res.headers;
          missBytes = buf;
          const usage = p.spec.usage(body);
          const model = typeof (body as { model?: unknown })?.model === 'string' ? (body as { model: string }).model : undefined;
          return loaded(body, { ...(usage ? { usage } : {}), ...(model ? { model } : {}) });
        },
        p.call,
      );
      if (r.status === 'hit') {
        return new Response(JSON.stringify(r.value), { status: 200, headers: hitHeaders(cfg, { key: r.key, layer: r.layer!, ageMs: r.ageMs ?? 0, ...(r.similarity !== undefined ? { similarity: r.similarity } : {}) }, 'application/json') });
      }
      const headers = new Headers(missHeaders ?? { 'content-type': 'application/json' });
      headers.delete('content-length');
      headers.delete('content-encoding');
      headers.set(STATUS_HEADER, r.status === 'bypass' ? 'bypass' : 'miss');
      // The caller whose loader ran gets the provider's bytes; callers coalesced onto it get the same value re-encoded.
      return new Response(missBytes && !r.coalesced ? missBytes : JSON.stringify(r.value), { status: 200, headers });
    } catch (error) {
      if (error instanceof PassThrough) return error.toResponse();
      throw error;
    }
  }

  async function fetchStream(cfg: CachingFetchConfig, p: Prepared): Promise<Response> {
    const hit = await cache.lookup(p.keyRequest, p.call);
    const events = hit?.entry.chunks as RecordedEvent[] | undefined;
    if (hit && Array.isArray(events)) return replay(cfg, hit, events, p.init.signal ?? undefined);
    const sinceEpoch = cache.currentEpoch;
    const res = await upstream(p.url, p.init);
    const type = res.headers.get('content-type') ?? '';
    if (res.status !== 200 || !res.body || !type.includes('text/event-stream')) return res;
    const headers = new Headers(res.headers);
    headers.delete('content-length');
    headers.delete('content-encoding');
    headers.set(STATUS_HEADER, 'miss');
    const body = record(res.body, p.spec, (recorded) => {
      const { value, usage, model } = p.spec.fromEvents(recorded);
      const meta = { ...(usage ? { usage } : {}), ...(model ? { model } : {}) };
      cache.store(p.keyRequest, loaded(value, { chunks: recorded, ...meta }), { ...p.call, sinceEpoch }).catch(() => undefined);
      if (p.spec.streamValueIsJsonBody && typeof value === 'object' && value !== null) {
        cache.store(p.jsonKeyRequest, loaded(value, meta), { ...p.call, sinceEpoch, recordUsage: false }).catch(() => undefined);
      }
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers });
  }
}

function isJsonType(contentType: string | null): boolean {
  const media = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  return media === 'application/json' || media.endsWith('+json');
}

function isAbortError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError';
}

/** Settles with `promise`, or rejects as soon as `signal` aborts (a caller waiting on a shared call must still be able to leave). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason ?? new DOMException('The operation was aborted.', 'AbortError'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new DOMException('The operation was aborted.', 'AbortError'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Tees an SSE body: bytes go to the caller as they arrive; events are recorded; `onComplete` runs only for a complete stream. */
function record(source: ReadableStream<Uint8Array>, spec: EndpointSpec, onComplete: (events: RecordedEvent[]) => void): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  const parser = new SseParser();
  const started = performance.now();
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    const events = parser.end(performance.now() - started);
    if (spec.complete(events)) onComplete(events);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let r: { done: boolean; value?: Uint8Array };
      try {
        r = await reader.read();
      } catch (error) {
        finished = true; // an upstream error mid-stream: the recording is discarded
        controller.error(error);
        return;
      }
      if (r.done) {
        controller.close();
        finish();
        return;
      }
      parser.push(r.value!, performance.now() - started);
      controller.enqueue(r.value!);
    },
    async cancel(reason) {
      // The consumer stopped reading. Keep the recording only if the provider had already
      // sent the stream's final event; anything short of that is a truncated answer.
      if (!finished) {
        finished = true;
        const events = parser.end(performance.now() - started);
        if (spec.complete(events)) onComplete(events);
      }
      await reader.cancel(reason).catch(() => undefined);
    },
  });
}

function replay(cfg: CachingFetchConfig, hit: LookupHit, events: readonly RecordedEvent[], signal: AbortSignal | undefined): Response {
  let i = 0;
  let prevT = 0;
  const { mode, maxGapMs } = cfg.pacing;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (signal?.aborted) {
        controller.error(signal.reason ?? new DOMException('The operation was aborted.', 'AbortError'));
        return;
      }
      if (i >= events.length) {
        controller.close();
        return;
      }
      const e = events[i++]!;
      if (mode !== 'none' && i > 1) {
        const gap = mode === 'recorded' ? Math.min(maxGapMs, Math.max(0, e.t - prevT)) : mode;
        if (gap > 0) await sleep(gap, signal);
      }
      prevT = e.t;
      controller.enqueue(enc.encode(serializeEvent(e)));
    },
  });
  return new Response(body, { status: 200, headers: hitHeaders(cfg, hit, 'text/event-stream; charset=utf-8') });
}

function hitHeaders(cfg: CachingFetchConfig, hit: Pick<LookupHit, 'key' | 'layer' | 'ageMs' | 'similarity'>, contentType: string): Headers {
  return new Headers({
    'content-type': contentType,
    [cfg.requestIdHeader]: encodeHitId(hit as LookupHit),
    [STATUS_HEADER]: 'hit',
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export function serializeEvent(e: Pick<RecordedEvent, 'event' | 'data'>): string {
  let out = e.event !== undefined ? `event: ${e.event}\n` : '';
  for (const line of e.data.split('\n')) out += `data: ${line}\n`;
  return out + '\n';
}

/** Incremental SSE parser (WHATWG event-stream rules; comments and `retry` ignored). */
export class SseParser {
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private event: string | undefined;
  private data: string[] = [];
  private readonly events: RecordedEvent[] = [];

  push(bytes: Uint8Array, t: number): void {
    this.buffer += this.decoder.decode(bytes, { stream: true });
    this.drain(t);
  }

  end(t: number): RecordedEvent[] {
    this.buffer += this.decoder.decode();
    this.drain(t);
    // A final event without its blank line was cut off: drop it.
    return this.events;
  }

  private drain(t: number): void {
    const buf = this.buffer;
    const eol = /\r\n|\r|\n/g;
    let start = 0;
    for (let m = eol.exec(buf); m; m = eol.exec(buf)) {
      // A lone '\r' at the end may be the first half of '\r\n': wait for more bytes.
      if (m[0] === '\r' && m.index === buf.length - 1) break;
      this.line(buf.slice(start, m.index), t);
      start = m.index + m[0].length;
    }
    if (start > 0) this.buffer = buf.slice(start);
  }

  private line(line: string, t: number): void {
    if (line === '') {
      if (this.data.length > 0 || this.event !== undefined) {
        this.events.push({ ...(this.event !== undefined ? { event: this.event } : {}), data: this.data.join('\n'), t: Math.round(t) });
      }
      this.event = undefined;
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
  }
}

/** Removes Strata's control headers (they must never reach the provider). */
function stripControl(init: RequestInit): RequestInit {
  if (!init.headers) return init;
  const h = new Headers(init.headers);
  let changed = false;
  for (const name of [...h.keys()]) {
    if (name.startsWith(CONTROL_PREFIX)) {
      h.delete(name);
      changed = true;
    }
  }
  return changed ? { ...init, headers: h } : init;
}

function prepare(cfg: CachingFetchConfig, url: string, init: RequestInit | undefined): Prepared | undefined {
  if (!init || (init.method ?? 'GET').toUpperCase() !== 'POST' || typeof init.body !== 'string') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const spec = cfg.endpoints.find((e) => parsed.pathname.endsWith(e.path));
  if (!spec) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(init.body);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  const stream = b['stream'] === true;
  if (stream && !spec.streams) return undefined;
  if (spec.acceptRequest && !spec.acceptRequest(b)) return undefined;

  const headers = new Headers(init.headers);
  const control = readControl(cfg, headers);
  const keyHeaders: Record<string, string> = {};
  for (const name of cfg.keyHeaders) {
    const v = headers.get(name);
    if (v !== null) keyHeaders[name] = v;
  }
  // What shapes the answer besides the body: which server (a local model behind an
  // OpenAI-compatible baseURL is not api.openai.com), API version headers, and the wire
  // form of the answer (JSON vs SSE, with or without a usage chunk). Never auth headers.
  const http: Record<string, unknown> = { endpoint: parsed.origin + parsed.pathname, mode: stream ? 'sse' : 'json' };
  if (Object.keys(keyHeaders).length > 0) http['headers'] = keyHeaders;
  if (stream && b['stream_options'] !== undefined) http['streamOptions'] = b['stream_options'];
  const keyBody = spec.keyBody ? spec.keyBody(b) : b;
  const keyRequest = { ...keyBody, strata_http: http };
  const { streamOptions: _so, ...jsonHttp } = http;
  const jsonKeyRequest = stream ? { ...keyBody, strata_http: { ...jsonHttp, mode: 'json' } } : keyRequest;

  let scope: ScopeInput | undefined = typeof cfg.scope === 'function' ? cfg.scope({ body: b, path: parsed.pathname }) : cfg.scope;
  if (control.tenant !== undefined || control.namespace !== undefined) {
    const base = cfg.cache.resolveScope(scope);
    scope = { tenant: control.tenant ?? base.tenant, namespace: control.namespace ?? base.namespace };
  }
  const tags = [...cfg.tags, ...(control.tags ?? [])];
  const call: CallOptions = {
    profile: spec.profile,
    ...(scope !== undefined ? { scope } : {}),
    ...(control.mode === 'bypass' ? { bypass: true } : {}),
    ...(control.mode === 'refresh' ? { forceRefresh: true } : {}),
    ...(control.mode === 'no-store' ? { noStore: true } : {}),
    ...(control.ttlMs !== undefined ? { ttlMs: control.ttlMs } : cfg.ttlMs !== undefined ? { ttlMs: cfg.ttlMs } : {}),
    ...(tags.length > 0 ? { tags } : {}),
    ...(control.semantic === false ? { semantic: false } : {}),
  };
  return { spec, keyRequest, jsonKeyRequest, stream, call, init: stripControl(init), url };
}

interface Control {
  mode?: 'bypass' | 'refresh' | 'no-store';
  ttlMs?: number;
  tags?: string[];
  tenant?: string;
  namespace?: string;
  semantic?: boolean;
}

function readControl(cfg: CachingFetchConfig, h: Headers): Control {
  const c: Control = {};
  const mode = h.get('x-strata-cache-mode');
  if (mode !== null) {
    if (mode !== 'bypass' && mode !== 'refresh' && mode !== 'no-store') {
      throw new InvalidOptionError(`${cfg.packageName}: header x-strata-cache-mode must be bypass, refresh or no-store (use cacheControl())`, { field: 'x-strata-cache-mode' });
    }
    c.mode = mode;
  }
  const ttl = h.get('x-strata-ttl-ms');
  if (ttl !== null) {
    const n = Number(ttl);
    if (!(n > 0)) throw new InvalidOptionError(`${cfg.packageName}: header x-strata-ttl-ms must be a positive number (use cacheControl({ ttlMs }))`, { field: 'ttlMs' });
    c.ttlMs = n;
  }
  const tags = h.get('x-strata-tags');
  if (tags) c.tags = tags.split(',').map((t) => decodeURIComponent(t.trim())).filter(Boolean);
  const tenant = h.get('x-strata-tenant');
  if (tenant !== null) c.tenant = decodeURIComponent(tenant);
  const ns = h.get('x-strata-namespace');
  if (ns !== null) c.namespace = decodeURIComponent(ns);
  if (h.get('x-strata-semantic') === 'off') c.semantic = false;
  return c;
}

/** Shared option checks. */
export function checkPacing(packageName: string, replay: unknown): ReplayPacing {
  if (replay === undefined) return { mode: 'none', maxGapMs: 1000 };
  if (typeof replay !== 'object' || replay === null) throw new InvalidOptionError(`${packageName}: option "replay" must be an object`, { field: 'replay' });
  const r = replay as { pacing?: unknown; maxGapMs?: unknown };
  const mode = r.pacing ?? 'none';
  if (mode !== 'none' && mode !== 'recorded' && !(typeof mode === 'number' && mode >= 0 && Number.isFinite(mode))) {
    throw new InvalidOptionError(`${packageName}: option "replay.pacing" must be 'none', 'recorded' or a number of ms`, { field: 'replay.pacing' });
  }
  const maxGapMs = r.maxGapMs ?? 1000;
  if (typeof maxGapMs !== 'number' || !(maxGapMs >= 0)) throw new InvalidOptionError(`${packageName}: option "replay.maxGapMs" must be a non-negative number`, { field: 'replay.maxGapMs' });
  return { mode: mode as ReplayPacing['mode'], maxGapMs };
}

/** Entries this package wrote for a stream carry their SSE events in `chunks`. */
export function isStreamEntry(entry: CacheEntry): boolean {
  return Array.isArray(entry.chunks);
}
