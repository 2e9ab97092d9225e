import { type CacheEntry, type CacheKey, type Layer, type Scope, computeKey, resolveScope } from '@strata-cache/core';
import { afterAll, beforeAll, describe } from 'vitest';

export interface LayerComplianceOptions {
  /** Shown in the describe block. */
  name: string;
  /**
   * Builds a layer under test. Called once per group, so every group starts from a fresh layer;
   * the `clear` group clears everything the layer owns, so give it its own key prefix or namespace
   * when it runs against a shared server.
   */
  create: () => Layer | Promise<Layer>;
  /** Tears one down (the suite calls `layer.close()` first when it has one). */
  destroy?: ((layer: Layer) => void | Promise<void>) | undefined;
  /**
   * For layers that can become unavailable (network, process): make it unavailable, and
   * restore it. The suite checks that a request still succeeds within the budget.
   */
  unavailable?:
    | {
        make: (layer: Layer) => void | Promise<void>;
        restore: (layer: Layer) => void | Promise<void>;
        /** Budget given to the layer in MultiLayerCache. @default 50 */
        budgetMs?: number | undefined;
      }
    | undefined;
  /** Shortest TTL the layer honours reliably, ms. @default 200 */
  ttlMs?: number | undefined;
  /** Timeout for each test, ms. @default 20_000 */
  testTimeoutMs?: number | undefined;
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The key of a request in a scope (a fresh unique scope by default). */
export const keyOf = (request: unknown, scope: Scope = uniqueScope()): CacheKey => computeKey(request, scope);

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

/** What every group's tests receive: the group's own fresh layer, and the suite settings. */
export interface GroupContext {
  /** The layer of this group (valid inside tests). */
  readonly layer: Layer;
  readonly ttlMs: number;
  readonly timeout: number;
  readonly options: LayerComplianceOptions;
}

/**
 * A describe block with a fresh layer of its own: created before its tests, closed and destroyed
 * after them. `body` registers the tests.
 */
export function group(options: LayerComplianceOptions, title: string, body: (ctx: GroupContext) => void): void {
  const timeout = options.testTimeoutMs ?? 20_000;
  describe(title, () => {
    let layer: Layer | undefined;
    const ctx: GroupContext = {
      get layer(): Layer {
        if (!layer) throw new Error('layer not created yet');
        return layer;
      },
      ttlMs: options.ttlMs ?? 200,
      timeout,
      options,
    };
    beforeAll(async () => {
      layer = await options.create();
    }, timeout);
    afterAll(async () => {
      if (!layer) return;
      await layer.close?.();
      await options.destroy?.(layer);
    }, timeout);
    body(ctx);
  });
}
