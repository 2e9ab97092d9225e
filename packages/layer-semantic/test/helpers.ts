import { createHash } from 'node:crypto';
import { type CacheEntry, type CacheKey, type Embedder, type Scope, computeKey, computeSemantic, resolveScope } from '@strata-cache/core';

/**
 * Deterministic test embedder: each lower-cased word hashes to a random-looking unit vector,
 * a text is the normalised sum of its words. Texts sharing most words are close; unrelated
 * ones are near-orthogonal. Counts its calls.
 */
export class HashEmbedder implements Embedder {
  readonly id: string;
  calls = 0;
  texts = 0;
  constructor(
    readonly dimensions = 64,
    id = 'hash-test',
  ) {
    this.id = `${id}/${dimensions}`;
  }
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.calls++;
    this.texts += texts.length;
    return texts.map((t) => hashVector(t, this.dimensions));
  }
}

export function hashVector(text: string, dims: number): Float32Array {
  const v = new Float32Array(dims);
  for (const w of text
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean)) {
    const h = createHash('sha256').update(w).digest();
    for (let i = 0; i < dims; i++) v[i]! += (h[i % 32]! / 255 - 0.5) * (i % 2 ? 1 : -1) * (1 + ((h[(i * 7) % 32]! >> (i % 8)) & 1));
  }
  return normalise(v);
}

export function normalise(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n) || 1;
  for (let i = 0; i < v.length; i++) v[i]! /= n;
  return v;
}

/** A HashEmbedder whose calls take `ms` (so a write is still embedding when the next line runs). */
export class SlowEmbedder implements Embedder {
  readonly inner: HashEmbedder;
  readonly id: string;
  readonly dimensions: number;
  texts: string[] = [];
  constructor(
    private readonly ms: number,
    dims = 64,
  ) {
    this.inner = new HashEmbedder(dims);
    this.id = this.inner.id;
    this.dimensions = dims;
  }
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.texts.push(...texts);
    await new Promise((r) => setTimeout(r, this.ms));
    return this.inner.embed(texts);
  }
}

/** Maps texts to given vectors (for index tests with exact control); unknown texts → random. */
export class TableEmbedder implements Embedder {
  readonly id: string;
  readonly table = new Map<string, Float32Array>();
  constructor(
    readonly dimensions: number,
    id = 'table',
  ) {
    this.id = id;
  }
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    return texts.map((t) => this.table.get(t) ?? hashVector(t, this.dimensions));
  }
}

let seed = 12345;
/** mulberry32: a deterministic PRNG with a full 2^32 period (Math.imul keeps it in int32). */
export function rand(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
export function randomUnit(dims: number): Float32Array {
  const v = new Float32Array(dims);
  for (let i = 0; i < dims; i++) v[i] = rand() * 2 - 1;
  return normalise(v);
}

export function chat(text: string, system = 'You are helpful.', model = 'gpt-4o-mini') {
  return {
    model,
    temperature: 0,
    messages: [
      { role: 'system', content: system },
      { role: 'user', content: text },
    ],
  };
}

/** Key + entry for a chat request, with the semantic descriptor core would compute. */
export function chatItem(text: string, opts: { scope?: Scope; system?: string; value?: unknown; ttlMs?: number; tags?: string[]; model?: string } = {}) {
  const scope = opts.scope ?? resolveScope('t1');
  const req = chat(text, opts.system, opts.model);
  const key: CacheKey = computeKey(req, scope);
  const semantic = computeSemantic(req, scope)!;
  const entry: CacheEntry = {
    value: opts.value ?? `answer to: ${text}`,
    createdAt: Date.now(),
    tags: opts.tags ?? [],
    semantic,
    ...(opts.ttlMs !== undefined ? { ttlMs: opts.ttlMs } : {}),
  };
  return { key, entry, query: { ...semantic, scope } };
}
