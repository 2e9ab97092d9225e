// What the gateway's test files share: provider servers, a gateway over them with a few keys,
// its log lines, and the secrets the no-secrets checks look for.
import { type Server, type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { type ProviderServer, sdkChoice, startAnthropicServer, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { type Gateway, type GatewayConfigInput, hashKey, startGateway } from '../src/index.js';

/** Gateway keys handed to callers (their hashes are in the config). */
export const KEYS = {
  acme: 'sgw_acme-SECRET-key-one',
  acme2: 'sgw_acme-SECRET-key-two',
  globex: 'sgw_globex-SECRET-key',
  revoked: 'sgw_revoked-SECRET-key',
} as const;
/** The credential the gateway holds for the upstreams. */
export const UPSTREAM_KEY = 'sk-upstream-SECRET-0123456789';
export const ADMIN_TOKEN = 'admin-SECRET-token-42';
export const SECRETS = [...Object.values(KEYS), UPSTREAM_KEY, ADMIN_TOKEN];

export function keyTable(): NonNullable<GatewayConfigInput['keys']> {
  return [
    { id: 'acme-one', tenant: 'acme', hash: hashKey(KEYS.acme) },
    { id: 'acme-two', tenant: 'acme', hash: hashKey(KEYS.acme2) },
    { id: 'globex', tenant: 'globex', hash: hashKey(KEYS.globex) },
    { id: 'old', tenant: 'acme', hash: hashKey(KEYS.revoked), revoked: true },
  ];
}

export interface Harness {
  gw: Gateway;
  openai: ProviderServer;
  anthropic: ProviderServer;
  logs: string[];
  /** POST JSON to the gateway with a key. */
  post(path: string, body: unknown, key?: string, headers?: Record<string, string>): Promise<Response>;
  admin(method: string, path: string, body?: unknown, token?: string): Promise<Response>;
  close(): Promise<void>;
}

type ConfigPatch = Omit<Partial<GatewayConfigInput>, 'cache'> & { cache?: Partial<NonNullable<GatewayConfigInput['cache']>> };

export async function harness(
  patch: ConfigPatch = {},
  upstreamPatch: { openai?: Record<string, unknown>; anthropic?: Record<string, unknown> } = {},
  /** Upstream servers of another harness, to run a second instance against the same upstreams (not closed by this one). */
  shared?: Pick<Harness, 'openai' | 'anthropic'>,
): Promise<Harness> {
  const openai = shared?.openai ?? (await startOpenAIServer());
  const anthropic = shared?.anthropic ?? (await startAnthropicServer());
  const logs: string[] = [];
  const config: GatewayConfigInput = {
    server: { port: 0 },
    admin: { port: 0, tokenHash: hashKey(ADMIN_TOKEN) },
    upstreams: {
      openai: { baseUrl: openai.baseURL, apiKey: { env: 'UPSTREAM_KEY' }, ...upstreamPatch.openai },
      anthropic: { baseUrl: anthropic.origin, apiKey: { env: 'UPSTREAM_KEY' }, ...upstreamPatch.anthropic },
    },
    keys: keyTable(),
    ...patch,
    cache: { policy: 'always', ...patch.cache },
  } as GatewayConfigInput;
  const gw = await startGateway({ config, env: { UPSTREAM_KEY }, logStream: { write: (line: string) => void logs.push(line) } });
  const h: Harness = {
    gw,
    openai,
    anthropic,
    logs,
    post: (path, body, key = KEYS.acme, headers = {}) =>
      fetch(gw.url + path, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(path.startsWith('/v1/messages') ? { 'x-api-key': key, 'anthropic-version': '2023-06-01' } : { authorization: `Bearer ${key}` }),
          ...headers,
        },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    admin: (method, path, body, token = ADMIN_TOKEN) =>
      fetch(gw.adminUrl + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      }),
    async close() {
      await gw.close();
      if (!shared) {
        await openai.close();
        await anthropic.close();
      }
    },
  };
  return h;
}

export const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'gpt-4o-mini',
  temperature: 0,
  messages: [{ role: 'user' as const, content }],
  ...extra,
});
export const message = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'claude-sonnet-4-5',
  max_tokens: 64,
  temperature: 0,
  messages: [{ role: 'user' as const, content }],
  ...extra,
});

/** A response's JSON body, loosely typed for assertions. */
export async function json(r: Response | Promise<Response>): Promise<any> {
  return (await r).json();
}

/** The official openai SDK this Node runs (7 on Node >= 22, 6 below; see provider-test-servers' sdkChoice). */
export async function openaiSdk(): Promise<typeof import('openai').OpenAI> {
  const { openai } = sdkChoice();
  const mod = (await import(openai.specifier)) as typeof import('openai');
  return mod.OpenAI;
}

/**
 * A raw HTTP exchange with a server (what fetch would not send as written: dot segments, slow or
 * broken requests): writes `parts` with `gapMs` between them, resolves what the server sent before closing.
 */
export function rawExchange(serverUrl: string, parts: readonly string[], gapMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new URL(serverUrl);
    const socket = connect(Number(u.port), u.hostname);
    let got = '';
    socket.on('data', (d) => (got += d.toString()));
    socket.on('close', () => resolve(got));
    // A server that answered and closed while parts were still being written resets the
    // connection: what it sent is the exchange. A reset before any answer is an error.
    socket.on('error', (error) => (got !== '' ? resolve(got) : reject(error)));
    let i = 0;
    const next = () => {
      // Once the server has answered, the rest of the parts are not sent.
      if (got !== '') return;
      if (i < parts.length && !socket.destroyed) socket.write(parts[i++]!);
      if (i < parts.length) setTimeout(next, gapMs);
    };
    next();
  });
}

/**
 * A gateway in front of an upstream server the test wrote itself (`http.createServer`), listening
 * on a free port: one OpenAI upstream, the acme key, every request cached. `close()` stops both.
 */
export async function gatewayInFrontOf(
  upstream: Server,
  extend?: Parameters<typeof startGateway>[0]['extend'],
): Promise<{ gw: Gateway; close(): Promise<void> }> {
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  const gw = await startGateway({
    config: {
      server: { port: 0, host: '127.0.0.1' },
      upstreams: { openai: { baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: { env: 'UPSTREAM_KEY' } } },
      keys: [{ id: 'acme', tenant: 'acme', hash: hashKey(KEYS.acme) }],
      cache: { policy: 'always' },
    },
    env: { UPSTREAM_KEY: 'sk-upstream-test' },
    logStream: { write: () => undefined },
    ...(extend ? { extend } : {}),
  });
  return {
    gw,
    close: async () => {
      await gw.close();
      upstream.closeAllConnections();
      await new Promise((r) => upstream.close(r));
    },
  };
}

/** A chat completion (OpenAI's wire format) whose message is `content`. */
export const completionBody = (content: string) =>
  JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
  });

/** An upstream written by the test: `answer` gets the last message of each chat request and its response. */
export function promptServer(answer: (prompt: string, res: ServerResponse) => void): Server {
  return createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => answer((JSON.parse(body) as { messages: Array<{ content: string }> }).messages.at(-1)!.content, res));
  });
}
