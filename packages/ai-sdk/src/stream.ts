import type { LanguageModelV4StreamPart, LanguageModelV4StreamResult } from '@ai-sdk/provider';
import { type Begun, type CacheResult, type CallOptions, type PendingLoad, StrataError, loaded } from '@strata-cache/core';
import { abortReason, followStream, leadStream, untilAborted } from '@strata-cache/http';
import { decode, encode } from './codec.js';
import type { PreparedCall } from './middleware.js';
import { type CacheInfo, reportError, toTokenUsage } from './result.js';

type FinishPart = Extract<LanguageModelV4StreamPart, { type: 'finish' }>;

/** What a stored stream entry's `value` holds (the parts themselves are the entry's `chunks`). */
export interface StoredStreamSummary {
  readonly kind: 'ai-sdk.stream';
  /** The streamed text, concatenated (for inspection and answer-aware semantic selectors). */
  readonly text: string;
  readonly finishReason: string;
}

/** Starts the model's stream with the given abort signal (the call's own params otherwise). */
export type OpenStream = (signal: AbortSignal | undefined) => PromiseLike<LanguageModelV4StreamResult>;

/**
 * Read-through for one `doStream`, on core's two-phase read-through (`cache.begin()`): a hit
 * replays the recorded parts; the first identical miss streams from the model, handing each
 * part to its caller and to identical calls that joined it, which receive the same parts live;
 * the recording is stored only once the stream finished cleanly. The model's stream runs with a
 * signal of its own: it stops when every caller reading it left, not when the first one did.
 */
export async function streamThroughCache(p: PreparedCall, open: OpenStream): Promise<LanguageModelV4StreamResult> {
  let call: CallOptions = p.call;
  for (let attempt = 0; ; attempt++) {
    let b: Begun<unknown>;
    try {
      b = await beginUntilAborted(p, call);
    } catch (error) {
      // A request the cache cannot fingerprint, or a closed cache: straight to the model.
      if (!StrataError.isInstance(error)) throw error;
      reportError(p.cache, error, 'begin');
      return open(p.signal);
    }
    if (b.kind === 'hit') {
      if (Array.isArray(b.result.entry?.chunks)) return replay(b.result, p.cacheInfo, p.signal);
      // Stored without parts (not by a stream): stream from the model and record it.
      call = { ...p.call, forceRefresh: true };
      continue;
    }
    if (b.kind === 'load') return lead(p, b, open);
    const followed = await followStream(p.cache, b, p.signal);
    if (followed) return { stream: followed.pipeThrough(new TransformStream({ transform: (c, out) => out.enqueue(decode(c) as LanguageModelV4StreamPart) })) };
    // The stream we joined was given up before its first part: begin again.
    if (attempt >= 3) return open(p.signal);
  }
}

/** `begin()`, left as soon as the call's signal aborts (a load handed over meanwhile is abandoned). */
async function beginUntilAborted(p: PreparedCall, call: CallOptions): Promise<Begun<unknown>> {
  const begun = p.cache.begin<unknown>(p.keyRequest, call);
  try {
    return await untilAborted(begun, p.signal);
  } catch (error) {
    begun.then(
      (b) => (b.kind === 'load' ? b.abandon() : undefined),
      () => undefined,
    );
    throw error;
  }
}

/** This call streams from the model; its parts are recorded (copied as they pass) and shared live. */
async function lead(p: PreparedCall, load: PendingLoad<unknown>, open: OpenStream): Promise<LanguageModelV4StreamResult> {
  let failed = false;
  let finish: FinishPart | undefined;
  let modelId: string | undefined;
  let text = '';
  const { stream, meta } = await leadStream<LanguageModelV4StreamPart, Omit<LanguageModelV4StreamResult, 'stream'>>(p.cache, load, p.signal, {
    open: async (signal) => {
      const { stream, ...meta } = await open(signal);
      return { stream, meta };
    },
    record(part) {
      if (part.type === 'error') failed = true;
      else if (part.type === 'finish') finish = part;
      else if (part.type === 'response-metadata' && part.modelId) modelId = part.modelId;
      else if (part.type === 'text-delta') text += part.delta;
      // Copied as it passes: whoever reads the stream may mutate the parts afterwards.
      return [encode(part)];
    },
    // A stream with an error part, without a finish part, or finished by an error or an
    // interruption is not an answer to keep (nor is one every caller left before its end).
    finish() {
      const reason = finish?.finishReason?.unified;
      if (failed || !finish || reason === 'error' || reason === 'interrupted') return undefined;
      const usage = toTokenUsage(finish.usage);
      const summary: StoredStreamSummary = { kind: 'ai-sdk.stream', text, finishReason: reason ?? 'other' };
      return loaded(summary, { model: modelId ?? p.modelId, ...(usage ? { usage } : {}) });
    },
  });
  return { ...meta, stream };
}

/** The recorded parts, in order, as fresh objects; the `finish` part carries the cache info when asked. */
function replay(hit: CacheResult<unknown>, cacheInfo: boolean, signal: AbortSignal | undefined): LanguageModelV4StreamResult {
  const chunks = hit.entry!.chunks as readonly unknown[];
  const info: CacheInfo = {
    hit: true,
    layer: hit.layer ?? '',
    ageMs: hit.ageMs ?? 0,
    ...(hit.similarity !== undefined ? { similarity: hit.similarity } : {}),
  };
  let i = 0;
  const stream = new ReadableStream<LanguageModelV4StreamPart>({
    pull(controller) {
      if (signal?.aborted) {
        controller.error(abortReason(signal));
        return;
      }
      if (i >= chunks.length) {
        controller.close();
        return;
      }
      let part = decode(chunks[i++]) as LanguageModelV4StreamPart;
      if (cacheInfo && part.type === 'finish') part = { ...part, providerMetadata: { ...(part.providerMetadata ?? {}), strata: { ...info } } };
      controller.enqueue(part);
    },
  });
  return { stream };
}
