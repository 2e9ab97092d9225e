import type { LanguageModelV4CallOptions } from '@ai-sdk/provider';
import { type RequestProfile, type SemanticSplit, defineProfile, messageText } from '@strata-cache/core';

/** Which language-model call a key belongs to: a generate result and a recorded stream are stored apart. */
export type CallKind = 'generate' | 'stream';

/**
 * Provider-option fields that never change the answer (abuse-monitoring ids, metadata, the
 * provider's own prompt-cache hints). Removed from every `providerOptions` object — the call's,
 * each message's and each part's — before the key is computed.
 */
export const IGNORED_PROVIDER_OPTIONS: readonly string[] = Object.freeze([
  'user',
  'metadata',
  'safetyIdentifier',
  'promptCacheKey',
  'promptCacheRetention',
  'cacheControl',
]);

/** Request headers that select API behaviour and so change the answer. @see StrataCacheOptions.keyHeaders */
export const DEFAULT_KEY_HEADERS: readonly string[] = Object.freeze(['anthropic-beta', 'openai-beta']);

/** The namespace of the per-call options read from `providerOptions.strata`. */
export const PROVIDER_OPTIONS_KEY = 'strata';

export interface KeySettings {
  /** Lower-case header names that enter the key. */
  readonly keyHeaders: ReadonlySet<string>;
  /** Provider-option fields dropped from the key. */
  readonly ignoredProviderOptions: ReadonlySet<string>;
}

/** What the key is computed from: see `keyRequestOf`. */
export interface AiSdkKeyRequest {
  readonly provider: string;
  readonly modelId: string;
  readonly call: CallKind;
  readonly prompt: unknown;
  /** Every other call option, minus the ones that cannot change the answer. */
  readonly settings: Record<string, unknown>;
  /** The `keyHeaders` present on the call, lower-case names. */
  readonly answerHeaders?: Record<string, string>;
}

/**
 * The canonical request behind a language-model call's key: model id and provider, the prompt,
 * tools, tool choice, response format, sampling settings, reasoning, provider options — and for
 * streams whether raw chunks were asked for. Left out: the abort signal, headers other than
 * `keyHeaders` (the SDK's user agent, tracing ids), ignored provider-option fields and this
 * package's own `providerOptions.strata`. Unknown future call options are kept (a miss is
 * safe, a wrong hit is not).
 *
 * JSON-Schema `properties` (tool input schemas, the response format) keep their order in the key:
 * providers generate fields in schema order, so two schemas differing only in order are two answers.
 */
export function keyRequestOf(
  params: LanguageModelV4CallOptions,
  model: { readonly provider: string; readonly modelId: string },
  call: CallKind,
  settings: KeySettings,
): AiSdkKeyRequest {
  const { prompt, abortSignal: _signal, headers, includeRawChunks, tools, responseFormat, providerOptions, ...rest } = params;
  const ignored = settings.ignoredProviderOptions;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) out[k] = normalise(v, ignored);
  if (tools !== undefined) {
    out['tools'] = tools.map((t) => {
      const n = normalise(t, ignored) as Record<string, unknown>;
      return 'inputSchema' in n ? { ...n, inputSchema: orderedSchema(n['inputSchema']) } : n;
    });
  }
  if (responseFormat !== undefined) {
    const rf = normalise(responseFormat, ignored) as Record<string, unknown>;
    out['responseFormat'] = 'schema' in rf ? { ...rf, schema: orderedSchema(rf['schema']) } : rf;
  }
  const po = normaliseProviderOptions(providerOptions, ignored);
  if (po !== undefined) out['providerOptions'] = po;
  // Raw chunks only change what a stream carries, not what a generate result holds.
  if (call === 'stream' && includeRawChunks) out['includeRawChunks'] = true;
  let answerHeaders: Record<string, string> | undefined;
  if (headers && settings.keyHeaders.size > 0) {
    for (const [name, value] of Object.entries(headers)) {
      const lower = name.toLowerCase();
      if (value !== undefined && settings.keyHeaders.has(lower)) (answerHeaders ??= {})[lower] = value;
    }
  }
  return {
    provider: model.provider,
    modelId: model.modelId,
    call,
    prompt: normalise(prompt, ignored),
    settings: out,
    ...(answerHeaders ? { answerHeaders } : {}),
  };
}

