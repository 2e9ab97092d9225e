import { type Begun, type CacheResult, type CallOptions, type Loaded, type PendingLoad, loaded } from '@strata-cache/core';
import { untilAborted } from './abort.js';
import { type FetchAnswer, encodeOnce } from './answer.js';
import type { HttpCall } from './call.js';
import { type HitDescription, describeHit, hitHeaders, hitInfo, upstreamHeaders } from './hit-info.js';
import { PassThroughAnswer } from './json-path.js';
import { followStream, leadStream } from './live-stream.js';
import { SseParser, replaySse, serializeEvent } from './sse.js';
import { rebuildsStreams, twinProfile } from './stream-forms.js';
import type { RecordedEvent } from './types.js';

const enc = new TextEncoder();

/**
 * The read path of streamed requests: every `stream: true` request the caching fetch caches
 * goes through here, and only here — core's two-phase read-through, `cache.begin()`:
 *
 * - a hit replays the recorded events (paced as configured);
 * - the first identical miss leads: it calls the provider, hands the provider's bytes to its
 *   caller as they arrive and pushes each completed event into the pending load; the load is
 *   committed (stream entry, and its non-stream twin where the endpoint has one) when the stream
 *   ends as a complete answer, abandoned otherwise — an error status (handed, as sent, to every
 *   identical caller waiting), a thrown fetch, a cut or an error event;
 * - identical misses meanwhile join: they replay the leader's events live, event for event,
 *   and keep the provider's stream going if the leader's caller leaves (it stops when nobody
 *   reads any more). Across processes the coordinator applies: another process's identical
 *   miss waits for this one's entry and replays it.
 */
export async function streamThrough(call: HttpCall, whole = false): Promise<FetchAnswer> {
  let options: CallOptions = call.options;
  for (let attempt = 0; ; attempt++) {
    const b = await beginUntilAborted(call, options);
    if (b.kind === 'hit') {
      const events = eventsOf(call, b.result);
      if (events !== undefined) return replay(call, describeHit(b.result), events, whole);
      // An entry without a recording that the endpoint cannot turn into a stream (a semantic
      // neighbour stored by a non-stream request, say). Stream from the provider and record it.
      options = { ...call.options, forceRefresh: true };
      continue;
    }
    if (b.kind === 'load') return lead(call, b);
    try {
      const stream = await followStream(call.config.cache, b, call.signal);
      if (stream) return joined(stream as ReadableStream<RecordedEvent>);
    } catch (error) {
      if (error instanceof PassThroughAnswer) return error.toAnswer();
      throw error;
    }
    // The load we joined was given up before it produced anything: begin again (one of the
    // callers that waited on it leads the next one).
    if (attempt >= 3) options = { ...call.options, bypass: true };
  }
}

/**
 * The events a hit replays: its recording, or — for an entry a non-stream request stored (found
 * where the endpoint shares semantic entries between the two forms) — the stream the endpoint
 * rebuilds from its body. Undefined when there is neither.
 */
function eventsOf(call: HttpCall, hit: CacheResult<unknown>): readonly RecordedEvent[] | undefined {
  const chunks = hit.entry?.chunks;
  if (Array.isArray(chunks)) return chunks as RecordedEvent[];
  const rebuild = call.spec.eventsFromBody;
  if (rebuild === undefined || !rebuildsStreams(call.config) || typeof hit.value !== 'object' || hit.value === null) return undefined;
  return rebuild.call(call.spec, hit.value, call.keyRequest);
}

/** `begin()`, left as soon as the caller aborts (a load it was handed meanwhile is abandoned). */
async function beginUntilAborted(call: HttpCall, options: CallOptions): Promise<Begun<unknown>> {
  const begun = call.config.cache.begin<unknown>(call.keyRequest, options);
  try {
    return await untilAborted(begun, call.signal);
  } catch (error) {
    begun.then(
      (b) => (b.kind === 'load' ? b.abandon() : undefined),
      () => undefined,
    );
    throw error;
  }
}

