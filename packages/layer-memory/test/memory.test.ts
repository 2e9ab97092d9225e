import { InvalidOptionError, computeKey, resolveScope } from '@strata-cache/core';
import { makeEntry } from '@strata-cache/layer-test-suite';
import { describe, expect, it } from 'vitest';
import { MemoryLayer } from '../src/index.js';

const scope = resolveScope('acme');
const k = (i: number) => computeKey({ q: i }, scope);

describe('MemoryLayer', () => {
  it('never holds more than maxEntries', () => {
    const layer = new MemoryLayer({ maxEntries: 100 });
    for (let i = 0; i < 1_000; i++) layer.set(k(i), makeEntry(i, { ttlMs: 60_000 }));
    expect(layer.size).toBe(100);
    expect(layer.get(k(999))?.value).toBe(999);
    expect(layer.get(k(0))).toBeUndefined();
  });

  it('never holds more than maxBytes, and refuses an entry larger than the whole budget', () => {
    const layer = new MemoryLayer({ maxBytes: 200_000 });
    for (let i = 0; i < 100; i++) layer.set(k(i), makeEntry('x'.repeat(10_000), { ttlMs: 60_000 }));
    expect(layer.size).toBeLessThanOrEqual(10);
    layer.set(k(1_000), makeEntry('y'.repeat(200_000), { ttlMs: 60_000 }));
    expect(layer.get(k(1_000))).toBeUndefined();
  });

  it('tag and scope indexes do not outlive their entries', () => {
    const layer = new MemoryLayer({ maxEntries: 10 });
    for (let i = 0; i < 500; i++) layer.set(k(i), makeEntry(i, { ttlMs: 60_000, tags: [`t${i}`] }));
    const internals = layer as unknown as { tagIndex: Map<string, Set<string>>; scopeIndex: Map<string, Set<string>> };
    expect(internals.tagIndex.size).toBe(10);
    expect([...internals.scopeIndex.values()][0]!.size).toBe(10);
    layer.clear();
    expect(internals.tagIndex.size).toBe(0);
    expect(internals.scopeIndex.size).toBe(0);
  });

  it('re-setting a key with other tags re-indexes it', () => {
    const layer = new MemoryLayer();
    layer.set(k(1), makeEntry('a', { ttlMs: 60_000, tags: ['old'] }));
    layer.set(k(1), makeEntry('b', { ttlMs: 60_000, tags: ['new'] }));
    expect(layer.deleteByTag('old')).toBe(0);
    expect(layer.get(k(1))?.value).toBe('b');
    expect(layer.deleteByTag('new')).toBe(1);
  });

  it('freezes stored values so a caller cannot corrupt the cache for others', () => {
    const layer = new MemoryLayer();
    layer.set(k(1), makeEntry({ choices: [{ text: 'original' }] }, { ttlMs: 60_000 }));
    const got = layer.get(k(1))!.value as { choices: Array<{ text: string }> };
    expect(() => {
      got.choices[0]!.text = 'mutated';
    }).toThrow(TypeError);
    expect((layer.get(k(1))!.value as { choices: Array<{ text: string }> }).choices[0]!.text).toBe('original');
  });

  it('does not store an entry that is already expired', () => {
    const layer = new MemoryLayer();
    layer.set(k(1), makeEntry('late', { createdAt: Date.now() - 10_000, ttlMs: 5_000 }));
    expect(layer.size).toBe(0);
  });

  it('rejects bad options', () => {
    expect(() => new MemoryLayer({ maxEntries: 0 })).toThrow(InvalidOptionError);
    expect(() => new MemoryLayer({ maxBytes: -5 })).toThrow(/maxBytes/);
    expect(() => new MemoryLayer({ max: 5 } as never)).toThrow(/unknown option "max"/);
  });
});
