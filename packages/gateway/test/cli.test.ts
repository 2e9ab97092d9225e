// The two commands as an operator runs them: `strata-gateway --config` (start, reload on
// SIGHUP, drain on SIGTERM) and the `strata` admin CLI printing tables.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type ProviderServer, chatCompletionChunks, sse, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../src/index.js';
import { ADMIN_TOKEN, KEYS, UPSTREAM_KEY, chat, keyTable } from './helpers.js';

const run = promisify(execFile);
const dist = (name: string) => new URL(`../dist/cli/${name}.js`, import.meta.url).pathname;

let dir: string;
let upstream: ProviderServer;
let proc: ChildProcess;
const lines: string[] = [];
let url = '';
let adminUrl = '';
const configPath = () => join(dir, 'strata.config.json');

function writeConfig(keys = keyTable()) {
  writeFileSync(
    configPath(),
    JSON.stringify({
      server: { port: 0, shutdownTimeoutMs: 10_000 },
      admin: { port: 0, token: { file: 'admin-token' } },
      upstreams: { openai: { baseUrl: upstream.baseURL, apiKey: { env: 'UPSTREAM_KEY' } } },
      keys,
      cache: { policy: 'always' },
      invalidation: {
        rules: [
          { type: 'tag', tags: ['topic:refunds'], match: { prompt: '/refund/i' } },
          { type: 'event', event: 'policy_changed', targets: ['topic:refunds'] },
        ],
      },
    }),
  );
}

const strata = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [dist('strata'), ...args], {
    cwd: dir,
    env: { ...process.env, STRATA_ADMIN_URL: adminUrl, STRATA_ADMIN_TOKEN: ADMIN_TOKEN, ...env },
  }).catch((e: { stdout: string; stderr: string; code: number }) => e);

const post = (body: unknown, key: string = KEYS.acme) =>
  fetch(url + '/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strata-gateway-'));
  upstream = await startOpenAIServer();
  writeFileSync(join(dir, 'admin-token'), ADMIN_TOKEN + '\n');
  writeConfig();
  const check = await run(process.execPath, [dist('gateway'), '--config', configPath(), '--check'], { env: { ...process.env, UPSTREAM_KEY } });
  expect(check.stdout).toMatch(/config ok/);
  expect(check.stdout).toMatch(/keys\s+4 \(1 revoked\), tenants: acme, globex/);
  proc = spawn(process.execPath, [dist('gateway'), '--config', configPath()], { env: { ...process.env, UPSTREAM_KEY }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  proc.stderr!.on('data', (d: Buffer) => lines.push(d.toString()));
  const started = await waitForLine(/gateway listening/);
  ({ url, adminUrl } = JSON.parse(started) as { url: string; adminUrl: string });
});