const SSE_TYPE = 'text/event-stream; charset=utf-8';
const encodeEvents = encodeOnce<readonly RecordedEvent[]>((events) => events.map(serializeEvent).join(''));

/**
 * A stored stream replayed event for event, as the SDK's own stream class will parse it. With
 * `whole` (an answer a server writes itself) and no pacing, the events are sent as one body.
 */
function replay(call: HttpCall, hit: HitDescription, events: readonly RecordedEvent[], whole: boolean): FetchAnswer {
  const { pacing } = call.config;
  const body = whole && pacing.mode === 'none' ? encodeEvents(events) : replaySse(events, pacing, call.signal);
  return { status: 200, statusText: '', headers: hitHeaders(call.config.requestIdHeader, hit, SSE_TYPE), body, info: hitInfo(hit) };
}

/** Another caller's live stream, event for event as it recorded them. */
function joined(events: ReadableStream<RecordedEvent>): FetchAnswer {
  const body = events.pipeThrough(
    new TransformStream<RecordedEvent, Uint8Array>({
      transform: (e, controller) => controller.enqueue(enc.encode(serializeEvent(e))),
    }),
  );
  return { status: 200, statusText: '', headers: upstreamHeaders(undefined, 'miss', SSE_TYPE), body, info: { hit: false, status: 'miss' } };
}

/** This caller loads: the provider's stream reaches it as sent, recorded on the way. */
async function lead(call: HttpCall, load: PendingLoad<unknown>): Promise<FetchAnswer> {
  const { config } = call;
  const parser = new SseParser();
  const started = performance.now();
  try {
    const { stream, meta } = await leadStream<Uint8Array, Response>(config.cache, load, call.signal, {
      open: async (signal) => {
        const res = await config.upstream(call.url, { ...call.init, signal });
        const type = res.headers.get('content-type') ?? '';
        if (res.status !== 200 || !res.body || !type.includes('text/event-stream')) {
          // An error status, or a body that is not an event stream: handed over as sent.
          throw new PassThroughAnswer(res.status, res.statusText, res.headers, await res.arrayBuffer());
        }
        return { stream: res.body, meta: res };
      },
      record: (bytes) => parser.push(bytes, performance.now() - started),
      finish: (events) => (call.spec.complete(events as RecordedEvent[]) ? streamEntry(call, events as RecordedEvent[]) : undefined),
      committed: (result, answer) => {
        // The same answer in non-stream form, under the same race check: its upstream call is counted already.
        const json = result.stored ? jsonTwin(call, answer) : undefined;
        if (json)
          config.cache
            .store(call.jsonKeyRequest, json, { ...call.options, profile: twinProfile(call.config, call.spec), sinceEpoch: load.epoch, recordUsage: false })
            .catch(() => undefined);
      },
    });
    return {
      status: meta.status,
      statusText: meta.statusText,
      headers: upstreamHeaders(meta.headers, load.status, 'text/event-stream'),
      body: stream,
      info: { hit: false, status: load.status },
    };
  } catch (error) {
    if (error instanceof PassThroughAnswer) return error.toAnswer();
    throw error;
  }
}

/** The entry of a complete stream: the assembled value, with its events as `chunks` (pushed on the way). */
function streamEntry(call: HttpCall, events: RecordedEvent[]): Loaded<unknown> {
  const { value, usage, model } = call.spec.fromEvents(events);
  return loaded(value, { ...(usage ? { usage } : {}), ...(model ? { model } : {}) });
}

/** The non-stream twin of a complete stream's answer, where the endpoint has one (for every stream, or for this request's). */
function jsonTwin(call: HttpCall, answer: Loaded<unknown>): Loaded<unknown> | undefined {
  const value = answer.value;
  const { spec } = call;
  const whole = spec.streamValueIsJsonBody || (rebuildsStreams(call.config) && spec.streamFormsShared?.(call.keyRequest));
  if (!whole || typeof value !== 'object' || value === null) return undefined;
  return loaded(value, { ...(answer.usage ? { usage: answer.usage } : {}), ...(answer.model ? { model: answer.model } : {}) });
}
