// Command-line options of the demo, parsed apart from cli.ts so the tests can call it.
import { parseArgs } from 'node:util';
import type { DemoOptions } from './demo.js';

export const HELP = `Usage: pnpm demo [-- options]      (or: node apps/demo/dist/cli.js [options])

Runs a support bot's day of requests through Strata (L1 memory + L3 semantic with a local
embedder + invalidation rules, L2 Redis when given) against a SIMULATED OpenAI-compatible
provider, or the real OpenAI / Anthropic API when OPENAI_API_KEY / ANTHROPIC_API_KEY is set.
Prints a summary, writes an HTML report, exits 1 if a stale or cross-tenant answer was served.

Options:
  --requests N         requests in the generated workload (default 1500)
  --concurrency N      requests in flight at once (default 16)
  --seed N             workload and latency seed (default 42)
  --workload FILE      replay a JSONL file instead (see apps/demo/README.md for the format)
  --redis URL          add the L2 Redis layer (default: $REDIS_URL, else off)
  --instances N        app instances sharing L2 (default 2 with --redis, else 1)
  --workers N          run the day across N worker processes sharing the Redis of --redis
                       (each its own L1, L3 and embedder; the L3s replicate through Redis);
                       with N > 1 the same day also runs on 1 worker and the report shows both
  --no-compare         with --workers: skip the 1-worker run
  --provider P         auto | simulated | openai | anthropic (default auto: real when a key is set)
  --api A              openai | anthropic: wire format and adapter of the simulated provider
                       (default openai)
  --model NAME         model to ask (default gpt-4o simulated, gpt-4o-mini OpenAI)
  --latency-scale X    multiply the simulated provider's delays (default 1; 0 = instant)
  --daily-requests N   traffic for the monthly projection (default 50000)
  --no-semantic        leave the L3 semantic layer out
  --threshold X        cosine similarity an L3 hit needs (default: the layer's; with
                       calibration, a floor below which nothing is served)
  --max-wrong-rate X   the calibrating L3's error budget: wrong cached answers per lookup
                       (default 0.005)
  --shadow-rate X      share of would-be L3 hits re-asked upstream to audit them (default 0.1)
  --no-calibration     L3 with the static default setting instead of calibration
  --out FILE           HTML report path (default reports/strata-demo-<time>.html)
  --json FILE          JSON summary path (default: the report path with .json)
  --metrics PORT       serve the caches' metrics (OpenTelemetry via @strata-cache/otel, Prometheus
                       format) at http://127.0.0.1:PORT/metrics; 0 picks a free port; kept up
                       after the run until Ctrl+C
  --fault F            break it on purpose to watch the checks fire: no-invalidation
                       (stale answers) or shared-scope (cross-tenant answers)
  --quiet              no progress bar and no summary (files are still written)
  -h, --help           this text
`;

class ArgError extends Error {}

function num(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new ArgError(`--${name} must be a number ≥ ${min} (got ${JSON.stringify(v)})`);
  return n;
}

