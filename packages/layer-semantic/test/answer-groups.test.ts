import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidOptionError, resolveScope } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { ANSWER_GROUP_DEFAULTS, AnswerGroupModel, SemanticLayer, answerGroupKey, answerGroupSetting } from '../src/index.js';
import { GroupRebuilder } from '../src/answer-groups.js';
import { TableEmbedder, chatItem, normalise, rand, randomUnit } from './helpers.js';

const D = 32;
const TOPICS = ['billing', 'refund', 'password', 'shipping', 'account', 'card'];
const WORDINGS = ['alpha', 'beta', 'gamma', 'delta'];

/**
 * A cache whose answers repeat: each topic's answer is stored under four wordings. A wording is
 * the topic's centre plus a large offset along three directions every topic shares (how people
 * phrase a question), so two wordings of one topic are only ≈ 0.5–0.7 similar — below what the
 * threshold or the consensus selector would serve — while the topics stay far apart.
 */
function world() {
  const centres = TOPICS.map(() => randomUnit(D));
  const ways = [randomUnit(D), randomUnit(D), randomUnit(D)];
  const phrase = (t: number) => {
    const v = Float32Array.from(centres[t]!);
    for (const w of ways) {
      const a = (rand() * 2 - 1) * 0.9;
      for (let i = 0; i < D; i++) v[i]! += a * w[i]!;
    }
    return normalise(v);
  };
  // The stored wordings, drawn once: layers built from one world hold the same vectors.
  const stored = TOPICS.map((_, t) => WORDINGS.map(() => phrase(t)));
  return { centres, ways, phrase, stored };
}

const cos = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

async function supportLayer(options: Partial<ConstructorParameters<typeof SemanticLayer>[0]> = {}, w = world()) {
  const emb = new TableEmbedder(D, 'table-groups');
  const layer = new SemanticLayer({ embedder: emb, ...options });
  const stored: Float32Array[] = [];
  for (const [t, topic] of TOPICS.entries()) {
    for (const [j, word] of WORDINGS.entries()) {
      const text = `${topic} question ${word}`;
      const v = w.stored[t]![j]!;
      emb.table.set(text, v);
      stored.push(v);
      const it = chatItem(text, { value: `The answer about ${topic}.` });
      await layer.set(it.key, it.entry);
    }
  }
  // A partition gets its map once it is searched.
  emb.table.set('warm-up', randomUnit(D));
  await layer.search(chatItem('warm-up').query);
  await layer.answerGroupsIdle();
  /** A new wording of a topic, with its nearest raw similarity to the stored prompts. */
  const ask = (t: number, text = `${TOPICS[t]} question epsilon`, v = w.phrase(t)) => {
    emb.table.set(text, v);
    return { query: chatItem(text).query, nearest: Math.max(...stored.map((s) => cos(s, v))) };
  };
  /**
   * A new wording whose nearest stored prompt is 0.77–0.85 similar: below the consensus
   * selector's reach (0.86), above the rule's minSimilarity (0.75).
   */
  const askFar = (t: number, text = `${TOPICS[t]} question epsilon`) => {
    for (;;) {
      const v = w.phrase(t);
      const near = Math.max(...stored.map((s) => cos(s, v)));
      if (near >= 0.77 && near < 0.85) return ask(t, text, v);
    }
  };
  return { layer, emb, w, ask, askFar };
}

