import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CacheResult, InvalidOptionError, InvalidRequestError, MultiLayerCache, type StrataError } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import type { AnswerJudge } from '@strata-cache/semantic-calibration';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryCalibrationChannel, SemanticLayer, type SemanticLayerOptions } from '../src/index.js';
import { HashEmbedder } from './helpers.js';

/** xorshift32 in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** Answers are equal strings exactly when they answer the same topic: a judge with no noise. */
const exactJudge: AnswerJudge & { calls: number } = {
  name: 'exact',
  calls: 0,
  async judge({ cachedAnswer, freshAnswer }) {
    exactJudge.calls++;
    return { score: cachedAnswer === freshAnswer ? 1 : 0 };
  },
};

const TOPICS = ['password', 'invoice', 'refund', 'shipping', 'account', 'billing', 'login', 'order', 'delivery', 'subscription', 'avatar', 'export'];
const FILLERS = ['please', 'quickly', 'today', 'now', 'again', 'kindly', 'help', 'tell', 'me', 'soon'];
const chat = (text: string) => ({ model: 'm', temperature: 0, messages: [{ role: 'user', content: text }] });

/** A support bot's traffic: a topic, worded with a few random filler words; its answer names the topic. */
function traffic(seed: number) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  return () => {
    const topic = pick(TOPICS);
    const text = `how do i fix my ${topic} ${pick(FILLERS)} ${pick(FILLERS)} ${Math.floor(r() * 40)}`;
    return { topic, text, request: chat(text), answer: `The answer about ${topic}.` };
  };
}

function stack(options: Partial<SemanticLayerOptions> = {}, memory = false) {
  const layer = new SemanticLayer({
    embedder: new HashEmbedder(64),
    answerJudge: exactJudge,
    calibration: { maxWrongRate: 0.03, shadowRate: 0.1, random: rng(1) },
    ...options,
  });
  const cache = new MultiLayerCache({ layers: [...(memory ? [new MemoryLayer()] : []), { layer, budgetMs: 5_000 }], policy: 'always' });
  return { layer, cache };
}

