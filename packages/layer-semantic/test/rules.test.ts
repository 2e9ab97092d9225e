import { type CandidateSelector, type Embedder, MultiLayerCache, StrataError, resolveScope } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { describe, expect, it } from 'vitest';
import { SemanticLayer } from '../src/index.js';
import { HashEmbedder, SlowEmbedder, TableEmbedder, chat, chatItem, normalise } from './helpers.js';

describe('SemanticLayer: the rules every layer keeps', () => {
  it('clear() resolves the number of entries removed, with and without a scope', async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder() });
    const s1 = resolveScope({ tenant: 'c', namespace: 'one' });
    const s2 = resolveScope({ tenant: 'c', namespace: 'two' });
    for (const t of ['a question', 'b question', 'c question']) {
      const x = chatItem(t, { scope: s1 });
      await layer.set(x.key, x.entry);
    }
    const y = chatItem('d question', { scope: s2 });
    await layer.set(y.key, y.entry);
    expect(await layer.clear(s1)).toBe(3);
    expect(await layer.clear(s1)).toBe(0);
    expect(await layer.clear()).toBe(1);
    expect(layer.stats()).toMatchObject({ entries: 0, indexed: 0, partitions: 0 });
    await layer.close();
  });

  it("re-tag: an entry's current tags are the truth", async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder() });
    const first = chatItem('tagged question', { tags: ['a'] });
    await layer.set(first.key, first.entry);
    const again = chatItem('tagged question', { tags: ['b'] });
    await layer.set(again.key, again.entry);
    expect(await layer.deleteByTag('a')).toBe(0);
    expect(await layer.get(first.key)).toBeDefined();
    expect(await layer.deleteByTag('b')).toBe(1);
    expect(await layer.get(first.key)).toBeUndefined();
    await layer.close();
  });

  it('after close() every operation rejects with STRATA_CLOSED, and a second close() is a no-op', async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder() });
    const a = chatItem('closing question');
    await layer.set(a.key, a.entry);
    await layer.close();
    await layer.close();
    const ops: Array<[string, () => Promise<unknown>]> = [
      ['get', () => layer.get(a.key)],
      ['getMany', () => layer.getMany([a.key])],
      ['set', () => layer.set(a.key, a.entry)],
      ['setMany', () => layer.setMany([{ key: a.key, entry: a.entry }])],
      ['delete', () => layer.delete(a.key)],
      ['deleteMany', () => layer.deleteMany([a.key])],
      ['clear', () => layer.clear()],
      ['deleteByTag', () => layer.deleteByTag('x')],
      ['deleteOlderVersions', () => layer.deleteOlderVersions(a.key.scope)],
      ['scan', () => layer.scan()],
      ['search', () => layer.search(a.query)],
      ['compact', () => layer.compact()],
    ];
    for (const [name, op] of ops) {
      const err = await op().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(StrataError.isInstance(err) && err.code, name).toBe('STRATA_CLOSED');
    }
  });

  it('never hands out an entry by reference: mutating what went in or came out changes nothing stored', async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder(), threshold: 0.5, guards: [], selector: false });
    const a = chatItem('reference question', { value: { answer: 'original', list: [1, 2] }, tags: ['t'] });
    await layer.set(a.key, a.entry);
    (a.entry.value as { answer: string }).answer = 'mutated input';
    a.entry.tags.push('late');
    const got = (await layer.get(a.key))!;
    expect(got.value).toEqual({ answer: 'original', list: [1, 2] });
    expect(got.tags).toEqual(['t']);
    expect(() => {
      (got.value as { answer: string }).answer = 'mutated output';
    }).toThrow(TypeError);
    expect(() => (got.value as { list: number[] }).list.push(3)).toThrow(TypeError);
    const hit = (await layer.search(a.query)).hit!;
    expect(hit.entry.value).toEqual({ answer: 'original', list: [1, 2] });
    expect(await layer.deleteByTag('late')).toBe(0);
    await layer.close();
  });

  it('a miss explains itself: rejected lists the nearest candidate below the threshold', async () => {
    const emb = new TableEmbedder(4, 'near');
    emb.table.set('stored one', normalise(Float32Array.from([1, 0, 0, 0])));
    emb.table.set('stored two', normalise(Float32Array.from([0, 1, 0, 0])));
    emb.table.set('probe', normalise(Float32Array.from([1, 0.6, 0, 0]))); // cos 0.857 to one, 0.514 to two
    const layer = new SemanticLayer({ embedder: emb, threshold: 0.9, guards: [], selector: false });
    for (const t of ['stored one', 'stored two']) {
      const x = chatItem(t);
      await layer.set(x.key, x.entry);
    }
    const r = await layer.search(chatItem('probe').query);
    expect(r.hit).toBeUndefined();
    expect(r.rejected).toHaveLength(1);
    expect(r.rejected![0]).toMatchObject({ guard: 'threshold', text: 'stored one' });
    expect(r.rejected![0]!.similarity).toBeCloseTo(0.857, 3);
    // A hit does not list candidates it never needed to judge.
    expect((await layer.search({ ...chatItem('probe').query, threshold: 0.8 })).rejected).toBeUndefined();
    await layer.close();
  });

  it('getMany answers in key order, undefined for missing keys', async () => {
    const layer = new SemanticLayer({ embedder: new HashEmbedder() });
    const [a, b, c] = ['first q', 'second q', 'third q'].map((t) => chatItem(t));
    await layer.setMany([
      { key: c!.key, entry: c!.entry },
      { key: a!.key, entry: a!.entry },
    ]);
    const got = await layer.getMany([a!.key, b!.key, c!.key, a!.key]);
    expect(got.map((e) => e?.value)).toEqual([a!.entry.value, undefined, c!.entry.value, a!.entry.value]);
    await layer.close();
  });

  it("offers the selector each candidate's stored answer", async () => {
    const emb = new TableEmbedder(4, 'values');
    emb.table.set('plan price monthly', normalise(Float32Array.from([1, 0.1, 0, 0])));
    emb.table.set('plan price yearly', normalise(Float32Array.from([1, 0.12, 0, 0])));
    emb.table.set('plan price', normalise(Float32Array.from([1, 0.11, 0, 0])));
    const seen: unknown[][] = [];
    const selector: CandidateSelector = { name: 'spy', select: (_q, cs) => (seen.push(cs.map((c) => c.value)), { pick: 0 }) };
    const layer = new SemanticLayer({ embedder: emb, threshold: 0.9, guards: [], selector });
    await layer.set(chatItem('plan price monthly').key, chatItem('plan price monthly', { value: 'A' }).entry);
    await layer.set(chatItem('plan price yearly').key, chatItem('plan price yearly', { value: 'B' }).entry);
    await layer.search(chatItem('plan price').query);
    expect(seen[0]!.slice().sort()).toEqual(['A', 'B']);
    await layer.close();
  });
});

