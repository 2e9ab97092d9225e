import { describe, expect, it } from 'vitest';
import {
  type CacheKey,
  type CalibrationNote,
  type FeedbackVerdict,
  InvalidRequestError,
  type LayerContext,
  MultiLayerCache,
  type SemanticQuery,
  type SemanticSearchResult,
  type StrataError,
  loaded,
} from '../src/index.js';
import { TestLayer } from './helpers.js';

const chat = (text: string) => ({ model: 'm', temperature: 0, messages: [{ role: 'user', content: text }] });

/**
 * A fake calibrating semantic layer: its search answers with whatever `next` says (a served
 * entry, a shadow check, a near miss), and it records what core hands back.
 */
class CalibratingLayer extends TestLayer {
  next: { note: CalibrationNote; hit?: { key: CacheKey; value: unknown } } | undefined;
  observed: Array<{ token: unknown; value: unknown; ctx: LayerContext | undefined }> = [];
  verdicts: Array<{ token: unknown; verdict: FeedbackVerdict }> = [];
  observeFails = false;
  constructor() {
    super('sem', { semantic: true, remote: false });
  }
  async search(_q: SemanticQuery): Promise<SemanticSearchResult> {
    const n = this.next;
    if (!n) return {};
    return {
      calibration: n.note,
      ...(n.hit ? { hit: { key: n.hit.key, entry: { value: n.hit.value, createdAt: Date.now(), tags: [] }, similarity: 0.93, text: 'stored question' } } : {}),
    };
  }
  async observe(token: unknown, value: unknown, ctx?: LayerContext): Promise<void> {
    if (this.observeFails) throw new Error('judge down');
    this.observed.push({ token, value, ctx });
  }
  async feedback(token: unknown, verdict: FeedbackVerdict): Promise<{ evict: boolean }> {
    this.verdicts.push({ token, verdict });
    return { evict: verdict === 'wrong' };
  }
}

function setup(options: { backfillSemanticHits?: boolean } = {}) {
  const l1 = new TestLayer('l1', { remote: false });
  const sem = new CalibratingLayer();
  const cache = new MultiLayerCache({ layers: [l1, sem], policy: 'always', ...options });
  return { l1, sem, cache };
}

