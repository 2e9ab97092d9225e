// The root README's quick start, run as written in a child process: the OpenAI SDK reads
// OPENAI_BASE_URL / OPENAI_API_KEY (pointed at the local wire server) and the Redis layer
// REDIS_URL (a redis-server of the test's own). On Node < 22 the code imports openai 6 (openai 7
// needs Node 22); nothing else is changed.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ProviderServer, sdkChoice, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { type RedisServerHandle, startRedisServer } from '@strata-cache/provider-test-servers/processes';
import { afterAll, beforeAll, expect, it } from 'vitest';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The first ```ts block under `## <heading>` in a markdown file. */
function codeBlock(file: string, heading: string): string {
  const text = readFileSync(file, 'utf8');
  const section = text.slice(text.indexOf(`\n## ${heading}\n`));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error(`no ts block under "## ${heading}" in ${file}`);
  return m[1]!;
}

let server: ProviderServer;
let redis: RedisServerHandle;
beforeAll(async () => {
  server = await startOpenAIServer();
  redis = await startRedisServer();
}, 20_000);
afterAll(async () => {
  await server?.close();
  await redis?.stop();
});

it('the root README quick start runs as written: a miss, then a hit from memory, and the script exits', async () => {
  let code = codeBlock(join(pkg, '..', '..', 'README.md'), 'Quick start');
  const { specifier } = sdkChoice().openai;
  if (specifier !== 'openai') code = code.replace("from 'openai'", `from '${specifier}'`);
  // Inside the package, so its dependencies (and the package itself, by name) resolve.
  const file = join(pkg, `.readme-quickstart-${process.pid}.mjs`);
  writeFileSync(file, code);
  try {
    const env = { ...process.env, REDIS_URL: redis.url, OPENAI_BASE_URL: server.baseURL, OPENAI_API_KEY: 'sk-test-readme' };
    const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: pkg, env, timeout: 20_000 });
    expect(stdout.split('\n')[0]).toBe('undefined'); // the miss
    const hit = stdout.slice(stdout.indexOf('{'), stdout.indexOf('}') + 1); // the hit's cache info
    expect(hit).toMatch(/hit: true/);
    expect(hit).toMatch(/status: 'hit'/);
    expect(hit).toMatch(/layer: 'memory'/);
    expect(stdout).toMatch(/\bhits: 1,/); // cache.stats()
    expect(server.count('/chat/completions')).toBe(1);
  } finally {
    rmSync(file, { force: true });
  }
}, 30_000);