async function replay(cache: MultiLayerCache, layer: SemanticLayer, next: ReturnType<typeof traffic>, n: number) {
  const out = { semanticHits: 0, wrong: 0, shadows: 0, results: [] as Array<CacheResult<string> & { topic: string; answer: string }> };
  for (let i = 0; i < n; i++) {
    const q = next();
    const r = await cache.getOrLoad<string>(q.request, async () => q.answer);
    await cache.flush();
    await layer.embeddingIdle();
    if (r.status === 'hit' && r.similarity !== undefined) {
      out.semanticHits++;
      if (r.value !== q.answer) out.wrong++;
    }
    if (r.calibration?.action === 'shadow') out.shadows++;
    out.results.push({ ...r, topic: q.topic, answer: q.answer });
  }
  return out;
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('SemanticLayer calibration: options', () => {
  it('validates the calibration options and what depends on them', () => {
    const embedder = new HashEmbedder(16);
    expect(() => new SemanticLayer({ embedder, calibration: { maxWrongRate: 2 } })).toThrow(InvalidOptionError);
    expect(() => new SemanticLayer({ embedder, calibration: { nope: 1 } as never })).toThrow(/unknown option "nope"/);
    expect(() => new SemanticLayer({ embedder, calibration: { maxTenants: 0 } })).toThrow(/maxTenants/);
    expect(() => new SemanticLayer({ embedder, calibration: { share: { via: {} as never } } })).toThrow(/share\.via/);
    expect(() => new SemanticLayer({ embedder, calibration: { share: { via: new MemoryCalibrationChannel(), every: 3 } as never } })).toThrow(/share\.every/);
    expect(() => new SemanticLayer({ embedder, calibration: { share: { via: new MemoryCalibrationChannel(), intervalMs: 1 } } })).toThrow(/intervalMs/);
    expect(() => new SemanticLayer({ embedder, answerJudge: exactJudge })).toThrow(/needs option "calibration"/);
    expect(() => new SemanticLayer({ embedder, calibration: true, answerJudge: {} as never })).toThrow(/answerJudge/);
    expect(() => new SemanticLayer({ embedder, calibration: true, answerText: 'x' as never })).toThrow(/answerText/);
    const l = new SemanticLayer({ embedder, calibration: true });
    expect(l.stats().calibration).toMatchObject({ lookups: 0, shadowChecks: 0, nearMissesJudged: 0 });
    expect(new SemanticLayer({ embedder }).stats().calibration).toBeUndefined();
  });
});

describe('SemanticLayer calibration through MultiLayerCache', () => {
  it('learns from near misses, then serves paraphrases within the budget; results and hit events say so', async () => {
    const { layer, cache } = stack();
    const hitEvents: Array<{ calibrated?: boolean; boundary?: number }> = [];
    cache.on('hit', (e) => hitEvents.push(e));
    const next = traffic(2);
    const early = await replay(cache, layer, next, 300);
    const late = await replay(cache, layer, next, 900);
    // It serves more once it has learned, and serves within the budget (wrong answers per lookup, with room for sampling).
    expect(late.semanticHits / 900).toBeGreaterThan(Math.max(0.15, early.semanticHits / 300));
    expect(late.wrong / 900).toBeLessThan(0.03 * 1.6);
    const served = late.results.filter((r) => r.status === 'hit' && r.similarity !== undefined);
    for (const r of served) {
      expect(r.calibrated).toBe(true);
      expect(r.calibration).toMatchObject({ action: 'serve', layer: 'semantic' });
      expect(r.matchedKey).toBeDefined();
      expect(r.matchedKey!.id).not.toBe(r.key.id);
    }
    expect(served.some((r) => typeof r.calibration!.boundary === 'number' && r.calibration!.boundary! <= r.similarity!)).toBe(true);
    expect(hitEvents.some((e) => e.calibrated === true && typeof e.boundary === 'number')).toBe(true);
    // Misses explain themselves: the calibrator's refusals are in `rejected`.
    expect(late.results.some((r) => r.status === 'miss' && r.rejected?.some((x) => x.guard === 'calibration'))).toBe(true);
    const s = layer.stats().calibration!;
    expect(s.nearMissesJudged).toBeGreaterThan(100);
    expect(s.boundariesLearned).toBeGreaterThan(10);
    expect(s.clearBoundary.lowest).toBeGreaterThan(0);
    expect(cache.stats().calibration.observed).toBe(s.nearMissesJudged + s.shadowsJudged);
    await cache.close();
  });

  it("keeps a dropped tenant's counts in the totals (calibration.maxTenants)", async () => {
    const { layer, cache } = stack({ calibration: { maxWrongRate: 0.03, shadowRate: 0.1, random: rng(2), maxTenants: 1 } });
    const next = traffic(5);
    let lookups = 0;
    for (const tenant of ['a', 'b', 'a']) {
      for (let i = 0; i < 20; i++) {
        const q = next();
        await cache.getOrLoad<string>(q.request, async () => q.answer, { scope: { tenant } });
        await cache.flush();
        await layer.embeddingIdle();
      }
      const s = layer.stats().calibration!;
      expect(s.lookups).toBeGreaterThan(lookups);
      lookups = s.lookups;
    }
    // Three runs of 20 lookups, one calibrator alive at a time: the first two were dropped.
    expect(lookups).toBeGreaterThanOrEqual(3 * 20 - 3);
    expect(layer.stats().calibration!.nearMissesJudged).toBeGreaterThan(0);
    await cache.close();
  });

  it('serves a stored question asked again in other framing ("Hi, …", "… Thanks!") without estimating, from the first lookup', async () => {
    const { layer, cache } = stack();
    await cache.getOrLoad<string>(chat('How do I reset my password?'), async () => 'Use the reset link.');
    await cache.getOrLoad<string>(chat('How do I export my invoices?'), async () => 'Billing → Export.');
    await cache.flush();
    await layer.embeddingIdle();
    // A cold calibrator serves nothing on estimates yet; the same question in other framing needs none.
    const framed = await cache.getOrLoad<string>(chat('Hi, how do I reset my password? Thanks!'), async () => 'fresh');
    expect(framed).toMatchObject({ status: 'hit', value: 'Use the reset link.', calibrated: true });
    expect(framed.calibration).toMatchObject({ action: 'serve', pWrong: 0 });
    // Another word is another question: estimated, and a cold calibrator does not serve it.
    const other = await cache.getOrLoad<string>(chat('Hi, how do I reset my email? Thanks!'), async () => 'fresh');
    expect(other.status).toBe('miss');
    await cache.close();
  });

  it('keeps no answer vector for an answer the embedder cannot represent (it would ally with any other)', async () => {
    class LatinOnly extends HashEmbedder {
      represents(text: string): boolean {
        return !/[^ -~]/.test(text);
      }
    }
    const { layer, cache } = stack({ embedder: new LatinOnly(64) });
    const next = traffic(3);
    for (let i = 0; i < 60; i++) {
      const q = next();
      // Every other topic is answered in a script the embedder never learned.
      const answer = TOPICS.indexOf(q.topic) % 2 ? `Ответ про ${q.topic}.` : q.answer;
      await cache.getOrLoad<string>(q.request, async () => answer);
      await cache.flush();
      await layer.embeddingIdle();
    }
    const s = layer.stats().calibration!;
    expect(s.answerVectors).toBeGreaterThan(0);
    expect(s.answerVectors).toBeLessThan(layer.stats().entries);
    await cache.close();
  });

  it('a shadow check serves the fresh upstream answer, never the cached one, and stays within shadowRate', async () => {
    const { layer, cache } = stack({ calibration: { maxWrongRate: 0.05, shadowRate: 0.1, random: () => 0 } });
    const loads: string[] = [];
    const next = traffic(3);
    let shadows = 0;
    let wouldBe = 0;
    for (let i = 0; i < 900; i++) {
      const q = next();
      const fresh = `${q.answer} (fresh ${i})`;
      const r = await cache.getOrLoad<string>(q.request, async () => {
        loads.push(q.text);
        return fresh;
      });
      await cache.flush();
      await layer.embeddingIdle();
      if (r.calibration?.action === 'shadow') {
        shadows++;
        wouldBe++;
        expect(r.status).toBe('miss');
        expect(r.value).toBe(fresh);
        expect(loads.at(-1)).toBe(q.text);
      } else if (r.calibration?.action === 'serve') wouldBe++;
    }
    expect(shadows).toBeGreaterThan(0);
    // Never more than the share allowed (the first check aside).
    expect(shadows).toBeLessThanOrEqual(Math.ceil(0.1 * wouldBe) + 1);
    const s = layer.stats().calibration!;
    expect(s.shadowChecks).toBe(shadows);
    expect(s.shadowsJudged).toBe(shadows);
    expect(cache.stats().calibration.shadowChecks).toBe(shadows);
    expect(s.auditedWrongShare.high).toBeGreaterThanOrEqual(s.auditedWrongShare.estimate);
    await cache.close();
  });

  it("feedback 'wrong' on a semantic hit removes the matched entry from every layer; on an exact hit, the key", async () => {
    const { layer, cache } = stack({}, true);
    await replay(cache, layer, traffic(4), 700);
    const next = traffic(5);
    let hit: CacheResult<string> | undefined;
    for (let i = 0; i < 400 && !hit; i++) {
      const q = next();
      const r = await cache.getOrLoad<string>(q.request, async () => q.answer);
      await cache.flush();
      if (r.status === 'hit' && r.calibrated) hit = r;
    }
    expect(hit).toBeDefined();
    const matched = hit!.matchedKey!;
    expect(await layer.get(matched)).toBeDefined();
    const f = await cache.feedback(hit!, 'wrong');
    expect(f.action).toBe('evicted');
    expect(f.layers).toBeDefined();
    expect(await layer.get(matched)).toBeUndefined();
    expect(layer.stats().calibration!.feedback.wrong).toBe(1);
    expect(cache.stats().calibration.feedback.wrong).toBe(1);
    // An exact hit (L1): the key is invalidated in every layer.
    const req = chat('exact question about avatars');
    await cache.getOrLoad(req, async () => 'stored answer');
    await cache.flush();
    const exact = await cache.getOrLoad<string>(req, async () => 'not called');
    expect(exact.status).toBe('hit');
    expect((await cache.feedback(exact, 'wrong')).action).toBe('evicted');
    expect((await cache.getOrLoad<string>(req, async () => 'fresh')).value).toBe('fresh');
    // A miss: nothing was served from the cache.
    const miss = await cache.getOrLoad<string>(chat('something never asked 123'), async () => 'x');
    expect(await cache.feedback(miss, 'wrong')).toEqual({ action: 'ignored' });
    await expect(cache.feedback(exact, 'meh' as never)).rejects.toThrow(InvalidRequestError);
    await expect(cache.feedback({} as never, 'wrong')).rejects.toThrow(InvalidRequestError);
    await cache.close();
  });

  it("feedback 'right' is evidence for the layer that served", async () => {
    const { layer, cache } = stack();
    await replay(cache, layer, traffic(6), 700);
    const next = traffic(7);
    for (let i = 0; i < 400; i++) {
      const q = next();
      const r = await cache.getOrLoad<string>(q.request, async () => q.answer);
      if (r.calibrated) {
        expect(await cache.feedback(r, 'right')).toEqual({ action: 'recorded' });
        break;
      }
    }
    expect(layer.stats().calibration!.feedback.right).toBe(1);
    await cache.close();
  });

  it('lookup() then store() (how streams are cached) teaches the layer as getOrLoad does', async () => {
    const { layer, cache } = stack();
    const next = traffic(8);
    for (let i = 0; i < 60; i++) {
      const q = next();
      const hit = await cache.lookup(q.request);
      if (!hit) await cache.store(q.request, q.answer);
      await cache.flush();
      await layer.embeddingIdle();
    }
    expect(layer.stats().calibration!.nearMissesJudged).toBeGreaterThan(20);
    await cache.close();
  });

  it('a judge that fails is an error event and a count, never a failed request', async () => {
    const failing: AnswerJudge = {
      name: 'broken',
      async judge() {
        throw new Error('judge down');
      },
    };
    const { layer, cache } = stack({ answerJudge: failing });
    const errors: StrataError[] = [];
    cache.on('error', (e) => errors.push(e.error));
    const r = await replay(cache, layer, traffic(9), 40);
    expect(r.results.every((x) => x.value === x.answer)).toBe(true);
    expect(layer.stats().calibration!.judgeErrors).toBeGreaterThan(0);
    expect(errors.some((e) => /judge down/.test(e.message))).toBe(true);
    await cache.close();
  });

  it('one tenant’s traffic never moves another tenant’s boundaries', async () => {
    const { layer, cache } = stack();
    await replay(cache, layer, traffic(10), 600);
    const s = layer.stats().calibration!;
    expect(s.calibrators).toBe(1);
    // Tenant "b" asks the same paraphrases: it has learned nothing yet, so nothing is served on trust.
    const next = traffic(11);
    let calibratedHits = 0;
    for (let i = 0; i < 40; i++) {
      const q = next();
      const r = await cache.getOrLoad<string>(q.request, async () => q.answer, { scope: { tenant: 'b' } });
      if (r.calibrated && r.calibration?.pWrong !== 0) calibratedHits++;
    }
    expect(calibratedHits).toBe(0);
    expect(layer.stats().calibration!.calibrators).toBe(2);
    await cache.close();
  });
});

describe('SemanticLayer calibration state', () => {
  it('persists with the index snapshot and decides the same after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-calibration-'));
    dirs.push(dir);
    const a = stack({ persistDir: dir });
    await replay(a.cache, a.layer, traffic(12), 500);
    const before = a.layer.stats().calibration!;
    await a.cache.close(); // writes the final snapshot
    const warnings: string[] = [];
    const b = stack({ persistDir: dir, onWarning: (m) => warnings.push(m) });
    await b.layer.ready();
    expect(warnings).toEqual([]);
    const after = b.layer.stats().calibration!;
    expect(after).toMatchObject({
      lookups: before.lookups,
      nearMissesJudged: before.nearMissesJudged,
      boundariesLearned: before.boundariesLearned,
      clearBoundary: before.clearBoundary,
    });
    expect(after.answerVectors).toBe(before.answerVectors);
    // The same decisions on the same probes.
    const probe = traffic(13);
    const qs = Array.from({ length: 30 }, () => probe());
    const c = stack({ persistDir: dir });
    const pa: unknown[] = [];
    const pb: unknown[] = [];
    for (const q of qs) pb.push((await b.layer.search({ ...(await describeQuery(b.cache, q.request)) })).calibration?.pWrong);
    for (const q of qs) pa.push((await c.layer.search({ ...(await describeQuery(c.cache, q.request)) })).calibration?.pWrong);
    expect(pb.filter((x) => typeof x === 'number').length).toBeGreaterThan(5);
    expect(pb).toEqual(pa);
    await b.cache.close();
    await c.cache.close();
  });

  it('a snapshot saved with another calibration setting keeps the index and starts calibration afresh, with a warning', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-calibration-'));
    dirs.push(dir);
    const a = stack({ persistDir: dir });
    await replay(a.cache, a.layer, traffic(14), 200);
    const entries = a.layer.size;
    await a.cache.close();
    const warnings: string[] = [];
    const b = stack({ persistDir: dir, onWarning: (m) => warnings.push(m), calibration: { perTenant: false } });
    await b.layer.ready();
    expect(b.layer.size).toBe(entries);
    expect(warnings.join('\n')).toMatch(/calibration state .*starts afresh/);
    expect(b.layer.stats().calibration!.lookups).toBe(0);
    await b.cache.close();
  });

  it('shares evidence with another process through a channel (counts add up; its own is skipped)', async () => {
    const channel = new MemoryCalibrationChannel();
    const share = { via: channel, intervalMs: 20 };
    const a = stack({ calibration: { maxWrongRate: 0.03, shadowRate: 0.1, random: rng(1), share } });
    const b = stack({ calibration: { maxWrongRate: 0.03, shadowRate: 0.1, random: rng(1), share } });
    await b.layer.ready();
    await replay(a.cache, a.layer, traffic(15), 300);
    const judged = a.layer.stats().calibration!.nearMissesJudged;
    await new Promise((r) => setTimeout(r, 100));
    const sb = b.layer.stats().calibration!;
    expect(sb.nearMissesJudged).toBe(0); // b judged nothing itself…
    expect(sb.shared!.applied).toBeGreaterThan(0); // …but holds a's evidence
    expect(sb.boundariesLearned).toBe(a.layer.stats().calibration!.boundariesLearned);
    expect(a.layer.stats().calibration!.shared!.applied).toBe(0); // its own messages are skipped
    expect(judged).toBeGreaterThan(50);
    await a.cache.close();
    await b.cache.close();
  });
});

/** The semantic query core would send for a request (scope, partition, text). */
async function describeQuery(cache: MultiLayerCache, request: unknown) {
  const { computeSemantic, resolveScope, chatProfile } = await import('@strata-cache/core');
  const scope = resolveScope(undefined);
  void cache;
  return { ...computeSemantic(request, scope, chatProfile)!, scope };
}
