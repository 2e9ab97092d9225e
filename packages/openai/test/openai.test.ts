import { costUsd, findPrice } from '@strata-cache/core';
import {
  type ProviderServer,
  hangup,
  httpError,
  openAIError,
  sse,
  startOpenAIServer,
  chatCompletionChunks,
  chatCompletion,
  json,
  openAIResponse,
  openAIResponseBody,
  openAIResponseEvents,
  SECRET_KEY,
  SECRET_ORG,
  SECRET_PROJECT,
  collect,
  memoryCache,
  plain,
  stored,
  watchOutput,
} from '@strata-cache/provider-test-servers';
import { APIConnectionError, APIUserAbortError, BadRequestError, InternalServerError, OpenAI, RateLimitError } from 'openai';
import { makeParseableResponseFormat } from 'openai/lib/parser';
import { VERSION } from 'openai/version';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidOptionError } from '@strata-cache/core';
import { OPENAI_PRICES, OpenAIEmbedder, cacheControl, createCachedOpenAI, getCacheInfo, withCache } from '../src/index.js';

let server: ProviderServer;
beforeAll(async () => {
  server = await startOpenAIServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

function setup(extra: Partial<Parameters<typeof createCachedOpenAI>[0]> = {}, cacheOptions = {}) {
  const { cache, layer } = memoryCache(cacheOptions);
  const bare = new OpenAI({ apiKey: SECRET_KEY, organization: SECRET_ORG, project: SECRET_PROJECT, baseURL: server.baseURL, maxRetries: 0 });
  const client = withCache(bare, { cache, ...extra });
  return { cache, layer, bare, client };
}

const chat = <E extends object = Record<never, never>>(content: string, extra?: E) => ({
  model: 'gpt-4o-mini',
  temperature: 0,
  messages: [
    { role: 'system' as const, content: 'You are terse.' },
    { role: 'user' as const, content },
  ],
  ...(extra as E),
});

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
  },
};

describe('the SDK under test', () => {
  it(`is openai ${VERSION}, the major chosen for Node ${process.versions.node}`, () => {
    // openai 7 on Node >= 22, openai 6 below (or as STRATA_OPENAI_SDK says): see vitest.config.ts.
    expect(VERSION.split('.')[0]).toBe(process.env['STRATA_OPENAI_SDK_UNDER_TEST']);
  });
});

describe('chat.completions.create (JSON)', () => {
  it('miss calls the API once, the repeat is a hit with an equal object', async () => {
    const { client, cache } = setup();
    const live = await client.chat.completions.create(chat('What is 2+2?'));
    expect(server.count('/chat/completions')).toBe(1);
    expect(getCacheInfo(live)).toBeUndefined();
    await cache.flush();
    const again = await client.chat.completions.create(chat('What is 2+2?', { user: 'someone-else', metadata: { run: '2' }, store: true }));
    expect(server.count('/chat/completions')).toBe(1);
    expect(plain(again)).toEqual(plain(live));
    const info = getCacheInfo(again);
    expect(info).toMatchObject({ hit: true, layer: 'l1' });
    expect(info!.ageMs).toBeGreaterThanOrEqual(0);
  });

  it('fields that change the answer miss', async () => {
    const { client, cache } = setup();
    await client.chat.completions.create(chat('Hello'));
    await cache.flush();
    await client.chat.completions.create(chat('Hello', { max_tokens: 5 }));
    await client.chat.completions.create(chat('Hello', { model: 'gpt-4.1' }));
    await client.chat.completions.create(chat('Hello!'));
    expect(server.count('/chat/completions')).toBe(4);
  });

  it('tool calls, n > 1 and JSON-schema parse() replay exactly', async () => {
    const { client, cache } = setup();
    const toolReq = chat('Weather in Paris?', { tools: [weatherTool], tool_choice: 'auto' as const });
    const live = await client.chat.completions.create(toolReq);
    expect(live.choices[0]!.message.tool_calls?.[0]).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
    await cache.flush();
    expect(plain(await client.chat.completions.create(toolReq))).toEqual(plain(live));

    const nReq = chat('Two answers', { n: 2 });
    const liveN = await client.chat.completions.create(nReq);
    await cache.flush();
    const hitN = await client.chat.completions.create(nReq);
    expect(hitN.choices).toHaveLength(2);
    expect(plain(hitN)).toEqual(plain(liveN));

    const format = makeParseableResponseFormat(
      {
        type: 'json_schema',
        json_schema: { name: 'answer', strict: true, schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] } },
      },
      (s) => JSON.parse(s) as { answer: string },
    );
    const parsedLive = await client.chat.completions.parse(chat('Structured please', { response_format: format }));
    await cache.flush();
    const parsedHit = await client.chat.completions.parse(chat('Structured please', { response_format: format }));
    expect(parsedHit.choices[0]!.message.parsed).toEqual({ answer: 'Echo: Structured please' });
    expect(plain(parsedHit)).toEqual(plain(parsedLive));
    expect(server.count('/chat/completions')).toBe(3);
  });

  it('non-deterministic requests are not cached under the default policy', async () => {
    const { client, cache } = setup({}, { policy: 'deterministic' });
    await client.chat.completions.create(chat('Creative', { temperature: 1 }));
    await cache.flush();
    await client.chat.completions.create(chat('Creative', { temperature: 1 }));
    expect(server.count('/chat/completions')).toBe(2);
    await client.chat.completions.create(chat('Exact'));
    await cache.flush();
    await client.chat.completions.create(chat('Exact'));
    expect(server.count('/chat/completions')).toBe(3);
  });
});