describe('core and calibrating semantic layers', () => {
  it('a served match: calibrated result with the matched key and the note; the hit event says so', async () => {
    const { sem, cache } = setup();
    const stored = cache.keyFor(chat('stored question'));
    sem.next = {
      note: { action: 'serve', similarity: 0.93, pWrong: 0.01, cutoff: 0.05, boundary: 0.9, token: { t: 1 } },
      hit: { key: stored, value: 'stored answer' },
    };
    const events: unknown[] = [];
    cache.on('hit', (e) => events.push(e));
    const r = await cache.getOrLoad(chat('asked question'), async () => 'fresh');
    expect(r).toMatchObject({ status: 'hit', value: 'stored answer', calibrated: true, similarity: 0.93, matchedKey: stored });
    expect(r.calibration).toEqual({ action: 'serve', similarity: 0.93, pWrong: 0.01, cutoff: 0.05, boundary: 0.9, token: { t: 1 }, layer: 'sem' });
    expect(r.key.id).not.toBe(stored.id);
    expect(events).toEqual([expect.objectContaining({ calibrated: true, boundary: 0.9, similarity: 0.93 })]);
    expect(sem.observed).toEqual([]);
  });

  it('a shadow check: a miss, the fresh answer served, the answer handed back to the layer off the caller’s path', async () => {
    const { sem, cache } = setup();
    sem.next = { note: { action: 'shadow', similarity: 0.95, pWrong: 0.01, cutoff: 0.05, token: { t: 2 } } };
    const misses: Array<{ shadowCheck?: boolean }> = [];
    cache.on('miss', (e) => misses.push(e));
    const r = await cache.getOrLoad(chat('asked'), async () => 'fresh answer');
    expect(r).toMatchObject({ status: 'miss', value: 'fresh answer', calibration: { action: 'shadow', layer: 'sem' } });
    expect(r.calibrated).toBeUndefined();
    await cache.flush();
    expect(sem.observed).toEqual([{ token: { t: 2 }, value: 'fresh answer', ctx: expect.objectContaining({ signal: expect.any(AbortSignal) }) }]);
    expect(misses[0]!.shadowCheck).toBe(true);
    expect(cache.stats().calibration).toEqual({ shadowChecks: 1, observed: 1, feedback: { wrong: 0, right: 0 } });
  });

  it('near misses teach too: after getOrLoad, begin/commit, a noStore call and lookup() then store(); never an incomplete answer', async () => {
    const { sem, cache } = setup();
    sem.next = { note: { action: 'miss', similarity: 0.7, cutoff: 0.05, token: { t: 3 } } };
    await cache.getOrLoad(chat('a'), async () => 'A');
    const b = await cache.begin(chat('b'));
    expect(b.kind).toBe('load');
    if (b.kind === 'load') await b.commit('B');
    await cache.getOrLoad(chat('c'), async () => 'C', { noStore: true });
    expect(await cache.lookup(chat('d'))).toBeUndefined();
    await cache.store(chat('d'), 'D');
    await cache.store(chat('d'), 'D again'); // the note was used once
    await cache.getOrLoad(chat('e'), async () => loaded('E (cut)', { complete: false }));
    // A note without a token teaches nothing.
    sem.next = { note: { action: 'miss', cutoff: 0.05 } };
    await cache.getOrLoad(chat('f'), async () => 'F');
    await cache.flush();
    expect(sem.observed.map((o) => o.value)).toEqual(['A', 'B', 'C', 'D']);
    expect(cache.stats().calibration.observed).toBe(4);
    expect(cache.stats().calibration.shadowChecks).toBe(0);
  });

  it('a failing observe is an error event, never a failed request', async () => {
    const { sem, cache } = setup();
    sem.observeFails = true;
    sem.next = { note: { action: 'shadow', cutoff: 0.05, token: {} } };
    const errors: StrataError[] = [];
    cache.on('error', (e) => errors.push(e.error));
    expect((await cache.getOrLoad(chat('x'), async () => 'X')).value).toBe('X');
    await cache.flush();
    expect(errors.map((e) => e.message).join()).toMatch(/judge down/);
  });

  it("feedback 'wrong' on a calibrated hit: the layer counts it, the matched entry leaves every layer", async () => {
    const { l1, sem, cache } = setup();
    const stored = cache.keyFor(chat('stored question'));
    await cache.store(chat('stored question'), 'stored answer');
    expect(l1.map.has(stored.id) && sem.map.has(stored.id)).toBe(true);
    sem.next = { note: { action: 'serve', similarity: 0.93, cutoff: 0.05, token: { t: 4 } }, hit: { key: stored, value: 'stored answer' } };
    const r = await cache.getOrLoad(chat('asked question'), async () => 'fresh');
    const invalidations: unknown[] = [];
    cache.on('invalidate', (e) => invalidations.push(e.message));
    const f = await cache.feedback(r, 'wrong');
    expect(f).toEqual({ action: 'evicted', layers: { l1: 1, sem: 1 } });
    expect(sem.verdicts).toEqual([{ token: { t: 4 }, verdict: 'wrong' }]);
    expect(l1.map.has(stored.id) || sem.map.has(stored.id)).toBe(false);
    // Semantic hits are not backfilled by default: only the matched entry is invalidated.
    expect(invalidations).toEqual([{ type: 'key', keyId: stored.id, scope: stored.scope }]);
    expect(cache.stats().calibration.feedback).toEqual({ wrong: 1, right: 0 });
  });

  it("feedback with backfilled semantic hits also drops the copy under the request's key; 'right' is recorded; misses are ignored", async () => {
    const { l1, sem, cache } = setup({ backfillSemanticHits: true });
    const stored = cache.keyFor(chat('stored question'));
    sem.next = { note: { action: 'serve', cutoff: 0.05, token: { t: 5 } }, hit: { key: stored, value: 'stored answer' } };
    const r = await cache.getOrLoad(chat('asked question'), async () => 'fresh');
    await cache.flush();
    expect(l1.map.has(r.key.id)).toBe(true);
    expect(await cache.feedback(r, 'right')).toEqual({ action: 'recorded' });
    expect((await cache.feedback(r, 'wrong')).action).toBe('evicted');
    expect(l1.map.has(r.key.id)).toBe(false);
    sem.next = undefined;
    const miss = await cache.getOrLoad(chat('never seen'), async () => 'up');
    expect(await cache.feedback(miss, 'wrong')).toEqual({ action: 'ignored' });
    // lookup() results work as well (their key is the matched entry's). Another stored entry: the
    // one above was invalidated by the feedback, and its invalidation refuses it from then on.
    const other = cache.keyFor(chat('another stored question'));
    sem.next = { note: { action: 'serve', cutoff: 0.05, token: { t: 6 } }, hit: { key: other, value: 'stored answer' } };
    const hit = await cache.lookup(chat('asked again'));
    expect(hit?.calibration?.action).toBe('serve');
    expect((await cache.feedback(hit!, 'wrong')).action).toBe('evicted');
    expect(sem.verdicts.map((v) => v.verdict)).toEqual(['right', 'wrong', 'wrong']);
  });

  it('feedback validates its input and works on exact hits of any layer', async () => {
    const { l1, cache } = setup();
    await cache.store(chat('q'), 'a');
    const r = await cache.getOrLoad(chat('q'), async () => 'not called');
    expect(r.layer).toBe('l1');
    expect(await cache.feedback(r, 'right')).toEqual({ action: 'ignored' });
    expect((await cache.feedback(r, 'wrong')).action).toBe('evicted');
    expect(l1.map.size).toBe(0);
    await expect(cache.feedback(r, 'bad' as never)).rejects.toThrow(InvalidRequestError);
    await expect(cache.feedback(null as never, 'wrong')).rejects.toThrow(InvalidRequestError);
    await cache.close();
    await expect(cache.feedback(r, 'wrong')).rejects.toThrow(/closed/);
  });

  it('ignores a malformed calibration note from a layer', async () => {
    const { sem, cache } = setup();
    sem.next = { note: { action: 'maybe' as never, token: {} } };
    const r = await cache.getOrLoad(chat('q'), async () => 'A');
    expect(r.calibration).toBeUndefined();
    await cache.flush();
    expect(sem.observed).toEqual([]);
  });
});
