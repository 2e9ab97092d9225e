import { InvalidOptionError, InvalidRequestError, StrataError, canonicalize, genericProfile, loaded, sha256 } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import {
  type InvalidationAudit,
  PROMPT_META_KEY,
  createInvalidationEngine,
  creativeRequests,
  maxAge,
  noCache,
  onEvent,
  staleAfterModelChange,
  tagWhen,
  timeSensitivePrompts,
} from '../src/index.js';
import { ask, chat, clock, makeCache } from './helpers.js';

const HOUR = 3_600_000;

describe('time rules', () => {
  it('caps the TTL at write time by tag, model, scope and prompt pattern', async () => {
    const c = clock();
    const { cache, memory } = makeCache({ now: c.now });
    createInvalidationEngine({
      cache,
      now: c.now,
      rules: [
        tagWhen({ prompt: /faq|return policy/i }, ['faq']),
        maxAge(72 * HOUR, { tag: 'faq' }),
        maxAge(1 * HOUR, { prompt: /^rephrase:/ }),
        maxAge(10 * 60_000, { model: /^o1/ }),
        maxAge(5 * 60_000, { scope: { tenant: 'news' } }),
      ],
    });
    await ask(cache, chat('What is your return policy? (faq)'));
    await ask(cache, chat('rephrase: where is my order'));
    await ask(cache, chat('think hard', { model: 'o1-mini' }));
    await cache.getOrLoad(chat('headline'), () => 'x', { scope: 'news' });
    await ask(cache, chat('untouched question'));
    const ttl = (req: unknown, scope?: string) => memory.get(cache.keyFor(req, scope ? { scope } : {}))?.ttlMs;
    expect(ttl(chat('What is your return policy? (faq)'))).toBe(72 * HOUR);
    expect(ttl(chat('rephrase: where is my order'))).toBe(HOUR);
    expect(ttl(chat('think hard', { model: 'o1-mini' }))).toBe(10 * 60_000);
    expect(ttl(chat('headline'), 'news')).toBe(5 * 60_000);
    expect(ttl(chat('untouched question'))).toBeUndefined();
  });

  it('a caller TTL longer than the rule is still capped', async () => {
    const c = clock();
    const { cache, memory } = makeCache({ now: c.now });
    createInvalidationEngine({ cache, now: c.now, rules: [maxAge(HOUR, { prompt: 'weekly' })] });
    await cache.getOrLoad(chat('weekly report'), () => 'r', { ttlMs: 24 * HOUR });
    expect(memory.get(cache.keyFor(chat('weekly report')))?.ttlMs).toBe(HOUR);
  });

  it('a rule added later refuses hits older than its max age (read-time check)', async () => {
    const c = clock();
    const { cache } = makeCache({ now: c.now });
    const engine = createInvalidationEngine({ cache, now: c.now });
    await ask(cache, chat('how do I reset my password?'), 'v1');
    c.advance(2 * HOUR);
    expect((await ask(cache, chat('how do I reset my password?'), 'v2')).status).toBe('hit');
    engine.addRule(maxAge(HOUR, { prompt: /password/ }, 'password-1h'));
    const r = await ask(cache, chat('how do I reset my password?'), 'v3');
    expect(r.status).toBe('miss');
    expect(r.value).toBe('v3');
    // the fresh entry is served until it too is older than an hour
    c.advance(30 * 60_000);
    expect((await ask(cache, chat('how do I reset my password?'), 'v4')).value).toBe('v3');
    expect(engine.removeRule('password-1h')).toBe(1);
  });
});