describe('chat.completions.create (stream)', () => {
  it('streams a miss live and replays it chunk for chunk, tool-call deltas and usage included', async () => {
    const { client, cache, layer } = setup();
    const req = chat('Weather in Oslo?', { tools: [weatherTool], stream: true as const, stream_options: { include_usage: true } });
    const live = await collect(await client.chat.completions.create(req));
    expect(live.some((c) => c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments)).toBe(true);
    expect(live.at(-1)!.usage).toMatchObject({ prompt_tokens: expect.any(Number) });
    await cache.flush();
    // The stream, and (with its usage chunk it is the whole answer) its non-stream twin.
    expect(stored(layer)).toHaveLength(2);
    const { data: stream, response } = await client.chat.completions.create(req).withResponse();
    const replayed = await collect(stream);
    expect(server.count('/chat/completions')).toBe(1);
    expect(replayed).toEqual(live);
    expect(getCacheInfo(response)).toMatchObject({ hit: true, layer: 'l1' });
    const { stream: _, stream_options: __, ...plainReq } = req;
    const whole = await client.chat.completions.create(plainReq);
    expect(getCacheInfo(whole)).toMatchObject({ hit: true, layer: 'l1' });
    const call = whole.choices[0]!.message.tool_calls?.[0];
    expect(call?.type === 'function' ? call.function.arguments : undefined).toBe(
      live.map((c) => c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '').join(''),
    );
    expect(whole.usage).toEqual(live.at(-1)!.usage);
    expect(server.count('/chat/completions')).toBe(1);
  });

  it('replay.rebuildStreams: false keeps a stream with usage to its own form', async () => {
    const { client, cache, layer } = setup({ replay: { rebuildStreams: false } });
    const req = chat('Weather in Oslo?', { stream: true as const, stream_options: { include_usage: true } });
    await collect(await client.chat.completions.create(req));
    await cache.flush();
    expect(stored(layer)).toHaveLength(1);
    const { stream: _, stream_options: __, ...plainReq } = req;
    await client.chat.completions.create(plainReq);
    expect(server.count('/chat/completions')).toBe(2);
  });

  it('the SDK .stream() helper works on a hit and gives the same final completion', async () => {
    const { client, cache } = setup();
    const req = chat('Tell me a fact');
    const s1 = client.chat.completions.stream(req);
    const deltas1: string[] = [];
    s1.on('content', (d) => deltas1.push(d));
    const final1 = await s1.finalChatCompletion();
    await cache.flush();
    const s2 = client.chat.completions.stream(req);
    const deltas2: string[] = [];
    s2.on('content', (d) => deltas2.push(d));
    const final2 = await s2.finalChatCompletion();
    expect(server.count('/chat/completions')).toBe(1);
    expect(deltas2).toEqual(deltas1);
    expect(deltas2.length).toBeGreaterThan(2);
    expect(plain(final2)).toEqual(plain(final1));
  });

  it('stream and non-stream requests are keyed apart (no unfaithful cross-serving)', async () => {
    const { client, cache } = setup();
    await client.chat.completions.create(chat('Same prompt'));
    await cache.flush();
    const chunks = await collect(await client.chat.completions.create(chat('Same prompt', { stream: true as const })));
    expect(chunks.length).toBeGreaterThan(1);
    expect(server.count('/chat/completions')).toBe(2);
    // include_usage changes the wire form of the stream, so it is part of the key too.
    await cache.flush();
    await collect(await client.chat.completions.create(chat('Same prompt', { stream: true as const, stream_options: { include_usage: true } })));
    expect(server.count('/chat/completions')).toBe(3);
  });

  it('replays with the recorded pacing when asked', async () => {
    const { client, cache } = setup({ replay: { pacing: 40 } });
    const req = chat('one two three four five', { stream: true as const });
    const live = await collect(await client.chat.completions.create(req));
    await cache.flush();
    const t0 = performance.now();
    const replayed = await collect(await client.chat.completions.create(req));
    expect(replayed).toEqual(live);
    // Lower bound only: (events - 1) gaps of 40 ms.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(40 * (live.length - 1) - 5);
  });
});

