// Runs every package's tests through Turborepo (one package at a time: the machine is small and
// several suites start their own redis-server), streams the output, and ends with one plain
// summary line summed over all vitest runs: "Tests: N passed, N failed[, N skipped]".
import { spawn, spawnSync } from 'node:child_process';

const args = ['run', 'build', 'test', '--concurrency=1', ...process.argv.slice(2)];
const child = spawn('turbo', args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
let log = '';
const relay = (stream, out) =>
  stream.on('data', (d) => {
    out.write(d);
    log += d.toString();
  });
relay(child.stdout, process.stdout);
relay(child.stderr, process.stderr);
child.on('error', (error) => {
  console.error(`could not start turbo (${error.message}); run this through pnpm: npx -y pnpm@10.34.9 test`);
  process.exit(1);
});
child.on('close', (code) => {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the ANSI colour codes of the runners' output
  const plain = log.replace(/\u001b\[[0-9;]*m/g, '');
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let runs = 0;
  for (const line of plain.split('\n')) {
    const m = /\bTests\s+(.*)\(\d+\)\s*$/.exec(line);
    if (!m) continue;
    runs++;
    passed += Number(/(\d+) passed/.exec(m[1])?.[1] ?? 0);
    failed += Number(/(\d+) failed/.exec(m[1])?.[1] ?? 0);
    skipped += Number(/(\d+) skipped/.exec(m[1])?.[1] ?? 0);
  }
  if (code !== 0 && failed === 0) failed = 1; // a suite that crashed before reporting still fails the run
  // The built packages as users get them (dist import, package.json hygiene).
  const check = spawnSync(process.execPath, [new URL('./check-packages.mjs', import.meta.url).pathname], { encoding: 'utf8' });
  process.stdout.write(check.stdout + check.stderr);
  const pk = /Packages: (\d+) passed, (\d+) failed/.exec(check.stdout);
  passed += Number(pk?.[1] ?? 0);
  failed += pk ? Number(pk[2]) : 1;
  console.log(`\n${runs} vitest runs + package checks`);
  console.log(`Tests: ${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
  process.exit(code === 0 && check.status === 0 ? 0 : 1);
});
