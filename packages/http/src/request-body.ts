// Reads what a fetch call sends, in whichever form the caller used: `fetch(url, init)` with a
// string, bytes, a Blob or a stream as the body, or `fetch(request)`. The body is read once and
// what goes upstream is rebuilt from those bytes, so the request the provider receives is the
// one that was fingerprinted.

/** Request headers as the caching fetch reads them: a `Headers`, or a map of the same names and values. */
export interface HeaderLookup {
  /** The value `Headers.get` would give, or null. */
  get(name: string): string | null;
  /** The names, lower-case. */
  keys(): Iterable<string>;
}

/** A POST with its body read, ready to be fingerprinted and sent. */
export interface ReadRequest {
  readonly url: URL;
  readonly headers: HeaderLookup;
  /** The body as text (UTF-8). */
  readonly text: string;
  /** What to send upstream (control headers still in; the caller strips them). */
  readonly init: RequestInit;
}

/** Why a request to a cached endpoint could not be read as JSON text. */
export type UnreadableBody = 'body-form' | 'body-not-utf8';

const utf8 = new TextDecoder('utf-8', { fatal: true });

// URLs parsed lately: a client calls a handful of endpoint URLs over and over. Only ever read, so
// one parse serves every request to the same URL.
const parsedUrls = new Map<string, URL>();
const MAX_PARSED_URLS = 256;

/**
 * The request's URL, or undefined when it does not parse: parsed once per URL string (the last
 * 256 kept). The URL object is shared by every caller of the same string: read it, never change it.
 */
export function requestUrl(input: string | URL | Request): URL | undefined {
  if (input instanceof URL) return input;
  const href = typeof input === 'string' ? input : input.url;
  let url = parsedUrls.get(href);
  if (url) return url;
  try {
    url = new URL(href);
  } catch {
    return undefined;
  }
  if (parsedUrls.size >= MAX_PARSED_URLS) parsedUrls.clear();
  parsedUrls.set(href, url);
  return url;
}

export function requestMethod(input: string | URL | Request, init: RequestInit | undefined): string {
  const method = init?.method ?? (typeof input === 'object' && !(input instanceof URL) ? input.method : 'GET');
  // The usual spelling needs no new string.
  return method === 'POST' ? method : method.toUpperCase();
}

/**
 * Reads the body of a POST. Returns the request with its body as text, or why it has no text
 * form (form data is never JSON). `replay` is what must be sent upstream instead of the
 * original when the body was a one-shot stream that reading consumed.
 */
export function readRequest(url: URL, input: string | URL | Request, init: RequestInit | undefined): ReadResult | Promise<ReadResult> {
  const body = init?.body ?? undefined;
  // What the SDKs send, answered without a promise (this is every cached call's hot path).
  if (typeof body === 'string' && (typeof input === 'string' || input instanceof URL))
    return { request: { url, headers: headerLookup(init!.headers), text: body, init: init! } };
  return readAnyBody(url, input, init);
}

type ReadResult = { request: ReadRequest } | { reason: UnreadableBody; replay?: RequestInit };