describe('failures are never stored', () => {
  it('a client abort mid-stream stores nothing', async () => {
    const { client, cache, layer } = setup();
    const req = chat('a long answer with many words to stream slowly', { stream: true as const });
    server.enqueue(sse(chatCompletionChunks(req, 0), { intervalMs: 30 }));
    const stream = await client.chat.completions.create(req);
    let n = 0;
    for await (const _ of stream) {
      if (++n === 2) break; // breaking out aborts the request
    }
    await new Promise((r) => setTimeout(r, 100));
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    // An AbortController works the same way.
    const ac = new AbortController();
    server.enqueue(sse(chatCompletionChunks(req, 1), { intervalMs: 30 }));
    const s2 = await client.chat.completions.create(req, { signal: ac.signal });
    let k = 0;
    // The SDK ends the iteration quietly on a user abort.
    for await (const _ of s2) if (++k === 2) ac.abort();
    expect(k).toBeLessThan(chatCompletionChunks(req, 1).length - 1);
    await new Promise((r) => setTimeout(r, 100));
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
  });

  it('a truncated or reset stream stores nothing', async () => {
    const { client, cache, layer } = setup();
    const req = chat('cut me off', { stream: true as const });
    server.enqueue(sse(chatCompletionChunks(req, 0), { cutAfter: { events: 3, how: 'end' } }));
    const partial = await collect(await client.chat.completions.create(req));
    expect(partial).toHaveLength(3);
    server.enqueue(sse(chatCompletionChunks(req, 1), { cutAfter: { events: 3, how: 'destroy' } }));
    await expect(collect(await client.chat.completions.create(req))).rejects.toThrow();
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    // The next call goes upstream and completes, and only that one is stored.
    const full = await collect(await client.chat.completions.create(req));
    await cache.flush();
    expect(stored(layer)).toHaveLength(1);
    expect(await collect(await client.chat.completions.create(req))).toEqual(full);
    expect(server.count('/chat/completions')).toBe(3);
  });

  it('an error event inside a stream passes through and is not stored', async () => {
    const { client, cache, layer } = setup();
    const req = chat('explode', { stream: true as const });
    const events = chatCompletionChunks(req, 0);
    server.enqueue(sse([events[0]!, { data: { error: { message: 'overloaded mid-stream', type: 'server_error' } } }, { data: '[DONE]' }]));
    await expect(collect(await client.chat.completions.create(req))).rejects.toThrow(/overloaded mid-stream/);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
  });

  it('a stream with malformed event JSON or an error-named event is not stored; the next call goes upstream', async () => {
    const { client, cache, layer } = setup();
    const req = chat('garbled', { stream: true as const });
    const events = chatCompletionChunks(req, 0);
    // Ends with [DONE] like a complete stream, but one event is not JSON (the SDK throws on it).
    server.enqueue(sse([events[0]!, { data: '{"id":"chatcmpl-0","choices":[{"ind' }, ...events.slice(1)]));
    await expect(collect(await client.chat.completions.create(req))).rejects.toThrow();
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    // An `event: error` carries the provider's error even when its payload has no `error` field.
    server.enqueue(sse([events[0]!, { event: 'error', data: { message: 'overloaded mid-stream', type: 'server_error' } }, { data: '[DONE]' }]));
    await collect(await client.chat.completions.create(req)).catch(() => undefined);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    // The same for the Responses API.
    const rreq = { model: 'gpt-4o-mini', temperature: 0, input: 'garbled', stream: true as const };
    const revents = openAIResponseEvents(rreq, 0);
    server.enqueue(sse([revents[0]!, { event: 'response.in_progress', data: '{"type":"response.in_pro' }, ...revents.slice(2)]));
    await expect(collect(await client.responses.create(rreq))).rejects.toThrow();
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    const full = await collect(await client.chat.completions.create(req));
    expect(full.length).toBe(events.length - 1);
    expect(server.count('/chat/completions')).toBe(3);
  });

  it('500, 429 and 400 pass through unchanged (status, body, headers) and are not stored', async () => {
    const { client, cache, layer, bare } = setup();
    for (const [status, Err] of [
      [500, InternalServerError],
      [429, RateLimitError],
      [400, BadRequestError],
    ] as const) {
      const body = openAIError(`upstream says ${status}`, status === 429 ? 'rate_limit_error' : status === 400 ? 'invalid_request_error' : 'server_error');
      server.enqueue(httpError(status, body, { 'retry-after': '7', 'x-request-id': `req_err_${status}` }));
      const viaCache = await client.chat.completions.create(chat('fail')).catch((e: unknown) => e);
      server.enqueue(httpError(status, body, { 'retry-after': '7', 'x-request-id': `req_err_${status}` }));
      const viaBare = await bare.chat.completions.create(chat('fail')).catch((e: unknown) => e);
      expect(viaCache).toBeInstanceOf(Err);
      const a = viaCache as InstanceType<typeof Err>;
      const b = viaBare as InstanceType<typeof Err>;
      expect(a.status).toBe(status);
      expect(a.message).toBe(b.message);
      expect(a.error).toEqual(b.error);
      expect(a.headers.get('retry-after')).toBe('7');
      expect(a.requestID).toBe(`req_err_${status}`);
      // Streams too.
      server.enqueue(httpError(status, body));
      await expect(client.chat.completions.create(chat('fail', { stream: true as const }))).rejects.toBeInstanceOf(Err);
    }
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    await client.chat.completions.create(chat('fail'));
    expect(server.count('/chat/completions')).toBe(10);
  });

  it('a 200 whose JSON body is not a chat completion (an error object, as some compatible proxies send) is handed over, never stored', async () => {
    const { client, cache, layer } = setup();
    const req = chat('proxied failure');
    server.enqueue(json({ error: { message: 'upstream provider overloaded', type: 'server_error', code: 502 } }));
    const failed = (await client.chat.completions.create(req)) as unknown as { error?: { message: string } };
    expect(failed.error?.message).toBe('upstream provider overloaded');
    server.enqueue(json({ id: 'chatcmpl-x', object: 'chat.completion', created: 1, model: 'gpt-4o-mini' }));
    await client.chat.completions.create(req);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    // The next identical call goes upstream and its real answer is the one stored.
    const real = await client.chat.completions.create(req);
    expect(real.choices[0]!.message.content).toBe('Echo: proxied failure');
    await cache.flush();
    expect(stored(layer)).toHaveLength(1);
    expect(server.count('/chat/completions')).toBe(3);
  });

  it('SDK retries still work: a 429 then a success stores only the success', async () => {
    const { cache, layer } = memoryCache();
    const client = createCachedOpenAI({ cache, clientOptions: { apiKey: SECRET_KEY, baseURL: server.baseURL, maxRetries: 2 } });
    server.enqueue(httpError(429, openAIError('slow down', 'rate_limit_error'), { 'retry-after-ms': '10' }));
    const r = await client.chat.completions.create(chat('retry me'));
    expect(r.choices[0]!.message.content).toBe('Echo: retry me');
    await cache.flush();
    expect(stored(layer)).toHaveLength(1);
    expect(server.count('/chat/completions')).toBe(2);
  });

  it('identical concurrent misses share one upstream call; one caller aborting does not fail the others', async () => {
    const { client, cache } = setup();
    const req = chat('concurrent');
    server.enqueue(json(chatCompletion(req, 0), { delayMs: 150 }));
    const [a, b] = await Promise.all([client.chat.completions.create(req), client.chat.completions.create(req)]);
    expect(server.count('/chat/completions')).toBe(1);
    expect(plain(b)).toEqual(plain(a));

    const req2 = chat('concurrent abort');
    server.enqueue(json(chatCompletion(req2, 0), { delayMs: 150 }), json(chatCompletion(req2, 1), { delayMs: 10 }));
    const ac = new AbortController();
    const before = server.count('/chat/completions');
    const first = client.chat.completions.create(req2, { signal: ac.signal });
    const second = client.chat.completions.create(req2);
    // Abort the first caller once its (slow) upstream call is in flight.
    await vi.waitFor(() => expect(server.count('/chat/completions')).toBe(before + 1));
    ac.abort();
    await expect(first).rejects.toBeInstanceOf(APIUserAbortError);
    const r = await second;
    expect(r.id).toBe('chatcmpl-1');
    await cache.flush();
    expect((await client.chat.completions.create(req2)).id).toBe('chatcmpl-1');
    expect(server.count('/chat/completions')).toBe(3);
  });

  it('a network error passes through and stores nothing', async () => {
    const { client, cache, layer } = setup();
    server.enqueue(hangup());
    await expect(client.chat.completions.create(chat('net'))).rejects.toBeInstanceOf(APIConnectionError);
    server.enqueue(hangup());
    await expect(client.chat.completions.create(chat('net', { stream: true as const }))).rejects.toBeInstanceOf(APIConnectionError);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
  });
});

