import { mkdirSync, writeFileSync } from 'node:fs';
import { projectMonthlySavings } from '@strata-cache/core';
import { dirname, resolve } from 'node:path';
import { Progress } from './progress.js';
import { type MetricsEndpoint, serveMetrics } from './metrics.js';
import { renderHtml, renderText } from './render.js';
import { runWorkload } from './runner.js';
import { SimulatedProvider } from './simulated-provider.js';
import { buildFleet } from './fleet.js';
import { type Stack, buildStack } from './stack.js';
import { type Summary, runFigures, summarize } from './summary.js';
import { type Workload, generateWorkload, loadWorkload } from './workload.js';

export interface DemoOptions {
  /** Chat requests in the generated workload. @default 1500 */
  requests?: number;
  /** Requests in flight at once. @default 16 */
  concurrency?: number;
  /** Seed of the workload and the simulated latencies. @default 42 */
  seed?: number;
  /** Replay this JSONL file instead of generating a workload. */
  workload?: string;
  /** Redis URL: adds the L2 layer. */
  redisUrl?: string;
  /** App instances sharing L2 (each its own L1 and L3). @default 2 with Redis, else 1 */
  instances?: number;
  /**
   * Run the day across this many worker processes sharing one Redis (needs `redisUrl`): each its
   * own L1, L3 and embedder, the L3s following each other through the semantic feed.
   */
  workers?: number;
  /** With `workers` > 1: also run the same day on one worker process and report both. @default true */
  compare?: boolean;
  /** `auto`: real OpenAI/Anthropic when their API key is set, else simulated. @default 'auto' */
  provider?: 'auto' | 'simulated' | 'openai' | 'anthropic';
  /** Wire format and adapter for the simulated provider (real providers imply theirs). @default 'openai' */
  api?: 'openai' | 'anthropic';
  /** @default gpt-4o / claude-sonnet-4-20250514 (simulated), gpt-4o-mini (OpenAI), claude-3-5-haiku-latest (Anthropic) */
  model?: string;
  /** Multiplies the simulated provider's delays. @default 1 */
  latencyScale?: number;
  /** Traffic the monthly projection is made for. @default 50_000 */
  dailyRequests?: number;
  /** Semantic layer (L3) on. @default true */
  semantic?: boolean;
  /** Cosine similarity an L3 hit needs (with calibration: a floor). @default the layer's default */
  threshold?: number;
  /** L3 calibrates to this error budget (`false`: the static default setting). @default { maxWrongRate: 0.005, shadowRate: 0.1 } */
  calibration?: false | { maxWrongRate: number; shadowRate: number };
  /** HTML report path. @default reports/strata-demo-<time>.html (under the current directory) */
  out?: string;
  /** JSON summary path. @default the HTML path with .json */
  json?: string;
  /** Progress bar and summary to stderr/stdout. @default true */
  print?: boolean;
  /**
   * Break the stack on purpose to watch the checks fire: `no-invalidation` skips the purge on
   * the pricing event (stale answers), `shared-scope` puts both tenants in one cache scope
   * (cross-tenant answers).
   */
  fault?: 'no-invalidation' | 'shared-scope';
  /**
   * Serve the caches' metrics (OpenTelemetry through @strata-cache/otel, Prometheus format) at
   * `http://127.0.0.1:<port>/metrics` (0: a free port) from the start of the run. The endpoint
   * stays open after the run: close it with `result.metrics.close()`.
   */
  metricsPort?: number;
  env?: NodeJS.ProcessEnv;
}

export interface DemoResult {
  summary: Summary;
  text: string;
  htmlPath: string;
  jsonPath: string;
  /** The metrics endpoint, when `metricsPort` was given (still serving). */
  metrics?: MetricsEndpoint;
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const env = options.env ?? process.env;
  const print = options.print ?? true;
  const log = (line: string) => {
    if (print) process.stderr.write(line + '\n');
  };
  const seed = options.seed ?? 42;
  const concurrency = options.concurrency ?? 16;
  const started = new Date().toISOString().replace(/[:.]/g, '-');
  let single: DemoResult | undefined;
  if (options.workers !== undefined && options.workers > 1 && options.compare !== false) {
    // The baseline the fleet is compared with: the same day (same seed), one worker process.
    log(`The same day on 1 worker process first, the baseline for ${options.workers} workers …`);
    const base = (options.out ?? `reports/strata-demo-${started}.html`).replace(/\.html?$/i, '');
    single = await runDemo({ ...options, workers: 1, compare: false, print: false, out: `${base}-workers-1.html`, json: `${base}-workers-1.json` });
  }
  const workload: Workload = options.workload ? loadWorkload(options.workload) : generateWorkload({ requests: options.requests ?? 1500, seed });

