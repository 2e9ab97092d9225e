import { InvalidOptionError } from '@strata-cache/core';
import type { FetchLike } from './types.js';

/**
 * Response headers in either form a caching fetch handles: a `Headers`, or a plain record with
 * lower-case names where a header sent more than once (`set-cookie`) holds its values in order.
 */
export type HeaderSource = Headers | Readonly<Record<string, string | readonly string[]>>;

/**
 * An upstream answer read whole, in plain form: what an upstream that is not a WHATWG fetch (a
 * server's own HTTP client pool) hands a caching fetch for a JSON request, without a `Response`
 * or a web stream around bytes it has in hand. See `withWholeAnswers`.
 */
export interface WholeAnswer {
  readonly status: number;
  readonly statusText: string;
  /** Names lower-case; a header sent more than once holds its values in order. */
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  /** The whole body, its content-encoding undone (as `fetch` hands it over). */
  readonly body: Uint8Array;
}

/** Sends a request and reads its answer whole: what `fetch(url, init)` and reading the body do, in one step. */
export type WholeFetch = (url: string, init: RequestInit) => Promise<WholeAnswer>;

const WHOLE = Symbol.for('strata-cache.http.whole');

/**
 * An upstream `fetch` that also answers whole: a caching fetch in front of it sends JSON
 * (non-stream) requests through `whole` and streams, pass-throughs and everything else through
 * `fetch`. Both must send the same request to the same place; `whole` must undo content-encoding
 * as `fetch` does and fail as `fetch` would (a rejected promise for a network error, a timeout or
 * an abort; an error status is an answer). `fetch` itself is not changed: a new function is returned.
 */
export function withWholeAnswers(fetch: FetchLike, whole: WholeFetch): FetchLike {
  if (typeof fetch !== 'function') throw new InvalidOptionError('@strata-cache/http: withWholeAnswers needs a fetch function', { field: 'fetch' });
  if (typeof whole !== 'function') throw new InvalidOptionError('@strata-cache/http: withWholeAnswers needs a whole-answer function', { field: 'whole' });
  const f: FetchLike = (input, init) => fetch(input, init);
  Object.defineProperty(f, WHOLE, { value: whole });
  return f;
}

/** The whole-answer function attached to an upstream fetch by `withWholeAnswers`, if any. */
export function wholeFetchOf(fetch: FetchLike): WholeFetch | undefined {
  const whole = (fetch as unknown as Record<symbol, unknown>)[WHOLE];
  return typeof whole === 'function' ? (whole as WholeFetch) : undefined;
}

/** A `Headers` (of whichever fetch implementation made it), not a record. */
export function isHeaders(headers: HeaderSource): headers is Headers {
  return typeof (headers as Headers).forEach === 'function';
}

/** One header's value (several joined by ", ", as `Headers.get` joins them), or null. */
export function headerValue(headers: HeaderSource, name: string): string | null {
  if (isHeaders(headers)) return headers.get(name);
  const v = headers[name];
  return v === undefined ? null : typeof v === 'string' ? v : v.join(', ');
}

/** Headers a `Response` accepts: a record with single values as it is, one with repeated headers as a `Headers`. */
export function headersInit(headers: HeaderSource): Headers | Readonly<Record<string, string>> {
  if (isHeaders(headers)) return headers;
  let repeated = false;
  for (const name in headers) if (typeof headers[name] !== 'string') repeated = true;
  if (!repeated) return headers as Readonly<Record<string, string>>;
  const out = new Headers();
  for (const name in headers) {
    const v = headers[name]!;
    if (typeof v === 'string') out.append(name, v);
    else for (const x of v) out.append(name, x);
  }
  return out;
}
