// The admin API: statistics, why two requests miss each other, what the cache holds for a
// request, purges (tag, scope, prompt pattern, one request), version bumps, events and key
// reloads. It listens on its own port (loopback by default) behind a bearer token; the `strata`
// CLI is a client of it. Requests are described the way callers send them ({ path, body,
// headers }) and keyed by the same caching fetch that serves them, so what it explains is what
// the gateway does.
import { type CacheEntry, type Scope, explainKeyDifference, isExpired } from '@strata-cache/core';
import { type RequestDescription, describeRequest } from '@strata-cache/http';
import type { InvalidationAudit } from '@strata-cache/invalidation';
import type { FastifyInstance } from 'fastify';
import { GatewayError } from './errors.js';
import { type KeyTable, scopeOf } from './keys.js';
import type { ScopedFetches } from './fetches.js';
import { CACHED_ROUTES } from './proxy.js';
import type { Stack } from './stack.js';
import type { Upstream } from './upstream.js';

export interface AdminContext {
  readonly stack: Stack;
  keys(): KeyTable;
  readonly upstreams: { readonly openai?: Upstream | undefined; readonly anthropic?: Upstream | undefined };
  readonly fetches: ScopedFetches;
  gatewayStats(): Record<string, unknown>;
  reload(): Promise<{ keys: number; notes: string[] }>;
}

/** A request as the admin API takes it: what a caller would send, and whose it is. */
interface RequestSpec {
  path?: string;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
  /** Key id from the config (its tenant, namespace and, for pass-through upstreams, its own scope). */
  key?: string;
  tenant?: string;
  namespace?: string;
}

interface Who {
  key?: string;
  tenant?: string;
  namespace?: string;
}

const bad = (message: string, field?: string) => new GatewayError(400, 'invalid_request_error', message, field ? { field } : {});

