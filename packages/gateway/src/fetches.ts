// One caching fetch per upstream and scope. Each is @strata-cache/openai's or
// @strata-cache/anthropic's caching fetch with the scope fixed, so the tenant of a call is decided
// by which fetch the gateway picks for the authenticated caller — not by anything the request
// carries, and without per-request context plumbing (AsyncLocalStorage would put async hooks on
// every promise of the process). Scopes come from the key table, so there are few of them.
import type { Scope } from '@strata-cache/core';
import { type FetchLike, uncachedRequests } from '@strata-cache/http';

export type UpstreamName = 'openai' | 'anthropic';
export type ScopeParts = Pick<Scope, 'tenant' | 'namespace'>;

export class ScopedFetches {
  private readonly fetches = new Map<string, { upstream: UpstreamName; fetch: FetchLike }>();

  constructor(private readonly make: (upstream: UpstreamName, scope: ScopeParts) => FetchLike) {}

  /** The caching fetch of `upstream` whose every entry lives in `scope`. */
  get(upstream: UpstreamName, scope: ScopeParts): FetchLike {
    const k = `${upstream}\u0000${scope.tenant}\u0000${scope.namespace}`;
    let f = this.fetches.get(k);
    if (!f) {
      f = { upstream, fetch: this.make(upstream, { tenant: scope.tenant, namespace: scope.namespace }) };
      this.fetches.set(k, f);
    }
    return f.fetch;
  }

  /** Requests sent upstream uncached (by reason), summed over the scopes of `upstream`. */
  uncached(upstream: UpstreamName): Record<string, number> {
    const out: Record<string, number> = {};
    for (const f of this.fetches.values()) {
      if (f.upstream !== upstream) continue;
      for (const [reason, n] of Object.entries(uncachedRequests(f.fetch))) out[reason] = (out[reason] ?? 0) + n;
    }
    return out;
  }
}
