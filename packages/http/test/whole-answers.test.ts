// An upstream that answers whole (`withWholeAnswers`): JSON requests go through its whole-answer
// function, without a Response, and reach the caller exactly as the provider sent them.
import { InvalidOptionError } from '@strata-cache/core';
import { memoryCache, stored } from '@strata-cache/provider-test-servers';
import { describe, expect, it } from 'vitest';
import { type FetchLike, type WholeAnswer, createProviderFetch, fetchAnswer, getCacheInfo, withWholeAnswers } from '../src/index.js';
import { testSpec } from './spec.js';

const SPEC = testSpec();
const URL_ = 'http://upstream.test/v1/chat/completions';
const request = (content: string, stream = false): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content }], ...(stream ? { stream: true } : {}) }),
});
const utf8 = (s: string) => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
};

/** An upstream whose answers are `answer(n)` (n counts whole answers); its plain fetch is counted apart. */
function upstream(answer: (n: number) => WholeAnswer) {
  const calls = { whole: 0, fetch: 0 };
  const plain: FetchLike = async () => {
    calls.fetch++;
    return new Response('data: {"x":1}\n\ndata: [DONE]\n\n', { status: 200, headers: { 'content-type': 'text/event-stream' } });
  };
  const fetch = withWholeAnswers(plain, async () => answer(calls.whole++));
  const { cache, layer } = memoryCache();
  return { calls, cache, layer, caching: createProviderFetch({ cache }, SPEC, fetch) };
}

const json = (body: Uint8Array, headers: Record<string, string | readonly string[]> = {}): WholeAnswer => ({
  status: 200,
  statusText: 'OK',
  headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers },
  body,
});

describe('withWholeAnswers', () => {
  it('JSON requests are answered through the whole-answer function (the plain fetch only streams); the miss is the provider bytes, the repeat a hit', async () => {
    const bytes = utf8('{"id":"a","choices":[{"message":{"content":"answer"}}]}');
    const { calls, cache, layer, caching } = upstream(() => json(bytes));
    const miss = await caching(URL_, request('one'));
    expect(getCacheInfo(miss)).toEqual({ hit: false, status: 'miss' });
    expect(new Uint8Array(await miss.arrayBuffer())).toEqual(bytes);
    await cache.flush();
    expect(stored(layer)).toHaveLength(1);
    const hit = await caching(URL_, request('one'));
    expect(getCacheInfo(hit)?.hit).toBe(true);
    expect(await hit.json()).toEqual(JSON.parse(new TextDecoder().decode(bytes)));
    await (await caching(URL_, request('one', true))).text();
    expect(calls).toEqual({ whole: 1, fetch: 1 });
  });

  it('hands the bytes on exactly: a byte order mark, bytes that are not UTF-8; repeated headers stay apart; length and encoding are dropped', async () => {
    const bom = concat(new Uint8Array([0xef, 0xbb, 0xbf]), utf8('{"id":"bom"}'));
    // 0xff inside a string: not UTF-8 (a lenient decoder would hand on U+FFFD instead).
    const broken = concat(utf8('{"id":"'), new Uint8Array([0xff]), utf8('"}'));
    const answers = [json(bom, { 'set-cookie': ['a=1', 'b=2'], 'content-encoding': 'gzip' }), json(broken)];
    const { caching } = upstream((n) => answers[n]!);
    const first = await caching(URL_, request('bom'));
    expect(new Uint8Array(await first.arrayBuffer())).toEqual(bom);
    expect(first.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(first.headers.get('content-length')).toBeNull();
    expect(first.headers.get('content-encoding')).toBeNull();
    expect(first.headers.get('x-strata-cache')).toBe('miss');
    const second = await caching(URL_, request('broken'));
    expect(new Uint8Array(await second.arrayBuffer())).toEqual(broken);
    // The same bytes through an upstream without whole answers (its Response read by the caching fetch).
    const { cache } = memoryCache();
    const plain = createProviderFetch(
      { cache },
      SPEC,
      (async () => new Response(broken, { status: 200, headers: { 'content-type': 'application/json' } })) as FetchLike,
    );
    expect(new Uint8Array(await (await plain(URL_, request('broken'))).arrayBuffer())).toEqual(broken);
    // fetchAnswer hands the record itself on, both cookies in it.
    const { caching: other } = upstream(() => json(utf8('{"id":"c"}'), { 'set-cookie': ['a=1', 'b=2'] }));
    const answer = await fetchAnswer(other, URL_, request('record'));
    expect((answer.headers as Record<string, unknown>)['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(answer.body).toBe('{"id":"c"}');
  });

  it('an error status or a body that is not a JSON object is handed on untouched and nothing is stored', async () => {
    const answers: WholeAnswer[] = [
      {
        status: 429,
        statusText: 'Too Many Requests',
        headers: { 'content-type': 'application/json', 'retry-after': '1' },
        body: utf8('{"error":"slow down"}'),
      },
      { status: 200, statusText: 'OK', headers: { 'content-type': 'text/html' }, body: utf8('<html>proxy</html>') },
      json(utf8('{"id":"finally"}')),
    ];
    const { calls, cache, layer, caching } = upstream((n) => answers[n]!);
    const limited = await caching(URL_, request('same'));
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(await limited.text()).toBe('{"error":"slow down"}');
    const page = await caching(URL_, request('same'));
    expect(page.status).toBe(200);
    expect(await page.text()).toBe('<html>proxy</html>');
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    expect(await (await caching(URL_, request('same'))).json()).toEqual({ id: 'finally' });
    expect(calls.whole).toBe(3);
  });

  it('a failing whole-answer function fails the call as fetch would; bad arguments are refused', async () => {
    const { caching } = upstream(() => {
      throw new TypeError('fetch failed');
    });
    await expect(caching(URL_, request('down'))).rejects.toThrow('fetch failed');
    expect(() => withWholeAnswers(undefined as never, async () => json(utf8('{}')))).toThrow(InvalidOptionError);
    expect(() => withWholeAnswers(globalThis.fetch as FetchLike, 'no' as never)).toThrow(InvalidOptionError);
  });
});