  let provider = options.provider ?? 'auto';
  if (provider === 'auto') provider = env['OPENAI_API_KEY'] ? 'openai' : env['ANTHROPIC_API_KEY'] ? 'anthropic' : 'simulated';
  let api = options.api ?? 'openai';
  let sim: SimulatedProvider | undefined;
  let baseURL: string;
  let label: string;
  let model: string;
  let apiKey: string | undefined;
  if (provider === 'simulated') {
    sim = new SimulatedProvider({ latencyScale: options.latencyScale ?? 1, seed });
    const url = await sim.start();
    baseURL = api === 'anthropic' ? url.replace(/\/v1$/, '') : url;
    label = `simulated provider at ${url} (${api === 'anthropic' ? 'Anthropic Messages' : 'OpenAI chat-completions'} wire format)`;
    model = options.model ?? (api === 'anthropic' ? 'claude-sonnet-4-20250514' : 'gpt-4o');
  } else if (provider === 'openai') {
    api = 'openai';
    apiKey = env['OPENAI_API_KEY'];
    if (!apiKey) throw new Error('--provider openai needs OPENAI_API_KEY');
    baseURL = env['OPENAI_BASE_URL'] ?? 'https://api.openai.com/v1';
    label = `OpenAI API at ${baseURL}`;
    model = options.model ?? 'gpt-4o-mini';
  } else {
    api = 'anthropic';
    apiKey = env['ANTHROPIC_API_KEY'];
    if (!apiKey) throw new Error('--provider anthropic needs ANTHROPIC_API_KEY');
    baseURL = env['ANTHROPIC_BASE_URL'] ?? 'https://api.anthropic.com';
    label = `Anthropic API at ${baseURL}`;
    model = options.model ?? 'claude-3-5-haiku-latest';
  }

  if (!sim) log(`Upstream: ${label}, model ${model} — real API calls at real prices (pass --provider simulated to stay local).`);
  const stackOptions = {
    api,
    simulated: sim !== undefined,
    baseURL,
    providerLabel: sim ? 'simulated provider' : label,
    ...(apiKey ? { apiKey } : {}),
    ...(options.redisUrl ? { redisUrl: options.redisUrl } : {}),
    ...(options.instances !== undefined ? { instances: options.instances } : {}),
    semantic: options.semantic ?? true,
    ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
    ...(options.calibration !== undefined ? { calibration: options.calibration } : {}),
    sharedScope: options.fault === 'shared-scope',
    log,
  };
  const fleet = options.workers !== undefined ? await buildFleet({ ...stackOptions, workers: options.workers }) : undefined;
  const stack: Stack = fleet ?? (await buildStack(stackOptions));
  let metrics: MetricsEndpoint | undefined;
  if (options.metricsPort !== undefined) {
    metrics = await serveMetrics(stack.caches, options.metricsPort);
    log(`Metrics (Prometheus, via @strata-cache/otel): ${metrics.url}`);
  }
  const progress = new Progress(workload.requests, print);
  let run;
  try {
    run = await runWorkload({
      workload,
      client: stack.client,
      concurrency,
      model,
      prices: stack.prices,
      hooks: {
        async onEvent(job) {
          // The source of truth changes first, then the application tells the cache.
          sim?.changePricing(job.tenant);
          if (options.fault === 'no-invalidation') return { purged: {}, detail: 'FAULT INJECTED: no invalidation' };
          return stack.pricingChanged(job.tenant);
        },
        onProgress: (done, records) => progress.update(done, records),
      },
    });
    await stack.flush();
  } finally {
    progress.done();
  }
  const stats = stack.stats();
  const dailyRequests = options.dailyRequests ?? 50_000;
  // The seed formula with this run's observed hit rate, tokens per upstream call and blended price.
  const calls = run.records.filter((r) => r.upstreamCall);
  const upstreamTokens = calls.reduce((a, r) => a + r.tokens, 0);
  const upstreamUsd = calls.reduce((a, r) => a + r.usd, 0);
  const served = run.records.filter((r) => !r.error);
  const hitRate = served.length ? served.filter((r) => r.path !== 'upstream').length / served.length : 0;
  const tokensPerRequest = calls.length ? upstreamTokens / calls.length : 0;
  const pricePerMillion = upstreamTokens ? (upstreamUsd / upstreamTokens) * 1e6 : 0;
  const projection = { usd: projectMonthlySavings({ dailyRequests, hitRate, tokensPerRequest, pricePerMillion }), hitRate, tokensPerRequest, pricePerMillion };
  const summary = summarize({
    provider: {
      label: sim ? `simulated provider (local HTTP server, ${api === 'anthropic' ? 'Anthropic Messages' : 'OpenAI chat-completions'} wire format)` : label,
      simulated: sim !== undefined,
      model,
    },
    workload: {
      name: workload.name,
      requests: workload.requests,
      tenants: [...workload.tenants],
      seed: options.workload ? null : seed,
      concurrency,
      labelled: workload.labelled,
    },
    components: [...stack.components, `client — ${stack.client.description}`],
    missing: [...stack.missing, ...(options.fault ? [`fault injected on purpose: ${options.fault}`] : [])],
    run,
    stats,
    calibration: stack.calibration(),
    monthly: { dailyRequests, ...projection },
    providerCalls: sim ? sim.stats.calls : null,
  });
  if (fleet) {
    summary.fleet = {
      ...fleet.report(),
      run: runFigures(summary, options.workers!),
      ...(single ? { single: { ...runFigures(single.summary, 1), reportPath: single.htmlPath } } : {}),
    };
  }
  await stack.close();
  await sim?.close();

  const htmlPath = resolve(options.out ?? `reports/strata-demo-${started}.html`);
  const jsonPath = resolve(options.json ?? htmlPath.replace(/\.html?$/i, '') + '.json');
  mkdirSync(dirname(htmlPath), { recursive: true });
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(htmlPath, renderHtml(summary));
  writeFileSync(jsonPath, JSON.stringify({ ...summary, records: run.records }, null, 2));
  const text = renderText(summary, htmlPath);
  if (print) process.stdout.write(text + '\n');
  return { summary, text, htmlPath, jsonPath, ...(metrics ? { metrics } : {}) };
}
