// A caller that goes away: its upstream call is abandoned (not paid for to the end), and the
// requests that come after a finished one on the same connection are not affected.
import type { Server } from 'node:http';
import { getEventListeners } from 'node:events';
import { type Socket, connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Gateway } from '../src/index.js';
import { KEYS, chat, completionBody, gatewayInFrontOf, promptServer } from './helpers.js';

// The upstream: answers at once, or after 5 s for a prompt that says "slow"; records which requests were closed before their answer.
const closedEarly: string[] = [];
let upstream: Server;
let gw: Gateway;
let close: (() => Promise<void>) | undefined;
// The gateway's side of every connection callers opened.
const sockets: Socket[] = [];
beforeAll(async () => {
  upstream = promptServer((prompt, res) => {
    res.once('close', () => {
      if (!res.writableFinished) closedEarly.push(prompt);
    });
    const answer = () => {
      if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end(completionBody(`answer to ${prompt}`));
    };
    if (prompt.includes('slow')) setTimeout(answer, 5_000).unref();
    else answer();
  });
  ({ gw, close } = await gatewayInFrontOf(upstream, (app) => app.server.on('connection', (s: Socket) => sockets.push(s))));
});
afterAll(() => close?.());

const post = (content: string, signal?: AbortSignal) =>
  fetch(gw.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.acme}` },
    body: JSON.stringify(chat(content)),
    ...(signal ? { signal } : {}),
  });

it('requests one after another on one connection are answered: a finished request leaves nothing aborted behind', async () => {
  for (const q of ['first question', 'second question', 'first question', 'third question']) {
    const r = await post(q);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content).toBe(`answer to ${q}`);
  }
  expect(closedEarly).toEqual([]);
});

it('a caller that closes its connection while its miss waits on the upstream: the upstream call is abandoned', async () => {
  const ac = new AbortController();
  const pending = post('a slow question', ac.signal).catch((e: unknown) => e);
  await new Promise((r) => setTimeout(r, 300));
  ac.abort();
  expect(await pending).toBeInstanceOf(Error);
  // The gateway closes its upstream request well before the upstream's 5 s answer.
  for (let i = 0; i < 40 && closedEarly.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(closedEarly).toEqual(['a slow question']);
  // And the gateway serves on.
  const r = await post('a question after the abort');
  expect(r.status).toBe(200);
});

/** Requests written back to back on one connection (HTTP/1.1 pipelining); resolves with all the answers, the connection still open. */
function pipelined(bodies: readonly string[]): Promise<{ got: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const u = new URL(gw.url);
    const socket = connect(Number(u.port), u.hostname);
    let got = '';
    socket.on('data', (d) => {
      got += d.toString();
      if ((got.match(/HTTP\/1\.1 /g) ?? []).length === bodies.length && got.endsWith('}')) resolve({ got, socket });
    });
    socket.on('error', reject);
    socket.write(
      bodies
        .map(
          (b) =>
            `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer ${KEYS.acme}\r\ncontent-length: ${Buffer.byteLength(b)}\r\n\r\n${b}`,
        )
        .join(''),
    );
  });
}

/** The caller signals of the gateway's open connections. */
function openSignals(): AbortSignal[] {
  return sockets
    .filter((s) => !s.destroyed)
    .flatMap((s) =>
      Object.getOwnPropertySymbols(s)
        .filter((k) => k.description === 'strata.gateway.caller-signal')
        .map((k) => (s as unknown as Record<symbol, AbortSignal>)[k]!),
    );
}

it('pipelined requests (misses in flight together, then hits) are all answered, and no listener is left on the connection signal', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  const bodies = Array.from({ length: 16 }, (_, i) => JSON.stringify(chat(`pipelined question ${i}`)));
  const open: Socket[] = [];
  try {
    // 16 misses pipelined on one connection: all in flight upstream together, on one signal.
    const misses = await pipelined(bodies);
    open.push(misses.socket);
    expect(misses.got.match(/HTTP\/1\.1 200/g)).toHaveLength(16);
    expect(misses.got.match(/x-strata-cache: miss/g)).toHaveLength(16);
    for (let i = 0; i < 16; i++) expect(misses.got).toContain(`answer to pipelined question ${i}`);
    // The same 16 again on a new connection: pipelined hits.
    const hits = await pipelined(bodies);
    open.push(hits.socket);
    expect(hits.got.match(/x-strata-cache: hit/g)).toHaveLength(16);
    // 40 more, one after another on one kept-alive connection (hits and misses).
    for (let i = 0; i < 40; i++) expect((await post(`sequential question ${i % 20}`)).status).toBe(200);
    await new Promise((r) => setImmediate(r));
    // The connections are still open (their signals not aborted): none is left with a listener.
    const signals = openSignals();
    expect(signals.length).toBeGreaterThanOrEqual(3);
    for (const signal of signals) {
      expect(signal.aborted).toBe(false);
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
  } finally {
    process.off('warning', onWarning);
    for (const s of open) s.destroy();
  }
});
