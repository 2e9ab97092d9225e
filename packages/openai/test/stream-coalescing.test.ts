import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ProviderServer, SECRET_KEY, collect, memoryCache, plain, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { type RedisServerHandle, acrossProcesses, startRedisServer } from '@strata-cache/provider-test-servers/processes';
import { OpenAI } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { withCache } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));

let server: ProviderServer;
beforeAll(async () => {
  // Slow enough that all ten requests are in flight before the first stream ends.
  server = await startOpenAIServer({ latencyMs: 50, intervalMs: 10 });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

function setup() {
  const { cache } = memoryCache();
  return withCache(new OpenAI({ apiKey: SECRET_KEY, baseURL: server.baseURL, maxRetries: 0 }), { cache });
}

// Streamed misses go through core's two-phase read-through (begin): the first leads the one
// upstream stream, identical concurrent ones follow its events live.
describe('identical concurrent streaming misses share one upstream stream', () => {
  it('chat.completions: 10 concurrent identical streams → 1 upstream call, 10 identical complete streams', async () => {
    const client = setup();
    const req = { model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user' as const, content: 'ten at once, please' }], stream: true as const };
    const streams = await Promise.all(Array.from({ length: 10 }, async () => plain(await collect(await client.chat.completions.create(req)))));
    expect(server.count('/chat/completions')).toBe(1);
    expect(streams[0]!.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    for (const s of streams) expect(s).toEqual(streams[0]);
  });

  it('responses: 10 concurrent identical streams → 1 upstream call, 10 identical complete streams', async () => {
    const client = setup();
    const req = { model: 'gpt-4o-mini', temperature: 0, input: 'ten at once, please', stream: true as const };
    const streams = await Promise.all(Array.from({ length: 10 }, async () => plain(await collect(await client.responses.create(req)))));
    expect(server.count('/responses')).toBe(1);
    expect(streams[0]!.at(-1)!.type).toBe('response.completed');
    for (const s of streams) expect(s).toEqual(streams[0]);
  });
});

// The children import the built package (the test task builds it first).
describe('across 2 processes with the Redis coordinator', () => {
  let redis: RedisServerHandle;
  beforeAll(async () => {
    redis = await startRedisServer();
  }, 20_000);
  afterAll(async () => {
    await redis?.stop();
  });

  for (const [task, path, last] of [
    ['chat', '/chat/completions', (s: any[]) => s.at(-1).choices[0].finish_reason === 'stop'],
    ['responses', '/responses', (s: any[]) => s.at(-1).type === 'response.completed'],
  ] as const) {
    it(`${task}: 2 processes × 5 concurrent identical streams → 1 upstream call, 10 identical complete streams`, async () => {
      const children = await acrossProcesses(join(here, 'fixtures', 'stream-child.mjs'), {
        redisUrl: redis.url,
        prefix: `streams-${task}`,
        baseURL: server.baseURL,
        task,
      });
      expect(server.count(path)).toBe(1);
      const streams = children.flatMap((c) => c.results) as any[][];
      expect(streams).toHaveLength(10);
      expect(last(streams[0]!)).toBe(true);
      for (const s of streams) expect(s).toEqual(streams[0]);
      // One process led (1 miss, 4 joined it live); the other waited on the lock and replayed the entry.
      expect(children.map((c) => c.stats.misses).sort()).toEqual([0, 5]);
    }, 60_000);
  }
});
