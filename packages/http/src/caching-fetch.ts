// A caching `fetch` for JSON-over-HTTP LLM APIs. Each provider adapter supplies the provider's
// endpoints, their request profiles and how to read usage off its responses.
//
// Why a fetch and not method wrappers: the SDKs parse and type whatever fetch returns, so
// replaying the provider's own response body (or its SSE events) keeps every SDK method, helper
// and stream class working unchanged, with the SDK's own types.
import { type CallOptions, InvalidOptionError } from '@strata-cache/core';
import { isAbortError, untilAborted } from './abort.js';
import { type FetchAnswer, fromResponse, toResponse } from './answer.js';
import { type CachingFetchConfig, KeptRequests, isCall, prepareCall } from './call.js';
import { stripControl, withoutControl } from './control.js';
import { getCacheInfo } from './hit-info.js';
import { jsonThrough } from './json-path.js';
import { streamThrough } from './stream-path.js';
import type { FetchLike } from './types.js';

const UNCACHED = Symbol.for('strata-cache.http.uncached');
const DESCRIBE = Symbol.for('strata-cache.http.describe');
const ANSWER = Symbol.for('strata-cache.http.answer');

/**
 * Builds the caching fetch. JSON requests go through `jsonThrough` (core's `getOrLoad`),
 * streamed ones through `streamThrough`; everything else passes through untouched.
 */
export function createCachingFetch(config: CachingFetchConfig): FetchLike {
  const { upstream } = config;
  const uncached = new Map<string, number>();
  const kept = new KeptRequests();

  // A request passed through is answered with the provider's own Response, untouched.
  const run = async (
    input: string | URL | Request,
    init: RequestInit | undefined,
    whole: boolean,
    parsed?: Record<string, unknown>,
  ): Promise<FetchAnswer | { readonly passed: Response }> => {
    const prepared = prepareCall(config, input, init, parsed, kept);
    const call = prepared instanceof Promise ? await prepared : prepared;
    if (!isCall(call)) {
      if (call.reason !== undefined) uncached.set(call.reason, (uncached.get(call.reason) ?? 0) + 1);
      return { passed: await upstream(stripRequest(call.input, call.init), call.init === undefined ? undefined : stripControl(call.init)) };
    }
    if (call.stream) return streamThrough(call, whole);
    const signal = call.signal;
    for (let attempt = 0; ; attempt++) {
      try {
        return await untilAborted(jsonThrough(call), signal);
      } catch (error) {
        // Identical concurrent misses share one upstream call, made with the first caller's
        // signal. If that caller gave up, the others were not aborted: they try again.
        if (attempt < 3 && isAbortError(error) && !signal?.aborted) continue;
        throw error;
      }
    }
  };
  const strataFetch: FetchLike = async (input, init) => {
    const r = await run(input, init, false);
    return 'passed' in r ? r.passed : toResponse(r);
  };
  Object.defineProperty(strataFetch, UNCACHED, { value: uncached });
  Object.defineProperty(strataFetch, DESCRIBE, { value: (input: string | URL | Request, init?: RequestInit) => describe(config, input, init) });
  Object.defineProperty(strataFetch, ANSWER, {
    value: async (input: string | URL | Request, init?: RequestInit, parsed?: Record<string, unknown>): Promise<FetchAnswer> => {
      const r = await run(input, init, true, parsed);
      return 'passed' in r ? fromResponse(r.passed, getCacheInfo(r.passed)) : r;
    },
  });
  return strataFetch;
}

/**
 * What a caching fetch answers to `fetch(input, init)`, in the form a server writes to its own
 * response: status, headers, the body (the whole text of a JSON answer or of an unpaced replay,
 * or a stream), and the cache information — without building a `Response` or a web stream for
 * an answer whose bytes are in hand. `parsed` is the request body's JSON object when the caller
 * has parsed `init.body` already (it is then not parsed again). Pass a caching fetch, or a
 * client built by `withCachingFetch`.
 */
