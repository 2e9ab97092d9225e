import type { Embedder } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { CachingEmbedder, SemanticLayer } from '../src/index.js';
import { HashEmbedder, SlowEmbedder, chatItem } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An embedder whose calls wait for `release()`; records every call and the signal it got. */
class GatedEmbedder implements Embedder {
  readonly inner = new HashEmbedder(32);
  readonly id = this.inner.id;
  readonly dimensions = this.inner.dimensions;
  calls: Array<{ texts: string[]; signal: AbortSignal | undefined }> = [];
  private gates: Array<() => void> = [];
  open = false;
  async embed(texts: readonly string[], options: { signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    this.calls.push({ texts: [...texts], signal: options.signal });
    if (!this.open) await new Promise<void>((r) => this.gates.push(r));
    return this.inner.embed(texts);
  }
  release(): void {
    this.open = true;
    for (const g of this.gates.splice(0)) g();
  }
  get texts(): string[] {
    return this.calls.flatMap((c) => c.texts);
  }
}

const open = { threshold: 0.5, guards: [], selector: false as const };

/** A layer with one stored entry per system prompt in `systems`, so searches there need an embedding. */
async function populated(embedder: Embedder, systems: string[], options: Partial<ConstructorParameters<typeof SemanticLayer>[0]> = {}) {
  const layer = new SemanticLayer({ embedder, ...open, ...options });
  await layer.ready();
  await Promise.all(systems.map((s) => chatItem('stored question', { system: s })).map((x) => layer.set(x.key, x.entry)));
  return layer;
}

describe('SemanticLayer: lookups never queue behind the embedder', () => {
  it('drops queued lookups whose caller gave up (abort signal): their texts are never embedded', async () => {
    const emb = new GatedEmbedder();
    emb.open = true;
    const layer = await populated(emb, ['s'], { embedding: { concurrency: 1 } });
    emb.open = false;
    const first = layer.search(chatItem('first lookup', { system: 's' }).query); // takes the only call slot
    await sleep(5);
    const controllers = [0, 1, 2, 3, 4].map(() => new AbortController());
    const rest = controllers.map((c, i) => layer.search(chatItem(`queued lookup ${i}`, { system: 's' }).query, { signal: c.signal }));
    await sleep(5);
    for (const c of controllers.slice(0, 4)) c.abort();
    const abandoned = await Promise.all(rest.slice(0, 4));
    expect(abandoned.every((r) => r.hit === undefined)).toBe(true);
    emb.release();
    await Promise.all([first, rest[4]]);
    expect(emb.texts).not.toContain('queued lookup 0');
    expect(emb.texts).not.toContain('queued lookup 3');
    expect(emb.texts).toContain('queued lookup 4');
    expect(layer.stats()).toMatchObject({ cancelledLookups: 4, queue: { cancelled: 4, queued: 0 } });
    await layer.close();
  });

  it('drops a queued lookup whose deadline passed, and aborts a call every caller left', async () => {
    const emb = new GatedEmbedder();
    emb.open = true;
    const layer = await populated(emb, ['s'], { embedding: { concurrency: 1 } });
    emb.open = false;
    const ac = new AbortController();
    const first = layer.search(chatItem('running lookup', { system: 's' }).query, { signal: ac.signal });
    await sleep(5);
    // Nothing measured at this text size yet is fine: the deadline still bounds the wait in the queue.
    const late = layer.search(chatItem('deadline lookup', { system: 's' }).query, { deadline: Date.now() + 20 });
    expect((await late).hit).toBeUndefined();
    ac.abort();
    expect((await first).hit).toBeUndefined();
    expect(emb.calls.at(-1)!.signal?.aborted).toBe(true); // the running call's only caller left
    emb.release();
    await layer.embeddingIdle();
    expect(emb.texts).not.toContain('deadline lookup');
    expect(layer.stats().queue.expired + layer.stats().queue.skipped.deadline).toBe(1);
    await layer.close();
  });

  it('admission control: a lookup the embedder cannot answer before its deadline skips at once, without reaching the embedder', async () => {
    const emb = new SlowEmbedder(40, 32);
    const layer = await populated(emb, ['s'], { embedding: { concurrency: 1 } });
    // Teach the cost model what a call costs.
    for (let i = 0; i < 4; i++) await layer.search(chatItem(`warm up ${i}`, { system: 's' }).query);
    const sent = emb.texts.length;
    const deadline = Date.now() + 60;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => layer.search(chatItem(`burst ${i}`, { system: 's' }).query, { deadline })));
    expect(results.every((r) => r.hit === undefined || r.hit !== undefined)).toBe(true);
    const s = layer.stats();
    // One call (40 ms) fits before the deadline, a second does not: at most two were admitted.
    expect(s.skippedOverload).toBeGreaterThanOrEqual(18);
    expect(emb.texts.length - sent).toBeLessThanOrEqual(2);
    await layer.embeddingIdle();
    expect(layer.stats().queue.queued).toBe(0);
    await layer.close();
  });

