// The config: defaults, and bad configs refused with every problem named by its path.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidOptionError } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { createGateway, hashKey, loadConfig, parseConfig } from '../src/index.js';

const minimal = () => ({
  upstreams: { openai: { baseUrl: 'https://api.openai.com/v1', apiKey: { env: 'OPENAI_API_KEY' } } },
  keys: [{ id: 'app', tenant: 'acme', hash: hashKey('k') }],
});

function problems(input: unknown): string {
  try {
    parseConfig(input);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return (error as Error).message;
  }
  throw new Error('accepted');
}

describe('config', () => {
  it('fills in defaults for a minimal config', () => {
    const c = parseConfig(minimal());
    expect(c.server).toMatchObject({ host: '127.0.0.1', port: 8080, bodyLimitBytes: 8 * 1024 * 1024, requestTimeoutMs: 30_000 });
    expect(c.admin.port).toBe(false);
    expect(c.cache).toMatchObject({ policy: 'deterministic', defaultTtlMs: 3_600_000, l1: { maxEntries: 10_000 } });
    expect(c.upstreams.openai).toMatchObject({ credentials: 'gateway', timeoutMs: 600_000, idleTimeoutMs: 120_000 });
    expect(c.keys[0]!.revoked).toBe(false);
  });

  it('names every problem by its path', () => {
    const msg = problems({
      ...minimal(),
      upstreams: { openai: { baseUrl: 'ftp://x', apiKey: 'sk-literal' }, anthropic: { baseUrl: 'https://api.anthropic.com' } },
      keys: [
        { id: 'a', tenant: 'acme', hash: 'plain-text-key' },
        { id: 'a', tenant: 'acme', hash: hashKey('k2'), extra: 1 },
      ],
      cache: { l2: { url: 'http://redis' }, policy: 'sometimes', l3: { embedder: 'openai' } },
      serverr: {},
    });
    for (const line of [
      /config\.upstreams\.openai\.baseUrl: must be an http\(s\) URL/,
      /config\.upstreams\.openai\.apiKey: must be \{ "env": "VARIABLE" \} or \{ "file": "path" \}/,
      /config\.upstreams\.anthropic\.apiKey: is required unless credentials is "passthrough"/,
      /config\.keys\[0\]\.hash: must be "sha256:<64 lower-case hex digits>" \(make one with `strata hash-key`\)/,
      /config\.keys\[1\]: unknown field "extra"/,
      /config\.cache\.l2\.url: must be a redis:\/\/ or rediss:\/\/ URL/,
      /config\.cache\.policy: /,
      /config\.cache\.l3\.embedder: must be "use"/,
      /config: unknown field "serverr"/,
    ]) {
      expect(msg).toMatch(line);
    }
    expect(problems({ ...minimal(), keys: [minimal().keys[0], minimal().keys[0]] })).toMatch(
      /keys\[1\]\.id: duplicates the id "app"[\s\S]*keys\[1\]\.hash: duplicates the hash/,
    );
    expect(problems({ ...minimal(), admin: { port: 9000 } })).toMatch(/config\.admin: needs exactly one of "token"/);
    expect(problems({ ...minimal(), upstreams: {} })).toMatch(/config\.upstreams: needs "openai" or "anthropic"/);
    expect(problems({ ...minimal(), keys: [] })).toMatch(/config\.keys: needs at least one key/);
  });

  it('L3 replication and calibration sharing need L2; their fields are checked', () => {
    const l3 = (extra: Record<string, unknown>) => ({ ...minimal(), cache: { l3: { embedder: 'use', ...extra } } });
    expect(problems(l3({ replication: { streams: 4 } }))).toMatch(/config\.cache\.l3\.replication: needs cache\.l2/);
    expect(problems(l3({ calibration: { share: true } }))).toMatch(/config\.cache\.l3\.calibration\.share: needs cache\.l2/);
    const bad = problems({
      ...minimal(),
      cache: { l2: { url: 'redis://127.0.0.1:6379' }, l3: { embedder: 'use', replication: { streams: 0, tenant: 'acme' } } },
    });
    expect(bad).toMatch(/config\.cache\.l3\.replication\.streams: /);
    expect(bad).toMatch(/config\.cache\.l3\.replication: unknown field "tenant"/);
    expect(problems(l3({ calibration: { budget: 0.01 } }))).toMatch(/unknown field "budget"/);
    // Without L2 the defaults leave replication off; an explicit false or plain calibration is fine.
    const c = parseConfig(l3({ replication: false, calibration: { maxWrongRate: 0.02 } }));
    expect(c.cache.l3).toMatchObject({ replication: false, calibration: { maxWrongRate: 0.02 } });
    expect(parseConfig(l3({})).cache.l3).toMatchObject({ calibration: false });
    // The answer-group rule: on/off or its numbers; not with calibration.
    expect(parseConfig(l3({ answerGroups: { floor: 0.9, maxMaps: 8 } })).cache.l3).toMatchObject({ answerGroups: { floor: 0.9, maxMaps: 8 } });
    expect(parseConfig(l3({ answerGroups: false, calibration: true })).cache.l3).toMatchObject({ answerGroups: false, calibration: true });
    expect(problems(l3({ answerGroups: true, calibration: true }))).toMatch(/config\.cache\.l3\.answerGroups: cannot be combined with calibration/);
    expect(problems(l3({ answerGroups: { floors: 0.9 } }))).toMatch(/unknown field "floors"/);
    expect(problems(l3({ answerGroups: 'on' }))).toMatch(/config\.cache\.l3\.answerGroups: /);
  });

  it('a missing secret or a bad rule stops start-up naming the variable or the rule, never a value', async () => {
    await expect(createGateway({ config: minimal(), env: {} })).rejects.toThrow(
      /upstreams\.openai\.apiKey reads the environment variable OPENAI_API_KEY, which is not set/,
    );
    await expect(
      createGateway({ config: { ...minimal(), invalidation: { rules: [{ type: 'maxAge', maxAgeMs: -1 }] } }, env: { OPENAI_API_KEY: 'sk-x' } }),
    ).rejects.toThrow(/invalidation: /);
  });

  it('reads a file, and says so when it is not JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-config-'));
    writeFileSync(join(dir, 'ok.json'), JSON.stringify(minimal()));
    writeFileSync(join(dir, 'bad.json'), '{ "keys": [ ');
    expect(loadConfig(join(dir, 'ok.json')).dir).toBe(dir);
    expect(() => loadConfig(join(dir, 'bad.json'))).toThrow(/bad\.json is not valid JSON/);
    expect(() => loadConfig(join(dir, 'missing.json'))).toThrow(/cannot read the config file/);
  });
});
