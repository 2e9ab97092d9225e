import { type CandidateSelector, type SemanticGuard, InvalidOptionError, StrataError, resolveScope } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { SemanticLayer } from '../src/index.js';
import { HashEmbedder, TableEmbedder, chatItem, normalise, randomUnit } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SemanticLayer: similarity lookups', () => {
  it('finds a similar question in the same partition, with similarity and matched text', async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder(), threshold: 0.6 });
    const a = chatItem('how do I reset my password please');
    await layer.set(a.key, a.entry);
    const q = chatItem('how do I reset my password');
    const r = await layer.search(q.query);
    expect(r.hit?.key.id).toBe(a.key.id);
    expect(r.hit?.entry.value).toBe('answer to: how do I reset my password please');
    expect(r.hit?.text).toBe('how do I reset my password please');
    expect(r.hit!.similarity).toBeGreaterThan(0.6);
    expect(r.hit!.similarity).toBeLessThan(1);
    await layer.close();
  });

  it('never answers across partitions: other system prompt, model, scope or embedder', async () => {
    const emb = new HashEmbedder();
    const layer = new SemanticLayer({ embedder: emb, threshold: 0.5 });
    const a = chatItem('what is the refund policy');
    await layer.set(a.key, a.entry);
    expect((await layer.search(chatItem('what is the refund policy').query)).hit).toBeDefined();
    expect((await layer.search(chatItem('what is the refund policy', { system: 'You are a pirate.' }).query)).hit).toBeUndefined();
    expect((await layer.search(chatItem('what is the refund policy', { model: 'gpt-4o' }).query)).hit).toBeUndefined();
    expect((await layer.search(chatItem('what is the refund policy', { scope: resolveScope('t2') }).query)).hit).toBeUndefined();
    // A layer on another embedder never reads this one's vectors (the id is part of the partition).
    const other = new SemanticLayer({ embedder: new HashEmbedder(64, 'other') });
    expect((await other.search(chatItem('what is the refund policy').query)).hit).toBeUndefined();
    await layer.close();
    await other.close();
  });

  it('skips the embedding when the partition is empty, and embeds a text only once (LRU)', async () => {
    const emb = new HashEmbedder();
    const layer = new SemanticLayer({ embedder: emb });
    await layer.search(chatItem('nothing stored here').query);
    expect(emb.texts).toBe(0);
    const a = chatItem('where is my parcel');
    await layer.set(a.key, a.entry);
    expect(emb.texts).toBe(1);
    await layer.search(a.query);
    await layer.search(a.query);
    expect(emb.texts).toBe(1);
    expect(layer.stats().embeddingCacheHits).toBeGreaterThanOrEqual(2);
    await layer.close();
  });

  it('applies the threshold (default and per request) on cosine similarity', async () => {
    const emb = new TableEmbedder(8);
    const base = normalise(Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0]));
    const near = normalise(Float32Array.from([1, 0.5, 0, 0, 0, 0, 0, 0])); // cos ≈ 0.894
    emb.table.set('stored', base);
    emb.table.set('probe', near);
    const layer = new SemanticLayer({ embedder: emb }); // default 0.9
    const a = chatItem('stored');
    await layer.set(a.key, a.entry);
    const q = chatItem('probe').query;
    expect((await layer.search(q)).hit).toBeUndefined();
    const r = await layer.search({ ...q, threshold: 0.85 });
    expect(r.hit?.similarity).toBeCloseTo(0.8944, 3);
    await expect(layer.search({ ...q, threshold: 1.5 })).rejects.toBeInstanceOf(InvalidOptionError);
    await layer.close();
  });

  it('runs guards on candidates above the threshold, reports rejections by guard name, returns the next accepted one', async () => {
    const noDigits: SemanticGuard = {
      name: 'numbers',
      check: ({ query, candidate }) =>
        (query.match(/\d+/g) ?? []).join() === (candidate.match(/\d+/g) ?? []).join() ? { accept: true } : { accept: false, reason: 'numbers differ' },
    };
    const emb = new TableEmbedder(4);
    emb.table.set('price of plan 20 per month', normalise(Float32Array.from([1, 0, 0, 0])));
    emb.table.set('price of plan 30 per month', normalise(Float32Array.from([1, 0, 0, 0])));
    emb.table.set('price of plan 10 per month', normalise(Float32Array.from([1, 0.2, 0, 0]))); // cos 0.98
    emb.table.set('what is the price of plan 20 per month in euros', normalise(Float32Array.from([1, 0, 0.5, 0]))); // cos 0.89
    const layer = new SemanticLayer({ embedder: emb, threshold: 0.8, guards: [noDigits] });
    const a = chatItem('price of plan 10 per month');
    const b = chatItem('what is the price of plan 20 per month in euros');
    await layer.set(a.key, a.entry);
    await layer.set(b.key, b.entry);
    const r = await layer.search(chatItem('price of plan 20 per month').query);
    expect(r.hit?.text).toBe('what is the price of plan 20 per month in euros');
    expect(r.rejected?.map((x) => [x.guard, x.text, x.reason])).toEqual([['numbers', 'price of plan 10 per month', 'numbers differ']]);
    const none = await layer.search(chatItem('price of plan 30 per month').query);
    expect(none.hit).toBeUndefined();
    expect(none.rejected).toHaveLength(2);
    await layer.close();
  });

  it('hands both vectors to guards that need them (flat and graph partitions), and only to those', async () => {
    for (const flatLimit of [1_000, 1]) {
      const emb = new TableEmbedder(4, 'vec-test');
      const stored = normalise(Float32Array.from([1, 0.1, 0, 0]));
      const probe = normalise(Float32Array.from([1, 0, 0.1, 0]));
      emb.table.set('stored question', stored);
      emb.table.set('probe question', probe);
      const seen: Array<[Float32Array | undefined, Float32Array | undefined]> = [];
      const plainSeen: Array<Float32Array | undefined> = [];
      const vectorGuard: SemanticGuard = {
        name: 'vectors',
        needsVectors: true,
        check: ({ queryVector, candidateVector }) => {
          seen.push([queryVector, candidateVector]);
          return { accept: false, reason: 'looked' };
        },
      };
      const plain: SemanticGuard = { name: 'plain', check: ({ candidateVector }) => (plainSeen.push(candidateVector), { accept: true }) };
      const layer = new SemanticLayer({ embedder: emb, threshold: 0.5, guards: [plain, vectorGuard], flatLimit });
      emb.table.set('unrelated', Float32Array.from([0, 0, 0, 1]));
      const other = chatItem('unrelated');
      await layer.set(other.key, other.entry); // a second entry: with flatLimit 1 the partition is a graph
      const a = chatItem('stored question');
      await layer.set(a.key, a.entry);
      const r = await layer.search(chatItem('probe question').query);
      expect(r.hit).toBeUndefined();
      expect(r.rejected?.[0]?.guard).toBe('vectors');
      expect(seen).toHaveLength(1);
      expect(Array.from(seen[0]![0]!)).toEqual(Array.from(probe));
      // HNSW stores float32 too: the stored vector comes back as written.
      expect(Array.from(seen[0]![1]!)).toEqual(Array.from(stored));
      await layer.close();
      // A layer whose guards need no vectors does not fetch them.
      const layer2 = new SemanticLayer({ embedder: emb, threshold: 0.5, guards: [plain], flatLimit });
      await layer2.set(a.key, a.entry);
      await layer2.search(chatItem('probe question').query);
      expect(plainSeen.at(-1)).toBeUndefined();
      await layer2.close();
    }
  });

  it('hands every accepted candidate to a selector, which may pick any of them or decline all', async () => {
    const emb = new TableEmbedder(4, 'sel');
    emb.table.set('plan price per month', normalise(Float32Array.from([1, 0.1, 0, 0])));
    emb.table.set('plan price per year', normalise(Float32Array.from([1, 0.12, 0, 0])));
    emb.table.set('plan price 30', normalise(Float32Array.from([1, 0.11, 0, 0])));
    emb.table.set('plan price', normalise(Float32Array.from([1, 0.1, 0.01, 0])));
    const no30: SemanticGuard = { name: 'numbers', check: ({ candidate }) => (/\d/.test(candidate) ? { accept: false, reason: 'number' } : { accept: true }) };
    const seen: string[][] = [];
    const pickLast: CandidateSelector = { name: 'last', select: (_q, cs) => (seen.push(cs.map((c) => c.text)), { pick: cs.length - 1 }) };
    const decline: CandidateSelector = { name: 'ambiguous', select: () => ({ pick: undefined, reason: 'too close' }) };
    const items = ['plan price per month', 'plan price per year', 'plan price 30'].map((t) => chatItem(t));
    for (const [selector, expectHit] of [
      [false, 'first'],
      [pickLast, 'last'],
      [decline, 'none'],
    ] as const) {
      const layer = new SemanticLayer({ embedder: emb, threshold: 0.9, guards: [no30], selector });
      for (const it of items) await layer.set(it.key, it.entry);
      const r = await layer.search(chatItem('plan price').query);
      if (expectHit === 'none') {
        expect(r.hit).toBeUndefined();
        // the guard's rejection and the selector's, each named
        expect(r.rejected?.map((x) => x.guard).sort()).toEqual(['ambiguous', 'ambiguous', 'numbers']);
        expect(r.rejected?.find((x) => x.guard === 'ambiguous')?.reason).toBe('too close');
      } else {
        expect(r.hit).toBeDefined();
        if (expectHit === 'last') {
          // guards ran first: the selector only saw the two accepted candidates, most similar first
          expect(seen.at(-1)).toHaveLength(2);
          expect(seen.at(-1)).toEqual(['plan price per month', 'plan price per year']);
          expect(r.hit!.text).toBe('plan price per year');
        } else {
          expect(r.hit!.text).toBe('plan price per month'); // the most similar accepted candidate
        }
      }
      await layer.close();
    }
    expect(() => new SemanticLayer({ embedder: emb, selector: { name: 'x' } as never })).toThrow(/selector/);
  });

  it('refuses a guard bound to another embedder family or dimension, naming both', () => {
    const bound = (family: string, dimensions: number): SemanticGuard => ({
      name: 'learned',
      embedder: { family, dimensions },
      check: () => ({ accept: true }),
    });
    const emb = new HashEmbedder(64, 'hash-test');
    expect(() => new SemanticLayer({ embedder: emb, guards: [bound('use-lite', 512)] })).toThrow(/learned.*use-lite \(512-d\).*hash-test\/64/);
    expect(() => new SemanticLayer({ embedder: emb, guards: [bound('hash-test', 32)] })).toThrow(InvalidOptionError);
    expect(() => new SemanticLayer({ embedder: emb, guards: [bound('hash-test', 64)] })).not.toThrow();
  });

  it('keeps long texts out of similarity matching (exact key only)', async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder(), maxTextLength: 50, threshold: 0.1 });
    const long = chatItem('tell me about '.repeat(10) + 'cats');
    await layer.set(long.key, long.entry);
    expect((await layer.get(long.key))?.value).toBe(long.entry.value);
    expect((await layer.search(long.query)).hit).toBeUndefined();
    expect(layer.stats().indexed).toBe(0);
    await layer.close();
  });
});