async function readAnyBody(url: URL, input: string | URL | Request, init: RequestInit | undefined): Promise<ReadResult> {
  const isRequest = typeof input === 'object' && !(input instanceof URL);
  const body = init?.body ?? undefined;
  if (typeof body === 'string')
    return { request: { url, headers: headersOf(input, init, isRequest), text: body, init: isRequest ? fromRequest(input, init, body) : init! } };
  let bytes: Uint8Array | undefined;
  if (body === undefined && isRequest) {
    if (input.body === null) return { request: { url, headers: headersOf(input, init, true), text: '', init: fromRequest(input, init, '') } };
    // A clone, so the original stays readable for a pass-through.
    bytes = new Uint8Array(await input.clone().arrayBuffer());
  } else if (body instanceof ArrayBuffer) bytes = new Uint8Array(body);
  else if (ArrayBuffer.isView(body)) bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  else if (typeof Blob !== 'undefined' && body instanceof Blob) bytes = new Uint8Array(await body.arrayBuffer());
  else if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) {
    bytes = new Uint8Array(await new Response(body).arrayBuffer());
    const replay: RequestInit = { ...withoutStreamOptions(init!), body: bytes };
    const text = decode(bytes);
    return text === undefined
      ? { reason: 'body-not-utf8', replay }
      : { request: { url, headers: headersOf(input, init, isRequest), text, init: isRequest ? fromRequest(input, init, bytes) : replay } };
  } else if (body === undefined || body === null) bytes = new Uint8Array(0);
  else return { reason: 'body-form' }; // FormData, URLSearchParams: never a JSON body
  const text = decode(bytes);
  if (text === undefined) return { reason: 'body-not-utf8' };
  return { request: { url, headers: headersOf(input, init, isRequest), text, init: isRequest ? fromRequest(input, init, bytes) : init! } };
}

function decode(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Headers as fetch sees them: `init.headers` replaces a Request's own. */
function headersOf(input: string | URL | Request, init: RequestInit | undefined, isRequest: boolean): HeaderLookup {
  if (init?.headers !== undefined) return headerLookup(init.headers);
  return isRequest ? (input as Request).headers : NO_HEADERS;
}

class HeaderMap implements HeaderLookup {
  private readonly map = new Map<string, string>();
  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }
  keys(): Iterable<string> {
    return this.map.keys();
  }
  add(name: string, value: unknown): void {
    const n = name.toLowerCase();
    // As Headers keeps a value: a string, trimmed of HTTP whitespace; a repeated name joined with ", ".
    let v = typeof value === 'string' ? value : String(value);
    if (v !== '' && (isHttpWhitespace(v.charCodeAt(0)) || isHttpWhitespace(v.charCodeAt(v.length - 1)))) v = v.replace(HTTP_WHITESPACE, '');
    const had = this.map.get(n);
    this.map.set(n, had === undefined ? v : `${had}, ${v}`);
  }
}

const HTTP_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;
const isHttpWhitespace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const NO_HEADERS: HeaderLookup = new HeaderMap();

/**
 * `init.headers` read without copying it into a new `Headers` — which checks, lower-cases and
 * sorts every header on every call, the largest part of the request work of a cache hit. A
 * `Headers` is read as it is; a record or a list of pairs becomes a map of the same names and
 * values. Nothing here is sent: what goes upstream is `init` itself, checked by the fetch that
 * sends it.
 */
export function headerLookup(headers: RequestInit['headers']): HeaderLookup {
  if (headers === undefined || headers === null) return NO_HEADERS;
  if (headers instanceof Headers) return headers;
  const out = new HeaderMap();
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    // Pairs (or another fetch implementation's Headers, which iterates as pairs).
    for (const pair of headers as Iterable<readonly unknown[]>) {
      if (pair.length !== 2) throw new TypeError('Headers: each header must be a [name, value] pair');
      out.add(String(pair[0]), pair[1]);
    }
  } else {
    const record = headers as Record<string, unknown>;
    for (const name in record) out.add(name, record[name]);
  }
  return out;
}

/** `fetch(request, init)` as url + init, with the body already read. */
function fromRequest(request: Request, init: RequestInit | undefined, body: string | Uint8Array): RequestInit {
  return {
    method: init?.method ?? request.method,
    headers: init?.headers ?? request.headers,
    body: body as NonNullable<RequestInit['body']>,
    signal: init?.signal ?? request.signal,
    redirect: init?.redirect ?? request.redirect,
    ...(init?.keepalive !== undefined ? { keepalive: init.keepalive } : {}),
  };
}

/** A stream body needs `duplex: 'half'`; the bytes that replace it must not carry it. */
function withoutStreamOptions(init: RequestInit): RequestInit {
  const { duplex: _d, ...rest } = init as RequestInit & { duplex?: unknown };
  return rest;
}
