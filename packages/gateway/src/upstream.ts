// Upstream HTTP: undici over a pool per upstream. The caching fetch of @strata-cache/http calls
// this as its `fetch`; undici's own timeouts bound every upstream call (time to the response
// headers, silence between body chunks, connecting).
//
// The usual request — a string or bytes body to a URL — goes through undici's `request()`, which
// writes the request head and body in one write; undici's `fetch()` always sends a body as a
// stream (head and body in separate writes, the upstream woken twice), which cost a miss about a
// quarter of a millisecond on loopback. The answer is handed back as a `Response`, as fetch would:
// the same compression negotiated and undone, the same errors. Anything else (a `Request`
// object, a stream body) still goes through `fetch()`.
//
// A JSON request of the caching fetch is answered whole (`withWholeAnswers`): status, the headers
// as undici parsed them and the decoded bytes, read straight off undici's body — building a
// `Response` and reading it through a web stream cost a miss about 0.1–0.15 ms.
import { STATUS_CODES } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { type FetchLike, type WholeAnswer, requestUrl, withWholeAnswers } from '@strata-cache/http';
import { Agent, Headers as UndiciHeaders, Response as UndiciResponse, fetch as undiciFetch } from 'undici';
import type { UpstreamConfig } from './config.js';

export interface Upstream {
  readonly name: 'openai' | 'anthropic';
  /** Base URL without a trailing slash. */
  readonly baseUrl: string;
  readonly passthrough: boolean;
  /** Header that carries the credential upstream, and how its value is written. */
  readonly authHeader: 'authorization' | 'x-api-key' | 'api-key';
  /** The credential the gateway holds (gateway mode only). Kept out of every log and key. */
  readonly credential: string | undefined;
  readonly fetch: FetchLike;
  close(): Promise<void>;
}

export function createUpstream(name: 'openai' | 'anthropic', config: UpstreamConfig, credential: string | undefined): Upstream {
  const agent = new Agent({
    connections: config.connections,
    headersTimeout: config.timeoutMs,
    bodyTimeout: config.idleTimeoutMs,
    connectTimeout: config.connectTimeoutMs,
    keepAliveTimeout: 30_000,
  });
  const viaFetch: FetchLike = (input, init) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher: agent,
    }) as unknown as Promise<Response>;
  const fetch: FetchLike = (input, init) =>
    (typeof input === 'string' || input instanceof URL) && isSimpleBody(init?.body) ? request(agent, input, init) : viaFetch(input, init);
  return {
    name,
    baseUrl: config.baseUrl.replace(/\/+$/, ''),
    passthrough: config.credentials === 'passthrough',
    authHeader: config.authHeader ?? (name === 'anthropic' ? 'x-api-key' : 'authorization'),
    credential,
    fetch: withWholeAnswers(fetch, (url, init) => whole(agent, viaFetch, url, init)),
    close: () => agent.close(),
  };
}

/** The credential header to send upstream for a caller who presented `presented`. */
export function credentialHeader(upstream: Upstream, presented: string): [string, string] {
  const value = upstream.passthrough ? presented : upstream.credential!;
  return [upstream.authHeader, upstream.authHeader === 'authorization' ? `Bearer ${value}` : value];
}

// Statuses whose response has no body (a Response refuses one).
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** An upstream answer as undici hands it: headers a plain record, the body decoded (null when it has none). */
interface Sent {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: Readable | null;
}

/** Sends a string or bytes body to a URL over undici's `request()`, and undoes the answer's content-encoding as fetch would. */
async function send(agent: Agent, input: string | URL, init: RequestInit | undefined): Promise<Sent> {
  // Parsed once per URL (the caching fetch calls the same few route URLs over and over).
  const url = requestUrl(input);
  if (url === undefined) throw new TypeError(`Invalid URL: ${String(input)}`);
  const method = (init?.method ?? 'GET').toUpperCase();
  const headers = requestHeaders(init?.headers);
  // What fetch asks for, and undoes below: the caller's own accept-encoding never reaches here.
  if (headers['accept-encoding'] === undefined) headers['accept-encoding'] = url.protocol === 'https:' ? 'br, gzip, deflate' : 'gzip, deflate';
  const body = init?.body as string | Uint8Array | ArrayBuffer | null | undefined;
  const res = await agent.request({
    origin: url.origin,
    path: url.pathname + url.search,
    method: method as 'POST',
    headers,
    body: body instanceof ArrayBuffer ? new Uint8Array(body) : (body ?? null),
    signal: init?.signal ?? undefined,
  });
  const received = res.headers as Record<string, string | string[] | undefined>;
  if (method === 'HEAD' || NULL_BODY.has(res.statusCode)) {
    res.body.resume();
    return { status: res.statusCode, headers: received as Record<string, string | string[]>, body: null };
  }
  const encoding = received['content-encoding'];
  const decoded = encoding === undefined ? res.body : decode(typeof encoding === 'string' ? encoding : encoding.join(', '), res.body);
  if (decoded === res.body) return { status: res.statusCode, headers: received as Record<string, string | string[]>, body: res.body };
  // Relayed decoded: the length and encoding no longer describe it.
  const out: Record<string, string | string[]> = {};
  for (const name in received) if (name !== 'content-encoding' && name !== 'content-length' && received[name] !== undefined) out[name] = received[name]!;
  return { status: res.statusCode, headers: out, body: decoded };
}

