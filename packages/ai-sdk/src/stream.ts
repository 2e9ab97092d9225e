import type { LanguageModelV4StreamPart, LanguageModelV4StreamResult } from '@ai-sdk/provider';
import { type LookupHit, StrataError, loaded } from '@strata-cache/core';
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

/**
 * Read-through for one `doStream`: a hit replays the recorded parts; a miss streams from the
 * model while recording, and stores the recording only once the stream finished cleanly.
 *
 * Concurrent identical stream misses each make their own model call for now: sharing one
 * upstream stream needs core's two-phase read-through (`cache.begin(...)`), which this
 * function is to switch to (the one place that does lookup + record + store).
 */
export async function streamThroughCache(p: PreparedCall, doStream: () => PromiseLike<LanguageModelV4StreamResult>): Promise<LanguageModelV4StreamResult> {
  let hit: LookupHit | undefined;
  try {
    hit = await p.cache.lookup(p.keyRequest, p.call);
  } catch (error) {
    // A request the cache cannot fingerprint, or a closed cache: straight to the model.
    if (!StrataError.isInstance(error)) throw error;
    reportError(p.cache, error, 'lookup');
    return doStream();
  }
  if (hit && Array.isArray(hit.entry.chunks)) return replay(hit, p.cacheInfo, p.signal);
  // Taken before the model call: an invalidation while the stream runs drops its recording.
  const sinceEpoch = p.cache.currentEpoch;
  const upstream = await doStream();
  const recorded: unknown[] = [];
  let failed = false;
  let finish: FinishPart | undefined;
  let modelId: string | undefined;
  let text = '';
  const recorder = new TransformStream<LanguageModelV4StreamPart, LanguageModelV4StreamPart>({
    transform(part, controller) {
      if (!failed) {
        if (part.type === 'error') failed = true;
        else {
          if (part.type === 'finish') finish = part;
          else if (part.type === 'response-metadata' && part.modelId) modelId = part.modelId;
          else if (part.type === 'text-delta') text += part.delta;
          // Copied as it passes: whoever reads the stream may mutate the parts afterwards.
          recorded.push(encode(part));
        }
      }
      controller.enqueue(part);
    },
    // Called only when the model's stream ended normally: an error, an abort or a cancel by
    // the reader never gets here, so nothing partial is stored.
    flush() {
      const reason = finish?.finishReason?.unified;
      if (failed || !finish || reason === 'error' || reason === 'interrupted') return;
      const usage = toTokenUsage(finish.usage);
      const summary: StoredStreamSummary = { kind: 'ai-sdk.stream', text, finishReason: reason ?? 'other' };
      p.cache
        .store(p.keyRequest, loaded(summary, { chunks: recorded, model: modelId ?? p.modelId, ...(usage ? { usage } : {}) }), { ...p.call, sinceEpoch })
        .catch(() => undefined);
    },
  });
  return { ...upstream, stream: upstream.stream.pipeThrough(recorder) };
}

/** The recorded parts, in order, as fresh objects; the `finish` part carries the cache info when asked. */
function replay(hit: LookupHit, cacheInfo: boolean, signal: AbortSignal | undefined): LanguageModelV4StreamResult {
  const chunks = hit.entry.chunks as readonly unknown[];
  const info: CacheInfo = {
    hit: true,
    layer: hit.layer,
    ageMs: hit.ageMs,
    ...(hit.similarity !== undefined ? { similarity: hit.similarity } : {}),
  };
  let i = 0;
  const stream = new ReadableStream<LanguageModelV4StreamPart>({
    pull(controller) {
      if (signal?.aborted) {
        controller.error(signal.reason ?? new DOMException('The operation was aborted.', 'AbortError'));
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