  it('tries an idle embedder again once its cost model is stale (a slow spell does not shut L3 off for good)', async () => {
    const emb = new SlowEmbedder(80, 32);
    const layer = await populated(emb, ['s'], { embedding: { concurrency: 1 } });
    for (let i = 0; i < 3; i++) await layer.search(chatItem(`slow ${i}`, { system: 's' }).query);
    const tight = () => layer.search(chatItem(`tight ${Math.random()}`, { system: 's' }).query, { deadline: Date.now() + 30 });
    await tight(); // 80 ms calls cannot answer within 30 ms: skipped at once
    expect(layer.stats().skippedOverload).toBe(1);
    await sleep(2_100); // the model is now stale and the embedder idle
    const sent = emb.texts.length;
    await tight();
    expect(emb.texts.length).toBe(sent + 1);
    await layer.close();
  });

  it('bounds the queue: lookups beyond embedding.maxQueue skip at once', async () => {
    const emb = new GatedEmbedder();
    emb.open = true;
    const layer = await populated(emb, ['s'], { embedding: { concurrency: 1, maxQueue: 3, maxQueueDelayMs: 1e9 } });
    emb.open = false;
    const deadline = Date.now() + 60_000; // far: only the queue bound decides
    const running = layer.search(chatItem('running', { system: 's' }).query, { deadline });
    await sleep(5);
    const queued = Array.from({ length: 6 }, (_, i) => layer.search(chatItem(`q ${i}`, { system: 's' }).query, { deadline }));
    await sleep(5);
    expect(layer.stats().queue).toMatchObject({ queued: 3, skipped: { 'queue-full': 3 } });
    emb.release();
    await Promise.all([running, ...queued]);
    await layer.close();
  });

  it('puts lookups before writes, and a write with a deadline it cannot meet is kept for exact lookups only', async () => {
    const emb = new GatedEmbedder();
    emb.open = true;
    const layer = await populated(emb, ['s'], { embedding: { concurrency: 1, maxBatch: 1 } });
    emb.open = false;
    const running = layer.search(chatItem('running', { system: 's' }).query);
    await sleep(5);
    // Writes in another partition than the lookup's (a lookup waits for writes of its own partition).
    const w = chatItem('a write without deadline', { system: 'w' });
    const writing = layer.set(w.key, w.entry);
    const l = layer.search(chatItem('a later lookup', { system: 'other' }).query); // empty partition: no embedding
    const l2 = layer.search(chatItem('a later lookup', { system: 's' }).query);
    const late = chatItem('a write that cannot make it', { system: 'w' });
    const lateWrite = layer.set(late.key, late.entry, { deadline: Date.now() + 15 });
    await sleep(30);
    emb.release();
    await Promise.all([running, writing, l, l2, lateWrite]);
    const order = emb.texts.slice(-3);
    expect(order[0]).toBe('running');
    expect(order[1]).toBe('a later lookup');
    expect(order[2]).toBe('a write without deadline');
    expect(emb.texts).not.toContain('a write that cannot make it');
    expect((await layer.get(late.key))?.value).toBe(late.entry.value); // stored, exact only
    expect(layer.stats().writesNotIndexed).toBe(1);
    await layer.close();
  });

