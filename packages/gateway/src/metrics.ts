// Prometheus metrics: the cache's own (hits, misses, layers, errors, savings — @strata-cache/otel)
// plus the gateway's requests, on one OpenTelemetry MeterProvider whose reader is the Prometheus
// exporter. Labels carry route names, statuses, cache outcomes and (opt-in) tenant ids from the
// config — never a key, a prompt or an error message.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Attributes, type Counter, type Histogram, type HrTime, type Meter, type MetricOptions, type UpDownCounter, ValueType } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type HistogramMetricData,
  MeterProvider,
  type MetricProducer,
  type ResourceMetrics,
  type SumMetricData,
} from '@opentelemetry/sdk-metrics';
import type { MultiLayerCache } from '@strata-cache/core';
import { type Instrumentation, instrument } from '@strata-cache/otel';

export interface RequestSample {
  readonly route: string;
  readonly status: number;
  readonly cache: string;
  readonly seconds: number;
  readonly tenant?: string | undefined;
}

const SCOPE = '@strata-cache/gateway';
/** Bucket boundaries of the request-duration histogram, in seconds. */
export const REQUEST_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);
/**
 * Series per metric, as the OpenTelemetry SDK's default cardinality limit: 1,999 label sets, and
 * one overflow series that counts every further one.
 */
const MAX_SERIES = 2000;
const OVERFLOW: Attributes = Object.freeze({ 'otel.metric.overflow': true });

interface CountSeries {
  readonly attributes: Attributes;
  readonly start: HrTime;
  value: number;
}

interface HistogramSeries {
  readonly attributes: Attributes;
  readonly start: HrTime;
  readonly counts: number[];
  count: number;
  sum: number;
  min: number;
  max: number;
}

/** Upper bounds of a histogram created without bucket advice: the SDK's default. */
const SDK_DEFAULT_BUCKETS: readonly number[] = Object.freeze([0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]);

/**
 * One histogram's series, aggregated as the SDK's explicit-bucket histogram does (cumulative,
 * upper bounds inclusive, at most `MAX_SERIES` series with the SDK's overflow series past that),
 * found by a string the caller makes of its labels.
 */
class HistogramData {
  private readonly series = new Map<string, HistogramSeries>();

  constructor(
    private readonly descriptor: HistogramMetricData['descriptor'],
    private readonly boundaries: readonly number[],
  ) {}

  /** The series of a label set, or undefined before it was made. */
  get(key: string): HistogramSeries | undefined {
    return this.series.get(key);
  }

  /** Makes the series of a label set (at its first value). */
  make(key: string, attributes: Attributes): HistogramSeries {
    return seriesIn(this.series, key, () => ({
      attributes,
      start: now(),
      counts: new Array<number>(this.boundaries.length + 1).fill(0),
      count: 0,
      sum: 0,
      min: Infinity,
      max: -Infinity,
    }));
  }

  /** Adds a value; NaN and negative values are dropped, as the SDK's histogram drops them (Infinity goes to +Inf). */
  add(h: HistogramSeries, v: number): void {
    if (!(v >= 0)) return;
    const bounds = this.boundaries;
    let i = 0;
    while (i < bounds.length && v > bounds[i]!) i++;
    h.counts[i]!++;
    h.count++;
    h.sum += v;
    if (v < h.min) h.min = v;
    if (v > h.max) h.max = v;
  }

  metric(end: HrTime): HistogramMetricData {
    return {
      descriptor: this.descriptor,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: [...this.series.values()].map((h) => ({
        attributes: h.attributes,
        startTime: h.start,
        endTime: end,
        value: { buckets: { boundaries: [...this.boundaries], counts: [...h.counts] }, count: h.count, sum: h.sum, min: h.min, max: h.max },
      })),
    };
  }
}

/** Attribute objects a histogram remembers by identity (beyond that, each is found by its labels). */
const MAX_REMEMBERED_ATTRIBUTES = 4096;

/**
 * A histogram instrument whose series are found by the attribute object itself when it is
 * frozen and seen before: `instrument()` of @strata-cache/otel records every lookup with one of
 * a few frozen attribute objects, and the SDK's instrument would sort and serialise their labels
 * on every record. Other attribute objects are found by their labels, as the SDK finds them.
 */
