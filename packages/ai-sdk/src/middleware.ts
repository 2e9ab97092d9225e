import type { LanguageModelV4, LanguageModelV4CallOptions, LanguageModelV4GenerateResult, LanguageModelV4Middleware } from '@ai-sdk/provider';
import { type CacheResult, type CallOptions, type MultiLayerCache, type ScopeInput, InvalidOptionError, StrataError, loaded } from '@strata-cache/core';
import { checkIntegrationOptions, checkSemanticOption, checkStringListOption, checkTtlOption } from '@strata-cache/core/layer-kit';
import { decode, encode } from './codec.js';
import { type AiSdkKeyRequest, type CallKind, DEFAULT_KEY_HEADERS, IGNORED_PROVIDER_OPTIONS, PROVIDER_OPTIONS_KEY, aiSdkProfile, keyRequestOf } from './key.js';
import { isAbortError, untilAborted } from '@strata-cache/http';
import { type CacheInfo, reportError, toTokenUsage, withCacheInfo } from './result.js';
import { streamThroughCache } from './stream.js';

const PKG = '@strata-cache/ai-sdk';

/** What a `scope` function is given. */
export interface ScopeContext {
  readonly params: LanguageModelV4CallOptions;
  readonly model: LanguageModelV4;
}

/** Options of `strataCache`. */
export interface StrataCacheOptions {
  /** The cache that stores answers (a `MultiLayerCache` from @strata-cache/core). */
  cache: MultiLayerCache;
  /**
   * Tenant / namespace of every call, or a function of the call returning it (e.g. reading an
   * AsyncLocalStorage). Tenants never share entries. A call's `providerOptions.strata.scope` wins.
   * @default the cache's default scope
   */
  scope?: ScopeInput | ((ctx: ScopeContext) => ScopeInput | undefined) | undefined;
  /** TTL of stored answers, ms. @default the cache's `defaultTtlMs` */
  ttlMs?: number | undefined;
  /** Tags added to every stored answer (for `cache.invalidateTag`). @default [] */
  tags?: readonly string[] | undefined;
  /**
   * Semantic matching of the last user message through the cache's semantic layers; a number
   * in `{ threshold }` overrides their similarity threshold. `false` = exact keys only.
   * @default true
   */
  semantic?: boolean | { threshold?: number | undefined } | undefined;
  /**
   * Request headers that change the answer and therefore enter the key (case-insensitive).
   * Every other header (the SDK's user agent, tracing ids, auth) is left out.
   * @default ['anthropic-beta', 'openai-beta']
   */
  keyHeaders?: readonly string[] | undefined;
  /**
   * More provider-option fields that cannot change the answer, removed from the key in every
   * `providerOptions` object, added to the built-in list (`user`, `metadata`,
   * `safetyIdentifier`, `promptCacheKey`, `promptCacheRetention`, `cacheControl`).
   * @default []
   */
  ignoreProviderOptions?: readonly string[] | undefined;
  /** Cache `doStream` calls (`streamText`, `streamObject`). @default true */
  streams?: boolean | undefined;
  /**
   * On a hit, add `providerMetadata.strata = { hit: true, layer, ageMs, similarity? }` to the
   * result (and to the replayed stream's `finish` part); read it with `getCacheInfo`.
   * `false` replays hits exactly as recorded.
   * @default true
   */
  cacheInfo?: boolean | undefined;
}

const OPTION_KEYS = [
  'cache',
  'scope',
  'ttlMs',
  'tags',
  'semantic',
  'keyHeaders',
  'ignoreProviderOptions',
  'streams',
  'cacheInfo',
] as const satisfies ReadonlyArray<keyof StrataCacheOptions>;

/**
 * Per-call settings, passed as `providerOptions: { strata: { ... } }` to `generateText`,
 * `streamText`, `generateObject` (never part of the key, ignored by providers).
 */
export interface StrataCallOptions {
  /** No read, no write. */
  bypass?: boolean | undefined;
  /** Skip the read, call the model, store the fresh answer. */
  forceRefresh?: boolean | undefined;
  /** Read, but do not store this call's answer. */
  noStore?: boolean | undefined;
  /** TTL of this call's stored answer, ms. */
  ttlMs?: number | undefined;
  /** Tags of this call's stored answer (added to the middleware's). */
  tags?: string[] | undefined;
  /** `false`: exact keys only for this call; `{ threshold }`: another similarity threshold. */
  semantic?: boolean | { threshold?: number | undefined } | undefined;
  /** The tenant (a string) or `{ tenant, namespace? }` of this call. */
  scope?: string | { tenant: string; namespace?: string | undefined } | undefined;
}

