import {
  type CacheEntry,
  type CacheKey,
  type Layer,
  LAYER_SPECIFICATION_VERSION,
  MultiLayerCache,
  type Scope,
  computeKey,
  isExpired,
  resolveScope,
} from '@strata-cache/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

export interface LayerComplianceOptions {
  /** Shown in the describe block. */
  name: string;
  /** Builds the layer under test (once for the suite). */
  create: () => Layer | Promise<Layer>;
  /** Tears it down (the suite calls `layer.close()` first when it has one). */
  destroy?: (layer: Layer) => void | Promise<void>;
  /**
   * For layers that can become unavailable (network, process): make it unavailable, and
   * restore it. The suite checks that a request still succeeds within the budget.
   */
  unavailable?: {
    make: (layer: Layer) => void | Promise<void>;
    restore: (layer: Layer) => void | Promise<void>;
    /** Budget given to the layer in MultiLayerCache. @default 50 */
    budgetMs?: number;
  };
  /** Shortest TTL the layer honours reliably, ms. @default 200 */
  ttlMs?: number;
  /** Timeout for each test, ms. @default 20_000 */
  testTimeoutMs?: number;
}

let counter = 0;
/** A scope no other test (or other run against a shared server) uses. */
export function uniqueScope(label = 'suite'): Scope {
  counter++;
  return resolveScope({ tenant: `${label}-${process.pid}-${Date.now().toString(36)}-${counter}`, namespace: 'compliance' });
}