describe('answer groups: the layer decides between stored answers', () => {
  it('serves a new wording of a repeated answer that no single stored prompt is close enough to serve', async () => {
    const w = world();
    const { layer, askFar } = await supportLayer({}, w);
    const { layer: off, ask: askOff } = await supportLayer({ answerGroups: false }, w);
    let far = 0;
    let served = 0;
    let servedOff = 0;
    let wrong = 0;
    for (let round = 0; round < 6; round++) {
      for (let t = 0; t < TOPICS.length; t++) {
        const text = `${TOPICS[t]} question round ${'uvwxyz'[round]}`;
        const q = askFar(t, text);
        const v = (layer.embedder as TableEmbedder).table.get(text)!;
        const r = await layer.search(q.query);
        if (r.hit && r.hit.entry.value !== `The answer about ${TOPICS[t]}.`) wrong++;
        far++;
        if (r.hit) served++;
        if ((await off.search(askOff(t, text, v).query)).hit) servedOff++;
      }
    }
    expect(far).toBe(36);
    expect(servedOff).toBe(0);
    expect(served).toBeGreaterThanOrEqual(Math.ceil(0.8 * far));
    expect(wrong).toBe(0);
    expect(layer.stats().answerGroups).toMatchObject({ maps: 1 });
    expect(layer.stats().answerGroups!.hits).toBeGreaterThanOrEqual(served);
    expect(layer.stats().answerGroups!.builds).toBeGreaterThanOrEqual(1);
    expect(off.stats().answerGroups).toBeUndefined();
    await layer.close();
    await off.close();
  });

  it('serves nothing for a query between two answers, or unlike any of them', async () => {
    const { layer, emb, w } = await supportLayer();
    // Halfway between two topics: the runner-up answer is as close as the best.
    const mid = normalise(w.centres[0]!.map((x, i) => x + w.centres[1]![i]!));
    emb.table.set('billing or refund', mid);
    expect((await layer.search(chatItem('billing or refund').query)).hit).toBeUndefined();
    // A question about none of the stored topics.
    emb.table.set('weather question', randomUnit(D));
    expect((await layer.search(chatItem('weather question').query)).hit).toBeUndefined();
    await layer.close();
  });

  it('still runs the guards on the prompt it serves through (a different number is a different question)', async () => {
    const { layer, askFar } = await supportLayer();
    const w = askFar(0, 'billing question for 30 days');
    const r = await layer.search(w.query);
    expect(r.hit).toBeUndefined();
    expect(r.rejected?.[0]).toMatchObject({ guard: expect.any(String), reason: expect.stringContaining('answer group of 4') });
    await layer.close();
  });

  it('is off with an explicit threshold (unless asked for), and skipped by a request with its own threshold', async () => {
    const explicit = await supportLayer({ threshold: 0.965 });
    expect(explicit.layer.stats().answerGroups).toBeUndefined();
    expect((await explicit.layer.search(explicit.askFar(2).query)).hit).toBeUndefined();
    await explicit.layer.close();

    const on = await supportLayer({ threshold: 0.965, answerGroups: true });
    expect((await on.layer.search(on.askFar(2).query)).hit?.entry.value).toBe('The answer about password.');
    const q = on.askFar(3);
    expect((await on.layer.search({ ...q.query, threshold: 0.965 })).hit).toBeUndefined();
    await on.layer.close();
  });

  it('keeps answers apart per tenant: another tenant asking the same gets nothing', async () => {
    const { layer, askFar } = await supportLayer();
    const q = askFar(1);
    expect((await layer.search(q.query)).hit).toBeDefined();
    expect((await layer.search({ ...q.query, ...chatItem('refund question epsilon', { scope: resolveScope('t2') }).query })).hit).toBeUndefined();
    await layer.close();
  });

  it('learns its groups again from a snapshot (flat and graph partitions)', async () => {
    for (const flatLimit of [1_024, 8]) {
      const dir = await mkdtemp(join(tmpdir(), 'strata-groups-'));
      try {
        const w = world();
        const first = await supportLayer({ persistDir: dir, flatLimit }, w);
        await first.layer.close(); // writes the snapshot
        const again = new SemanticLayer({ embedder: first.emb, persistDir: dir, flatLimit });
        await again.ready();
        expect(again.stats().indexed).toBe(TOPICS.length * WORDINGS.length);
        expect(again.stats().graphPartitions).toBe(flatLimit === 8 ? 1 : 0);
        await again.search(chatItem('warm-up').query);
        await again.answerGroupsIdle();
        expect((await again.search(first.askFar(2).query)).hit?.entry.value).toBe('The answer about password.');
        expect(again.stats().answerGroups).toMatchObject({ maps: 1, hits: 1 });
        await again.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });

  it('forgets deleted prompts: an answer whose prompts are gone is no longer served', async () => {
    const { layer, askFar } = await supportLayer();
    for (const word of WORDINGS) await layer.delete(chatItem(`shipping question ${word}`).key);
    await layer.answerGroupsIdle();
    const r = await layer.search(askFar(3).query);
    expect(r.hit?.entry.value).not.toBe('The answer about shipping.');
    expect((await layer.search(askFar(4).query)).hit?.entry.value).toBe('The answer about account.');
    await layer.close();
  });

  it('validates its options', () => {
    const embedder = new TableEmbedder(D);
    expect(() => new SemanticLayer({ embedder, answerGroups: { floor: 2 } })).toThrow(InvalidOptionError);
    expect(() => new SemanticLayer({ embedder, answerGroups: { margin: -0.1 } })).toThrow(/answerGroups\.margin/);
    expect(() => new SemanticLayer({ embedder, answerGroups: { minGroupSize: 1 } })).toThrow(/minGroupSize/);
    expect(() => new SemanticLayer({ embedder, answerGroups: { bogus: 1 } as never })).toThrow(/unknown option "answerGroups.bogus"/);
    expect(() => new SemanticLayer({ embedder, answerGroups: 'yes' as never })).toThrow(/answerGroups/);
    expect(() => new SemanticLayer({ embedder, calibration: true, answerGroups: true })).toThrow(/calibration/);
    expect(new SemanticLayer({ embedder, calibration: true }).stats().answerGroups).toBeUndefined();
    expect(answerGroupSetting({})).toEqual(ANSWER_GROUP_DEFAULTS);
  });
});

describe('AnswerGroupModel', () => {
  /** The score the model must give: cosine under A⁻¹, computed the slow way (A built and solved directly). */
  function reference(vectors: Float32Array[], keys: string[], shrinkage: number, query: Float32Array, target: Float32Array): number {
    const n = D;
    const groups = new Map<string, number[]>();
    keys.forEach((k, i) => groups.set(k, [...(groups.get(k) ?? []), i]));
    const S = Array.from({ length: n }, () => new Float64Array(n));
    let m = 0;
    for (const members of groups.values()) {
      if (members.length < 2) continue;
      const mu = new Float64Array(n);
      for (const i of members) for (let a = 0; a < n; a++) mu[a]! += vectors[i]![a]! / members.length;
      for (const i of members) {
        for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) S[a]![b]! += (vectors[i]![a]! - mu[a]!) * (vectors[i]![b]! - mu[b]!);
        m++;
      }
    }
    let trace = 0;
    for (let a = 0; a < n; a++) trace += S[a]![a]! / m;
    const A = S.map((row, a) => row.map((x, b) => (1 - shrinkage) * (x / m) + (a === b ? shrinkage * (trace / n) + 1e-9 : 0)));
    // Solve A y = v by Gaussian elimination.
    const solve = (v: Float32Array) => {
      const M = A.map((row, i) => [...row, v[i]!]);
      for (let c = 0; c < n; c++) {
        let p = c;
        for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
        [M[c], M[p]] = [M[p]!, M[c]!];
        for (let r = 0; r < n; r++) {
          if (r === c) continue;
          const f = M[r]![c]! / M[c]![c]!;
          for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
        }
      }
      return M.map((row, i) => row[n]! / row[i]!);
    };
    const aq = solve(query);
    const at = solve(target);
    const dot = (x: ArrayLike<number>, y: ArrayLike<number>) => Array.from(x).reduce((s, v, i) => s + v * y[i]!, 0);
    return dot(aq, target) / Math.sqrt(dot(aq, query) * dot(at, target));
  }

  it('scores a query against a group centroid as cosine under the shrunk within-group covariance', () => {
    const w = world();
    const vectors: Float32Array[] = [];
    const keys: string[] = [];
    for (let t = 0; t < TOPICS.length; t++)
      for (let j = 0; j < 4; j++) {
        vectors.push(w.phrase(t));
        keys.push(`k${t}`);
      }
    const model = new AnswerGroupModel(D, answerGroupSetting({ floor: -1, margin: 0, shrinkage: 0.3 }), (i) => vectors[i]);
    vectors.forEach((v, i) => model.add(i, v, keys[i]));
    expect(model.ready).toBe(false);
    model.rebuild();
    expect(model.ready).toBe(true);
    const q = w.phrase(2);
    const d = model.decide(q, [8, 9, 0, 4]);
    expect(d?.key).toBe('k2');
    const centroid = new Float32Array(D);
    for (const i of [8, 9, 10, 11]) for (let a = 0; a < D; a++) centroid[a]! += vectors[i]![a]!;
    expect(d!.score).toBeCloseTo(reference(vectors, keys, 0.3, q, centroid), 4);
    // The runner-up among the neighbours offered (groups 0 and 1).
    const runner = Math.max(
      ...[0, 1].map((t) => {
        const c = new Float32Array(D);
        for (let j = 0; j < 4; j++) for (let a = 0; a < D; a++) c[a]! += vectors[t * 4 + j]![a]!;
        return reference(vectors, keys, 0.3, q, c);
      }),
    );
    expect(d!.runnerUp).toBeCloseTo(runner, 4);
  });

  it('decides nothing without a runner-up, for a lone prompt, or before it has learned from enough prompts', () => {
    const w = world();
    const vectors = Array.from({ length: 24 }, (_, i) => w.phrase(Math.floor(i / 4)));
    const model = new AnswerGroupModel(D, answerGroupSetting({ floor: -1, margin: 0 }), (i) => vectors[i]);
    vectors.forEach((v, i) => model.add(i, v, i < 20 ? `k${Math.floor(i / 4)}` : `lone${i}`));
    model.rebuild();
    expect(model.decide(vectors[0]!, [0, 1, 2])).toBeUndefined(); // one answer among the neighbours
    expect(model.decide(vectors[21]!, [21, 0])).toBeUndefined(); // best is a lone prompt
    expect(model.decide(vectors[0]!, [0, 21])?.key).toBe('k0');

    const few = new AnswerGroupModel(D, answerGroupSetting({ floor: -1, margin: 0 }), (i) => vectors[i]);
    vectors.slice(0, 12).forEach((v, i) => few.add(i, v, `k${Math.floor(i / 4)}`));
    expect(few.stale).toBe(false); // 12 grouped prompts: too few to learn from
    few.rebuild();
    expect(few.ready).toBe(false);
  });

  it('keeps group sums only while a map is in force (memory), and scores the same after changes', () => {
    const w = world();
    const vectors = Array.from({ length: 24 }, (_, i) => w.phrase(Math.floor(i / 4)));
    const model = new AnswerGroupModel(D, answerGroupSetting({ floor: -1, margin: 0 }), (i) => vectors[i]);
    vectors.slice(0, 20).forEach((v, i) => model.add(i, v, `k${Math.floor(i / 4)}`));
    const without = model.bytes;
    model.rebuild();
    expect(model.bytes - without).toBeGreaterThanOrEqual(D * D * 4); // the map, plus sums
    const q = w.phrase(1);
    const before = model.decide(q, [4, 0, 8])!;
    // Add a fifth prompt to group 1 and take it out again: the same score as before.
    model.add(20, vectors[20]!, 'k1');
    model.remove(20);
    expect(model.decide(q, [4, 0, 8])!.score).toBeCloseTo(before.score, 5);
    model.release();
    expect(model.ready).toBe(false);
    expect(model.bytes).toBe(without);
  });

  it('groups answers by their readable text', () => {
    const chatAnswer = (content: string, id: string) => ({ id, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content } }] });
    expect(answerGroupKey(chatAnswer('Reset it  in settings.', 'a'))).toBe(answerGroupKey(chatAnswer('Reset it in settings.', 'b')));
    expect(answerGroupKey(chatAnswer('Reset it in settings.', 'a'))).not.toBe(answerGroupKey(chatAnswer('Call us.', 'a')));
    expect(answerGroupKey('x')).toBe(answerGroupKey('x'));
    expect(answerGroupKey(5)).not.toBe(answerGroupKey('5')); // as sameValue: another type is another answer
  });

  it('the rebuilder builds maps for searched partitions only, at most maxMaps, for the most searched', async () => {
    const w = world();
    const rebuilder = new GroupRebuilder(2);
    const models = [0, 1, 2].map(() => {
      const vectors = Array.from({ length: 20 }, (_, i) => w.phrase(Math.floor(i / 4)));
      const m = new AnswerGroupModel(D, ANSWER_GROUP_DEFAULTS, (i) => vectors[i]);
      rebuilder.track(m);
      vectors.forEach((v, i) => m.add(i, v, `k${Math.floor(i / 4)}`));
      return m;
    });
    rebuilder.schedule(models[0]!); // never searched: no map yet
    await rebuilder.idle();
    expect(models[0]!.ready).toBe(false);
    for (let i = 0; i < 3; i++) rebuilder.searched(models[0]!);
    rebuilder.searched(models[1]!);
    await rebuilder.idle();
    expect(models.map((m) => m.ready)).toEqual([true, true, false]);
    // As often searched as the least searched map holder: not admitted (no eviction loop).
    rebuilder.searched(models[2]!);
    await rebuilder.idle();
    expect(models.map((m) => m.ready)).toEqual([true, true, false]);
    expect(rebuilder.evictions).toBe(0);
    // Searched more: it takes the least searched one's place.
    rebuilder.searched(models[2]!);
    await rebuilder.idle();
    expect(models.map((m) => m.ready)).toEqual([true, false, true]);
    expect(rebuilder.maps).toBe(2);
    expect(rebuilder.evictions).toBe(1);
    rebuilder.stop();
  });

  it('partitions searched in turn beyond maxMaps do not rebuild in a loop', async () => {
    const layer = new SemanticLayer({ embedder: new TableEmbedder(D, 'table-turns'), answerGroups: { maxMaps: 2 } });
    const w = world();
    const emb = layer.embedder as TableEmbedder;
    for (let p = 0; p < 3; p++)
      for (let t = 0; t < TOPICS.length; t++)
        for (const [j, word] of WORDINGS.entries()) {
          const text = `${TOPICS[t]} question ${word}`;
          emb.table.set(text, w.stored[t]![j]!);
          const it = chatItem(text, { value: `answer ${t}`, system: `system ${p}` });
          await layer.set(it.key, it.entry);
        }
    for (let round = 0; round < 5; round++)
      for (let p = 0; p < 3; p++) {
        await layer.search(chatItem('billing question alpha', { system: `system ${p}` }).query);
        await layer.answerGroupsIdle();
      }
    expect(layer.stats().answerGroups).toMatchObject({ maps: 2 });
    expect(layer.stats().answerGroups!.builds).toBeLessThanOrEqual(3);
    await layer.close();
  });

  it('does not serve through a prompt less similar than minSimilarity', async () => {
    const w = world();
    const strict = await supportLayer({ answerGroups: { minSimilarity: 0.99 } }, w);
    expect((await strict.layer.search(strict.askFar(1).query)).hit).toBeUndefined();
    await strict.layer.close();
  });
});

