import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { MultiLayerCache } from '@strata-cache/core';
import { instrument } from '@strata-cache/otel';

/** The demo's caches on a Prometheus endpoint (`--metrics PORT`), through @strata-cache/otel. */
export interface MetricsEndpoint {
  /** `http://127.0.0.1:<port>/metrics` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Instruments every instance's cache (attribute `instance`) on one OpenTelemetry MeterProvider
 * whose reader is the Prometheus exporter, served on `port` (0: a free one) at `/metrics`.
 */
export async function serveMetrics(caches: readonly MultiLayerCache[], port: number): Promise<MetricsEndpoint> {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  const meter = provider.getMeter('strata-demo');
  const instrumented = caches.map((cache, i) => instrument(cache, { meter, attributes: { cache: 'strata-demo', instance: String(i + 1) } }));
  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics') exporter.getMetricsRequestHandler(req, res);
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('the metrics are at /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  return {
    url,
    async close() {
      for (const m of instrumented) m.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await provider.shutdown();
    },
  };
}
