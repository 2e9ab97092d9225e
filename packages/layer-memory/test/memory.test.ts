import { InvalidOptionError, computeKey, makeKey, resolveScope } from '@strata-cache/core';
import { makeEntry } from '@strata-cache/layer-test-suite';
import { describe, expect, it } from 'vitest';
import type { TagScopeIndex } from '@strata-cache/core/layer-kit';
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
    const index = (layer as unknown as { index: TagScopeIndex }).index;
    expect(index.counts.tags).toBe(10);
    expect(index.inScope(scope)).toHaveLength(10);
    layer.clear();
    expect(index.counts).toEqual({ tags: 0, scopes: 0 });
    expect(index.size).toBe(0);
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

  it('freeze: false hands out a fresh copy on every get, so mutating one changes nothing stored', () => {
    const layer = new MemoryLayer({ freeze: false });
    const entry = makeEntry({ choices: [{ text: 'original' }] }, { ttlMs: 60_000 });
    layer.set(k(1), entry);
    (entry.value as { choices: Array<{ text: string }> }).choices[0]!.text = 'changed by the writer';
    const got = layer.get(k(1))!.value as { choices: Array<{ text: string }> };
    got.choices[0]!.text = 'changed by a reader';
    expect((layer.get(k(1))!.value as { choices: Array<{ text: string }> }).choices[0]!.text).toBe('original');
  });

  it('does not freeze the object it was given (a miss caller keeps a mutable answer)', () => {
    const layer = new MemoryLayer();
    const value = { text: 'answer' };
    layer.set(k(1), makeEntry(value, { ttlMs: 60_000 }));
    expect(Object.isFrozen(value)).toBe(false);
    expect(Object.isFrozen(layer.get(k(1))!.value)).toBe(true);
  });

  it('clear() counts what it removed', () => {
    const layer = new MemoryLayer();
    for (let i = 0; i < 3; i++) layer.set(k(i), makeEntry(i, { ttlMs: 60_000 }));
    expect(layer.clear(scope)).toBe(3);
    layer.set(k(1), makeEntry(1, { ttlMs: 60_000 }));
    expect(layer.clear()).toBe(1);
  });

  it("a hand-made key reusing another scope's hash never reads, or deletes, that entry", () => {
    const layer = new MemoryLayer();
    const real = k(1);
    layer.set(real, makeEntry('acme answer', { ttlMs: 60_000 }));
    const forged = makeKey(resolveScope('globex'), real.profile, real.hash);
    expect(layer.get(forged)).toBeUndefined();
    expect(layer.delete(forged)).toBe(false);
    expect(layer.get(real)?.value).toBe('acme answer');
  });

  it('rejects bad options', () => {
    expect(() => new MemoryLayer({ maxEntries: 0 })).toThrow(InvalidOptionError);
    expect(() => new MemoryLayer({ maxBytes: -5 })).toThrow(/maxBytes/);
    expect(() => new MemoryLayer({ max: 5 } as never)).toThrow(/unknown option "max"/);
    expect(() => new MemoryLayer({ maxTtlMs: Number.NaN })).toThrow(/maxTtlMs/);
  });
});
