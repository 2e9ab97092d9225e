// The gateway process: two Fastify servers (the public API and the admin API) around one cache
// stack, with the HTTP limits, logs, metrics and the shutdown an operator expects.
import { type IncomingMessage, STATUS_CODES, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { InvalidOptionError, type MultiLayerCache, type StrataError } from '@strata-cache/core';
import type { InvalidationEngine } from '@strata-cache/invalidation';
import { createAnthropicCachingFetch } from '@strata-cache/anthropic';
import { createOpenAICachingFetch } from '@strata-cache/openai';
import { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController, fastify } from 'fastify';
import { type Logger, pino } from 'pino';
import { registerAdminRoutes } from './admin.js';
import { type GatewayConfig, type GatewayConfigInput, loadConfig, parseConfig, readSecret } from './config.js';
import { GatewayError, errorBody, typeOfStatus } from './errors.js';
import { KeyTable, hashKey, tokenMatches } from './keys.js';
import { ScopedFetches } from './fetches.js';
import { GatewayMetrics } from './metrics.js';
import { CACHED_ROUTES, type JsonBody, type ProxyContext, type RequestState, serveCached, serveModels } from './proxy.js';
import { type Stack, buildStack } from './stack.js';
import { type Upstream, createUpstream } from './upstream.js';

const PKG = '@strata-cache/gateway';

/** Options of `createGateway`. */
export interface GatewayOptions {
  /** The configuration (as in the file), or the path of the JSON config file (then `reload()` re-reads it). */
  config: GatewayConfigInput | string;
  /** Directory that relative paths in the config resolve from. @default the config file's directory, else the working directory */
  configDir?: string | undefined;
  /** Where secret references (`{ "env": ... }`) are read. @default process.env */
  env?: NodeJS.ProcessEnv | undefined;
  /** Where the JSON log lines go. @default standard output */
  logStream?: { write(line: string): unknown } | undefined;
  /**
   * Adds routes or hooks of your own to the public server before it listens (a route of your
   * own, a plugin). They share its body parser (JSON only), limits, error format and hooks.
   * @default none
   */
  extend?: ((app: FastifyInstance) => void) | undefined;
}

/** A running gateway. */
export interface Gateway {
  /** `http://host:port` of the public API (after `listen`). */
  readonly url: string;
  /** `http://host:port` of the admin API, when it is on. */
  readonly adminUrl: string | undefined;
  readonly config: GatewayConfig;
  readonly cache: MultiLayerCache;
  readonly engine: InvalidationEngine;
  readonly stack: Stack;
  readonly log: Logger;
  listen(): Promise<void>;
  /** Re-reads the config file (or takes `config`) and swaps the key table; other changes need a restart. */
  reload(config?: GatewayConfigInput): Promise<{ keys: number; notes: string[] }>;
  /** Stops taking requests, lets requests and streams in flight finish (up to `server.shutdownTimeoutMs`), then closes the cache. */
  close(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    gw: RequestState;
  }
  interface FastifyContextConfig {
    /** The route serves callers with an API key. */
    auth?: boolean;
    /** Route name in metrics and logs. */
    route?: string;
  }
}

/** Builds the gateway (connects nothing yet except what the layers do lazily); `listen()` starts it. */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const env = options.env ?? process.env;
  const configPath = typeof options.config === 'string' ? options.config : undefined;
  const loaded = configPath ? loadConfig(configPath) : { config: parseConfig(options.config), dir: options.configDir ?? process.cwd() };
  const config = loaded.config;
  const configDir = options.configDir ?? loaded.dir;

  const log = pino(
    {
      level: config.log.level,
      base: { service: 'strata-gateway' },
      // Belt and braces: the gateway never logs headers, but nothing that could hold a credential
      // is printed even if a field carrying one ever reached a log line.
      redact: { paths: ['req.headers', 'headers', '*.authorization', '*["x-api-key"]', '*["api-key"]', 'apiKey', 'token'], remove: true },
    },
    (options.logStream as pino.DestinationStream | undefined) ?? pino.destination({ sync: false }),
  );

  // Secrets first: a missing one stops start-up with the variable's name.
  const upstreams: { openai?: Upstream; anthropic?: Upstream } = {};
  for (const name of ['openai', 'anthropic'] as const) {
    const u = config.upstreams[name];
    if (!u) continue;
    const credential = u.apiKey ? readSecret(u.apiKey, `upstreams.${name}.apiKey`, configDir, env) : undefined;
    upstreams[name] = createUpstream(name, u, credential);
  }
  const adminTokenHash =
    config.admin.port === false
      ? undefined
      : (config.admin.tokenHash ?? hashKey(readSecret(config.admin.token!, 'admin.token', configDir, env))).slice('sha256:'.length);

  const stack = await buildStack(config, configDir, { warn: (message, fields) => log.warn(fields ?? {}, message) });
  const { cache } = stack;
  let keys = new KeyTable(config.keys);
  const metrics = config.metrics.enabled ? new GatewayMetrics(cache, config.metrics.tenantLabel) : undefined;

  // Layer failures are misses (fail-open); they are logged at most once a second per layer and operation.
  const lastError = new Map<string, number>();
  cache.on('error', ({ error, layer, operation }: { error: StrataError; layer?: string; operation: string }) => {
    const k = `${layer}:${operation}`;
    const now = Date.now();
    if ((lastError.get(k) ?? 0) > now - 1000) return;
    lastError.set(k, now);
    log.warn({ layer, operation, code: error.code }, `cache layer error (served as a miss): ${error.message}`);
  });

  const cachingOptions = {
    cache,
    tags: config.cache.tags,
    reasoningModels: config.cache.reasoningModels,
    ...(config.cache.replay ? { replay: config.cache.replay } : {}),
  };
  const fetches = new ScopedFetches((name, scope) =>
    name === 'openai'
      ? createOpenAICachingFetch({ ...cachingOptions, scope, fetch: upstreams.openai!.fetch })
      : createAnthropicCachingFetch({ ...cachingOptions, scope, fetch: upstreams.anthropic!.fetch }),
  );

  const counters = { requests: 0, errors: 0, authFailures: 0, activeStreams: 0, byCache: {} as Record<string, number> };
  const proxy: ProxyContext = {
    upstreams,
    fetches,
    maxRequestTtlMs: config.cache.maxRequestTtlMs,
    onUpstreamError: (upstream, kind) => metrics?.upstreamError(upstream, kind),
    onStream: (started) => {
      counters.activeStreams += started ? 1 : -1;
      if (started) metrics?.streamStarted();
      else metrics?.streamEnded();
    },
  };

  let draining = false;
  const s = config.server;
  const app: FastifyInstance = fastify({
    loggerInstance: log as unknown as FastifyBaseLogger,
    // One log line per request, written by the gateway with safe fields only (onResponse below).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: s.bodyLimitBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    serverFactory: (handler) =>
      createServer(
        {
          requestTimeout: s.requestTimeoutMs,
          headersTimeout: s.headersTimeoutMs,
          keepAliveTimeout: s.keepAliveTimeoutMs,
          // How often Node checks the two timeouts above (its default, 30 s, would let a slow body run long past its limit).
          connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(Math.min(s.requestTimeoutMs, s.headersTimeoutMs) / 4))),
        },
        handler,
      ),
    requestTimeout: s.requestTimeoutMs,
    keepAliveTimeout: s.keepAliveTimeoutMs,
    // Timeouts, oversized headers and unparsable requests are answered before (or outside) a
    // route: in the error format of the API the caller speaks, like every other error.
    clientErrorHandler: clientError,
  });
  installJsonParser(app, true);
  app.decorateRequest('gw', null as unknown as RequestState);

  // Callback-style hooks: no promise per hook and request on the hot path.
  app.addHook('onRequest', (req, reply, done) => {
    const config = req.routeOptions.config;
    req.gw = { route: config.route ?? 'other' };
    (req.raw.socket as SocketWithRequest)[kRequest] = req.raw;
    if (req.is404) {
      done(notFound(req, reply));
      return;
    }
    if (!config.auth) {
      done();
      return;
    }
    const r = keys.authenticate(req.headers, req.raw.socket ?? undefined);
    if (!r.ok) {
      counters.authFailures++;
      metrics?.authFailure(r.reason);
      done(
        new GatewayError(
          401,
          'authentication_error',
          r.reason === 'missing' ? 'no API key: send it as "Authorization: Bearer <key>" or "x-api-key: <key>"' : 'invalid or revoked API key',
        ),
      );
      return;
    }
    req.gw.caller = r.caller;
    req.gw.presented = r.presented;
    done();
  });

  const finished = (req: FastifyRequest, reply: FastifyReply): void => {
    const st = req.gw;
    if (!st || st.route === 'ops') return;
    counters.requests++;
    const cacheStatus = st.cache ?? (reply.statusCode >= 400 ? 'error' : 'bypass');
    counters.byCache[cacheStatus] = (counters.byCache[cacheStatus] ?? 0) + 1;
    if (reply.statusCode >= 500) counters.errors++;
    const seconds = reply.elapsedTime / 1000;
    metrics?.request({ route: st.route, status: reply.statusCode, cache: cacheStatus, seconds, tenant: st.caller?.tenant });
    // The line's fields are only gathered when it is written (at the default level "warn", never).
    if (!log.isLevelEnabled('info')) return;
    req.log.info(
      {
        reqId: req.id,
        method: req.method,
        route: st.route,
        status: reply.statusCode,
        cache: cacheStatus,
        ...(st.layer ? { layer: st.layer } : {}),
        ...(st.caller ? { tenant: st.caller.tenant, key: st.caller.keyId } : {}),
        ms: Math.round(reply.elapsedTime * 100) / 100,
        ...(st.upstreamMs !== undefined ? { upstreamMs: Math.round(st.upstreamMs * 100) / 100 } : {}),
      },
      'request',
    );
  };
  app.addHook('onResponse', (req, reply, done) => {
    try {
      finished(req, reply);
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  });

  app.setErrorHandler((error: FastifyError | GatewayError, req, reply) => sendError(req, reply, error, s.bodyLimitBytes, log));
  // Unknown paths are answered in onRequest (above), before their body is read; this handler is
  // the router's fallback.
  app.setNotFoundHandler((req, reply) => void sendError(req, reply, notFound(req, reply), s.bodyLimitBytes, log));

  for (const route of CACHED_ROUTES) {
    app.post(route.path, { config: { auth: true, route: route.name } }, (req, reply) => serveCached(proxy, route, req, reply, req.gw));
  }
  app.get('/v1/models', { config: { auth: true, route: 'models' } }, (req, reply) => serveModels(proxy, req, reply, req.gw));
  app.get('/v1/models/:model', { config: { auth: true, route: 'models' } }, (req, reply) => serveModels(proxy, req, reply, req.gw));
  options.extend?.(app);

  const ops = (instance: FastifyInstance, withMetrics: boolean) => {
    instance.get('/healthz', { config: { route: 'ops' } }, async () => ({ status: 'ok' }));
    instance.get('/readyz', { config: { route: 'ops' } }, async (_req, reply) => {
      const l2 = stack.l2 ? { l2: stack.l2.state } : {};
      if (draining) return reply.code(503).send({ status: 'draining', ...l2 });
      // A Redis that is down does not make the gateway unready: it serves without it (fail-open).
      return { status: 'ready', ...l2 };
    });
    if (withMetrics && metrics) {
      instance.get('/metrics', { config: { route: 'ops' } }, (req, reply) => {
        reply.hijack();
        metrics.handle(req.raw, reply.raw);
      });
    }
  };
  ops(app, config.metrics.listener === 'main');

  let admin: FastifyInstance | undefined;
  if (config.admin.port !== false) {
    const a: FastifyInstance = fastify({
      loggerInstance: log.child({ listener: 'admin' }) as unknown as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: 1024 * 1024,
      forceCloseConnections: true,
    });
    admin = a;
    installJsonParser(a, false);
    a.decorateRequest('gw', null as unknown as RequestState);
    a.addHook('onRequest', async (req, reply) => {
      req.gw = { route: 'ops' };
      // Decided by the route matched, not by how the path is spelled (`/%61dmin/stats` and
      // `GET http://host/admin/stats` reach /admin/stats too): only the health and metrics routes
      // are open, everything else — unknown paths included — wants the token.
      if (req.routeOptions.config.route === 'ops') return;
      const auth = req.headers['authorization'];
      const token = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] : undefined;
      if (!tokenMatches(token, adminTokenHash!)) {
        log.warn(
          { listener: 'admin', path: req.url.split('?')[0] },
          token === undefined ? 'admin request without a token' : 'admin request with a wrong token',
        );
        throw new GatewayError(
          401,
          'authentication_error',
          token === undefined ? 'the admin API needs "Authorization: Bearer <admin token>"' : 'wrong admin token',
        );
      }
      // An unknown path is a 404 whatever its body holds: answered before the body is read.
      if (req.is404) throw notFound(req, reply, 'admin');
    });
    a.addHook('onResponse', async (req, reply) => {
      if (req.routeOptions.config.route !== 'ops' && reply.statusCode < 400 && req.method !== 'GET')
        log.info({ listener: 'admin', method: req.method, path: req.url.split('?')[0], status: reply.statusCode }, 'admin request');
    });
    a.setErrorHandler((error: FastifyError | GatewayError, req, reply) => sendError(req, reply, error, 1024 * 1024, log));
    a.setNotFoundHandler((req, reply) => void sendError(req, reply, notFound(req, reply, 'admin'), 1024 * 1024, log));
    ops(a, config.metrics.listener === 'admin');
    registerAdminRoutes(a, {
      stack,
      keys: () => keys,
      upstreams,
      fetches,
      gatewayStats: () => ({ ...counters, byCache: { ...counters.byCache }, draining, keys: keys.keys.length }),
      reload: () => gateway.reload(),
    });
  }

  let url = '';
  let adminUrl: string | undefined;
  let closing: Promise<void> | undefined;

  const gateway: Gateway = {
    get url() {
      return url;
    },
    get adminUrl() {
      return adminUrl;
    },
    config,
    cache,
    engine: stack.engine,
    stack,
    log,
    async listen() {
      await app.listen({ host: s.host, port: s.port });
      url = origin(app);
      if (admin) {
        await admin.listen({ host: config.admin.host, port: config.admin.port as number });
        adminUrl = origin(admin);
      }
      log.info(
        {
          url,
          adminUrl,
          layers: cache.layerNames,
          upstreams: Object.fromEntries(
            Object.entries(upstreams).map(([k, u]) => [k, { baseUrl: u.baseUrl, credentials: u.passthrough ? 'passthrough' : 'gateway' }]),
          ),
          keys: keys.keys.length,
        },
        'gateway listening',
      );
    },
    async reload(next) {
      const fresh = next !== undefined ? parseConfig(next) : configPath ? loadConfig(configPath).config : undefined;
      if (!fresh) throw new InvalidOptionError(`${PKG}: reload() needs a config: this gateway was not started from a file`, { field: 'config' });
      keys = new KeyTable(fresh.keys);
      const notes: string[] = [];
      for (const section of ['server', 'admin', 'upstreams', 'cache', 'invalidation', 'metrics', 'log'] as const) {
        if (JSON.stringify(fresh[section]) !== JSON.stringify(config[section])) notes.push(`"${section}" changed: restart the gateway to apply it`);
      }
      log.info({ keys: fresh.keys.length, revoked: fresh.keys.filter((k) => k.revoked).length, notes }, 'keys reloaded');
      return { keys: fresh.keys.length, notes };
    },
    close() {
      closing ??= (async () => {
        draining = true;
        log.info({ activeStreams: counters.activeStreams }, 'shutting down: draining requests and streams');
        const force = setTimeout(() => {
          log.warn({ activeStreams: counters.activeStreams }, `shutdown timeout (${s.shutdownTimeoutMs} ms): closing the connections still open`);
          app.server.closeAllConnections();
        }, s.shutdownTimeoutMs);
        force.unref();
        await Promise.all([app.close(), admin?.close()]);
        clearTimeout(force);
        await stack.close();
        await metrics?.close();
        await Promise.all(Object.values(upstreams).map((u) => u.close().catch(() => undefined)));
        log.info('gateway stopped');
        log.flush();
      })();
      return closing;
    },
  };
  return gateway;
}