export function registerAdminRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/admin/stats', async () => {
    const { cache, l2, l3 } = ctx.stack;
    return {
      cache: cache.stats(),
      layers: {
        ...(l2 ? { l2: l2.stats() } : {}),
        ...(l3 ? { l3: l3.stats() } : {}),
      },
      uncached: {
        ...(ctx.upstreams.openai ? { openai: ctx.fetches.uncached('openai') } : {}),
        ...(ctx.upstreams.anthropic ? { anthropic: ctx.fetches.uncached('anthropic') } : {}),
      },
      gateway: ctx.gatewayStats(),
    };
  });

  app.get('/admin/keys', async () => ({
    keys: ctx.keys().keys.map((k) => ({ id: k.id, tenant: k.tenant, namespace: k.namespace ?? 'default', revoked: k.revoked })),
  }));

  app.post('/admin/reload', async () => ctx.reload());

  app.post('/admin/explain', async (req) => {
    const b = object(req.body, 'body');
    const a = requestSpec(b['a'], 'a');
    const c = requestSpec(b['b'], 'b');
    const [da, db] = await Promise.all([describe(ctx, a), describe(ctx, c)]);
    const out: Record<string, unknown> = { a: summary(ctx, da), b: summary(ctx, db) };
    if (!da.description.cached || !db.description.cached) {
      return { ...out, sameKey: false, note: 'a request the gateway does not cache has no key' };
    }
    const explanation = explainKeyDifference(da.description.keyRequest, db.description.keyRequest, {
      profile: da.description.options.profile!,
      ...(da.description.options.scope !== undefined ? { scopeA: da.description.options.scope } : {}),
      ...(db.description.options.scope !== undefined ? { scopeB: db.description.options.scope } : {}),
    });
    const sameProfile = da.description.options.profile?.id === db.description.options.profile?.id;
    return {
      ...out,
      ...explanation,
      sameKey: explanation.sameKey && sameProfile,
      ...(sameProfile ? {} : { profiles: { a: da.description.options.profile?.id, b: db.description.options.profile?.id } }),
    };
  });

  app.post('/admin/inspect', async (req) => {
    const spec = requestSpec(req.body, 'body');
    const withValue = (req.query as Record<string, string>)['value'] === '1';
    const d = await describe(ctx, spec);
    if (!d.description.cached) return { cached: false, ...(d.description.reason ? { reason: d.description.reason } : {}) };
    const key = ctx.stack.cache.keyFor(d.description.keyRequest, { scope: d.description.options.scope, profile: d.description.options.profile });
    const layers: Record<string, unknown> = {};
    const instances = ctx.stack.cache.layerInstances;
    const names = ctx.stack.cache.layerNames;
    await Promise.all(
      instances.map(async (layer, i) => {
        const name = names[i] ?? layer.name;
        try {
          const entry = await withDeadline(Promise.resolve(layer.get(key)), 2000);
          layers[name] = entry ? describeEntry(entry, withValue) : { present: false };
        } catch (error) {
          layers[name] = { error: (error as Error).message };
        }
      }),
    );
    return { cached: true, key: key.id, scope: key.scope, stream: d.description.stream, layers };
  });

  app.post('/admin/purge', async (req) => {
    const b = object(req.body ?? {}, 'body');
    const who = whoOf(b);
    const tag = optionalString(b['tag'], 'tag');
    const prompt = optionalString(b['prompt'], 'prompt');
    const maxPurged = b['maxPurged'] === undefined ? undefined : positiveInt(b['maxPurged'], 'maxPurged');
    const request = b['request'] === undefined ? undefined : requestSpec(b['request'], 'request');
    const chosen = [tag, prompt, request].filter((x) => x !== undefined).length;
    if (chosen > 1) throw bad('purge takes one of "tag", "prompt" and "request"');
    const { engine } = ctx.stack;
    const scopes = who.tenant !== undefined || who.key !== undefined ? scopesOf(ctx, who) : undefined;
    const audits: InvalidationAudit[] = [];
    if (request) {
      const d = await describe(ctx, { ...request, ...who });
      if (!d.description.cached) throw bad(`that request is not cached by the gateway${d.description.reason ? ` (${d.description.reason})` : ''}`, 'request');
      audits.push(
        await engine.purgeKey(d.description.keyRequest, {
          scope: d.description.options.scope!,
          profile: d.description.options.profile!,
          reason: 'admin purge',
        }),
      );
    } else if (tag !== undefined) {
      if (scopes) for (const scope of scopes) audits.push(await engine.purgeTag(tag, { scope, reason: 'admin purge' }));
      else audits.push(await engine.purgeTag(tag, { reason: 'admin purge' }));
    } else if (prompt !== undefined) {
      const reports = [];
      for (const scope of scopes ?? [undefined]) {
        reports.push(await engine.purgeByPrompt(prompt, { ...(scope ? { scope } : {}), ...(maxPurged ? { maxPurged } : {}) }));
      }
      return { kind: 'prompt', pattern: prompt, reports };
    } else {
      if (!scopes) throw bad('say what to purge: "tag", "prompt", "request", or a whole "tenant" / "key"');
      for (const scope of scopes) audits.push(await engine.purgeScope(scope, { mode: 'clear', reason: 'admin purge' }));
    }
    return {
      kind: request ? 'request' : tag !== undefined ? 'tag' : 'scope',
      removed: sumLayers(audits),
      total: audits.reduce((n, a) => n + a.total, 0),
      scopes: scopes ?? 'all',
    };
  });

  app.post('/admin/bump', async (req) => {
    const who = whoOf(object(req.body ?? {}, 'body'));
    if (who.tenant === undefined && who.key === undefined) throw bad('bump needs a "tenant" (or a "key")', 'tenant');
    const bumped = [];
    for (const scope of scopesOf(ctx, who)) {
      const { version } = await ctx.stack.engine.bumpVersion(scope, 'admin bump');
      const kept = await ctx.stack.versions.save(scope, version);
      bumped.push({ tenant: scope.tenant, namespace: scope.namespace, version, persisted: kept });
    }
    return { bumped };
  });

  app.post('/admin/events/:name', async (req) => {
    const name = (req.params as { name: string }).name;
    const data = req.body === undefined ? {} : object(req.body, 'body');
    const audit = await ctx.stack.engine.applyEvent(name, data);
    return { event: name, removed: audit.layers, total: audit.total };
  });
}

