import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { type CacheKey, InvalidOptionError, type InvalidationResult, type Layer, type MultiLayerCache } from '@strata-cache/core';
import { PKG, storedText } from './internals.js';
import { type PatternInput, compilePattern } from './patterns.js';
import { checkKnown } from './rules.js';
import type { InvalidationAudit, PromptPurgeOptions, PromptPurgeReport } from './types.js';

/** What a prompt purge needs from the engine. */
export interface PromptPurgeDeps {
  readonly cache: MultiLayerCache;
  readonly now: () => number;
  /** Removes one key from every layer (and, through the bus, every process), with the engine's race protection. */
  readonly purgeKey: (key: CacheKey) => Promise<InvalidationResult>;
  readonly report: (started: number, t0: number, results: readonly InvalidationResult[], reason: string) => InvalidationAudit;
}

/**
 * `engine.purgeByPrompt`: scans the layers page by page (`scan()`), matches each entry's stored
 * prompt text, and removes the matches everywhere; bounded by `maxScanned` / `maxPurged` /
 * `signal`, resumable.
 */
export async function purgeByPrompt(deps: PromptPurgeDeps, pattern: PatternInput, options: PromptPurgeOptions): Promise<PromptPurgeReport> {
  checkKnown(options, ['scope', 'pageSize', 'maxScanned', 'maxPurged', 'layers', 'resume', 'signal', 'onProgress', 'reason'], 'purgeByPrompt()');
  const regex = compilePattern(pattern, 'purgeByPrompt() pattern');
  const pageSize = positiveInt(options.pageSize ?? 200, 'pageSize');
  const maxScanned = positiveInt(options.maxScanned ?? 100_000, 'maxScanned');
  const maxPurged = positiveInt(options.maxPurged ?? 10_000, 'maxPurged');
  const scope = options.scope === undefined ? undefined : (({ tenant, namespace }) => ({ tenant, namespace }))(deps.cache.resolveScope(options.scope));
  const layers = layersOf(deps.cache);
  if (options.layers) {
    for (const n of options.layers)
      if (!layers.some((l) => l.name === n))
        throw new InvalidOptionError(`${PKG}: purgeByPrompt() layer "${n}" is not in this cache (${layers.map((l) => l.name).join(', ')})`, {
          field: 'layers',
        });
  }
  const chosen = layers.filter((l) => !options.layers || options.layers.includes(l.name));
  const unscannable = chosen.filter((l) => typeof l.scan !== 'function').map((l) => l.name);
  const started = deps.now();
  const t0 = performance.now();
  const seen = new Set<string>();
  const results: InvalidationResult[] = [];
  let scanned = 0;
  let matched = 0;
  let purged = 0;
  let withoutText = 0;
  const resume: Record<string, string> = {};
  let stopped = false;

  const resumeFrom = options.resume && Object.keys(options.resume).length > 0 ? options.resume : undefined;
  for (const [index, l] of chosen.entries()) {
    if (typeof l.scan !== 'function') continue;
    // A resumed purge skips the layers it had finished (they are absent from `resume`).
    if (resumeFrom && !(l.name in resumeFrom)) continue;
    let cursor: string | undefined = resumeFrom?.[l.name] || undefined;
    // Collect first, delete after: some layers' cursors are offsets that deletes would shift.
    const matches: CacheKey[] = [];
    do {
      if (options.signal?.aborted || scanned >= maxScanned || purged + matches.length >= maxPurged) {
        stopped = true;
        break;
      }
      const page = await l.scan({ ...(scope ? { scope } : {}), ...(cursor !== undefined ? { cursor } : {}), count: Math.min(pageSize, maxScanned - scanned) });
      scanned += page.items.length;
      for (const { key, entry } of page.items) {
        const text = storedText(entry);
        if (text === undefined) {
          withoutText++;
          continue;
        }
        if (!regex.test(text) || seen.has(key.id)) continue;
        seen.add(key.id);
        matches.push(key);
        if (purged + matches.length >= maxPurged) {
          stopped = true;
          break;
        }
      }
      cursor = page.cursor;
      options.onProgress?.({ layer: l.name, scanned, matched: matched + matches.length, purged });
      if (stopped) break;
      await yieldToLoop();
    } while (cursor !== undefined);
    matched += matches.length;
    for (let i = 0; i < matches.length; i += pageSize) {
      const batch = matches.slice(i, i + pageSize);
      const rs = await Promise.all(batch.map((k) => deps.purgeKey(k)));
      results.push(...rs);
      purged += rs.filter((r) => Object.values(r.layers).some((n) => n > 0)).length;
      await yieldToLoop();
    }
    if (stopped) {
      // Deletes can shift offset-style cursors (L1 pages by position), so a layer we purged
      // from is resumed from its start: purged entries are gone, the rest is found again.
      resume[l.name] = matches.length > 0 ? '' : (cursor ?? '');
      for (const rest of chosen.slice(index + 1)) if (typeof rest.scan === 'function') resume[rest.name] = '';
      break;
    }
  }
  const audit = deps.report(started, t0, results, options.reason ?? `prompt matches ${String(regex)}`);
  const complete = !stopped;
  return {
    scanned,
    matched,
    purged,
    layers: audit.layers,
    withoutText,
    unscannable,
    complete,
    ...(complete ? {} : { resume }),
    audit,
  };
}

function positiveInt(v: unknown, field: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1)
    throw new InvalidOptionError(`${PKG}: purgeByPrompt() option "${field}" must be a positive integer`, { field });
  return v as number;
}

function layersOf(cache: MultiLayerCache): Layer[] {
  const layers = (cache as { layerInstances?: Layer[] }).layerInstances;
  if (!Array.isArray(layers)) {
    throw new InvalidOptionError(`${PKG}: purgeByPrompt() needs MultiLayerCache.layerInstances (@strata-cache/core with it); upgrade core`, { field: 'cache' });
  }
  return [...layers];
}