const CALL_KEYS = ['bypass', 'forceRefresh', 'noStore', 'ttlMs', 'tags', 'semantic', 'scope'] as const satisfies ReadonlyArray<keyof StrataCallOptions>;

/** One call, prepared once and handed to the generate or stream path. */
export interface PreparedCall {
  readonly cache: MultiLayerCache;
  readonly keyRequest: AiSdkKeyRequest;
  readonly call: CallOptions;
  readonly signal: AbortSignal | undefined;
  readonly cacheInfo: boolean;
  readonly modelId: string;
}

/**
 * The Strata language-model middleware:
 * `wrapLanguageModel({ model, middleware: strataCache({ cache }) })`.
 *
 * `doGenerate` calls (`generateText`, `generateObject`, each step of a tool loop) read through
 * the cache; concurrent identical misses share one model call. `doStream` calls replay a hit
 * as the AI SDK's own stream parts, in order; concurrent identical stream misses share one
 * model stream, each receiving its parts live; a stream is stored only when it finished
 * cleanly (no `error` part, a `finish` part whose reason is not `error`/`interrupted`, not
 * cancelled). A failing cache layer is a miss, never a failed call.
 */
export function strataCache(options: StrataCacheOptions): LanguageModelV4Middleware {
  const settings = checkOptions(options);
  const { cache } = options;
  const keySettings = {
    keyHeaders: new Set((options.keyHeaders ?? DEFAULT_KEY_HEADERS).map((h) => h.toLowerCase())),
    ignoredProviderOptions: new Set([...IGNORED_PROVIDER_OPTIONS, ...(options.ignoreProviderOptions ?? [])]),
  };

  function prepare(params: LanguageModelV4CallOptions, model: LanguageModelV4, kind: CallKind): PreparedCall | undefined {
    const perCall = readCallOptions(params);
    if (perCall.bypass) return undefined;
    // Server-side conversation state is not in the request: the same request can mean another answer.
    if (hasServerState(params)) return undefined;
    const keyRequest = keyRequestOf(params, model, kind, keySettings);
    const scope = perCall.scope ?? (typeof options.scope === 'function' ? options.scope({ params, model }) : options.scope);
    const semantic = perCall.semantic ?? settings.semantic;
    const tags = [...(options.tags ?? []), ...(perCall.tags ?? [])];
    const ttlMs = perCall.ttlMs ?? options.ttlMs;
    const call: CallOptions = {
      profile: aiSdkProfile,
      ...(scope !== undefined ? { scope } : {}),
      ...(semantic !== true ? { semantic } : {}),
      ...(tags.length ? { tags } : {}),
      ...(ttlMs !== undefined ? { ttlMs } : {}),
      ...(perCall.forceRefresh ? { forceRefresh: true } : {}),
      ...(perCall.noStore ? { noStore: true } : {}),
    };
    return { cache, keyRequest, call, signal: params.abortSignal, cacheInfo: settings.cacheInfo, modelId: model.modelId };
  }

  return {
    specificationVersion: 'v4',
    async wrapGenerate({ doGenerate, params, model }) {
      const p = prepare(params, model, 'generate');
      if (!p) return doGenerate();
      return generateThroughCache(p, doGenerate);
    },
    async wrapStream({ doStream, params, model }) {
      if (!settings.streams) return doStream();
      const p = prepare(params, model, 'stream');
      if (!p) return doStream();
      // What doStream() does, with the abort signal the shared stream needs.
      return streamThroughCache(p, (signal) => model.doStream(signal ? { ...params, abortSignal: signal } : params));
    },
  };
}

/**
 * Read-through for one `doGenerate`. Identical concurrent misses share one model call made
 * with the first caller's abort signal; when that caller gives up, the others try again with
 * their own, and every caller can leave as soon as its own signal aborts.
 */
async function generateThroughCache(p: PreparedCall, doGenerate: () => PromiseLike<LanguageModelV4GenerateResult>): Promise<LanguageModelV4GenerateResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await untilAborted(generateOnce(p, doGenerate), p.signal);
    } catch (error) {
      if (attempt < 3 && isAbortError(error) && !p.signal?.aborted) continue;
      throw error;
    }
  }
}