function object(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${field} must be a JSON object`, field);
  return v as Record<string, unknown>;
}

function optionalString(v: unknown, field: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw bad(`${field} must be a non-empty string`, field);
  return v;
}

function positiveInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw bad(`${field} must be a positive integer`, field);
  return v;
}

function whoOf(b: Record<string, unknown>): Who {
  const who: Who = {};
  const key = optionalString(b['key'], 'key');
  const tenant = optionalString(b['tenant'], 'tenant');
  const namespace = optionalString(b['namespace'], 'namespace');
  if (key !== undefined) who.key = key;
  if (tenant !== undefined) who.tenant = tenant;
  if (namespace !== undefined) who.namespace = namespace;
  if (who.key !== undefined && who.tenant !== undefined) throw bad('give "key" or "tenant", not both');
  if (who.namespace !== undefined && who.tenant === undefined) throw bad('"namespace" needs "tenant"', 'namespace');
  return who;
}

function requestSpec(v: unknown, field: string): RequestSpec {
  const o = object(v, field);
  // A bare body is accepted too: `strata explain a.json b.json` with two request bodies.
  const wrapped = 'body' in o && typeof o['body'] === 'object';
  const spec: RequestSpec = wrapped ? { ...(o as unknown as RequestSpec) } : { body: o };
  spec.body = object(spec.body, `${field}.body`);
  if (spec.path !== undefined && !CACHED_ROUTES.some((r) => r.path === spec.path))
    throw bad(`${field}.path must be one of ${CACHED_ROUTES.map((r) => r.path).join(', ')}`, `${field}.path`);
  if (spec.headers !== undefined) object(spec.headers, `${field}.headers`);
  return spec;
}

/** Describes a request through the route's caching fetch, in the scope it would have. */
async function describe(ctx: AdminContext, spec: RequestSpec): Promise<{ description: RequestDescription; route: string }> {
  const route = CACHED_ROUTES.find((r) => r.path === (spec.path ?? '/v1/chat/completions'))!;
  const upstream = ctx.upstreams[route.upstream];
  if (!upstream) throw bad(`${route.path} is not served: no "${route.upstream}" upstream`, 'path');
  const who: Who = {
    ...(spec.key !== undefined ? { key: spec.key } : {}),
    ...(spec.tenant !== undefined ? { tenant: spec.tenant } : {}),
    ...(spec.namespace !== undefined ? { namespace: spec.namespace } : {}),
  };
  const scope = oneScope(ctx, who, upstream);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [k, v] of Object.entries(spec.headers ?? {})) {
    const name = k.toLowerCase();
    if (name === 'authorization' || name === 'x-api-key' || name === 'api-key') continue;
    headers[name] = String(v);
  }
  // Control headers in the caller's form are not interpreted here: only what shapes the key is.
  for (const name of Object.keys(headers)) if (name.startsWith('x-strata-')) delete headers[name];
  const description = await describeRequest(ctx.fetches.get(route.upstream, scope), upstream.baseUrl + route.suffix, {
    method: 'POST',
    headers,
    body: JSON.stringify(spec.body),
  });
  return { description, route: route.path };
}

function summary(ctx: AdminContext, d: { description: RequestDescription; route: string }): Record<string, unknown> {
  if (!d.description.cached) return { route: d.route, cached: false, ...(d.description.reason ? { reason: d.description.reason } : {}) };
  const key = ctx.stack.cache.keyFor(d.description.keyRequest, { scope: d.description.options.scope, profile: d.description.options.profile });
  return { route: d.route, cached: true, key: key.id };
}

/** The one scope a request of `who` has on `upstream`. */
function oneScope(ctx: AdminContext, who: Who, upstream: Upstream): Pick<Scope, 'tenant' | 'namespace'> {
  if (who.key !== undefined) {
    const k = ctx.keys().byId(who.key) ?? missingKey(ctx.keys(), who.key);
    return scopeOf({ tenant: k.tenant, namespace: k.namespace ?? 'default', keyHash: k.hash.slice('sha256:'.length) }, upstream.passthrough);
  }
  if (who.tenant === undefined) throw bad('say whose request it is: "key" (a key id) or "tenant"', 'tenant');
  if (upstream.passthrough)
    throw bad(`the ${upstream.name} upstream passes callers' keys through, so each key has its own entries: give "key" instead of "tenant"`, 'key');
  return { tenant: who.tenant, namespace: who.namespace ?? 'default' };
}