/** Builds and starts a gateway. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const gateway = await createGateway(options);
  try {
    await gateway.listen();
  } catch (error) {
    await gateway.close().catch(() => undefined);
    throw error;
  }
  return gateway;
}

function origin(app: FastifyInstance): string {
  const a = app.server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `http://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${a.port}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * JSON bodies only: checked to be UTF-8 and a JSON object. The public API keeps the text, to send
 * upstream as it came (`JsonBody`); the admin API takes the object.
 */
function installJsonParser(app: FastifyInstance, keepText: boolean): void {
  app.removeAllContentTypeParsers();
  // A compressed body is refused before any of it is read (it would otherwise be read up to the
  // body limit, only to fail as "not UTF-8"): the gateway does not inflate request bodies (a small
  // upload could inflate past the body limit). The connection closes with the answer, so the body
  // the caller may still be sending is not read either.
  app.addHook('preParsing', (req, reply, payload, done) => {
    const refusal = compressedBodyRefusal(req.headers);
    if (refusal === undefined) {
      done(null, payload);
      return;
    }
    reply.header('connection', 'close');
    done(refusal);
  });
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, raw, done) => {
    if ((raw as Buffer).length === 0) {
      done(new GatewayError(400, 'invalid_request_error', 'the request body is empty'), undefined);
      return;
    }
    let text: string;
    try {
      text = utf8.decode(raw as Buffer);
    } catch {
      done(new GatewayError(400, 'invalid_request_error', 'the request body is not UTF-8'), undefined);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      done(new GatewayError(400, 'invalid_request_error', 'the request body is not valid JSON'), undefined);
      return;
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      done(new GatewayError(400, 'invalid_request_error', 'the request body must be a JSON object'), undefined);
      return;
    }
    done(null, keepText ? ({ text, json: json as Record<string, unknown> } satisfies JsonBody) : json);
  });
}

