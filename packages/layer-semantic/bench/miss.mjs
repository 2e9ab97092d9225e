// Miss overhead of the cache stacks at concurrency 16 with chat-length turns, and the backlog a
// burst leaves behind: what a miss costs beyond the upstream call, through MultiLayerCache.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MultiLayerCache, resolveScope } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { log, pct, randomStream, repo, round, sleep } from './lib.mjs';

const chat = (text) => ({
  model: 'gpt-4o-mini',
  temperature: 0,
  messages: [
    { role: 'system', content: 'You are the assistant of a travel agency. Be concise.' },
    { role: 'user', content: text },
  ],
});
const ANSWER = 'Thank you for your message. '.repeat(72); // ≈ 2 KB, as an LLM answer is

/**
 * Counts what reaches the embedder: calls, texts, and calls in flight — so "no embedding work
 * left anywhere" can be awaited for any layer, the one before this work included.
 */
class TrackedEmbedder {
  constructor(inner) {
    this.inner = inner;
    this.id = inner.id;
    this.dimensions = inner.dimensions;
    this.calls = 0;
    this.texts = 0;
    this.running = 0;
    this.waiters = [];
  }
  async embed(texts, options) {
    this.calls++;
    this.texts += texts.length;
    this.running++;
    try {
      return await this.inner.embed(texts, options);
    } finally {
      if (--this.running === 0) for (const w of this.waiters.splice(0)) w();
    }
  }
  idle() {
    return this.running === 0 ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }
}

/**
 * Core on this branch calls the semantic layer's set() without a context; core's next version
 * (issue 13) passes `{ deadline: now + budgetMs, signal }` to semantic layers. This adds that
 * deadline when core gives none, so writes are judged as they will be; with a core that passes
 * one it changes nothing.
 */
