import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidOptionError, LayerError, MissingDependencyError, StrataError } from '@strata-cache/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type UseEmbedder, UseTokenizer, type Vocabulary, createUseEmbedder, defaultModelDir } from '../src/index.js';
import { loadRunner } from '../src/runner.js';

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (a: Float32Array) => Math.sqrt(dot(a, a));

describe('UseTokenizer', () => {
  const vocab = JSON.parse(readFileSync(join(defaultModelDir(), 'vocab.json'), 'utf8')) as Vocabulary;
  const tok = new UseTokenizer(vocab);
  const pieces = (ids: number[]) => ids.map((i) => vocab[i]![0]).join('');

  it('segments into vocabulary pieces that spell the normalised text', () => {
    const text = 'How do I reset my password?';
    const ids = tok.encode(text);
    expect(ids.length).toBeGreaterThan(3);
    expect(pieces(ids)).toBe('\u2581' + text.replace(/ /g, '\u2581'));
  });

  it('prefers whole-word pieces (best total score)', () => {
    const ids = tok.encode('the');
    expect(ids).toHaveLength(1);
    expect(vocab[ids[0]!]![0]).toBe('\u2581the');
  });

  it('NFKC-normalises and merges runs of unknown characters into one <unk>', () => {
    expect(tok.encode('ﬁle')).toEqual(tok.encode('file'));
    const ids = tok.encode('a 㐀㐁㐂 b');
    expect(ids.filter((i) => i === 0)).toHaveLength(1);
    expect(tok.encode('')).toEqual([]);
  });

  it('names the characters no piece covers (whitespace left out), on every path', () => {
    expect(tok.unknownCharacters('How do I reset my password?\n\tThanks!')).toEqual([]);
    expect(tok.unknownCharacters('Café au lait')).toEqual([]);
    expect(tok.unknownCharacters('What does 时尚 mean?')).toEqual(['时', '尚']);
    expect(tok.unknownCharacters('Is x ≤ 3?')).toEqual(['≤']);
    // The precise path agrees with encode(): one <unk> per run of unknown characters.
    const text = 'Привет, мир 👋 and hello';
    const runs = tok.encode(text).filter((i) => i === 0).length;
    expect(runs).toBeGreaterThan(0);
    const unknown = tok.unknownCharacters(text);
    expect(unknown).toContain('👋');
    expect(unknown.length).toBeGreaterThanOrEqual(runs);
    for (const ch of unknown) expect(tok.encode(ch)).toContain(0);
  });

  it('represents Latin-script text with known characters only', () => {
    expect(tok.represents('How do I reset my password?')).toBe(true);
    expect(tok.represents('Café au lait, résumé')).toBe(true);
    expect(tok.represents('naïve')).toBe(false); // 'ï' is not in the vocabulary
    // Cyrillic letters it happens to hold as single pieces still carry no meaning for the model.
    expect(tok.represents('привет')).toBe(false);
    expect(tok.represents('Is x ≤ 3 allowed?')).toBe(false);
    expect(tok.represents('Price: 500 ₹')).toBe(false);
    expect(tok.represents('Thanks 🤗!')).toBe(true);
  });
});

