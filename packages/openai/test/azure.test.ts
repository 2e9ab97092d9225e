import { type ProviderServer, SECRET_KEY, memoryCache, plain, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { AzureOpenAI } from 'openai';
import { VERSION } from 'openai/version';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getCacheInfo, withCache } from '../src/index.js';

let server: ProviderServer;
const savedEnv = { version: process.env['OPENAI_API_VERSION'], endpoint: process.env['AZURE_OPENAI_ENDPOINT'] };
beforeAll(async () => {
  server = await startOpenAIServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  // The cached copy must not depend on the environment the original client did not need.
  delete process.env['OPENAI_API_VERSION'];
  delete process.env['AZURE_OPENAI_ENDPOINT'];
});
afterEach(() => {
  for (const [name, value] of [
    ['OPENAI_API_VERSION', savedEnv.version],
    ['AZURE_OPENAI_ENDPOINT', savedEnv.endpoint],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

const chat = (content: string) => ({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user' as const, content }] });

describe(`withCache(new AzureOpenAI(...)) (openai ${VERSION})`, () => {
  it('works without OPENAI_API_VERSION, calls the configured deployment with its api-version, and caches', async () => {
    const { cache } = memoryCache();
    const azure = new AzureOpenAI({ apiKey: SECRET_KEY, apiVersion: '2024-10-21', endpoint: server.origin, deployment: 'prod-4o', maxRetries: 0 });
    const client = withCache(azure, { cache });
    expect(client).toBeInstanceOf(AzureOpenAI);
    // The model names a different deployment: the client's deployment setting wins, as in the SDK.
    const live = await client.chat.completions.create({ ...chat('Hello Azure'), model: 'gpt-4o' });
    const sent = server.requests[0]!;
    expect(sent.path).toBe('/openai/deployments/prod-4o/chat/completions');
    expect(new URLSearchParams(sent.query).get('api-version')).toBe('2024-10-21');
    expect(sent.headers['api-key']).toBe(SECRET_KEY);
    await cache.flush();
    const hit = await client.chat.completions.create({ ...chat('Hello Azure'), model: 'gpt-4o' });
    expect(getCacheInfo(hit)).toMatchObject({ hit: true });
    expect(plain(hit)).toEqual(plain(live));
    expect(server.count()).toBe(1);
  });

  it('the api-version and the deployment are part of the key', async () => {
    const { cache } = memoryCache();
    const make = (apiVersion: string, deployment: string) =>
      withCache(new AzureOpenAI({ apiKey: SECRET_KEY, apiVersion, endpoint: server.origin, deployment, maxRetries: 0 }), { cache });
    await make('2024-10-21', 'prod-4o').chat.completions.create(chat('Which version?'));
    await cache.flush();
    await make('2025-04-01-preview', 'prod-4o').chat.completions.create(chat('Which version?'));
    await make('2024-10-21', 'canary-4o').chat.completions.create(chat('Which version?'));
    expect(server.requests.map((r) => `${r.path}${r.query}`)).toEqual([
      '/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21',
      '/openai/deployments/prod-4o/chat/completions?api-version=2025-04-01-preview',
      '/openai/deployments/canary-4o/chat/completions?api-version=2024-10-21',
    ]);
    await cache.flush();
    await make('2024-10-21', 'prod-4o').chat.completions.create(chat('Which version?'));
    expect(server.count()).toBe(3);
  });

  it('an Entra ID token provider stays a token provider in the cached copy', async () => {
    const { cache } = memoryCache();
    let calls = 0;
    const azureADTokenProvider = async () => `entra-token-${++calls}`;
    const client = withCache(
      new AzureOpenAI({ azureADTokenProvider, apiVersion: '2024-10-21', endpoint: server.origin, deployment: 'prod-4o', maxRetries: 0 }),
      { cache },
    );
    await client.chat.completions.create(chat('token one'));
    await client.chat.completions.create(chat('token two'));
    expect(server.requests.map((r) => r.headers['authorization'])).toEqual(['Bearer entra-token-1', 'Bearer entra-token-2']);
    expect(server.requests.every((r) => r.headers['api-key'] === undefined)).toBe(true);
  });
});
