import { AsyncLocalStorage } from 'node:async_hooks';
import { BaseCache, deserializeStoredGeneration } from '@langchain/core/caches';
import type { StoredMessage } from '@langchain/core/messages';
import type { Generation } from '@langchain/core/outputs';
import {
  type Begun,
  type CallOptions,
  type Loaded,
  type MultiLayerCache,
  type PendingLoad,
  type ScopeInput,
  type TokenUsage,
  InvalidOptionError,
  StrataError,
  loaded,
} from '@strata-cache/core';
import { type LangChainKeyRequest, hasUnrenderedContent, keyRequestOf, langChainProfile } from './key.js';
import { checkIntegrationOptions, checkSemanticOption, checkStringListOption } from '@strata-cache/core/layer-kit';

const PKG = '@strata-cache/langchain';

/**
 * llmString fields that cannot change the answer: whether the client streamed internally,
 * transport settings, monitoring ids, the provider's prompt-cache hint.
 */
export const IGNORED_LLM_FIELDS: readonly string[] = Object.freeze([
  'stream',
  'streaming',
  'streamUsage',
  'dangerouslyAllowBrowser',
  'timeout',
  'maxRetries',
  'user',
  'metadata',
  'promptCacheKey',
  'prompt_cache_key',
]);

/** Options of `StrataLangChainCache`. */
export interface StrataLangChainCacheOptions {
  /** The cache that stores answers (a `MultiLayerCache` from @strata-cache/core). */
  cache: MultiLayerCache;
  /**
   * Tenant / namespace of every lookup, or a function returning it (e.g. reading an
   * AsyncLocalStorage: LangChain calls the cache inside your `invoke`). Tenants never share entries.
   * @default the cache's default scope
   */
  scope?: ScopeInput | ((ctx: { readonly prompt: string }) => ScopeInput | undefined) | undefined;
  /** TTL of stored answers, ms. @default the cache's `defaultTtlMs` */
  ttlMs?: number | undefined;
  /** Tags added to every stored answer (for `cache.invalidateTag`). @default [] */
  tags?: readonly string[] | undefined;
  /**
   * Semantic matching (the last human turn) through the cache's semantic layers; `{ threshold }`
   * overrides their similarity threshold; `false` = exact keys only.
   * @default true
   */
  semantic?: boolean | { threshold?: number | undefined } | undefined;
  /**
   * Identical lookups arriving while the first one's model call runs wait for its answer instead
   * of calling the model too. LangChain tells a cache nothing when that call fails, so a load
   * without an answer after `waitMs` is given up: one of the waiting lookups calls the model
   * next, and the others wait on it. `false` turns waiting off.
   * @default { waitMs: 30_000 }
   */
  coalesce?: boolean | { waitMs?: number | undefined } | undefined;
  /** More llmString fields to leave out of the key (added to `IGNORED_LLM_FIELDS`). @default [] */
  ignoreLlmFields?: readonly string[] | undefined;
}

const OPTION_KEYS = ['cache', 'scope', 'ttlMs', 'tags', 'semantic', 'coalesce', 'ignoreLlmFields'] as const satisfies ReadonlyArray<
  keyof StrataLangChainCacheOptions
>;

const DEFAULT_WAIT_MS = 30_000;

/** What is stored for one lookup: LangChain's generations in their serialised form. */
export interface StoredGenerations {
  readonly kind: 'langchain.generations';
  readonly generations: ReadonlyArray<{ text: string; message?: StoredMessage; generationInfo?: Record<string, unknown> }>;
}

/** A lookup that missed and whose `update` has not come yet. */
interface Pending {
  /** Invalidation epoch before the model call: an invalidation since then drops the write. */
  readonly epoch: number;
  /** Present when this lookup leads a load (core's `begin()`) that `update` commits. */
  readonly load?: PendingLoad<StoredGenerations>;
  /** The batch the lookup belongs to (see `batchOf`). */
  readonly batch?: object;
  readonly timer: NodeJS.Timeout;
}