describe('tag rules (write time)', () => {
  it('attaches tags by prompt RegExp, model and scope; purging a tag removes only those entries', async () => {
    const { cache, memory } = makeCache();
    const engine = createInvalidationEngine({
      cache,
      rules: [
        tagWhen({ prompt: /product/i }, ['topic:product']),
        tagWhen({ model: 'gpt-4o-mini' }, ['model:{model}']),
        tagWhen({ scope: { tenant: 'acme', namespace: 'support' } }, ['tenant:{tenant}']),
        { type: 'tag', tags: (ctx) => (ctx.prompt?.includes('order') ? ['topic:orders'] : undefined) },
      ],
    });
    await ask(cache, chat('Tell me about product 42'));
    await ask(cache, chat('Is PRODUCT 7 waterproof?'));
    await ask(cache, chat('Where is my order?'));
    await cache.getOrLoad(chat('hello'), () => 'hi', { scope: { tenant: 'acme', namespace: 'support' } });
    const tags = (req: unknown, scope?: { tenant: string; namespace: string }) => memory.get(cache.keyFor(req, scope ? { scope } : {}))?.tags;
    expect(tags(chat('Tell me about product 42'))).toEqual(['topic:product', 'model:gpt-4o-mini']);
    expect(tags(chat('Where is my order?'))).toEqual(['model:gpt-4o-mini', 'topic:orders']);
    expect(tags(chat('hello'), { tenant: 'acme', namespace: 'support' })).toEqual(['model:gpt-4o-mini', 'tenant:acme']);

    const audit = await engine.purgeTag('topic:product');
    expect(audit.layers).toEqual({ memory: 2 });
    expect(audit.total).toBe(2);
    expect(memory.size).toBe(2);
    expect((await ask(cache, chat('Where is my order?'))).status).toBe('hit');
    expect((await ask(cache, chat('Tell me about product 42'), 'new')).status).toBe('miss');
  });

  it('purging a tag removes exactly the tagged entries among thousands (index lookup; cost is measured in the bench)', async () => {
    const { cache } = makeCache();
    const engine = createInvalidationEngine({ cache, rules: [tagWhen({ prompt: /^rare/ }, ['rare'])] });
    for (let i = 0; i < 5_000; i++) await ask(cache, chat(`common question ${i}`));
    for (let i = 0; i < 5; i++) await ask(cache, chat(`rare question ${i}`));
    const audit = await engine.purgeTag('rare');
    expect(audit.layers['memory']).toBe(5);
  });
});