function withWriteDeadline(layer, budgetMs) {
  return new Proxy(layer, {
    get(target, prop) {
      if (prop === 'set') return (k, e, ctx) => target.set(k, e, ctx ?? { deadline: Date.now() + budgetMs });
      if (prop === 'setMany') return (items, ctx) => target.setMany(items, ctx ?? { deadline: Date.now() + budgetMs });
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

async function redisLayer(prefix) {
  try {
    const { RedisLayer } = await import(pathToFileURL(join(repo, 'packages/layer-redis/dist/index.js')).href);
    const l = new RedisLayer({ url: process.env.STRATA_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', prefix });
    await l.connect();
    return l;
  } catch (e) {
    log(`no Redis for the L2 stacks: ${e.message}`);
    return undefined;
  }
}

function summary(xs) {
  return { n: xs.length, p50: round(pct(xs, 50), 2), p90: round(pct(xs, 90), 2), p99: round(pct(xs, 99), 2), max: round(Math.max(...xs), 2) };
}

/**
 * One stack: `clients` concurrent clients each make `perClient` getOrLoad calls with distinct
 * chat turns (all misses but for rare semantic hits); the loader takes `loaderMs`. Overhead =
 * call latency − the loader's own time. Then a burst of `burst` calls at once, and how long
 * embedding work remains after the last of them returned.
 */
async function runStack({ name, layers, semantic, embedder, queries, seed, clients, perClient, loaderMs, loaderJitterMs = 0, burst, budgetMs }) {
  const scope = resolveScope({ tenant: 'bench-miss', namespace: `${name}-${process.pid}` });
  if (semantic) await semantic.setMany(seed.map((t) => ({ key: keyOf(t, scope), entry: entryOf(t, scope) })));
  const cache = new MultiLayerCache({ layers, policy: 'always', scope });
  let next = 0;
  const take = () => queries[next++ % queries.length];
  // Loader time: fixed, or uniform in loaderMs ± loaderJitterMs (a stream of its own: same draws each run).
  const draw = randomStream(12_345);
  const loaderTime = () => (loaderJitterMs === 0 ? loaderMs : loaderMs + (draw() * 2 - 1) * loaderJitterMs);
  const one = async () => {
    let loaderMsSpent = 0;
    const t0 = performance.now();
    const wait = loaderTime();
    const r = await cache.getOrLoad(chat(take()), async () => {
      const s = performance.now();
      if (wait > 0) await sleep(wait);
      loaderMsSpent = performance.now() - s;
      return ANSWER;
    });
    return { ms: performance.now() - t0 - loaderMsSpent, hit: r.status === 'hit' };
  };
  // Warm-up: JIT, connections, and the semantic layer's cost model of the embedder.
  for (let i = 0; i < 3; i++) await Promise.all(Array.from({ length: 4 }, one));
  await cache.flush();
  await idle(semantic, embedder);
  const calls0 = embedder?.texts ?? 0;
  const overhead = [];
  let hits = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < perClient; i++) {
        const r = await one();
        if (r.hit) hits++;
        else overhead.push(r.ms);
      }
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  await cache.flush();
  await idle(semantic, embedder);
  const statsAfterRun = semantic?.stats?.();
  // Burst: `burst` calls at once; then the time until no embedding work is left anywhere.
  const started = performance.now();
  const burstLat = await Promise.all(Array.from({ length: burst }, one));
  const lastReturned = performance.now();
  await cache.flush();
  const backlogMs = (await idle(semantic, embedder, 60_000)) - lastReturned;
  const stats = semantic?.stats?.();
  const result = {
    stack: name,
    clients,
    requests: clients * perClient,
    loaderMs,
    requestsPerSecond: round((clients * perClient) / wallS, 1),
    missOverheadMs: summary(overhead),
    semanticHits: hits,
    embeddedTexts: embedder ? embedder.texts - calls0 : 0,
    semanticStats: statsAfterRun ? pickStats(statsAfterRun) : undefined,
    burst: {
      calls: burst,
      latencyMs: summary(burstLat.map((r) => r.ms)),
      wallMs: round(lastReturned - started, 1),
      backlogAfterLastReturnMs: round(Math.max(0, backlogMs), 1),
      withinBudget: backlogMs <= budgetMs,
      semanticStats: stats ? pickStats(stats) : undefined,
    },
  };
  log(name, JSON.stringify(result));
  // Only this run's keys: the remote layer was given a prefix of its own.
  for (const l of layers) if (l.layer.capabilities?.remote) await l.layer.clear().catch(() => undefined);
  await cache.close();
  return result;
}

function pickStats(s) {
  return s.queue
    ? {
        skippedOverload: s.skippedOverload,
        cancelledLookups: s.cancelledLookups,
        writesNotIndexed: s.writesNotIndexed,
        embeddings: s.embeddings,
        embeddingCacheHits: s.embeddingCacheHits,
        queue: s.queue,
      }
    : { embeddings: s.embeddings, embeddingCacheHits: s.embeddingCacheHits };
}

/** Resolves the time (performance.now()) at which no text waits in the layer and the embedder runs nothing. */
async function idle(semantic, embedder, capMs = 60_000) {
  const until = performance.now() + capMs;
  for (;;) {
    const waits = [embedder?.idle()];
    if (semantic?.embeddingIdle) waits.push(semantic.embeddingIdle());
    await Promise.race([Promise.all(waits), sleep(Math.max(0, until - performance.now()))]);
    if (performance.now() >= until) return performance.now();
    // Quiet for one more turn (a write may start an embedding right after a lookup ends).
    await sleep(1);
    if ((embedder?.running ?? 0) === 0 && (!semantic?.stats?.().queue || (semantic.stats().queue.queued === 0 && semantic.stats().queue.running === 0)))
      return performance.now();
  }
}

let keyOf;
let entryOf;

/**
 * The stacks, for one implementation of the semantic stack (`impl`: dist directories of
 * layer-semantic and embed-use), sharing one embedder.
 */
export async function benchMiss({ impl, chatQueries, seedTexts, budgetMs, clients, perClient, loaderMs, burst, includeL1L2 }) {
  const core = await import('@strata-cache/core');
  keyOf = (t, scope) => core.computeKey(chat(t), scope);
  entryOf = (t, scope) => ({ value: ANSWER, createdAt: Date.now(), tags: [], semantic: core.computeSemantic(chat(t), scope) });
  const { SemanticLayer } = await import(pathToFileURL(join(impl.layer, 'index.js')).href);
  const { createUseEmbedder } = await import(pathToFileURL(join(impl.embedUse, 'index.js')).href);
  const raw = await createUseEmbedder({ workers: 2 });
  const out = [];
  let q = 0;
  const slice = (n) => chatQueries.slice(q, (q += n));
  const per = clients * perClient + burst + 12;
  try {
    // One embedding of a chat turn, alone, on this embedder: the yardstick of the targets.
    await raw.embed(chatQueries.slice(0, 4));
    const single = [];
    for (const t of slice(40)) {
      const s = performance.now();
      await raw.embed([t]);
      single.push(performance.now() - s);
    }
    out.push({ stack: 'one embedding (alone, sequential)', embedMs: summary(single) });
    if (includeL1L2 && process.env.STRATA_BENCH_SKIP_L12 !== '1') {
      out.push(
        await runStack({ name: 'L1', layers: [{ layer: new MemoryLayer() }], queries: slice(per), seed: [], clients, perClient, loaderMs, burst, budgetMs }),
      );
      // With one fixed loader time the 16 clients stay in lockstep: every answer of a round
      // arrives in the same event-loop turn and each lookup waits for the whole round's work. The
      // second run spreads upstream times over loaderMs ± 20 %.
      for (const [jitter, tag] of [
        [0, 'a'],
        [0.2, 'j'],
      ]) {
        const l2 = await redisLayer(`strata-bench-miss-${process.pid}-${tag}`);
        if (!l2) break;
        out.push(
          await runStack({
            name: jitter === 0 ? 'L1+L2' : `L1+L2, loader ${Math.round(loaderMs * (1 - jitter))}–${Math.round(loaderMs * (1 + jitter))} ms`,
            layers: [{ layer: new MemoryLayer() }, { layer: l2, budgetMs: 50 }],
            queries: slice(per),
            seed: [],
            clients,
            perClient,
            loaderMs,
            loaderJitterMs: loaderMs * jitter,
            burst,
            budgetMs,
          }),
        );
      }
    }
    for (const withL2 of process.env.STRATA_BENCH_SKIP_L12 === '1' ? [false] : [false, true]) {
      const embedder = new TrackedEmbedder(raw);
      // STRATA_BENCH_LAYER_OPTIONS: JSON merged into the current layer's options (experiments).
      const extra = impl.name === 'current' ? JSON.parse(process.env.STRATA_BENCH_LAYER_OPTIONS ?? '{}') : {};
      const semantic = new SemanticLayer({ embedder, ...extra });
      await semantic.ready();
      const l2 = withL2 ? await redisLayer(`strata-bench-miss-${process.pid}-${impl.name}`) : undefined;
      if (withL2 && !l2) continue;
      const layers = [{ layer: new MemoryLayer() }, ...(l2 ? [{ layer: l2, budgetMs: 50 }] : []), { layer: withWriteDeadline(semantic, budgetMs), budgetMs }];
      out.push(
        await runStack({
          name: `L1${l2 ? '+L2' : ''}+L3 (${impl.name})`,
          layers,
          semantic,
          embedder,
          queries: slice(per),
          seed: seedTexts,
          clients,
          perClient,
          loaderMs,
          burst,
          budgetMs,
        }),
      );
    }
  } finally {
    await raw.close();
  }
  return out;
}
