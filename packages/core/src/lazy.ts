import { MissingDependencyError } from './errors.js';

const cache = new Map<string, Promise<unknown>>();

/**
 * Imports an optional or native peer dependency on first use (never at module load), with an
 * error that says what to install. `hint` is appended, e.g. the build-script allow-list note.
 */
export function lazyImport<T>(specifier: string, requiredBy: string, hint = ''): Promise<T> {
  let p = cache.get(specifier) as Promise<T> | undefined;
  if (!p) {
    p = (import(specifier) as Promise<T>).catch((cause: unknown) => {
      cache.delete(specifier);
      const reason = (cause as Error)?.message ?? String(cause);
      throw new MissingDependencyError(
        specifier,
        `${requiredBy} needs "${specifier}", which could not be loaded (${reason}). Install it: pnpm add ${specifier}` + (hint ? `. ${hint}` : ''),
        { cause },
      );
    });
    cache.set(specifier, p);
  }
  return p;
}
