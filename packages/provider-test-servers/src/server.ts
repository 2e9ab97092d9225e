import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the server received. Header names are lower-case. */
export interface RecordedRequest {
  readonly method: string;
  /** Path without the query string, e.g. `/v1/chat/completions`. */
  readonly path: string;
  readonly query: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The raw request body. */
  readonly raw: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly body: any;
}

/** One server-sent event as it goes over the wire. */
export interface SseEvent {
  /** The `event:` field; omitted for data-only streams (OpenAI chat completions). */
  readonly event?: string;
  /** The `data:` payload: an object is JSON-encoded, a string is sent as is (`[DONE]`). */
  readonly data: unknown;
}

/** What the server answers. Build replies with the helpers below or the provider modules. */
export type Reply =
  | { readonly kind: 'json'; readonly status?: number; readonly body: unknown; readonly headers?: Record<string, string>; readonly delayMs?: number }
  | {
      readonly kind: 'sse';
      readonly events: readonly SseEvent[];
      readonly headers?: Record<string, string>;
      /** Wait before sending the status line. */
      readonly delayMs?: number;
      /** Wait between events. @default 0 */
      readonly intervalMs?: number;
      /** Stop after this many events: `end` closes the response cleanly (a truncated stream), `destroy` resets the socket. */
      readonly cutAfter?: { readonly events: number; readonly how: 'end' | 'destroy' };
    }
  | { readonly kind: 'hangup' };

export type Handler = (request: RecordedRequest, index: number) => Reply | Promise<Reply>;

export interface ProviderServer {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  /** The base URL an SDK should be given (origin + the provider's path prefix, e.g. `/v1`). */
  readonly baseURL: string;
  /** Every request received, in order. */
  readonly requests: readonly RecordedRequest[];
  /** Requests received whose path ends with `pathSuffix` (all when omitted). */
  count(pathSuffix?: string): number;
  /** Replies served (in order) to the next requests instead of the handler's answer. */
  enqueue(...replies: Reply[]): void;
  /** Replaces the handler. */
  setHandler(handler: Handler): void;
  /** Forgets recorded requests and queued replies. */
  reset(): void;
  close(): Promise<void>;
}

export interface StartServerOptions {
  /** Path prefix included in `baseURL`. @default '' */
  prefix?: string;
  /** Port to listen on. @default 0 (a free port) */
  port?: number;
  /** Host to bind. @default '127.0.0.1' */
  host?: string;
}

export function json(body: unknown, init: { status?: number; headers?: Record<string, string>; delayMs?: number } = {}): Reply {
  return { kind: 'json', body, ...init };
}

export function sse(events: readonly SseEvent[], init: Omit<Extract<Reply, { kind: 'sse' }>, 'kind' | 'events'> = {}): Reply {
  return { kind: 'sse', events, ...init };
}

/** An HTTP error with a JSON body, e.g. `httpError(429, { error: { type: 'rate_limit_error', message: '...' } })`. */
export function httpError(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { kind: 'json', status, body, headers };
}

/** Closes the connection without any response (a network error for the client). */
export function hangup(): Reply {
  return { kind: 'hangup' };
}

/** Encodes events the way providers put them on the wire. */
export function encodeSse(events: readonly SseEvent[]): string {
  return events.map(encodeEvent).join('');
}

function encodeEvent(e: SseEvent): string {
  const data = typeof e.data === 'string' ? e.data : JSON.stringify(e.data);
  return (e.event !== undefined ? `event: ${e.event}\n` : '') + `data: ${data}\n\n`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts a local HTTP server on 127.0.0.1 answering every request through `handler`. */
export async function startServer(handler: Handler, options: StartServerOptions = {}): Promise<ProviderServer> {
  let current = handler;
  const queue: Reply[] = [];
  const requests: RecordedRequest[] = [];

  const server = createServer((req, res) => {
    void serve(req, res).catch(() => res.destroy());
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://local');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = undefined;
    }
    const recorded: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.search, headers, raw, body };
    const index = requests.push(recorded) - 1;
    const reply = queue.length > 0 ? queue.shift()! : await current(recorded, index);
    await send(reply, req, res);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${options.host ?? '127.0.0.1'}:${port}`;
  return {
    origin,
    baseURL: origin + (options.prefix ?? ''),
    requests,
    count: (suffix) => (suffix === undefined ? requests.length : requests.filter((r) => r.path.endsWith(suffix)).length),
    enqueue: (...replies) => void queue.push(...replies),
    setHandler: (h) => void (current = h),
    reset: () => {
      requests.length = 0;
      queue.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function send(reply: Reply, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (reply.kind === 'hangup') {
    req.socket.destroy();
    return;
  }
  if (reply.delayMs) await sleep(reply.delayMs);
  if (reply.kind === 'json') {
    const text = JSON.stringify(reply.body);
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(reply.headers ?? {}) });
    res.end(text);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', ...(reply.headers ?? {}) });
  res.flushHeaders();
  let closed = false;
  res.on('close', () => (closed = true));
  for (let i = 0; i < reply.events.length; i++) {
    if (reply.cutAfter && i === reply.cutAfter.events) {
      if (reply.cutAfter.how === 'destroy') res.destroy();
      else res.end();
      return;
    }
    if (closed) return;
    res.write(encodeEvent(reply.events[i]!));
    if (reply.intervalMs) await sleep(reply.intervalMs);
  }
  res.end();
}
