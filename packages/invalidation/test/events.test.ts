import { InvalidOptionError, loaded } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { createInvalidationEngine } from '../src/index.js';
import { chat, makeCache } from './helpers.js';

describe('event rules: addEventRule / applyEvent (on / emit are deprecated aliases)', () => {
  it('addEventRule registers a rule and applyEvent runs its purges', async () => {
    const { cache, memory } = makeCache();
    const engine = createInvalidationEngine({ cache, events: { product_updated: ['id'] } });
    engine.addEventRule('product_updated', ['product:{id}']);
    await cache.getOrLoad(chat('product 7'), () => loaded('a', { tags: ['product:7'] }));
    await cache.getOrLoad(chat('product 8'), () => loaded('b', { tags: ['product:8'] }));
    const audit = await engine.applyEvent('product_updated', { id: 7 });
    expect(audit).toMatchObject({ source: 'event', event: 'product_updated', total: 1 });
    expect(memory.size).toBe(1);
    await expect(engine.applyEvent('product_deleted', { id: 1 })).rejects.toThrow(/applyEvent\("product_deleted"\): no rule is registered/);
    expect(() => engine.addEventRule('nope', ['x'])).toThrow(InvalidOptionError);
  });

  it('the deprecated names behave exactly like the new ones', async () => {
    const { cache, memory } = makeCache();
    const engine = createInvalidationEngine({ cache });
    expect(engine.on('repriced', ({ sku }) => ['sku:' + String(sku)])).toBe(engine);
    await cache.getOrLoad(chat('sku 1'), () => loaded('a', { tags: ['sku:1'] }));
    expect((await engine.emit('repriced', { sku: 1 })).total).toBe(1);
    expect(memory.size).toBe(0);
  });
});
