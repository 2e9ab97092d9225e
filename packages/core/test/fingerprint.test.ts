import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidRequestError,
  KEY_SCHEMA_VERSION,
  StrataError,
  canonicalize,
  chatProfile,
  computeKey,
  computeSemantic,
  explainKeyDifference,
  fingerprint,
  genericProfile,
  resolveScope,
  sealRequest,
} from '../src/index.js';

const base = {
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are a support bot.' },
    { role: 'user', content: 'How do I reset my password?' },
  ],
  temperature: 0,
};

/** Every field that can change the answer, with two different values. */
const ANSWER_FIELDS: Record<string, [unknown, unknown]> = {
  model: ['gpt-4o', 'gpt-4o-mini-2'],
  messages: [[{ role: 'user', content: 'a' }], [{ role: 'user', content: 'b' }]],
  system: ['be brief', 'be verbose'],
  tools: [[{ type: 'function', function: { name: 'a', parameters: {} } }], [{ type: 'function', function: { name: 'b', parameters: {} } }]],
  tool_choice: ['auto', 'required'],
  response_format: [{ type: 'json_object' }, { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } }],
  temperature: [0.2, 0.7],
  top_p: [0.5, 0.9],
  max_tokens: [100, 200],
  max_completion_tokens: [100, 200],
  stop: [['\n'], ['END']],
  seed: [1, 2],
  n: [1, 2],
  presence_penalty: [0.1, 0.5],
  frequency_penalty: [0.1, 0.5],
  logit_bias: [{ '50256': -100 }, { '50256': 100 }],
  reasoning_effort: ['low', 'high'],
  parallel_tool_calls: [true, false],
  top_k: [5, 10],
  thinking: [{ type: 'enabled', budget_tokens: 1024 }, { type: 'disabled' }],
};

const IGNORED_FIELDS: Record<string, unknown> = {
  stream: true,
  stream_options: { include_usage: true },
  user: 'user-1234',
  metadata: { request: 'abc' },
  timeout: 30_000,
  request_id: 'req_1',
};

const scope = resolveScope('acme');