describe('Responses API', () => {
  const req = { model: 'gpt-4o-mini', temperature: 0, instructions: 'Be brief.', input: 'Name a colour.' };

  it('responses.create JSON: miss then hit, equal objects', async () => {
    const { client, cache } = setup();
    const live = await client.responses.create(req);
    expect(live.output_text).toBe('Echo: Name a colour.');
    await cache.flush();
    const hit = await client.responses.create(req);
    expect(server.count('/responses')).toBe(1);
    expect(plain(hit)).toEqual(plain(live));
    expect(hit.output_text).toBe(live.output_text);
    expect(getCacheInfo(hit)?.hit).toBe(true);
  });

  it('responses.create stream and responses.stream(): events replay exactly', async () => {
    const { client, cache, layer } = setup();
    const live = await collect(await client.responses.create({ ...req, stream: true }));
    expect(live.at(-1)!.type).toBe('response.completed');
    await cache.flush();
    const replay = await collect(await client.responses.create({ ...req, stream: true }));
    expect(replay).toEqual(live);
    const helper = client.responses.stream(req);
    const final = await helper.finalResponse();
    const msg = final.output[0] as { content: Array<{ text: string }> };
    expect(msg.content[0]!.text).toBe('Echo: Name a colour.');
    expect(server.count('/responses')).toBe(1);
    const entry = stored(layer)[0]!.entry;
    expect(entry.usage).toMatchObject({ inputTokens: expect.any(Number), outputTokens: expect.any(Number) });
  });

  it('a completed response stream also serves the non-streaming request (not the reverse)', async () => {
    const { client, cache } = setup();
    const events = await collect(await client.responses.create({ ...req, input: 'Streamed first', stream: true }));
    await cache.flush();
    const json = await client.responses.create({ ...req, input: 'Streamed first' });
    expect(server.count('/responses')).toBe(1);
    expect(getCacheInfo(json)?.hit).toBe(true);
    // output_text is the SDK's own convenience field, added to every parsed response.
    const { output_text: _t, ...body } = plain(json);
    expect(body).toEqual(plain((events.at(-1) as { response: unknown }).response));
    expect(body).toEqual(openAIResponse({ ...req, input: 'Streamed first' }, 0));
    // It is the response of `response.completed`, which lacks what the API adds to non-stream
    // bodies only: a live non-stream body carries `billing`, this hit does not.
    expect(body).not.toHaveProperty('billing');
    expect({ ...body, billing: { payer: 'developer' } }).toEqual(openAIResponseBody({ ...req, input: 'Streamed first' }, 0));
    // Chat completion chunks do not rebuild the exact non-stream object, so chat keeps them apart.
    await collect(await client.chat.completions.create(chat('chat stream first', { stream: true as const })));
    await cache.flush();
    await client.chat.completions.create(chat('chat stream first'));
    expect(server.count('/chat/completions')).toBe(2);
  });

  it('background requests are never cached', async () => {
    const { client, cache, layer } = setup();
    await client.responses.create({ ...req, background: true });
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
  });
});

