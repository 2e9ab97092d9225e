// What an upstream answers, relayed as it was meant: compressed bodies decoded, bodies that come
// in many pieces whole, its own headers kept (its cookies not), error statuses untouched — on a
// miss, and the same answer on the hit after it.
import type { Server } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Gateway } from '../src/index.js';
import { KEYS, chat, completionBody, gatewayInFrontOf, promptServer } from './helpers.js';

const completion = (content: string) => completionBody(`answer to ${content} ✓`);

const ENCODERS: Record<string, (b: Buffer) => Buffer> = {
  gzip: (b) => gzipSync(b),
  br: (b) => brotliCompressSync(b),
  deflate: (b) => deflateSync(b),
  'gzip, deflate': (b) => deflateSync(gzipSync(b)),
};

let upstream: Server;
let gw: Gateway;
let close: (() => Promise<void>) | undefined;
beforeAll(async () => {
  // The prompt says how to answer: "enc:<coding>", "pieces", "status:<n>", or plainly.
  upstream = promptServer((prompt, res) => {
    const bytes = Buffer.from(completion(prompt));
    const headers = { 'content-type': 'application/json', 'x-upstream-note': 'kept', 'set-cookie': ['a=1; Path=/', 'b=2; Path=/'] };
    if (prompt.startsWith('enc:')) {
      const coding = prompt.slice(4);
      res.writeHead(200, { ...headers, 'content-encoding': coding }).end(ENCODERS[coding]!(bytes));
    } else if (prompt === 'pieces') {
      // Chunked, a write per turn: the first piece ends inside the three bytes of "✓", the rest 7 bytes at a time.
      const cut = bytes.indexOf(Buffer.from('✓')) + 1;
      const pieces = [bytes.subarray(0, cut)];
      for (let at = cut; at < bytes.length; at += 7) pieces.push(bytes.subarray(at, at + 7));
      res.writeHead(200, headers);
      const write = (n: number) => {
        if (n === pieces.length) return void res.end();
        res.write(pieces[n]);
        setImmediate(write, n + 1);
      };
      write(0);
    } else if (prompt.startsWith('status:')) {
      res.writeHead(Number(prompt.slice(7)), { 'content-type': 'application/json', 'retry-after': '3' }).end('{"error":{"message":"busy"}}');
    } else {
      res.writeHead(200, headers).end(bytes);
    }
  });
  ({ gw, close } = await gatewayInFrontOf(upstream));
});
afterAll(() => close?.());

const post = (content: string) =>
  fetch(gw.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.acme}` },
    body: JSON.stringify(chat(content)),
  });

it('a compressed answer (gzip, br, deflate, two codings) is relayed decoded, its length and encoding dropped, and the hit after it is the same', async () => {
  for (const coding of Object.keys(ENCODERS)) {
    const prompt = `enc:${coding}`;
    const miss = await post(prompt);
    expect(miss.status, coding).toBe(200);
    expect(miss.headers.get('x-strata-cache')).toBe('miss');
    expect(miss.headers.get('content-encoding')).toBeNull();
    const text = await miss.text();
    expect(text).toBe(completion(prompt));
    expect(Number(miss.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    const hit = await post(prompt);
    expect(hit.headers.get('x-strata-cache')).toBe('hit');
    expect(await hit.json()).toEqual(JSON.parse(text));
  }
});

it('an answer that comes in many pieces (cut inside a character) is relayed whole; the upstream headers are kept, its cookies are not', async () => {
  const miss = await post('pieces');
  expect(miss.headers.get('x-strata-cache')).toBe('miss');
  expect(await miss.text()).toBe(completion('pieces'));
  expect(miss.headers.get('x-upstream-note')).toBe('kept');
  expect(miss.headers.get('set-cookie')).toBeNull();
  const plain = await post('plain');
  expect(plain.headers.get('x-upstream-note')).toBe('kept');
  expect(plain.headers.get('set-cookie')).toBeNull();
  expect(await plain.text()).toBe(completion('plain'));
});

it('an error status is relayed as the upstream sent it and not stored', async () => {
  for (let i = 0; i < 2; i++) {
    const r = await post('status:503');
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('3');
    expect(r.headers.get('x-strata-cache')).not.toBe('hit');
    expect(await r.text()).toBe('{"error":{"message":"busy"}}');
  }
});
