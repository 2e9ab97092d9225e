// What the upstream does wrong, relayed faithfully: a stream that breaks before its first event
// reaches the caller is an upstream failure (502 in the caller's API's format), never stored.
import { chatCompletionChunks, sse } from '@strata-cache/provider-test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, chat, harness, json } from './helpers.js';

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