describe('SemanticLayer: texts the embedder cannot represent', () => {
  // HashEmbedder drops every character outside a-z and 0-9, as an English-only model reads
  // another script as <unk>: two different questions get the same vector.
  class LatinOnlyEmbedder extends HashEmbedder {
    represents(text: string): boolean {
      return !/[^ -~]/.test(text);
    }
  }
  const plain = { guards: [], selector: false as const, threshold: 0.9 };

  it('refuses a represents that is not a function', () => {
    const bad = Object.assign(new HashEmbedder(), { represents: true }) as unknown as HashEmbedder;
    expect(() => new SemanticLayer({ embedder: bad })).toThrow(InvalidOptionError);
  });

  it('without represents(), what the model cannot see is served across different questions', async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder(), ...plain });
    const a = chatItem('what does 时尚 mean');
    await layer.set(a.key, a.entry);
    expect((await layer.search(chatItem('what does 心中 mean').query)).hit).toBeDefined();
    await layer.close();
  });

  it('keeps them out of similarity matching (stored, served by exact key, counted)', async () => {
    const layer = new SemanticLayer({ embedder: new LatinOnlyEmbedder(), ...plain });
    const a = chatItem('what does 时尚 mean');
    const en = chatItem('what does serendipity mean');
    await layer.set(a.key, a.entry);
    await layer.set(en.key, en.entry);
    expect((await layer.get(a.key))?.value).toBe(a.entry.value);
    expect((await layer.search(chatItem('what does 心中 mean').query)).hit).toBeUndefined();
    // The stored text is not in the index either: a representable query cannot reach it.
    expect(layer.stats().indexed).toBe(1);
    expect((await layer.search(chatItem('What does serendipity mean?').query)).hit?.key.id).toBe(en.key.id);
    expect(layer.stats().unrepresentable).toBe(2);
    await layer.close();
  });
});

