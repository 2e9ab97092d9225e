import { type CacheKey, type Layer, type Scope, StrataError } from '@strata-cache/core';
import { expect, it } from 'vitest';
import { type GroupContext, type LayerComplianceOptions, group, keyOf, makeEntry, uniqueScope } from './helpers.js';

type TestContext = { skip: (note?: string) => never };

/** Marks the test skipped (not passed) when the layer lacks what it checks. */
function needs(t: TestContext, ok: boolean, what: string): void {
  if (!ok) t.skip(`the layer does not declare ${what}`);
}

/** deleteByTag (optionally scoped) and the re-tag rule — for layers that declare `tags`. */
export function tagsGroup(options: LayerComplianceOptions): void {
  group(options, 'tags', (g) => {
    it(
      'deletes by tag, optionally within one scope',
      async (t) => {
        needs(t, g.layer.capabilities.tags && typeof g.layer.deleteByTag === 'function', 'capabilities.tags');
        const a = uniqueScope('tag-a');
        const b = uniqueScope('tag-b');
        const tag = `topic:pricing-${Date.now()}`;
        await g.layer.set(keyOf({ q: 1 }, a), makeEntry('tagged a', { ttlMs: 60_000, tags: [tag] }));
        await g.layer.set(keyOf({ q: 2 }, a), makeEntry('untagged a', { ttlMs: 60_000, tags: ['other'] }));
        await g.layer.set(keyOf({ q: 1 }, b), makeEntry('tagged b', { ttlMs: 60_000, tags: [tag] }));
        expect(await g.layer.deleteByTag!(tag, a)).toBe(1);
        expect(await g.layer.get(keyOf({ q: 1 }, a))).toBeUndefined();
        expect((await g.layer.get(keyOf({ q: 2 }, a)))?.value).toBe('untagged a');
        expect((await g.layer.get(keyOf({ q: 1 }, b)))?.value).toBe('tagged b');
        expect(await g.layer.deleteByTag!(tag)).toBe(1);
        expect(await g.layer.get(keyOf({ q: 1 }, b))).toBeUndefined();
      },
      g.timeout,
    );

    it(
      "an entry's current tags are the truth: after re-tagging, deleteByTag(old) leaves it, deleteByTag(new) removes it",
      async (t) => {
        needs(t, g.layer.capabilities.tags && typeof g.layer.deleteByTag === 'function', 'capabilities.tags');
        const scope = uniqueScope('retag');
        const old = `old-${Date.now()}`;
        const now = `new-${Date.now()}`;
        const k = keyOf({ q: 'retag' }, scope);
        await g.layer.set(k, makeEntry('first', { ttlMs: 60_000, tags: [old] }));
        await g.layer.set(k, makeEntry('second', { ttlMs: 60_000, tags: [now] }));
        expect(await g.layer.deleteByTag!(old)).toBe(0);
        expect((await g.layer.get(k))?.value).toBe('second');
        expect(await g.layer.deleteByTag!(now)).toBe(1);
        expect(await g.layer.get(k)).toBeUndefined();
      },
      g.timeout,
    );
  });
}

/** deleteOlderVersions — for layers that implement it. */
export function versionsGroup(options: LayerComplianceOptions): void {
  group(options, 'versions', (g) => {
    it(
      'drops older scope versions',
      async (t) => {
        needs(t, typeof g.layer.deleteOlderVersions === 'function', 'deleteOlderVersions');
        const v0 = uniqueScope('versions');
        const v1: Scope = { ...v0, version: 1 };
        await g.layer.set(keyOf({ q: 1 }, v0), makeEntry('old', { ttlMs: 60_000 }));
        await g.layer.set(keyOf({ q: 1 }, v1), makeEntry('new', { ttlMs: 60_000 }));
        expect(await g.layer.deleteOlderVersions!(v1)).toBeGreaterThanOrEqual(1);
        expect(await g.layer.get(keyOf({ q: 1 }, v0))).toBeUndefined();
        expect((await g.layer.get(keyOf({ q: 1 }, v1)))?.value).toBe('new');
      },
      g.timeout,
    );
  });
}

