/**
 * Core's side of calibrating semantic layers (`@strata-cache/semantic-calibration`):
 *
 * - a search's `calibration` note is copied onto the call (and the result);
 * - after the upstream answer of a shadow check or a near miss, the answer goes back to the layer
 *   (`observe`), off the caller's path — also when the answer arrives through `lookup()` then
 *   `store()` (streams), via the notes remembered for the key;
 * - `feedback(result, verdict)`: a user's verdict on a served answer; a wrong one is removed from
 *   every layer (every process, with a bus) and counts against the layer's neighbourhood.
 */
import type { CacheContext } from './context.js';
import { InvalidRequestError } from './errors.js';
import type { CacheKey } from './fingerprint.js';
import { type FeedbackVerdict, type SemanticSearchResult, isPromiseLike } from './layer.js';
import { FAILED } from './layer-runner.js';
import type { CacheResult, CalibrationInfo, FeedbackResult, InvalidationResult, LookupHit } from './types.js';

const ACTIONS = new Set(['serve', 'shadow', 'miss']);

/** The search's calibration note with its layer, or undefined (none, or malformed: a layer bug never breaks a request). */
export function calibrationOf(r: SemanticSearchResult, layer: string): CalibrationInfo | undefined {
  const n = r.calibration;
  if (!n || typeof n !== 'object' || !ACTIONS.has(n.action)) return undefined;
  return { ...n, layer };
}

/** The note a result shows: the one that served a hit, else a shadow check, else the first. */
export function shownCalibration(calibrations: readonly CalibrationInfo[] | undefined): CalibrationInfo | undefined {
  if (!calibrations || calibrations.length === 0) return undefined;
  return calibrations.find((c) => c.action === 'serve') ?? calibrations.find((c) => c.action === 'shadow') ?? calibrations[0];
}

/** True when one of the notes is a shadow check (the call's upstream request is an audit). */
export function isShadowCheck(calibrations: readonly CalibrationInfo[] | undefined): boolean {
  return calibrations?.some((c) => c.action === 'shadow') === true;
}

/**
 * Hands an upstream answer to every calibrating layer that left a token on the call (shadow
 * checks and near misses). Never waits and never throws: the layer judges in the background,
 * a failure is an `error` event.
 */
export function observeUpstream(ctx: CacheContext, calibrations: readonly CalibrationInfo[] | undefined, value: unknown): void {
  if (!calibrations) return;
  for (const c of calibrations) {
    if (c.token === undefined || c.action === 'serve') continue;
    const l = ctx.layers.find((x) => x.name === c.layer);
    if (!l || typeof l.layer.observe !== 'function') continue;
    ctx.stats.calibrationObserved++;
    ctx.runner.untimed(l, 'observe', (lc) => l.layer.observe!(c.token, value, lc));
  }
}

/**
 * Notes of lookups that missed, by key, until the answer is stored (`lookup()` then `store()`:
 * the streaming path of the adapters). Bounded in size and age; an answer stored later than
 * `ttlMs` after its lookup teaches nothing.
 */
export class PendingObservations {
  private readonly byKey = new Map<string, { readonly at: number; readonly notes: CalibrationInfo[] }>();

  constructor(
    private readonly max = 1_024,
    private readonly ttlMs = 300_000,
  ) {}

  remember(key: CacheKey, calibrations: readonly CalibrationInfo[] | undefined, now: number): void {
    if (!calibrations) return;
    const notes = calibrations.filter((c) => c.token !== undefined && c.action !== 'serve');
    if (notes.length === 0) return;
    this.byKey.delete(key.id);
    this.byKey.set(key.id, { at: now, notes });
    while (this.byKey.size > this.max) this.byKey.delete(this.byKey.keys().next().value as string);
  }

  take(key: CacheKey, now: number): CalibrationInfo[] | undefined {
    const p = this.byKey.get(key.id);
    if (!p) return undefined;
    this.byKey.delete(key.id);
    return now - p.at <= this.ttlMs ? p.notes : undefined;
  }

  clear(): void {
    this.byKey.clear();
  }
}

/**
 * A user's verdict on an answer the cache served. `wrong` removes the entry that answered from
 * every layer through `invalidateKey` (every process, with a bus) — for a semantic hit the
 * stored entry that matched, and the request's own key when semantic hits are backfilled — and a
 * calibrating layer counts it against the entry's neighbourhood. `right` is evidence for the
 * calibrating layer that served it.
 */
export async function applyFeedback(
  ctx: CacheContext,
  result: CacheResult<unknown> | LookupHit<unknown>,
  verdict: FeedbackVerdict,
  invalidateKey: (key: CacheKey) => Promise<InvalidationResult>,
): Promise<FeedbackResult> {
  if (verdict !== 'wrong' && verdict !== 'right')
    throw new InvalidRequestError(`@strata-cache/core: feedback verdict must be 'wrong' or 'right' (got ${JSON.stringify(verdict)})`);
  if (typeof result !== 'object' || result === null || !isKey((result as { key?: unknown }).key)) {
    throw new InvalidRequestError('@strata-cache/core: feedback() needs the result of getOrLoad, begin or lookup (with its key)');
  }
  const isResult = 'status' in result;
  if (isResult && result.status !== 'hit') return { action: 'ignored' };
  if (!isResult && typeof (result as LookupHit).layer !== 'string')
    throw new InvalidRequestError('@strata-cache/core: feedback() needs the result of getOrLoad, begin or lookup');
  if (verdict === 'wrong') ctx.stats.feedbackWrong++;
  else ctx.stats.feedbackRight++;
  const semantic = result.similarity !== undefined;
  const cal = result.calibration;
  let recorded = false;
  if (cal && cal.action === 'serve' && cal.token !== undefined) {
    const l = ctx.layers.find((x) => x.name === cal.layer);
    if (l && typeof l.layer.feedback === 'function') {
      const r = ctx.runner.read(l, 'feedback', (c) => l.layer.feedback!(cal.token, verdict, c));
      recorded = (isPromiseLike(r) ? await r : r) !== FAILED;
    }
  }
  if (verdict === 'right') return { action: recorded ? 'recorded' : 'ignored' };
  const keys: CacheKey[] = [];
  if (isResult) {
    const r = result as CacheResult<unknown>;
    if (semantic && isKey(r.matchedKey)) keys.push(r.matchedKey);
    // An exact hit, a semantic one whose copy was backfilled under the request's key, or one that does not say which entry matched.
    if (!semantic || ctx.backfillSemanticHits || !isKey(r.matchedKey)) keys.push(r.key);
  } else keys.push(result.key);
  const layers: Record<string, number> = {};
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k.id)) continue;
    seen.add(k.id);
    const inv = await invalidateKey(k);
    for (const [name, n] of Object.entries(inv.layers)) layers[name] = (layers[name] ?? 0) + n;
  }
  return { action: 'evicted', layers };
}

function isKey(k: unknown): k is CacheKey {
  return typeof k === 'object' && k !== null && typeof (k as CacheKey).id === 'string' && typeof (k as CacheKey).scope === 'object';
}