describe('SemanticLayer: removals are real', () => {
  it('delete, deleteByTag, deleteOlderVersions and clear remove entries from search results', async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder(), threshold: 0.99 });
    const s0 = resolveScope({ tenant: 'rm', version: 0 });
    const s1 = resolveScope({ tenant: 'rm', version: 1 });
    const a = chatItem('alpha question', { scope: s0, tags: ['t:a'] });
    const b = chatItem('beta question', { scope: s0 });
    const c = chatItem('gamma question', { scope: s1 });
    for (const x of [a, b, c]) await layer.set(x.key, x.entry);
    expect((await layer.search(a.query)).hit).toBeDefined();
    expect(await layer.deleteByTag('t:a')).toBe(1);
    expect((await layer.search(a.query)).hit).toBeUndefined();
    expect(await layer.deleteOlderVersions(s1)).toBe(1);
    expect((await layer.search(b.query)).hit).toBeUndefined();
    expect((await layer.search(c.query)).hit).toBeDefined();
    expect(await layer.delete(c.key)).toBe(true);
    expect((await layer.search(c.query)).hit).toBeUndefined();
    expect(layer.stats()).toMatchObject({ entries: 0, indexed: 0, partitions: 0 });
    await layer.set(a.key, a.entry);
    await layer.clear(s0);
    expect((await layer.search(a.query)).hit).toBeUndefined();
    await layer.close();
  });

  it('respects TTL: an expired entry is never a hit and is removed (also by the sweep)', async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder(), threshold: 0.99 });
    const a = chatItem('short lived question', { ttlMs: 80 });
    const b = chatItem('another short lived one', { ttlMs: 80 });
    await layer.set(a.key, a.entry);
    await layer.set(b.key, b.entry);
    expect((await layer.search(a.query)).hit).toBeDefined();
    await sleep(150);
    expect((await layer.search(a.query)).hit).toBeUndefined();
    expect(layer.stats().entries).toBe(1);
    expect(layer.sweepExpired()).toBe(1);
    expect(layer.stats()).toMatchObject({ entries: 0, indexed: 0 });
    await layer.close();
  });

  it('a delete while the write is still embedding wins (the late write is dropped)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inner = new HashEmbedder();
    const slow = { id: inner.id, dimensions: inner.dimensions, embed: async (t: readonly string[]) => (await gate, inner.embed(t)) };
    const layer = new SemanticLayer({ embedder: slow });
    await layer.ready();
    const a = chatItem('racing write');
    const writing = layer.set(a.key, a.entry);
    await layer.delete(a.key);
    release();
    await writing;
    expect(await layer.get(a.key)).toBeUndefined();
    expect(layer.stats().indexed).toBe(0);
    await layer.close();
  });

  it('evicts the least recently used entries beyond maxEntries', async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder(), maxEntries: 3 });
    const items = ['one q', 'two q', 'three q', 'four q'].map((t) => chatItem(t));
    for (const x of items.slice(0, 3)) await layer.set(x.key, x.entry);
    await layer.get(items[0]!.key); // refresh
    await layer.set(items[3]!.key, items[3]!.entry);
    expect(await layer.get(items[1]!.key)).toBeUndefined();
    expect(await layer.get(items[0]!.key)).toBeDefined();
    expect(layer.stats()).toMatchObject({ entries: 3, indexed: 3 });
    await layer.close();
  });
});

