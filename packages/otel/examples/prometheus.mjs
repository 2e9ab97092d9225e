// Strata metrics on a Prometheus endpoint.
//
//   node examples/prometheus.mjs          → http://127.0.0.1:9464/metrics
//   PORT=0 node examples/prometheus.mjs   → a free port (printed)
//
// Needs: @strata-cache/otel @strata-cache/core @strata-cache/layer-memory lru-cache
//        @opentelemetry/api @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus
import { createServer } from 'node:http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { MultiLayerCache, loaded } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { instrument } from '@strata-cache/otel';

// 1. OpenTelemetry: a MeterProvider whose reader is the Prometheus exporter. The exporter can
//    serve /metrics itself (`new PrometheusExporter({ port: 9464 })`); here its request handler is
//    mounted on our own server, which also lets PORT=0 pick a free port.
const exporter = new PrometheusExporter({ preventServerStart: true });
const meterProvider = new MeterProvider({ readers: [exporter] });

// 2. The cache, instrumented.
// `prices` (USD per 1M tokens) make the saved-USD counters move; the adapters publish their
// providers' list prices (OPENAI_PRICES from @strata-cache/openai, ANTHROPIC_PRICES from @strata-cache/anthropic).
const cache = new MultiLayerCache({ layers: [new MemoryLayer()], prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 } } });
const metrics = instrument(cache, { meter: meterProvider.getMeter('strata'), attributes: { cache: 'example' } });

const server = createServer((req, res) => {
  if (req.url === '/metrics') exporter.getMetricsRequestHandler(req, res);
  else res.writeHead(404).end();
});
server.listen(Number(process.env.PORT ?? 9464), '127.0.0.1', () => {
  console.log(`metrics at http://127.0.0.1:${server.address().port}/metrics`);
});

// 3. Some traffic: a few questions asked over and over (a stand-in for your model calls).
const questions = ['How do I reset my password?', 'Where is my order?', 'Can I change my plan?'];
let n = 0;
const traffic = setInterval(async () => {
  const request = { model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content: questions[n++ % questions.length] }] };
  await cache.getOrLoad(request, async () =>
    loaded({ answer: `(answer to: ${request.messages[0].content})` }, { model: 'gpt-4o-mini', usage: { inputTokens: 120, outputTokens: 80 } }),
  );
}, 100);

async function shutdown() {
  clearInterval(traffic);
  metrics.stop();
  server.close();
  await meterProvider.shutdown();
  await cache.close();
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
