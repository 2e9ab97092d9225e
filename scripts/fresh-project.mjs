// A new user's first hour, automated: the published packages as packed tarballs (`pnpm pack`),
// installed with plain npm into a fresh project outside the monorepo, on Node 22 with openai 7;
// then the root README's quick start and the invalidation README's quick start run as written
// (ES modules), the root quick start runs as CommonJS (plain `require`, and TypeScript compiled
// to CommonJS), and `tsc --strict` (module nodenext) type-checks both forms. The OpenAI SDK talks
// to a local wire-format server (OPENAI_BASE_URL), Redis is a redis-server of this script's own.
//
//   node scripts/fresh-project.mjs [--node 22] [--keep] [--no-build]
//
// Needs: the npm registry (openai, ioredis, lru-cache, typescript, @types/node; Node via
// `npx node@<major>`), `redis-server` on PATH. Prints one line per check and "Fresh project: ok".
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const repo = resolve(new URL('..', import.meta.url).pathname);
const args = process.argv.slice(2);
const nodeMajor = args.includes('--node') ? args[args.indexOf('--node') + 1] : '22';
const keep = args.includes('--keep');
const PNPM = ['-y', 'pnpm@10.34.9'];
const npmCli = resolve(execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim(), 'npm', 'bin', 'npm-cli.js');

const failures = [];
const step = async (what, fn) => {
  const t0 = Date.now();
  try {
    const out = await fn();
    console.log(`ok   ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return out;
  } catch (error) {
    failures.push(what);
    console.log(`FAIL ${what}\n${String(error.stdout ?? '')}${String(error.stderr ?? '')}${error.stdout || error.stderr ? '' : error.message}`);
    return undefined;
  }
};
const run = (cmd, argv, options = {}) => execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
/** Node `nodeMajor` from the npm registry (`npx node@22`). */
const node = (argv, options) => run('npx', ['-y', `node@${nodeMajor}`, ...argv], options);
/** The same without blocking this process (it serves the wire server the program talks to). */
const nodeAsync = (argv, options) =>
  new Promise((resolve) => {
    execFile('npx', ['-y', `node@${nodeMajor}`, ...argv], { encoding: 'utf8', timeout: 60_000, ...options }, (error, stdout, stderr) =>
      resolve({ status: error ? (error.code ?? null) : 0, signal: error?.signal, stdout, stderr }),
    );
  });

/** The first ```ts block under `## <heading>` of a markdown file. */
function codeBlock(file, heading) {
  const text = readFileSync(file, 'utf8');
  const m = /```ts\n([\s\S]*?)```/.exec(text.slice(text.indexOf(`\n## ${heading}\n`)));
  if (!m) throw new Error(`no ts block under "## ${heading}" in ${file}`);
  return m[1];
}

/** The same program in CommonJS: imports become require calls, the rest runs in an async function. */
function toCommonJs(code) {
  const lines = code.split('\n');
  const head = [];
  const body = [];
  for (const line of lines) {
    const named = /^import \{ (.+) \} from '([^']+)';/.exec(line);
    const dflt = /^import (\w+) from '([^']+)';/.exec(line);
    if (named) head.push(`const { ${named[1]} } = require('${named[2]}');`);
    // `import OpenAI from 'openai'`: the class is also a named export, as the README says.
    else if (dflt) head.push(`const { ${dflt[1]} } = require('${dflt[2]}');`);
    else body.push(line);
  }
  return `'use strict';\n${head.join('\n')}\n\nasync function main() {\n${body.join('\n')}\n}\nmain().catch((error) => {\n  console.error(error);\n  process.exitCode = 1;\n});\n`;
}

/** The same program as a TypeScript CommonJS module (.cts): ES import syntax, compiled to require. */
function toCommonJsTs(code) {
  const lines = code.split('\n');
  const imports = lines.filter((l) => l.startsWith('import '));
  const body = lines.filter((l) => !l.startsWith('import '));
  return `${imports.join('\n')}\n\nasync function main(): Promise<void> {\n${body.join('\n')}\n}\nvoid main();\n`;
}