/**
 * Every scope of a tenant (or of one key): its keys' namespaces, and for pass-through upstreams
 * each key's own namespace. A tenant named without keys in the table still has its default scope.
 */
function scopesOf(ctx: AdminContext, who: Who): Array<Pick<Scope, 'tenant' | 'namespace'>> {
  const table = ctx.keys();
  const keys =
    who.key !== undefined
      ? [table.byId(who.key) ?? missingKey(table, who.key)]
      : table.keys.filter((k) => k.tenant === who.tenant && (who.namespace === undefined || (k.namespace ?? 'default') === who.namespace));
  const upstreams = [ctx.upstreams.openai, ctx.upstreams.anthropic].filter((u): u is Upstream => u !== undefined);
  const out = new Map<string, Pick<Scope, 'tenant' | 'namespace'>>();
  if (who.key === undefined) out.set(`${who.tenant}\u0000${who.namespace ?? 'default'}`, { tenant: who.tenant!, namespace: who.namespace ?? 'default' });
  for (const k of keys) {
    for (const u of upstreams) {
      const s = scopeOf({ tenant: k.tenant, namespace: k.namespace ?? 'default', keyHash: k.hash.slice('sha256:'.length) }, u.passthrough);
      out.set(`${s.tenant}\u0000${s.namespace}`, s);
    }
  }
  return [...out.values()];
}

function missingKey(table: KeyTable, id: string): never {
  // A key pasted where its id belongs is a credential: never echoed back.
  const r = table.authenticate({ 'x-api-key': id });
  if (r.ok || r.reason === 'revoked') throw bad('"key" takes a key id from the config (see `strata keys`), not the key itself', 'key');
  // Nor is anything else given there: a mistyped key or an upstream key pasted by mistake is a credential too.
  throw bad('no key with this id in the config (see `strata keys`)', 'key');
}

function describeEntry(entry: CacheEntry, withValue: boolean): Record<string, unknown> {
  const now = Date.now();
  return {
    present: true,
    expired: isExpired(entry, now),
    createdAt: new Date(entry.createdAt).toISOString(),
    ageMs: now - entry.createdAt,
    ttlMs: entry.ttlMs ?? null,
    tags: entry.tags,
    ...(entry.model ? { model: entry.model } : {}),
    ...(entry.usage ? { usage: entry.usage } : {}),
    ...(entry.chunks ? { events: entry.chunks.length } : {}),
    ...(entry.semantic ? { semanticText: entry.semantic.text } : {}),
    bytes: Buffer.byteLength(JSON.stringify(entry.value) ?? ''),
    ...(withValue ? { value: entry.value } : {}),
  };
}

function sumLayers(audits: readonly InvalidationAudit[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of audits) for (const [layer, n] of Object.entries(a.layers)) out[layer] = (out[layer] ?? 0) + n;
  return out;
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}
