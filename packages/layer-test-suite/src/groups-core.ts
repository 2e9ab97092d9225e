import { type Layer, LAYER_SPECIFICATION_VERSION, MultiLayerCache, type Scope, isExpired } from '@strata-cache/core';
import { getEventListeners } from 'node:events';
import { expect, it } from 'vitest';
import { type LayerComplianceOptions, group, keyOf, makeEntry, sleep, trickyValue, uniqueScope } from './helpers.js';

/** Declared contract version and capabilities, and the methods each capability promises. */
export function contractGroup(options: LayerComplianceOptions): void {
  group(options, 'contract', (g) => {
    it('declares the v1 contract and its capabilities', () => {
      const layer = g.layer;
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
        expect(typeof layer.deleteMany).toBe('function');
      }
    });
  });
}

/** get / set / delete: misses, bit-exact round trips, overwrite, 1 MB values, concurrent writers, no TTL. */
export function storageGroup(options: LayerComplianceOptions): void {
  group(options, 'storage', (g) => {
    it(
      'misses an unknown key',
      async () => {
        expect(await g.layer.get(keyOf({ q: 'never stored' }))).toBeUndefined();
      },
      g.timeout,
    );

    it(
      'round-trips an entry bit-exactly (unicode, escapes, floats, nesting, chunks, usage)',
      async () => {
        const k = keyOf({ q: 'roundtrip' });
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
        await g.layer.set(k, entry);
        const got = await g.layer.get(k);
        expect(got).toEqual(entry);
        expect(JSON.stringify(got)).toBe(before);
      },
      g.timeout,
    );

    it(
      'keeps an entry without a TTL, and gives it none',
      async () => {
        const k = keyOf({ q: 'no ttl' });
        const entry = makeEntry({ forever: true });
        await g.layer.set(k, entry);
        const got = await g.layer.get(k);
        expect(got?.value).toEqual({ forever: true });
        expect(got?.ttlMs).toBeUndefined();
        expect(got && isExpired(got, Date.now() + 365 * 24 * 3_600_000)).toBe(false);
      },
      g.timeout,
    );

    it(
      'overwrites an entry',
      async () => {
        const k = keyOf({ q: 'overwrite' });
        await g.layer.set(k, makeEntry('first', { ttlMs: 60_000 }));
        await g.layer.set(k, makeEntry('second', { ttlMs: 60_000 }));
        expect((await g.layer.get(k))?.value).toBe('second');
      },
      g.timeout,
    );

    it(
      'deletes an entry and reports whether it existed',
      async () => {
        const k = keyOf({ q: 'delete' });
        await g.layer.set(k, makeEntry('x', { ttlMs: 60_000 }));
        expect(await g.layer.delete(k)).toBe(true);
        expect(await g.layer.get(k)).toBeUndefined();
        expect(await g.layer.delete(k)).toBe(false);
      },
      g.timeout,
    );

    it(
      "leaves no listener on a read's abort signal once the read has settled (core shares one signal among the reads of a turn)",
      async () => {
        const k = keyOf({ q: 'signal listeners' });
        await g.layer.set(k, makeEntry('x', { ttlMs: 60_000 }));
        const controller = new AbortController();
        const ctx = { deadline: Date.now() + 10_000, signal: controller.signal };
        // A hit, a miss and a batch read, started together as core starts a burst's reads.
        const reads: Array<Promise<unknown>> = [
          Promise.resolve(g.layer.get(k, ctx)),
          Promise.resolve(g.layer.get(keyOf({ q: 'signal listeners, never stored' }), ctx)),
        ];
        if (g.layer.getMany) reads.push(Promise.resolve(g.layer.getMany([k], ctx)));
        const [hit, miss] = await Promise.all(reads);
        expect((hit as { value?: unknown } | undefined)?.value).toBe('x');
        expect(miss).toBeUndefined();
        expect(getEventListeners(controller.signal, 'abort')).toEqual([]);
      },
      g.timeout,
    );

    it(
      'round-trips a 1 MB value',
      async () => {
        const k = keyOf({ q: 'large' });
        const big = 'é🚀x'.repeat(Math.ceil((1024 * 1024) / 4));
        await g.layer.set(k, makeEntry({ big, tail: 'end' }, { ttlMs: 60_000 }));
        expect((await g.layer.get(k))?.value).toEqual({ big, tail: 'end' });
      },
      g.timeout,
    );

    it(
      'survives concurrent writers: distinct keys all land, one key ends with one intact value',
      async () => {
        const scope = uniqueScope('concurrent');
        const distinct = Array.from({ length: 50 }, (_, i) => keyOf({ q: 'distinct', i }, scope));
        await Promise.all(distinct.map((k, i) => g.layer.set(k, makeEntry({ i, body: 'x'.repeat(i * 100) }, { ttlMs: 60_000 }))));
        const got = await Promise.all(distinct.map((k) => g.layer.get(k)));
        got.forEach((e, i) => expect(e?.value).toEqual({ i, body: 'x'.repeat(i * 100) }));
        const same = keyOf({ q: 'same' }, scope);
        const values = Array.from({ length: 30 }, (_, i) => ({ writer: i, body: String(i).repeat(1000) }));
        await Promise.all(values.map((v) => g.layer.set(same, makeEntry(v, { ttlMs: 60_000 }))));
        expect(values).toContainEqual((await g.layer.get(same))?.value);
      },
      g.timeout,
    );
  });
}

