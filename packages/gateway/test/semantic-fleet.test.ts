// L3 across gateway instances: with L2 configured, every instance's semantic layer replicates the
// others' entries through Redis (vectors included), so a paraphrase answered through one
// instance is a semantic hit on another, and a purge on one reaches the other's index.
// Calibration from the config: the calibrating mode runs, its evidence shared through L2.
import { type RedisServerHandle, startRedisServer } from '@strata-cache/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Harness, KEYS, chat, harness, json } from './helpers.js';

let redis: RedisServerHandle;
let a: Harness | undefined;
let b: Harness | undefined;

beforeAll(async () => {
  redis = await startRedisServer();
  const cache = (extra: Record<string, unknown> = {}) => ({
    l2: { url: redis.url, prefix: 'fleet' },
    l3: { embedder: 'use' as const, threshold: 0.8, workers: 1, ...extra },
  });
  a = await harness({ cache: cache({ calibration: { maxWrongRate: 0.05, shadowRate: 0.2 } }) });
  b = await harness({ cache: cache() }, {}, a);
  // Both have joined the feed (the gateway opens L3 in the background as it starts).
  await Promise.all([a.gw.stack.l3!.ready(), b.gw.stack.l3!.ready()]);
}, 180_000);

afterAll(async () => {
  await b?.close();
  await a?.close();
  await redis?.stop();
});

async function waitFor(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const l3Entries = async (h: Harness): Promise<number> => (await json(h.admin('GET', '/admin/stats'))).layers.l3.entries;

it('a paraphrase answered through one instance is a semantic hit on another, without a second upstream call; a purge reaches both', async () => {
  const first = await a!.post('/v1/chat/completions', chat('How do I reset my password?'), KEYS.acme, { 'x-strata-tags': 'account' });
  expect(first.headers.get('x-strata-cache')).toBe('miss');
  const answer = await first.text();
  await a!.gw.cache.flush();
  // b's index receives a's entry through the feed (not through an exact L2 read: the text differs).
  await waitFor(async () => (await l3Entries(b!)) >= 1);
  const upstreamCalls = a!.openai.requests.length;
  const para = await b!.post('/v1/chat/completions', chat('How can I reset my password?'), KEYS.acme, { 'x-strata-cache': 'no-store' });
  expect(para.headers.get('x-strata-cache')).toBe('semantic');
  expect(para.headers.get('x-strata-layer')).toBe('l3');
  expect(await para.text()).toBe(answer);
  expect(a!.openai.requests.length).toBe(upstreamCalls);
  const stats = await json(b!.admin('GET', '/admin/stats'));
  expect(stats.layers.l3.replication.applied).toBeGreaterThanOrEqual(1);
  // Another tenant: nothing replicated crosses tenants.
  expect((await b!.post('/v1/chat/completions', chat('How can I reset my password?'), KEYS.globex)).headers.get('x-strata-cache')).toBe('miss');

  // A tag purge through a's admin API empties b's index of the entry too.
  await json(a!.admin('POST', '/admin/purge', { tag: 'account', tenant: 'acme' }));
  await waitFor(
    async () =>
      (await b!.post('/v1/chat/completions', chat('How can I reset my password?'), KEYS.acme, { 'x-strata-cache': 'no-store' })).headers.get(
        'x-strata-cache',
      ) === 'miss',
  );
  // Gone from b's index, not only refused: the feed carried the purge.
  await waitFor(async () => (await json(b!.admin('GET', '/admin/stats'))).layers.l3.entries <= 1); // (globex's own answer stays)
}, 60_000);

it('the calibrating mode runs from the config (on a, not on b)', async () => {
  expect((await json(a!.admin('GET', '/admin/stats'))).layers.l3.calibration).toBeDefined();
  expect((await json(b!.admin('GET', '/admin/stats'))).layers.l3.calibration ?? null).toBeNull();
});

it('a new instance listens before its re-import of L2 is done (the re-import embeds every entry)', async () => {
  for (let i = 0; i < 150; i += 25) {
    await Promise.all(
      Array.from({ length: 25 }, (_, j) => a!.post('/v1/chat/completions', chat(`Can you ship order ${i + j} to the warehouse in region ${i + j}?`))),
    );
  }
  await a!.gw.cache.flush();
  // Replication off: what c holds of a's entries comes from the re-import alone.
  const c = await harness(
    { cache: { l2: { url: redis.url, prefix: 'fleet' }, l3: { embedder: 'use', threshold: 0.8, workers: 1, replication: false } } },
    {},
    a,
  );
  try {
    const l3 = c.gw.stack.l3 as unknown as { stats(): { indexed: number }; ready(): Promise<void> };
    expect(l3.stats().indexed).toBeLessThan(150);
    // It serves meanwhile (exact answers from L2).
    const r = await c.post('/v1/chat/completions', chat('Can you ship order 7 to the warehouse in region 7?'));
    expect(r.headers.get('x-strata-cache')).toBe('hit');
    await l3.ready();
    expect(l3.stats().indexed).toBeGreaterThanOrEqual(150);
  } finally {
    await c.close();
  }
}, 120_000);
