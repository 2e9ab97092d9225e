// Per-request control headers, the response headers that report the cache's part, pass-through
// credentials (the key's hash in the scope), key reloads, and headers a caller may not send.
import { Agent, request } from 'node:http';
import { type Socket, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { hashKey } from '../src/index.js';
import { type Harness, KEYS, chat, harness, keyTable, json } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('control headers', () => {
  it('bypass, refresh and no-store do what they say', async () => {
    h = await harness();
    const body = chat('control');
    expect((await h.post('/v1/chat/completions', body, KEYS.acme, { 'x-strata-cache': 'no-store' })).headers.get('x-strata-cache')).toBe('miss');
    expect((await h.post('/v1/chat/completions', body)).headers.get('x-strata-cache')).toBe('miss'); // nothing was stored
    expect((await h.post('/v1/chat/completions', body)).headers.get('x-strata-cache')).toBe('hit');
    expect((await h.post('/v1/chat/completions', body, KEYS.acme, { 'x-strata-cache': 'bypass' })).headers.get('x-strata-cache')).toBe('bypass');
    const refreshed = await h.post('/v1/chat/completions', body, KEYS.acme, { 'x-strata-cache': 'refresh' });
    expect(refreshed.headers.get('x-strata-cache')).toBe('miss');
    const after = await h.post('/v1/chat/completions', body);
    expect(after.headers.get('x-strata-cache')).toBe('hit');
    expect((await json(after)).id).toBe((await json(refreshed)).id); // the refreshed answer replaced the old one
    expect(h.openai.count('/chat/completions')).toBe(4);
    // Control headers never reach the upstream.
    expect(h.openai.requests.every((r) => Object.keys(r.headers).every((k) => !k.startsWith('x-strata-')))).toBe(true);
  });

  it('x-strata-ttl and x-strata-tags are applied to the stored entry (and tags can be purged)', async () => {
    h = await harness();
    const body = chat('ttl and tags');
    await h.post('/v1/chat/completions', body, KEYS.acme, { 'x-strata-ttl': '120', 'x-strata-tags': 'pricing,doc:42' });
    const inspect = await json(h.admin('POST', '/admin/inspect', { body, tenant: 'acme' }));
    expect(inspect.layers.l1).toMatchObject({ present: true, ttlMs: 120_000, tags: ['pricing', 'doc:42'] });
    const purge = await json(h.admin('POST', '/admin/purge', { tag: 'pricing', tenant: 'acme' }));
    expect(purge.total).toBe(1);
    expect((await h.post('/v1/chat/completions', body)).headers.get('x-strata-cache')).toBe('miss');
  });

  it('malformed control headers and tenant headers are refused with 400, nothing stored', async () => {
    h = await harness();
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'x-strata-cache': 'sometimes' }, /bypass, refresh or no-store/],
      [{ 'x-strata-ttl': '-3' }, /positive number of seconds/],
      [{ 'x-strata-ttl': '99999999999' }, /largest TTL/],
      // Number() would read these as 16, 5, 8 and 100 seconds: only decimal numbers are TTLs.
      [{ 'x-strata-ttl': '0x10' }, /positive number of seconds/],
      [{ 'x-strata-ttl': '0b101' }, /positive number of seconds/],
      [{ 'x-strata-ttl-ms': '0o10' }, /positive number of milliseconds/],
      [{ 'x-strata-ttl': '1e2' }, /positive number of seconds/],
      [{ 'x-strata-tags': 'a b' }, /tags/],
      [{ 'x-strata-tenant': 'globex' }, /tenant from the API key/],
      [{ 'x-strata-namespace': 'x' }, /tenant from the API key/],
      [{ 'x-strata-tll': '5' }, /unknown control header x-strata-tll/],
    ];
    for (const [headers, message] of cases) {
      const r = await h.post('/v1/chat/completions', chat('bad control'), KEYS.acme, headers);
      expect(r.status).toBe(400);
      expect((await json(r)).error.message).toMatch(message);
    }
    expect(h.openai.count()).toBe(0);
    expect(h.gw.cache.stats().requests).toBe(0);
  });

  it('x-strata-tags in UTF-8 (as curl sends them) are stored as sent, and purged by the same text; other bytes are refused', async () => {
    h = await harness();
    const url = new URL(h.gw.url);
    // A raw request: fetch would only send the header's characters as single bytes.
    const send = (tags: Buffer, content: string) =>
      new Promise<string>((resolve, reject) => {
        const body = JSON.stringify(chat(content));
        const socket = connect(Number(url.port), url.hostname);
        let got = '';
        socket.on('data', (d) => (got += d.toString()));
        socket.on('close', () => resolve(got));
        socket.on('error', reject);
        socket.write(
          Buffer.concat([
            Buffer.from(
              `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer ${KEYS.acme}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-strata-tags: `,
            ),
            tags,
            Buffer.from(`\r\n\r\n${body}`),
          ]),
        );
      });
    expect(await send(Buffer.from('café,日本', 'utf8'), 'unicode tags')).toMatch(/^HTTP\/1\.1 200/);
    const inspect = await json(h.admin('POST', '/admin/inspect', { body: chat('unicode tags'), tenant: 'acme' }));
    expect(inspect.layers.l1.tags).toEqual(['café', '日本']);
    expect((await json(h.admin('POST', '/admin/purge', { tag: '日本', tenant: 'acme' }))).total).toBe(1);
    // Not UTF-8 (a lone latin-1 byte): refused, nothing stored.
    const refused = await send(Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'latin-1 tag');
    expect(refused).toMatch(/^HTTP\/1\.1 400/);
    expect(refused).toMatch(/x-strata-tags must be UTF-8/);
    expect(h.openai.count()).toBe(1);
  });

  it('reports the layer and age of a hit', async () => {
    h = await harness();
    await h.post('/v1/chat/completions', chat('age'));
    await new Promise((r) => setTimeout(r, 30));
    const r = await h.post('/v1/chat/completions', chat('age'));
    expect(r.headers.get('x-strata-layer')).toBe('l1');
    expect(Number(r.headers.get('x-strata-age-ms'))).toBeGreaterThanOrEqual(25);
  });
});