describe('event rules', () => {
  it('on(event, fn) and string templates purge the tags filled from the event data', async () => {
    const { cache, memory } = makeCache();
    const audits: InvalidationAudit[] = [];
    const engine = createInvalidationEngine({
      cache,
      events: { product_updated: ['id'], price_changed: ['sku', 'region'] },
      rules: [tagWhen({ prompt: /product/i }, ['topic:product']), onEvent('price_changed', ['price:{sku}:{region}'])],
      onInvalidate: (a) => audits.push(a),
    });
    engine.on('product_updated', ({ id }) => ['product:' + String(id), 'topic:product']);
    await cache.getOrLoad(chat('product 42 specs'), () => loaded('a', { tags: ['product:42'] }));
    await cache.getOrLoad(chat('product 43 specs'), () => loaded('b', { tags: ['product:43'] }));
    await cache.getOrLoad(chat('how much is sku A1 in EU'), () => loaded('c', { tags: ['price:A1:eu'] }));
    await cache.getOrLoad(chat('how much is sku A1 in US'), () => loaded('d', { tags: ['price:A1:us'] }));

    const a1 = await engine.emit('product_updated', { id: 42 });
    expect(a1.source).toBe('event');
    expect(a1.event).toBe('product_updated');
    expect(a1.targets.map((t) => (t.type === 'tag' ? t.tag : t.type))).toEqual(['product:42', 'topic:product']);
    // product 42 carries both tags, product 43 only the topic: 2 distinct entries are gone
    expect(a1.total).toBe(2);
    expect(memory.size).toBe(2);

    const a2 = await engine.emit('price_changed', { sku: 'A1', region: 'eu' });
    expect(a2.layers).toEqual({ memory: 1 });
    expect(memory.get(cache.keyFor(chat('how much is sku A1 in US')))?.value).toBe('d');
    expect(audits.map((a) => a.event)).toEqual(['product_updated', 'price_changed']);
  });

  it('an event can bump a scope version or purge one request', async () => {
    const { cache } = makeCache();
    const engine = createInvalidationEngine({ cache });
    engine.on('prompt_deployed', ({ tenant }) => ({ scope: String(tenant) }));
    engine.on('answer_corrected', ({ question }) => ({ key: chat(String(question)) }));
    await cache.getOrLoad(chat('hi'), () => 'old', { scope: 'acme' });
    await ask(cache, chat('what is 2+2'), '5');
    await engine.emit('prompt_deployed', { tenant: 'acme' });
    expect(cache.resolveScope('acme').version).toBe(1);
    expect((await cache.getOrLoad(chat('hi'), () => 'new', { scope: 'acme', profile: genericProfile })).value).toBe('new');
    const a = await engine.emit('answer_corrected', { question: 'what is 2+2' });
    expect(a.layers).toEqual({ memory: 1 });
    expect((await ask(cache, chat('what is 2+2'), '4')).value).toBe('4');
  });

  it('an async handler may look up what to purge', async () => {
    const { cache, memory } = makeCache();
    const engine = createInvalidationEngine({ cache });
    const skusOfCategory = async (c: string) => (c === 'shoes' ? ['s1', 's2'] : []);
    engine.on('category_repriced', async ({ category }) => (await skusOfCategory(String(category))).map((s) => 'sku:' + s));
    await cache.getOrLoad(chat('s1 price'), () => loaded('10', { tags: ['sku:s1'] }));
    await cache.getOrLoad(chat('s2 price'), () => loaded('20', { tags: ['sku:s2'] }));
    await cache.getOrLoad(chat('s3 price'), () => loaded('30', { tags: ['sku:s3'] }));
    expect((await engine.emit('category_repriced', { category: 'shoes' })).total).toBe(2);
    expect(memory.size).toBe(1);
  });

  it('missing template data is a clear error naming the field', async () => {
    const { cache } = makeCache();
    const engine = createInvalidationEngine({ cache, rules: [onEvent('product_updated', ['product:{id}'])] });
    await expect(engine.emit('product_updated', { sku: 1 })).rejects.toThrow(/needs data\.id/);
    await expect(engine.emit('product_updated', { id: { nested: true } })).rejects.toBeInstanceOf(InvalidRequestError);
  });
});

