// Where an endpoint says a stream request's answer and its non-stream form's stand for each other
// (`streamFormsShared` with `eventsFromBody`), the two share a semantic partition; exact keys never.
import { computeSemantic } from '@strata-cache/core';
import { memoryCache } from '@strata-cache/provider-test-servers';
import { describe, expect, it } from 'vitest';
import { type CachingOptions, type EndpointSpec, type FetchLike, createProviderFetch, describeRequest } from '../src/index.js';
import { chatEndpoint, testSpec } from './spec.js';

const URL_ = 'http://provider.test/v1/chat/completions';
const shared: EndpointSpec = {
  ...chatEndpoint(),
  eventsFromBody: () => [{ data: '[DONE]', t: 0 }],
  streamFormsShared: (request) => (request['stream_options'] as { include_usage?: boolean } | undefined)?.include_usage === true,
};

async function partitionAndKey(spec: EndpointSpec, extra: Record<string, unknown>, options: Partial<CachingOptions> = {}) {
  const { cache } = memoryCache();
  const fetch = createProviderFetch({ cache, ...options }, testSpec(spec), (() => Promise.reject(new Error('no upstream'))) as FetchLike);
  const body = { model: 'm', temperature: 0, messages: [{ role: 'user', content: 'Where is my order?' }], ...extra };
  const d = await describeRequest(fetch, URL_, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!d.cached) throw new Error('not cached');
  const scope = cache.resolveScope(d.options.scope);
  return {
    partition: computeSemantic(d.keyRequest, scope, d.options.profile)?.partition,
    key: cache.keyFor(d.keyRequest, { scope: d.options.scope, profile: d.options.profile }).hash,
  };
}

describe('stream and non-stream forms', () => {
  it('share a semantic partition where the endpoint says so for the request; exact keys stay apart', async () => {
    const json = await partitionAndKey(shared, {});
    const withUsage = await partitionAndKey(shared, { stream: true, stream_options: { include_usage: true } });
    const without = await partitionAndKey(shared, { stream: true });
    expect(json.partition).toBeDefined();
    expect(withUsage.partition).toBe(json.partition);
    expect(withUsage.key).not.toBe(json.key);
    expect(without.partition).not.toBe(json.partition);
    // Another question's context stays apart from both.
    const other = await partitionAndKey(shared, { stream: true, stream_options: { include_usage: true }, temperature: 1 });
    expect(other.partition).not.toBe(json.partition);
  });

  it('stay apart with replay.rebuildStreams: false, and for an endpoint that cannot rebuild a stream', async () => {
    const json = await partitionAndKey(shared, {}, { replay: { rebuildStreams: false } });
    const stream = await partitionAndKey(shared, { stream: true, stream_options: { include_usage: true } }, { replay: { rebuildStreams: false } });
    expect(stream.partition).not.toBe(json.partition);
    const { eventsFromBody: _, ...noRebuild } = shared;
    const a = await partitionAndKey(noRebuild, {});
    const b = await partitionAndKey(noRebuild, { stream: true, stream_options: { include_usage: true } });
    expect(b.partition).not.toBe(a.partition);
  });
});
