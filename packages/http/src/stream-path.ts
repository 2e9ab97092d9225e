import { type Loaded, loaded } from '@strata-cache/core';
import type { HttpCall } from './call.js';
import { type HitDescription, hitHeaders, upstreamHeaders } from './hit-info.js';
import { recordSse, replaySse } from './sse.js';
import type { RecordedEvent } from './types.js';

/**
 * The read path of streamed requests: every `stream: true` request the caching fetch caches
 * goes through here, and only here.
 *
 * Today it is `lookup`, then on a miss the provider's stream is teed to the caller while it is
 * recorded, and a complete recording is `store`d with the invalidation epoch taken before the
 * upstream call (a write that raced an invalidation is dropped). Identical concurrent misses
 * therefore each call the provider.
 *
 * When core's two-phase read-through (`cache.begin(request, options)`) lands, this function is
 * what switches to it: a hit replays (`replay`, unchanged); a pending load that this caller
 * leads runs `fromProvider`, whose `onEnd` then commits `streamEntry(...)` for a complete
 * recording and abandons the load otherwise (it is called exactly once, also for an error
 * status, a thrown fetch or a cut stream); a caller that joins someone else's pending load
 * replays its live chunks. Nothing outside this function needs to change.
 */
export async function streamThrough(call: HttpCall): Promise<Response> {
  const { cache } = call.config;
  const hit = await cache.lookup(call.keyRequest, call.options);
  const events = hit?.entry.chunks;
  if (hit && Array.isArray(events)) return replay(call, hit, events as RecordedEvent[]);
  // Asked to skip the cache (the lookup above counted it): nothing to record.
  if (call.options.bypass) return fromProvider(call, 'bypass', () => undefined);
  const sinceEpoch = cache.currentEpoch;
  return fromProvider(call, 'miss', (recorded) => {
    if (!recorded) return;
    const { stream, json } = streamEntry(call, recorded);
    cache.store(call.keyRequest, stream, { ...call.options, sinceEpoch }).catch(() => undefined);
    // The same answer in non-stream form: its upstream call is already counted above.
    if (json) cache.store(call.jsonKeyRequest, json, { ...call.options, sinceEpoch, recordUsage: false }).catch(() => undefined);
  });
}

/** A stored stream replayed event for event, as the SDK's own stream class will parse it. */
function replay(call: HttpCall, hit: HitDescription, events: readonly RecordedEvent[]): Response {
  const body = replaySse(events, call.config.pacing, call.signal);
  return new Response(body, { status: 200, headers: hitHeaders(call.config.requestIdHeader, hit, 'text/event-stream; charset=utf-8') });
}

/**
 * Calls the provider and hands its stream to the caller as it arrives. `onEnd` runs exactly
 * once: with the recorded events when the stream ended the way a complete answer ends, with
 * undefined for anything else — an error status or a body that is not an event stream (both
 * returned untouched), a fetch that threw (rethrown), an error or a cut mid-stream.
 */
async function fromProvider(call: HttpCall, status: 'miss' | 'bypass', onEnd: (complete: RecordedEvent[] | undefined) => void): Promise<Response> {
  let res: Response;
  try {
    res = await call.config.upstream(call.url, call.init);
  } catch (error) {
    onEnd(undefined);
    throw error;
  }
  const type = res.headers.get('content-type') ?? '';
  if (res.status !== 200 || !res.body || !type.includes('text/event-stream')) {
    onEnd(undefined);
    return res;
  }
  const body = recordSse(res.body, (events) => onEnd(events && call.spec.complete(events) ? events : undefined));
  return new Response(body, { status: res.status, statusText: res.statusText, headers: upstreamHeaders(res.headers, status, 'text/event-stream') });
}

/** The entry of a complete stream (its events in `chunks`), and its non-stream twin where the endpoint has one. */
function streamEntry(call: HttpCall, events: RecordedEvent[]): { stream: Loaded<unknown>; json?: Loaded<unknown> } {
  const { value, usage, model } = call.spec.fromEvents(events);
  const meta = { ...(usage ? { usage } : {}), ...(model ? { model } : {}) };
  const stream = loaded(value, { chunks: events, ...meta });
  return call.spec.streamValueIsJsonBody && typeof value === 'object' && value !== null ? { stream, json: loaded(value, meta) } : { stream };
}