/** Paged scan — for layers that implement it. */
export function scanGroup(options: LayerComplianceOptions): void {
  group(options, 'scan', (g) => {
    it(
      'scans a scope page by page',
      async (t) => {
        needs(t, typeof g.layer.scan === 'function', 'scan');
        const scope = uniqueScope('scan');
        for (let i = 0; i < 25; i++) await g.layer.set(keyOf({ q: i }, scope), makeEntry(i, { ttlMs: 60_000 }));
        const seen: unknown[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await g.layer.scan!({ scope, count: 10, ...(cursor ? { cursor } : {}) });
          for (const item of page.items) {
            expect(item.key.scope.tenant).toBe(scope.tenant);
            seen.push(item.entry.value);
          }
          cursor = page.cursor;
          pages++;
        } while (cursor && pages < 100);
        expect(new Set(seen).size).toBe(25);
      },
      g.timeout,
    );
  });
}

/** getMany / setMany / deleteMany — for layers that declare `batch`. */
export function batchGroup(options: LayerComplianceOptions): void {
  group(options, 'batch', (g) => {
    it(
      'answers in key order with undefined for missing keys; deleteMany counts what existed',
      async (t) => {
        needs(t, g.layer.capabilities.batch, 'capabilities.batch');
        const scope = uniqueScope('batch');
        const keys = [0, 1, 2].map((i) => keyOf({ q: 'batch', i }, scope));
        const missing = keyOf({ q: 'batch', i: 'missing' }, scope);
        await g.layer.setMany!(keys.map((key, i) => ({ key, entry: makeEntry(`v${i}`, { ttlMs: 60_000 }) })));
        const got = await g.layer.getMany!([keys[2]!, missing, keys[0]!, keys[1]!]);
        expect(got.map((e) => e?.value)).toEqual(['v2', undefined, 'v0', 'v1']);
        expect(await g.layer.getMany!([])).toEqual([]);
        expect(await g.layer.deleteMany!([keys[0]!, missing])).toBe(1);
        expect(await g.layer.get(keys[0]!)).toBeUndefined();
        expect((await g.layer.get(keys[1]!))?.value).toBe('v1');
      },
      g.timeout,
    );
  });
}

/** Similarity search never crosses a scope — for layers that declare `semantic`. */
export function searchGroup(options: LayerComplianceOptions): void {
  group(options, 'search', (g) => {
    it(
      'never answers a search from another scope',
      async (t) => {
        needs(t, g.layer.capabilities.semantic && typeof g.layer.search === 'function', 'capabilities.semantic');
        const a = uniqueScope('search-a');
        const b = uniqueScope('search-b');
        const semantic = { partition: 'compliance-partition', text: 'How do I reset my password?' };
        await g.layer.set(keyOf({ q: 'reset' }, a), makeEntry('answer for A', { ttlMs: 60_000, semantic }));
        const inA = await g.layer.search!({ ...semantic, scope: a });
        if (inA.hit) expect(inA.hit.key.scopeId).toBe(keyOf({ q: 'reset' }, a).scopeId);
        const inB = await g.layer.search!({ ...semantic, scope: b });
        expect(inB.hit).toBeUndefined();
        const otherNs = await g.layer.search!({ ...semantic, scope: { ...a, namespace: 'elsewhere' } });
        expect(otherNs.hit).toBeUndefined();
      },
      g.timeout,
    );
    it(
      "never names another scope's miss as a load in flight (inFlight)",
      async (t) => {
        needs(t, g.layer.capabilities.semantic && typeof g.layer.search === 'function', 'capabilities.semantic');
        const a = uniqueScope('inflight-a');
        const b = uniqueScope('inflight-b');
        const partition = 'compliance-inflight';
        const stored = { partition, text: 'How do I export my invoices?' };
        for (const scope of [a, b]) await g.layer.set(keyOf({ q: 'export' }, scope), makeEntry('export answer', { ttlMs: 60_000, semantic: stored }));
        const asked = { partition, text: 'How do I reset my password?' };
        const inA = keyOf({ q: 'reset' }, a);
        await g.layer.search!({ ...asked, scope: a, key: inA }); // a miss in scope a, its answer "loading"
        for (const scope of [b, { ...a, namespace: 'elsewhere' }]) {
          const r = await g.layer.search!({ ...asked, scope, key: keyOf({ q: 'reset again' }, scope) });
          for (const m of r.inFlight ?? []) expect(m.keyId).not.toBe(inA.id);
        }
      },
      g.timeout,
    );
  });
}