export function makeEntry<V>(value: V, extra: Partial<CacheEntry<V>> = {}): CacheEntry<V> {
  return { value, createdAt: Date.now(), tags: [], ...extra };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A value with the awkward parts of real responses: unicode, escapes, floats, nesting. */
export function trickyValue(): unknown {
  return {
    id: 'chatcmpl-Δ-✓',
    text: 'naïve café 日本語 🚀 \u0000 \u2028 "quoted" \\ back\nslash \t tab',
    lone: '\ud83d',
    numbers: [0, 1, -1, 0.1 + 0.2, 1e21, 1e-7, Number.MAX_SAFE_INTEGER, -123.456],
    flags: [true, false, null],
    nested: { a: [{ b: [[], {}] }], 'key with spaces': 'v', '': 'empty key' },
  };
}

/**
 * The compliance suite every Strata layer runs. Call it at the top level of a vitest file:
 *
 * ```ts
 * runLayerComplianceSuite({ name: 'memory', create: () => new MemoryLayer() });
 * ```
 */
export function runLayerComplianceSuite(options: LayerComplianceOptions): void {
  const ttl = options.ttlMs ?? 200;
  const timeout = options.testTimeoutMs ?? 20_000;

  describe(`layer compliance: ${options.name}`, () => {
    let layer: Layer;
    const key = (request: unknown, scope: Scope = uniqueScope()): CacheKey => computeKey(request, scope);

    beforeAll(async () => {
      layer = await options.create();
    }, timeout);

    afterAll(async () => {
      if (!layer) return;
      await layer.close?.();
      await options.destroy?.(layer);
    }, timeout);

    it('declares the v1 contract and its capabilities', () => {
      expect(layer.specificationVersion).toBe(LAYER_SPECIFICATION_VERSION);
      expect(typeof layer.name).toBe('string');
      for (const cap of ['nativeTtl', 'batch', 'semantic', 'shared', 'tags', 'remote'] as const) {
        expect(typeof layer.capabilities[cap]).toBe('boolean');
      }
      if (layer.capabilities.tags) expect(typeof layer.deleteByTag).toBe('function');
      if (layer.capabilities.semantic) expect(typeof layer.search).toBe('function');
      if (layer.capabilities.batch) {
        expect(typeof layer.getMany).toBe('function');
        expect(typeof layer.setMany).toBe('function');
      }
    });

    it('misses an unknown key', async () => {
      expect(await layer.get(key({ q: 'never stored' }))).toBeUndefined();
    }, timeout);

    it('round-trips an entry bit-exactly (unicode, escapes, floats, nesting, chunks, usage)', async () => {
      const k = key({ q: 'roundtrip' });
      const entry = makeEntry(trickyValue(), {
        ttlMs: 60_000,
        tags: ['topic:a', 'tag with spaces', 'ünï'],
        model: 'gpt-4o-mini',
        usage: { inputTokens: 12, outputTokens: 34, cachedInputTokens: 2 },
        chunks: [{ delta: 'a' }, { delta: '🚀' }, { done: true }],
        meta: { provider: 'openai' },
        semantic: { partition: 'p', text: 'what is the capital of France?' },
      });
      const before = JSON.stringify(entry);
      await layer.set(k, entry);
      const got = await layer.get(k);
      expect(got).toEqual(entry);
      expect(JSON.stringify(got)).toBe(before);
    }, timeout);

    it('overwrites an entry', async () => {
      const k = key({ q: 'overwrite' });
      await layer.set(k, makeEntry('first', { ttlMs: 60_000 }));
      await layer.set(k, makeEntry('second', { ttlMs: 60_000 }));
      expect((await layer.get(k))?.value).toBe('second');
    }, timeout);

    it('deletes an entry and reports whether it existed', async () => {
      const k = key({ q: 'delete' });
      await layer.set(k, makeEntry('x', { ttlMs: 60_000 }));
      expect(await layer.delete(k)).toBe(true);
      expect(await layer.get(k)).toBeUndefined();
      expect(await layer.delete(k)).toBe(false);
    }, timeout);

    it('expires entries after their TTL', async () => {
      const k = key({ q: 'ttl' });
      await layer.set(k, makeEntry('short-lived', { ttlMs: ttl }));
      expect((await layer.get(k))?.value).toBe('short-lived');
      await sleep(ttl * 2 + 100);
      const got = await layer.get(k);
      // A layer may hand back an expired entry (core re-checks), but never a live-looking one.
      expect(got === undefined || isExpired(got, Date.now())).toBe(true);
    }, timeout);

    it('never serves an expired entry through MultiLayerCache', async () => {
      const scope = uniqueScope();
      const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 2_000 }], policy: 'always', scope });
      let calls = 0;
      const load = async () => `v${++calls}`;
      await cache.getOrLoad({ q: 'ttl-through-core' }, load, { ttlMs: ttl });
      await cache.flush();
      expect((await cache.getOrLoad({ q: 'ttl-through-core' }, load)).status).toBe('hit');
      await sleep(ttl * 2 + 100);
      const r = await cache.getOrLoad({ q: 'ttl-through-core' }, load);
      expect(r.status).toBe('miss');
      expect(r.value).toBe('v2');
      await cache.flush();
    }, timeout);

    it('keeps scopes apart: same request, different tenant or namespace never shares an entry', async () => {
      const request = { model: 'm', messages: [{ role: 'user', content: 'same prompt' }] };
      const a = uniqueScope('tenant-a');
      const b: Scope = { ...uniqueScope('tenant-b') };
      const sameTenantOtherNs: Scope = { ...a, namespace: 'other' };
      const ka = key(request, a);
      await layer.set(ka, makeEntry('answer for A', { ttlMs: 60_000 }));
      expect(await layer.get(key(request, b))).toBeUndefined();
      expect(await layer.get(key(request, sameTenantOtherNs))).toBeUndefined();
      expect(await layer.get(key(request, { ...a, version: a.version + 1 }))).toBeUndefined();
      expect((await layer.get(ka))?.value).toBe('answer for A');
    }, timeout);

    it('clears one scope without touching another', async () => {
      const a = uniqueScope('clear-a');
      const b = uniqueScope('clear-b');
      await layer.set(key({ q: 1 }, a), makeEntry('a1', { ttlMs: 60_000 }));
      await layer.set(key({ q: 2 }, a), makeEntry('a2', { ttlMs: 60_000 }));
      await layer.set(key({ q: 1 }, b), makeEntry('b1', { ttlMs: 60_000 }));
      await layer.clear(a);
      expect(await layer.get(key({ q: 1 }, a))).toBeUndefined();
      expect(await layer.get(key({ q: 2 }, a))).toBeUndefined();
      expect((await layer.get(key({ q: 1 }, b)))?.value).toBe('b1');
    }, timeout);

    it('round-trips a 1 MB value', async () => {
      const k = key({ q: 'large' });
      const big = 'é🚀x'.repeat(Math.ceil((1024 * 1024) / 4));
      const entry = makeEntry({ big, tail: 'end' }, { ttlMs: 60_000 });
      await layer.set(k, entry);
      const got = await layer.get(k);
      expect(got?.value).toEqual({ big, tail: 'end' });
    }, timeout);

    it('survives concurrent writers: distinct keys all land, one key ends with one intact value', async () => {
      const scope = uniqueScope('concurrent');
      const distinct = Array.from({ length: 50 }, (_, i) => key({ q: 'distinct', i }, scope));
      await Promise.all(distinct.map((k, i) => layer.set(k, makeEntry({ i, body: 'x'.repeat(i * 100) }, { ttlMs: 60_000 }))));
      const got = await Promise.all(distinct.map((k) => layer.get(k)));
      got.forEach((e, i) => expect(e?.value).toEqual({ i, body: 'x'.repeat(i * 100) }));

      const same = key({ q: 'same' }, scope);
      const values = Array.from({ length: 30 }, (_, i) => ({ writer: i, body: String(i).repeat(1000) }));
      await Promise.all(values.map((v) => layer.set(same, makeEntry(v, { ttlMs: 60_000 }))));
      const final = (await layer.get(same))?.value;
      expect(values).toContainEqual(final);
    }, timeout);

    it('serves reads and writes through MultiLayerCache (miss, then hit from this layer)', async () => {
      const scope = uniqueScope();
      const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 2_000 }], policy: 'always', scope });
      let calls = 0;
      const r1 = await cache.getOrLoad({ q: 'through-core' }, async () => ({ answer: ++calls }));
      await cache.flush();
      const r2 = await cache.getOrLoad({ q: 'through-core' }, async () => ({ answer: ++calls }));
      expect(r1.status).toBe('miss');
      expect(r2.status).toBe('hit');
      expect(r2.layer).toBe(layer.name);
      expect(r2.value).toEqual({ answer: 1 });
      expect(calls).toBe(1);
    }, timeout);

    it('deletes by tag, optionally within one scope (when it declares tags)', async () => {
      if (!layer.capabilities.tags || !layer.deleteByTag) return;
      const a = uniqueScope('tag-a');
      const b = uniqueScope('tag-b');
      const tag = `topic:pricing-${Date.now()}`;
      await layer.set(key({ q: 1 }, a), makeEntry('tagged a', { ttlMs: 60_000, tags: [tag] }));
      await layer.set(key({ q: 2 }, a), makeEntry('untagged a', { ttlMs: 60_000, tags: ['other'] }));
      await layer.set(key({ q: 1 }, b), makeEntry('tagged b', { ttlMs: 60_000, tags: [tag] }));
      expect(await layer.deleteByTag(tag, a)).toBe(1);
      expect(await layer.get(key({ q: 1 }, a))).toBeUndefined();
      expect((await layer.get(key({ q: 2 }, a)))?.value).toBe('untagged a');
      expect((await layer.get(key({ q: 1 }, b)))?.value).toBe('tagged b');
      expect(await layer.deleteByTag(tag)).toBe(1);
      expect(await layer.get(key({ q: 1 }, b))).toBeUndefined();
    }, timeout);

    it('drops older scope versions (when it implements deleteOlderVersions)', async () => {
      if (!layer.deleteOlderVersions) return;
      const v0 = uniqueScope('versions');
      const v1: Scope = { ...v0, version: 1 };
      await layer.set(key({ q: 1 }, v0), makeEntry('old', { ttlMs: 60_000 }));
      await layer.set(key({ q: 1 }, v1), makeEntry('new', { ttlMs: 60_000 }));
      expect(await layer.deleteOlderVersions(v1)).toBeGreaterThanOrEqual(1);
      expect(await layer.get(key({ q: 1 }, v0))).toBeUndefined();
      expect((await layer.get(key({ q: 1 }, v1)))?.value).toBe('new');
    }, timeout);

    it('scans a scope page by page (when it implements scan)', async () => {
      if (!layer.scan) return;
      const scope = uniqueScope('scan');
      for (let i = 0; i < 25; i++) await layer.set(key({ q: i }, scope), makeEntry(i, { ttlMs: 60_000 }));
      const seen: unknown[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await layer.scan({ scope, count: 10, ...(cursor ? { cursor } : {}) });
        for (const item of page.items) {
          expect(item.key.scope.tenant).toBe(scope.tenant);
          seen.push(item.entry.value);
        }
        cursor = page.cursor;
        pages++;
      } while (cursor && pages < 100);
      expect(new Set(seen).size).toBe(25);
    }, timeout);

    if (options.unavailable) {
      const u = options.unavailable;
      it('unavailable layer: every request still succeeds, within the budget, with an error event', async () => {
        const budgetMs = u.budgetMs ?? 50;
        const scope = uniqueScope('unavailable');
        const cache = new MultiLayerCache({ layers: [{ layer, budgetMs }], policy: 'always', scope });
        const errors: unknown[] = [];
        cache.on('error', (e) => errors.push(e));
        await u.make(layer);
        try {
          const worst: number[] = [];
          for (let i = 0; i < 5; i++) {
            const t0 = performance.now();
            const r = await cache.getOrLoad({ q: 'while-down', i }, async () => `fresh ${i}`);
            worst.push(performance.now() - t0);
            expect(r.value).toBe(`fresh ${i}`);
            expect(r.status).toBe('miss');
          }
          // Generous slack for a shared, noisy machine: the point is "bounded", not "fast".
          expect(Math.max(...worst)).toBeLessThan(budgetMs * 2 + 500);
          await cache.flush();
        } finally {
          await u.restore(layer);
        }
        expect(errors.length).toBeGreaterThan(0);
      }, timeout);
    }
  });
}
