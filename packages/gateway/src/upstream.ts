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
import { STATUS_CODES } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { FetchLike } from '@strata-cache/http';
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
  const fetch: FetchLike = (input, init) => {
    const body = init?.body;
    const simple =
      (typeof input === 'string' || input instanceof URL) &&
      (body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer);
    return simple ? request(agent, input, init) : viaFetch(input, init);
  };
  return {
    name,
    baseUrl: config.baseUrl.replace(/\/+$/, ''),
    passthrough: config.credentials === 'passthrough',
    authHeader: config.authHeader ?? (name === 'anthropic' ? 'x-api-key' : 'authorization'),
    credential,
    fetch,
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

/** `fetch(url, init)` for a string or bytes body, over undici's `request()`. */
async function request(agent: Agent, input: string | URL, init: RequestInit | undefined): Promise<Response> {
  const url = typeof input === 'string' ? new URL(input) : input;
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
  const out = new UndiciHeaders();
  for (const name in res.headers) {
    const v = res.headers[name];
    if (Array.isArray(v)) for (const x of v) out.append(name, x);
    else if (v !== undefined) out.append(name, v);
  }
  let stream: Readable | null = res.body;
  if (method === 'HEAD' || NULL_BODY.has(res.statusCode)) {
    res.body.resume();
    stream = null;
  } else {
    const decoded = decode(out.get('content-encoding'), res.body);
    if (decoded !== res.body) {
      out.delete('content-encoding');
      out.delete('content-length');
      stream = decoded;
    }
  }
  return new UndiciResponse(stream as unknown as ConstructorParameters<typeof UndiciResponse>[0], {
    status: res.statusCode,
    statusText: STATUS_CODES[res.statusCode] ?? '',
    headers: out,
  }) as unknown as Response;
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
