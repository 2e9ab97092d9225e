import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveScope } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { type FeedSink, MemoryFeed, type SemanticFeed, SemanticLayer, type SemanticLayerOptions } from '../src/index.js';
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
  it("a write in one layer is a semantic hit in another, which never embeds the written text", async () => {
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