describe('request fingerprint', () => {
  it('carries the key schema version and a SHA-256 hash', () => {
    const k = computeKey(base, scope);
    expect(k.schema).toBe(KEY_SCHEMA_VERSION);
    expect(k.hash).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits, base64url
    // Schema 2 hashes every request as WTF-8 bytes: text with surrogates (emoji, lone halves)
    // has the same 43-character digest form, still distinct from its U+FFFD look-alike.
    expect(KEY_SCHEMA_VERSION).toBe(2);
    expect(computeKey({ q: '🚀' }, scope).hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(computeKey({ q: '\ud83d' }, scope).hash).not.toBe(computeKey({ q: '\ufffd' }, scope).hash);
    expect(k.id).toBe(`v${KEY_SCHEMA_VERSION}:${k.scopeId}:${k.hash}`);
  });

  it('is invariant to key order (property)', () => {
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.boolean(), fc.constant(null), tie('arr'), tie('obj')),
      arr: fc.array(tie('value'), { maxLength: 4 }),
      obj: fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 5 }),
    })).obj;
    const shuffle = (v: unknown, seed: number): unknown => {
      if (Array.isArray(v)) return v.map((x, i) => shuffle(x, seed + i));
      if (typeof v !== 'object' || v === null) return v;
      const entries = Object.entries(v as Record<string, unknown>);
      entries.sort((a, b) => ((a[0].length * 31 + seed) % 7) - ((b[0].length * 31 + seed) % 7) || (seed % 2 ? 1 : -1));
      const out: Record<string, unknown> = {};
      for (const [k, x] of entries.reverse()) out[k] = shuffle(x, seed + 1);
      return out;
    };
    fc.assert(
      fc.property(json, fc.integer(), (obj, seed) => {
        expect(computeKey(shuffle(obj, seed), scope, genericProfile).id).toBe(computeKey(obj, scope, genericProfile).id);
      }),
      { numRuns: 300 },
    );
  });

  it('changes when any answer-changing field changes', () => {
    for (const [field, [a, b]] of Object.entries(ANSWER_FIELDS)) {
      const ka = computeKey({ ...base, [field]: a }, scope);
      const kb = computeKey({ ...base, [field]: b }, scope);
      const kNone = computeKey({ ...base, [field]: undefined }, scope);
      expect(ka.id, field).not.toBe(kb.id);
      if (field !== 'model' && field !== 'messages' && field !== 'temperature') expect(ka.id, field).not.toBe(kNone.id);
    }
  });

  it('changes for any change of a nested message (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (x, y) => {
        fc.pre(x !== y);
        const a = { ...base, messages: [{ role: 'user', content: x }] };
        const b = { ...base, messages: [{ role: 'user', content: y }] };
        expect(computeKey(a, scope).id).not.toBe(computeKey(b, scope).id);
      }),
      { numRuns: 300 },
    );
  });

  it('ignores fields that cannot change the answer', () => {
    const k = computeKey(base, scope).id;
    for (const [field, value] of Object.entries(IGNORED_FIELDS)) {
      expect(computeKey({ ...base, [field]: value }, scope).id, field).toBe(k);
    }
    expect(computeKey({ ...base, ...IGNORED_FIELDS }, scope).id).toBe(k);
  });

  it('keys provider-specific fields: the adapters ignore their own (OpenAI store, prompt_cache_key, safety_identifier)', () => {
    const k = computeKey(base, scope).id;
    for (const field of ['store', 'prompt_cache_key', 'safety_identifier']) {
      expect(computeKey({ ...base, [field]: 'x' }, scope).id, field).not.toBe(k);
    }
  });

  it('never lets two scopes collide, even with separator characters in names (property)', () => {
    const part = fc.string({ minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(part, part, part, part, fc.nat(3), fc.nat(3), (t1, n1, t2, n2, v1, v2) => {
        fc.pre(t1 !== t2 || n1 !== n2 || v1 !== v2);
        const a = computeKey(base, resolveScope({ tenant: t1, namespace: n1, version: v1 }));
        const b = computeKey(base, resolveScope({ tenant: t2, namespace: n2, version: v2 }));
        expect(a.id).not.toBe(b.id);
        expect(a.scopeId).not.toMatch(/[:{}]/);
      }),
      { numRuns: 500 },
    );
    const tricky = [
      { tenant: 'a/b', namespace: 'c' },
      { tenant: 'a', namespace: 'b/c' },
      { tenant: 'a:b', namespace: 'c' },
      { tenant: 'a%2Fb', namespace: 'c' },
    ].map((s) => computeKey(base, resolveScope(s)).id);
    expect(new Set(tricky).size).toBe(tricky.length);
  });

  it('keeps profiles apart: the same body for two endpoints never shares a key', () => {
    expect(computeKey(base, scope, chatProfile).id).not.toBe(computeKey(base, scope, genericProfile).id);
  });

  it('is injective on awkward values (quotes, escapes, undefined vs null, dates vs strings, bytes)', () => {
    const keys = [
      { a: 'x","b":"y' },
      { a: 'x', b: 'y' },
      { a: [undefined] },
      { a: [null] },
      { a: [] },
      { a: new Date(0) },
      { a: '1970-01-01T00:00:00.000Z' },
      { a: 0 },
      { a: new Uint8Array([1, 2]) },
      { a: 'AQI=' },
      { a: '\ud800' },
      { a: '\ud801' },
      { a: '\ufffd' },
    ].map((r) => computeKey(r, scope, genericProfile).id);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('rejects bad input with an error naming the field', () => {
    const circular: Record<string, unknown> = { ...base };
    circular['self'] = circular;
    const cases: Array<[unknown, string]> = [
      [circular, '$.self'],
      [{ ...base, fn: () => 1 }, '$.fn'],
      [{ ...base, big: 10n }, '$.big'],
      [{ ...base, temperature: Number.NaN }, '$.temperature'],
      [{ ...base, tools: [{ x: Infinity }] }, '$.tools[0].x'],
      [{ ...base, m: new Map() }, '$.m'],
      [{ ...base, s: Symbol('x') }, '$.s'],
    ];
    for (const [request, field] of cases) {
      let error: unknown;
      try {
        computeKey(request, scope);
      } catch (e) {
        error = e;
      }
      expect(error, field).toBeInstanceOf(InvalidRequestError);
      expect(StrataError.isInstance(error)).toBe(true);
      expect((error as InvalidRequestError).field).toBe(field);
      expect((error as Error).message).toContain(field);
    }
  });

  it('rejects bad scopes clearly', () => {
    expect(() => resolveScope({ tenant: '' })).toThrow(/scope.tenant/);
    expect(() => resolveScope({ tenant: 'a', version: -1 })).toThrow(/scope.version/);
    expect(() => resolveScope({ tenant: 'a', namespace: 'x'.repeat(300) })).toThrow(/scope.namespace/);
  });

  it('fingerprint() is the one-call form', () => {
    expect(fingerprint(base, { scope: 'acme' }).id).toBe(computeKey(base, scope).id);
  });
});

describe('explainKeyDifference', () => {
  it('names the answer-changing fields that differ and separates ignored ones', () => {
    const a = { ...base, user: 'u1', stream: true };
    const b = { ...base, temperature: 0.5, user: 'u2', messages: [base.messages[0], { role: 'user', content: 'Reset my password?' }] };
    const e = explainKeyDifference(a, b);
    expect(e.sameKey).toBe(false);
    expect(e.differences.map((d) => d.path).sort()).toEqual(['$.messages[1].content', '$.temperature']);
    expect(e.ignoredDifferences.map((d) => d.path).sort()).toEqual(['$.stream', '$.user']);
  });

  it('says when keys are the same and when scopes differ', () => {
    expect(explainKeyDifference(base, { ...base, user: 'x' }).sameKey).toBe(true);
    const e = explainKeyDifference(base, base, { scopeA: 'acme', scopeB: 'globex' });
    expect(e.sameKey).toBe(false);
    expect(e.differences).toEqual([]);
    expect(e.scope).toEqual({ a: 'acme/default/v0', b: 'globex/default/v0' });
  });
});

describe('semantic descriptor', () => {
  it('compares only the last user turn; everything else partitions exactly', () => {
    const a = computeSemantic(base, scope)!;
    expect(a.text).toBe('How do I reset my password?');
    const reworded = { ...base, messages: [base.messages[0], { role: 'user', content: 'password reset how?' }] };
    expect(computeSemantic(reworded, scope)!.partition).toBe(a.partition);
    const otherSystem = { ...base, messages: [{ role: 'system', content: 'You are a pirate.' }, base.messages[1]] };
    expect(computeSemantic(otherSystem, scope)!.partition).not.toBe(a.partition);
    expect(computeSemantic({ ...base, model: 'gpt-4o' }, scope)!.partition).not.toBe(a.partition);
    expect(computeSemantic(base, resolveScope('globex'))!.partition).not.toBe(a.partition);
    expect(computeSemantic({ ...base, user: 'someone' }, scope)!.partition).toBe(a.partition);
  });

  it('refuses turns that are not plain user text', () => {
    expect(computeSemantic({ ...base, messages: [{ role: 'tool', content: 'x' }] }, scope)).toBeUndefined();
    expect(computeSemantic({ ...base, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, scope)).toBeUndefined();
  });
});

describe('canonical form edge cases', () => {
  it('accepts very deep acyclic values and keys them consistently', () => {
    const deep = (n: number, leaf: unknown): unknown => (n === 0 ? leaf : { z: 1, a: deep(n - 1, leaf) });
    const a = computeKey(deep(200, 'x'), scope, genericProfile);
    expect(computeKey(deep(200, 'x'), scope, genericProfile).id).toBe(a.id);
    expect(computeKey(deep(200, 'y'), scope, genericProfile).id).not.toBe(a.id);
    expect(computeKey(deep(199, 'x'), scope, genericProfile).id).not.toBe(a.id);
  });

  it('refuses a request nested 5,000 levels deep with a typed error, not a RangeError', () => {
    const deep = (n: number): unknown => {
      let v: unknown = 'leaf';
      for (let i = 0; i < n; i++) v = { a: v };
      return v;
    };
    const arrays = (n: number): unknown => {
      let v: unknown = 'leaf';
      for (let i = 0; i < n; i++) v = [v];
      return v;
    };
    for (const request of [deep(5_000), arrays(5_000), { messages: [{ content: deep(5_000) }] }]) {
      let error: unknown;
      try {
        computeKey(request, scope, genericProfile);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidRequestError);
      expect((error as Error).message).toMatch(/nested more than 1000 levels deep/);
    }
    expect(() => canonicalize(deep(5_000))).toThrow(InvalidRequestError);
  });

  it('canonicalize() keeps its text form (the hash of a surrogate-free request is the hash of that text)', () => {
    const request = { b: [1, 'two', null, true], a: { é: 'ü', d: new Date(5) } };
    const text = canonicalize(request);
    expect(text).toBe('{1"a{1"dD5;1"é1"ü}1"b[n1;3"twoNT]}');
    expect(canonicalize({ x: '\ud800' }, new Set(), 'p\n')).toBe('p\n{1"x1"\ud800}');
    expect(computeKey(request, scope, genericProfile).hash).toBe(
      createHash('sha256')
        .update('acme/default/v0\ngeneric\n' + text)
        .digest('base64url'),
    );
    // The scope is inside the hash: the same request in two scopes never shares a hash.
    expect(computeKey(request, resolveScope('globex'), genericProfile).hash).not.toBe(computeKey(request, scope, genericProfile).hash);
  });

  it('encodes exactly the specified form (property, against a plain reference encoder) and keeps pinned keys', () => {
    // The form as specified in canonical.ts, built as a string: the fast encoder must produce these bytes.
    const reference = (v: unknown): string => {
      if (typeof v === 'string') return `${v.length}"${v}`;
      if (typeof v === 'number') return `n${String(v)};`;
      if (typeof v === 'boolean') return v ? 'T' : 'F';
      if (v === null) return 'N';
      if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'u' : reference(x))).join('')}]`;
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o)
        .filter((k) => o[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${k.length}"${k}${reference(o[k])}`).join('')}}`;
    };
    const text = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 60 }));
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        text,
        fc.integer(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.boolean(),
        fc.constant(null),
        fc.constant(undefined),
        tie('arr'),
        tie('obj'),
      ),
      arr: fc.array(tie('value'), { maxLength: 5 }),
      obj: fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('', 'a', 'aa', 'b', 'é', '\u{1f680}')), tie('value'), { maxKeys: 30 }),
    })).obj;
    fc.assert(
      fc.property(json, (obj) => {
        expect(canonicalize(obj)).toBe(reference(obj));
      }),
      { numRuns: 500 },
    );
    // Keys of schema 2 do not move with the encoder's implementation (computed before it was reworked for speed).
    const request = {
      model: 'gpt-4o-mini',
      temperature: 0,
      max_tokens: 512,
      user: 'u-1',
      stream: false,
      messages: [
        { role: 'system', content: 'You are a concise assistant. '.repeat(3) },
        { role: 'user', content: 'Ünïcödé, emoji 🚀 and a lone \ud800 half; "quotes" and \\ backslashes' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
      ],
      tools: [
        {
          type: 'function',
          function: { name: 'f', description: 'd', parameters: { type: 'object', properties: { a: { type: 'integer', minimum: -1.5 } }, required: ['a'] } },
        },
      ],
      logit_bias: { '50256': -100, '1': 1e21, '': 0 },
      stop: ['\n', 'é'.repeat(60)],
      zz: [undefined, 0, -0, 3.25, true, false],
    };
    expect(computeKey(request, scope).hash).toBe('P6nkdEFNzWiHI3sDX5Vu66UcHA5S_897TDeUqZVSD1o');
    expect(computeKey(request, scope, genericProfile).hash).toBe('5sWsF-S87FnmFPAExBpORxmHOilNWTvnrkKJiy9oPno');
  });

  it('a polluted Object.prototype does not change keys (only own properties count)', () => {
    const before = computeKey(base, scope).id;
    const proto = Object.prototype as Record<string, unknown>;
    proto['injected'] = 'x';
    try {
      expect(computeKey(base, scope).id).toBe(before);
    } finally {
      delete proto['injected'];
    }
  });

  it('finds a cycle deep inside a value and names its path', () => {
    const inner: Record<string, unknown> = { k: 1 };
    inner['back'] = inner;
    expect(() => computeKey({ a: [{ b: inner }] }, scope, genericProfile)).toThrow(/\$\.a\[0\]\.b\.back is a circular reference/);
  });
});

describe('sealRequest', () => {
  const request = () => ({
    model: 'gpt-4o-mini',
    temperature: 0,
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: [{ type: 'text', text: 'What is our refund policy?' }] },
    ],
  });

  it('deep-freezes a plain request; its key and semantic descriptor are those of an equal unsealed request, per scope and profile', () => {
    const sealed = sealRequest(request());
    expect(Object.isFrozen(sealed)).toBe(true);
    expect(Object.isFrozen(sealed.messages)).toBe(true);
    expect(Object.isFrozen(sealed.messages[1]!.content)).toBe(true);
    expect(() => {
      (sealed.messages as unknown[]).push({ role: 'user', content: 'more' });
    }).toThrow(TypeError);
    const [a, b] = [resolveScope('acme'), resolveScope({ tenant: 'globex', namespace: 'support' })];
    // Scopes and profiles in turn: each answer is the one an unsealed copy gets.
    for (const [scope, profile] of [
      [a, chatProfile],
      [b, chatProfile],
      [a, genericProfile],
      [a, chatProfile],
      [a, chatProfile],
    ] as const) {
      expect(computeKey(sealed, scope, profile)).toEqual(computeKey(request(), scope, profile));
      expect(computeSemantic(sealed, scope, profile)).toEqual(computeSemantic(request(), scope, profile));
    }
    // Twice in a row: the same key object (computed once), frozen since it is handed out again.
    expect(computeKey(sealed, a, chatProfile)).toBe(computeKey(sealed, a, chatProfile));
    expect(Object.isFrozen(computeKey(sealed, a, chatProfile))).toBe(true);
    expect(sealRequest(sealed)).toBe(sealed);
  });

  it('a request holding anything but plain objects, arrays and primitives is returned unsealed and unfrozen', () => {
    for (const odd of [
      { ...request(), at: new Date(0) },
      { ...request(), bytes: new Uint8Array(2) },
    ]) {
      const r = sealRequest(odd);
      expect(r).toBe(odd);
      expect(Object.isFrozen(r)).toBe(false);
      expect(Object.isFrozen(r.messages)).toBe(false);
      // Not kept: a change after the first key changes the key.
      const before = computeKey(r, resolveScope('acme'));
      (r as { temperature: number }).temperature = 1;
      expect(computeKey(r, resolveScope('acme')).hash).not.toBe(before.hash);
    }
    expect(sealRequest('text')).toBe('text');
    expect(sealRequest(null)).toBe(null);
    // A getter could answer differently later: not sealed, keyed afresh every time.
    let temperature = 0;
    const live = sealRequest({
      model: 'm',
      get temperature() {
        return temperature;
      },
    });
    expect(Object.isFrozen(live)).toBe(false);
    const k0 = computeKey(live, resolveScope('acme')).hash;
    temperature = 1;
    expect(computeKey(live, resolveScope('acme')).hash).not.toBe(k0);
    // Deeper down too: a getter in a message, an accessor at an array index.
    let content = 'a';
    const message = Object.defineProperty({ role: 'user' }, 'content', { get: () => content, enumerable: true });
    const deep = sealRequest({ model: 'm', messages: [{ role: 'system', content: 'x' }, message] });
    const messages: unknown[] = [{ role: 'system', content: 'x' }];
    Object.defineProperty(messages, 1, { get: () => ({ role: 'user', content }), enumerable: true });
    const indexed = sealRequest({ model: 'm', messages });
    for (const r of [deep, indexed]) {
      expect(Object.isFrozen(r)).toBe(false);
      expect(Object.isFrozen(r.messages)).toBe(false);
      const before = computeKey(r, resolveScope('acme')).hash;
      content = content + 'b';
      expect(computeKey(r, resolveScope('acme')).hash).not.toBe(before);
    }
  });
});