describe('SemanticLayer: index growth, HNSW, compaction, many partitions', () => {
  const dims = 32;
  function tableLayer(flatLimit: number) {
    const emb = new TableEmbedder(dims);
    const layer = new SemanticLayer({ embedder: emb, flatLimit, threshold: 0.95 });
    return { emb, layer };
  }

  it('moves a growing partition from exact scan to an HNSW graph (growing its capacity) and back when it shrinks', async () => {
    const { emb, layer } = tableLayer(16);
    const items = Array.from({ length: 200 }, (_, i) => {
      const text = `q${i}`;
      emb.table.set(text, randomUnit(dims));
      return chatItem(text);
    });
    for (const x of items.slice(0, 16)) await layer.set(x.key, x.entry);
    expect(layer.stats().graphPartitions).toBe(0);
    await layer.setMany(items.slice(16).map((x) => ({ key: x.key, entry: x.entry }))); // > initial capacity of 32
    expect(layer.stats()).toMatchObject({ indexed: 200, graphPartitions: 1, partitions: 1 });
    for (const i of [0, 50, 199]) expect((await layer.search(items[i]!.query)).hit?.key.id).toBe(items[i]!.key.id);
    for (const x of items.slice(4)) await layer.delete(x.key);
    await layer.compact(); // a heavy-deletion rebuild may be running; it demotes at the end
    expect(layer.stats()).toMatchObject({ indexed: 4, graphPartitions: 0 });
    for (const x of items.slice(0, 4)) expect((await layer.search(x.query)).hit?.key.id).toBe(x.key.id);
    await layer.close();
  });

  it('builds the graph of a large partition in slices: it answers exactly meanwhile, and what is added or deleted meanwhile is in the graph', async () => {
    const { emb, layer } = tableLayer(100);
    const items = Array.from({ length: 260 }, (_, i) => {
      const text = `q${i}`;
      emb.table.set(text, randomUnit(dims));
      return chatItem(text);
    });
    await layer.setMany(items.slice(0, 100).map((x) => ({ key: x.key, entry: x.entry })));
    await layer.set(items[100]!.key, items[100]!.entry); // crosses flatLimit: the build starts
    expect(layer.stats().graphPartitions).toBe(0); // still flat, searched exactly
    expect(layer.stats().pendingGraphInserts).toBe(101 - 64); // the first slice (64 points) went in at once
    for (const i of [0, 100]) expect((await layer.search(items[i]!.query)).hit?.key.id).toBe(items[i]!.key.id);
    await layer.setMany(items.slice(101).map((x) => ({ key: x.key, entry: x.entry }))); // added during the build
    await layer.delete(items[5]!.key); // deleted during the build
    await layer.compact(); // waits for the build
    while (layer.stats().pendingGraphInserts > 0) await new Promise((r) => setImmediate(r));
    expect(layer.stats()).toMatchObject({ indexed: 259, graphPartitions: 1, partitions: 1 });
    for (const i of [0, 99, 100, 150, 259]) expect((await layer.search(items[i]!.query)).hit?.key.id).toBe(items[i]!.key.id);
    expect((await layer.search(items[5]!.query)).hit).toBeUndefined();
    await layer.close();
  });

  it('a graph build outpaced by adds (no event-loop turn for its slices) still ends: waiting points stay bounded and the graph takes over', async () => {
    const { emb, layer } = tableLayer(100);
    const items = Array.from({ length: 2_000 }, (_, i) => {
      emb.table.set(`b${i}`, randomUnit(dims));
      return chatItem(`b${i}`);
    });
    const pending: number[] = [];
    // Stores in a loop that awaits only promises already settled: the build's slices (one per
    // event-loop turn) never run, so the adds must move it on themselves.
    for (const x of items) {
      await layer.setMany([{ key: x.key, entry: x.entry }]);
      pending.push(layer.stats().pendingGraphInserts);
    }
    expect(Math.max(...pending)).toBeLessThanOrEqual(100 + 512 + 1);
    expect(layer.stats()).toMatchObject({ indexed: 2_000, graphPartitions: 1, partitions: 1 });
    for (const i of [0, 99, 100, 700, 1_300, 1_999]) expect((await layer.search(items[i]!.query)).hit?.key.id).toBe(items[i]!.key.id);
    while (layer.stats().pendingGraphInserts > 0) await new Promise((r) => setImmediate(r));
    for (const i of [0, 100, 1_999]) expect((await layer.search(items[i]!.query)).hit?.key.id).toBe(items[i]!.key.id);
    await layer.close();
  });

  it('a point added to a graph partition is findable at once, before its graph insert; deleted from the tail, it is gone; the tail drains into the graph', async () => {
    const { emb, layer } = tableLayer(8);
    const items = Array.from({ length: 900 }, (_, i) => {
      emb.table.set(`t${i}`, randomUnit(dims));
      return chatItem(`t${i}`);
    });
    await layer.setMany(items.slice(0, 40).map((x) => ({ key: x.key, entry: x.entry })));
    await layer.compact(); // the graph is built
    while (layer.stats().pendingGraphInserts > 0) await new Promise((r) => setImmediate(r));
    expect(layer.stats()).toMatchObject({ graphPartitions: 1, indexed: 40, pendingGraphInserts: 0 });
    const bytesBefore = layer.stats().indexBytes;
    // More than the tail holds: the rest go straight into the graph.
    await layer.setMany(items.slice(40).map((x) => ({ key: x.key, entry: x.entry })));
    const pending = layer.stats().pendingGraphInserts;
    expect(pending).toBeGreaterThan(0);
    expect(pending).toBeLessThanOrEqual(512);
    expect(layer.stats().indexed).toBe(900);
    const gone = [899, 898, 700, 41, 5];
    for (const i of gone) await layer.delete(items[i]!.key);
    for (const i of [0, 39, 40, 300, 897, 896, 650]) expect((await layer.search(items[i]!.query)).hit?.key.id).toBe(items[i]!.key.id);
    for (const i of gone) expect((await layer.search(items[i]!.query)).hit).toBeUndefined();
    while (layer.stats().pendingGraphInserts > 0) await new Promise((r) => setImmediate(r));
    expect(layer.stats()).toMatchObject({ indexed: 895, graphPartitions: 1 });
    expect(layer.stats().indexBytes).toBeGreaterThan(bytesBefore);
    let found = 0;
    for (let i = 0; i < items.length; i++) {
      const hit = (await layer.search(items[i]!.query)).hit;
      if (gone.includes(i)) expect(hit).toBeUndefined();
      else if (hit?.key.id === items[i]!.key.id) found++;
    }
    expect(found).toBeGreaterThanOrEqual(890);
    await layer.close();
  });

  it('a compaction leaves points waiting in the tail where they are: findable throughout, in the new graph afterwards', async () => {
    const { emb, layer } = tableLayer(8);
    const items = Array.from({ length: 120 }, (_, i) => {
      emb.table.set(`w${i}`, randomUnit(dims));
      return chatItem(`w${i}`);
    });
    await layer.setMany(items.slice(0, 60).map((x) => ({ key: x.key, entry: x.entry })));
    while (layer.stats().pendingGraphInserts > 0) await new Promise((r) => setImmediate(r));
    await layer.setMany(items.slice(60).map((x) => ({ key: x.key, entry: x.entry }))); // wait in the tail
    expect(layer.stats().pendingGraphInserts).toBe(60);
    const compaction = layer.compact();
    await layer.delete(items[70]!.key); // from the tail, during the rebuild
    await layer.delete(items[10]!.key); // from the graph, during the rebuild
    expect(layer.stats().pendingGraphInserts).toBe(59); // none inserted in one go when the rebuild started
    for (const i of [0, 59, 60, 119]) expect((await layer.search(items[i]!.query)).hit?.key.id).toBe(items[i]!.key.id);
    await compaction;
    while (layer.stats().pendingGraphInserts > 0) await new Promise((r) => setImmediate(r));
    expect(layer.stats()).toMatchObject({ indexed: 118, graphPartitions: 1 });
    for (let i = 0; i < items.length; i++) {
      const hit = (await layer.search(items[i]!.query)).hit;
      if (i === 70 || i === 10) expect(hit).toBeUndefined();
      else expect(hit?.key.id).toBe(items[i]!.key.id);
    }
    await layer.close();
  });

  it('compacts a graph after heavy deletion; deleted points never come back, live ones stay findable', async () => {
    const { emb, layer } = tableLayer(8);
    const items = Array.from({ length: 300 }, (_, i) => {
      emb.table.set(`c${i}`, randomUnit(dims));
      return chatItem(`c${i}`);
    });
    await layer.setMany(items.map((x) => ({ key: x.key, entry: x.entry })));
    const before = layer.stats().indexBytes;
    for (const x of items.slice(0, 200)) await layer.delete(x.key);
    await layer.compact();
    expect(layer.stats().indexed).toBe(100);
    expect(layer.stats().indexBytes).toBeLessThan(before);
    for (const x of items.slice(0, 200).filter((_, i) => i % 20 === 0)) {
      expect((await layer.search(x.query)).hit).toBeUndefined();
    }
    let found = 0;
    for (const x of items.slice(200)) if ((await layer.search(x.query)).hit?.key.id === x.key.id) found++;
    expect(found).toBeGreaterThanOrEqual(99);
    // New writes after compaction still land in the graph.
    emb.table.set('late', randomUnit(dims));
    const late = chatItem('late');
    await layer.set(late.key, late.entry);
    expect((await layer.search(late.query)).hit?.key.id).toBe(late.key.id);
    await layer.close();
  });

  it('flat storage across several chunks: swap-removals keep every remaining vector findable', async () => {
    const { emb, layer } = tableLayer(1_024);
    const items = Array.from({ length: 70 }, (_, i) => {
      emb.table.set(`f${i}`, randomUnit(dims));
      return chatItem(`f${i}`);
    });
    for (const x of items) await layer.set(x.key, x.entry);
    const gone = new Set([0, 3, 15, 16, 17, 31, 40, 63, 69, 68, 50]);
    for (const i of gone) await layer.delete(items[i]!.key);
    expect(layer.stats()).toMatchObject({ indexed: 70 - gone.size, graphPartitions: 0 });
    for (let i = 0; i < items.length; i++) {
      const hit = (await layer.search(items[i]!.query)).hit;
      if (gone.has(i)) expect(hit).toBeUndefined();
      else expect(hit?.key.id).toBe(items[i]!.key.id);
    }
    await layer.close();
  });

  it('holds many small partitions as flat arrays (no per-partition graph)', async () => {
    const d = 512;
    const emb = new TableEmbedder(d);
    const layer = new SemanticLayer({ embedder: emb });
    const items = [];
    for (let p = 0; p < 200; p++) {
      for (let i = 0; i < 10; i++) {
        const text = `p${p}-q${i}`;
        emb.table.set(text, randomUnit(d));
        items.push(chatItem(text, { system: `system prompt ${p}` }));
      }
    }
    await layer.setMany(items.map((x) => ({ key: x.key, entry: x.entry })));
    const s = layer.stats();
    expect(s).toMatchObject({ entries: 2000, indexed: 2000, partitions: 200, graphPartitions: 0 });
    expect(s.indexBytes / s.indexed).toBeLessThan(3 * 1024);
    expect((await layer.search(items[1234]!.query)).hit?.key.id).toBe(items[1234]!.key.id);
    await layer.close();
  });
});