/** clear() without a scope removes everything the layer owns, and counts it. */
export function clearGroup(options: LayerComplianceOptions): void {
  group(options, 'clear everything', (g) => {
    it(
      'clear() without a scope removes every entry of every scope and resolves the count',
      async () => {
        const a = uniqueScope('clear-all-a');
        const b = uniqueScope('clear-all-b');
        const ks: CacheKey[] = [keyOf({ q: 1 }, a), keyOf({ q: 2 }, a), keyOf({ q: 1 }, b)];
        for (const k of ks) await g.layer.set(k, makeEntry('x', { ttlMs: 60_000 }));
        const n = await g.layer.clear();
        expect(typeof n).toBe('number');
        expect(n).toBeGreaterThanOrEqual(ks.length);
        for (const k of ks) expect(await g.layer.get(k)).toBeUndefined();
      },
      g.timeout,
    );
  });
}

async function outcome(run: () => unknown): Promise<unknown> {
  try {
    await run();
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Rule: after close() every operation rejects (or throws) STRATA_CLOSED; a second close is a no-op. */
export function closedGroup(options: LayerComplianceOptions): void {
  group(options, 'after close()', (g: GroupContext) => {
    it(
      'every operation rejects with STRATA_CLOSED, and a second close() is a no-op',
      async (t) => {
        const layer: Layer = g.layer;
        needs(t, typeof layer.close === 'function', 'close');
        const scope = uniqueScope('closed');
        const k = keyOf({ q: 'closed' }, scope);
        await layer.set(k, makeEntry('x', { ttlMs: 60_000 }));
        await layer.close!();
        const ops: Array<[string, () => unknown]> = [
          ['get', () => layer.get(k)],
          ['set', () => layer.set(k, makeEntry('y'))],
          ['delete', () => layer.delete(k)],
          ['clear', () => layer.clear(scope)],
        ];
        if (layer.getMany) ops.push(['getMany', () => layer.getMany!([k])]);
        if (layer.setMany) ops.push(['setMany', () => layer.setMany!([{ key: k, entry: makeEntry('z') }])]);
        if (layer.deleteMany) ops.push(['deleteMany', () => layer.deleteMany!([k])]);
        if (layer.deleteByTag) ops.push(['deleteByTag', () => layer.deleteByTag!('t')]);
        if (layer.deleteOlderVersions) ops.push(['deleteOlderVersions', () => layer.deleteOlderVersions!({ ...scope, version: 1 })]);
        if (layer.scan) ops.push(['scan', () => layer.scan!({ scope })]);
        if (layer.search) ops.push(['search', () => layer.search!({ partition: 'p', text: 't', scope })]);
        for (const [name, run] of ops) {
          const error = await outcome(run);
          expect(StrataError.isInstance(error), `${name} after close()`).toBe(true);
          expect((error as StrataError).code, name).toBe('STRATA_CLOSED');
        }
        await expect(Promise.resolve(layer.close!())).resolves.toBeUndefined();
      },
      g.timeout,
    );
  });
}