/** `fetch(url, init)` for a string or bytes body, over undici's `request()`. */
async function request(agent: Agent, input: string | URL, init: RequestInit | undefined): Promise<Response> {
  const sent = await send(agent, input, init);
  const out = new UndiciHeaders();
  for (const name in sent.headers) {
    const v = sent.headers[name]!;
    if (Array.isArray(v)) for (const x of v) out.append(name, x);
    else out.append(name, v);
  }
  return new UndiciResponse(sent.body as unknown as ConstructorParameters<typeof UndiciResponse>[0], {
    status: sent.status,
    statusText: STATUS_CODES[sent.status] ?? '',
    headers: out,
  }) as unknown as Response;
}

const NO_BYTES = new Uint8Array(0);

/**
 * The answer to a JSON request read whole, as the caching fetch asks for it (`withWholeAnswers`):
 * status, the headers as undici parsed them and the decoded bytes — no `Response`, no web stream.
 */
async function whole(agent: Agent, viaFetch: FetchLike, url: string, init: RequestInit): Promise<WholeAnswer> {
  if (!isSimpleBody(init.body)) {
    const res = await viaFetch(url, init);
    return { status: res.status, statusText: res.statusText, headers: headerRecord(res.headers), body: new Uint8Array(await res.arrayBuffer()) };
  }
  const sent = await send(agent, url, init);
  const statusText = STATUS_CODES[sent.status] ?? '';
  if (sent.body === null) return { status: sent.status, statusText, headers: sent.headers, body: NO_BYTES };
  const chunks: Buffer[] = [];
  for await (const chunk of sent.body) chunks.push(chunk as Buffer);
  return { status: sent.status, statusText, headers: sent.headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) };
}

function isSimpleBody(body: RequestInit['body']): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer;
}

/** A `Headers` as a record, each `set-cookie` kept apart. */
function headerRecord(h: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  h.forEach((value, name) => {
    if (name !== 'set-cookie') out[name] = value;
  });
  const cookies = h.getSetCookie();
  if (cookies.length > 0) out['set-cookie'] = cookies;
  return out;
}

function requestHeaders(h: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (h === undefined || h === null) return out;
  if (typeof (h as Headers).forEach === 'function' && !Array.isArray(h)) {
    (h as Headers).forEach((value, name) => {
      out[name] = value;
    });
  } else if (Array.isArray(h)) {
    for (const [name, value] of h as [string, string][]) out[name.toLowerCase()] = value;
  } else {
    for (const name in h as Record<string, string>) out[name.toLowerCase()] = (h as Record<string, string>)[name]!;
  }
  return out;
}

const DECODERS: Record<string, () => Transform> = { gzip: createGunzip, 'x-gzip': createGunzip, br: createBrotliDecompress, deflate: createInflate };

/** The body with its content-encoding undone, as fetch does (the body is relayed decoded). */
function decode(encoding: string | null, body: Readable): Readable {
  if (encoding === null) return body;
  const codings = encoding
    .toLowerCase()
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '' && c !== 'identity');
  // An encoding fetch would not undo either: handed over as sent.
  if (codings.some((c) => DECODERS[c] === undefined)) return body;
  let out: Readable = body;
  // Applied in order, so undone in reverse.
  for (const c of codings.reverse()) {
    const z = DECODERS[c]!();
    out.once('error', (e) => z.destroy(e));
    out = out.pipe(z);
  }
  return out;
}
