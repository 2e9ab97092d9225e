// The public routes: each request is authenticated, its control headers checked, and then sent
// through the provider's caching fetch (@strata-cache/openai / @strata-cache/anthropic, i.e. the
// one caching fetch of @strata-cache/http) to the upstream; its answer — from the cache or the
// upstream — is relayed as it came: JSON bytes, or the event stream chunk by chunk.
import { setMaxListeners } from 'node:events';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { InvalidOptionError, InvalidRequestError } from '@strata-cache/core';
import { type FetchAnswer, type FetchLike, fetchAnswer } from '@strata-cache/http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type CacheStatus, controlHeaders, readControl, responseHeaders, statusOf } from './control.js';
import { GatewayError } from './errors.js';
import type { ScopedFetches } from './fetches.js';
import { type Caller, type PresentedKey, scopeOf } from './keys.js';
import { type Upstream, credentialHeader } from './upstream.js';

/** A route the gateway caches. */
export interface CachedRoute {
  /** Path the caller uses. */
  readonly path: string;
  /** Name in metrics and logs. */
  readonly name: string;
  readonly upstream: 'openai' | 'anthropic';
  /** Path appended to the upstream's base URL. */
  readonly suffix: string;
}

export const CACHED_ROUTES: readonly CachedRoute[] = Object.freeze([
  { path: '/v1/chat/completions', name: 'chat.completions', upstream: 'openai', suffix: '/chat/completions' },
  { path: '/v1/responses', name: 'responses', upstream: 'openai', suffix: '/responses' },
  { path: '/v1/embeddings', name: 'embeddings', upstream: 'openai', suffix: '/embeddings' },
  { path: '/v1/messages', name: 'messages', upstream: 'anthropic', suffix: '/v1/messages' },
]);

/** What the gateway knows about a request while it serves it (logged and counted at the end). */
export interface RequestState {
  route: string;
  caller?: Caller;
  presented?: PresentedKey;
  cache?: CacheStatus | 'error';
  layer?: string;
  upstreamMs?: number;
}

/** A parsed JSON request body: the text as received (sent upstream unchanged) and its object form. */
export interface JsonBody {
  readonly text: string;
  readonly json: Record<string, unknown>;
}

// Request headers never sent upstream: hop-by-hop, the caller's credentials (the upstream gets its
// own, or the caller's in pass-through mode, set explicitly), cookies, and Strata control headers
// (re-added in the caching fetch's form, which strips them before the request leaves).
const DROP_REQUEST = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'expect',
  'authorization',
  'x-api-key',
  'api-key',
  'cookie',
  'accept-encoding',
]);

// Response headers not relayed: hop-by-hop, framing (the body is relayed decoded), cookies of the
// upstream's session, and anything the upstream calls x-strata-* (only the gateway says those).
const DROP_RESPONSE = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'content-encoding',
  'set-cookie',
  'trailer',
  'upgrade',
  'date',
  'proxy-authenticate',
]);

export function upstreamRequestHeaders(
  src: FastifyRequest['headers'],
  upstream: Upstream,
  presented: PresentedKey,
  extra?: Record<string, string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in src) {
    if (DROP_REQUEST.has(name) || name.startsWith('x-strata-')) continue;
    const v = src[name];
    if (v === undefined) continue;
    out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  const [h, v] = credentialHeader(upstream, presented.key);
  out[h] = v;
  if (extra) Object.assign(out, extra);
  return out;
}

export interface ProxyContext {
  readonly upstreams: { readonly openai?: Upstream | undefined; readonly anthropic?: Upstream | undefined };
  readonly fetches: ScopedFetches;
  readonly maxRequestTtlMs: number;
  onUpstreamError(upstream: string, kind: string): void;
  onStream(started: boolean): void;
}

/** Serves one cached route. */
export async function serveCached(ctx: ProxyContext, route: CachedRoute, req: FastifyRequest, reply: FastifyReply, state: RequestState): Promise<void> {
  const upstream = ctx.upstreams[route.upstream];
  if (!upstream)
    throw new GatewayError(
      404,
      'not_found_error',
      `${route.path} is not served: this gateway has no "${route.upstream}" upstream (config upstreams.${route.upstream})`,
    );
  const body = req.body as JsonBody | undefined;
  if (body === undefined) throw new GatewayError(400, 'invalid_request_error', 'a JSON body is required (content-type: application/json)');
  const control = readControl(req.headers, ctx.maxRequestTtlMs);
  const headers = upstreamRequestHeaders(req.headers, upstream, state.presented!, controlHeaders(control));
  // The tenant is chosen here, by which caching fetch serves the call: the caller's scope's.
  const fetch = fetchOf(ctx, route.upstream, state.caller!, upstream.passthrough);
  const signal = callerSignal(req);
  const started = performance.now();
  let answer: FetchAnswer;
  try {
    // The answer in plain form (no Response, no web stream for a body already in hand); the body
    // was parsed by the gateway's JSON parser and is not parsed again.
    answer = await fetchAnswer(fetch, upstreamUrl(upstream, route), { method: 'POST', headers, body: body.text, signal }, body.json);
  } catch (error) {
    throw upstreamFailure(ctx, upstream, error, signal);
  }
  const info = answer.info;
  state.cache = statusOf(info);
  if (info?.layer) state.layer = info.layer;
  if (!info?.hit) state.upstreamMs = performance.now() - started;
  await relayAnswer(ctx, answer, reply, responseHeaders(info), upstream, signal);
}