/**
 * The 404 of a request to a path no route serves. Its body, if it has one, is never read (it would
 * otherwise be parsed, and a malformed one answered 400, as if the route existed): the connection
 * closes with the answer.
 */
function notFound(req: FastifyRequest, reply: FastifyReply, listener?: 'admin'): GatewayError {
  if (hasBody(req.headers)) reply.header('connection', 'close');
  const path = req.url.split('?')[0] ?? '';
  if (listener === 'admin') return new GatewayError(404, 'not_found_error', `no admin route ${req.method} ${path}`);
  const route = CACHED_ROUTES.find((r) => r.path === path);
  const message = route
    ? `${req.method} ${path} is not supported (use POST)`
    : `no route ${req.method} ${path} (served: ${CACHED_ROUTES.map((r) => 'POST ' + r.path).join(', ')}, GET /v1/models)`;
  return new GatewayError(404, 'not_found_error', message);
}

/** Whether a request announces a body (a content-length above 0, or a transfer-encoding). */
function hasBody(headers: FastifyRequest['headers']): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
}

/** The 415 for a request whose body has a content coding other than identity, or undefined. */
function compressedBodyRefusal(headers: FastifyRequest['headers']): GatewayError | undefined {
  const encoding = headers['content-encoding'];
  if (encoding === undefined || /^\s*(identity)?\s*$/i.test(encoding)) return undefined;
  // Only a request that carries a body (a GET with a stray header is not refused for it).
  if (!hasBody(headers)) return undefined;
  return new GatewayError(
    415,
    'invalid_request_error',
    `a compressed request body (content-encoding: ${JSON.stringify(encoding.slice(0, 40))}) is not accepted: send it uncompressed`,
    // The one content coding the gateway takes (RFC 9110, 15.5.16).
    { headers: { 'accept-encoding': 'identity' } },
  );
}