/** A joined load that did not answer within `waitMs`. */
class WaitTimeout extends Error {}

/**
 * A LangChain.js cache (`new ChatOpenAI({ cache: new StrataLangChainCache({ cache }) })`) backed
 * by Strata's layers: exact hits on the prompt and the model's settings, semantic hits on the
 * last human turn, identical concurrent calls answered by one model call, a failing layer a
 * miss. Every hit is a new, mutable copy (LangChain writes to the generations it is given).
 */
export class StrataLangChainCache extends BaseCache<Generation[]> {
  readonly cache: MultiLayerCache;
  private readonly options: StrataLangChainCacheOptions;
  private readonly waitMs: number | undefined;
  private readonly ignored: ReadonlySet<string>;
  private readonly pending = new Map<string, Pending>();
  /** Lookups whose `begin()` has not resolved yet, by key id. */
  private readonly beginning = new Map<string, { readonly batch: object; readonly begun: Promise<Begun<StoredGenerations>> }>();

  constructor(options: StrataLangChainCacheOptions) {
    super();
    checkOptions(options);
    this.options = options;
    this.cache = options.cache;
    const c = options.coalesce ?? true;
    this.waitMs = c === false ? undefined : c === true ? DEFAULT_WAIT_MS : (c.waitMs ?? DEFAULT_WAIT_MS);
    this.ignored = new Set([...IGNORED_LLM_FIELDS, ...(options.ignoreLlmFields ?? [])]);
    if (this.waitMs !== undefined) trackBatches();
  }

  override async lookup(prompt: string, llmString: string): Promise<Generation[] | null> {
    const k = this.keyOf(prompt, llmString);
    if (!k) return null;
    const { request, call, id } = k;
    const epoch = this.cache.currentEpoch;
    if (this.waitMs === undefined) {
      const hit = await this.cache.lookup<StoredGenerations>(request, call).catch((error: unknown) => void this.report(error, 'lookup'));
      if (hit) return toGenerations(hit.entry.value);
      this.remember(id, { epoch });
      return null;
    }
    const batch = batchOf();
    // The same prompt twice in one batch: LangChain sends the updates only after every lookup of
    // the batch has returned, so waiting on the first one's load would wait for ourselves. This
    // one takes the first one's hit, or calls the model too.
    const sibling = this.pending.get(id)?.batch === batch ? this.pending.get(id) : this.beginning.get(id)?.batch === batch ? this.beginning.get(id) : undefined;
    if (sibling) {
      const b = 'begun' in sibling ? await sibling.begun.catch(() => undefined) : undefined;
      return b?.kind === 'hit' ? toGenerations(b.result.value) : null;
    }
    for (let attempt = 0; ; attempt++) {
      let b: Begun<StoredGenerations>;
      const begun = this.cache.begin<StoredGenerations>(request, call);
      const beginning = { batch, begun };
      this.beginning.set(id, beginning);
      try {
        b = await begun;
      } catch (error) {
        this.report(error, 'lookup');
        this.remember(id, { epoch });
        return null;
      } finally {
        if (this.beginning.get(id) === beginning) this.beginning.delete(id);
      }
      if (b.kind === 'hit') return toGenerations(b.result.value);
      if (b.kind === 'load') {
        // LangChain calls the model now; its `update` commits this load (and answers every
        // identical lookup waiting on it).
        this.remember(id, { epoch: b.epoch, load: b, batch });
        return null;
      }
      try {
        return toGenerations((await this.waitFor(b.result)).value);
      } catch (error) {
        // The lookup we waited on gave up before answering (its model call failed or never
        // updated): begin again, one of the waiting lookups leads the next attempt.
        const again = StrataError.isInstance(error) && error.code === 'STRATA_ABANDONED' && (error as { started?: unknown }).started === false;
        if (again && attempt < 2) continue;
        if (!again && !(error instanceof WaitTimeout)) this.report(error, 'lookup');
        if (!this.pending.has(id)) this.remember(id, { epoch });
        return null;
      }
    }
  }

