// Checks the release plan the pending changesets make (`changeset status`), as CI should before
// anything is published:
//   - no package leaves 0.x unless a changeset asks for a major of that very package (changesets
//     bumps a package to 1.0.0 by itself when a peer it needs leaves the peer range);
//   - every dependency and peer dependency on another package of this repo is satisfied by the
//     version that package will have once the plan is applied (`workspace:^` as pnpm publishes it);
//   - no published package depends on a private one.
// Prints the plan and "Release plan: ok" or the problems (exit code 1).
//
//   node scripts/release-plan.mjs
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const require = createRequire(join(root, 'package.json'));
const semver = createRequire(require.resolve('@changesets/cli/package.json'))('semver');

const dir = mkdtempSync(join(tmpdir(), 'strata-release-plan-'));
let plan;
try {
  const out = join(dir, 'plan.json');
  execFileSync(process.execPath, [require.resolve('@changesets/cli/bin.js'), 'status', '--output', out], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  plan = JSON.parse(readFileSync(out, 'utf8'));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const packages = new Map();
for (const d of readdirSync(join(root, 'packages'))) {
  const file = join(root, 'packages', d, 'package.json');
  if (existsSync(file)) {
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    packages.set(pkg.name, pkg);
  }
}
const next = new Map([...packages].map(([name, pkg]) => [name, pkg.version]));
for (const r of plan.releases) if (r.type !== 'none') next.set(r.name, r.newVersion);
const askedMajor = new Set(plan.changesets.flatMap((c) => c.releases.filter((r) => r.type === 'major').map((r) => r.name)));

const problems = [];
for (const r of plan.releases) {
  if (r.type === 'none') continue;
  console.log(`${r.name.padEnd(38)} ${r.oldVersion.padStart(7)} → ${r.newVersion.padEnd(7)} (${r.type})`);
  if (semver.major(r.oldVersion) === 0 && semver.major(r.newVersion) >= 1 && !askedMajor.has(r.name)) {
    problems.push(
      `${r.name} would go ${r.oldVersion} → ${r.newVersion} though no changeset asks for a major: a package it peers on leaves the peer range. Widen that peer range (e.g. "^0.1.0 || ^0.2.0") or move it to the new minor, and add a changeset for ${r.name}.`,
    );
  }
}

for (const [name, pkg] of packages) {
  if (pkg.private) continue;
  for (const field of ['dependencies', 'peerDependencies']) {
    for (const [dep, spec] of Object.entries(pkg[field] ?? {})) {
      const target = packages.get(dep);
      if (!target) continue;
      if (target.private) {
        problems.push(`${name} ${field} names the private package ${dep}`);
        continue;
      }
      const version = next.get(dep);
      let range = spec;
      if (spec.startsWith('workspace:')) {
        const w = spec.slice('workspace:'.length);
        // What pnpm writes into the published package.json.
        range = w === '*' ? version : w === '^' || w === '~' ? `${w}${version}` : w;
      }
      if (!semver.satisfies(version, range)) problems.push(`${name} ${field}["${dep}"] is "${spec}", which ${dep}@${version} does not satisfy`);
    }
  }
}

if (problems.length) {
  console.log(`\nRelease plan: ${problems.length} problem(s)`);
  for (const p of problems) console.log(`- ${p}`);
  process.exit(1);
}
console.log('\nRelease plan: ok');
