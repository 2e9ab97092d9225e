import type { CacheInfo } from './hit-info.js';
import { type HeaderSource, headersInit } from './whole.js';

/**
 * What a caching fetch answers, before it becomes a `Response`: for servers that write the
 * answer to their own response (the gateway) and need neither a `Response` nor a web stream
 * for an answer whose bytes are already in hand. `fetchAnswer` returns it.
 */
export interface FetchAnswer {
  readonly status: number;
  readonly statusText: string;
  /**
   * Response headers, names lower-case: a `Headers` (the provider's), or a plain record (a hit's,
   * or an upstream's whole answer, see `withWholeAnswers`) where a header the upstream sent more
   * than once (`set-cookie`) holds its values in order.
   */
  readonly headers: HeaderSource;
  /** The whole body (JSON answers; a replayed stream that is not paced), a body being relayed, or none. */
  readonly body: string | ArrayBuffer | ReadableStream<Uint8Array> | null;
  /** What `getCacheInfo` would read from the `Response`. */
  readonly info: CacheInfo | undefined;
}

/** The answer as the `Response` a caching fetch returns. */
export function toResponse(a: FetchAnswer): Response {
  return new Response(a.body, { status: a.status, statusText: a.statusText, headers: headersInit(a.headers) as Headers });
}

/** A provider's `Response` handed on as it is. */
export function fromResponse(res: Response, info: CacheInfo | undefined): FetchAnswer {
  return { status: res.status, statusText: res.statusText, headers: res.headers, body: res.body, info };
}

/**
 * An encoder that keeps its result per value when the value is frozen: a memory layer hands out
 * the same deeply frozen entry on every hit, so its body is encoded once, not once per hit.
 */
export function encodeOnce<T extends object>(encode: (value: T) => string): (value: T) => string {
  const done = new WeakMap<T, string>();
  return (value) => {
    if (!Object.isFrozen(value)) return encode(value);
    let s = done.get(value);
    if (s === undefined) {
      s = encode(value);
      done.set(value, s);
    }
    return s;
  };
}
