// What the upstream does wrong, relayed faithfully: a stream that breaks before its first event
// reaches the caller is an upstream failure (502 in the caller's API's format), never stored.
import { chatCompletionChunks, sse } from '@strata-cache/provider-test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, KEYS, chat, harness, json, rawExchange } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await harness();
});
afterAll(() => h.close());

describe('upstream failures', () => {
  it('a stream reset before its first event: 502 (not an internal error), nothing stored', async () => {
    const body = { ...chat('reset at once'), stream: true };
    h.openai.enqueue(sse(chatCompletionChunks(body as never, 1), { cutAfter: { events: 0, how: 'destroy' } }));
    const r = await h.post('/v1/chat/completions', body);
    expect(r.status).toBe(502);
    expect((await json(r)).error).toMatchObject({ type: 'api_error', message: expect.stringMatching(/openai upstream/) });
    await h.gw.log.flush();
    expect(h.logs.some((l) => /request failed/.test(l))).toBe(false);
    const again = await h.post('/v1/chat/completions', body);
    expect(again.headers.get('x-strata-cache')).toBe('miss');
    expect(await again.text()).toMatch(/data: \[DONE\]/);
  });
});

describe('models', () => {
  it('a model id of "." or ".." cannot lift the request out of the models path (404, nothing sent upstream)', async () => {
    // A raw request: fetch would resolve the dot segments itself, before sending.
    const get = (path: string) => rawExchange(h.gw.url, [`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer ${KEYS.acme}\r\n\r\n`]);
    for (const path of ['/v1/models/..', '/v1/models/%2e%2e', '/v1/models/%2E', '/v1/models/..?limit=1']) {
      const before = h.openai.count();
      const answer = await get(path);
      expect(answer, path).toMatch(/^HTTP\/1\.1 404/);
      expect(answer).toMatch(/"type":"not_found_error"/);
      expect(h.openai.count()).toBe(before);
    }
    await get('/v1/models/gpt-4o-mini?x=1');
    expect(h.openai.requests.at(-1)).toMatchObject({ path: '/v1/models/gpt-4o-mini', query: '?x=1' });
  });
});