function integer(v: string, name: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ArgError(`--${name} must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return n;
}

export type ParsedArgs = { options: DemoOptions } | { help: string } | { error: string };

/** Parses the demo's command line (without `node cli.js`); never exits the process. */
export function parseDemoArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedArgs {
  try {
    return parse(argv, env);
  } catch (error) {
    if (error instanceof ArgError) return { error: error.message };
    throw error;
  }
}

function parse(argv: string[], env: NodeJS.ProcessEnv): ParsedArgs {
  // pnpm 10 passes a literal `--` through (`pnpm demo -- --requests 300` runs `cli.js -- --requests 300`).
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        requests: { type: 'string' },
        concurrency: { type: 'string' },
        seed: { type: 'string' },
        workload: { type: 'string' },
        redis: { type: 'string' },
        provider: { type: 'string' },
        instances: { type: 'string' },
        workers: { type: 'string' },
        'no-compare': { type: 'boolean' },
        model: { type: 'string' },
        api: { type: 'string' },
        'latency-scale': { type: 'string' },
        'daily-requests': { type: 'string' },
        'no-semantic': { type: 'boolean' },
        threshold: { type: 'string' },
        'max-wrong-rate': { type: 'string' },
        'shadow-rate': { type: 'string' },
        'no-calibration': { type: 'boolean' },
        out: { type: 'string' },
        json: { type: 'string' },
        fault: { type: 'string' },
        metrics: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }));
  } catch (error) {
    return { error: `${(error as Error).message}\n\n${HELP}` };
  }
  if (values.help) {
    return { help: HELP };
  }
  const provider = values.provider ?? 'auto';
  if (!['auto', 'simulated', 'openai', 'anthropic'].includes(provider)) {
    return { error: `--provider must be auto, simulated, openai or anthropic` };
  }
  if (values.fault !== undefined && values.fault !== 'no-invalidation' && values.fault !== 'shared-scope') {
    return { error: `--fault must be no-invalidation or shared-scope` };
  }
  if (values.api !== undefined && values.api !== 'openai' && values.api !== 'anthropic') {
    return { error: `--api must be openai or anthropic` };
  }
  const redisUrl = values.redis ?? env['REDIS_URL'];
  if (values.workers !== undefined && !redisUrl) return { error: '--workers needs --redis URL (or REDIS_URL): the workers share one Redis' };
  if (values.workers !== undefined && values.instances !== undefined)
    return { error: '--workers and --instances do not combine (each worker is one instance)' };
  const rate = (v: string | undefined, name: string, def: number) => {
    const n = num(v, name, 0);
    if (n !== undefined && n > 1) throw new ArgError(`--${name} must be a share from 0 to 1 (got ${JSON.stringify(v)})`);
    return n ?? def;
  };
  if (values['no-calibration'] && (values['max-wrong-rate'] !== undefined || values['shadow-rate'] !== undefined)) {
    return { error: '--no-calibration cannot be combined with --max-wrong-rate or --shadow-rate' };
  }
  const calibration = values['no-calibration']
    ? false
    : values['max-wrong-rate'] !== undefined || values['shadow-rate'] !== undefined
      ? { maxWrongRate: rate(values['max-wrong-rate'], 'max-wrong-rate', 0.005), shadowRate: rate(values['shadow-rate'], 'shadow-rate', 0.1) }
      : undefined;
  const options: DemoOptions = {
    provider: provider as NonNullable<DemoOptions['provider']>,
    semantic: !values['no-semantic'],
    print: !values.quiet,
    ...(values.requests !== undefined ? { requests: num(values.requests, 'requests', 1)! } : {}),
    ...(values.threshold !== undefined ? { threshold: num(values.threshold, 'threshold', -1)! } : {}),
    ...(calibration !== undefined ? { calibration } : {}),
    ...(values.instances !== undefined ? { instances: num(values.instances, 'instances', 1)! } : {}),
    ...(values.workers !== undefined ? { workers: integer(values.workers, 'workers', 1, 32) } : {}),
    ...(values['no-compare'] ? { compare: false } : {}),
    ...(values.concurrency !== undefined ? { concurrency: num(values.concurrency, 'concurrency', 1)! } : {}),
    ...(values.seed !== undefined ? { seed: num(values.seed, 'seed', 0)! } : {}),
    ...(values['latency-scale'] !== undefined ? { latencyScale: num(values['latency-scale'], 'latency-scale', 0)! } : {}),
    ...(values['daily-requests'] !== undefined ? { dailyRequests: num(values['daily-requests'], 'daily-requests', 1)! } : {}),
    ...(values.fault ? { fault: values.fault as 'no-invalidation' | 'shared-scope' } : {}),
    ...(values.metrics !== undefined ? { metricsPort: num(values.metrics, 'metrics', 0)! } : {}),
    ...(values.workload ? { workload: values.workload } : {}),
    ...(redisUrl ? { redisUrl } : {}),
    ...(values.model ? { model: values.model } : {}),
    ...(values.api ? { api: values.api as 'openai' | 'anthropic' } : {}),
    ...(values.out ? { out: values.out } : {}),
    ...(values.json ? { json: values.json } : {}),
  };
  return { options };
}