export function fetchAnswer(target: unknown, input: string | URL | Request, init?: RequestInit, parsed?: Record<string, unknown>): Promise<FetchAnswer> {
  const fetch = typeof target === 'function' ? target : (target as { fetch?: unknown } | null)?.fetch;
  const fn = typeof fetch === 'function' ? (fetch as unknown as Record<symbol, unknown>)[ANSWER] : undefined;
  if (typeof fn !== 'function')
    return Promise.reject(
      new InvalidOptionError('@strata-cache/http: fetchAnswer needs a caching fetch (or a client built by withCachingFetch)', { field: 'target' }),
    );
  return (fn as (i: string | URL | Request, n?: RequestInit, p?: Record<string, unknown>) => Promise<FetchAnswer>)(input, init, parsed);
}

/** What a caching fetch would do with a request, without doing it (see `describeRequest`). */
export type RequestDescription =
  | { readonly cached: true; readonly stream: boolean; readonly keyRequest: Record<string, unknown>; readonly options: CallOptions }
  | { readonly cached: false; readonly reason?: string };

async function describe(config: CachingFetchConfig, input: string | URL | Request, init: RequestInit | undefined): Promise<RequestDescription> {
  const call = await prepareCall(config, input, init);
  if (!isCall(call)) return call.reason === undefined ? { cached: false } : { cached: false, reason: call.reason };
  return { cached: true, stream: call.stream, keyRequest: call.keyRequest, options: call.options };
}

/**
 * The request a caching fetch would fingerprint for `fetch(input, init)` — the key request (the
 * key body plus what the HTTP request adds: server, JSON/SSE, key headers) and the call options
 * (scope, profile, control headers) — or why it would pass the request through. Nothing is sent
 * and the cache is not touched: for tools that explain or inspect keys (`explainKeyDifference`,
 * `cache.keyFor`). Pass a caching fetch, or a client built by `withCachingFetch`.
 */
export function describeRequest(target: unknown, input: string | URL | Request, init?: RequestInit): Promise<RequestDescription> {
  const fetch = typeof target === 'function' ? target : (target as { fetch?: unknown } | null)?.fetch;
  const fn = typeof fetch === 'function' ? (fetch as unknown as Record<symbol, unknown>)[DESCRIBE] : undefined;
  if (typeof fn !== 'function')
    return Promise.reject(
      new InvalidOptionError('@strata-cache/http: describeRequest needs a caching fetch (or a client built by withCachingFetch)', { field: 'target' }),
    );
  return (fn as (i: string | URL | Request, n?: RequestInit) => Promise<RequestDescription>)(input, init);
}

/**
 * Requests to a cached endpoint that a caching fetch sent to the provider uncached, by reason:
 * `body-form` (form data), `body-not-utf8`, `body-not-json`, `stream-not-cached` (an endpoint
 * without stream caching), or the endpoint's own (`background`, `conversation`, ...). Requests
 * the cache policy declined are counted by the cache (`stats().bypassed`), not here.
 * Pass the caching fetch, or a client built by `withCachingFetch` (or an adapter's `withCache`).
 */
export function uncachedRequests(target: unknown): Readonly<Record<string, number>> {
  const fetch = typeof target === 'function' ? target : (target as { fetch?: unknown } | null)?.fetch;
  const counts = typeof fetch === 'function' ? (fetch as unknown as Record<symbol, unknown>)[UNCACHED] : undefined;
  return counts instanceof Map ? Object.freeze(Object.fromEntries(counts)) : Object.freeze({});
}

/** A Request input carries its own headers: strip control headers there too (when `init` does not replace them). */
function stripRequest(input: string | URL | Request, init: RequestInit | undefined): string | URL | Request {
  if (typeof input !== 'object' || input instanceof URL || init?.headers !== undefined) return input;
  const headers = withoutControl(input.headers, input.headers);
  return headers ? new Request(input, { headers }) : input;
}