describe('answer groups with the real USE-lite embedder', () => {
  // An answer shared by many different questions: the rule's known limit (see the README).
  const ITEMS = [
    'blue kettle',
    'red toaster',
    'steel blender',
    'oak desk',
    'wool scarf',
    'leather wallet',
    'glass vase',
    'cotton towel',
    'ceramic mug',
    'bamboo cutting board',
    'garden hose',
    'yoga mat',
    'camping tent',
    'hiking boots',
    'rain jacket',
    'coffee grinder',
    'desk lamp',
    'office chair',
    'bike helmet',
    'travel pillow',
    'phone charger',
    'wireless mouse',
    'mechanical keyboard',
    'usb hub',
    'laptop stand',
    'water bottle',
    'lunch box',
    'baking tray',
    'frying pan',
    'chef knife',
    'bath mat',
    'shower curtain',
    'picture frame',
    'wall clock',
    'alarm clock',
    'table fan',
    'space heater',
    'air purifier',
    'humidifier',
    'doormat',
  ];
  const SOLD_OUT = ['silk tie', 'rocking chair', 'snow shovel', 'paddle board', 'pizza stone', 'flower pot'];
  const NEW = [
    'green teapot',
    'velvet sofa',
    'electric drill',
    'tennis racket',
    'winter gloves',
    'gaming monitor',
    'beach umbrella',
    'spice rack',
    'duvet cover',
    'soap dispenser',
    'dog leash',
    'cat bed',
    'fishing rod',
    'guitar strap',
    'paint brush',
    'sewing kit',
    'first aid kit',
    'ice cube tray',
    'salad spinner',
    'rolling pin',
  ];
  const TEMPLATES = ['Is the {} in stock?', 'Do you have the {} in stock right now?', 'Is the {} available to buy?'];

  it('a generic answer shared by 40 different questions reaches at most 1 of 20 questions about products never stored', async () => {
    const { createUseEmbedder } = await import('@strata-cache/embed-use');
    const embedder = await createUseEmbedder({ workers: 1 });
    const served: Record<string, number> = {};
    try {
      for (const [name, options] of [
        ['on', {}],
        ['off', { answerGroups: false as const }],
      ] as const) {
        const layer = new SemanticLayer({ embedder, ...options });
        let k = 0;
        for (const item of ITEMS) {
          const it = chatItem(TEMPLATES[k++ % 3]!.replace('{}', item), { value: 'Yes, it is in stock.' });
          await layer.set(it.key, it.entry);
        }
        for (const item of SOLD_OUT) {
          const it = chatItem(TEMPLATES[k++ % 3]!.replace('{}', item), { value: `Sorry, the ${item} is sold out until next month.` });
          await layer.set(it.key, it.entry);
        }
        await layer.search(chatItem('Is the blue kettle in stock?').query); // the partition is searched: its map is built
        await layer.answerGroupsIdle();
        served[name] = 0;
        for (const item of NEW) if ((await layer.search(chatItem(`Is the ${item} in stock at the moment?`).query)).hit) served[name]!++;
        await layer.close();
      }
    } finally {
      await embedder.close();
    }
    expect(served.off).toBe(0);
    expect(served.on).toBeLessThanOrEqual(1);
  }, 120_000);
});