describe('credentials', () => {
  it('pass-through: the caller key goes upstream and is part of the scope', async () => {
    h = await harness({}, { openai: { apiKey: undefined, credentials: 'passthrough' } });
    const body = chat('passthrough');
    expect((await h.post('/v1/chat/completions', body, KEYS.acme)).headers.get('x-strata-cache')).toBe('miss');
    expect((await h.post('/v1/chat/completions', body, KEYS.acme)).headers.get('x-strata-cache')).toBe('hit');
    // Another key of the same tenant cannot read the first key's answers.
    expect((await h.post('/v1/chat/completions', body, KEYS.acme2)).headers.get('x-strata-cache')).toBe('miss');
    expect(h.openai.requests.map((r) => r.headers['authorization'])).toEqual([`Bearer ${KEYS.acme}`, `Bearer ${KEYS.acme2}`]);
    // The held-credential upstream (anthropic here) keeps one cache per tenant.
    const explain = await json(h.admin('POST', '/admin/explain', { a: { body, key: 'acme-one' }, b: { body, key: 'acme-two' } }));
    expect(explain.sameKey).toBe(false);
    expect(explain.scope.a).not.toBe(explain.scope.b);
    expect(JSON.stringify(explain)).not.toContain(KEYS.acme);
  });

  it('a key revoked by reloading the config stops working at once', async () => {
    h = await harness();
    await h.post('/v1/chat/completions', chat('reload'), KEYS.globex);
    expect((await h.post('/v1/chat/completions', chat('reload'), KEYS.globex)).status).toBe(200);
    const keys = keyTable().map((k) => (k.id === 'globex' ? { ...k, revoked: true } : k));
    const config = { ...structuredClone(h.gw.config), keys };
    const reloaded = await h.gw.reload(config);
    expect(reloaded.notes).toEqual([]);
    const r = await h.post('/v1/chat/completions', chat('reload'), KEYS.globex);
    expect(r.status).toBe(401);
    expect((await json(r)).error.code).toBe('invalid_api_key');
    // A new key added by reload works.
    await h.gw.reload({ ...config, keys: [...keys, { id: 'new', tenant: 'globex', hash: hashKey('sgw_new-SECRET') }] });
    expect((await h.post('/v1/chat/completions', chat('reload'), 'sgw_new-SECRET')).headers.get('x-strata-cache')).toBe('hit');
  });

  it('one connection that changes keys, or whose key is revoked, is answered for the key it sends now', async () => {
    h = await harness();
    // One connection (a keep-alive agent with one socket): anything the gateway remembers per
    // connection is in play. A 401 closes its connection (its body is not read), so
    // `onSameConnection` checks that a request went over the socket of the request before it.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    let last: Socket | undefined;
    const post = (key: string | undefined, content: string, header: 'authorization' | 'x-api-key' = 'authorization') =>
      new Promise<{ status: number; cache: string | string[] | undefined; socket: Socket }>((resolve, reject) => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (key !== undefined) headers[header] = header === 'authorization' ? `Bearer ${key}` : key;
        const req = request(`${h!.gw.url}/v1/chat/completions`, { method: 'POST', headers, agent }, (res) => {
          res.resume();
          res.once('end', () => {
            last = req.socket!;
            resolve({ status: res.statusCode!, cache: res.headers['x-strata-cache'], socket: req.socket! });
          });
        });
        req.once('error', reject);
        req.end(JSON.stringify(chat(content)));
      });
    const onSameConnection = async (key: string | undefined, header?: 'authorization' | 'x-api-key') => {
      const before = last;
      const r = await post(key, 'one connection', header);
      expect(r.socket).toBe(before);
      return r;
    };
    try {
      expect((await post(KEYS.acme, 'one connection')).status).toBe(200);
      expect((await onSameConnection(KEYS.acme)).cache).toBe('hit');
      // Another tenant's key on the same connection: globex's own cache, not acme's answer.
      expect((await onSameConnection(KEYS.globex)).cache).toBe('miss');
      expect((await onSameConnection(KEYS.globex)).cache).toBe('hit');
      // The same key in the other header is the same caller.
      expect((await onSameConnection(KEYS.globex, 'x-api-key')).cache).toBe('hit');
      // A wrong key, a revoked key, no key — each right after a key that worked: refused.
      expect((await onSameConnection('sgw_never-issued')).status).toBe(401);
      expect((await post(KEYS.acme, 'one connection')).cache).toBe('hit');
      expect((await onSameConnection(KEYS.revoked)).status).toBe(401);
      expect((await post(KEYS.acme, 'one connection')).cache).toBe('hit');
      expect((await onSameConnection(undefined)).status).toBe(401);
      // Revoking acme by reload: the connection that used it a moment ago is refused at once.
      expect((await post(KEYS.acme, 'one connection')).cache).toBe('hit');
      const keys = keyTable().map((k) => (k.id === 'acme-one' ? { ...k, revoked: true } : k));
      await h.gw.reload({ ...structuredClone(h.gw.config), keys });
      expect((await onSameConnection(KEYS.acme)).status).toBe(401);
      expect((await post(KEYS.globex, 'one connection')).cache).toBe('hit');
    } finally {
      agent.destroy();
    }
  });
});