describe('versions', () => {
  it('trackConfig bumps the scope version when the system prompt or model changes', async () => {
    const { cache } = makeCache();
    const engine = createInvalidationEngine({ cache });
    expect(await engine.trackConfig('acme', { systemPrompt: 'v1', model: 'gpt-4o' })).toEqual({ changed: false, version: 0, changedFields: [] });
    await cache.getOrLoad({ q: 'x' }, () => 'old', { scope: 'acme', profile: genericProfile });
    expect((await cache.getOrLoad({ q: 'x' }, () => 'unused', { scope: 'acme', profile: genericProfile })).status).toBe('hit');
    expect((await engine.trackConfig('acme', { systemPrompt: 'v1', model: 'gpt-4o' })).changed).toBe(false);
    const r = await engine.trackConfig('acme', { systemPrompt: 'v2', model: 'gpt-4o' });
    expect(r).toEqual({ changed: true, version: 1, changedFields: ['systemPrompt'] });
    const after = await cache.getOrLoad({ q: 'x' }, () => 'new', { scope: 'acme', profile: genericProfile });
    expect(after.status).toBe('miss');
    expect(after.value).toBe('new');
  });

  it('a versionStore carries the fingerprint and version to a restarted process', async () => {
    const store = new Map<string, string>();
    const versionStore = { get: async (k: string) => store.get(k), set: async (k: string, v: string) => void store.set(k, v) };
    const first = makeCache();
    const e1 = createInvalidationEngine({ cache: first.cache, versionStore });
    await e1.trackConfig('acme', { systemPrompt: 'v1' });
    await e1.trackConfig('acme', { systemPrompt: 'v2' });
    expect(first.cache.resolveScope('acme').version).toBe(1);
    // a new process (fresh cache) deploying v3: bumps past the stored version
    const second = makeCache();
    const e2 = createInvalidationEngine({ cache: second.cache, versionStore });
    const r = await e2.trackConfig('acme', { systemPrompt: 'v3' });
    expect(r).toMatchObject({ changed: true, version: 2 });
    // a third process with the same config learns the version without bumping
    const third = makeCache();
    const e3 = createInvalidationEngine({ cache: third.cache, versionStore });
    expect(await e3.trackConfig('acme', { systemPrompt: 'v3' })).toMatchObject({ changed: false, version: 2 });
    expect(third.cache.resolveScope('acme').version).toBe(2);
  });

  it('a versionStore holds fingerprints, never the config values (an API key in the config is not written to it)', async () => {
    const store = new Map<string, string>();
    const versionStore = { get: async (k: string) => store.get(k), set: async (k: string, v: string) => void store.set(k, v) };
    const first = makeCache();
    const e1 = createInvalidationEngine({ cache: first.cache, versionStore });
    await e1.trackConfig('acme', { systemPrompt: 'You are Acme support.', model: 'gpt-4o', apiKey: 'sk-live-SECRET123' });
    const stored = [...store.values()].join('\n');
    expect(stored).not.toContain('sk-live-SECRET123');
    expect(stored).not.toContain('You are Acme support.');
    // a restarted process still learns which fields changed
    const second = makeCache();
    const e2 = createInvalidationEngine({ cache: second.cache, versionStore });
    const r = await e2.trackConfig('acme', { systemPrompt: 'You are Acme support.', model: 'gpt-4.1', apiKey: 'sk-live-SECRET123' });
    expect(r).toEqual({ changed: true, version: 1, changedFields: ['model'] });
    expect([...store.values()].join('\n')).not.toContain('sk-live-SECRET123');
  });

  it('a versionStore record of an earlier version (config values in clear) is rewritten without them, also when the config is unchanged', async () => {
    const config = { systemPrompt: 'You are Acme support.', apiKey: 'sk-live-SECRET456' };
    const store = new Map<string, string>([['strata:config:acme/default', JSON.stringify({ fingerprint: sha256(canonicalize(config)), version: 3, config })]]);
    const versionStore = { get: async (k: string) => store.get(k), set: async (k: string, v: string) => void store.set(k, v) };
    const { cache } = makeCache();
    const engine = createInvalidationEngine({ cache, versionStore });
    expect(await engine.trackConfig('acme', config)).toEqual({ changed: false, version: 3, changedFields: [] });
    expect(store.get('strata:config:acme/default')).not.toContain('sk-live-SECRET456');
    expect(await engine.trackConfig('acme', { ...config, model: 'gpt-4o' })).toEqual({ changed: true, version: 4, changedFields: ['model'] });
  });

  it('staleAfterModelChange refuses hits answered by a model older than the newest one seen', async () => {
    const { cache } = makeCache();
    createInvalidationEngine({ cache, rules: [staleAfterModelChange()] });
    await ask(cache, chat('q1', { model: 'gpt-4o' }), 'old', { model: 'gpt-4o-2024-05-13' });
    expect((await ask(cache, chat('q1', { model: 'gpt-4o' }), 'x')).status).toBe('hit');
    // the alias now answers with a new snapshot
    await ask(cache, chat('q2', { model: 'gpt-4o' }), 'fresh', { model: 'gpt-4o-2024-08-06' });
    const r = await ask(cache, chat('q1', { model: 'gpt-4o' }), 'reloaded', { model: 'gpt-4o-2024-08-06' });
    expect(r.status).toBe('miss');
    expect(r.value).toBe('reloaded');
    // other aliases are not affected
    await ask(cache, chat('q3', { model: 'gpt-4o-mini' }), 'm', { model: 'gpt-4o-mini-2024-07-18' });
    expect((await ask(cache, chat('q3', { model: 'gpt-4o-mini' }))).status).toBe('hit');
  });
});

