// Upstream HTTP: undici's fetch over a pool per upstream. The caching fetch of @strata-cache/http
// calls this as its `fetch`; undici's own timeouts bound every upstream call (time to the response
// headers, silence between body chunks, connecting).
import type { FetchLike } from '@strata-cache/http';
import { Agent, fetch as undiciFetch } from 'undici';
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
  const fetch: FetchLike = (input, init) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher: agent,
    }) as unknown as Promise<Response>;
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