afterAll(async () => {
  if (proc.exitCode === null) proc.kill('SIGKILL');
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

async function waitForLine(re: RegExp, ms = 15_000): Promise<string> {
  const until = Date.now() + ms;
  for (;;) {
    const line = lines.find((l) => re.test(l));
    if (line) return line;
    if (Date.now() > until) throw new Error(`no log line ${re} in:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('strata CLI', () => {
  it('stats, keys, explain, inspect print readable tables', async () => {
    await post(chat('How do I get a refund?'));
    await post(chat('How do I get a refund?'));
    await post(chat('Where is my parcel?'), KEYS.globex);
    const stats = await strata(['stats']);
    expect(stats.stdout).toMatch(/requests\s+hits\s+misses\s+hit rate/);
    expect(stats.stdout).toMatch(/^\s*3\s+1\s+2\s+33\.3%/m);
    expect(stats.stdout).toMatch(/waited for similar \(served\)/);
    expect(stats.stdout).toMatch(/^\s*3\s+1\s+2\s+33\.3%\s+0\s+0\s+0 \(0\)\s+2\s/m);
    expect(stats.stdout).toMatch(/^l1\s+1\s+2/m);

    const keys = await strata(['keys']);
    expect(keys.stdout).toMatch(/^old\s+acme\s+default\s+yes$/m);

    writeFileSync(join(dir, 'a.json'), JSON.stringify(chat('How do I get a refund?')));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(chat('How do I get a refund?', { temperature: 0.2, user: 'u-1' })));
    const explain = await strata(['explain', 'a.json', 'b.json', '--tenant', 'acme']);
    expect(explain.stdout).toMatch(/DIFFERENT KEYS/);
    expect(explain.stdout).toMatch(/^\$\.temperature\s+changed\s+0\s+0\.2$/m);
    expect(explain.stdout).toMatch(/do not change the key[\s\S]*\$\.user\s+added/);
    const same = await strata(['explain', 'a.json', 'a.json', '--key', 'acme-one']);
    expect(same.stdout).toMatch(/SAME KEY/);

    const inspect = await strata(['inspect', 'a.json', '--tenant', 'acme']);
    expect(inspect.stdout).toMatch(/^key v2:acme\/default\/v0:/m);
    expect(inspect.stdout).toMatch(/^l1\s+yes\s+\S+\s+[\d.]+ s\s+3600\.0 s\s+topic:refunds/m);
  });

  it('purge by tag, prompt and tenant; bump; events; errors', async () => {
    const tag = await strata(['purge', '--tag', 'topic:refunds', '--tenant', 'acme']);
    expect(tag.stdout).toMatch(/purged by tag: 1 entries/);
    await post(chat('How do I get a refund?'));
    const prompt = await strata(['purge', '--prompt', '/REFUND/i']);
    expect(prompt.stdout).toMatch(/pattern\s+scanned\s+purged\s+complete/);
    expect(prompt.stdout).toMatch(/\/REFUND\/i\s+\d+\s+1\s+yes/);
    const tenant = await strata(['purge', '--tenant', 'globex']);
    expect(tenant.stdout).toMatch(/purged by scope: 1 entries/);
    await post(chat('refund again'));
    const event = await strata(['event', 'policy_changed']);
    expect(event.stdout).toMatch(/event policy_changed: 1 entries removed/);
    const bump = await strata(['bump', '--tenant', 'acme']);
    expect(bump.stdout).toMatch(/^acme\s+default\s+1\s+no$/m);

    const wrong = (await strata(['stats'], { STRATA_ADMIN_TOKEN: 'nope' })) as { code: number; stderr: string };
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/401: wrong admin token/);
    const usage = (await strata(['purge'])) as { code: number; stderr: string };
    expect(usage.code).toBe(2);
    const hashed = await new Promise<string>((resolve) => {
      const p = spawn(process.execPath, [dist('strata'), 'hash-key']);
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.on('close', () => resolve(out.trim()));
      p.stdin.end(KEYS.acme + '\n');
    });
    expect(hashed).toBe(hashKey(KEYS.acme));
  });
});

describe('strata-gateway process', () => {
  it('SIGHUP reloads the keys: a key revoked in the file stops working', async () => {
    expect((await post(chat('hup'), KEYS.globex)).status).toBe(200);
    writeConfig(keyTable().map((k) => (k.id === 'globex' ? { ...k, revoked: true } : k)));
    proc.kill('SIGHUP');
    await waitForLine(/keys reloaded/);
    expect((await post(chat('hup'), KEYS.globex)).status).toBe(401);
  });

  it('SIGTERM drains a stream in flight, then exits 0 and stops listening', async () => {
    // A slow stream: 8 events 150 ms apart.
    upstream.enqueue(
      sse(chatCompletionChunks({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one two three four five six' }] } as never, 99), {
        intervalMs: 150,
      }),
    );
    const streaming = fetch(url + '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.acme}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...chat('slow stream'), stream: true }),
    });
    const res = await streaming;
    expect(res.status).toBe(200);
    const text = res.text();
    proc.kill('SIGTERM');
    await waitForLine(/draining requests and streams/);
    const body = await text;
    expect(body.trim().endsWith('data: [DONE]')).toBe(true);
    const exit = await new Promise<number | null>((resolve) => (proc.exitCode !== null ? resolve(proc.exitCode) : proc.once('exit', (code) => resolve(code))));
    expect(exit).toBe(0);
    expect(lines.some((l) => /gateway stopped/.test(l))).toBe(true);
    await expect(fetch(url + '/healthz')).rejects.toThrow();
  });
});