describe("don't-cache rules", () => {
  it('creative requests (high temperature, no seed) are neither read nor stored', async () => {
    const { cache, memory } = makeCache({ policy: 'always' });
    createInvalidationEngine({ cache, rules: [creativeRequests()] });
    const poem = chat('write a poem', { temperature: 1.2 });
    const r1 = await ask(cache, poem, 'poem 1');
    const r2 = await ask(cache, poem, 'poem 2');
    expect([r1.stored, r2.status, r2.value]).toEqual([false, 'bypass', 'poem 2']);
    // no temperature = provider default 1 = creative; a seed makes it repeatable
    expect((await ask(cache, { model: 'm', messages: [{ role: 'user', content: 'story' }] })).stored).toBe(false);
    expect((await ask(cache, chat('write a poem', { temperature: 1.2, seed: 7 }))).stored).toBe(true);
    expect((await ask(cache, chat('summarise', { temperature: 0.2 }))).stored).toBe(true);
    expect(memory.size).toBe(2);
  });

  it('time-sensitive prompts are skipped, with a configurable word list', async () => {
    const { cache, memory } = makeCache();
    createInvalidationEngine({ cache, rules: [timeSensitivePrompts({ extraWords: ['opening hours'] })] });
    for (const q of [
      "What's the weather in Paris?",
      'What is the latest price of BTC?',
      'news about Acme',
      'Are you open TODAY?',
      'opening hours of the Berlin store',
    ]) {
      expect((await ask(cache, chat(q))).stored, q).toBe(false);
    }
    for (const q of ['What is the capital of France?', 'Explain nowcasting models', 'knowledge base article']) {
      expect((await ask(cache, chat(q))).stored, q).toBe(true);
    }
    expect(memory.size).toBe(3);
  });

  it('or stored with a short TTL (and refused once older than it)', async () => {
    const c = clock();
    const { cache, memory } = makeCache({ now: c.now });
    createInvalidationEngine({ cache, now: c.now, rules: [timeSensitivePrompts({ action: { ttlMs: 60_000 } })] });
    await ask(cache, chat('weather in Oslo today?'), 'sunny');
    expect(memory.get(cache.keyFor(chat('weather in Oslo today?')))?.ttlMs).toBe(60_000);
    c.advance(30_000);
    expect((await ask(cache, chat('weather in Oslo today?'), 'rain')).value).toBe('sunny');
  });

  it('noCache by tag vetoes the write; entries stored before the rule are not served', async () => {
    const { cache } = makeCache();
    const engine = createInvalidationEngine({ cache });
    await cache.getOrLoad(chat('account balance'), () => loaded('100', { tags: ['pii'] }));
    engine.addRule(noCache({ tag: 'pii' }));
    expect((await cache.getOrLoad(chat('account balance'), () => loaded('200', { tags: ['pii'] }))).status).toBe('miss');
    expect((await cache.getOrLoad(chat('account balance'), () => loaded('300', { tags: ['pii'] }))).stored).toBe(false);
  });
});