describe('SemanticLayer: store() means stored', () => {
  it('an entry is findable by its exact key before set() resolves, and by similarity once it resolves', async () => {
    const emb = new SlowEmbedder(30);
    const layer = new SemanticLayer({ embedder: emb, threshold: 0.6, guards: [], selector: false });
    await layer.ready();
    const a = chatItem('how do I reset my password please');
    const writing = layer.set(a.key, a.entry);
    expect((await layer.get(a.key))?.value).toBe(a.entry.value);
    await writing;
    expect(layer.stats().indexed).toBe(1);
    expect((await layer.search(chatItem('how do I reset my password').query)).hit?.key.id).toBe(a.key.id);
    await layer.close();
  });

  it('MultiLayerCache.store() then a paraphrase lookup hits at once, with L1 in front and no flush()', async () => {
    const emb = new SlowEmbedder(40);
    const semantic = new SemanticLayer({ embedder: emb, threshold: 0.6, guards: [], selector: false });
    const scope = resolveScope({ tenant: 'stored', namespace: 'now' });
    const cache = new MultiLayerCache({ layers: [{ layer: new MemoryLayer() }, { layer: semantic, budgetMs: 5_000 }], policy: 'always', scope });
    expect(await cache.store(chat('how do I reset my password please'), 'reset answer')).toBe(true);
    const hit = await cache.lookup(chat('how do I reset my password'));
    expect(hit?.entry.value).toBe('reset answer');
    expect(hit?.similarity).toBeGreaterThan(0.6);
    await cache.close();
  });

  it('a lookup that waits for a write of its partition moves that write ahead of other lookups', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inner = new HashEmbedder(64);
    const calls: string[][] = [];
    const gated: Embedder = {
      id: inner.id,
      dimensions: inner.dimensions,
      embed: async (t) => {
        calls.push([...t]);
        await gate;
        return inner.embed(t);
      },
    };
    const layer = new SemanticLayer({ embedder: gated, threshold: 0.6, guards: [], selector: false, embedding: { concurrency: 1, maxBatch: 1 } });
    await layer.ready();
    const other = chatItem('unrelated first question', { system: 'another bot' });
    const blocking = layer.search(other.query); // empty partition: no embedding
    const w0 = chatItem('warm up the queue', { system: 'another bot' });
    const first = layer.set(w0.key, w0.entry); // occupies the only call slot
    const a = chatItem('where is my parcel today');
    const writing = layer.set(a.key, a.entry); // queued as a write
    const lookups = ['one', 'two', 'three'].map((n) => layer.search(chatItem(`${n} lookup of another kind`, { system: 'another bot' }).query));
    const found = layer.search(chatItem('where is my parcel').query);
    release();
    await Promise.all([blocking, first, writing, ...lookups]);
    expect((await found).hit?.key.id).toBe(a.key.id);
    // The write's text went in the second call, before the three lookups queued ahead of it.
    expect(calls[1]).toEqual(['where is my parcel today']);
    await layer.close();
  });
});