describe('SemanticLayer: options', () => {
  it('validates options with InvalidOptionError naming the option', () => {
    const embedder = new HashEmbedder();
    expect(() => new SemanticLayer({ embedder, nope: 1 } as never)).toThrow(InvalidOptionError);
    expect(() => new SemanticLayer({} as never)).toThrow(/embedder/);
    expect(() => new SemanticLayer({ embedder, threshold: 2 })).toThrow(/threshold/);
    expect(() => new SemanticLayer({ embedder, hnsw: { m: 0 } })).toThrow(/hnsw\.m/);
    expect(() => new SemanticLayer({ embedder, hnsw: { M: 16 } as never })).toThrow(/hnsw\.M/);
    expect(() => new SemanticLayer({ embedder, snapshotIntervalMs: 1000 })).toThrow(/persistDir/);
    expect(() => new SemanticLayer({ embedder, guards: [{}] as never })).toThrow(/guards/);
  });

  it('refuses work after close with a StrataError', async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder() });
    await layer.close();
    const a = chatItem('closed');
    const err = await layer.set(a.key, a.entry).catch((e: unknown) => e);
    expect(StrataError.isInstance(err)).toBe(true);
  });
});

describe('SemanticLayer: the measured default setting', () => {
  it('defaults to the guards, the selector and the threshold from @strata-cache/semantic-guards, for every embedder', async () => {
    const { RECOMMENDED_THRESHOLD } = await import('@strata-cache/semantic-guards');
    const plain = new SemanticLayer({ embedder: new HashEmbedder(64) });
    expect(plain.matching).toEqual({
      threshold: RECOMMENDED_THRESHOLD.guardsOnly,
      guards: ['symbols', 'numbers', 'negation', 'direction', 'opposites', 'argument-order', 'entities'],
      selector: 'consensus',
    });
    const use = new SemanticLayer({ embedder: new TableEmbedder(512, 'use-lite@test') });
    expect(use.matching).toEqual(plain.matching);
    // Opting out, and explicit values, win over the defaults.
    const none = new SemanticLayer({ embedder: new HashEmbedder(64), guards: [], selector: false, threshold: 0.5 });
    expect(none.matching).toEqual({ threshold: 0.5, guards: [], selector: undefined });
    await Promise.all([plain.close(), use.close(), none.close()]);
  });

  it('by default a match below the threshold is served only on consensus: two other stored prompts near the query with the same answer, no close rival', async () => {
    // Unit vectors at chosen cosines to the query q = e0: x·e0 = c.
    const at = (c: number, axis: number) => {
      const v = new Float32Array(8);
      v[0] = c;
      v[axis] = Math.sqrt(1 - c * c);
      return v;
    };
    const emb = new TableEmbedder(8, 'consensus');
    emb.table.set('how can I get a new card', at(1, 1));
    emb.table.set('I need a replacement card', at(0.92, 1));
    emb.table.set('my card broke, can I get another one', at(0.85, 2));
    emb.table.set('please send me a new card', at(0.8, 4));
    emb.table.set('when will my new card arrive', at(0.84, 3));
    const q = chatItem('how can I get a new card').query;
    const lone = new SemanticLayer({ embedder: emb });
    const best = chatItem('I need a replacement card', { value: 'card-replacement' });
    await lone.set(best.key, best.entry);
    const alone = await lone.search(q);
    expect(alone.hit).toBeUndefined(); // 0.92 < 0.965 with nothing around it
    expect(alone.rejected?.[0]).toMatchObject({ guard: 'consensus', similarity: expect.closeTo(0.92, 3) });
    // One more stored prompt holding the same answer is not enough; two are: served.
    const support = chatItem('my card broke, can I get another one', { value: 'card-replacement' });
    await lone.set(support.key, support.entry);
    expect((await lone.search(q)).hit).toBeUndefined();
    const support2 = chatItem('please send me a new card', { value: 'card-replacement' });
    await lone.set(support2.key, support2.entry);
    expect((await lone.search(q)).hit?.text).toBe('I need a replacement card');
    // A stored prompt holding another answer within the margin: the query sits between two answers.
    const rival = chatItem('when will my new card arrive', { value: 'card-arrival' });
    await lone.set(rival.key, rival.entry);
    const contested = await lone.search(q);
    expect(contested.hit).toBeUndefined();
    expect(contested.rejected?.some((r) => r.guard === 'consensus' && /contested/.test(r.reason ?? ''))).toBe(true);
    await lone.close();
  });

  it('a look-alike is turned down by default, and hits once the guards are switched off', async () => {
    const emb = new TableEmbedder(4, 'defaults');
    emb.table.set('Book 3 seats for Friday', normalise(Float32Array.from([1, 0.05, 0, 0])));
    emb.table.set('Book 30 seats for Friday', normalise(Float32Array.from([1, 0.04, 0, 0])));
    const a = chatItem('Book 3 seats for Friday');
    const q = chatItem('Book 30 seats for Friday').query;
    const guarded = new SemanticLayer({ embedder: emb });
    await guarded.set(a.key, a.entry);
    const r = await guarded.search(q);
    expect(r.hit).toBeUndefined();
    expect(r.rejected?.[0]?.guard).toBe('numbers');
    const open = new SemanticLayer({ embedder: emb, guards: [] });
    await open.set(a.key, a.entry);
    expect((await open.search(q)).hit?.text).toBe('Book 3 seats for Friday');
    await Promise.all([guarded.close(), open.close()]);
  });
});