/** Rule: no entry handed out by reference. */
export function referencesGroup(options: LayerComplianceOptions): void {
  group(options, 'entries are not handed out by reference', (g) => {
    it(
      'mutating the entry given to set, or one returned by get, never changes a later get',
      async () => {
        const k = keyOf({ q: 'references' });
        const entry = makeEntry({ choices: [{ text: 'original' }] }, { ttlMs: 60_000, tags: ['t'] });
        await g.layer.set(k, entry);
        (entry.value as { choices: Array<{ text: string }> }).choices[0]!.text = 'changed by the writer';
        entry.tags.push('added by the writer');
        const got = await g.layer.get(k);
        expect((got?.value as { choices: Array<{ text: string }> } | undefined)?.choices[0]?.text).toBe('original');
        try {
          (got!.value as { choices: Array<{ text: string }> }).choices[0]!.text = 'changed by a reader';
          got!.tags.push('added by a reader');
        } catch (error) {
          expect(error).toBeInstanceOf(TypeError); // a frozen copy is fine
        }
        const again = await g.layer.get(k);
        expect((again?.value as { choices: Array<{ text: string }> } | undefined)?.choices[0]?.text).toBe('original');
        expect(again?.tags).toEqual(['t']);
      },
      g.timeout,
    );
  });
}

/** Expiry, directly and through MultiLayerCache. */
export function expiryGroup(options: LayerComplianceOptions): void {
  group(options, 'expiry', (g) => {
    it(
      'expires entries after their TTL',
      async () => {
        const k = keyOf({ q: 'ttl' });
        await g.layer.set(k, makeEntry('short-lived', { ttlMs: g.ttlMs }));
        expect((await g.layer.get(k))?.value).toBe('short-lived');
        await sleep(g.ttlMs * 2 + 100);
        const got = await g.layer.get(k);
        // A layer may hand back an expired entry (core re-checks), but never a live-looking one.
        expect(got === undefined || isExpired(got, Date.now())).toBe(true);
      },
      g.timeout,
    );

    it(
      'never serves an expired entry through MultiLayerCache',
      async () => {
        const scope = uniqueScope();
        const cache = new MultiLayerCache({ layers: [{ layer: g.layer, budgetMs: 2_000 }], policy: 'always', scope });
        let calls = 0;
        const load = async () => `v${++calls}`;
        await cache.getOrLoad({ q: 'ttl-through-core' }, load, { ttlMs: g.ttlMs });
        await cache.flush();
        expect((await cache.getOrLoad({ q: 'ttl-through-core' }, load)).status).toBe('hit');
        await sleep(g.ttlMs * 2 + 100);
        const r = await cache.getOrLoad({ q: 'ttl-through-core' }, load);
        expect(r.status).toBe('miss');
        expect(r.value).toBe('v2');
        await cache.flush();
      },
      g.timeout,
    );
  });
}

