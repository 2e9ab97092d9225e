import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// A child process in which "hnswlib-node" cannot be resolved (an ESM resolve hook refuses it),
// as when it is not installed or its addon was never built. Runs the built package (the test
// script builds it first).
const hooks = `export async function resolve(specifier, context, next) {
  if (specifier === 'hnswlib-node') throw new Error('Cannot find package hnswlib-node (simulated)');
  return next(specifier, context);
}`;
const script = `
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));
const { SemanticLayer } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
const layer = new SemanticLayer({ embedder: { id: 'x', dimensions: 4, embed: async (t) => t.map(() => new Float32Array(4)) } });
try {
  await layer.ready();
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  console.log(JSON.stringify({ name: e.name, code: e.code, dependency: e.dependency, message: e.message }));
}
`;

describe('hnswlib-node missing or unbuilt', () => {
  it('imports fine (nothing native at import) and rejects the first operation with a MissingDependencyError that says what to do', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('..', import.meta.url)) }, (err, stdout, stderr) =>
        err ? reject(new Error(stderr || err.message)) : resolve(stdout),
      ),
    );
    const r = JSON.parse(out.trim().split('\n').pop()!) as { name: string; code: string; dependency: string; message: string };
    expect(r.name).toBe('MissingDependencyError');
    expect(r.code).toBe('STRATA_MISSING_DEPENDENCY');
    expect(r.dependency).toBe('hnswlib-node');
    expect(r.message).toMatch(/pnpm add hnswlib-node/);
    expect(r.message).toMatch(/onlyBuiltDependencies/);
  });
});