describe('embeddings', () => {
  it('embeddings.create is cached exactly (base64 wire format decoded by the SDK)', async () => {
    const { client, cache } = setup();
    const live = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha beta', 'gamma'], dimensions: 64 });
    expect(live.data[0]!.embedding).toHaveLength(64);
    await cache.flush();
    const hit = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha beta', 'gamma'], dimensions: 64 });
    expect(server.count('/embeddings')).toBe(1);
    expect(plain(hit)).toEqual(plain(live));
    await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha beta', 'gamma'], dimensions: 32 });
    expect(server.count('/embeddings')).toBe(2);
  });

  it('OpenAIEmbedder: dimensions, normalised vectors, OpenAI-compatible baseURL', async () => {
    const e = new OpenAIEmbedder({ clientOptions: { apiKey: 'ollama', baseURL: server.baseURL }, dimensions: 256 });
    expect(e.dimensions).toBe(256);
    expect(e.id).toBe(`openai:${new URL(server.baseURL).host}:text-embedding-3-small:256`);
    const [a, b, c] = await e.embed(['the cat sat', 'the cat sat down', 'quantum chromodynamics']);
    const dot = (x: Float32Array, y: Float32Array) => x.reduce((s, v, i) => s + v * y[i]!, 0);
    expect(a).toHaveLength(256);
    expect(dot(a!, a!)).toBeCloseTo(1, 5);
    expect(dot(a!, b!)).toBeGreaterThan(dot(a!, c!));
    expect(server.requests.at(-1)!.body).toMatchObject({ model: 'text-embedding-3-small', dimensions: 256 });
    const local = new OpenAIEmbedder({ clientOptions: { apiKey: 'x', baseURL: server.baseURL }, model: 'nomic-embed-text', dimensions: 1536 });
    await local.embed(['hello']);
    expect(server.requests.at(-1)!.body.dimensions).toBeUndefined();
    expect(() => new OpenAIEmbedder({ clientOptions: { apiKey: 'x' }, model: 'nomic-embed-text' })).toThrow(InvalidOptionError);
    expect(() => new OpenAIEmbedder({ clientOptions: { apiKey: 'x' }, modle: 'x' } as never)).toThrow(/unknown OpenAIEmbedder option "modle"/);
  });
});