  it('close() waits for writes still embedding (up to closeTimeoutMs)', async () => {
    const emb = new SlowEmbedder(30, 32);
    const layer = new SemanticLayer({ embedder: emb, ...open });
    await layer.ready();
    const a = chatItem('written just before close');
    let landed = false;
    void layer.set(a.key, a.entry).then(() => (landed = true));
    await layer.close();
    expect(landed).toBe(true);
  });
});

describe('CachingEmbedder', () => {
  it('embeds a text once: later calls hit the cache, concurrent ones share the running call', async () => {
    const inner = new HashEmbedder(16);
    const c = new CachingEmbedder(inner, { size: 10 });
    const [a, b] = await Promise.all([c.embed(['x', 'y', 'x']), c.embed(['y'])]);
    expect(inner.calls).toBe(1);
    expect(inner.texts).toBe(2);
    expect(Array.from(a[0]!)).toEqual(Array.from(a[2]!));
    expect(Array.from(b[0]!)).toEqual(Array.from(a[1]!));
    await c.embed(['x']);
    expect(inner.calls).toBe(1);
    expect(c.stats).toMatchObject({ size: 2, hits: 1, joined: 1, embedded: 2 });
  });

  it("passes the inner embedder's represents() through, and has none when the inner has none", async () => {
    const latin = Object.assign(new HashEmbedder(16), { represents: (t: string) => !/[^ -~]/.test(t) });
    const c = new CachingEmbedder(latin);
    expect(c.represents?.('hello')).toBe(true);
    expect(c.represents?.('привет')).toBe(false);
    // As the layer's embedder: the decorator keeps the check in force.
    const layer = new SemanticLayer({ embedder: c, guards: [], selector: false });
    expect(layer.embedder.represents?.('привет')).toBe(false);
    expect(new CachingEmbedder(new HashEmbedder(16)).represents).toBeUndefined();
    await layer.close();
  });

  it('a caller that gives up leaves at once; the inner call is aborted only when every caller left', async () => {
    const inner = new GatedEmbedder();
    const c = new CachingEmbedder(inner);
    const one = new AbortController();
    const two = new AbortController();
    const p1 = c.embed(['shared'], { signal: one.signal });
    const p2 = c.embed(['shared'], { signal: two.signal });
    await sleep(1);
    one.abort();
    await expect(p1).rejects.toMatchObject({ name: 'AbortError' });
    expect(inner.calls[0]!.signal?.aborted).toBe(false);
    two.abort();
    await expect(p2).rejects.toMatchObject({ name: 'AbortError' });
    expect(inner.calls[0]!.signal?.aborted).toBe(true);
    inner.release();
  });

  it('keeps its own copy of a vector that is a view into a batch buffer, and can point a slot at a vector held elsewhere', async () => {
    const batchy: Embedder = {
      id: 'views',
      dimensions: 4,
      embed: async (texts) => {
        const buf = new Float32Array(texts.length * 4).fill(0.5);
        return texts.map((_, i) => buf.subarray(i * 4, i * 4 + 4));
      },
    };
    const c = new CachingEmbedder(batchy);
    const [v] = await c.embed(['a', 'b']);
    expect(v!.buffer.byteLength).toBe(16);
    const held = Float32Array.from([1, 0, 0, 0]);
    let gone = false;
    const ref = { vector: () => (gone ? undefined : held) };
    c.alias('a', ref);
    expect(c.peek('a')).toBe(held);
    gone = true;
    expect(c.peek('a')).toBeUndefined(); // the slot is dropped with what it pointed at
    c.alias('b', ref);
    c.forget('b', ref);
    expect(c.stats.size).toBe(0);
  });
});