async function generateOnce(p: PreparedCall, doGenerate: () => PromiseLike<LanguageModelV4GenerateResult>): Promise<LanguageModelV4GenerateResult> {
  let fresh: LanguageModelV4GenerateResult | undefined;
  let called = false;
  let r: CacheResult<unknown>;
  try {
    r = await p.cache.getOrLoad<unknown>(
      p.keyRequest,
      async () => {
        called = true;
        fresh = await doGenerate();
        const usage = toTokenUsage(fresh.usage);
        const model = fresh.response?.modelId ?? p.modelId;
        const reason = fresh.finishReason?.unified;
        return loaded(storedGenerate(fresh), { model, ...(usage ? { usage } : {}), complete: reason !== 'error' && reason !== 'interrupted' });
      },
      p.call,
    );
  } catch (error) {
    // The cache refused the call before any model call (a request it cannot fingerprint, a
    // closed cache): the call goes to the model as if there were no cache.
    if (!called && StrataError.isInstance(error)) {
      reportError(p.cache, error, 'getOrLoad');
      return doGenerate();
    }
    throw error;
  }
  if (r.status === 'hit') {
    const result = decode(r.value) as LanguageModelV4GenerateResult;
    return p.cacheInfo ? withCacheInfo(result, infoOf(r)) : result;
  }
  // The caller whose loader ran gets the provider's own object; coalesced callers get a copy.
  if (fresh && !r.coalesced) return fresh;
  return decode(r.value) as LanguageModelV4GenerateResult;
}

/**
 * What is kept of a generate result: the answer and what describes it. Dropped: the request
 * (its body is the prompt again) and the response headers (per-call transport details such as
 * request ids and organisation ids, never part of an answer).
 */
function storedGenerate(r: LanguageModelV4GenerateResult): unknown {
  const { request: _request, response, ...rest } = r;
  const kept = response ? (({ headers: _h, ...meta }) => meta)(response) : undefined;
  return encode({ ...rest, ...(kept ? { response: kept } : {}) });
}

function infoOf(r: { layer?: string | undefined; ageMs?: number | undefined; similarity?: number | undefined }): CacheInfo {
  return { hit: true, layer: r.layer ?? '', ageMs: r.ageMs ?? 0, ...(r.similarity !== undefined ? { similarity: r.similarity } : {}) };
}

function hasServerState(params: LanguageModelV4CallOptions): boolean {
  const openai = params.providerOptions?.['openai'] as Record<string, unknown> | undefined;
  return openai?.['conversation'] !== undefined && openai?.['conversation'] !== null;
}

function readCallOptions(params: LanguageModelV4CallOptions): Omit<StrataCallOptions, 'scope'> & { scope?: ScopeInput | undefined } {
  const raw = params.providerOptions?.[PROVIDER_OPTIONS_KEY] as Record<string, unknown> | undefined;
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidOptionError(`${PKG}: providerOptions.strata must be an object`, { field: 'providerOptions.strata' });
  }
  for (const k of Object.keys(raw)) {
    if (!(CALL_KEYS as readonly string[]).includes(k)) {
      throw new InvalidOptionError(`${PKG}: unknown option providerOptions.strata.${k} (known: ${CALL_KEYS.join(', ')})`, {
        field: `providerOptions.strata.${k}`,
      });
    }
  }
  const o = raw as StrataCallOptions;
  for (const k of ['bypass', 'forceRefresh', 'noStore'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean')
      throw new InvalidOptionError(`${PKG}: providerOptions.strata.${k} must be a boolean`, { field: `providerOptions.strata.${k}` });
  }
  if (o.ttlMs !== undefined) checkTtlOption(PKG, o.ttlMs, 'providerOptions.strata.ttlMs');
  if (o.tags !== undefined) checkStringListOption(PKG, o.tags, 'providerOptions.strata.tags');
  if (o.semantic !== undefined) checkSemanticOption(PKG, o.semantic, 'providerOptions.strata.semantic');
  if (o.scope !== undefined && typeof o.scope !== 'string' && (typeof o.scope !== 'object' || o.scope === null || typeof o.scope.tenant !== 'string')) {
    throw new InvalidOptionError(`${PKG}: providerOptions.strata.scope must be a tenant string or { tenant, namespace? }`, {
      field: 'providerOptions.strata.scope',
    });
  }
  return o;
}

function checkOptions(options: StrataCacheOptions): { semantic: boolean | { threshold?: number | undefined }; streams: boolean; cacheInfo: boolean } {
  checkIntegrationOptions(PKG, options, { takenBy: 'strataCache', known: OPTION_KEYS });
  if (options.semantic !== undefined) checkSemanticOption(PKG, options.semantic);
  for (const k of ['keyHeaders', 'ignoreProviderOptions'] as const) if (options[k] !== undefined) checkStringListOption(PKG, options[k], k);
  for (const k of ['streams', 'cacheInfo'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'boolean') throw new InvalidOptionError(`${PKG}: option "${k}" must be a boolean`, { field: k });
  }
  return { semantic: options.semantic ?? true, streams: options.streams ?? true, cacheInfo: options.cacheInfo ?? true };
}
