import { type InvalidationBus, type Layer, MultiLayerCache, type MultiLayerCacheOptions, loaded } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';

/** A manual clock shared by the cache and the engine (starts at the real time: L1 also checks Date.now). */
export function clock(start = Date.now()) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms), set: (v: number) => void (t = v) };
}

export function chat(text: string, extra: Record<string, unknown> = {}) {
  return {
    model: 'gpt-4o-mini',
    temperature: 0,
    messages: [
      { role: 'system', content: 'You are a shop assistant.' },
      { role: 'user', content: text },
    ],
    ...extra,
  };
}

export function makeCache(options: Partial<MultiLayerCacheOptions> & { bus?: InvalidationBus } = {}) {
  const memory = new MemoryLayer({ maxEntries: 10_000, freeze: false });
  const layers: Layer[] = [memory];
  const cache = new MultiLayerCache({ layers, defaultTtlMs: null, ...options });
  return { cache, memory };
}

/** Loads `answer` through the cache; returns the result. */
export async function ask(cache: MultiLayerCache, request: unknown, answer = 'answer', extra: Parameters<typeof loaded>[1] = {}) {
  return cache.getOrLoad(request, () => loaded(answer, extra));
}

export function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