describe('isolation, secrets, accounting, control', () => {
  it('two tenants with the same prompt never share an entry', async () => {
    const { cache } = memoryCache();
    const bare = new OpenAI({ apiKey: SECRET_KEY, baseURL: server.baseURL });
    const a = withCache(bare, { cache, scope: { tenant: 'acme' } });
    const b = withCache(bare, { cache, scope: 'globex' });
    const ra = await a.chat.completions.create(chat('Shared prompt'));
    await cache.flush();
    const rb = await b.chat.completions.create(chat('Shared prompt'));
    expect(server.count('/chat/completions')).toBe(2);
    expect(rb.id).not.toBe(ra.id);
    await cache.flush();
    expect((await a.chat.completions.create(chat('Shared prompt'))).id).toBe(ra.id);
    expect((await b.chat.completions.create(chat('Shared prompt'))).id).toBe(rb.id);
    // Per-request tenant via cacheControl, and a scope function.
    const c = withCache(bare, { cache, scope: () => ({ tenant: 'acme' }) });
    expect((await c.chat.completions.create(chat('Shared prompt'))).id).toBe(ra.id);
    expect((await c.chat.completions.create(chat('Shared prompt'), { headers: cacheControl({ tenant: 'globex' }) })).id).toBe(rb.id);
    expect(server.count('/chat/completions')).toBe(2);
  });

  it('no API key, auth header, organisation or project id is written to a layer, key, event or log', async () => {
    const { client, cache, layer } = setup();
    const out = watchOutput(cache);
    try {
      for (let round = 0; round < 2; round++) {
        await client.chat.completions.create(chat('secret check'));
        await collect(await client.chat.completions.create(chat('secret check', { stream: true as const })));
        await client.responses.create({ model: 'gpt-4o-mini', temperature: 0, input: 'secret check' });
        await client.embeddings.create({ model: 'text-embedding-3-small', input: 'secret check' });
        await cache.flush();
      }
      // An upstream error on the way too (its response carries the organisation header back).
      server.enqueue(httpError(500, openAIError('boom', 'server_error')));
      await expect(client.chat.completions.create(chat('secret check: error'))).rejects.toBeInstanceOf(InternalServerError);
    } finally {
      out.restore();
    }
    const all = stored(layer);
    expect(all).toHaveLength(4);
    const dump = JSON.stringify(all).toLowerCase();
    const logs = out.dump();
    // Not vacuous: the record holds misses, writes and hits with their keys.
    expect(out.events.filter((e) => e.name === 'hit')).toHaveLength(4);
    expect(out.events.filter((e) => e.name === 'set').length).toBeGreaterThanOrEqual(4);
    expect(logs).toContain(all[0]!.key.hash.toLowerCase());
    for (const secret of [SECRET_KEY, SECRET_ORG, SECRET_PROJECT, 'Bearer', 'org-server-side', 'authorization']) {
      expect(dump).not.toContain(secret.toLowerCase());
      expect(logs).not.toContain(secret.toLowerCase());
    }
    // The upstream did receive them (the test would be vacuous otherwise).
    expect(server.requests[0]!.headers['authorization']).toBe(`Bearer ${SECRET_KEY}`);
    expect(server.requests[0]!.headers['openai-organization']).toBe(SECRET_ORG);
  });

  it('control headers steer one request and never reach the provider', async () => {
    const { client, cache, layer } = setup();
    await client.chat.completions.create(chat('ctl'), { headers: cacheControl({ bypass: true }) });
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    await client.chat.completions.create(chat('ctl'), { headers: cacheControl({ ttlMs: 60_000, tags: ['topic:ctl'] }) });
    await cache.flush();
    expect(stored(layer)[0]!.entry).toMatchObject({ ttlMs: 60_000, tags: ['topic:ctl'] });
    await client.chat.completions.create(chat('ctl'), { headers: cacheControl({ forceRefresh: true }) });
    expect(server.count('/chat/completions')).toBe(3);
    await client.chat.completions.create(chat('ctl'));
    expect(server.count('/chat/completions')).toBe(3);
    for (const r of server.requests) expect(Object.keys(r.headers).filter((h) => h.startsWith('x-strata-'))).toEqual([]);
  });

  it('provider prompt-cache tokens feed the statistics without double counting', async () => {
    const cachedServer = await startOpenAIServer({ cachedTokens: 8 });
    try {
      // The package's own price table, handed to the cache.
      const { cache, layer } = memoryCache({ prices: OPENAI_PRICES });
      const client = createCachedOpenAI({ cache, clientOptions: { apiKey: SECRET_KEY, baseURL: cachedServer.baseURL } });
      const long = 'x'.repeat(200);
      const live = await client.chat.completions.create(chat(long));
      expect(live.usage!.prompt_tokens_details!.cached_tokens).toBe(8);
      await cache.flush();
      const entry = stored(layer)[0]!.entry;
      expect(entry.usage).toEqual({ inputTokens: live.usage!.prompt_tokens, outputTokens: live.usage!.completion_tokens, cachedInputTokens: 8 });
      await client.chat.completions.create(chat(long));
      const s = cache.stats();
      expect(s.providerCachedTokens).toBe(8);
      const price = findPrice(OPENAI_PRICES, 'gpt-4o-mini')!;
      // Saved by Strata = what the call would have cost, provider discount already applied.
      expect(s.usdSaved).toBeCloseTo(costUsd(entry.usage!, price), 12);
      expect(s.providerCacheUsdSaved).toBeCloseTo((8 * (price.input - price.cachedInput!)) / 1e6, 12);
    } finally {
      await cachedServer.close();
    }
  });

  it('two OpenAI-compatible servers (baseURL) never share an entry; odd bodies pass through uncached', async () => {
    const other = await startOpenAIServer({ answerPrefix: 'Local model says: ' });
    try {
      const { cache, layer } = memoryCache();
      const remote = createCachedOpenAI({ cache, clientOptions: { apiKey: 'x', baseURL: server.baseURL } });
      const local = createCachedOpenAI({ cache, clientOptions: { apiKey: 'x', baseURL: other.baseURL } });
      const a = await remote.chat.completions.create(chat('Which server?'));
      await cache.flush();
      const b = await local.chat.completions.create(chat('Which server?'));
      expect(b.choices[0]!.message.content).toBe('Local model says: Which server?');
      expect(a.choices[0]!.message.content).toBe('Echo: Which server?');
      await cache.flush();
      expect(stored(layer)).toHaveLength(2);
      // A 200 that is not JSON (a proxy page) reaches the SDK as is and is not stored.
      other.setHandler(() => ({ kind: 'json', body: 'ignored' }));
      other.enqueue({ kind: 'json', body: '<html>gateway</html>', headers: { 'content-type': 'text/html' } });
      const page = await local.chat.completions.create(chat('html please')).catch((e: unknown) => e);
      expect(page).toBe('"<html>gateway</html>"');
      await cache.flush();
      expect(stored(layer)).toHaveLength(2);
    } finally {
      await other.close();
    }
  });

  it('withCache leaves the original client uncached; options are validated', async () => {
    const { client, bare, cache } = setup();
    await bare.chat.completions.create(chat('orig'));
    await bare.chat.completions.create(chat('orig'));
    expect(server.count('/chat/completions')).toBe(2);
    expect(client).toBeInstanceOf(OpenAI);
    expect(() => withCache(bare, { cache, ttl: 5 } as never)).toThrow(/unknown option "ttl"/);
    expect(() => withCache(bare, {} as never)).toThrow(/option "cache"/);
    expect(() => withCache(bare, { cache, endpoints: ['images'] as never })).toThrow(InvalidOptionError);
    expect(() => withCache(bare, { cache, replay: { pacing: 'fast' as never } })).toThrow(/replay.pacing/);
  });
});
