import { loaded } from '@strata-cache/core';
import { type FetchAnswer, encodeOnce } from './answer.js';
import type { HttpCall } from './call.js';
import { describeHit, hitHeaders, hitInfo, upstreamHeaders } from './hit-info.js';
import { type HeaderSource, headerValue, wholeFetchOf } from './whole.js';

/**
 * An upstream answer that must reach the caller unchanged and never be stored (an error status,
 * a body that is not what the endpoint caches). Thrown out of a load, so callers that joined it
 * receive the same answer.
 */
export class PassThroughAnswer {
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly headers: HeaderSource,
    readonly body: ArrayBuffer | Uint8Array,
  ) {}
  /** The answer for one caller (its own copy of the bytes: callers that joined the load share this object). */
  toAnswer(): FetchAnswer {
    return {
      status: this.status,
      statusText: this.statusText,
      headers: this.headers,
      body: this.status === 204 || this.status === 304 ? null : copyBytes(this.body),
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
  let missHeaders: HeaderSource | undefined;
  let missBody: string | ArrayBuffer | undefined;
  try {
    const r = await config.cache.getOrLoad<unknown>(
      call.keyRequest,
      async () => {
        const res = await receive(call);
        if (res.status !== 200) throw new PassThroughAnswer(res.status, res.statusText, res.headers, res.body);
        const json = readJsonObject(headerValue(res.headers, 'content-type'), res.body);
        // Not a JSON object after all (a proxy page, an empty body), or an answer the endpoint
        // does not keep (a queued job): hand it over untouched, keep nothing.
        if (json === undefined || (spec.acceptBody && !spec.acceptBody(json.body)))
          throw new PassThroughAnswer(res.status, res.statusText, res.headers, res.body);
        missHeaders = res.headers;
        // The provider's bytes: as the text they were decoded to when that gives them back exactly.
        missBody = json.text ?? copyBytes(res.body);
        const body = json.body;
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
    const body = missBody !== undefined && !r.coalesced ? missBody : JSON.stringify(r.value);
    return { status: 200, statusText: '', headers, body, info: { hit: false, status } };
  } catch (error) {
    if (error instanceof PassThroughAnswer) return error.toAnswer();
    throw error;
  }
}

/** The upstream's answer to a JSON request, read whole: through the upstream's whole-answer function when it has one (no `Response`). */
async function receive(call: HttpCall): Promise<{ status: number; statusText: string; headers: HeaderSource; body: ArrayBuffer | Uint8Array }> {
  const whole = wholeFetchOf(call.config.upstream);
  if (whole !== undefined) return whole(call.url, call.init);
  const res = await call.config.upstream(call.url, call.init);
  return { status: res.status, statusText: res.statusText, headers: res.headers, body: await res.arrayBuffer() };
}

/** A copy of bytes as an ArrayBuffer of their own. */
function copyBytes(b: ArrayBuffer | Uint8Array): ArrayBuffer {
  return b instanceof ArrayBuffer ? b.slice(0) : (b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
}

// Strict: bytes that are not UTF-8 throw instead of becoming U+FFFD, and a byte order mark stays
// in the text, so a text that decoded is the provider's bytes exactly.
const exactUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8 = new TextDecoder();

/**
 * A JSON object body and, when the bytes are UTF-8, their text (which encodes back to the same
 * bytes); undefined when the body is not a JSON object.
 */
function readJsonObject(contentType: string | null, buf: ArrayBuffer | Uint8Array): { body: Record<string, unknown>; text: string | undefined } | undefined {
  const media = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  if (media !== 'application/json' && !media.endsWith('+json')) return undefined;
  let text: string | undefined;
  try {
    text = exactUtf8.decode(buf);
  } catch {
    text = undefined;
  }
  try {
    const source = text === undefined ? utf8.decode(buf) : text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    const body: unknown = JSON.parse(source);
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? { body: body as Record<string, unknown>, text } : undefined;
  } catch {
    return undefined;
  }
}