// Each upstream's URL of each route, built once: the caching fetch finds a URL it has parsed by
// its text, which a string built per request would make it hash again every time.
const routeUrls = new WeakMap<Upstream, Map<CachedRoute, string>>();

function upstreamUrl(upstream: Upstream, route: CachedRoute): string {
  let urls = routeUrls.get(upstream);
  if (!urls) routeUrls.set(upstream, (urls = new Map()));
  let url = urls.get(route);
  if (url === undefined) urls.set(route, (url = upstream.baseUrl + route.suffix));
  return url;
}

// The caching fetch of each caller (callers are kept by the key table, one per key), so a
// request does not rebuild its scope's name to look it up.
const callerFetches = new WeakMap<Caller, { openai?: FetchLike; anthropic?: FetchLike }>();

function fetchOf(ctx: ProxyContext, name: 'openai' | 'anthropic', caller: Caller, passthrough: boolean): FetchLike {
  let byUpstream = callerFetches.get(caller);
  if (!byUpstream) {
    byUpstream = {};
    callerFetches.set(caller, byUpstream);
  }
  return (byUpstream[name] ??= ctx.fetches.get(name, scopeOf(caller, passthrough)));
}

/** `GET /v1/models` (and `/v1/models/:id`): passed through, authenticated, never cached. */
export async function serveModels(ctx: ProxyContext, req: FastifyRequest, reply: FastifyReply, state: RequestState): Promise<void> {
  // The Anthropic SDK always sends anthropic-version; everyone else gets the OpenAI-compatible upstream.
  const wantsAnthropic = req.headers['anthropic-version'] !== undefined && ctx.upstreams.anthropic !== undefined;
  const upstream = wantsAnthropic ? ctx.upstreams.anthropic : (ctx.upstreams.openai ?? ctx.upstreams.anthropic);
  if (!upstream) throw new GatewayError(404, 'not_found_error', '/v1/models is not served: no upstream configured');
  // The id as routed (decoded): "." and ".." would move the upstream URL out of the models path
  // (a URL resolves them, also written %2e%2e), to whatever the upstream serves at its base URL.
  const id = (req.params as { model?: string }).model;
  if (id === '.' || id === '..') throw new GatewayError(404, 'not_found_error', `no model "${id}"`);
  // The id's segment and the query as the caller wrote them (also when the path was percent-encoded or absolute-form).
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const rest = (id === undefined ? '' : path.slice(path.lastIndexOf('/'))) + (q < 0 ? '' : req.url.slice(q));
  const url = upstream.baseUrl + (upstream.name === 'anthropic' ? '/v1/models' : '/models') + rest;
  const signal = callerSignal(req);
  let res: Response;
  try {
    res = await upstream.fetch(url, { method: 'GET', headers: upstreamRequestHeaders(req.headers, upstream, state.presented!), signal });
  } catch (error) {
    throw upstreamFailure(ctx, upstream, error, signal);
  }
  state.cache = 'bypass';
  await relay(ctx, res, reply, { 'x-strata-cache': 'bypass' }, upstream, signal);
}

const kCallerSignal = Symbol('strata.gateway.caller-signal');
/** Listeners a connection's signal takes before Node warns of a leak. */
const MAX_PIPELINED_LISTENERS = 1024;
type SocketWithSignal = Socket & { [kCallerSignal]?: AbortSignal };

/**
 * Aborts when the caller goes away before its answer is complete. One signal per connection,
 * aborted when it closes: a connection's requests come one after another (an HTTP/1.1 response
 * closes before it is finished only with its connection), so a request whose answer is complete
 * never sees it abort, and a cache hit does not pay for a controller and a listener of its own.
 *
 * The connection is the request's socket: a pipelined request's response has none until the
 * responses before it are sent, and taking that for a caller who left would answer nothing and
 * stall the connection. Pipelined requests are in flight together on the one signal, each upstream
 * call listening to it (and removing its listener when done), so it takes more listeners than
 * Node's default 10 before it warns: only a deeper pipeline, or listeners left behind, warn.
 */
function callerSignal(req: FastifyRequest): AbortSignal {
  const socket = req.raw.socket as SocketWithSignal | null;
  if (socket === null || socket.destroyed) return AbortSignal.abort(callerGone());
  let signal = socket[kCallerSignal];
  if (signal === undefined) {
    const ac = new AbortController();
    setMaxListeners(MAX_PIPELINED_LISTENERS, ac.signal);
    signal = socket[kCallerSignal] = ac.signal;
    socket.once('close', () => ac.abort(callerGone()));
  }
  return signal;
}

function callerGone(): GatewayError {
  return new GatewayError(499, 'client_closed', 'the caller closed the connection');
}

