import type { LanguageModelV4Middleware, LanguageModelV4StreamPart } from '@ai-sdk/provider';
import { type CacheEntry, type CacheKey, type Layer, type LayerCapabilities, LAYER_SPECIFICATION_VERSION } from '@strata-cache/core';

/**
 * A middleware placed outside `strataCache` in `wrapLanguageModel`'s list: it records exactly
 * what the cache middleware hands to the AI SDK (generate results and stream parts).
 */
export function probe() {
  const generated: unknown[] = [];
  const streams: LanguageModelV4StreamPart[][] = [];
  const middleware: LanguageModelV4Middleware = {
    specificationVersion: 'v4',
    async wrapGenerate({ doGenerate }) {
      const r = await doGenerate();
      generated.push(structuredClone(r));
      return r;
    },
    async wrapStream({ doStream }) {
      const r = await doStream();
      const parts: LanguageModelV4StreamPart[] = [];
      streams.push(parts);
      const copy = new TransformStream<LanguageModelV4StreamPart, LanguageModelV4StreamPart>({
        transform(part, controller) {
          parts.push(structuredClone(part));
          controller.enqueue(part);
        },
      });
      return { ...r, stream: r.stream.pipeThrough(copy) };
    },
  };
  return { middleware, generated, streams };
}

/** Removes `providerMetadata.strata` (the hit marker) from a part or result, for exact comparisons. */
export function withoutInfo<T>(value: T): T {
  const v = structuredClone(value) as { providerMetadata?: Record<string, unknown> };
  if (v && typeof v === 'object' && v.providerMetadata) {
    delete v.providerMetadata['strata'];
    if (Object.keys(v.providerMetadata).length === 0) delete v.providerMetadata;
  }
  return v as T;
}

/** A layer that stores entries as JSON text, as a remote layer (Redis) does. */
export class JsonLayer implements Layer {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly name: string;
  readonly capabilities: LayerCapabilities = { nativeTtl: false, batch: false, semantic: false, shared: true, tags: false, remote: false };
  readonly map = new Map<string, string>();
  constructor(name = 'json') {
    this.name = name;
  }
  get(key: CacheKey): CacheEntry | undefined {
    const s = this.map.get(key.id);
    return s === undefined ? undefined : (JSON.parse(s) as CacheEntry);
  }
  set(key: CacheKey, entry: CacheEntry): void {
    this.map.set(key.id, JSON.stringify(entry));
  }
  delete(key: CacheKey): boolean {
    return this.map.delete(key.id);
  }
  clear(): number {
    const n = this.map.size;
    this.map.clear();
    return n;
  }
}

/** A layer that fails every operation (a cache layer outage). */
export class BrokenLayer implements Layer {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly name = 'broken';
  readonly capabilities: LayerCapabilities = { nativeTtl: false, batch: false, semantic: false, shared: true, tags: false, remote: true };
  get(): never {
    throw new Error('layer down');
  }
  set(): never {
    throw new Error('layer down');
  }
  delete(): never {
    throw new Error('layer down');
  }
  clear(): never {
    throw new Error('layer down');
  }
}