class FastHistogram implements Histogram {
  private readonly byObject = new Map<Attributes, HistogramSeries>();

  constructor(
    private readonly data: HistogramData,
    private readonly integers: boolean,
  ) {}

  record(value: number, attributes: Attributes = {}): void {
    if (typeof value !== 'number') return;
    if (this.integers) value = Math.trunc(value); // as the SDK's INT instruments
    let h = this.byObject.get(attributes);
    if (h === undefined) {
      const own = Object.freeze({ ...attributes });
      const key = labelsKey(own);
      h = this.data.get(key) ?? this.data.make(key, own);
      if (Object.isFrozen(attributes) && this.byObject.size < MAX_REMEMBERED_ATTRIBUTES) this.byObject.set(attributes, h);
    }
    this.data.add(h, value);
  }
}

/** A label set as a string: its entries sorted by name (the order the attributes were written in does not matter). */
function labelsKey(a: Attributes): string {
  return JSON.stringify(Object.entries(a).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
}

/**
 * The gateway's request counter and duration histogram, aggregated here and handed to the
 * exporter when it collects, as OpenTelemetry data points (the same series, names and text as
 * the SDK's instruments). Every request records both, and an SDK instrument re-derives its series
 * from the attribute object on each call (sorting and serialising the labels); here a request
 * finds its series by one string and adds to a few numbers. Histograms made through `meter()`
 * (the cache's lookup durations) are aggregated here too.
 */
export class RequestMetrics implements MetricProducer {
  private readonly counts = new Map<string, CountSeries>();
  private readonly durations = new HistogramData(
    {
      name: 'strata.gateway.request.duration',
      description: 'Time from request to response headers, by route and cache outcome',
      unit: 's',
      valueType: ValueType.DOUBLE,
    },
    REQUEST_DURATION_BUCKETS,
  );
  private readonly histograms: HistogramData[] = [];

  constructor(private readonly tenantLabel: boolean) {}

  record(s: RequestSample): void {
    const tenant = this.tenantLabel ? s.tenant : undefined;
    const base = tenant === undefined ? `${s.route}\u0000${s.cache}` : `${s.route}\u0000${s.cache}\u0000${tenant}`;
    const ck = `${s.status}\u0000${base}`;
    let c = this.counts.get(ck);
    if (c === undefined) {
      c = seriesIn(this.counts, ck, () => ({ attributes: labels(s.route, s.status, s.cache, tenant), start: now(), value: 0 }));
    }
    c.value++;
    if (!(s.seconds >= 0)) return; // not a duration: no series is made for it
    const h = this.durations.get(base) ?? this.durations.make(base, labels(s.route, undefined, s.cache, tenant));
    this.durations.add(h, s.seconds);
  }

  /**
   * `meter` with its histograms aggregated here (see `FastHistogram`); every other instrument is
   * the meter's own.
   */
  meter(meter: Meter): Meter {
    return {
      createHistogram: (name: string, options?: MetricOptions) => this.histogram(name, options),
      createGauge: (name, options) => meter.createGauge(name, options),
      createCounter: (name, options) => meter.createCounter(name, options),
      createUpDownCounter: (name, options) => meter.createUpDownCounter(name, options),
      createObservableGauge: (name, options) => meter.createObservableGauge(name, options),
      createObservableCounter: (name, options) => meter.createObservableCounter(name, options),
      createObservableUpDownCounter: (name, options) => meter.createObservableUpDownCounter(name, options),
      addBatchObservableCallback: (callback, observables) => meter.addBatchObservableCallback(callback, observables),
      removeBatchObservableCallback: (callback, observables) => meter.removeBatchObservableCallback(callback, observables),
    };
  }

  private histogram(name: string, options: MetricOptions = {}): Histogram {
    const valueType = options.valueType ?? ValueType.DOUBLE;
    const data = new HistogramData(
      { name, description: options.description ?? '', unit: options.unit ?? '', valueType },
      Object.freeze([...(options.advice?.explicitBucketBoundaries ?? SDK_DEFAULT_BUCKETS)]),
    );
    this.histograms.push(data);
    return new FastHistogram(data, valueType === ValueType.INT);
  }

  async collect(): Promise<CollectionResult> {
    const end = now();
    const requests: SumMetricData = {
      descriptor: {
        name: 'strata.gateway.requests',
        description: 'Requests answered, by route, HTTP status and cache outcome (hit, semantic, miss, bypass, error)',
        unit: '',
        valueType: ValueType.INT,
      },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints: [...this.counts.values()].map((c) => ({ attributes: c.attributes, startTime: c.start, endTime: end, value: c.value })),
    };
    const metrics = [requests, this.durations.metric(end), ...this.histograms.map((h) => h.metric(end))].filter((m) => m.dataPoints.length > 0);
    return {
      // The reader keeps its own resource and takes only the scope metrics of a producer.
      resourceMetrics: { resource: undefined, scopeMetrics: metrics.length ? [{ scope: { name: SCOPE }, metrics }] : [] } as unknown as ResourceMetrics,
      errors: [],
    };
  }
}

/** The series of `key` in `map`, made by `make`; past the limit, one series with the SDK's overflow label takes every new label set. */
function seriesIn<T extends { attributes: Attributes }>(map: Map<string, T>, key: string, make: () => T): T {
  if (map.size < MAX_SERIES - 1) {
    const made = make();
    map.set(key, made);
    return made;
  }
  let overflow = map.get('\u0000overflow');
  if (overflow === undefined) {
    overflow = { ...make(), attributes: OVERFLOW };
    map.set('\u0000overflow', overflow);
  }
  return overflow;
}

function labels(route: string, status: number | undefined, cache: string, tenant: string | undefined): Attributes {
  const a: Attributes = status === undefined ? { route, cache } : { route, status, cache };
  if (tenant !== undefined) a['tenant'] = tenant;
  return Object.freeze(a);
}

function now(): HrTime {
  const ms = performance.timeOrigin + performance.now();
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos >= 1e9 ? [seconds + 1, nanos - 1e9] : [seconds, nanos];
}

export class GatewayMetrics {
  private readonly requestMetrics: RequestMetrics;
  private readonly exporter: PrometheusExporter;
  private readonly provider: MeterProvider;
  private readonly meter: Meter;
  private readonly instrumentation: Instrumentation;
  private readonly authFailures: Counter;
  private readonly upstreamErrors: Counter;
  private readonly streams: UpDownCounter;

  constructor(cache: MultiLayerCache, tenantLabel: boolean) {
    this.requestMetrics = new RequestMetrics(tenantLabel);
    this.exporter = new PrometheusExporter({ preventServerStart: true, metricProducers: [this.requestMetrics] });
    this.provider = new MeterProvider({ readers: [this.exporter] });
    this.meter = this.provider.getMeter(SCOPE);
    // The cache's lookup-duration histogram (one record per lookup) is aggregated with the request metrics.
    this.instrumentation = instrument(cache, { meter: this.requestMetrics.meter(this.meter) });
    this.authFailures = this.meter.createCounter('strata.gateway.auth.failures', {
      description: 'Requests refused for their API key, by reason (missing, unknown, revoked)',
    });
    this.upstreamErrors = this.meter.createCounter('strata.gateway.upstream.errors', {
      description: 'Upstream calls that failed before an answer, by upstream and kind (timeout, connect, other)',
    });
    this.streams = this.meter.createUpDownCounter('strata.gateway.streams.active', { description: 'Streamed answers being sent right now' });
  }

  request(s: RequestSample): void {
    this.requestMetrics.record(s);
  }

  authFailure(reason: string): void {
    this.authFailures.add(1, { reason });
  }

  upstreamError(upstream: string, kind: string): void {
    this.upstreamErrors.add(1, { upstream, kind });
  }

  streamStarted(): void {
    this.streams.add(1);
  }

  streamEnded(): void {
    this.streams.add(-1);
  }

  /** Serves the Prometheus text format. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    this.exporter.getMetricsRequestHandler(req, res);
  }

  async close(): Promise<void> {
    this.instrumentation.stop();
    await this.provider.shutdown().catch(() => undefined);
  }
}