const dir = mkdtempSync(join(tmpdir(), 'strata-fresh-'));
const tarballs = join(dir, 'tarballs');
const app = join(dir, 'app');
mkdirSync(tarballs);
mkdirSync(app);
console.log(`fresh project in ${dir} (Node ${nodeMajor}, openai 7)`);
let redis;
let server;
try {
  if (!args.includes('--no-build')) await step('build (pnpm build)', () => run('npx', [...PNPM, 'build'], { cwd: repo }));

  const published = readdirSync(join(repo, 'packages'))
    .map((d) => ({ dir: join(repo, 'packages', d), pkg: JSON.parse(readFileSync(join(repo, 'packages', d, 'package.json'), 'utf8')) }))
    .filter((p) => !p.pkg.private);
  await step(`pnpm pack (${published.length} packages)`, () => {
    for (const p of published) run('npx', [...PNPM, 'pack', '--pack-destination', tarballs], { cwd: p.dir });
  });
  const tgz = Object.fromEntries(
    published.map((p) => [
      p.pkg.name,
      join(
        tarballs,
        readdirSync(tarballs).find((f) => f.startsWith(p.pkg.name.replace('@', '').replace('/', '-') + '-')),
      ),
    ]),
  );

  await step('every source map in the tarballs points at a file in the tarball', () => {
    const broken = [];
    for (const [name, file] of Object.entries(tgz)) {
      const listed = new Set(run('tar', ['-tzf', file]).split('\n').filter(Boolean));
      for (const entry of listed) {
        if (!entry.endsWith('.map')) continue;
        const { sources = [] } = JSON.parse(run('tar', ['-xzOf', file, entry]));
        for (const source of sources) {
          const path = resolve('/', entry, '..', source).slice(1);
          if (!listed.has(path)) broken.push(`${name}: ${entry} → ${path}`);
        }
      }
    }
    if (broken.length) throw new Error(broken.slice(0, 10).join('\n'));
  });

  const wanted = [
    '@strata-cache/core',
    '@strata-cache/layer-memory',
    '@strata-cache/layer-redis',
    '@strata-cache/http',
    '@strata-cache/openai',
    '@strata-cache/invalidation',
  ];
  const local = Object.fromEntries(wanted.map((n) => [n, `file:${tgz[n]}`]));
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify(
      {
        name: 'strata-fresh-project',
        private: true,
        dependencies: { ...local, openai: '^7', ioredis: '^5', 'lru-cache': '^11' },
        devDependencies: { typescript: '~5.9', '@types/node': `^${nodeMajor}` },
        // The adapters' own dependencies on other Strata packages: the tarballs too.
        overrides: local,
      },
      null,
      2,
    ),
  );
  await step('npm install (tarballs, openai@7, ioredis, lru-cache, typescript)', () => node([npmCli, 'install', '--no-audit', '--no-fund'], { cwd: app }));
  await step('installed openai is 7.x', () => {
    const v = JSON.parse(readFileSync(join(app, 'node_modules', 'openai', 'package.json'), 'utf8')).version;
    if (!v.startsWith('7.')) throw new Error(`openai ${v}`);
  });

  const quick = codeBlock(join(repo, 'README.md'), 'Quick start');
  const invalidation = codeBlock(join(repo, 'packages', 'invalidation', 'README.md'), 'Quick start');
  writeFileSync(join(app, 'quickstart.mjs'), quick);
  writeFileSync(join(app, 'quickstart.cjs'), toCommonJs(quick));
  writeFileSync(join(app, 'quickstart.mts'), quick);
  writeFileSync(join(app, 'quickstart-cjs.cts'), toCommonJsTs(quick));
  writeFileSync(join(app, 'invalidation.mjs'), invalidation);
  writeFileSync(join(app, 'invalidation.mts'), invalidation);
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          types: ['node'],
          skipLibCheck: false,
          outDir: 'out',
        },
        files: ['quickstart.mts', 'quickstart-cjs.cts', 'invalidation.mts'],
      },
      null,
      2,
    ),
  );
  const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc');
  await step('tsc --strict (module nodenext): the quick starts as ES modules and as CommonJS', () => node([tsc, '-p', '.'], { cwd: app }));

  const testUtils = await import(pathToFileURL(join(repo, 'packages', 'test-utils', 'dist', 'index.js')).href);
  const servers = await import(pathToFileURL(join(repo, 'packages', 'provider-test-servers', 'dist', 'index.js')).href);
  redis = await testUtils.startRedisServer();
  server = await servers.startOpenAIServer();
  const env = { ...process.env, REDIS_URL: redis.url, OPENAI_BASE_URL: server.baseURL, OPENAI_API_KEY: 'sk-fresh-project' };
  let db = 0;
  const quickstartRan = (label, file) =>
    step(`README quick start runs (${label}): a miss, then a memory hit, then the process exits`, async () => {
      const before = server.count('/chat/completions');
      // A Redis database of its own: each run starts empty.
      const r = await nodeAsync([file], { cwd: app, env: { ...env, REDIS_URL: `${redis.url}/${++db}` } });
      if (r.status !== 0) throw Object.assign(new Error(`exit ${r.status}${r.signal ? ` (${r.signal})` : ''}`), { stdout: r.stdout, stderr: r.stderr });
      if (r.stdout.split('\n')[0] !== 'undefined' || !/hit: true/.test(r.stdout) || !/layer: 'memory'/.test(r.stdout))
        throw Object.assign(new Error('unexpected output'), { stdout: r.stdout });
      if (server.count('/chat/completions') - before !== 1) throw new Error(`${server.count('/chat/completions') - before} upstream calls, not 1`);
    });
  await quickstartRan('ES module, as written', 'quickstart.mjs');
  await quickstartRan('CommonJS, require()', 'quickstart.cjs');
  await quickstartRan('TypeScript compiled to CommonJS', join('out', 'quickstart-cjs.cjs'));
  await step('invalidation README quick start runs (ES module, as written) and exits', async () => {
    const r = await nodeAsync(['invalidation.mjs'], { cwd: app, env });
    if (r.status !== 0 || !/cache invalidation event/.test(r.stdout))
      throw Object.assign(new Error(`exit ${r.status}`), { stdout: r.stdout, stderr: r.stderr });
  });
} finally {
  await server?.close();
  await redis?.stop();
  if (keep) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
console.log(failures.length ? `Fresh project: ${failures.length} failed (${failures.join('; ')})` : 'Fresh project: ok');
process.exit(failures.length ? 1 : 0);
