import { InvalidOptionError, costUsd, findPrice } from '@strata-cache/core';
import {
  type ProviderServer,
  anthropicError,
  anthropicMessageEvents,
  anthropicMessage,
  hangup,
  httpError,
  sse,
  startAnthropicServer,
  SECRET_KEY,
  collect,
  memoryCache,
  plain,
  stored,
  watchOutput,
} from '@strata-cache/provider-test-servers';
import { APIConnectionError, Anthropic, BadRequestError, type InternalServerError, RateLimitError } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ANTHROPIC_PRICES, cacheControl, createCachedAnthropic, getCacheInfo, withCache } from '../src/index.js';

let server: ProviderServer;
beforeAll(async () => {
  server = await startAnthropicServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

function setup(extra: Partial<Parameters<typeof createCachedAnthropic>[0]> = {}, cacheOptions = {}) {
  const { cache, layer } = memoryCache({ prices: ANTHROPIC_PRICES, ...cacheOptions });
  const bare = new Anthropic({ apiKey: SECRET_KEY, baseURL: server.baseURL, maxRetries: 0 });
  const client = withCache(bare, { cache, ...extra });
  return { cache, layer, bare, client };
}

const msg = <E extends object = Record<never, never>>(content: string, extra?: E) => ({
  model: 'claude-sonnet-4-20250514',
  max_tokens: 256,
  temperature: 0,
  system: 'You are terse.',
  messages: [{ role: 'user' as const, content }],
  ...(extra as E),
});

const weatherTool = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: { type: 'object' as const, properties: { query: { type: 'string' } } },
};

describe('messages.create (JSON)', () => {
  it('miss calls the API once, the repeat is a hit with an equal object', async () => {
    const { client, cache } = setup();
    const live = await client.messages.create(msg('What is 2+2?'));
    expect(server.count('/messages')).toBe(1);
    expect(getCacheInfo(live)).toBeUndefined();
    await cache.flush();
    const hit = await client.messages.create(msg('What is 2+2?', { metadata: { user_id: 'u-42' } }));
    expect(server.count('/messages')).toBe(1);
    expect(plain(hit)).toEqual(plain(live));
    expect(getCacheInfo(hit)).toMatchObject({ hit: true, layer: 'l1' });
  });

  it('system as a string and as blocks are different requests; tool use and thinking replay exactly', async () => {
    const { client, cache } = setup();
    await client.messages.create(msg('Hi'));
    await client.messages.create(msg('Hi', { system: [{ type: 'text' as const, text: 'You are terse.' }] }));
    expect(server.count('/messages')).toBe(2);
    await cache.flush();
    await client.messages.create(msg('Hi', { system: [{ type: 'text' as const, text: 'You are terse.' }] }));
    expect(server.count('/messages')).toBe(2);

    const toolReq = msg('Weather in Rome?', { tools: [weatherTool] });
    const liveTool = await client.messages.create(toolReq);
    expect(liveTool.content.map((b) => b.type)).toEqual(['text', 'tool_use']);
    await cache.flush();
    expect(plain(await client.messages.create(toolReq))).toEqual(plain(liveTool));

    const thinkReq = msg('Think first', { temperature: 1, thinking: { type: 'enabled' as const, budget_tokens: 1024 } });
    const liveThink = await client.messages.create(thinkReq);
    expect(liveThink.content[0]).toMatchObject({ type: 'thinking', signature: expect.any(String) });
    await cache.flush();
    expect(plain(await client.messages.create(thinkReq))).toEqual(plain(liveThink));
    expect(server.count('/messages')).toBe(4);
  });

  it('cache_control breakpoints do not change the key', async () => {
    const { client, cache } = setup();
    await client.messages.create(msg('Long context', { system: [{ type: 'text' as const, text: 'Big doc' }] }));
    await cache.flush();
    await client.messages.create(msg('Long context', { system: [{ type: 'text' as const, text: 'Big doc', cache_control: { type: 'ephemeral' as const } }] }));
    expect(server.count('/messages')).toBe(1);
  });

  it('non-deterministic requests are not cached under the default policy', async () => {
    const { client, cache } = setup({}, { policy: 'deterministic' });
    await client.messages.create(msg('warm', { temperature: 0.7 }));
    await cache.flush();
    await client.messages.create(msg('warm', { temperature: 0.7 }));
    expect(server.count('/messages')).toBe(2);
  });
});

describe('streaming', () => {
  it('messages.create({ stream: true }) replays event for event (tool use, thinking, usage)', async () => {
    const { client, cache, layer } = setup();
    const req = msg('Weather in Lima?', { tools: [weatherTool], thinking: { type: 'enabled' as const, budget_tokens: 1024 }, stream: true as const });
    const live = await collect(await client.messages.create(req));
    const types = new Set(live.map((e) => (e.type === 'content_block_delta' ? e.delta.type : e.type)));
    for (const t of ['message_start', 'thinking_delta', 'signature_delta', 'text_delta', 'input_json_delta', 'message_delta', 'message_stop'])
      expect(types).toContain(t);
    await cache.flush();
    const { data, response } = await client.messages.create(req).withResponse();
    const replay = await collect(data);
    expect(server.count('/messages')).toBe(1);
    expect(replay).toEqual(live);
    expect(getCacheInfo(response)).toMatchObject({ hit: true });
    // The stored entry also holds the equivalent non-streaming message, with Anthropic's usage mapped.
    const entry = stored(layer)[0]!.entry;
    const expected = anthropicMessage({ ...req, stream: false } as never, 0);
    expect(entry.value).toEqual(expected);
    expect(entry.usage).toEqual({ inputTokens: expected.usage.input_tokens, outputTokens: expected.usage.output_tokens });
  });

  it('messages.stream() works on a hit: same text events and final message', async () => {
    const { client, cache } = setup();
    const req = msg('Tell me something');
    const run = async () => {
      const s = client.messages.stream(req);
      const texts: string[] = [];
      s.on('text', (t) => texts.push(t));
      const final = await s.finalMessage();
      return { texts, final: plain(final) };
    };
    const live = await run();
    await cache.flush();
    const hit = await run();
    expect(server.count('/messages')).toBe(1);
    expect(hit).toEqual(live);
    expect(hit.texts.length).toBeGreaterThan(2);
    const s = client.messages.stream(req);
    await s.finalMessage();
    expect(getCacheInfo(s)).toMatchObject({ hit: true, layer: 'l1' });
  });

  it('beta.messages is cached too, keyed by its anthropic-beta header', async () => {
    const { client, cache } = setup();
    const a = await client.beta.messages.create({ ...msg('beta hi'), betas: ['context-management-2025-06-27'] });
    await cache.flush();
    const b = await client.beta.messages.create({ ...msg('beta hi'), betas: ['context-management-2025-06-27'] });
    expect(plain(b)).toEqual(plain(a));
    expect(server.count('/messages')).toBe(1);
    await client.beta.messages.create({ ...msg('beta hi'), betas: ['interleaved-thinking-2025-05-14'] });
    expect(server.count('/messages')).toBe(2);
  });

  it("pacing 'recorded' keeps the original gaps between events", async () => {
    const { client, cache } = setup({ replay: { pacing: 'recorded', maxGapMs: 500 } });
    const req = msg('paced words for a paced stream', { stream: true as const });
    const events = anthropicMessageEvents(req as never, 0);
    server.enqueue(sse(events, { intervalMs: 25 }));
    const live = await collect(await client.messages.create(req));
    await cache.flush();
    const t0 = performance.now();
    const replay = await collect(await client.messages.create(req));
    expect(replay).toEqual(live);
    // Lower bound only (timers may fire late, never early by more than a tick).
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25 * (events.length - 1) * 0.8);
  });

  it('a completed stream also serves later non-streaming requests; a JSON answer never serves a stream', async () => {
    const { client, cache } = setup();
    await client.messages.create(msg('same'));
    await cache.flush();
    await collect(await client.messages.create(msg('same', { stream: true as const })));
    expect(server.count('/messages')).toBe(2);

    const streamed = client.messages.stream(msg('streamed first'));
    const final = await streamed.finalMessage();
    await cache.flush();
    const json = await client.messages.create(msg('streamed first'));
    expect(server.count('/messages')).toBe(3);
    expect(getCacheInfo(json)?.hit).toBe(true);
    // Exactly what the API returns for the non-streaming request.
    expect(plain(json)).toEqual(anthropicMessage(msg('streamed first') as never, 2));
    expect(json.content).toEqual(final.content);
    // The upstream call was counted once, although two entries were written.
    const price = findPrice(ANTHROPIC_PRICES, 'claude-sonnet-4-20250514')!;
    const s = cache.stats();
    const usage = { inputTokens: final.usage.input_tokens, outputTokens: final.usage.output_tokens };
    const first = anthropicMessage(msg('same') as never, 0).usage;
    const second = anthropicMessage(msg('same') as never, 1).usage;
    expect(s.upstreamUsd).toBeCloseTo(
      costUsd(usage, price) +
        costUsd({ inputTokens: first.input_tokens, outputTokens: first.output_tokens }, price) +
        costUsd({ inputTokens: second.input_tokens, outputTokens: second.output_tokens }, price),
      12,
    );
  });
});

