// The gateway through the official SDKs and curl, base URL pointed at it: JSON and streams, a
// second identical call served from the cache with the same bytes, tenants isolated, revoked
// keys refused.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Anthropic } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, KEYS, chat, harness, message, openaiSdk } from './helpers.js';

const run = promisify(execFile);
let h: Harness;
let OpenAI: Awaited<ReturnType<typeof openaiSdk>>;
beforeAll(async () => {
  OpenAI = await openaiSdk();
  h = await harness();
});
afterAll(() => h.close());
beforeEach(() => {
  h.openai.reset();
  h.anthropic.reset();
});

const openai = (key: string = KEYS.acme) => new OpenAI({ apiKey: key, baseURL: h.gw.url + '/v1', maxRetries: 0 });
const anthropic = (key: string = KEYS.acme) => new Anthropic({ apiKey: key, baseURL: h.gw.url, maxRetries: 0 });

describe('openai SDK', () => {
  it('chat completions: the second identical call is a hit with the same bytes', async () => {
    const body = chat('sdk json');
    const first = await openai().chat.completions.create(body).asResponse();
    const firstText = await first.text();
    const second = await openai().chat.completions.create(body).asResponse();
    expect(first.headers.get('x-strata-cache')).toBe('miss');
    expect(second.headers.get('x-strata-cache')).toBe('hit');
    expect(second.headers.get('x-strata-layer')).toBe('l1');
    expect(await second.text()).toBe(firstText);
    const parsed = await openai().chat.completions.create(body);
    expect(parsed.choices[0]!.message.content).toBe('Echo: sdk json');
    expect(h.openai.count('/chat/completions')).toBe(1);
  });

  it('chat completion streams replay chunk for chunk, with the same bytes', async () => {
    const body = { ...chat('sdk stream'), stream: true as const, stream_options: { include_usage: true } };
    const collect = async () => {
      const chunks = [];
      for await (const c of await openai().chat.completions.create(body)) chunks.push(c);
      return chunks;
    };
    const live = await collect();
    const replayed = await collect();
    expect(replayed).toEqual(live);
    expect(replayed.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('Echo: sdk stream');
    const raw1 = await (await openai().chat.completions.create(body).asResponse()).text();
    const raw2 = await (await openai().chat.completions.create(body).asResponse()).text();
    expect(raw2).toBe(raw1);
    expect(h.openai.count('/chat/completions')).toBe(1);
  });

  it('responses (JSON and stream) and embeddings', async () => {
    const r1 = await openai().responses.create({ model: 'gpt-4.1-mini', temperature: 0, input: 'responses json' }).withResponse();
    const r2 = await openai().responses.create({ model: 'gpt-4.1-mini', temperature: 0, input: 'responses json' }).withResponse();
    expect(r1.response.headers.get('x-strata-cache')).toBe('miss');
    expect(r2.response.headers.get('x-strata-cache')).toBe('hit');
    expect(r2.data.output_text).toBe(r1.data.output_text);

    const events = async () => {
      const out = [];
      for await (const e of await openai().responses.create({ model: 'gpt-4.1-mini', temperature: 0, input: 'responses stream', stream: true })) out.push(e);
      return out;
    };
    const live = await events();
    expect(await events()).toEqual(live);

    const e1 = await openai()
      .embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] })
      .withResponse();
    const e2 = await openai()
      .embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] })
      .withResponse();
    expect(e2.response.headers.get('x-strata-cache')).toBe('hit');
    expect(e2.data.data).toEqual(e1.data.data);
    expect(h.openai.count('/responses')).toBe(2);
    expect(h.openai.count('/embeddings')).toBe(1);
  });

  it('models are passed through (authenticated, never cached)', async () => {
    await openai()
      .models.list()
      .catch(() => undefined);
    await openai()
      .models.list()
      .catch(() => undefined);
    expect(h.openai.count('/models')).toBe(2);
    expect(h.openai.requests.at(-1)!.headers['authorization']).not.toContain(KEYS.acme);
  });
});

describe('@anthropic-ai/sdk', () => {
  it('messages: JSON and streams, the second call a hit with the same bytes', async () => {
    const body = message('anthropic json');
    const a = await anthropic().messages.create(body).asResponse();
    const aText = await a.text();
    const b = await anthropic().messages.create(body).asResponse();
    expect(a.headers.get('x-strata-cache')).toBe('miss');
    expect(b.headers.get('x-strata-cache')).toBe('hit');
    expect(await b.text()).toBe(aText);

    const s = message('anthropic stream');
    const live = await anthropic().messages.stream(s).finalMessage();
    const replay = anthropic().messages.stream(s);
    const replayed = await replay.finalMessage();
    expect(replayed).toEqual(live);
    const raw1 = await (
      await anthropic()
        .messages.create({ ...s, stream: true })
        .asResponse()
    ).text();
    const raw2 = await (
      await anthropic()
        .messages.create({ ...s, stream: true })
        .asResponse()
    ).text();
    expect(raw2).toBe(raw1);
    expect(h.anthropic.count('/messages')).toBe(2); // one JSON, one stream
    // The upstream got the gateway's credential, never the caller's key.
    expect(h.anthropic.requests.every((r) => r.headers['x-api-key'] === 'sk-upstream-SECRET-0123456789')).toBe(true);
  });
});

describe('tenants and keys', () => {
  it('tenants are isolated; keys of one tenant share its cache', async () => {
    const body = chat('tenant isolation');
    await openai(KEYS.acme).chat.completions.create(body);
    const sameTenant = await openai(KEYS.acme2).chat.completions.create(body).withResponse();
    const otherTenant = await openai(KEYS.globex).chat.completions.create(body).withResponse();
    expect(sameTenant.response.headers.get('x-strata-cache')).toBe('hit');
    expect(otherTenant.response.headers.get('x-strata-cache')).toBe('miss');
    expect(h.openai.count('/chat/completions')).toBe(2);
  });

  it('a revoked or unknown key gets nothing, not even a cached answer', async () => {
    const body = chat('revoked');
    await openai(KEYS.acme).chat.completions.create(body);
    for (const key of [KEYS.revoked, 'sgw_never-issued']) {
      const err = await openai(key)
        .chat.completions.create(body)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
      const aerr = await anthropic(key)
        .messages.create(message('revoked'))
        .catch((e: unknown) => e);
      expect(aerr).toBeInstanceOf(Anthropic.AuthenticationError);
    }
    expect(h.openai.count('/chat/completions')).toBe(1);
    expect(h.anthropic.count()).toBe(0);
  });
});

describe('curl', () => {
  it('JSON and a stream: the second call is served from the cache with the same bytes', async () => {
    const curl = async (body: unknown) => {
      const { stdout } = await run('curl', [
        '-sS',
        '-N',
        '-D',
        '-',
        '-H',
        `Authorization: Bearer ${KEYS.acme}`,
        '-H',
        'content-type: application/json',
        '--data-binary',
        JSON.stringify(body),
        `${h.gw.url}/v1/chat/completions`,
      ]);
      const [head, ...rest] = stdout.split('\r\n\r\n');
      return { head: head!, body: rest.join('\r\n\r\n') };
    };
    for (const body of [chat('curl json'), { ...chat('curl stream'), stream: true }]) {
      const a = await curl(body);
      const b = await curl(body);
      expect(a.head).toMatch(/x-strata-cache: miss/);
      expect(b.head).toMatch(/x-strata-cache: hit/);
      expect(b.body).toBe(a.body);
      expect(b.body.length).toBeGreaterThan(50);
    }
    expect(h.openai.count('/chat/completions')).toBe(2);
  });
});