describe('ad-hoc purges', () => {
  it('by key, tag and scope (version or clear), each with an audit record', async () => {
    const { cache, memory } = makeCache();
    const audits: InvalidationAudit[] = [];
    const engine = createInvalidationEngine({ cache, onInvalidate: (a) => audits.push(a) });
    await ask(cache, chat('a'));
    await cache.getOrLoad(chat('b'), () => loaded('b', { tags: ['t'] }));
    await cache.getOrLoad(chat('c'), () => 'c', { scope: 'acme' });
    await cache.getOrLoad(chat('d'), () => 'd', { scope: 'beta' });
    expect((await engine.purgeKey(chat('a'), { reason: 'wrong answer' })).layers).toEqual({ memory: 1 });
    expect((await engine.purgeTag('t')).layers).toEqual({ memory: 1 });
    expect((await engine.purgeScope('acme')).targets[0]).toMatchObject({ type: 'scope-version', scope: { tenant: 'acme', version: 1 } });
    // clear() reports what it removed (the layer contract's clear resolves a count)
    await engine.purgeScope('beta', { mode: 'clear' });
    expect(memory.size).toBe(0);
    expect(audits.map((a) => [a.source, a.reason ?? '', a.total])).toEqual([
      ['purge', 'wrong answer', 1],
      ['purge', '', 1],
      ['purge', '', 1],
      ['purge', '', 1],
    ]);
  });

  it("audits each engine operation once, and the application's direct cache invalidations too", async () => {
    const { cache } = makeCache();
    const audits: InvalidationAudit[] = [];
    const engine = createInvalidationEngine({ cache, onInvalidate: (a) => audits.push(a) });
    await cache.getOrLoad(chat('x'), () => loaded('x', { tags: ['direct'] }));
    await cache.invalidateTag('direct');
    await engine.bumpVersion('acme', 'new system prompt');
    await engine.trackConfig('acme', { model: 'a' });
    await engine.trackConfig('acme', { model: 'b' });
    expect(audits.map((a) => [a.source, a.reason ?? '', a.targets[0]?.type, a.total])).toEqual([
      ['cache', '', 'tag', 1],
      ['version', 'new system prompt', 'scope-version', 0],
      ['version', 'config changed: model', 'scope-version', 0],
    ]);
  });

  it('by RegExp over stored prompt text: bounded, incremental, resumable', async () => {
    const { cache, memory } = makeCache();
    const engine = createInvalidationEngine({ cache });
    for (let i = 0; i < 300; i++) await ask(cache, chat(i % 3 === 0 ? `refund policy question ${i}` : `shipping question ${i}`));
    await cache.getOrLoad({ fn: 'raw', args: [1] }, () => 'no text', { profile: genericProfile });
    expect(memory.get(cache.keyFor(chat('refund policy question 0')))?.meta?.[PROMPT_META_KEY]).toBe('refund policy question 0');

    const progress: number[] = [];
    const partial = await engine.purgeByPrompt(/refund/i, { pageSize: 50, maxPurged: 40, onProgress: (p) => progress.push(p.scanned) });
    expect(partial.complete).toBe(false);
    expect(partial.purged).toBe(40);
    expect(partial.resume).toBeDefined();
    expect(progress.length).toBeGreaterThan(1);
    const rest = await engine.purgeByPrompt('/refund/i', { pageSize: 50, resume: partial.resume! });
    expect(rest.complete).toBe(true);
    expect(partial.purged + rest.purged).toBe(100);
    expect(memory.size).toBe(201);
    expect(rest.audit.source).toBe('prompt-purge');

    const none = await engine.purgeByPrompt(/refund/i, { maxScanned: 10 });
    expect(none.scanned).toBe(10);
    expect(none.complete).toBe(false);
  });
});

describe('a rule that throws', () => {
  it('does not fail the request: the rule is skipped and reported', async () => {
    const { cache } = makeCache();
    const errors: string[] = [];
    createInvalidationEngine({
      cache,
      onRuleError: (e, rule) => errors.push(`${rule}: ${(e as Error).message}`),
      rules: [
        noCache(
          {
            when: () => {
              throw new Error('boom');
            },
          },
          'skip',
          'flaky-skip',
        ),
        {
          type: 'tag',
          name: 'flaky-tags',
          tags: () => {
            throw new Error('bang');
          },
        },
        maxAge(
          1_000,
          {
            when: () => {
              throw new Error('pow');
            },
          },
          'flaky-age',
        ),
      ],
    });
    expect((await ask(cache, chat('hello'), 'hi')).stored).toBe(true);
    expect((await ask(cache, chat('hello'), 'other')).status).toBe('hit');
    expect(errors).toContain('flaky-skip: boom');
    expect(errors).toContain('flaky-tags: bang');
    expect(errors).toContain('flaky-age: pow');
  });
});

