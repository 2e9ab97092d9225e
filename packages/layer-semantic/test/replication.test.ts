import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveScope } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { type FeedSink, MemoryFeed, type SemanticFeed, SemanticLayer, type SemanticLayerOptions, type SemanticMutation } from '../src/index.js';
import { HashEmbedder, chatItem } from './helpers.js';

const settle = () => new Promise((r) => setImmediate(r));
const open = { threshold: 0.6, guards: [], selector: false as const };
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function replica(feed: SemanticFeed, extra: Partial<SemanticLayerOptions> = {}) {
  const embedder = new HashEmbedder(64);
  const layer = new SemanticLayer({ embedder, ...open, ...extra, replication: { feed, ...(extra.replication ?? {}) } });
  await layer.ready();
  return { layer, embedder };
}

describe('SemanticLayer replication seam', () => {
  it('a write in one layer is a semantic hit in another, which never embeds the written text', async () => {
    const feed = new MemoryFeed();
    const a = await replica(feed);
    const b = await replica(feed);
    const x = chatItem('how do I reset my password please');
    await a.layer.set(x.key, x.entry);
    await settle();
    const r = await b.layer.search(chatItem('how do I reset my password').query);
    expect(r.hit?.key.id).toBe(x.key.id);
    expect(r.hit?.entry.value).toBe(x.entry.value);
    expect(b.embedder.texts).toBe(1); // its own query only
    expect(b.layer.stats()).toMatchObject({ entries: 1, indexed: 1, replication: { applied: 1 } });
    expect(a.layer.stats().replication).toMatchObject({ applied: 0, skipped: 1 }); // its own put came back
    await Promise.all([a.layer.close(), b.layer.close()]);
  });

  it('deletes, tag / version / scope purges and evictions reach the other layers', async () => {
    const feed = new MemoryFeed();
    const a = await replica(feed, { maxEntries: 4 });
    const b = await replica(feed);
    const s0 = resolveScope({ tenant: 'rep', version: 0 });
    const s1 = resolveScope({ tenant: 'rep', version: 1 });
    const other = resolveScope({ tenant: 'rep', namespace: 'other' });
    const items = [
      chatItem('tagged question', { scope: s0, tags: ['t'] }),
      chatItem('old version question', { scope: s0 }),
      chatItem('deleted question', { scope: s1 }),
      chatItem('cleared question', { scope: other }),
    ];
    for (const x of items) await a.layer.set(x.key, x.entry);
    await settle();
    expect(b.layer.size).toBe(4);
    await a.layer.deleteByTag('t');
    await a.layer.deleteOlderVersions(s1);
    await a.layer.delete(items[2]!.key);
    await settle();
    expect(b.layer.size).toBe(1);
    await a.layer.clear(other);
    await settle();
    expect(b.layer.size).toBe(0);
    // Eviction: A holds 4; the fifth write evicts its least recently used entry, everywhere.
    const more = ['one', 'two', 'three', 'four', 'five'].map((t) => chatItem(`${t} more`, { scope: s1 }));
    for (const x of more) await a.layer.set(x.key, x.entry);
    await settle();
    expect(await b.layer.get(more[0]!.key)).toBeUndefined();
    expect(b.layer.size).toBe(4);
    await Promise.all([a.layer.close(), b.layer.close()]);
  });

  it('applies a replayed feed idempotently (every batch delivered twice changes nothing)', async () => {
    const feed = new MemoryFeed();
    const twice: SemanticFeed = {
      publish: (o, m) => feed.publish(o, m),
      subscribe: (from, sink) => feed.subscribe(from, { apply: (rs) => (sink.apply(rs), sink.apply(rs)), gap: (r) => sink.gap(r) }),
    };
    const a = await replica(feed);
    const b = await replica(twice);
    const xs = ['alpha q', 'beta q', 'gamma q'].map((t) => chatItem(t, { tags: ['g'] }));
    for (const x of xs) await a.layer.set(x.key, x.entry);
    await a.layer.delete(xs[0]!.key);
    const again = chatItem('beta q', { value: 'a newer answer' });
    await a.layer.set(again.key, again.entry);
    await settle();
    expect(b.layer.stats()).toMatchObject({ entries: 2, indexed: 2 });
    expect((await b.layer.get(again.key))?.value).toBe('a newer answer');
    await Promise.all([a.layer.close(), b.layer.close()]);
  });

  it('restarts from its snapshot plus the feed after the snapshot offset: no duplicates, nothing lost', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-rep-'));
    dirs.push(dir);
    const feed = new MemoryFeed();
    const a = await replica(feed);
    const b = await replica(feed, { persistDir: dir });
    const first = ['first one', 'first two'].map((t) => chatItem(t));
    for (const x of first) await a.layer.set(x.key, x.entry);
    await settle();
    await b.layer.close(); // final snapshot, with the offset it reached
    const later = ['later one', 'later two', 'later three'].map((t) => chatItem(t));
    for (const x of later) await a.layer.set(x.key, x.entry);
    await a.layer.delete(first[0]!.key);
    const b2 = await replica(feed, { persistDir: dir });
    await settle();
    expect(b2.layer.size).toBe(a.layer.size);
    for (const x of [first[1]!, ...later]) expect((await b2.layer.search(x.query)).hit?.key.id).toBe(x.key.id);
    expect(await b2.layer.get(first[0]!.key)).toBeUndefined();
    // Nothing re-embedded: the replicated texts came with their vectors (a lookup of one of them
    // finds it in the embedding cache); only the snapshot's entry had to be embedded for its lookup.
    expect(b2.embedder.texts).toBe(1);
    await Promise.all([a.layer.close(), b2.layer.close()]);
  });

  it('rebuilds from L2 when the feed no longer holds its offset (trimmed)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-rep-'));
    dirs.push(dir);
    const feed = new MemoryFeed();
    const l2 = new MemoryLayer();
    const a = await replica(feed);
    const b = await replica(feed, { persistDir: dir });
    const x = chatItem('before the snapshot');
    for (const l of [a.layer, l2]) await l.set(x.key, x.entry);
    await settle();
    await b.layer.close();
    const y = chatItem('after the snapshot');
    for (const l of [a.layer, l2]) await l.set(y.key, y.entry);
    feed.trim(feed.length); // the records b would resume from are gone
    const warnings: string[] = [];
    const b2 = await replica(feed, { persistDir: dir, rebuildFrom: l2, onWarning: (m) => warnings.push(m) });
    await settle();
    expect((await b2.layer.search(y.query)).hit?.key.id).toBe(y.key.id);
    expect(b2.layer.size).toBe(2);
    // After the gap it follows the feed again.
    const z = chatItem('after the gap');
    await a.layer.set(z.key, z.entry);
    await settle();
    expect(await b2.layer.get(z.key)).toBeDefined();
    await Promise.all([a.layer.close(), b2.layer.close()]);
  });

  it('after a gap the index is re-derived from L2: what L2 no longer holds is dropped, what it holds newer replaces ours', async () => {
    const feed = new MemoryFeed();
    const l2 = new MemoryLayer();
    const a = await replica(feed);
    const b = await replica(feed, { rebuildFrom: l2 });
    const kept = chatItem('kept question');
    const gone = chatItem('purged while b was not following', { tags: ['p'] });
    for (const x of [kept, gone]) for (const l of [a.layer, l2]) await l.set(x.key, x.entry);
    await settle();
    expect(b.layer.size).toBe(2);
    // b loses its place (e.g. a Redis restart): meanwhile the entry is purged and the other rewritten.
    let gap!: (resumeFrom: string | undefined) => Promise<void>;
    const lossy: SemanticFeed = { publish: () => undefined, subscribe: async (_from, sink) => ((gap = sink.gap), { close: () => undefined }) };
    const c = await replica(lossy, { rebuildFrom: l2 });
    for (const x of [kept, gone]) await c.layer.set(x.key, x.entry);
    await l2.deleteByTag('p');
    const newer = chatItem('kept question', { value: 'a newer answer' });
    newer.entry.createdAt = kept.entry.createdAt + 1;
    await l2.set(newer.key, newer.entry);
    await gap('42');
    expect(await c.layer.get(gone.key)).toBeUndefined();
    expect((await c.layer.get(kept.key))?.value).toBe('a newer answer');
    expect(c.layer.stats().replication).toMatchObject({ resyncs: 1, resyncDropped: 1, offset: '42' });
    // Without rebuildFrom nothing can be verified: everything from before the gap is dropped.
    const d = await replica(lossy);
    await d.layer.set(kept.key, kept.entry);
    const warnings: string[] = [];
    const e = await replica(lossy, { onWarning: (m) => warnings.push(m) });
    await e.layer.set(kept.key, kept.entry);
    await gap(undefined);
    expect(e.layer.size).toBe(0);
    expect(warnings.join()).toMatch(/rebuildFrom/);
    await Promise.all([a.layer.close(), b.layer.close(), c.layer.close(), d.layer.close(), e.layer.close()]);
  });

  it('refuses malformed mutations and keys that do not belong to their scope, without stopping', async () => {
    const feed = new MemoryFeed();
    const warnings: string[] = [];
    const b = await replica(feed, { onWarning: (m) => warnings.push(m) });
    const x = chatItem('victim tenant question', { scope: resolveScope('victim') });
    const embedder = { id: b.layer.embedder.id, dimensions: b.layer.embedder.dimensions };
    const vector = (await new HashEmbedder(64).embed([x.entry.semantic!.text]))[0]!;
    const at = Date.now();
    const publish = (m: unknown) => feed.publish('intruder', m as SemanticMutation);
    publish({ type: 'put', at, key: { ...x.key, scope: resolveScope('attacker') }, entry: x.entry, vector, embedder });
    publish({ type: 'put', at, key: x.key, entry: { ...x.entry, createdAt: 'yesterday' }, vector, embedder });
    publish({ type: 'nonsense', at });
    publish(null);
    publish({ type: 'put', at, key: x.key, entry: x.entry, vector: vector.map((v) => v * 3), embedder }); // not unit length: exact only
    await settle();
    expect(b.layer.stats()).toMatchObject({ entries: 1, indexed: 0 });
    expect(b.layer.stats().replication?.rejected).toBe(5);
    expect(warnings).toHaveLength(1); // the first refusal is reported, not every one
    publish({ type: 'put', at: at + 1, key: x.key, entry: { ...x.entry, createdAt: x.entry.createdAt + 1 }, vector, embedder });
    await settle();
    expect(b.layer.stats()).toMatchObject({ entries: 1, indexed: 1 });
    await b.layer.close();
  });

  it('an expiry or eviction elsewhere removes that version only; a delete removes what was written before it', async () => {
    const feed = new MemoryFeed();
    const b = await replica(feed);
    const x = chatItem('versioned question');
    await b.layer.set(x.key, x.entry);
    const at = Date.now() + 10;
    feed.publish('other', { type: 'delete', at, key: x.key, reason: 'evicted', createdAt: x.entry.createdAt - 5 });
    await settle();
    expect(await b.layer.get(x.key)).toBeDefined();
    feed.publish('other', { type: 'delete', at, key: x.key, reason: 'evicted', createdAt: x.entry.createdAt });
    await settle();
    expect(await b.layer.get(x.key)).toBeUndefined();
    await b.layer.set(x.key, x.entry);
    feed.publish('other', { type: 'delete', at, key: x.key, reason: 'delete' });
    await settle();
    expect(await b.layer.get(x.key)).toBeUndefined();
    await b.layer.close();
  });

  it('its own deletes are remembered too: a deleted entry that comes back from L2 (restored from an older snapshot) stays out', async () => {
    const l2 = new MemoryLayer();
    const x = chatItem('deleted here, still in an old copy of L2');
    await l2.set(x.key, x.entry);
    const a = await replica(new MemoryFeed(), { rebuildFrom: l2 });
    expect(await a.layer.get(x.key)).toBeDefined();
    await a.layer.delete(x.key);
    await a.layer.rebuildFrom(l2);
    expect(await a.layer.get(x.key)).toBeUndefined();
    // A newer write of the key is not held back.
    const newer = { ...x.entry, createdAt: Date.now() + 1 };
    await l2.set(x.key, newer);
    await a.layer.rebuildFrom(l2);
    expect(await a.layer.get(x.key)).toBeDefined();
    await a.layer.close();
  });

  it('entries imported from rebuildFrom are not published again (every process can read them there)', async () => {
    const feed = new MemoryFeed();
    const l2 = new MemoryLayer();
    for (const t of ['one in l2', 'two in l2', 'three in l2']) {
      const x = chatItem(t);
      await l2.set(x.key, x.entry);
    }
    const b = await replica(feed, { rebuildFrom: l2 });
    expect(b.layer.size).toBe(3);
    await b.layer.rebuildFrom(l2);
    expect(feed.length).toBe(0);
    await b.layer.close();
  });

  it('close() lets the feed send what it still holds', async () => {
    const sent: string[] = [];
    let flushed = 0;
    const feed: SemanticFeed = {
      publish: (_o, m) => void sent.push(m.type),
      subscribe: async () => ({ close: () => undefined }),
      flush: async (ms) => void (flushed = ms),
    };
    const a = await replica(feed, { closeTimeoutMs: 1_234 });
    const x = chatItem('last words');
    await a.layer.set(x.key, x.entry);
    await a.layer.delete(x.key);
    await a.layer.close();
    expect(sent).toEqual(['put', 'delete']);
    expect(flushed).toBe(1_234);
  });

  it('drops a put that happened before a purge it arrives after (the race guarantee across processes)', async () => {
    const feed = new MemoryFeed();
    const b = await replica(feed);
    const x = chatItem('raced question', { tags: ['price'] });
    const embedder = { id: b.layer.embedder.id, dimensions: b.layer.embedder.dimensions };
    const vector = (await new HashEmbedder(64).embed([x.entry.semantic!.text]))[0]!;
    const now = Date.now();
    feed.publish('other-process', { type: 'purge-tag', at: now, tag: 'price' });
    feed.publish('another-process', { type: 'put', at: now + 5, key: x.key, entry: { ...x.entry, createdAt: now - 10 }, vector, embedder });
    await settle();
    expect(await b.layer.get(x.key)).toBeUndefined();
    // A put written after the purge lands.
    feed.publish('another-process', { type: 'put', at: now + 6, key: x.key, entry: { ...x.entry, createdAt: now + 1 }, vector, embedder });
    await settle();
    expect(await b.layer.get(x.key)).toBeDefined();
    expect(b.embedder.texts).toBe(0);
    await b.layer.close();
  });

  it('replicates only the scopes a process accepts, and keeps entries of another embedder for exact lookups only', async () => {
    const feed = new MemoryFeed();
    const a = await replica(feed);
    const b = await replica(feed, { replication: { feed, accept: (s) => s.tenant === 'mine' } });
    const otherEmbedder = new SemanticLayer({ embedder: new HashEmbedder(64, 'another-model'), ...open, replication: { feed } });
    await otherEmbedder.ready();
    const mine = chatItem('my tenant question', { scope: resolveScope('mine') });
    const theirs = chatItem('their tenant question', { scope: resolveScope('theirs') });
    await a.layer.set(mine.key, mine.entry);
    await a.layer.set(theirs.key, theirs.entry);
    await settle();
    expect(await b.layer.get(mine.key)).toBeDefined();
    expect(await b.layer.get(theirs.key)).toBeUndefined();
    expect(otherEmbedder.stats()).toMatchObject({ entries: 2, indexed: 0 });
    await Promise.all([a.layer.close(), b.layer.close(), otherEmbedder.close()]);
  });

  it('publishes nothing it applied from the feed (no echo between processes)', async () => {
    const feed = new MemoryFeed();
    const a = await replica(feed);
    const b = await replica(feed);
    const x = chatItem('echo question');
    await a.layer.set(x.key, x.entry);
    await settle();
    await settle();
    expect(feed.length).toBe(1);
    const sink: FeedSink = { apply: () => undefined, gap: async () => undefined };
    await (await feed.subscribe('0', sink)).close();
    await Promise.all([a.layer.close(), b.layer.close()]);
  });
});
