// The README's quick start, run as written in a child process on the built package (REDIS_URL
// points at a redis-server of the test's own).
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type RedisServerHandle, startRedisServer } from '@strata-cache/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');

let redis: RedisServerHandle;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});

it('the README quick start runs as written and exits', async () => {
  const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
  const code = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('\n## Quick start\n')))![1]!;
  // Inside the package, so its dependencies (and the package itself, by name) resolve.
  const file = join(pkg, `.readme-quickstart-${process.pid}.mjs`);
  writeFileSync(file, code);
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: pkg, env: { ...process.env, REDIS_URL: redis.url }, timeout: 20_000 });
    // The audit records of the event and of the admin purge.
    expect(stdout).toMatch(/^cache invalidation event event product_updated /m);
    expect(stdout).toMatch(/^cache invalidation prompt-purge prompt matches \/acme corp\/i /m);
  } finally {
    rmSync(file, { force: true });
  }
});
