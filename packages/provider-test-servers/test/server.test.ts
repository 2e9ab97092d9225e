import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProviderServer, startAnthropicServer, startOpenAIServer } from '../src/index.js';

describe('provider test servers', () => {
  let oa: ProviderServer;
  let an: ProviderServer;
  beforeAll(async () => {
    oa = await startOpenAIServer();
    an = await startAnthropicServer();
  });
  afterAll(async () => {
    await oa.close();
    await an.close();
  });

  it('serves chat completions as JSON and SSE', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi there' }] };
    const r = await fetch(oa.baseURL + '/chat/completions', { method: 'POST', body: JSON.stringify(body) });
    const j = (await r.json()) as { choices: Array<{ message: { content: string } }> };
    expect(j.choices[0]!.message.content).toBe('Echo: hi there');
    const s = await fetch(oa.baseURL + '/chat/completions', { method: 'POST', body: JSON.stringify({ ...body, stream: true }) });
    expect(s.headers.get('content-type')).toContain('text/event-stream');
    const text = await s.text();
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(oa.count('/chat/completions')).toBe(2);
  });

  it('serves anthropic message streams', async () => {
    const r = await fetch(an.baseURL + '/v1/messages', { method: 'POST', body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'x' }] }) });
    const text = await r.text();
    expect(text.startsWith('event: message_start\n')).toBe(true);
    expect(text).toContain('event: message_stop');
  });
});
