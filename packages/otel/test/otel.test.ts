// Metrics through the real OpenTelemetry SDK and Prometheus exporter, scraped over HTTP.
import { spawn } from 'node:child_process';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  type CacheEntry,
  type CacheKey,
  type Layer,
  type LayerCapabilities,
  LAYER_SPECIFICATION_VERSION,
  type MultiLayerCacheOptions,
  MultiLayerCache,
  type SemanticQuery,
  type SemanticSearchResult,
  loaded,
} from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { RedisLayer } from '@strata-cache/layer-redis';
import { gatedLoader, redisUrlForTests, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { instrument } from '../src/index.js';

/** One scrape: `name{labels}` → value, plus the raw text. */
interface Scrape {
  readonly text: string;
  value(name: string, labels?: Record<string, string>): number | undefined;
}

function parse(text: string): Scrape {
  const rows: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    rows.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return {
    text,
    value(name, want = {}) {
      const found = rows.filter((r) => r.name === name && Object.entries(want).every(([k, v]) => r.labels[k] === v));
      return found.length === 0 ? undefined : found.reduce((s, r) => s + r.value, 0);
    },
  };
}

/** A MeterProvider with a Prometheus exporter served on a free local port. */
async function prometheus() {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  const server: Server = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  return {
    meter: provider.getMeter('strata-test'),
    scrape: async () => parse(await (await fetch(url)).text()),
    close: async () => {
      server.close();
      await provider.shutdown();
    },
  };
}

const SECRET_PROMPT = 'my card number is 4111-1111 SECRET-PROMPT-TEXT';
const SECRET_KEY = 'sk-live-SECRET-API-KEY';

/** A semantic layer that finds nothing but reports a rejected look-alike (with another user's text). */
class RejectingSemanticLayer implements Layer {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly name = 'semantic';
  readonly capabilities: LayerCapabilities = { nativeTtl: false, batch: false, semantic: true, shared: false, tags: false, remote: false };
  get() {
    return undefined;
  }
  set() {}
  delete() {
    return false;
  }
  clear() {
    return 0;
  }
  search() {
    return { rejected: [{ similarity: 0.93, text: SECRET_PROMPT, guard: 'numbers', reason: `numbers differ in "${SECRET_PROMPT}"` }] };
  }
}

/** A semantic layer that names the first miss it saw as in flight, and serves it once stored. */
class NamingSemanticLayer implements Layer {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly name = 'semantic';
  readonly capabilities: LayerCapabilities = { nativeTtl: false, batch: false, semantic: true, shared: false, tags: false, remote: false };
  private first: CacheKey | undefined;
  private stored: { key: CacheKey; entry: CacheEntry } | undefined;
  reset() {
    this.first = this.stored = undefined;
  }
  get() {
    return undefined;
  }
  set(key: CacheKey, entry: CacheEntry) {
    if (key.id === this.first?.id) this.stored = { key, entry };
  }
  delete() {
    return false;
  }
  clear() {
    return 0;
  }
  search(q: SemanticQuery): SemanticSearchResult {
    if (this.stored) return { hit: { ...this.stored, similarity: 0.95, text: 'first' } };
    if (!this.first) {
      this.first = q.key;
      return {};
    }
    return { inFlight: [{ keyId: this.first.id, similarity: 0.95 }] };
  }
}

/** A layer whose every operation fails with a message carrying a secret (as a driver error might). */
class LeakyFailingLayer implements Layer {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly name = 'flaky';
  readonly capabilities: LayerCapabilities = { nativeTtl: false, batch: false, semantic: false, shared: true, tags: false, remote: true };
  private fail(): never {
    throw new Error(`connect failed for redis://default:${SECRET_KEY}@db.internal, request ${SECRET_PROMPT}`);
  }
  get(_key: CacheKey) {
    return this.fail();
  }
  set() {
    return this.fail();
  }
  delete() {
    return this.fail();
  }
  clear() {
    return this.fail();
  }
}

/** gpt-4o-mini's list price, USD per 1M tokens (core has no built-in prices). */
const PRICES = { 'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 } };

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

async function setup(cacheOptions: Partial<MultiLayerCacheOptions> = {}, attributes: Record<string, string> = { cache: 'test' }) {
  const prom = await prometheus();
  const cache = new MultiLayerCache({ layers: [new MemoryLayer()], prices: PRICES, ...cacheOptions });
  const inst = instrument(cache, { meter: prom.meter, attributes });
  cleanup.push(
    () => prom.close(),
    () => cache.close(),
    () => inst.stop(),
  );
  return { prom, cache, inst };
}

const request = (content: string) => ({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content }] });
const answer = () => loaded({ text: 'an answer' }, { model: 'gpt-4o-mini', usage: { inputTokens: 1000, outputTokens: 500 } });