  override async update(prompt: string, llmString: string, value: Generation[]): Promise<void> {
    const k = this.keyOf(prompt, llmString);
    if (!k) return;
    const { request, call, id } = k;
    const out = toLoaded(value);
    const p = this.pending.get(id);
    if (p) this.forget(id, p.load);
    try {
      // The lookup's load stores it (and hands it to every lookup waiting on it).
      if (p?.load && !p.load.settled) await p.load.commit(out);
      else await this.cache.store(request, out, { ...call, sinceEpoch: p?.epoch ?? this.cache.currentEpoch });
    } catch (error) {
      this.report(error, 'store');
    }
  }

  /** What one lookup/update is keyed on; undefined when it is not to be cached (or cannot be keyed). */
  private keyOf(prompt: string, llmString: string): { request: LangChainKeyRequest; call: CallOptions; id: string } | undefined {
    if (hasUnrenderedContent(prompt)) return undefined;
    try {
      const request = keyRequestOf(prompt, llmString, this.ignored);
      const call = this.callOptions(prompt);
      return { request, call, id: this.cache.keyFor(request, call).id };
    } catch (error) {
      this.report(error, 'key');
      return undefined;
    }
  }

  /** A joined load's result, or a `WaitTimeout` after `waitMs`. */
  private waitFor<T>(result: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new WaitTimeout(`${PKG}: no answer within ${this.waitMs} ms`)), this.waitMs);
      timer.unref?.();
    });
    return Promise.race([result, timeout]).finally(() => clearTimeout(timer));
  }

  private remember(id: string, p: { epoch: number; load?: PendingLoad<StoredGenerations>; batch?: object }): void {
    const previous = this.pending.get(id);
    if (previous) clearTimeout(previous.timer);
    const wait = this.waitMs ?? DEFAULT_WAIT_MS;
    const timer = setTimeout(() => {
      const mine = this.pending.get(id)?.timer === timer;
      if (mine) this.pending.delete(id);
      if (p.load && !p.load.settled) {
        // No update in time (the model call failed, or is slow): the lookups waiting on it begin again.
        p.load.abandon();
        // A slow model call may still update: it keeps its epoch for one more period.
        if (mine) this.remember(id, { epoch: p.epoch });
      }
    }, wait);
    timer.unref?.();
    this.pending.set(id, { ...p, timer });
  }

  private forget(id: string, load: PendingLoad<StoredGenerations> | undefined): void {
    const p = this.pending.get(id);
    if (!p || p.load !== load) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
  }

  private callOptions(prompt: string): CallOptions {
    const o = this.options;
    const scope = typeof o.scope === 'function' ? o.scope({ prompt }) : o.scope;
    return {
      profile: langChainProfile,
      ...(scope !== undefined ? { scope } : {}),
      ...(o.semantic !== undefined && o.semantic !== true ? { semantic: o.semantic } : {}),
      ...(o.ttlMs !== undefined ? { ttlMs: o.ttlMs } : {}),
      ...(o.tags?.length ? { tags: o.tags } : {}),
    };
  }

  private report(error: unknown, operation: string): void {
    // Like core: a cache problem never fails the LangChain call, and an 'error' event with no listener is dropped.
    if (this.cache.listenerCount('error') === 0) return;
    const e = StrataError.isInstance(error) ? error : new StrataError('STRATA_LAYER', `${PKG}: ${operation} failed`, { cause: error });
    this.cache.emit('error', { error: e, operation });
  }
}

const batches = new AsyncLocalStorage<object>();
let tracking = false;

/**
 * Starts async-context tracking (a no-op `run` enables it on Node 20/22; Node 24 always tracks).
 * Done when a coalescing cache is built, before the calls it serves: contexts created before
 * tracking starts cannot be told apart, and their lookups would all look like one batch.
 */
function trackBatches(): void {
  if (tracking) return;
  tracking = true;
  batches.run({}, () => undefined);
}

/**
 * A token shared by the lookups LangChain makes for one `generate` call. LangChain looks up
 * every prompt of a batch from one synchronous pass; the first lookup enters a new token into
 * that async context, so its siblings see it, while lookups of other calls (other contexts)
 * do not.
 */
