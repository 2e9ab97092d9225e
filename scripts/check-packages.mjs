// Checks every published package as users get it: package.json hygiene (ESM, exports map with
// types first and one `default` condition for import and require, files allowlist, sideEffects
// false, engines that allow require(esm), repository/homepage/bugs, core as a peer), source maps
// whose sources are shipped, and a smoke import() and require() of every built entry point with
// named exports only. Prints "Packages: N passed, N failed".
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
// Node loads ES modules through require() without a flag from 20.19 and 22.12 on.
const ENGINES = '^20.19.0 || >=22.12.0';
const REPOSITORY = 'git+https://github.com/strata-cache/strata.git';

/** Every file under `dir`, relative to `base`. */
function walk(dir, base = dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? walk(full, base) : [relative(base, full)];
  });
}

/** Whether `files` (an allowlist with `!` exclusions of a folder or `folder/*.ext`) ships `path`. */
function ships(files, path) {
  const matches = (pattern) => {
    if (pattern.includes('*')) {
      const [folder, ext] = pattern.split('/*');
      return dirname(path) === folder && path.endsWith(ext);
    }
    return path === pattern || path.startsWith(pattern + '/');
  };
  return files.some((f) => !f.startsWith('!') && matches(f)) && !files.some((f) => f.startsWith('!') && matches(f.slice(1)));
}

const root = new URL('..', import.meta.url).pathname;
const failures = [];
let passed = 0;
for (const dir of readdirSync(join(root, 'packages'))) {
  const pkgPath = join(root, 'packages', dir, 'package.json');
  if (!existsSync(pkgPath)) continue;
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
  if (pkg.private) continue;
  const problems = [];
  const check = (ok, what) => ok || problems.push(what);
  check(pkg.name?.startsWith('@strata-cache/'), 'name is not @strata-cache/*');
  check(pkg.type === 'module', 'type is not "module"');
  check(pkg.sideEffects === false, 'sideEffects is not false');
  check(pkg.engines?.node === ENGINES, `engines.node is not "${ENGINES}"`);
  check(
    pkg.repository?.url === REPOSITORY && pkg.repository?.directory === `packages/${dir}`,
    `repository is not { url: "${REPOSITORY}", directory: "packages/${dir}" }`,
  );
  check(typeof pkg.homepage === 'string' && pkg.homepage.includes(`/packages/${dir}`), 'homepage does not point at the package');
  check(typeof pkg.bugs?.url === 'string', 'no bugs.url');
  check(Array.isArray(pkg.files) && pkg.files.includes('dist'), 'files does not list dist');
  check(pkg.publishConfig?.access === 'public', 'publishConfig.access is not public');
  const dot = pkg.exports?.['.'];
  check(dot && Object.keys(dot)[0] === 'types', 'exports["."] does not list types first');
  const entries = Object.entries(pkg.exports ?? {}).filter(([, v]) => typeof v === 'object');
  for (const [sub, conditions] of entries) {
    check(Object.keys(conditions).join() === 'types,default', `exports["${sub}"] is not { types, default } (one condition for import and require)`);
  }
  const pkgDir = join(root, 'packages', dir);
  for (const map of walk(join(pkgDir, 'dist'))
    .filter((f) => f.endsWith('.map'))
    .map((f) => join('dist', f))) {
    if (!ships(pkg.files ?? [], map)) continue;
    const { sources = [] } = JSON.parse(readFileSync(join(pkgDir, map), 'utf8'));
    for (const source of sources) {
      const path = relative(pkgDir, resolve(pkgDir, dirname(map), source));
      if (!existsSync(join(pkgDir, path)) || !ships(pkg.files ?? [], path)) problems.push(`${map} points to ${path}, which is not shipped`);
    }
  }
  if (pkg.name !== '@strata-cache/core') {
    check(pkg.peerDependencies?.['@strata-cache/core'], '@strata-cache/core is not a peer dependency');
    check(!pkg.dependencies?.['@strata-cache/core'], '@strata-cache/core is a regular dependency (must be a peer)');
  }
  check(existsSync(join(root, 'packages', dir, 'README.md')), 'no README.md');
  for (const [sub, conditions] of entries) {
    const entry = conditions.default ?? conditions.import;
    if (!entry) continue;
    const file = join(pkgDir, entry);
    if (!existsSync(file)) {
      problems.push(`${entry} is not built`);
      continue;
    }
    try {
      const mod = await import(pathToFileURL(file).href);
      check(!('default' in mod), `${sub} has a default export (named exports only)`);
      check(Object.keys(mod).length > 0, `${sub} exports nothing`);
      // CommonJS users: require() of the same entry gives the same named exports.
      const required = require(file);
      check(Object.keys(required).sort().join() === Object.keys(mod).sort().join(), `require() of ${sub} does not give the named exports of import()`);
    } catch (error) {
      problems.push(`loading ${sub} (${entry}) failed: ${error.message}`);
    }
  }
  if (problems.length) failures.push(`${pkg.name}: ${problems.join('; ')}`);
  else passed++;
  console.log(`${problems.length ? 'FAIL' : 'ok  '} ${pkg.name}${problems.length ? ' — ' + problems.join('; ') : ''}`);
}
console.log(`Packages: ${passed} passed, ${failures.length} failed`);
process.exit(failures.length ? 1 : 0);