describe('instrument(cache, { meter }) scraped through the Prometheus exporter', () => {
  it('counters move: requests, hits and misses per layer, durations, tokens and USD saved', async () => {
    const { prom, cache } = await setup();
    const before = await prom.scrape();
    expect(before.value('strata_cache_requests_total')).toBe(0);
    expect(before.value('strata_cache_hits_total')).toBe(0);

    await cache.getOrLoad(request('How do I reset my password?'), answer);
    await cache.flush();
    await cache.getOrLoad(request('How do I reset my password?'), answer);
    await cache.getOrLoad(request('How do I reset my password?'), answer);

    const after = await prom.scrape();
    expect(after.value('strata_cache_requests_total', { cache: 'test' })).toBe(3);
    expect(after.value('strata_cache_hits_total')).toBe(2);
    expect(after.value('strata_cache_misses_total')).toBe(1);
    expect(after.value('strata_cache_loader_calls_total')).toBe(1);
    expect(after.value('strata_layer_hits_total', { layer: 'memory' })).toBe(2);
    expect(after.value('strata_layer_misses_total', { layer: 'memory' })).toBe(1);
    expect(after.value('strata_layer_writes_total', { layer: 'memory' })).toBe(1);
    expect(after.value('strata_cache_lookup_duration_count', { result: 'hit', layer: 'memory', match: 'exact' })).toBe(2);
    expect(after.value('strata_cache_lookup_duration_count', { result: 'miss' })).toBe(1);
    expect(after.value('strata_cache_lookup_duration_bucket', { result: 'hit', le: '+Inf' })).toBe(2);
    expect(after.value('strata_cache_saved_tokens_total', { direction: 'input' })).toBe(2000);
    expect(after.value('strata_cache_saved_tokens_total', { direction: 'output' })).toBe(1000);
    // gpt-4o-mini list price: 0.15 in / 0.6 out per 1M tokens → 2 hits × (1000 × 0.15 + 500 × 0.6) / 1e6
    expect(after.value('strata_cache_saved_usd_total')).toBeCloseTo(0.0009, 10);
    expect(after.value('strata_upstream_cost_usd_total')).toBeCloseTo(0.00045, 10);
  });

  it('errors, semantic rejections, skipped writes, invalidations and coalescing are counted', async () => {
    const { prom, cache } = await setup({ layers: [new MemoryLayer(), new RejectingSemanticLayer(), new LeakyFailingLayer()] });
    await Promise.all([cache.getOrLoad(request(SECRET_PROMPT), answer), cache.getOrLoad(request(SECRET_PROMPT), answer)]);
    await cache.getOrLoad(request('incomplete'), () => loaded({ text: 'partial' }, { complete: false }));
    await cache.flush();
    await cache.invalidateTag('pricing');
    const s = await prom.scrape();
    expect(s.value('strata_cache_errors_total', { layer: 'flaky', operation: 'get', code: 'STRATA_LAYER' })).toBeGreaterThanOrEqual(1);
    expect(s.value('strata_cache_errors_total', { layer: 'flaky', operation: 'set' })).toBeGreaterThanOrEqual(1);
    expect(s.value('strata_layer_errors_total', { layer: 'flaky' })).toBeGreaterThanOrEqual(2);
    expect(s.value('strata_cache_semantic_rejections_total', { layer: 'semantic', guard: 'numbers' })).toBeGreaterThanOrEqual(1);
    expect(s.value('strata_cache_write_skips_total', { reason: 'incomplete result' })).toBe(1);
    expect(s.value('strata_cache_invalidations_total', { type: 'tag', origin: 'local' })).toBe(1);
    expect(s.value('strata_cache_coalesced_total')).toBe(1);
  });

  it('semantic misses that waited for a similar load in flight are counted by outcome', async () => {
    const layer = new NamingSemanticLayer();
    const { prom, cache } = await setup({ layers: [layer], policy: 'always' });
    const served = gatedLoader(answer);
    const first = cache.getOrLoad(request('how do i reset my password'), served.loader);
    await new Promise((r) => setTimeout(r, 5));
    const second = cache.getOrLoad(request('how can i reset my password'), answer);
    await new Promise((r) => setTimeout(r, 5));
    served.release();
    await Promise.all([first, second]);
    const failed = gatedLoader(answer);
    layer.reset();
    const third = cache.getOrLoad(request('where is my order'), failed.loader).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 5));
    const fourth = cache.getOrLoad(request('where is my parcel'), answer);
    await new Promise((r) => setTimeout(r, 5));
    failed.fail();
    await Promise.all([third, fourth]);
    const s = await prom.scrape();
    expect(s.value('strata_cache_joined_similar_total', { outcome: 'served' })).toBe(1);
    expect(s.value('strata_cache_joined_similar_total', { outcome: 'loaded' })).toBe(1);
  });

  it('no prompt text, answer, error message or secret appears in any metric', async () => {
    const { prom, cache } = await setup({ layers: [new MemoryLayer(), new RejectingSemanticLayer(), new LeakyFailingLayer()] });
    const secretRequest = { ...request(SECRET_PROMPT), user: SECRET_KEY, metadata: { apiKey: SECRET_KEY } };
    await cache.getOrLoad(secretRequest, () =>
      loaded({ text: `answer with ${SECRET_KEY}` }, { model: 'gpt-4o-mini', usage: { inputTokens: 10, outputTokens: 5 } }),
    );
    await cache.flush();
    await cache.getOrLoad(secretRequest, answer);
    await cache.getOrLoad(request('skip me'), () => loaded({ text: SECRET_PROMPT }, { complete: false }));
    const { text } = await prom.scrape();
    expect(text).toContain('strata_cache_errors_total'); // the failing layer was seen…
    expect(text).toContain('strata_cache_semantic_rejections_total');
    // Names, help and labels, without the sample values: a duration such as 0.000554111 may hold
    // the digits of the card number by chance.
    const words = text
      .split('\n')
      .map((line) => (line.startsWith('#') ? line : line.replace(/\s+\S+$/, '')))
      .join('\n');
    expect(words).toContain('strata_cache_lookup_duration_sum{');
    for (const secret of ['SECRET', 'sk-live', '4111', 'card number', 'db.internal', 'an answer', 'answer with', 'password']) {
      expect(words).not.toContain(secret); // …but none of what it said
    }
  });

  it('reports the circuit breaker state of a Redis layer', async () => {
    const url = await redisUrlForTests();
    const live = new RedisLayer({ url, name: 'redis', prefix: uniqueKeyPrefix('otel') });
    await live.connect();
    const dead = new RedisLayer({
      url: 'redis://127.0.0.1:1',
      name: 'redis-down',
      connectTimeoutMs: 50,
      timeoutMs: 20,
      breaker: { failureThreshold: 2, cooldownMs: 60_000 },
    });
    const { prom, cache } = await setup({ layers: [new MemoryLayer(), live, dead] });
    // Short TTL: on a shared server (REDIS_URL) these test entries go away on their own.
    for (let i = 0; i < 4; i++) await cache.getOrLoad(request(`q${i}`), answer, { ttlMs: 5_000 });
    await cache.flush();
    const s = await prom.scrape();
    expect(s.value('strata_layer_breaker_state', { layer: 'redis', state: 'closed' })).toBe(1);
    expect(s.value('strata_layer_breaker_state', { layer: 'redis', state: 'open' })).toBe(0);
    expect(s.value('strata_layer_breaker_state', { layer: 'redis-down', state: 'open' })).toBe(1);
    expect(s.value('strata_layer_breaker_state', { layer: 'redis-down', state: 'closed' })).toBe(0);
    expect(s.value('strata_layer_breaker_opens_total', { layer: 'redis-down' })).toBeGreaterThanOrEqual(1);
    expect(s.value('strata_layer_breaker_state', { layer: 'memory' })).toBeUndefined(); // no breaker, no series
  }, 30_000);

  it('per-layer latency quantiles, and policy skips by reason when the cache reports them', async () => {
    class SkipCountingCache extends MultiLayerCache {
      override stats() {
        return { ...super.stats(), skipped: { 'non-deterministic': 4, 'reasoning model': 1 } };
      }
    }
    const prom = await prometheus();
    const cache = new SkipCountingCache({ layers: [new MemoryLayer()] });
    const inst = instrument(cache, { meter: prom.meter });
    cleanup.push(
      () => prom.close(),
      () => cache.close(),
      () => inst.stop(),
    );
    await cache.getOrLoad(request('q'), answer);
    await cache.getOrLoad(request('q'), answer);
    const s = await prom.scrape();
    expect(s.value('strata_cache_policy_skips_total', { reason: 'non-deterministic' })).toBe(4);
    expect(s.value('strata_cache_policy_skips_total', { reason: 'reasoning model' })).toBe(1);
    expect(s.value('strata_layer_lookup_latency', { layer: 'memory', quantile: '0.5' })).toBeGreaterThanOrEqual(0);
    expect(s.value('strata_layer_lookup_latency', { layer: 'memory', quantile: '0.95' })).toBeLessThan(1);
  });

  it('tenant attribute only when asked for', async () => {
    const prom = await prometheus();
    const cache = new MultiLayerCache({ layers: [new MemoryLayer()] });
    const inst = instrument(cache, { meter: prom.meter, tenantAttribute: true });
    cleanup.push(
      () => prom.close(),
      () => cache.close(),
      () => inst.stop(),
    );
    await cache.getOrLoad(request('q'), answer, { scope: 'acme' });
    await cache.getOrLoad(request('q'), answer, { scope: 'globex' });
    const s = await prom.scrape();
    expect(s.value('strata_cache_lookup_duration_count', { result: 'miss', tenant: 'acme' })).toBe(1);
    expect(s.value('strata_cache_lookup_duration_count', { result: 'miss', tenant: 'globex' })).toBe(1);

    const other = await setup();
    await other.cache.getOrLoad(request('q'), answer, { scope: 'acme' });
    expect((await other.prom.scrape()).text).not.toContain('acme');
  });

  it('stop() removes every listener and observable callback', async () => {
    const { prom, cache, inst } = await setup();
    const listeners = () => ['hit', 'miss', 'error', 'reject', 'skipWrite', 'invalidate'].map((e) => cache.listenerCount(e as 'hit'));
    expect(listeners().every((n) => n === 1)).toBe(true);
    inst.stop();
    inst.stop();
    expect(listeners().every((n) => n === 0)).toBe(true);
    await cache.getOrLoad(request('after stop'), answer);
    expect((await prom.scrape()).value('strata_cache_requests_total')).toBeUndefined();
  });

  it('rejects bad options with a StrataError naming the option', () => {
    const cache = new MultiLayerCache({ layers: [new MemoryLayer()] });
    expect(() => instrument(cache, { metre: 1 } as never)).toThrow(/unknown option "metre"/);
    expect(() => instrument(cache, { meter: {} as never })).toThrow(/option "meter"/);
    expect(() => instrument(cache, { durationBuckets: [0.1, 0.01] })).toThrow(/durationBuckets/);
    expect(() => instrument({} as never)).toThrow(/MultiLayerCache/);
  });
});

