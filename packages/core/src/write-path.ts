import type { CallRecord } from './call.js';
import type { CacheContext } from './context.js';
import type { CacheEntry } from './entry.js';
import { isPromiseLike } from './layer.js';
import { FAILED, type ResolvedLayer } from './layer-runner.js';
import type { Loaded } from './types.js';

function uniq(xs: readonly string[]): string[] {
  return xs.length < 2 ? [...xs] : [...new Set(xs)];
}

/**
 * The write side: builds the entry from a loaded result (stamped with when its load began), lets
 * plugins adjust or veto it, drops it when an invalidation since the load began covered it, and
 * writes it to every writable layer.
 *
 * Resolves whether the entry is in a layer: at once when an in-process (synchronous) layer took
 * it; otherwise after the first remote write was acknowledged (or all failed). Writes nobody
 * waits for stay tracked until they settle, so `flush()`/`close()` can wait for them.
 */
export class WritePath {
  constructor(private readonly ctx: CacheContext) {}

  /**
   * `stamp`: when the answer's load began (bus clock), stored with the entry. `allLanded`, when
   * given, receives a promise that settles once every layer's write has.
   */
  write<T>(call: CallRecord, out: Loaded<T>, sinceEpoch: number, stamp: number, allLanded?: (p: Promise<void>) => void): boolean | Promise<boolean> {
    const ctx = this.ctx;
    const key = call.key;
    if (out.complete === false) {
      ctx.events.emit('skipWrite', { key, reason: 'incomplete result' });
      return false;
    }
    const decision = call.decision;
    let ttlMs = call.options.ttlMs ?? out.ttlMs ?? decision.ttlMs ?? ctx.defaultTtlMs;
    let tags = uniq([...(decision.tags ?? []), ...(call.options.tags ?? []), ...(out.tags ?? [])]);
    const semantic = ctx.hasSemantic ? call.semantic : undefined;
    const model = out.model ?? call.profile.model?.(call.request);
    let entry: CacheEntry<T> = {
      value: out.value,
      createdAt: ctx.now(),
      stamp,
      tags,
      ...(ttlMs !== undefined ? { ttlMs } : {}),
      ...(out.chunks ? { chunks: out.chunks } : {}),
      ...(model ? { model } : {}),
      ...(out.usage ? { usage: out.usage } : {}),
      ...(semantic ? { semantic } : {}),
      ...(out.meta ? { meta: out.meta } : {}),
    };
    for (const p of ctx.plugins) {
      if (!p.beforeWrite) continue;
      const r = p.beforeWrite({ request: call.request, profile: call.profile, scope: call.scope, key, entry });
      if (r === false) {
        ctx.events.emit('skipWrite', { key, reason: `plugin ${p.name}` });
        return false;
      }
      if (r) {
        if (r.ttlMs !== undefined) ttlMs = ttlMs === undefined ? r.ttlMs : Math.min(ttlMs, r.ttlMs);
        if (r.tags) tags = uniq([...tags, ...r.tags]);
        entry = { ...entry, tags, ...(ttlMs !== undefined ? { ttlMs } : {}), ...(r.meta ? { meta: { ...(entry.meta ?? {}), ...r.meta } } : {}) };
      }
    }
    // An invalidation since the load began — in this process (the epoch), or anywhere this
    // process has heard of (a watermark at or after the stamp) — covers the answer.
    if (ctx.invalidations.invalidatedSince(sinceEpoch, key, entry) || ctx.sync.table.refuses(key, entry)) {
      ctx.events.emit('skipWrite', { key, reason: 'invalidated while loading' });
      return false;
    }
    return this.writeToLayers(call, entry, allLanded);
  }

  private writeToLayers(call: CallRecord, entry: CacheEntry, allLanded: ((p: Promise<void>) => void) | undefined): boolean | Promise<boolean> {
    const ctx = this.ctx;
    const key = call.key;
    const landed: string[] = [];
    const waits: Array<Promise<void>> = [];
    const note = (l: ResolvedLayer) => {
      l.stats.writes++;
      landed.push(l.name);
    };
    for (const l of ctx.layers) {
      if (!l.write) continue;
      const r = ctx.runner.write(l, 'set', (c) => l.layer.set(key, entry, c));
      if (isPromiseLike(r)) waits.push(r.then((v) => (v === FAILED ? undefined : note(l))));
      else if (r !== FAILED) note(l);
    }
    const announce = () => {
      if (ctx.events.listenerCount('set') > 0) ctx.events.emit('set', { key, layers: [...landed] });
    };
    if (waits.length === 0) {
      announce();
      return landed.length > 0;
    }
    const all = Promise.all(waits).then(announce);
    ctx.runner.track(all);
    allLanded?.(all.catch(() => undefined));
    if (landed.length > 0) return true;
    // No in-process layer holds it yet: `stored` waits for the first remote acknowledgement.
    return new Promise<boolean>((resolve) => {
      let left = waits.length;
      const settled = () => {
        if (landed.length > 0) resolve(true);
        else if (--left === 0) resolve(false);
      };
      for (const w of waits) w.then(settled, settled);
    });
  }
}