describe('failures are never stored', () => {
  it('a client abort mid-stream stores nothing', async () => {
    const { client, cache, layer } = setup();
    const req = msg('a long answer with many words to stream slowly please', { stream: true as const });
    server.enqueue(sse(anthropicMessageEvents(req as never, 0), { intervalMs: 30 }));
    const s = client.messages.stream(msg('a long answer with many words to stream slowly please'));
    let n = 0;
    s.on('text', () => {
      if (++n === 2) s.abort();
    });
    await expect(s.finalMessage()).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 100));
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
  });

  it('truncated, reset and error-event streams store nothing', async () => {
    const { client, cache, layer } = setup();
    const req = msg('cut', { stream: true as const });
    const events = anthropicMessageEvents(req as never, 0);
    server.enqueue(sse(events, { cutAfter: { events: 4, how: 'end' } }));
    await collect(await client.messages.create(req)).catch(() => undefined);
    server.enqueue(sse(events, { cutAfter: { events: 4, how: 'destroy' } }));
    await expect(collect(await client.messages.create(req))).rejects.toThrow();
    server.enqueue(sse([...events.slice(0, 3), { event: 'error', data: anthropicError('overloaded_error', 'Overloaded') }]));
    await expect(collect(await client.messages.create(req))).rejects.toThrow(/Overloaded/);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    await collect(await client.messages.create(req));
    await cache.flush();
    // The stream entry, and its non-stream twin.
    expect(
      stored(layer)
        .map((x) => Array.isArray(x.entry.chunks))
        .sort(),
    ).toEqual([false, true]);
  });

  it('a stream with malformed event JSON is not stored, though it ends with message_stop; the next call goes upstream', async () => {
    const { client, cache, layer } = setup();
    const req = msg('garbled', { stream: true as const });
    const events = anthropicMessageEvents(req as never, 0);
    const i = events.findIndex((e) => e.event === 'content_block_delta');
    server.enqueue(sse([...events.slice(0, i), { event: 'content_block_delta', data: '{"type":"content_block_delta","ind' }, ...events.slice(i + 1)]));
    await expect(collect(await client.messages.create(req))).rejects.toThrow();
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    await collect(await client.messages.create(req));
    expect(server.count('/messages')).toBe(2);
  });

  it('500, 429, 529 and 400 pass through unchanged and are not stored', async () => {
    const { client, cache, layer, bare } = setup();
    for (const [status, type] of [
      [500, 'api_error'],
      [429, 'rate_limit_error'],
      [529, 'overloaded_error'],
      [400, 'invalid_request_error'],
    ] as const) {
      const body = anthropicError(type, `upstream says ${status}`);
      server.enqueue(httpError(status, body, { 'request-id': `req_err_${status}`, 'retry-after': '3' }));
      const a = (await client.messages.create(msg('fail')).catch((e: unknown) => e)) as InstanceType<typeof InternalServerError>;
      server.enqueue(httpError(status, body, { 'request-id': `req_err_${status}`, 'retry-after': '3' }));
      const b = (await bare.messages.create(msg('fail')).catch((e: unknown) => e)) as InstanceType<typeof InternalServerError>;
      expect(a.constructor).toBe(b.constructor);
      if (status === 429) expect(a).toBeInstanceOf(RateLimitError);
      if (status === 400) expect(a).toBeInstanceOf(BadRequestError);
      expect(a.status).toBe(status);
      expect(a.message).toBe(b.message);
      expect(a.error).toEqual(b.error);
      expect(a.requestID).toBe(`req_err_${status}`);
      server.enqueue(httpError(status, body));
      await expect(client.messages.create(msg('fail', { stream: true as const }))).rejects.toHaveProperty('status', status);
    }
    server.enqueue(hangup());
    await expect(client.messages.create(msg('fail'))).rejects.toBeInstanceOf(APIConnectionError);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
  });
});

