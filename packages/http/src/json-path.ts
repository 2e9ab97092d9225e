import { loaded } from '@strata-cache/core';
import { type FetchAnswer, encodeOnce } from './answer.js';
import type { HttpCall } from './call.js';
import { describeHit, hitHeaders, hitInfo, upstreamHeaders } from './hit-info.js';

/**
 * An upstream answer that must reach the caller unchanged and never be stored (an error status,
 * a body that is not what the endpoint caches). Thrown out of a load, so callers that joined it
 * receive the same answer.
 */
export class PassThroughAnswer {
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly headers: Headers,
    readonly body: ArrayBuffer,
  ) {}
  /** The answer for one caller (its own copy of the bytes: callers that joined the load share this object). */
  toAnswer(): FetchAnswer {
    return {
      status: this.status,
      statusText: this.statusText,
      headers: this.headers,
      body: this.status === 204 || this.status === 304 ? null : this.body.slice(0),
      info: undefined,
    };
  }
}

const encodeJson = encodeOnce<object>(JSON.stringify);

/**
 * The read path of JSON requests: core's read-through (`getOrLoad`), so identical concurrent
 * misses share one upstream call and the coordinator applies. Only a 200 JSON object the
 * endpoint accepts is stored; anything else reaches the caller as the provider sent it.
 */
export async function jsonThrough(call: HttpCall): Promise<FetchAnswer> {
  const { config, spec } = call;
  let missHeaders: Headers | undefined;
  let missBytes: ArrayBuffer | undefined;
  try {
    const r = await config.cache.getOrLoad<unknown>(
      call.keyRequest,
      async () => {
        const res = await config.upstream(call.url, call.init);
        const buf = await res.arrayBuffer();
        if (res.status !== 200) throw new PassThroughAnswer(res.status, res.statusText, res.headers, buf);
        const body = parseJsonObject(res.headers.get('content-type'), buf);
        // Not a JSON object after all (a proxy page, an empty body), or an answer the endpoint
        // does not keep (a queued job): hand it over untouched, keep nothing.
        if (body === undefined || (spec.acceptBody && !spec.acceptBody(body))) throw new PassThroughAnswer(res.status, res.statusText, res.headers, buf);
        missHeaders = res.headers;
        missBytes = buf;
        const usage = spec.usage(body);
        const model = typeof body['model'] === 'string' ? body['model'] : undefined;
        return loaded<unknown>(body, { ...(usage ? { usage } : {}), ...(model ? { model } : {}) });
      },
      call.options,
    );
    if (r.status === 'hit') {
      const hit = describeHit(r);
      const body = typeof r.value === 'object' && r.value !== null ? encodeJson(r.value) : JSON.stringify(r.value);
      return { status: 200, statusText: '', headers: hitHeaders(config.requestIdHeader, hit, 'application/json'), body, info: hitInfo(hit) };
    }
    const status = r.status === 'bypass' ? 'bypass' : 'miss';
    const headers = upstreamHeaders(missHeaders, status, 'application/json');
    // The caller whose loader ran gets the provider's bytes; callers coalesced onto it get the same value re-encoded.
    const body = missBytes && !r.coalesced ? missBytes : JSON.stringify(r.value);
    return { status: 200, statusText: '', headers, body, info: { hit: false, status } };
  } catch (error) {
    if (error instanceof PassThroughAnswer) return error.toAnswer();
    throw error;
  }
}

function parseJsonObject(contentType: string | null, buf: ArrayBuffer): Record<string, unknown> | undefined {
  const media = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  if (media !== 'application/json' && !media.endsWith('+json')) return undefined;
  try {
    const body: unknown = JSON.parse(new TextDecoder().decode(buf));
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