describe('validation at registration', () => {
  const { cache } = makeCache();
  const expectOptionError = (fn: () => unknown, message: RegExp) => {
    let error: unknown;
    try {
      fn();
    } catch (e) {
      error = e;
    }
    expect(StrataError.isInstance(error)).toBe(true);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as Error).message).toMatch(message);
  };

  it('an invalid regular expression (string form) throws InvalidOptionError at registration', () => {
    expectOptionError(
      () => createInvalidationEngine({ cache, rules: [tagWhen({ prompt: '/product(/i' }, ['x'])] }),
      /rules\[0\]\.match\.prompt is not a valid regular expression/,
    );
    expectOptionError(() => createInvalidationEngine({ cache, rules: [maxAge(1000, { prompt: '[a-' })] }), /not a valid regular expression/);
    expectOptionError(() => timeSensitivePrompts({ patterns: ['(unclosed'] }), /patterns\[0\]/);
  });

  it('an unknown event is an error at registration (declared events) and at emit', async () => {
    expectOptionError(
      () => createInvalidationEngine({ cache, events: ['product_updated'], rules: [onEvent('prodcut_updated', ['product:{id}'])] }),
      /unknown event "prodcut_updated"; declared events are "product_updated"/,
    );
    const engine = createInvalidationEngine({ cache, events: { product_updated: ['id'] } });
    expectOptionError(() => engine.on('product_deleted', ['x']), /unknown event "product_deleted"/);
    expectOptionError(() => engine.on('product_updated', ['product:{sku}']), /reads \{sku\}, but event "product_updated" is declared with data fields id/);
    engine.on('product_updated', ['product:{id}']);
    await expect(engine.emit('product_upated', { id: 1 })).rejects.toThrow(/no rule is registered for this event; registered: "product_updated"/);
  });

  it('bad templates, bad values and unknown options are errors at registration', () => {
    expectOptionError(() => createInvalidationEngine({ cache, rules: [onEvent('e', ['product:{id'])] }), /unclosed "\{"/);
    expectOptionError(() => createInvalidationEngine({ cache, rules: [onEvent('e', ['product:}id'])] }), /stray "\}"/);
    expectOptionError(() => createInvalidationEngine({ cache, rules: [onEvent('e', ['product:{1x}'])] }), /bad placeholder/);
    expectOptionError(() => createInvalidationEngine({ cache, rules: [onEvent('e', [])] }), /non-empty list/);
    expectOptionError(() => createInvalidationEngine({ cache, rules: [tagWhen({}, ['by:{user}'])] }), /tag rules can fill \{model\}/);
    expectOptionError(() => createInvalidationEngine({ cache, rules: [maxAge(-1)] }), /maxAgeMs must be a positive number/);
    expectOptionError(() => createInvalidationEngine({ cache, rules: [{ type: 'ttl' } as never] }), /unknown type "ttl"/);
    expectOptionError(() => createInvalidationEngine({ cache, rules: [maxAge(1, { modle: 'x' } as never)] }), /unknown option "modle"/);
    expectOptionError(() => createInvalidationEngine({ cache, raceWindow: 1 } as never), /unknown option "raceWindow"/);
    expectOptionError(() => createInvalidationEngine({ cache: {} as never }), /option "cache" must be a MultiLayerCache/);
    expectOptionError(() => noCache({}, { ttlMs: 0 } as never) && createInvalidationEngine({ cache, rules: [noCache({}, { ttlMs: 0 })] }), /action\.ttlMs/);
  });
});