function sendError(req: FastifyRequest, reply: FastifyReply, error: FastifyError | GatewayError, bodyLimit: number, log: Logger): FastifyReply | undefined {
  let status: number;
  let message: string;
  if (error instanceof GatewayError) {
    status = error.status;
    message = error.message;
  } else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    status = 413;
    message = `the request body is larger than this gateway accepts (${bodyLimit} bytes)`;
  } else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    status = 415;
    message = 'the request body must be JSON (content-type: application/json)';
  } else if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    status = 400;
    message = 'the request body is empty';
  } else if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    status = error.statusCode;
    message = error.message;
  } else {
    status = 500;
    message = 'internal error';
    log.error({ reqId: req.id, err: { type: error.name, code: (error as { code?: unknown }).code, message: error.message } }, 'request failed');
  }
  if (req.gw) req.gw.cache ??= 'error';
  // The caller gone (499): nothing to answer.
  if (status === 499 || reply.raw.destroyed) return;
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return;
  }
  const type = error instanceof GatewayError ? error.type : typeOfStatus(status);
  if (error instanceof GatewayError && error.headers) reply.headers(error.headers);
  return reply
    .code(status)
    .header('content-type', 'application/json')
    .send(errorBody(apiOf(req.url, req.headers), status, type, message));
}

/** The API whose error format a request is answered in. */
function apiOf(url: string, headers: FastifyRequest['headers']): 'openai' | 'anthropic' {
  return url.startsWith('/v1/messages') || (url.startsWith('/v1/models') && headers['anthropic-version'] !== undefined) ? 'anthropic' : 'openai';
}

// The request a connection carries (its last one), for errors Node raises on the connection.
const kRequest = Symbol('strata.gateway.request');
type SocketWithRequest = Socket & { [kRequest]?: IncomingMessage };

/** Node's `clientError`: a request (body or headers) too slow, headers too large, bytes that are not HTTP. */
function clientError(error: Error & { code?: string }, socket: Socket): void {
  // A reset connection: nothing to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'the request did not arrive in time (server.headersTimeoutMs, server.requestTimeoutMs)']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'the request headers are larger than this gateway accepts']
        : [400, 'the request is not valid HTTP'];
  const req = (socket as SocketWithRequest)[kRequest];
  const body = JSON.stringify(errorBody(req ? apiOf(req.url ?? '', req.headers) : 'openai', status, typeOfStatus(status), message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
