// Checks every published package as users get it: package.json hygiene (ESM, exports map with
// types first, files allowlist, sideEffects false, engines, core as a peer) and a smoke import()
// of the built dist with named exports only. Prints "Packages: N passed, N failed".
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

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
  check(typeof pkg.engines?.node === 'string', 'no engines.node');
  check(Array.isArray(pkg.files) && pkg.files.includes('dist'), 'files does not list dist');
  check(pkg.publishConfig?.access === 'public', 'publishConfig.access is not public');
  const dot = pkg.exports?.['.'];
  check(dot && Object.keys(dot)[0] === 'types', 'exports["."] does not list types first');
  if (pkg.name !== '@strata-cache/core') {
    check(pkg.peerDependencies?.['@strata-cache/core'], '@strata-cache/core is not a peer dependency');
    check(!pkg.dependencies?.['@strata-cache/core'], '@strata-cache/core is a regular dependency (must be a peer)');
  }
  check(existsSync(join(root, 'packages', dir, 'README.md')), 'no README.md');
  const entry = dot?.import ?? dot?.default;
  if (entry) {
    const file = join(root, 'packages', dir, entry);
    if (!existsSync(file)) problems.push(`${entry} is not built`);
    else {
      try {
        const mod = await import(pathToFileURL(file).href);
        check(!('default' in mod), 'has a default export (named exports only)');
        check(Object.keys(mod).length > 0, 'exports nothing');
      } catch (error) {
        problems.push(`import() of ${entry} failed: ${error.message}`);
      }
    }
  }
  if (problems.length) failures.push(`${pkg.name}: ${problems.join('; ')}`);
  else passed++;
  console.log(`${problems.length ? 'FAIL' : 'ok  '} ${pkg.name}${problems.length ? ' — ' + problems.join('; ') : ''}`);
}
console.log(`Packages: ${passed} passed, ${failures.length} failed`);
process.exit(failures.length ? 1 : 0);