describe('createUseEmbedder (real USE-lite, wasm, worker threads)', () => {
  let e: UseEmbedder;
  beforeAll(async () => {
    e = await createUseEmbedder({ workers: 2 });
  });
  afterAll(async () => {
    await e?.close();
  });

  it('runs the wasm backend it asked for (no silent cpu fallback), with SIMD', () => {
    expect(e.info.backend).toBe('wasm');
    expect(e.info.requestedBackend).toBe('wasm');
    expect(e.info.simd).toBe(true);
    expect(e.info.workers).toBe(2);
    expect(e.dimensions).toBe(512);
    expect(e.id).toMatch(/^use-lite@1\/[0-9a-f]{12}\/t128$/);
    expect(e.info.maxTokens).toBe(128);
    expect(e.info.executor).toBe('sync');
    expect(e.info.tfjs.backend).toBe(e.info.tfjs.core);
    expect(e.info.tfjs.converter).toBe(e.info.tfjs.core);
  });

  it('says which texts it cannot represent: unrelated questions in a script it never learned look alike', async () => {
    const ru = ['Какая примерно масса будет у деревянного домика?', 'Сколькими способами можно разбить набор из 12 объектов на две части?'];
    const [a, b] = await e.embed(ru);
    // Different questions, nearly the same vector: the model sees little but <unk>.
    expect(dot(a!, b!)).toBeGreaterThan(0.9);
    for (const t of ru) expect(e.represents(t)).toBe(false);
    expect(e.represents('What does 时尚达人 mean?')).toBe(false);
    expect(e.represents('Is x ≤ 3 allowed?')).toBe(false);
    expect(e.represents('How do I reset my password?')).toBe(true);
    expect(e.represents('Fingerprints in 🤗 Datasets are computed by hashing')).toBe(true);
    expect(e.represents('Line one\n\tline two\u200b')).toBe(true);
  });

  it('embeds into L2-normalised 512-d vectors with the reference similarities', async () => {
    const [a, b, c] = await e.embed(['How do I reset my password?', 'I forgot my password, how can I change it?', 'What is the capital of France?']);
    for (const v of [a!, b!, c!]) {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v.length).toBe(512);
      expect(norm(v)).toBeCloseTo(1, 4);
    }
    // Reference values measured with the upstream TF.js pipeline (shared/.../SOURCE.md).
    expect(dot(a!, b!)).toBeCloseTo(0.916, 2);
    expect(dot(a!, c!)).toBeCloseTo(0.124, 2);
  });

  it('gives the same vector alone, in a batch, repeated, and in calls running at once', async () => {
    const q = 'Which plan includes priority support?';
    const [alone] = await e.embed([q]);
    const batch = await e.embed(['short', q, 'a much longer sentence about something else entirely, with many words in it', q]);
    const concurrent = await Promise.all([e.embed([q]), e.embed(['other']), e.embed([q, 'x'])]);
    for (const v of [batch[1]!, batch[3]!, concurrent[0][0]!, concurrent[2][0]!]) expect(dot(alone!, v)).toBeGreaterThan(0.9999);
    expect(dot(alone!, batch[0]!)).toBeLessThan(0.99);
  });

  it('keeps input order across length-sorted batches and both workers (matches one-by-one results)', async () => {
    const texts = Array.from({ length: 60 }, (_, i) => `question ${i}: ` + 'how does caching work '.repeat(1 + ((i * 7) % 9)));
    const all = await e.embed(texts);
    expect(all).toHaveLength(60);
    for (const i of [0, 13, 31, 59]) {
      const [one] = await e.embed([texts[i]!]);
      expect(dot(all[i]!, one!)).toBeGreaterThan(0.9999);
    }
  });

  it('truncates long prompts to maxTokens (head + tail) and still embeds them', async () => {
    const long = 'alpha beta gamma delta '.repeat(200) + 'the very end';
    const ids = e.tokenize(long);
    expect(ids).toHaveLength(128);
    const full = new UseTokenizer(JSON.parse(readFileSync(join(e.info.modelDir, 'vocab.json'), 'utf8')) as Vocabulary).encode(long);
    expect(ids.slice(0, 64)).toEqual(full.slice(0, 64));
    expect(ids.slice(64)).toEqual(full.slice(full.length - 64));
    const [v] = await e.embed([long]);
    expect(norm(v!)).toBeCloseTo(1, 4);
  });

  it('sees the tail of a long prompt (the graph itself drops tokens from position 128 on)', async () => {
    const body = 'We are writing about the delivery schedule for the spring catalogue and the printing costs. '.repeat(12);
    const [a, b] = await e.embed([body + 'Please cancel the order.', body + 'Please double the order.']);
    expect(dot(a!, b!)).toBeLessThan(0.9999);
  });

  it('embeds an empty text and an empty list', async () => {
    expect(await e.embed([])).toEqual([]);
    const [v] = await e.embed(['']);
    expect(v!.length).toBe(512);
    expect(Number.isFinite(v![0]!)).toBe(true);
  });

  it('honours an aborted signal', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(e.embed(['x'], { signal: ac.signal })).rejects.toThrow();
  });

  it('takes the queued texts of a call aborted meanwhile out of the queue: they are never embedded', async () => {
    const busy = e.embed(Array.from({ length: 40 }, (_, i) => `filler text number ${i} ` + 'with a few more words '.repeat(8)));
    const before = e.abandonedTexts;
    const ac = new AbortController();
    const p = e.embed(['never embedded one', 'never embedded two'], { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toThrow();
    expect(e.abandonedTexts - before).toBe(2);
    expect(await busy).toHaveLength(40);
  });

  it('spreads long texts over small batches (maxBatchTokens) with the same vectors as one by one', async () => {
    const small = await createUseEmbedder({ workers: 2, maxBatchTokens: 64 });
    try {
      const texts = Array.from({ length: 12 }, (_, i) => `turn ${i}: ` + 'the meeting moved to thursday afternoon because of the holiday '.repeat(1 + (i % 3)));
      const all = await small.embed(texts);
      for (const i of [0, 5, 11]) {
        const [one] = await e.embed([texts[i]!]);
        expect(dot(all[i]!, one!)).toBeGreaterThan(0.9999);
      }
    } finally {
      await small.close();
    }
  });
});

