import { describe, expect, it } from 'vitest';
import { type CacheKey, type LoadCoordinator, type LoadTicket, InvalidOptionError, MultiLayerCache } from '../src/index.js';
import { TestLayer } from './helpers.js';

const req = (content: string) => ({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content }] });

/** A scripted coordinator: records calls and answers with what the test sets. */
class ScriptedCoordinator implements LoadCoordinator {
  begun: CacheKey[] = [];
  done: Array<{ stored: boolean; layerHadEntry: boolean }> = [];
  answer: 'load' | 'hit' | 'reject' = 'load';
  constructor(private readonly shared: TestLayer) {}
  async begin(key: CacheKey): Promise<LoadTicket> {
    this.begun.push(key);
    if (this.answer === 'reject') throw new Error('lock service down');
    if (this.answer === 'hit') {
      return { kind: 'hit', layer: this.shared.name, entry: { value: 'from another process', createdAt: Date.now(), ttlMs: 60_000, tags: [] } };
    }
    return {
      kind: 'load',
      done: async ({ stored }) => {
        this.done.push({ stored, layerHadEntry: this.shared.map.has(key.id) });
      },
    };
  }
}

describe('MultiLayerCache coordinator (cross-process coalescing seam)', () => {
  it('load ticket: calls the loader once and releases only after the write has landed', async () => {
    const l1 = new TestLayer('l1');
    const l2 = new TestLayer('l2');
    l2.mode = 'slow';
    l2.slowMs = 20;
    const coordinator = new ScriptedCoordinator(l2);
    const cache = new MultiLayerCache({ layers: [l1, l2], coordinator, budgetMs: 1_000 });
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        cache.getOrLoad(req('a'), async () => {
          await new Promise((r) => setTimeout(r, 50));
          return 'loaded';
        }),
      ),
    );
    await cache.flush();
    expect(results.map((r) => r.value)).toEqual(Array(5).fill('loaded'));
    expect(coordinator.begun).toHaveLength(1); // in-process coalescing first
    expect(coordinator.done).toEqual([{ stored: true, layerHadEntry: true }]);
  });

  it("hit ticket: returns the other process's entry, no loader call, backfills the layers above", async () => {
    const l1 = new TestLayer('l1');
    const l2 = new TestLayer('l2');
    const coordinator = new ScriptedCoordinator(l2);
    coordinator.answer = 'hit';
    const cache = new MultiLayerCache({ layers: [l1, l2], coordinator });
    let calls = 0;
    const r = await cache.getOrLoad(req('b'), async () => `own ${++calls}`);
    await cache.flush();
    expect(r).toMatchObject({ status: 'hit', value: 'from another process', layer: 'l2', coalesced: true });
    expect(calls).toBe(0);
    expect(l1.map.size).toBe(1);
    expect(l2.map.size).toBe(0);
    expect(cache.stats()).toMatchObject({ hits: 1, coalesced: 1, loaderCalls: 0 });
  });

  it('a failing coordinator is an error event, and the request still loads', async () => {
    const l1 = new TestLayer('l1');
    const coordinator = new ScriptedCoordinator(l1);
    coordinator.answer = 'reject';
    const cache = new MultiLayerCache({ layers: [l1], coordinator });
    const errors: unknown[] = [];
    cache.on('error', (e) => errors.push(e));
    const r = await cache.getOrLoad(req('c'), async () => 'own');
    expect(r).toMatchObject({ status: 'miss', value: 'own' });
    expect(errors).toHaveLength(1);
  });

  it('releases with stored:false when the loader throws, and is not consulted for noStore', async () => {
    const l1 = new TestLayer('l1');
    const coordinator = new ScriptedCoordinator(l1);
    const cache = new MultiLayerCache({ layers: [l1], coordinator });
    await expect(cache.getOrLoad(req('d'), async () => Promise.reject(new Error('upstream 500')))).rejects.toThrow('upstream 500');
    await cache.flush();
    expect(coordinator.done).toEqual([{ stored: false, layerHadEntry: false }]);
    await cache.getOrLoad(req('e'), async () => 'x', { noStore: true });
    expect(coordinator.begun).toHaveLength(1);
  });

  it('rejects a coordinator without begin()', () => {
    expect(() => new MultiLayerCache({ layers: [new TestLayer('l1')], coordinator: {} as LoadCoordinator })).toThrow(InvalidOptionError);
  });
});
