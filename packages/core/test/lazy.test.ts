import { describe, expect, it } from 'vitest';
import { MissingDependencyError, StrataError, lazyImport } from '../src/index.js';

describe('lazyImport', () => {
  it('loads through the caller-supplied importer, once', async () => {
    let calls = 0;
    const importer = async () => {
      calls++;
      return { ok: true };
    };
    expect(await lazyImport('some-peer', '@strata-cache/x', '', importer)).toEqual({ ok: true });
    expect(await lazyImport('some-peer', '@strata-cache/x', '', importer)).toEqual({ ok: true });
    expect(calls).toBe(1);
  });

  it('turns a missing module into a MissingDependencyError that says what to install, and retries later', async () => {
    const error = (await lazyImport('definitely-not-installed-pkg', '@strata-cache/x', 'Allow its build in pnpm-workspace.yaml').catch(
      (e: unknown) => e,
    )) as Error;
    expect(error).toBeInstanceOf(MissingDependencyError);
    expect(StrataError.isInstance(error)).toBe(true);
    expect(error.message).toMatch(/@strata-cache\/x needs "definitely-not-installed-pkg".*pnpm add definitely-not-installed-pkg.*Allow its build/);
    let attempts = 0;
    const flaky = async () => {
      attempts++;
      if (attempts === 1) throw new Error('addon not built');
      return 42;
    };
    await expect(lazyImport('flaky-peer', '@strata-cache/x', '', flaky)).rejects.toThrow(MissingDependencyError);
    await expect(lazyImport('flaky-peer', '@strata-cache/x', '', flaky)).resolves.toBe(42);
  });
});

describe('lazyImport with options', () => {
  it('prepares the module once; a prepare that throws is a MissingDependencyError and is retried', async () => {
    let attempts = 0;
    const prepare = (m: { Ctor?: unknown }) => {
      attempts++;
      if (attempts === 1) throw new Error('native addon not built');
      return m.Ctor;
    };
    const importer = async () => ({ Ctor: 'the constructor' });
    const first = await lazyImport('native-peer', '@strata-cache/y', { importer, prepare, hint: 'Run pnpm rebuild native-peer' }).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(MissingDependencyError);
    expect((first as Error).message).toMatch(/native addon not built.*npm install native-peer.*pnpm rebuild native-peer/);
    expect(await lazyImport('native-peer', '@strata-cache/y', { importer, prepare })).toBe('the constructor');
    expect(await lazyImport('native-peer', '@strata-cache/y', { importer, prepare })).toBe('the constructor');
    expect(attempts).toBe(2);
  });
});