describe('options and failures', () => {
  it('rejects unknown and out-of-range options with InvalidOptionError', async () => {
    await expect(createUseEmbedder({ nope: 1 } as never)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(createUseEmbedder({ backend: 'webgl' as never })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(createUseEmbedder({ workers: -1 })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(createUseEmbedder({ maxTokens: 0 })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(createUseEmbedder({ maxBatchTokens: 0 })).rejects.toBeInstanceOf(InvalidOptionError);
    // USE-lite's graph keeps 128 tokens; more would silently drop the tail.
    await expect(createUseEmbedder({ maxTokens: 129 })).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it('names option modelDir when the directory has no model', async () => {
    const err = await createUseEmbedder({ modelDir: '/nonexistent/model' }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(MissingDependencyError);
    expect(StrataError.isInstance(err)).toBe(true);
    expect((err as Error).message).toContain('modelDir');
  });

  it('runs in the calling thread (workers: 0) with the same vectors, and refuses work once closed', async () => {
    const inline = await createUseEmbedder({ workers: 0 });
    const pooled = await createUseEmbedder({ workers: 1, maxTokens: 64 });
    try {
      expect(inline.info.backend).toBe('wasm');
      expect(pooled.id).toMatch(/\/t64$/);
      const [a] = await inline.embed(['Is the museum open on Sundays?']);
      const [b] = await pooled.embed(['Is the museum open on Sundays?']);
      expect(dot(a!, b!)).toBeGreaterThan(0.9999);
    } finally {
      await inline.close();
      await pooled.close();
    }
    await expect(inline.embed(['x'])).rejects.toBeInstanceOf(LayerError);
  });

  it('accepts a user-supplied model directory (the shared staged copy, when present)', async (ctx) => {
    const dir = resolve(process.env['STRATA_DATA_DIR'] ?? resolve(import.meta.dirname, '../../../../shared/data'), 'models/universal-sentence-encoder-lite');
    if (!existsSync(join(dir, 'model.json'))) ctx.skip();
    const own = await createUseEmbedder({ modelDir: dir, workers: 1 });
    try {
      expect(own.info.modelDir).toBe(dir);
      const [a, b] = await own.embed(['How do I reset my password?', 'I forgot my password, how can I change it?']);
      expect(dot(a!, b!)).toBeCloseTo(0.916, 2);
    } finally {
      await own.close();
    }
    // The limit is read from the loaded graph for a user-supplied directory.
    await expect(createUseEmbedder({ modelDir: dir, workers: 1, maxTokens: 129 })).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it("the synchronous Where gives the same vectors as TF.js's async executor", async () => {
    const texts = [
      'How do I reset my password?',
      '',
      'a much longer sentence about something else entirely, with many words in it',
      'Is the museum open on Sundays?',
    ];
    const tok = new UseTokenizer(JSON.parse(readFileSync(join(defaultModelDir(), 'vocab.json'), 'utf8')) as Vocabulary);
    const batch = texts.map((t) => (t ? tok.encode(t) : [0]));
    const fast = await loadRunner(defaultModelDir(), 'wasm');
    const reference = await loadRunner(defaultModelDir(), 'wasm', { syncWhere: false });
    try {
      expect(fast.sync).toBe(true);
      expect(reference.sync).toBe(false);
      const x = await fast.run(batch);
      const y = await reference.run(batch);
      expect(x.length).toBe(4 * 512);
      let diff = 0;
      for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
      expect(diff).toBeLessThan(1e-6);
    } finally {
      fast.dispose();
      reference.dispose();
    }
  });

  it('runs the pure-JS cpu backend when asked (slow; for comparison) with matching vectors', async () => {
    const cpu = await createUseEmbedder({ backend: 'cpu', workers: 1 });
    const wasm = await createUseEmbedder({ workers: 1 });
    try {
      expect(cpu.info.backend).toBe('cpu');
      expect(cpu.info.simd).toBe(false);
      expect(cpu.id).toBe(wasm.id);
      const [a] = await cpu.embed(['Where is my order?']);
      const [b] = await wasm.embed(['Where is my order?']);
      expect(dot(a!, b!)).toBeGreaterThan(0.999);
    } finally {
      await cpu.close();
      await wasm.close();
    }
  });
});
