// Per-request cache control as callers send it to the gateway, and the headers the gateway
// answers with. The request headers are checked here, then handed to the caching fetch in its own
// form (`cacheControl()` of @strata-cache/http); a caller can never name a tenant or namespace.
import { type CacheInfo, type RequestCacheControl, cacheControl } from '@strata-cache/http';
import { GatewayError } from './errors.js';

/** Request headers the gateway reads. */
export const CONTROL_HEADERS = Object.freeze({
  /** `bypass` (no read, no write), `refresh` (no read, store the fresh answer), `no-store` (read, do not store). */
  cache: 'x-strata-cache',
  /** TTL of the stored answer, seconds. */
  ttl: 'x-strata-ttl',
  /** TTL of the stored answer, milliseconds. */
  ttlMs: 'x-strata-ttl-ms',
  /** Comma-separated tags of the stored answer (for `strata purge --tag`). */
  tags: 'x-strata-tags',
  /** `off`: skip the semantic layer for this request. */
  semantic: 'x-strata-semantic',
});

const KNOWN = new Set<string>(Object.values(CONTROL_HEADERS));
const MAX_TAGS = 32;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what a tag must not hold
const TAG = /^[^\s,\u0000-\u001f\u007f]{1,200}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const DECIMAL = /^\d+(\.\d+)?$/;

function bad(message: string, field: string): GatewayError {
  return new GatewayError(400, 'invalid_request_error', message, { field });
}

/**
 * Reads the control headers of a request. Unknown `x-strata-*` headers are refused rather than
 * ignored (a typo would otherwise silently cache what the caller meant not to), and so are
 * `x-strata-tenant` / `x-strata-namespace`: the tenant comes from the API key.
 */
export function readControl(headers: Record<string, string | string[] | undefined>, maxTtlMs: number): RequestCacheControl | undefined {
  let control: RequestCacheControl | undefined;
  for (const name in headers) {
    if (!name.startsWith('x-strata-')) continue;
    if (!KNOWN.has(name)) {
      if (name === 'x-strata-tenant' || name === 'x-strata-namespace')
        throw bad(`${name} is not accepted: the gateway takes the tenant from the API key`, name);
      throw bad(`unknown control header ${name} (known: ${[...KNOWN].join(', ')})`, name);
    }
    const raw = headers[name];
    const value = (Array.isArray(raw) ? raw.join(',') : (raw ?? '')).trim();
    control ??= {};
    switch (name) {
      case CONTROL_HEADERS.cache:
        if (value === 'bypass') control.bypass = true;
        else if (value === 'refresh') control.forceRefresh = true;
        else if (value === 'no-store') control.noStore = true;
        else throw bad(`${name} must be bypass, refresh or no-store`, name);
        break;
      case CONTROL_HEADERS.ttl:
      case CONTROL_HEADERS.ttlMs: {
        const n = Number(value);
        const ms = name === CONTROL_HEADERS.ttl ? n * 1000 : n;
        // Decimal only: Number() would also take 0x10, 0b101, 0o10 and 1e2.
        if (!DECIMAL.test(value) || !Number.isFinite(ms) || ms < 1)
          throw bad(`${name} must be a positive number of ${name === CONTROL_HEADERS.ttl ? 'seconds' : 'milliseconds'}`, name);
        if (ms > maxTtlMs) throw bad(`${name} asks for more than the largest TTL this gateway allows (${maxTtlMs / 1000} s)`, name);
        if (control.ttlMs !== undefined) throw bad(`send ${CONTROL_HEADERS.ttl} or ${CONTROL_HEADERS.ttlMs}, not both`, name);
        control.ttlMs = Math.round(ms);
        break;
      }
      case CONTROL_HEADERS.tags: {
        // Node reads a header's bytes as latin-1; tags are text in UTF-8 (as curl sends them, and
        // as the admin API and `strata purge --tag` take them), so they are read as UTF-8.
        let text: string;
        try {
          text = utf8.decode(Buffer.from(value, 'latin1'));
        } catch {
          throw bad(`${name} must be UTF-8`, name);
        }
        const tags = text
          .split(',')
          .map((t) => t.trim())
          .filter((t) => t !== '');
        if (tags.length === 0 || tags.length > MAX_TAGS || tags.some((t) => !TAG.test(t))) {
          throw bad(`${name} must be 1 to ${MAX_TAGS} comma-separated tags of at most 200 characters, without spaces or control characters`, name);
        }
        control.tags = tags;
        break;
      }
      case CONTROL_HEADERS.semantic:
        if (value === 'off') control.semantic = false;
        else if (value !== 'on') throw bad(`${name} must be on or off`, name);
        break;
    }
  }
  return control;
}

/** The control in the caching fetch's own header form. */
export function controlHeaders(control: RequestCacheControl | undefined): Record<string, string> | undefined {
  return control ? cacheControl(control) : undefined;
}

/** What the gateway reports on a response: `x-strata-cache` and, for hits, where from. */
export type CacheStatus = 'hit' | 'semantic' | 'miss' | 'bypass';

export function statusOf(info: CacheInfo | undefined): CacheStatus {
  if (!info) return 'bypass';
  if (info.status === 'hit') return info.similarity !== undefined ? 'semantic' : 'hit';
  return info.status;
}

/** Response headers describing the cache's part in an answer. */
export function responseHeaders(info: CacheInfo | undefined): Record<string, string> {
  const status = statusOf(info);
  const h: Record<string, string> = { 'x-strata-cache': status };
  if (info?.hit) {
    if (info.layer) h['x-strata-layer'] = info.layer;
    if (info.ageMs !== undefined) h['x-strata-age-ms'] = String(info.ageMs);
    if (info.similarity !== undefined) h['x-strata-similarity'] = info.similarity.toFixed(4);
  }
  return h;
}
