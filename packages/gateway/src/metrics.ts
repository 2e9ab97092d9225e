// Prometheus metrics: the cache's own (hits, misses, layers, errors, savings — @strata-cache/otel)
// plus the gateway's requests, on one OpenTelemetry MeterProvider whose reader is the Prometheus
// exporter. Labels carry route names, statuses, cache outcomes and (opt-in) tenant ids from the
// config — never a key, a prompt or an error message.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Counter, Histogram, Meter, UpDownCounter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { MultiLayerCache } from '@strata-cache/core';
import { type Instrumentation, instrument } from '@strata-cache/otel';

export interface RequestSample {
  readonly route: string;
  readonly status: number;
  readonly cache: string;
  readonly seconds: number;
  readonly tenant?: string | undefined;
}

export class GatewayMetrics {
  private readonly exporter = new PrometheusExporter({ preventServerStart: true });
  private readonly provider = new MeterProvider({ readers: [this.exporter] });
  private readonly meter: Meter = this.provider.getMeter('@strata-cache/gateway');
  private readonly instrumentation: Instrumentation;
  private readonly requests: Counter;
  private readonly duration: Histogram;
  private readonly authFailures: Counter;
  private readonly upstreamErrors: Counter;
  private readonly streams: UpDownCounter;

  constructor(
    cache: MultiLayerCache,
    private readonly tenantLabel: boolean,
  ) {
    this.instrumentation = instrument(cache, { meter: this.meter });
    this.requests = this.meter.createCounter('strata.gateway.requests', {
      description: 'Requests answered, by route, HTTP status and cache outcome (hit, semantic, miss, bypass, error)',
    });
    this.duration = this.meter.createHistogram('strata.gateway.request.duration', {
      unit: 's',
      description: 'Time from request to response headers, by route and cache outcome',
      advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] },
    });
    this.authFailures = this.meter.createCounter('strata.gateway.auth.failures', {
      description: 'Requests refused for their API key, by reason (missing, unknown, revoked)',
    });
    this.upstreamErrors = this.meter.createCounter('strata.gateway.upstream.errors', {
      description: 'Upstream calls that failed before an answer, by upstream and kind (timeout, connect, other)',
    });
    this.streams = this.meter.createUpDownCounter('strata.gateway.streams.active', { description: 'Streamed answers being sent right now' });
  }

  request(s: RequestSample): void {
    const attrs: Record<string, string | number> = { route: s.route, status: s.status, cache: s.cache };
    if (this.tenantLabel && s.tenant !== undefined) attrs['tenant'] = s.tenant;
    this.requests.add(1, attrs);
    this.duration.record(
      s.seconds,
      this.tenantLabel && s.tenant !== undefined ? { route: s.route, cache: s.cache, tenant: s.tenant } : { route: s.route, cache: s.cache },
    );
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
