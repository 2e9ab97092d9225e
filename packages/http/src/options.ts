import { type MultiLayerCache, InvalidOptionError } from '@strata-cache/core';
import { checkIntegrationOptions, checkStringListOption } from '@strata-cache/core/layer-kit';
import type { ReplayPacing, ScopeOption } from './types.js';

/** Options every provider adapter's `withCache` takes (adapters may add their own). */
export interface CachingOptions {
  /** The cache that stores answers (build it with `MultiLayerCache` from @strata-cache/core). */
  cache: MultiLayerCache;
  /**
   * Tenant / namespace of every request, or a function of the request body returning it
   * (e.g. reading an AsyncLocalStorage). Tenants never share entries.
   * @default the cache's default scope
   */
  scope?: ScopeOption | undefined;
  /**
   * How cached streams are replayed. `pacing: 'none'` sends events as fast as they are read;
   * `'recorded'` keeps the original gaps (each at most `maxGapMs`); a number is a fixed gap in ms.
   * `rebuildStreams`: a stream request may be answered from an answer a non-stream request
   * stored, rebuilt as the stream the endpoint sends (each part of the answer one event, no
   * recorded gaps), and — where the assembled stream is the non-stream body too — the two forms
   * share their semantic entries; `false` replays only recorded streams and keeps the forms apart.
   * Exact keys always differ between the forms.
   * @default { pacing: 'none', maxGapMs: 1000, rebuildStreams: true }
   */
  replay?: { pacing?: 'none' | 'recorded' | number | undefined; maxGapMs?: number | undefined; rebuildStreams?: boolean | undefined } | undefined;
  /** TTL of stored answers, ms. @default the cache's defaultTtlMs */
  ttlMs?: number | undefined;
  /** Tags added to every stored answer. @default [] */
  tags?: readonly string[] | undefined;
  /**
   * Model families (name prefixes such as `'gpt-5'`, `'o4-mini'`, `'claude-sonnet-4'`; `'*'` for
   * every model) whose reasoning requests the core `'deterministic'` policy caches. Reasoning
   * requests cannot pin their sampling (OpenAI reasoning models take no `temperature` and no
   * `seed`; Anthropic extended thinking requires temperature 1), so by default they are never
   * cached; listing a family says "a repeat may get the first answer". Each adapter's README
   * states exactly which requests count as reasoning requests.
   * @default []
   */
  reasoningModels?: readonly string[] | undefined;
}

/** Defaults of the options above, in one place. */
export const CACHING_DEFAULTS = Object.freeze({
  replay: Object.freeze({ pacing: 'none' as const, maxGapMs: 1000, rebuildStreams: true }),
  tags: Object.freeze([]) as readonly string[],
  reasoningModels: Object.freeze([]) as readonly string[],
});

/** Every option name of `CachingOptions` (complete at compile time). */
export const CACHING_OPTION_NAMES = Object.freeze(
  Object.keys({ cache: true, scope: true, replay: true, ttlMs: true, tags: true, reasoningModels: true } satisfies Record<keyof CachingOptions, true>),
) as readonly (keyof CachingOptions)[];

/** Checks the shared options (and rejects names outside `known`). */
export function checkCachingOptions(packageName: string, options: unknown, known: readonly string[], takenBy = 'withCache'): asserts options is CachingOptions {
  checkIntegrationOptions(packageName, options, { takenBy, known });
  const o = options as Partial<CachingOptions>;
  if (o.reasoningModels !== undefined) checkStringListOption(packageName, o.reasoningModels, 'reasoningModels');
  checkPacing(packageName, o.replay);
}

/** The replay pacing of validated options. */
export function checkPacing(packageName: string, replay: unknown): ReplayPacing {
  const defaults = CACHING_DEFAULTS.replay;
  if (replay === undefined) return { mode: defaults.pacing, maxGapMs: defaults.maxGapMs, rebuildStreams: defaults.rebuildStreams };
  if (typeof replay !== 'object' || replay === null) throw new InvalidOptionError(`${packageName}: option "replay" must be an object`, { field: 'replay' });
  const r = replay as { pacing?: unknown; maxGapMs?: unknown; rebuildStreams?: unknown };
  const mode = r.pacing ?? defaults.pacing;
  if (mode !== 'none' && mode !== 'recorded' && !(typeof mode === 'number' && mode >= 0 && Number.isFinite(mode))) {
    throw new InvalidOptionError(`${packageName}: option "replay.pacing" must be 'none', 'recorded' or a number of ms`, { field: 'replay.pacing' });
  }
  const maxGapMs = r.maxGapMs ?? defaults.maxGapMs;
  if (typeof maxGapMs !== 'number' || !(maxGapMs >= 0))
    throw new InvalidOptionError(`${packageName}: option "replay.maxGapMs" must be a non-negative number`, { field: 'replay.maxGapMs' });
  const rebuildStreams = r.rebuildStreams ?? defaults.rebuildStreams;
  if (typeof rebuildStreams !== 'boolean')
    throw new InvalidOptionError(`${packageName}: option "replay.rebuildStreams" must be a boolean`, { field: 'replay.rebuildStreams' });
  return { mode: mode as ReplayPacing['mode'], maxGapMs, rebuildStreams };
}