function batchOf(): object {
  trackBatches();
  let token = batches.getStore();
  if (!token) {
    token = {};
    batches.enterWith(token);
  }
  return token;
}

/** LangChain's generations → what is stored (JSON only), with the usage and model for statistics. */
function toLoaded(generations: Generation[]): Loaded<StoredGenerations> {
  let stored: StoredGenerations;
  try {
    stored = JSON.parse(
      JSON.stringify({
        kind: 'langchain.generations',
        generations: generations.map((g) => {
          const message = (g as { message?: { toDict?: () => StoredMessage } }).message;
          return {
            text: g.text,
            ...(typeof message?.toDict === 'function' ? { message: message.toDict() } : {}),
            ...(g.generationInfo ? { generationInfo: g.generationInfo } : {}),
          };
        }),
      }),
    ) as StoredGenerations;
  } catch {
    // Not JSON-serialisable: handed to waiting callers, never stored.
    return loaded({ kind: 'langchain.generations', generations: [] }, { complete: false });
  }
  const usage = usageOf(generations);
  const model = modelOf(generations);
  return loaded(stored, { ...(usage ? { usage } : {}), ...(model ? { model } : {}) });
}

/** A fresh, mutable copy of stored generations (the memory layer's entries are frozen; LangChain writes to hits). */
function toGenerations(value: StoredGenerations): Generation[] | null {
  if (value?.kind !== 'langchain.generations' || !Array.isArray(value.generations) || value.generations.length === 0) return null;
  const copy = structuredClone(value.generations) as Array<{ text: string; message?: StoredMessage; generationInfo?: Record<string, unknown> }>;
  return copy.map((g) => {
    const base = g.message ? deserializeStoredGeneration({ text: g.text, message: g.message }) : { text: g.text };
    return g.generationInfo ? { ...base, generationInfo: g.generationInfo } : base;
  });
}

function usageOf(generations: Generation[]): TokenUsage | undefined {
  let input = 0;
  let output = 0;
  let cached = 0;
  let written = 0;
  let seen = false;
  for (const g of generations) {
    const u = (g as { message?: { usage_metadata?: Record<string, unknown> } }).message?.usage_metadata;
    if (!u) continue;
    seen = true;
    input += num(u['input_tokens']);
    output += num(u['output_tokens']);
    const details = u['input_token_details'] as Record<string, unknown> | undefined;
    cached += num(details?.['cache_read']);
    written += num(details?.['cache_creation']);
  }
  if (!seen) return undefined;
  return { inputTokens: input, outputTokens: output, ...(cached ? { cachedInputTokens: cached } : {}), ...(written ? { cacheWriteInputTokens: written } : {}) };
}

function modelOf(generations: Generation[]): string | undefined {
  const meta = (generations[0] as { message?: { response_metadata?: Record<string, unknown> } } | undefined)?.message?.response_metadata;
  const m = meta?.['model_name'] ?? meta?.['model'];
  return typeof m === 'string' ? m : undefined;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function checkOptions(options: StrataLangChainCacheOptions): void {
  checkIntegrationOptions(PKG, options, { takenBy: 'StrataLangChainCache', known: OPTION_KEYS, cacheMethods: ['keyFor'] });
  if (options.ignoreLlmFields !== undefined) checkStringListOption(PKG, options.ignoreLlmFields, 'ignoreLlmFields');
  if (options.semantic !== undefined) checkSemanticOption(PKG, options.semantic);
  const c = options.coalesce;
  if (c !== undefined && typeof c !== 'boolean') {
    const w = (c as { waitMs?: unknown } | null)?.waitMs;
    if (typeof c !== 'object' || c === null || (w !== undefined && (typeof w !== 'number' || !Number.isFinite(w) || w <= 0))) {
      throw new InvalidOptionError(`${PKG}: option "coalesce" must be a boolean or { waitMs } with a positive number of ms`, { field: 'coalesce' });
    }
  }
}
