// The gateway's request metrics on /metrics: counts by route, status and cache outcome, the
// duration histogram by route and outcome (cumulative buckets that end at the count), the opt-in
// tenant label, and the series limit.
import { afterEach, describe, expect, it } from 'vitest';
import { REQUEST_DURATION_BUCKETS, RequestMetrics } from '../src/metrics.js';
import { type Harness, KEYS, chat, harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Sample lines of one metric: labels (without the scope label) → value. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = m[2]!
      .split(/,(?=\w+=")/)
      .filter((l) => !l.startsWith('otel_scope_name='))
      .join(',');
    out.set(labels, Number(m[3]));
  }
  return out;
}

async function metricsText(h: Harness): Promise<string> {
  const r = await fetch(h.gw.url + '/metrics');
  expect(r.status).toBe(200);
  return r.text();
}

describe('request metrics', () => {
  it('count requests by route, status and outcome, and their durations by route and outcome', async () => {
    h = await harness();
    const body = chat('metrics');
    expect((await h.post('/v1/chat/completions', body)).headers.get('x-strata-cache')).toBe('miss');
    for (let i = 0; i < 3; i++) expect((await h.post('/v1/chat/completions', body)).headers.get('x-strata-cache')).toBe('hit');
    expect((await h.post('/v1/chat/completions', body, 'sgw_not-a-key')).status).toBe(401);
    const text = await metricsText(h);

    expect(text).toContain(
      '# HELP strata_gateway_requests_total Requests answered, by route, HTTP status and cache outcome (hit, semantic, miss, bypass, error)\n# TYPE strata_gateway_requests_total counter\n',
    );
    expect(text).toContain(
      '# HELP strata_gateway_request_duration Time from request to response headers, by route and cache outcome\n# UNIT strata_gateway_request_duration s\n# TYPE strata_gateway_request_duration histogram\n',
    );
    expect(text).toContain('strata_gateway_requests_total{route="chat.completions",status="200",cache="hit",otel_scope_name="@strata-cache/gateway"} 3\n');
    const requests = samples(text, 'strata_gateway_requests_total');
    expect(requests.get('route="chat.completions",status="200",cache="miss"')).toBe(1);
    expect(requests.get('route="chat.completions",status="200",cache="hit"')).toBe(3);
    expect(requests.get('route="chat.completions",status="401",cache="error"')).toBe(1);
    expect([...requests.keys()].some((k) => k.includes('tenant='))).toBe(false);
    // The cache's own lookup durations: one per lookup (the 401 never reached the cache).
    const lookups = samples(text, 'strata_cache_lookup_duration_count');
    expect(lookups.get('result="miss"')).toBe(1);
    expect(lookups.get('result="hit",layer="l1",match="exact"')).toBe(3);

    const counts = samples(text, 'strata_gateway_request_duration_count');
    const sums = samples(text, 'strata_gateway_request_duration_sum');
    const buckets = samples(text, 'strata_gateway_request_duration_bucket');
    expect(counts.get('route="chat.completions",cache="hit"')).toBe(3);
    expect(counts.get('route="chat.completions",cache="miss"')).toBe(1);
    expect(counts.get('route="chat.completions",cache="error"')).toBe(1);
    const hitSum = sums.get('route="chat.completions",cache="hit"')!;
    expect(hitSum).toBeGreaterThan(0);
    expect(hitSum).toBeLessThan(30);
    // Cumulative buckets, one per boundary and +Inf, never decreasing, ending at the count.
    const le = [...REQUEST_DURATION_BUCKETS.map(String), '+Inf'];
    const hits = le.map((b) => buckets.get(`route="chat.completions",cache="hit",le="${b}"`));
    expect(hits.every((n) => typeof n === 'number')).toBe(true);
    for (let i = 1; i < hits.length; i++) expect(hits[i]!).toBeGreaterThanOrEqual(hits[i - 1]!);
    expect(hits.at(-1)).toBe(3);

    // Cumulative: a second scrape after one more hit counts on from the first.
    await h.post('/v1/chat/completions', body);
    const again = await metricsText(h);
    expect(samples(again, 'strata_gateway_requests_total').get('route="chat.completions",status="200",cache="hit"')).toBe(4);
    expect(samples(again, 'strata_gateway_request_duration_count').get('route="chat.completions",cache="hit"')).toBe(4);
    expect(samples(again, 'strata_gateway_request_duration_sum').get('route="chat.completions",cache="hit"')!).toBeGreaterThan(hitSum);
  });

  it('carry a tenant label only when the config asks for it', async () => {
    h = await harness({ metrics: { tenantLabel: true } });
    await h.post('/v1/chat/completions', chat('tenant label'), KEYS.acme);
    await h.post('/v1/chat/completions', chat('tenant label'), KEYS.globex);
    const text = await metricsText(h);
    const requests = samples(text, 'strata_gateway_requests_total');
    expect(requests.get('route="chat.completions",status="200",cache="miss",tenant="acme"')).toBe(1);
    expect(requests.get('route="chat.completions",status="200",cache="miss",tenant="globex"')).toBe(1);
    const counts = samples(text, 'strata_gateway_request_duration_count');
    expect(counts.get('route="chat.completions",cache="miss",tenant="acme"')).toBe(1);
  });
});

describe('RequestMetrics', () => {
  it('puts values in the bucket whose upper bound they do not exceed, and drops durations that are not numbers', async () => {
    const m = new RequestMetrics(false);
    for (const seconds of [0.0005, 0.0006, 60, 61, Number.NaN, -1]) m.record({ route: 'r', status: 200, cache: 'hit', seconds });
    const { resourceMetrics } = await m.collect();
    const [requests, duration] = resourceMetrics.scopeMetrics[0]!.metrics;
    expect(requests!.dataPoints[0]!.value).toBe(6);
    const v = duration!.dataPoints[0]!.value as { buckets: { counts: number[] }; count: number; sum: number; min: number; max: number };
    expect(v.count).toBe(4);
    expect(v.buckets.counts[0]).toBe(1); // 0.0005 <= 0.0005
    expect(v.buckets.counts[1]).toBe(1); // 0.0006 <= 0.001
    expect(v.buckets.counts[REQUEST_DURATION_BUCKETS.length - 1]).toBe(1); // 60 <= 60
    expect(v.buckets.counts[REQUEST_DURATION_BUCKETS.length]).toBe(1); // 61: above every bound
    expect(v.sum).toBeCloseTo(121.0011, 6);
    expect(v.min).toBe(0.0005);
    expect(v.max).toBe(61);
  });

  it('records an infinite duration in the +Inf bucket, as the SDK does', async () => {
    const m = new RequestMetrics(false);
    m.record({ route: 'r', status: 200, cache: 'hit', seconds: Number.POSITIVE_INFINITY });
    const { resourceMetrics } = await m.collect();
    const v = resourceMetrics.scopeMetrics[0]!.metrics[1]!.dataPoints[0]!.value as { buckets: { counts: number[] }; count: number };
    expect(v.count).toBe(1);
    expect(v.buckets.counts.at(-1)).toBe(1);
  });

  it('keeps 2,000 series per metric, as the SDK: 1,999 label sets and one overflow series for the rest', async () => {
    const m = new RequestMetrics(true);
    for (let i = 0; i < 2100; i++) m.record({ route: 'r', status: 200, cache: 'hit', seconds: 0.001, tenant: `t${i}` });
    const { resourceMetrics } = await m.collect();
    const [requests, duration] = resourceMetrics.scopeMetrics[0]!.metrics;
    expect(requests!.dataPoints).toHaveLength(2000);
    expect(duration!.dataPoints).toHaveLength(2000);
    const overflow = requests!.dataPoints.find((p) => p.attributes['otel.metric.overflow'] === true);
    expect(overflow?.value).toBe(101);
    const durationOverflow = duration!.dataPoints.find((p) => p.attributes['otel.metric.overflow'] === true);
    expect(durationOverflow).toBeDefined();
    expect((durationOverflow!.value as { count: number }).count).toBe(101);
    const total = requests!.dataPoints.reduce((n, p) => n + (p.value as number), 0);
    expect(total).toBe(2100);
  });
});

describe('histograms made through RequestMetrics.meter', () => {
  it('aggregate as the SDK histogram does: same buckets, counts, sum, min and max per label set', async () => {
    const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics');
    class Reader extends MetricReader {
      protected async onShutdown(): Promise<void> {}
      protected async onForceFlush(): Promise<void> {}
    }
    const reader = new Reader();
    const provider = new MeterProvider({ readers: [reader] });
    const sdkMeter = provider.getMeter('t');
    const m = new RequestMetrics(false);
    const options = { description: 'd', unit: 's', advice: { explicitBucketBoundaries: [0.001, 0.01, 0.1] } };
    const sdk = sdkMeter.createHistogram('h', options);
    const fast = m.meter(sdkMeter).createHistogram('h', options);
    const frozen = Object.freeze({ result: 'hit', layer: 'l1' });
    const values = [0, 0.001, 0.0011, 0.05, 0.1, 7, Number.POSITIVE_INFINITY, -1, Number.NaN];
    for (const v of values) {
      for (const attrs of [frozen, { layer: 'l1', result: 'hit' }, { result: 'miss' }, undefined]) {
        sdk.record(v, attrs);
        fast.record(v, attrs);
      }
    }
    // A frozen object found by identity keeps its labels; a mutable one may change between records.
    const mutable: Record<string, string> = { result: 'miss' };
    fast.record(0.002, mutable);
    sdk.record(0.002, mutable);
    mutable['result'] = 'hit';
    mutable['layer'] = 'l1';
    fast.record(0.003, mutable);
    sdk.record(0.003, mutable);

    type Point = { attributes: Record<string, unknown>; value: unknown };
    const norm = (points: Point[]) =>
      points
        .map((p) => ({ attributes: JSON.stringify(Object.entries(p.attributes).sort()), value: p.value }))
        .sort((a, b) => (a.attributes < b.attributes ? -1 : 1));
    const fromSdk = (await reader.collect()).resourceMetrics.scopeMetrics[0]!.metrics[0]!;
    const fromFast = (await m.collect()).resourceMetrics.scopeMetrics[0]!.metrics.find((x) => x.descriptor.name === 'h')!;
    expect(fromFast.descriptor).toMatchObject({ name: 'h', description: 'd', unit: 's' });
    expect(fromFast.dataPoints).toHaveLength(3);
    expect(norm(fromFast.dataPoints as Point[])).toEqual(norm(fromSdk.dataPoints as Point[]));
    await provider.shutdown();
  });
});