async function relay(
  ctx: ProxyContext,
  res: Response,
  reply: FastifyReply,
  extra: Record<string, string>,
  upstream: Upstream,
  signal: AbortSignal,
): Promise<void> {
  reply.code(res.status);
  let contentType = '';
  for (const [name, value] of res.headers) {
    if (DROP_RESPONSE.has(name) || name.startsWith('x-strata-')) continue;
    if (name === 'content-type') contentType = value;
    reply.header(name, value);
  }
  reply.headers(extra);
  if (res.body && contentType.includes('text/event-stream')) {
    ctx.onStream(true);
    const stream = Readable.from(streamed(ctx, res.body as unknown as NodeReadableStream<Uint8Array>, upstream, signal), { objectMode: false });
    stream.once('close', () => ctx.onStream(false));
    await reply.send(stream);
    return;
  }
  let text: string;
  try {
    // Bodies here are JSON (or a provider's error page): text. Node writes a string body together
    // with the headers in one write, where a Buffer takes a second, gathered one.
    text = await res.text();
  } catch (error) {
    throw upstreamFailure(ctx, upstream, error, signal);
  }
  await reply.send(text);
}

/**
 * The chunks of an upstream stream. One that breaks after its headers were sent can only be cut:
 * the caller sees a truncated stream (and nothing incomplete is stored, the caching fetch sees to
 * that). One that breaks before its first chunk reached the caller is answered as the upstream
 * failure it is (502), not as an error of the gateway.
 */
async function* streamed(ctx: ProxyContext, body: NodeReadableStream<Uint8Array>, upstream: Upstream, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of body) yield chunk;
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    ctx.onUpstreamError(upstream.name, 'stream');
    const code = errorCode(error);
    throw new GatewayError(502, 'api_error', `the ${upstream.name} upstream's stream broke off${code ? ` (${code})` : ''}`, { cause: error });
  }
}

const utf8 = new TextDecoder();

/** Relays a caching fetch's answer: a body in hand is sent in one write with the headers; a stream as `relay` does. */
async function relayAnswer(
  ctx: ProxyContext,
  answer: FetchAnswer,
  reply: FastifyReply,
  extra: Record<string, string>,
  upstream: Upstream,
  signal: AbortSignal,
): Promise<void> {
  const { body } = answer;
  if (body !== null && typeof body === 'object' && !(body instanceof ArrayBuffer)) {
    await relay(
      ctx,
      new Response(body, { status: answer.status, statusText: answer.statusText, headers: answer.headers as Headers }),
      reply,
      extra,
      upstream,
      signal,
    );
    return;
  }
  reply.code(answer.status);
  let contentType = '';
  const headers = answer.headers;
  if (Symbol.iterator in headers) {
    // A Headers (of whichever fetch implementation made it).
    for (const [name, value] of headers as Headers) contentType = copyHeader(reply, name, value, contentType);
  } else {
    // A hit's headers, or an upstream's whole answer (a header sent more than once holds its values).
    const record = headers as Readonly<Record<string, string | readonly string[]>>;
    for (const name in record) contentType = copyHeader(reply, name, record[name]!, contentType);
  }
  reply.headers(extra);
  // An unpaced replay of a stored stream, whole: counted as a stream, like one sent event by event.
  const sse = contentType.includes('text/event-stream');
  if (sse) ctx.onStream(true);
  try {
    // A string goes out together with the headers in one write (see `relay`); bytes are decoded as `res.text()` would.
    await reply.send(body === null ? '' : typeof body === 'string' ? body : utf8.decode(body));
  } finally {
    if (sse) ctx.onStream(false);
  }
}

function copyHeader(reply: FastifyReply, name: string, value: string | readonly string[], contentType: string): string {
  if (DROP_RESPONSE.has(name) || name.startsWith('x-strata-')) return contentType;
  reply.header(name, value);
  return name === 'content-type' ? (typeof value === 'string' ? value : value.join(', ')) : contentType;
}

/** The HTTP error for an upstream call that failed before its answer (timeouts 504, the rest 502). */
function upstreamFailure(ctx: ProxyContext, upstream: Upstream, error: unknown, signal: AbortSignal): unknown {
  if (error instanceof GatewayError) return error;
  if (signal.aborted) return signal.reason;
  // A request the cache cannot key (a number JSON parses as Infinity, nesting too deep): the caller's to fix.
  if (InvalidOptionError.isInstance(error) || InvalidRequestError.isInstance(error))
    return new GatewayError(400, 'invalid_request_error', error.message, { cause: error });
  const code = errorCode(error);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    ctx.onUpstreamError(upstream.name, 'timeout');
    return new GatewayError(504, 'timeout_error', `the ${upstream.name} upstream did not answer in time (${code})`, { cause: error });
  }
  ctx.onUpstreamError(upstream.name, code && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|UND_ERR_SOCKET|EHOSTUNREACH/.test(code) ? 'connect' : 'other');
  return new GatewayError(502, 'api_error', `the ${upstream.name} upstream could not be reached${code ? ` (${code})` : ''}`, { cause: error });
}

function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}