describe('the Prometheus example', () => {
  it('serves /metrics, and the counters move between scrapes', async () => {
    const child = spawn(process.execPath, [new URL('../examples/prometheus.mjs', import.meta.url).pathname], {
      env: { ...process.env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanup.push(() => {
      child.kill('SIGTERM');
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`example did not start: ${out}`)), 15_000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /(http:\/\/\S+\/metrics)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.stderr.on('data', (d) => (out += d));
    });
    const scrape = async () => parse(await (await fetch(url)).text());
    const waitFor = async (predicate: (s: Scrape) => boolean) => {
      for (let i = 0; i < 100; i++) {
        const s = await scrape();
        if (predicate(s)) return s;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('metrics did not move');
    };
    const first = await waitFor((s) => (s.value('strata_cache_requests_total', { cache: 'example' }) ?? 0) >= 1);
    const hitsBefore = first.value('strata_cache_hits_total', { cache: 'example' }) ?? 0;
    const second = await waitFor((s) => (s.value('strata_cache_hits_total', { cache: 'example' }) ?? 0) > hitsBefore);
    expect(second.value('strata_cache_misses_total', { cache: 'example' })).toBe(3);
    expect(second.value('strata_cache_saved_usd_total', { cache: 'example' })).toBeGreaterThan(0);
  }, 30_000);
});