/** Tenants, namespaces and versions never share entries; clear(scope) touches one scope only. */
export function scopesGroup(options: LayerComplianceOptions): void {
  group(options, 'scopes', (g) => {
    it(
      'keeps scopes apart: same request, different tenant or namespace never shares an entry',
      async () => {
        const request = { model: 'm', messages: [{ role: 'user', content: 'same prompt' }] };
        const a = uniqueScope('tenant-a');
        const b: Scope = { ...uniqueScope('tenant-b') };
        const sameTenantOtherNs: Scope = { ...a, namespace: 'other' };
        const ka = keyOf(request, a);
        await g.layer.set(ka, makeEntry('answer for A', { ttlMs: 60_000 }));
        expect(await g.layer.get(keyOf(request, b))).toBeUndefined();
        expect(await g.layer.get(keyOf(request, sameTenantOtherNs))).toBeUndefined();
        expect(await g.layer.get(keyOf(request, { ...a, version: a.version + 1 }))).toBeUndefined();
        expect((await g.layer.get(ka))?.value).toBe('answer for A');
      },
      g.timeout,
    );

    it(
      'clears one scope without touching another, and counts what it removed',
      async () => {
        const a = uniqueScope('clear-a');
        const b = uniqueScope('clear-b');
        await g.layer.set(keyOf({ q: 1 }, a), makeEntry('a1', { ttlMs: 60_000 }));
        await g.layer.set(keyOf({ q: 2 }, a), makeEntry('a2', { ttlMs: 60_000 }));
        await g.layer.set(keyOf({ q: 3 }, { ...a, version: 1 }), makeEntry('a3', { ttlMs: 60_000 }));
        await g.layer.set(keyOf({ q: 1 }, b), makeEntry('b1', { ttlMs: 60_000 }));
        expect(await g.layer.clear(a)).toBe(3);
        expect(await g.layer.get(keyOf({ q: 1 }, a))).toBeUndefined();
        expect(await g.layer.get(keyOf({ q: 2 }, a))).toBeUndefined();
        expect((await g.layer.get(keyOf({ q: 1 }, b)))?.value).toBe('b1');
        expect(await g.layer.clear(a)).toBe(0);
      },
      g.timeout,
    );
  });
}

/** Read-through via MultiLayerCache: a miss is stored in this layer and the next call hits it. */
export function throughCoreGroup(options: LayerComplianceOptions): void {
  group(options, 'through MultiLayerCache', (g) => {
    it(
      'serves reads and writes through MultiLayerCache (miss, then hit from this layer)',
      async () => {
        const scope = uniqueScope();
        const cache = new MultiLayerCache({ layers: [{ layer: g.layer, budgetMs: 2_000 }], policy: 'always', scope });
        let calls = 0;
        const r1 = await cache.getOrLoad({ q: 'through-core' }, async () => ({ answer: ++calls }));
        await cache.flush();
        const r2 = await cache.getOrLoad({ q: 'through-core' }, async () => ({ answer: ++calls }));
        expect(r1.status).toBe('miss');
        expect(r2.status).toBe('hit');
        expect(r2.layer).toBe(g.layer.name);
        expect(r2.value).toEqual({ answer: 1 });
        expect(calls).toBe(1);
      },
      g.timeout,
    );
  });
}

/** Only for layers that can become unavailable: requests still succeed within the budget. */
export function unavailableGroup(options: LayerComplianceOptions): void {
  const u = options.unavailable;
  if (!u) return;
  group(options, 'unavailable', (g) => {
    it(
      'unavailable layer: every request still succeeds, within the budget, with an error event',
      async () => {
        const layer: Layer = g.layer;
        const budgetMs = u.budgetMs ?? 50;
        const scope = uniqueScope('unavailable');
        // flush() waits for writes in flight up to closeTimeoutMs: bound it near the budget here.
        const cache = new MultiLayerCache({ layers: [{ layer, budgetMs }], policy: 'always', scope, closeTimeoutMs: budgetMs * 4 });
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
      },
      g.timeout,
    );
  });
}
