// No credential anywhere the gateway writes: log lines, metrics, Redis keys and values, L1
// entries, admin answers, upstream-facing key material — with held and pass-through credentials.
import { Redis } from 'ioredis';
import { type RedisServerHandle, startRedisServer } from '@strata-cache/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Harness, KEYS, SECRETS, chat, harness, message } from './helpers.js';

let redis: RedisServerHandle;
let h: Harness;
beforeAll(async () => {
  redis = await startRedisServer();
  // openai: the gateway holds the credential; anthropic: callers' keys pass through.
  h = await harness(
    { cache: { l2: { url: redis.url, prefix: 'secrets' } }, log: { level: 'debug' } },
    { anthropic: { apiKey: undefined, credentials: 'passthrough' } },
  );
});
afterAll(async () => {
  await h.close();
  await redis.stop();
});

it('no key, token or upstream credential in logs, metrics, Redis, L1 or admin answers', async () => {
  // Traffic of every kind: JSON and streams, hits and misses, both upstreams, tags, errors.
  for (const key of [KEYS.acme, KEYS.acme2, KEYS.globex]) {
    for (let i = 0; i < 2; i++) {
      await (await h.post('/v1/chat/completions', chat('secret check'), key, { 'x-strata-tags': 'faq' })).text();
      await (await h.post('/v1/chat/completions', { ...chat('secret stream'), stream: true }, key)).text();
      await (await h.post('/v1/messages', message('secret message'), key)).text();
      await (await h.post('/v1/messages', { ...message('secret message stream'), stream: true }, key)).text();
    }
  }
  await (await h.post('/v1/chat/completions', chat('x'), KEYS.revoked)).text();
  await (await h.post('/v1/chat/completions', chat('x'), 'sk-caller-typo-SECRET')).text();
  await (await h.post('/v1/chat/completions', '{bad json', KEYS.acme)).text();
  await (await fetch(h.gw.url + '/v1/models', { headers: { authorization: `Bearer ${KEYS.acme}` } })).text();
  await h.gw.cache.flush();

  const outputs: Record<string, string> = {};
  outputs['metrics'] = await (await fetch(h.gw.url + '/metrics')).text();
  outputs['stats'] = await (await h.admin('GET', '/admin/stats')).text();
  outputs['keys'] = await (await h.admin('GET', '/admin/keys')).text();
  outputs['inspect'] = await (await h.admin('POST', '/admin/inspect?value=1', { body: chat('secret check'), tenant: 'acme' })).text();
  outputs['inspect-passthrough'] = await (
    await h.admin('POST', '/admin/inspect?value=1', { path: '/v1/messages', body: message('secret message'), key: 'acme-one' })
  ).text();
  outputs['explain'] = await (
    await h.admin('POST', '/admin/explain', {
      a: { path: '/v1/messages', body: message('secret message'), key: 'acme-one' },
      b: { path: '/v1/messages', body: message('secret message'), key: 'acme-two' },
    })
  ).text();
  outputs['purge'] = await (await h.admin('POST', '/admin/purge', { tag: 'nothing-has-it', tenant: 'acme' })).text();
  await (await h.admin('GET', '/admin/stats', undefined, 'wrong-admin-SECRET')).text();

  const client = new Redis(redis.url);
  try {
    const keys = await client.keys('*');
    expect(keys.some((k) => k.startsWith('secrets:'))).toBe(true);
    let dump = keys.join('\n');
    for (const k of keys) {
      const type = await client.type(k);
      if (type === 'string') dump += (await client.getBuffer(k))!.toString('latin1');
      else if (type === 'zset') dump += (await client.zrange(k, 0, -1)).join('\n');
      else if (type === 'hash') dump += JSON.stringify(await client.hgetall(k));
    }
    outputs['redis'] = dump;
  } finally {
    client.disconnect();
  }
  outputs['l1'] = JSON.stringify([...h.gw.stack.l1!.scan({ count: 10_000 }).items]);
  await h.gw.log.flush();
  outputs['logs'] = h.logs.join('');

  expect(outputs['logs']!.length).toBeGreaterThan(1000);
  expect(outputs['redis']!.length).toBeGreaterThan(1000);
  expect(outputs['l1']!.length).toBeGreaterThan(1000);
  expect(outputs['metrics']).toContain('strata_gateway_requests_total');
  for (const [where, text] of Object.entries(outputs)) {
    for (const secret of [...SECRETS, 'sk-caller-typo-SECRET', 'wrong-admin-SECRET']) {
      expect(text.includes(secret), `${secret} found in ${where}`).toBe(false);
    }
    expect(/SECRET/.test(text), `something secret-looking in ${where}`).toBe(false);
  }
  // The caller keys did reach the pass-through upstream (and only that one).
  expect(h.anthropic.requests.some((r) => r.headers['x-api-key'] === KEYS.acme)).toBe(true);
  expect(h.openai.requests.every((r) => r.headers['authorization'] === 'Bearer sk-upstream-SECRET-0123456789')).toBe(true);
});
