import { MultiLayerCache, loaded } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { describe, expect, it } from 'vitest';
import { createInvalidationEngine, onEvent } from '../src/index.js';
import { chat } from './helpers.js';
import { SlowSharedLayer, sleep } from './slow-layer.js';

describe('a purge while the shared layer is down is never silently done', () => {
  it('reports the layer as unreached and pending, never serves the purged answer (long after the race window), and is completed once the layer is back', async () => {
    const memory = new MemoryLayer({ freeze: false });
    const shared = new SlowSharedLayer();
    const cache = new MultiLayerCache({ layers: [memory, { layer: shared, budgetMs: 100 }], defaultTtlMs: null });
    cache.on('error', () => undefined);
    const engine = createInvalidationEngine({ cache, raceWindowMs: 100, rules: [onEvent('product_updated', ['product:{id}'])] });
    await cache.getOrLoad(chat('product 3 price?'), () => loaded('$10 (old)', { tags: ['product:3'] }));
    await cache.flush();
    shared.down = true;
    const audit = await engine.applyEvent('product_updated', { id: 3 });
    expect(audit).toMatchObject({ unreached: ['shared'], pending: true, durable: false, layers: { memory: 1 }, total: 1 });
    expect(audit.layers).not.toHaveProperty('shared');
    const events: string[] = [];
    engine.onInvalidate((a) => events.push(a.source));
    shared.down = false; // back, with the answer still in it
    expect(shared.inner.size).toBe(1);
    for (const delay of [0, 150, 300]) {
      await sleep(delay);
      memory.clear();
      expect(await cache.lookup(chat('product 3 price?'))).toBeUndefined();
    }
    await cache.flush();
    expect(shared.inner.size).toBe(0);
    expect(cache.invalidationStatus().pending).toEqual({ watermarks: 0, messages: 0, layerPurges: 0 });
    expect((await cache.getOrLoad(chat('product 3 price?'), () => loaded('$12', { tags: ['product:3'] }))).value).toBe('$12');
    expect((await cache.lookup(chat('product 3 price?')))?.entry.value).toBe('$12');
    expect(events).toEqual([]); // the retry is core's: no second audit
    await engine.close();
    await cache.close();
  });
});
