import { InvalidOptionError } from '@strata-cache/core';
import { type HeaderLookup, headerLookup } from './request-body.js';

/** Per-request cache control, sent as request headers (removed before the request leaves). */
export interface RequestCacheControl {
  /** Skip the cache: no read, no write. */
  bypass?: boolean | undefined;
  /** Skip the read, call the provider, store the fresh answer. */
  forceRefresh?: boolean | undefined;
  /** Read, but do not store the answer. */
  noStore?: boolean | undefined;
  /** TTL of the stored entry, ms. */
  ttlMs?: number | undefined;
  /** Tags of the stored entry (for invalidation). Must not contain commas. */
  tags?: readonly string[] | undefined;
  /** Tenant for this request (overrides the client's scope). */
  tenant?: string | undefined;
  /** Namespace for this request (overrides the client's scope). */
  namespace?: string | undefined;
  /** `false` skips semantic layers for this request. */
  semantic?: boolean | undefined;
}

/** What the control headers of one request asked for. */
export interface Control {
  mode?: 'bypass' | 'refresh' | 'no-store';
  ttlMs?: number;
  tags?: string[];
  tenant?: string;
  namespace?: string;
  semantic?: boolean;
}

const CONTROL_PREFIX = 'x-strata-';

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

/** Reads (and validates) the control headers of a request. */
export function readControl(packageName: string, h: HeaderLookup): Control {
  const c: Control = {};
  const mode = h.get('x-strata-cache-mode');
  if (mode !== null) {
    if (mode !== 'bypass' && mode !== 'refresh' && mode !== 'no-store') {
      throw new InvalidOptionError(`${packageName}: header x-strata-cache-mode must be bypass, refresh or no-store (use cacheControl())`, {
        field: 'x-strata-cache-mode',
      });
    }
    c.mode = mode;
  }
  const ttl = h.get('x-strata-ttl-ms');
  if (ttl !== null) {
    const n = Number(ttl);
    if (!(n > 0))
      throw new InvalidOptionError(`${packageName}: header x-strata-ttl-ms must be a positive number (use cacheControl({ ttlMs }))`, { field: 'ttlMs' });
    c.ttlMs = n;
  }
  const tags = h.get('x-strata-tags');
  if (tags)
    c.tags = tags
      .split(',')
      .map((t) => decodeURIComponent(t.trim()))
      .filter(Boolean);
  const tenant = h.get('x-strata-tenant');
  if (tenant !== null) c.tenant = decodeURIComponent(tenant);
  const ns = h.get('x-strata-namespace');
  if (ns !== null) c.namespace = decodeURIComponent(ns);
  if (h.get('x-strata-semantic') === 'off') c.semantic = false;
  return c;
}

/**
 * The headers without Strata's control headers (they must never reach the provider), or
 * undefined when there were none. `source` is what `headers` was read from, copied only when
 * something must go.
 */
export function withoutControl(headers: HeaderLookup, source: NonNullable<RequestInit['headers']>): Headers | undefined {
  let out: Headers | undefined;
  for (const name of headers.keys()) {
    if (!name.startsWith(CONTROL_PREFIX)) continue;
    out ??= new Headers(source);
    out.delete(name);
  }
  return out;
}

/** `init` without Strata's control headers. */
export function stripControl(init: RequestInit): RequestInit {
  if (!init.headers) return init;
  const stripped = withoutControl(headerLookup(init.headers), init.headers);
  return stripped ? { ...init, headers: stripped } : init;
}