describe('isolation, secrets, accounting', () => {
  it('two tenants with the same prompt never share an entry', async () => {
    const { cache } = memoryCache();
    const bare = new Anthropic({ apiKey: SECRET_KEY, baseURL: server.baseURL });
    const a = withCache(bare, { cache, scope: 'tenant-a' });
    const b = withCache(bare, { cache, scope: { tenant: 'tenant-b' } });
    const ra = await a.messages.create(msg('shared'));
    await cache.flush();
    const rb = await b.messages.create(msg('shared'));
    expect(rb.id).not.toBe(ra.id);
    await cache.flush();
    expect((await a.messages.create(msg('shared'))).id).toBe(ra.id);
    expect((await a.messages.create(msg('shared'), { headers: cacheControl({ tenant: 'tenant-b' }) })).id).toBe(rb.id);
    expect(server.count('/messages')).toBe(2);
  });

  it('no API key or auth header is written to a layer, key, event or log; control headers never leave', async () => {
    const { client, cache, layer } = setup();
    const out = watchOutput(cache);
    try {
      for (let round = 0; round < 2; round++) {
        await client.messages.create(msg('secret check'), { headers: cacheControl({ tags: ['t1'] }) });
        await collect(await client.messages.create(msg('secret check', { stream: true as const })));
        const bearer = withCache(new Anthropic({ authToken: 'tok-SECRET-bearer', apiKey: null, baseURL: server.baseURL }), { cache });
        await bearer.messages.create(msg('bearer check'));
        await cache.flush();
      }
    } finally {
      out.restore();
    }
    const all = stored(layer);
    expect(all).toHaveLength(3);
    const dump = JSON.stringify(all).toLowerCase();
    const logs = out.dump();
    // Not vacuous: the record holds writes and hits with their keys.
    expect(out.events.filter((e) => e.name === 'hit')).toHaveLength(3);
    expect(out.events.filter((e) => e.name === 'set').length).toBeGreaterThanOrEqual(3);
    expect(logs).toContain(all[0]!.key.hash.toLowerCase());
    for (const secret of [SECRET_KEY, 'tok-SECRET-bearer', 'x-api-key', 'authorization', 'org-server-side']) {
      expect(dump).not.toContain(secret.toLowerCase());
      expect(logs).not.toContain(secret.toLowerCase());
    }
    // The upstream did receive the credentials (x-api-key or Bearer, depending on the SDK version).
    expect(JSON.stringify(server.requests[0]!.headers)).toContain(SECRET_KEY);
    expect(server.requests[2]!.headers['authorization']).toBe('Bearer tok-SECRET-bearer');
    for (const r of server.requests) expect(Object.keys(r.headers).filter((h) => h.startsWith('x-strata-'))).toEqual([]);
  });

  it('prompt-cache reads and writes feed the statistics at their own prices', async () => {
    const pc = await startAnthropicServer({ cacheReadTokens: 10, cacheCreationTokens: 5 });
    try {
      const { cache, layer } = memoryCache({ prices: ANTHROPIC_PRICES });
      const client = createCachedAnthropic({ cache, clientOptions: { apiKey: SECRET_KEY, baseURL: pc.baseURL } });
      const req = msg('y'.repeat(200), { model: 'claude-sonnet-4-20250514' });
      const live = await client.messages.create(req);
      await cache.flush();
      const usage = stored(layer)[0]!.entry.usage!;
      expect(usage).toEqual({
        inputTokens: live.usage.input_tokens + 15,
        outputTokens: live.usage.output_tokens,
        cachedInputTokens: 10,
        cacheWriteInputTokens: 5,
      });
      await client.messages.create(req);
      const s = cache.stats();
      const price = findPrice(ANTHROPIC_PRICES, 'claude-sonnet-4-20250514')!;
      expect(s.providerCachedTokens).toBe(10);
      expect(s.usdSaved).toBeCloseTo(costUsd(usage, price), 12);
      expect(s.tokensSaved.input).toBe(usage.inputTokens);
    } finally {
      await pc.close();
    }
  });

  it('validates options', () => {
    const { cache, bare } = setup();
    expect(() => withCache(bare, { cache, scopes: 'x' } as never)).toThrow(InvalidOptionError);
    expect(() => createCachedAnthropic({ cache, client: bare, clientOptions: {} })).toThrow(/either "client" or "clientOptions"/);
  });
});
