import type { CacheKey, CacheResult } from '@strata-cache/core';
import { type HeaderSource, isHeaders } from './whole.js';

/** Hit information, read back with `getCacheInfo`. */
export interface CacheInfo {
  /** True when the response was served from the cache (no upstream call). */
  readonly hit: boolean;
  /**
   * `hit`; `miss` (the provider answered and the answer may be stored); `bypass` (the provider
   * answered and the cache was not consulted: the policy declined the request, or `cacheControl({ bypass })`).
   * Read from response headers, so `getCacheInfo(parsedObject)` of a provider answer is undefined.
   */
  readonly status: 'hit' | 'miss' | 'bypass';
  /** Layer that answered a hit. */
  readonly layer?: string;
  /** Age of the entry that answered, ms. */
  readonly ageMs?: number;
  /** Cosine similarity, for semantic hits. */
  readonly similarity?: number;
  /** Hash part of the entry's cache key (never contains request content). */
  readonly key?: string;
}

/** What a hit says about itself (a `LookupHit` or a `CacheResult` that hit). */
export interface HitDescription {
  readonly key: CacheKey;
  readonly layer: string;
  readonly ageMs: number;
  readonly similarity?: number;
}

/** The hit description of a result that hit. */
export function describeHit(r: CacheResult<unknown>): HitDescription {
  return { key: r.key, layer: r.layer ?? '', ageMs: r.ageMs ?? 0, ...(r.similarity !== undefined ? { similarity: r.similarity } : {}) };
}

/** Response header with the cache status of a cached endpoint's successful answer. */
export const STATUS_HEADER = 'x-strata-cache';
const HIT_PREFIX = 'strata-hit.';
const REQUEST_ID_HEADERS = ['x-request-id', 'request-id'];

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
    for (const name of REQUEST_ID_HEADERS) {
      const info = decodeHitId(h.get(name) ?? '');
      if (info) return info;
    }
    return { hit: true, status: 'hit' };
  }
  return status === 'miss' || status === 'bypass' ? { hit: false, status } : undefined;
}

/** The request id a hit carries instead of a provider's: `strata-hit.<base64url info>`. */
export function encodeHitId(hit: HitDescription): string {
  // As JSON.stringify writes it: a number, or null when the age is not one (an entry without createdAt).
  const rounded = Math.max(0, Math.round(hit.ageMs));
  const age = Number.isFinite(rounded) ? String(rounded) : 'null';
  if (hit.similarity !== undefined)
    return (
      HIT_PREFIX +
      Buffer.from(`{"k":${JSON.stringify(hit.key.hash)},"l":${JSON.stringify(hit.layer)},"s":${JSON.stringify(hit.similarity)},"a":${age}}`).toString(
        'base64url',
      )
    );
  // Only the age changes from one exact hit of an entry to the next: the base64 of the rest is
  // kept per key object (a key request seen before keeps its key object), padded with JSON
  // whitespace to whole 3-byte groups so the age's base64 simply follows it.
  let prefix = hitIdPrefixes.get(hit.key);
  if (prefix === undefined || prefix.layer !== hit.layer) {
    let json = `{"k":${JSON.stringify(hit.key.hash)},"l":${JSON.stringify(hit.layer)},`;
    while (Buffer.byteLength(json) % 3 !== 0) json += ' ';
    prefix = { layer: hit.layer, base64: Buffer.from(json).toString('base64url') };
    hitIdPrefixes.set(hit.key, prefix);
  }
  return HIT_PREFIX + prefix.base64 + asciiBase64url(`"a":${age}}`);
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Base64url (unpadded, as Buffer's `base64url`) of a short ASCII string, without a Buffer: the
 * age part of every exact hit's id, where `Buffer.from(...).toString()` cost more than the rest
 * of the id.
 */
export function asciiBase64url(s: string): string {
  let out = '';
  let i = 0;
  for (; i + 2 < s.length; i += 3) {
    const n = (s.charCodeAt(i) << 16) | (s.charCodeAt(i + 1) << 8) | s.charCodeAt(i + 2);
    out += BASE64URL[n >>> 18]! + BASE64URL[(n >>> 12) & 63]! + BASE64URL[(n >>> 6) & 63]! + BASE64URL[n & 63]!;
  }
  if (i < s.length) {
    const n = (s.charCodeAt(i) << 16) | (i + 1 < s.length ? s.charCodeAt(i + 1) << 8 : 0);
    out += BASE64URL[n >>> 18]! + BASE64URL[(n >>> 12) & 63]!;
    if (i + 1 < s.length) out += BASE64URL[(n >>> 6) & 63]!;
  }
  return out;
}

const hitIdPrefixes = new WeakMap<CacheKey, { readonly layer: string; readonly base64: string }>();

function decodeHitId(id: string): CacheInfo | undefined {
  if (!id.startsWith(HIT_PREFIX)) return undefined;
  try {
    const o = JSON.parse(Buffer.from(id.slice(HIT_PREFIX.length), 'base64url').toString('utf8')) as Record<string, unknown>;
    return {
      hit: true,
      status: 'hit',
      ...(typeof o['l'] === 'string' ? { layer: o['l'] } : {}),
      ...(typeof o['a'] === 'number' ? { ageMs: o['a'] } : {}),
      ...(typeof o['s'] === 'number' ? { similarity: o['s'] } : {}),
      ...(typeof o['k'] === 'string' ? { key: o['k'] } : {}),
    };
  } catch {
    return undefined;
  }
}

/** Headers of a response served from the cache (a plain record: a server writes it as is, a `Response` copies it). */
export function hitHeaders(requestIdHeader: string, hit: HitDescription, contentType: string): Record<string, string> {
  return { 'content-type': contentType, [requestIdHeader]: encodeHitId(hit), [STATUS_HEADER]: 'hit' };
}

/** The `CacheInfo` of a hit, as `getCacheInfo` reads it back from the hit's headers. */
export function hitInfo(hit: HitDescription): CacheInfo {
  return {
    hit: true,
    status: 'hit',
    layer: hit.layer,
    ageMs: Math.max(0, Math.round(hit.ageMs)),
    ...(hit.similarity !== undefined ? { similarity: hit.similarity } : {}),
    key: hit.key.hash,
  };
}

/**
 * Headers of a provider answer passed on: the provider's own, minus what no longer describes the
 * body, plus the status. A `Headers` (or none) gives a `Headers`, a record a record.
 */
export function upstreamHeaders(source: Headers | undefined, status: 'miss' | 'bypass', fallbackType: string): Headers;
export function upstreamHeaders(source: HeaderSource | undefined, status: 'miss' | 'bypass', fallbackType: string): HeaderSource;
export function upstreamHeaders(source: HeaderSource | undefined, status: 'miss' | 'bypass', fallbackType: string): HeaderSource {
  if (source !== undefined && !isHeaders(source)) {
    const out: Record<string, string | readonly string[]> = {};
    for (const name in source) if (!DROPPED_FROM_UPSTREAM.has(name)) out[name] = source[name]!;
    out[STATUS_HEADER] = status;
    return out;
  }
  const headers = new Headers(source ?? { 'content-type': fallbackType });
  // The body handed on is decoded (and may be re-encoded): length and encoding no longer hold.
  headers.delete('content-length');
  headers.delete('content-encoding');
  headers.set(STATUS_HEADER, status);
  return headers;
}

// The body handed on is decoded (and may be re-encoded): its length and encoding no longer hold;
// the status header is the cache's own.
const DROPPED_FROM_UPSTREAM = new Set(['content-length', 'content-encoding', STATUS_HEADER]);