/**
 * Deep copy for the key: URLs become their href, every `providerOptions` object loses the
 * ignored fields and this package's own namespace. Other values are kept as they are (core's
 * canonical form handles Dates and byte arrays, and rejects what cannot be keyed).
 */
function normalise(value: unknown, ignored: ReadonlySet<string>): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof URL) return value.href;
  if (value instanceof Date || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) return value.map((v) => normalise(v, ignored));
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'providerOptions') {
      const po = normaliseProviderOptions(v, ignored);
      if (po !== undefined) out[k] = po;
    } else out[k] = normalise(v, ignored);
  }
  return out;
}

function normaliseProviderOptions(po: unknown, ignored: ReadonlySet<string>): Record<string, unknown> | undefined {
  if (po === null || typeof po !== 'object' || Array.isArray(po)) return po === undefined ? undefined : (normalise(po, ignored) as Record<string, unknown>);
  const out: Record<string, unknown> = {};
  for (const [provider, opts] of Object.entries(po as Record<string, unknown>)) {
    if (provider === PROVIDER_OPTIONS_KEY) continue;
    if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
      out[provider] = normalise(opts, ignored);
      continue;
    }
    const kept: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(opts as Record<string, unknown>)) if (!ignored.has(k)) kept[k] = normalise(v, ignored);
    if (Object.keys(kept).length > 0) out[provider] = kept;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Replaces every schema's `properties` map by its ordered entry list (key order survives canonical sorting). */
function orderedSchema(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object') return schema;
  if (Array.isArray(schema)) return schema.map(orderedSchema);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema as Record<string, unknown>)) {
    if (k === 'properties' && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      out[k] = Object.entries(v as Record<string, unknown>).map(([name, sub]) => [name, orderedSchema(sub)]);
    } else out[k] = orderedSchema(v);
  }
  return out;
}

/**
 * Semantic split: the last prompt message, when it is a user turn made only of text, is the
 * compared text; everything else (model, system prompt, earlier turns, tools, settings, the
 * turn's own provider options) must match exactly.
 */
export function aiSdkSemanticSplit(request: unknown): SemanticSplit | undefined {
  const r = request as Partial<AiSdkKeyRequest> | null;
  if (!r || typeof r !== 'object' || !Array.isArray(r.prompt) || r.prompt.length === 0) return undefined;
  const prompt = r.prompt as Array<{ role?: unknown; content?: unknown }>;
  const last = prompt[prompt.length - 1]!;
  if (typeof last !== 'object' || last === null || last.role !== 'user') return undefined;
  const text = messageText(last.content);
  if (text === undefined || text.trim() === '') return undefined;
  return { text, context: { ...r, prompt: prompt.slice(0, -1), lastTurn: { ...last, content: undefined } } };
}

/**
 * How Strata fingerprints AI SDK language-model calls. Pass it as a call's or the cache's
 * `profile` only to compute keys yourself (`cache.keyFor(keyRequestOf(...), { profile: aiSdkProfile })`).
 */
export const aiSdkProfile: RequestProfile = defineProfile({
  id: 'ai-sdk.language-model.v4',
  semanticSplit: aiSdkSemanticSplit,
  // Temperature 0 or a seed, as everywhere in Strata; an absent temperature is the provider's default (not 0).
  isDeterministic: (request) => {
    const s = (request as Partial<AiSdkKeyRequest> | null)?.settings;
    return s?.['temperature'] === 0 || (s?.['seed'] !== undefined && s?.['seed'] !== null);
  },
  model: (request) => {
    const id = (request as Partial<AiSdkKeyRequest> | null)?.modelId;
    return typeof id === 'string' ? id : undefined;
  },
});
