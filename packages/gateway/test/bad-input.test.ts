// Hostile or broken input: every case gets a clear 4xx in the caller's error format, nothing is
// stored or sent upstream, and the gateway keeps serving.
import { connect } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Harness, KEYS, UPSTREAM_KEY, chat, harness, json, rawExchange } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await harness({ server: { port: 0, bodyLimitBytes: 64 * 1024, requestTimeoutMs: 800, headersTimeoutMs: 800 } });
});
afterAll(() => h.close());

const url = (path: string) => h.gw.url + path;
const auth = { authorization: `Bearer ${KEYS.acme}` };

async function expectError(res: Response, status: number, message: RegExp) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const body = await json(res);
  expect(body.error.message).toMatch(message);
  return body;
}

/** A raw HTTP exchange with the gateway (see `rawExchange`). */
const raw = (parts: string[], gapMs: number): Promise<string> => rawExchange(h.gw.url, parts, gapMs);

describe('bad input', () => {
  it('malformed JSON, non-objects, non-UTF-8 and empty bodies: 400', async () => {
    await expectError(await h.post('/v1/chat/completions', '{"model": "gpt-4o-mini", "messages": ['), 400, /not valid JSON/);
    await expectError(await h.post('/v1/chat/completions', '[1,2,3]'), 400, /must be a JSON object/);
    await expectError(await h.post('/v1/chat/completions', '"just a string"'), 400, /must be a JSON object/);
    await expectError(
      await fetch(url('/v1/chat/completions'), {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
      }),
      400,
      /not UTF-8/,
    );
    await expectError(
      await fetch(url('/v1/chat/completions'), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '' }),
      400,
      /empty/,
    );
    await expectError(await fetch(url('/v1/chat/completions'), { method: 'POST', headers: auth }), 400, /JSON body is required/);
    // The Anthropic route answers in Anthropic's error format.
    const r = await h.post('/v1/messages', '{oops');
    expect(r.status).toBe(400);
    expect(await json(r)).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: 'the request body is not valid JSON' } });
  });

  it('wrong content types: 415', async () => {
    for (const [type, body] of [
      ['text/plain', JSON.stringify(chat('x'))],
      ['application/x-www-form-urlencoded', 'model=gpt-4o-mini'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--'],
    ] as const) {
      const r = await fetch(url('/v1/chat/completions'), { method: 'POST', headers: { ...auth, 'content-type': type }, body });
      expect(r.headers.get('accept-encoding')).toBeNull();
      await expectError(r, 415, /must be JSON/);
    }
  });

  it('a compressed body: 415 that says so, with the coding the gateway takes; nothing reaches the upstream', async () => {
    const before = h.openai.count('/chat/completions');
    for (const [encoding, bytes] of [
      ['gzip', gzipSync(JSON.stringify(chat('compressed')))],
      ['br', brotliCompressSync(JSON.stringify(chat('compressed')))],
      ['deflate, gzip', gzipSync(deflateSync(JSON.stringify(chat('compressed'))))],
    ] as const) {
      const r = await fetch(url('/v1/chat/completions'), {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', 'content-encoding': encoding },
        body: new Uint8Array(bytes),
      });
      expect(r.headers.get('accept-encoding')).toBe('identity');
      await expectError(r, 415, /compressed request body .* send it uncompressed/);
    }
    expect(h.openai.count('/chat/completions')).toBe(before);
  });

  it('a compressed body is refused before it is read, and the connection closes', async () => {
    // Only the head is sent: a gateway that reads the body first answers 413 to the 1 MB content-length, and waits for the
    // chunked body until server.requestTimeoutMs (408).
    for (const framing of ['content-length: 1048576', 'transfer-encoding: chunked']) {
      const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEYS.acme}\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n${framing}\r\n\r\n`;
      const answer = await raw([head], 0);
      expect(answer).toMatch(/^HTTP\/1\.1 415/);
      expect(answer).toMatch(/\r\nconnection: close\r\n/i);
      expect(answer).toMatch(/\r\naccept-encoding: identity\r\n/i);
      expect(answer).toMatch(/compressed request body/);
    }
    // The same header on a request without a body is not a reason to refuse it.
    const health = await fetch(url('/healthz'), { headers: { 'content-encoding': 'gzip' } });
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
  });

  it('huge bodies: 413, with a content-length or chunked', async () => {
    const big = JSON.stringify(chat('x'.repeat(100 * 1024)));
    await expectError(await h.post('/v1/chat/completions', big), 413, /larger than this gateway accepts \(65536 bytes\)/);
    const chunks = new ReadableStream({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode(big.slice(i * 10_240, (i + 1) * 10_240)));
        c.enqueue(new TextEncoder().encode(big.slice(102_400)));
        c.close();
      },
    });
    const res = await fetch(url('/v1/chat/completions'), {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: chunks,
      duplex: 'half',
    } as RequestInit).catch((e: unknown) => e);
    // The server may close the connection while the body is still being sent: then the client sees a reset instead of the 413.
    if (res instanceof Response) await expectError(res, 413, /larger/);
    else expect(String((res as Error).cause ?? res)).toMatch(/socket|closed|reset|EPIPE/i);
  });

  it('slow bodies: 408 once server.requestTimeoutMs is spent', async () => {
    const started = Date.now();
    const body = JSON.stringify(chat('slow'));
    const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEYS.acme}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
    const answer = await raw([head, body.slice(0, 5), body.slice(5, 10), body.slice(10, 15), body.slice(15, 20)], 400);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(Date.now() - started).toBeLessThan(5000);
    // Slow headers too.
    const slowHead = await raw(['POST /v1/chat/completions HTTP/1.1\r\n', 'host: x\r\n', 'x-a: 1\r\n', 'x-b: 2\r\n', 'x-c: 3\r\n'], 400);
    expect(slowHead).toMatch(/^HTTP\/1\.1 408/);
  });

  it("slow bodies, slow and oversized headers: answered in the caller API's error format", async () => {
    const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    const body = JSON.stringify(chat('slow'));
    const head = (path: string) =>
      `POST ${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEYS.acme}\r\nx-api-key: ${KEYS.acme}\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
    const slow = (path: string) => raw([head(path), body.slice(0, 5), body.slice(5, 10), body.slice(10, 15), body.slice(15, 20)], 400);
    const openai = await slow('/v1/chat/completions');
    expect(openai).toMatch(/^HTTP\/1\.1 408/);
    expect(bodyOf(openai)).toMatchObject({ error: { type: 'timeout_error', message: expect.any(String) } });
    const anthropic = await slow('/v1/messages');
    expect(anthropic).toMatch(/^HTTP\/1\.1 408/);
    expect(bodyOf(anthropic)).toMatchObject({ type: 'error', error: { type: 'timeout_error', message: expect.any(String) } });
    const slowHead = await raw(['POST /v1/chat/completions HTTP/1.1\r\n', 'host: x\r\n', 'x-a: 1\r\n', 'x-b: 2\r\n', 'x-c: 3\r\n'], 400);
    expect(bodyOf(slowHead)).toMatchObject({ error: { type: 'timeout_error', message: expect.any(String) } });
    const huge = await raw([`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-strata-tags: ${'a'.repeat(20_000)}\r\n\r\n`], 0);
    expect(huge).toMatch(/^HTTP\/1\.1 431/);
    expect(bodyOf(huge)).toMatchObject({ error: { type: 'invalid_request_error', message: expect.stringMatching(/headers/) } });
  });

  it('unknown routes and methods: 404 naming what is served', async () => {
    await expectError(await h.post('/v1/completions', chat('x')), 404, /no route POST \/v1\/completions.*POST \/v1\/chat\/completions/);
    await expectError(await fetch(url('/v1/chat/completions'), { headers: auth }), 404, /GET \/v1\/chat\/completions is not supported \(use POST\)/);
    await expectError(await fetch(url('/v2/anything'), { method: 'DELETE' }), 404, /no route/);
    await expectError(await fetch(url('/admin/stats'), { headers: auth }), 404, /no route/); // admin is not on the public port
  });

  it('unknown routes: 404 whatever the body holds, answered before the body is read', async () => {
    // A malformed or compressed body to a path no route serves is not parsed: the path is the mistake.
    await expectError(await h.post('/v1/completion', '{"model": "gpt-4o-mini", "prompt": '), 404, /no route POST \/v1\/completion /);
    await expectError(
      await fetch(url('/v1/chat/completion'), {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: new Uint8Array(gzipSync('{}')),
      }),
      404,
      /no route/,
    );
    // Only the head is sent: a gateway that reads the body first waits for it until server.requestTimeoutMs (408),
    // or refuses its length (413). Here the 404 comes at once, and the connection closes with it.
    for (const [listener, target, extra] of [
      ['public', h.gw.url, ''],
      ['admin', h.gw.adminUrl!, `authorization: Bearer ${ADMIN_TOKEN}\r\n`],
    ] as const) {
      for (const framing of ['content-length: 1048576', 'transfer-encoding: chunked']) {
        const head = `POST /v1/nothing-here HTTP/1.1\r\nhost: x\r\n${extra}content-type: application/json\r\n${framing}\r\n\r\n`;
        const answer = await rawExchange(target, [head], 0);
        expect(answer, `${listener}, ${framing}`).toMatch(/^HTTP\/1\.1 404/);
        expect(answer, `${listener}, ${framing}`).toMatch(/\r\nconnection: close\r\n/i);
      }
    }
    // The admin API still wants its token first, and a known route still reads its body.
    await expectError(await fetch(h.gw.adminUrl + '/v1/nothing-here', { method: 'POST', body: '{oops' }), 401, /needs "Authorization/);
    await expectError(await h.post('/v1/chat/completions', '{oops'), 400, /not valid JSON/);
    // A request without a body keeps its connection.
    const r = await fetch(url('/v1/nothing-here'), { headers: auth });
    expect(r.status).toBe(404);
    expect(r.headers.get('connection')).not.toBe('close');
    await r.text();
  });

  it('missing and wrong keys: 401 before the body is read', async () => {
    await expectError(
      await fetch(url('/v1/chat/completions'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
      401,
      /no API key/,
    );
    await expectError(await h.post('/v1/chat/completions', chat('x'), 'sgw_wrong'), 401, /invalid or revoked/);
    await expectError(await h.post('/v1/chat/completions', 'x'.repeat(200_000), 'sgw_wrong'), 401, /invalid or revoked/);
  });

  it('bad admin tokens: 401; unknown admin routes 404; bad admin bodies 400', async () => {
    await expectError(await fetch(h.gw.adminUrl + '/admin/stats'), 401, /needs "Authorization: Bearer <admin token>"/);
    await expectError(await h.admin('GET', '/admin/stats', undefined, 'not-the-token'), 401, /wrong admin token/);
    await expectError(await h.admin('POST', '/admin/purge', {}, KEYS.acme), 401, /wrong admin token/);
    await expectError(await h.admin('GET', '/admin/nothing'), 404, /no admin route/);
    await expectError(await h.admin('POST', '/admin/purge', {}), 400, /say what to purge/);
    await expectError(await h.admin('POST', '/admin/purge', { tag: 'a', prompt: '/b/' }), 400, /one of/);
    await expectError(await h.admin('POST', '/admin/explain', { a: 1, b: {} }), 400, /a must be a JSON object/);
    await expectError(await h.admin('POST', '/admin/inspect', { body: chat('x'), key: 'no-such-key' }), 400, /no key with this id/);
    // Whatever was given as the id is not echoed: it may be a mistyped or an upstream key.
    const pasted = await h.admin('POST', '/admin/inspect', { body: chat('x'), key: UPSTREAM_KEY });
    expect(pasted.status).toBe(400);
    expect(await pasted.text()).not.toContain(UPSTREAM_KEY);
    // A key pasted where its id belongs is not echoed back: it is a credential.
    for (const [path, body] of [
      ['/admin/inspect', { body: chat('x'), key: KEYS.acme }],
      ['/admin/purge', { key: KEYS.revoked }],
      ['/admin/bump', { key: KEYS.globex }],
      ['/admin/explain', { a: { body: chat('x'), key: KEYS.acme2 }, b: { body: chat('x'), key: KEYS.acme2 } }],
    ] as const) {
      const r = await h.admin('POST', path, body);
      expect(r.status).toBe(400);
      const text = await r.text();
      expect(text).toMatch(/not the key itself/);
      expect(/SECRET/.test(text), `${path}: ${text}`).toBe(false);
    }
  });

  it('the admin API wants its token however a path is spelled (percent-encoded, absolute-form)', async () => {
    const ask = (target: string, method = 'GET') =>
      new Promise<string>((resolve, reject) => {
        const u = new URL(h.gw.adminUrl!);
        const socket = connect(Number(u.port), u.hostname);
        let got = '';
        socket.on('data', (d) => (got += d.toString()));
        socket.on('close', () => resolve(got));
        socket.on('error', reject);
        socket.write(`${method} ${target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
      });
    for (const [target, method] of [
      ['/%61dmin/stats', 'GET'],
      ['/%61dmin/keys', 'GET'],
      ['/admin/%6Beys', 'GET'],
      [`http://x/admin/keys`, 'GET'],
      ['/%61dmin/reload', 'POST'],
    ] as const) {
      const answer = await ask(target, method);
      expect(answer, `${method} ${target}`).toMatch(/^HTTP\/1\.1 (401|404)/);
      expect(answer).not.toMatch(/acme-one|"cache"|keys reloaded|"notes"/);
    }
    // The health routes stay open.
    expect(await ask('/healthz')).toMatch(/^HTTP\/1\.1 200/);
  });

  it('after all of it: nothing was stored or sent upstream, and the gateway still serves', async () => {
    expect(h.openai.count()).toBe(0);
    expect(h.gw.cache.stats().requests).toBe(0);
    expect(h.gw.stack.l1!.size ?? 0).toBe(0);
    // (content-encoding: identity is no coding at all)
    const ok = await h.post('/v1/chat/completions', chat('still serving'), KEYS.acme, { 'content-encoding': 'identity' });
    expect(ok.status).toBe(200);
    expect((await h.post('/v1/chat/completions', chat('still serving'))).headers.get('x-strata-cache')).toBe('hit');
    const health = await fetch(url('/healthz'));
    expect(health.status).toBe(200);
  });

  it('JSON that cannot be keyed (a number beyond float range parses as Infinity): 400 naming the field, not an upstream failure', async () => {
    const body = JSON.stringify(chat('x')).replace('"temperature":0', '"temperature":1e400');
    const upstreamCalls = h.openai.count() + h.anthropic.count();
    const err = await expectError(await h.post('/v1/chat/completions', body), 400, /\$\.temperature/);
    expect(err.error.type).toBe('invalid_request_error');
    const anthropic = await h.post('/v1/messages', '{"model":"claude-sonnet-4-5","max_tokens":1e400,"messages":[]}');
    expect(anthropic.status).toBe(400);
    expect((await json(anthropic)).error.type).toBe('invalid_request_error');
    expect(h.openai.count() + h.anthropic.count()).toBe(upstreamCalls);
  });
});
