import type { RequestProfile, SemanticSplit } from '@strata-cache/core';
import type { CachingFetchConfig } from './call.js';
import type { EndpointSpec } from './types.js';

const sharedProfiles = new WeakMap<EndpointSpec, { readonly profile: RequestProfile; readonly twin: RequestProfile }>();

/**
 * The profile requests to `spec` are cached under: the endpoint's own, except that where a
 * stream request's answer and its non-stream form's stand for each other (`streamFormsShared`),
 * the stream request's semantic context is the non-stream form's — the wire form
 * (`strata_http.mode`, `streamOptions`) is left out of the semantic partition, never out of the
 * exact key. The profile id is unchanged.
 */
export function cachedProfile(config: CachingFetchConfig, spec: EndpointSpec): RequestProfile {
  return (rebuildsStreams(config) && profilesOf(spec)?.profile) || spec.profile;
}

/** Whether stream requests of this caching fetch may be answered from stored non-stream answers (`replay.rebuildStreams`). */
export function rebuildsStreams(config: CachingFetchConfig): boolean {
  return config.pacing.rebuildStreams !== false;
}

/**
 * The profile a stream's non-stream twin is stored under (see the stream path): where the two
 * forms share semantic entries, the stream's own entry is already there, so the twin is stored
 * for exact lookups only (no second entry of the same question in the partition).
 */
export function twinProfile(config: CachingFetchConfig, spec: EndpointSpec): RequestProfile {
  return (rebuildsStreams(config) && profilesOf(spec)?.twin) || spec.profile;
}

function profilesOf(spec: EndpointSpec): { readonly profile: RequestProfile; readonly twin: RequestProfile } | undefined {
  if (spec.streamFormsShared === undefined || spec.eventsFromBody === undefined || spec.profile.semanticSplit === undefined) return undefined;
  let profiles = sharedProfiles.get(spec);
  if (profiles === undefined) {
    const { semanticSplit: _, ...exactOnly } = spec.profile;
    sharedProfiles.set(spec, (profiles = { profile: withSharedStreamForms(spec), twin: Object.freeze(exactOnly) }));
  }
  return profiles;
}

function withSharedStreamForms(spec: EndpointSpec): RequestProfile {
  const base = spec.profile;
  const split = base.semanticSplit!.bind(base);
  const shared = spec.streamFormsShared!.bind(spec);
  return Object.freeze({
    ...base,
    semanticSplit(request: unknown): SemanticSplit | undefined {
      const s = split(request);
      if (s === undefined || typeof s.context !== 'object' || s.context === null) return s;
      const context = s.context as Record<string, unknown>;
      const http = context['strata_http'] as Record<string, unknown> | undefined;
      if (http?.['mode'] !== 'sse' || !shared(request as Record<string, unknown>)) return s;
      const { streamOptions: _, ...form } = http;
      return { text: s.text, context: { ...context, strata_http: { ...form, mode: 'json' } } };
    },
  });
}
